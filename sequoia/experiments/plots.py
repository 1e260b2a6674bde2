"""The plots of a comparison: summary metrics with intervals, mean transfer matrices, average performance,
and, where metrics measure what training lost (a ``lost`` summary: PA's alignment taxes), the trade-off of the
final score against each."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sequoia.experiments.summary import Configuration, direction
from sequoia.intervals import t_interval
from sequoia.runs.files import pyplot
from sequoia.results import TransferMatrix

PRIMARY = ("average_final", "average_forgetting", "bwt", "fwt", "online_performance")


def write_all(configurations: list[Configuration], directory: Path) -> list[Path]:
    """Every plot that the runs allow, into ``directory``; return their paths."""
    written = []
    for name, plot in (("metrics.png", metric_bars), ("transfer_matrices.png", mean_matrices),
                       ("average_performance.png", performance_bands), ("tradeoff.png", tradeoff),
                       ("forgetting_tradeoff.png", forgetting_tradeoff)):
        if plot(configurations, directory / name):
            written.append(directory / name)
    return written


def _metrics_to_plot(configurations: list[Configuration]) -> list[str]:
    names: list[str] = []
    for configuration in configurations:
        names += [name for name in configuration.metric_names() if name not in names]
    return sorted(names, key=lambda name: (PRIMARY.index(name) if name in PRIMARY else len(PRIMARY), name))


def metric_bars(configurations: list[Configuration], path: Path) -> bool:
    """One panel per metric: a horizontal bar per configuration, its 95% interval, a dot per seed."""
    metrics = _metrics_to_plot(configurations)
    if not metrics:
        return False
    plt = pyplot()
    columns = min(3, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    height = 0.45 * len(configurations) + 1.2
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, height * rows), squeeze=False)
    labels = [c.label for c in configurations]
    colours = plt.get_cmap("tab10")(np.arange(len(configurations)) % 10)
    for index, metric in enumerate(metrics):
        ax = axes[index // columns][index % columns]
        for y, (configuration, colour) in enumerate(zip(configurations, colours)):
            stat = configuration.statistics().get(metric)
            if stat is None:
                continue
            ax.barh(y, stat["mean"], xerr=_error(stat), color=colour, alpha=0.55, capsize=4, height=0.6)
            seeds = list(stat["seeds"].values())
            ax.scatter(seeds, [y] * len(seeds), color="black", s=10, zorder=3)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.set_yticks(range(len(labels)), labels if index % columns == 0 else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(metric + BETTER[direction(configurations, metric)], fontsize=10)
    for index in range(len(metrics), rows * columns):
        axes[index // columns][index % columns].axis("off")
    fig.suptitle("mean over seeds, 95% t interval (bars), one dot per seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


BETTER = {True: " (higher is better)", False: " (lower is better)", None: ""}


def _mean_matrix(configuration: Configuration) -> np.ndarray | None:
    matrices = [np.asarray(matrix, dtype=float) for matrix in configuration.transfer_matrices()]
    if not matrices or len({m.shape for m in matrices}) != 1:
        return None
    return np.mean(matrices, axis=0)


def mean_matrices(configurations: list[Configuration], path: Path) -> bool:
    """The mean transfer matrix of each configuration, side by side, on one colour scale."""
    shown = [(c, m) for c in configurations if (m := _mean_matrix(c)) is not None]
    if not shown:
        return False
    plt = pyplot()
    low = min(float(m.min()) for _, m in shown)
    high = max(float(m.max()) for _, m in shown)
    columns = min(3, len(shown))
    rows = math.ceil(len(shown) / columns)
    tasks, phases = shown[0][1].shape[1], shown[0][1].shape[0]
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 + 0.85 * tasks * columns, (0.9 + 0.45 * phases) * rows),
                             squeeze=False)
    image = None
    for index, (configuration, matrix) in enumerate(shown):
        ax = axes[index // columns][index % columns]
        image = ax.imshow(matrix, cmap="viridis", vmin=low, vmax=high, aspect="auto")
        _annotate(ax, matrix, low, high)
        ax.set_xticks(range(matrix.shape[1]), [f"task {j}" for j in range(matrix.shape[1])], fontsize=7)
        first_column = index % columns == 0  # the rows are the same in every panel: labelled once per line
        ax.set_yticks(range(matrix.shape[0]), TransferMatrix(matrix).row_labels() if first_column else
                      [""] * matrix.shape[0], fontsize=7)
        ax.set_title(f"{configuration.label} ({len(configuration.runs)} seeds)", fontsize=8)
    for index in range(len(shown), rows * columns):
        axes[index // columns][index % columns].axis("off")
    fig.colorbar(image, ax=axes, shrink=0.8, label=_metric_name(configurations))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def _annotate(ax, matrix: np.ndarray, low: float, high: float) -> None:
    """Each cell's value, in black on light cells and white on dark ones (readable on viridis)."""
    for (i, j), value in np.ndenumerate(matrix):
        shade = (value - low) / (high - low) if high > low else 0.0
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="black" if shade > 0.6 else "white")


def _metric_name(configurations: list[Configuration]) -> str:
    for configuration in configurations:
        for run in configuration.runs:
            return str(run.metrics.get("metric", "score"))
    return "score"


def average_performance(matrix: list[list[float]]) -> list[float]:
    """``A_i``: mean of row ``i`` over the tasks trained so far (one phase per task), else over all tasks.

    Example:
        >>> average_performance([[0.1, 0.1], [0.9, 0.2], [0.5, 0.8]])
        [0.9, 0.65]
    """
    values = np.asarray(matrix, dtype=float)
    phases, tasks = values.shape[0] - 1, values.shape[1]
    if phases == tasks:
        return [float(values[i, :i].mean()) for i in range(1, phases + 1)]
    return [float(row.mean()) for row in values[1:]]


def performance_band(configuration: Configuration) -> tuple[list[float], list[float], list[float]] | None:
    """Mean, low and high of ``A_i`` over seeds, per phase; ``None`` if the runs' matrices differ in shape."""
    curves = [average_performance(matrix) for matrix in configuration.transfer_matrices()]
    if not curves or len({len(curve) for curve in curves}) != 1:
        return None
    stats = [t_interval(values) for values in zip(*curves)]
    means, _, bounds = zip(*stats)
    return list(means), [low for low, _ in bounds], [high for _, high in bounds]


def performance_bands(configurations: list[Configuration], path: Path) -> bool:
    """Average performance on the tasks seen so far after each task: mean over seeds, 95% interval band."""
    bands = [(c, band) for c in configurations if (band := performance_band(c)) is not None]
    if not bands:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for configuration, (mean, low, high) in bands:
        phases = range(1, len(mean) + 1)
        line, = ax.plot(phases, mean, marker="o", label=f"{configuration.label} ({len(configuration.runs)} seeds)")
        if not any(math.isnan(value) for value in low):
            ax.fill_between(phases, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("after training phase")
    ax.set_ylabel(f"average {_metric_name(configurations)} on tasks seen so far")
    ax.set_xticks(range(1, max(len(band[0]) for _, band in bands) + 1))
    ax.set_title("average performance after each task (mean over seeds, 95% t interval)", fontsize=9)
    _save_with_legend(plt, fig, ax, path)
    return True


def _lost_metrics(configurations: list[Configuration]) -> list[str]:
    """The metrics that measure what training lost since before it (a ``lost`` summary: PA's alignment taxes)."""
    names: list[str] = []
    for configuration in configurations:
        names += [name for name in configuration.metric_names()
                  if name not in names and configuration.summary_kind(name) == "lost"]
    return names


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x, higher y), by increasing x.

    Example:
        >>> pareto_front([(0.1, 0.6), (0.2, 0.5), (0.3, 0.8), (0.0, 0.55)])
        [3, 0, 2]
    """
    front = [i for i, (x, y) in enumerate(points)
             if not any((ox <= x and oy >= y) and (ox, oy) != (x, y) for ox, oy in points)]
    return sorted(front, key=lambda i: points[i][0])


def tradeoff(configurations: list[Configuration], path: Path, score: str = "average_final") -> bool:
    """A summary metric (``score``: the average final primary metric by default) against each metric of what
    training lost (Lin et al.'s curve for the alignment tax), one panel per lost metric and one point per
    configuration.

    Each point has its 95% t interval over seeds on both axes; the configurations no other
    beats on both (less lost, a better ``score`` in its direction) are joined: the Pareto front.
    Returns whether there was anything to draw (a lost metric and ``score`` in two configurations).
    """
    losses = [name for name in _lost_metrics(configurations)
              if sum(name in c.statistics() and score in c.statistics() for c in configurations) >= 2]
    if not losses:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(losses), figsize=(4.6 * len(losses) + 3.5, 4.6), squeeze=False)
    higher = direction(configurations, score) is not False
    label = _score_label(configurations, score)
    for ax, lost in zip(axes[0], losses):
        _tradeoff_panel(ax, [c for c in configurations if lost in c.statistics() and score in c.statistics()],
                        lost, score, higher)
        ax.set_ylabel(label)
    fig.suptitle(f"{label} against what training lost (mean over seeds, 95% t intervals)", fontsize=9)
    _save_with_legend(plt, fig, axes[0][-1], path, beside=True)
    return True


def forgetting_tradeoff(configurations: list[Configuration], path: Path) -> bool:
    """:func:`tradeoff` with the average forgetting in place of the final score: what a method kept of the
    earlier tasks against what it cost the base model (lower is better on both axes)."""
    return tradeoff(configurations, path, score="average_forgetting")


def _score_label(configurations: list[Configuration], score: str) -> str:
    """The y axis of a trade-off: ``average final accuracy`` for the primary metric's final average."""
    if score == "average_final":
        return f"average final {_metric_name(configurations)}"
    return score.replace("_", " ")


def _tradeoff_panel(ax, shown: list[Configuration], lost: str, score: str, higher: bool) -> None:
    """One panel of :func:`tradeoff`: a point per configuration, and the Pareto front dashed."""
    points = []
    # The labels go in a legend beside the axes, one colour and marker per configuration:
    # written next to their points, the labels of arms that sit close together overlapped.
    for configuration, (color, marker) in zip(shown, point_styles(len(shown))):
        x, y = configuration.statistics()[lost], configuration.statistics()[score]
        points.append((x["mean"], y["mean"] if higher else -y["mean"]))
        ax.errorbar(x["mean"], y["mean"], xerr=_error(x), yerr=_error(y), fmt=marker, color=color, capsize=3,
                    label=configuration.label)
    front = pareto_front(points)
    ax.plot([points[i][0] for i in front], [points[i][1] * (1 if higher else -1) for i in front], color="grey",
            linestyle="--", label="Pareto front")
    ax.set_xlabel(f"{lost} (positive: lost since before training)", fontsize=8)
    ax.grid(alpha=0.3)


def point_styles(count: int) -> list[tuple[str, str]]:
    """A (colour, marker) pair for each of ``count`` points, no two alike while ``count`` <= 70.

    Colours cycle through matplotlib's ten default colours (C0-C9); the marker changes
    each time they wrap round, so that the 11th point differs from the first.

    Example:
        >>> styles = point_styles(12)
        >>> styles[0], styles[10], styles[11]
        (('C0', 'o'), ('C0', 's'), ('C1', 's'))
        >>> len(set(point_styles(70)))
        70
    """
    markers = "osD^vPX"
    return [(f"C{i % 10}", markers[(i // 10) % len(markers)]) for i in range(count)]


def _save_with_legend(plt, fig, ax, path: Path, beside: bool = False) -> None:
    """The common ending of a one-panel plot: a small legend, a light grid, saved and closed.

    ``beside`` puts the legend to the right of the axes, and the saved image widens to hold it.
    """
    if beside:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if beside:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    else:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)


def _error(stat: dict) -> list[list[float]] | None:
    """Matplotlib's error bar of a statistic: the distances from the mean to the interval's ends.

    Clamped at 0: the mean is rounded (to 12 digits) and the ends are not, so where every
    seed gave the same value a distance can come out a hair below 0, which matplotlib refuses.

    Example:
        >>> _error({"mean": 0.208333333333, "low": 0.20833333333333334, "high": 0.20833333333333334})[0]
        [0.0]
    """
    if stat["low"] is None:
        return None
    return [[max(0.0, stat["mean"] - stat["low"])], [max(0.0, stat["high"] - stat["mean"])]]
