"""A comparison written out: tables (Markdown, CSV, JSON) and plots (PNG).

Files, for a stem of ``summary`` (a sweep) or ``comparison`` (``sequoia compare``):

* ``<stem>.md``: configurations x metrics, ``mean ± half-width`` of the 95% t interval
  over seeds, then the paired tests against the baseline;
* ``<stem>.csv``: one row per configuration and metric: n, mean, std, interval ends;
* ``<stem>.json``: the same, with every seed's value and the paired tests;
* ``paired_tests.csv``: configuration, baseline, metric, seeds, mean difference, p, Holm's adjusted p
  (per metric, over the configurations tested), verdict, effect size, seeds for 80% power;
* ``metrics.png``: each summary metric, one bar per configuration with its interval and
  a dot per seed;
* ``transfer_matrices.png``: the mean transfer matrix of each configuration;
* ``average_performance.png``: the average performance on the tasks seen so far after
  each task (Chaudhry et al. 2018's average accuracy ``A_i``), mean over seeds with its
  interval as a band;
* ``tradeoff.png``: where runs have an alignment tax, the average final preference
  accuracy against it, with the Pareto front;
* ``forgetting_tradeoff.png``: the same with the average forgetting in place of the
  final accuracy.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any, Sequence


from sequoia.errors import SequoiaError
from sequoia.experiments.summary import MAX_SEEDS, POWER, SIGNIFICANCE, Configuration, direction

TEST_NAME = "paired t-test, two-sided (scipy.stats.ttest_rel), over the seeds both configurations ran"
VERDICT = (f"verdict: better or worse than the baseline in the metric's direction where p < {SIGNIFICANCE}, "
           "else within noise")
HOLM_NOTE = (f"p (Holm): p adjusted by Holm's method over the configurations tested on that metric (family-wise "
             f"error {SIGNIFICANCE}: below {SIGNIFICANCE} survives the correction; the verdict is on the unadjusted p)")
POWER_NOTE = (f"seeds for {POWER:.0%} power: how many seeds the test would need to find the observed mean "
              f"difference at p < {SIGNIFICANCE}, were it the true one (n/a: no variance or under 2 seeds)")


def cell(stat: dict[str, Any], precision: int = 3) -> str:
    """``mean ± half-width`` (or the mean alone with one seed).

    Example:
        >>> cell({"mean": 0.65612, "low": 0.57, "high": 0.74, "n": 3})
        '0.656 ± 0.085'
    """
    if stat["low"] is None:
        return f"{stat['mean']:.{precision}f}"
    return f"{stat['mean']:.{precision}f} ± {(stat['high'] - stat['low']) / 2:.{precision}f}"


def metric_columns(configurations: list[Configuration], chosen: list[str] | None = None) -> list[str]:
    """The metrics the table shows: ``chosen`` in its order (each checked), else every metric of any run.

    Raises:
        SequoiaError: a chosen metric no run reported; the message lists those that exist.
    """
    metrics: list[str] = []
    for configuration in configurations:
        metrics += [name for name in configuration.metric_names() if name not in metrics]
    if chosen is None:
        return metrics
    missing = [name for name in chosen if name not in metrics]
    if missing:
        raise SequoiaError(f"--metrics {missing[0]}: no run reported that metric; the metrics are "
                           f"{', '.join(metrics)}")
    return chosen


def table_rows(configurations: list[Configuration],
               chosen: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the configurations x metrics table (all metrics, or ``chosen``)."""
    metrics = metric_columns(configurations, chosen)
    header = ["configuration", "seeds", *metrics]
    rows = []
    for configuration in configurations:
        stats = configuration.statistics()
        rows.append([configuration.label, str(len(configuration.runs)),
                     *[cell(stats[name]) if name in stats else "n/a" for name in metrics]])
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """An aligned plain-text table for the terminal."""
    widths = [max(len(line[c]) for line in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in [header, *rows]]
    return "\n".join([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def tests_rows(tests: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["configuration", "baseline", "metric", "seeds", "mean difference", "p", "p (Holm)", "verdict",
              f"seeds for {POWER:.0%} power"]
    rows = [[t["configuration"], t["baseline"], t["metric"], str(t["n"]),
             "n/a" if t["difference"] is None else f"{t['difference']:+.4f}",
             _p_cell(t["p"]), _p_cell(t.get("p_holm")), t.get("verdict", "n/a"),
             _seeds_needed(t)] for t in tests]
    return header, rows


def _p_cell(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def _seeds_needed(test: dict[str, Any]) -> str:
    """The power estimate as a cell: ``n/a`` without an effect size (under 2 seeds, no variance, a mean
    difference of 0), ``>10000`` beyond the cap.

    Example:
        >>> [_seeds_needed(t) for t in ({"seeds_for_power": 6, "effect_size": 1.3},
        ...                             {"seeds_for_power": None, "effect_size": 0.001}, {})]
        ['6', '>10000', 'n/a']
    """
    if test.get("seeds_for_power") is not None:
        return str(test["seeds_for_power"])
    return f">{MAX_SEEDS}" if test.get("effect_size") else "n/a"


def directions(configurations: list[Configuration], metrics: Sequence[str]) -> dict[str, bool | None]:
    """Per metric, whether higher is better (``None``: neither, or the runs do not say)."""
    return {name: direction(configurations, name) for name in metrics}


def direction_note(configurations: list[Configuration], metrics: Sequence[str]) -> str:
    """One line under a table: which of its metrics are better higher, which lower.

    Example:
        >>> direction_note([], [])
        ''
    """
    known = directions(configurations, metrics)
    parts = [f"{label} is better: {', '.join(name for name, d in known.items() if d is wanted)}"
             for label, wanted in (("higher", True), ("lower", False)) if wanted in known.values()]
    return "; ".join(parts) + ("." if parts else "")


def paired_tests_of(tests: list[dict[str, Any]], metrics: Sequence[str] | None) -> list[dict[str, Any]]:
    """The paired tests of ``metrics`` (all of them when ``metrics`` is None), in their order.

    Example:
        >>> paired_tests_of([{"metric": "bwt"}, {"metric": "fwt"}], ["fwt"])
        [{'metric': 'fwt'}]
    """
    return [t for t in tests if metrics is None or t["metric"] in metrics]


def printed(configurations: list[Configuration], tests: list[dict[str, Any]], primary_only: bool = True,
            chosen: list[str] | None = None) -> str:
    """What the terminal shows: the table, then the paired tests of the summary metrics (or of ``chosen``)."""
    header, rows = table_rows(configurations, chosen)
    text = ("mean ± half the 95% t interval over seeds\n" + text_table(header, rows))
    note = direction_note(configurations, header[2:])
    text += f"\n{note}" if note else ""
    shown = paired_tests_of(tests, (chosen or ("average_final", "average_forgetting")) if primary_only else None)
    if shown:
        text += f"\n\n{TEST_NAME}; {VERDICT}; {HOLM_NOTE}; {POWER_NOTE}\n" + text_table(*tests_rows(shown))
    return text


def write(configurations: list[Configuration], tests: list[dict[str, Any]], directory: Path, stem: str,
          baseline: str | None, chosen: list[str] | None = None) -> list[Path]:
    """Write the tables and plots into ``directory``; return the paths written.

    ``chosen`` narrows the Markdown tables (metrics and paired tests) to those metrics; the
    CSV files and the JSON keep every metric. Everything is written into a hidden folder in
    ``directory`` first and moved into place when all of it is written, so that a failure or a
    kill midway leaves no half-written comparison (a new ``directory`` is removed again).
    """
    made = not directory.exists()
    partial = directory / f".{stem}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    try:
        written = _write_files(configurations, tests, partial, stem, baseline, chosen)
        for path in written:
            path.replace(directory / path.name)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        if made and not any(directory.iterdir()):
            directory.rmdir()
    return [directory / path.name for path in written]


def _write_files(configurations: list[Configuration], tests: list[dict[str, Any]], directory: Path, stem: str,
                 baseline: str | None, chosen: list[str] | None) -> list[Path]:
    header, rows = table_rows(configurations, chosen)
    markdown = [f"# {stem.capitalize()}", "", "Mean ± half the 95% Student's t interval over seeds.", "",
                markdown_table(header, rows)]
    note = direction_note(configurations, header[2:])
    markdown += ["", note] if note else []
    shown = paired_tests_of(tests, chosen)
    if shown:
        markdown += ["", f"## Against the baseline `{baseline}`", "",
                     f"Test: {TEST_NAME}; {VERDICT}; {HOLM_NOTE}; {POWER_NOTE}.", "",
                     markdown_table(*tests_rows(shown))]
    paths = [directory / f"{stem}.md", directory / f"{stem}.csv", directory / f"{stem}.json"]
    paths[0].write_text("\n".join(markdown) + "\n")
    _write_csv(configurations, paths[1])
    paths[2].write_text(json.dumps(_as_json(configurations, tests, baseline), indent=1, sort_keys=True) + "\n")
    if tests:
        paths.append(directory / "paired_tests.csv")
        with paths[-1].open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["configuration", "baseline", "metric", "seeds", "mean_difference", "p", "p_holm",
                             "verdict", "effect_size", "seeds_for_power"])
            writer.writerows([t["configuration"], t["baseline"], t["metric"], t["n"], t["difference"], t["p"],
                              t.get("p_holm"), t["verdict"], t.get("effect_size"), t.get("seeds_for_power")]
                             for t in tests)
    from sequoia.experiments import plots

    paths += plots.write_all(configurations, directory)
    return paths


def _write_csv(configurations: list[Configuration], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["configuration", "metric", "n", "mean", "std", "ci_low", "ci_high"])
        for configuration in configurations:
            for name, stat in configuration.statistics().items():
                writer.writerow([configuration.label, name, stat["n"], stat["mean"], stat["std"], stat["low"],
                                 stat["high"]])


def _as_json(configurations: list[Configuration], tests: list[dict[str, Any]], baseline: str | None) -> dict[str, Any]:
    return {
        "interval": "95% Student's t interval of the mean over seeds",
        "configurations": [{"label": c.label, "options": {k: v for k, v in c.options.items()},
                            "runs": [Path(run.directory).name for run in c.runs], "metrics": c.statistics()}
                           for c in configurations],
        "higher_is_better": directions(configurations, metric_columns(configurations)),
        "baseline": baseline,
        "test": TEST_NAME if tests else None,
        "verdict": VERDICT if tests else None,
        "power": POWER_NOTE if tests else None,
        "holm": HOLM_NOTE if tests else None,
        "paired_tests": tests,
    }
