"""The files of a run directory: its results as JSON, CSV and plots, and the directory itself (the run's own
files; :mod:`sequoia.experiments.report` compares many runs)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sequoia.results import Results
from sequoia.text_files import write_atomically

RESULT_FILES = ("results.json", "transfer_matrix.csv", "transfer_matrix.png", "curves.png")
"""What a finished run adds to its directory (``samples.jsonl`` too where there are samples)."""
RUN_FILES = (*RESULT_FILES, "config.yaml")


def new_run_dir(output_root: str | Path, setting: str, method: str) -> Path:
    """``<output_root>/<setting>/<method>/<timestamp>``, made unique if the timestamp is taken."""
    base = Path(output_root) / setting / method
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, suffix = base / stamp, 1
    while candidate.exists():
        candidate, suffix = base / f"{stamp}-{suffix}", suffix + 1
    candidate.mkdir(parents=True)
    return candidate


def write_run(results: Results, config: dict[str, Any], output_root: str | Path) -> Path:
    """Write the config and the results of a finished run into a new run directory.

    The CLI writes through :class:`sequoia.runs.Run` instead, which also checkpoints and
    logs as the run goes; this is for results computed without one.

    Example:
        >>> import tempfile
        >>> from sequoia.results import TransferMatrix
        >>> r = Results("sl.incremental", "naive", TransferMatrix([[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]))
        >>> run_dir = write_run(r, {"seed": 0}, tempfile.mkdtemp())
        >>> sorted(p.name for p in run_dir.iterdir()) == sorted(RUN_FILES)
        True
    """
    run_dir = new_run_dir(output_root, results.setting, results.method)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    write_results(run_dir, results)
    return run_dir


def write_results(run_dir: Path, results: Results) -> None:
    """Write a finished run's results into ``run_dir``; ``results.json`` last, as it marks the run finished."""
    _write_matrix_csv(results, run_dir / "transfer_matrix.csv")
    _plot_matrix(results, run_dir / "transfer_matrix.png")
    _plot_curves(results, run_dir / "curves.png")
    if results.samples:
        with (run_dir / "samples.jsonl").open("w", encoding="utf-8") as handle:
            for sample in results.samples:
                handle.write(json.dumps(sample, ensure_ascii=False) + "\n")
    write_atomically(run_dir / "results.json", json.dumps(results.to_dict(), indent=2) + "\n")


def _write_matrix_csv(results: Results, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", *[f"task_{j}" for j in range(results.matrix.nb_tasks)]])
        for label, row in zip(results.matrix.row_labels(), results.matrix.values):
            writer.writerow([label, *[f"{v:.6f}" for v in row]])


def pyplot():
    """matplotlib's pyplot, drawing into files only (no display is needed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _plot_matrix(results: Results, path: Path) -> None:
    plt = pyplot()
    values = results.matrix.values
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * values.shape[1], 1.0 + 0.6 * values.shape[0]))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            colour = "black" if values[i, j] > 0.6 * values.max() else "white"  # readable on viridis
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(values.shape[1]), [f"task {j}" for j in range(values.shape[1])])
    ax.set_yticks(range(values.shape[0]), results.matrix.row_labels())
    ax.set_title(f"{results.setting} / {results.method}: {results.matrix.metric}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_curves(results: Results, path: Path) -> None:
    plt = pyplot()
    values = results.matrix.values
    online = results.curves.get("online", [])
    fig, axes = plt.subplots(1, 2 if online else 1, figsize=(11 if online else 6, 4), squeeze=False)
    ax = axes[0][0]
    phases = range(values.shape[0])
    for j in range(values.shape[1]):
        ax.plot(phases, values[:, j], marker="o", label=f"task {j}")
    ax.plot(phases, values.mean(axis=1), color="black", linestyle="--", label="mean")
    ax.set_xlabel("training phase (0: before training)")
    ax.set_ylabel(results.matrix.metric)
    ax.set_title("test performance per task")
    ax.legend(fontsize=7)
    if online:
        axes[0][1].plot(range(1, len(online) + 1), online, marker=".")
        axes[0][1].set_xlabel("stream chunk")
        axes[0][1].set_ylabel(f"online {results.matrix.metric}")
        axes[0][1].set_title("performance on each chunk before training on it")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
