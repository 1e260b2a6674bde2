"""The transfer matrix and the continual-learning metrics computed from it.

Notation: ``R[i, j]`` is the performance on task ``j``'s test set after training
phase ``i`` (row 0: before any training). With ``T`` phases and ``N`` tasks the
matrix is ``(T + 1) x N``. In the usual case ``T == N`` and phase ``i`` trains on
task ``i - 1``, so task ``j`` is first trained in row ``j + 1``.

* average final performance: ``mean_j R[T, j]``.
* average forgetting (max-based, Chaudhry et al. 2018, "Riemannian Walk"):
  ``f_j = max_{j + 1 <= l <= T} R[l, j] - R[T, j]``, averaged over the tasks
  ``j < N - 1`` (the last task cannot be forgotten yet). The max runs over the rows
  from task ``j``'s own training onward, never over rows measured before it was
  trained; it includes the last row, so ``f_j >= 0``, as in Mammoth's ``forgetting``.
* backward transfer, BWT (Lopez-Paz & Ranzato 2017):
  ``mean_{j < N-1} (R[T, j] - R[j + 1, j])``; negative means forgetting.
* forward transfer, FWT (Lopez-Paz & Ranzato 2017):
  ``mean_{j >= 1} (R[j, j] - R[0, j])``: how much training on earlier tasks helps
  task ``j`` before the method has seen it. GEM's baseline ``b_j`` is the accuracy
  of the model at initialisation, which is row 0.

Forgetting, BWT and FWT need one phase per task; with a single joint phase
(``multi_task``) they are ``None``.

These formulas are for a metric where higher is better (accuracy, return). For one
where lower is better (a loss, an error: ``higher_is_better=False``, from the metric's
:class:`~sequoia.metric_spec.MetricSpec`) they are applied to the negated matrix, so
that forgetting (``R[T, j] - min_l R[l, j]``) is still >= 0 and a loss, and BWT and FWT
are still negative where the method did worse: an error that rose from 0.1 to 0.4
after later tasks is forgetting 0.3 and BWT -0.3.

Every cell and every summary metric also gets a 95% interval: a paired bootstrap
over the test items (:mod:`sequoia.intervals`), from the per-item scores the
setting hands over in ``Results.items``.

Example:
    >>> m = TransferMatrix([[0.1, 0.1], [0.9, 0.2], [0.5, 0.8]])
    >>> round(m.average_final(), 3), round(m.average_forgetting(), 3)
    (0.65, 0.4)
    >>> round(m.bwt(), 3), round(m.fwt(), 3)
    (-0.4, 0.1)
    >>> m.row_labels()
    ['before', 'after 0', 'after 1']
    >>> error = TransferMatrix([[0.9, 0.9], [0.1, 0.8], [0.4, 0.2]], metric="error", higher_is_better=False)
    >>> round(error.average_forgetting(), 3), round(error.bwt(), 3)
    (0.3, -0.3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from sequoia.metric_spec import TRANSFER_SUMMARIES, MetricSpec, describe_summaries, summaries_of


def cell_means(row: dict[str, list[list[float]]]) -> dict[str, list[float]]:
    """One evaluation's cells: per metric, the mean of each task's item scores. The one place a row of item
    scores becomes numbers: the transfer matrices, the logged metrics and the progress bar all use it.

    Example:
        >>> cell_means({"accuracy": [[1.0, 0.0], [1.0, 1.0, 1.0]]})
        {'accuracy': [0.5, 1.0]}
    """
    return {name: [float(np.mean(scores)) for scores in tasks] for name, tasks in row.items()}


class TransferMatrix:
    """Performance on every task's test set after every training phase (row 0: before)."""

    def __init__(self, rows: Any, metric: str = "accuracy", higher_is_better: bool | None = True) -> None:
        self.values = np.asarray(rows, dtype=float)
        if self.values.ndim != 2 or self.values.shape[0] < 1:
            raise ValueError(f"a transfer matrix needs rows of task scores, got {self.values.shape}")
        self.metric = metric
        self.higher_is_better = higher_is_better

    @property
    def _oriented(self) -> np.ndarray:
        """The values with higher always better: negated for a lower-is-better metric."""
        return -self.values if self.higher_is_better is False else self.values

    @property
    def nb_phases(self) -> int:
        return self.values.shape[0] - 1

    @property
    def nb_tasks(self) -> int:
        return self.values.shape[1]

    def _one_phase_per_task(self) -> bool:
        return self.nb_phases == self.nb_tasks and self.nb_tasks > 1

    def average_final(self) -> float:
        """Mean over tasks of the last row."""
        return float(self.values[-1].mean())

    def average_forgetting(self) -> float | None:
        """Max-based average forgetting (Chaudhry et al. 2018); ``None`` without per-task phases.

        Task ``j``'s best score is taken over the rows from its own training (row
        ``j + 1``) to the last, so a score measured before it was trained never counts.
        """
        forgetting = self.forgetting_by_task()
        return None if forgetting is None else float(np.mean(forgetting))

    def forgetting_by_task(self) -> list[float] | None:
        """``f_j`` of each task but the last (see :meth:`average_forgetting`); ``None`` without per-task phases.

        Example:
            >>> TransferMatrix([[0.5, 0.5, 0.5], [0.9, 0.5, 0.5], [0.7, 0.8, 0.5], [0.6, 0.8, 0.9]]).forgetting_by_task()
            [0.30000000000000004, 0.0]
        """
        if not self._one_phase_per_task():
            return None
        oriented = self._oriented
        return [float(oriented[j + 1 :, j].max() - oriented[-1, j]) for j in range(self.nb_tasks - 1)]

    def bwt(self) -> float | None:
        """Backward transfer (Lopez-Paz & Ranzato 2017)."""
        if not self._one_phase_per_task():
            return None
        n, oriented = self.nb_tasks, self._oriented
        just_trained = np.array([oriented[j + 1, j] for j in range(n - 1)])
        return float((oriented[-1, : n - 1] - just_trained).mean())

    def fwt(self) -> float | None:
        """Forward transfer against row 0, the performance at initialisation (GEM's ``b_j``)."""
        if not self._one_phase_per_task():
            return None
        n, oriented = self.nb_tasks, self._oriented
        before_own_phase = np.array([oriented[j, j] for j in range(1, n)])
        return float((before_own_phase - oriented[0, 1:]).mean())

    def lost(self) -> float:
        """What the last row lost against row 0, averaged over tasks: positive is worse (row 0 minus the last
        row where higher is better, the last row minus row 0 where lower is better).

        Example:
            >>> TransferMatrix([[2.0], [2.5]], higher_is_better=False).lost()
            0.5
        """
        lost = self.values[0].mean() - self.values[-1].mean()
        return float(-lost if self.higher_is_better is False else lost)

    def summary(self, name: str) -> float | None:
        """One summary by its name in :data:`sequoia.metric_spec.SUMMARIES` (``final``, ``forgetting``, ...)."""
        return {"final": self.average_final, "forgetting": self.average_forgetting, "bwt": self.bwt,
                "fwt": self.fwt, "lost": self.lost}[name]()

    def to_list(self) -> list[list[float]]:
        return self.values.tolist()

    def row_labels(self) -> list[str]:
        """``before``, then ``after j`` (trained on task ``j``) or, without one phase per task, ``phase i``."""
        per_task = self._one_phase_per_task()
        return ["before"] + [f"after {i - 1}" if per_task else f"phase {i}" for i in range(1, self.nb_phases + 1)]

    def format(self, precision: int = 3, cells: list[list[list[float]]] | None = None) -> str:
        """The matrix as an aligned text table with named rows and columns.

        ``cells``: each cell's interval ``[low, high]``, shown as ``value ± half-width``.

        Example:
            >>> print(TransferMatrix([[0.5, 0.25]]).format(cells=[[[0.4, 0.6], [0.2, 0.3]]]))
                          task 0        task 1
            before  0.500 ± 0.10  0.250 ± 0.05
        """
        header = ["", *[f"task {j}" for j in range(self.nb_tasks)]]
        lines = [header]
        for i, (label, row) in enumerate(zip(self.row_labels(), self.values)):
            shown = [f"{v:.{precision}f}" for v in row]
            if cells is not None:
                shown = [f"{text} ± {(high - low) / 2:.2f}" for text, (low, high) in zip(shown, cells[i])]
            lines.append([label, *shown])
        widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
        return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines)


@dataclass
class FinalOutputs:
    """What a setting measures once training is over, beside its metrics: the results are built with it.

    Attributes:
        extra: numbers that are not metrics (RL: the random policy's return; PA: lm-eval scores).
        samples: example outputs (PA: generated replies), saved as ``samples.jsonl``.
    """

    extra: dict[str, Any] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Results:
    """What one run of a method on a setting produced.

    ``metrics()`` holds every number that depends only on the seed; ``runtime_s``
    is kept apart since it varies from run to run. ``matrix`` is the primary
    metric's transfer matrix; ``matrices`` those of every other metric the setting
    scores (PA: margins, drift, capability probes...; RL: normalised return), each
    summarised as its spec in ``specs`` says (its final-row average by default);
    ``extra`` other numbers a domain adds (RL: the random policy's return); ``curves``
    per-step series, such as the online performance of each stream chunk; ``samples``
    example outputs (PA: generated replies), saved as ``samples.jsonl``. ``items``
    holds, per metric, the score of every test item in every cell
    (``items[metric][row][task]``) and ``online_items`` those of the online
    evaluation; :meth:`intervals` bootstraps them.

    ``specs`` (:class:`~sequoia.metric_spec.MetricSpec`, by metric name) say each metric's
    direction and summaries; a metric without one is higher-is-better with its final
    average only. Metrics measured once per evaluation (``per_task=False``: PA's
    capability probes) are shown in a table of their own, titled :attr:`probe_title`.

    Example:
        >>> r = Results("s", "m", TransferMatrix([[0.5], [0.6]]),
        ...             matrices={"nll": [[2.0], [2.5]]},
        ...             specs={"nll": MetricSpec("nll", higher_is_better=False, summaries=("final", "lost"))})
        >>> r.metrics()["nll"], r.metrics()["nll_lost"]
        (2.5, 0.5)
    """

    setting: str
    method: str
    matrix: TransferMatrix
    online_performance: float | None = None
    runtime_s: float = 0.0
    trainable_parameters: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    matrices: dict[str, list[list[float]]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    items: dict[str, list[list[list[float]]]] = field(default_factory=dict)
    online_items: list[float] = field(default_factory=list)
    specs: dict[str, MetricSpec] = field(default_factory=dict)
    _intervals: dict[str, Any] | None = field(default=None, repr=False)

    probe_title: ClassVar[str] = "probes"
    """The heading of the table of metrics measured once per evaluation."""

    def __post_init__(self) -> None:
        primary = self.specs.get(self.matrix.metric)
        if primary is not None and primary.higher_is_better != self.matrix.higher_is_better:
            raise ValueError(f"metric {self.matrix.metric!r}: its spec and its transfer matrix disagree on "
                             "whether higher is better")

    def spec(self, name: str) -> MetricSpec:
        """The spec of metric ``name``: as declared, else higher-is-better with its final average only
        (the primary metric: every transfer summary, in its matrix's direction)."""
        if name in self.specs:
            return self.specs[name]
        if name == self.matrix.metric:
            return MetricSpec(name, higher_is_better=self.matrix.higher_is_better, summaries=TRANSFER_SUMMARIES)
        return MetricSpec(name)

    def _matrix_of(self, name: str) -> TransferMatrix:
        if name == self.matrix.metric:
            return self.matrix
        return TransferMatrix(self.matrices[name], metric=name, higher_is_better=self.spec(name).higher_is_better)

    def _summaries(self, name: str) -> dict[str, float | None]:
        """The summaries of metric ``name`` that its spec declares, by the name they are reported under."""
        spec, primary = self.spec(name), name == self.matrix.metric
        matrix = self._matrix_of(name)
        return {spec.summary_name(summary, primary): matrix.summary(summary)
                for summary in summaries_of(spec, primary)}

    def metrics(self) -> dict[str, Any]:
        """The seed-determined metrics, by name: the primary metric's summaries, the online performance,
        then every other metric's final average, then their other declared summaries, then ``extra``."""
        others = {name: self._summaries(name) for name in self.matrices}
        finals = {name: summaries.pop(self.spec(name).summary_name("final", False))
                  for name, summaries in others.items() if "final" in self.spec(name).summaries}
        return {
            "metric": self.matrix.metric,
            **self._summaries(self.matrix.metric),
            "online_performance": self.online_performance,
            "trainable_parameters": self.trainable_parameters,
            **{self.spec(name).summary_name("final", False): value for name, value in finals.items()},
            **{key: value for summaries in others.values() for key, value in summaries.items()},
            **self.extra,
        }

    def all_specs(self) -> dict[str, MetricSpec]:
        """The spec of every metric this run has a matrix of, the primary one first."""
        return {name: self.spec(name) for name in [self.matrix.metric, *self.matrices]}

    def intervals(self) -> dict[str, Any]:
        """95% bootstrap intervals over the test items (see :mod:`sequoia.intervals`).

        Returns ``{"cells": {metric: [[[low, high], ...], ...]}, "metrics": {name: [low, high]}}``;
        a metric whose tasks have fewer than 2 test items has no entry (or ``None``).

        Example:
            >>> r = Results("sl.incremental", "naive", TransferMatrix([[0.5], [1.0]]),
            ...             items={"accuracy": [[[0.0, 1.0]], [[1.0, 1.0]]]})
            >>> r.intervals()["cells"]["accuracy"][1][0], r.intervals()["metrics"]["average_final"]
            ([1.0, 1.0], [1.0, 1.0])
        """
        if self._intervals is None:
            self._intervals = _bootstrap_intervals(self)
        return self._intervals

    def to_dict(self) -> dict[str, Any]:
        """What ``results.json`` holds; ``metric_specs`` and ``summaries`` say each metric's direction."""
        return {
            "setting": self.setting,
            "method": self.method,
            "metrics": self.metrics(),
            "intervals": self.intervals(),
            "runtime_s": self.runtime_s,
            "transfer_matrix": self.matrix.to_list(),
            "curves": self.curves,
            "matrices": self.matrices,
            "metric_specs": {name: {**spec.to_dict(), "primary": name == self.matrix.metric}
                             for name, spec in self.all_specs().items()},
            "summaries": self.described_summaries(),
        }

    def described_summaries(self) -> dict[str, dict[str, Any]]:
        """Each reported summary's metric, kind and direction; the online performance follows the primary metric."""
        described = describe_summaries(self.all_specs(), self.matrix.metric)
        if self.online_performance is not None:
            described["online_performance"] = {"of": self.matrix.metric, "summary": "online",
                                               "higher_is_better": self.matrix.higher_is_better}
        return described

    def summary(self) -> str:
        """A printable report: the matrix (each cell ``value ± half-width``), then one metric per line."""
        intervals = self.intervals()
        cells = intervals["cells"].get(self.matrix.metric)
        lines = [f"{self.setting} / {self.method}  ({self.matrix.metric}, ± half the 95% bootstrap interval "
                 "over test items)" if cells else f"{self.setting} / {self.method}  ({self.matrix.metric})",
                 self.matrix.format(cells=cells), ""]
        shown_metrics = {name: value for name, value in {**self.metrics(), "runtime_s": self.runtime_s}.items()
                         if name != "metric"}
        width = max(len(name) for name in shown_metrics)
        lines += [f"{name:>{width}}: {self._metric_text(name, value)}" for name, value in shown_metrics.items()]
        if self.matrix.forgetting_by_task():
            lines.append(f"{'forgetting by task':>{width}}: {self._forgetting_text()}")
        if self._probes():
            lines += ["", self.probe_table()]
        return "\n".join(lines)

    def _metric_text(self, name: str, value: Any) -> str:
        """A metric as printed: ``0.6250 ± 0.0677``, ``n/a``, or the value as it is."""
        shown = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        interval = self.intervals()["metrics"].get(name)
        if interval is not None and value is not None:
            shown += f" ± {(interval[1] - interval[0]) / 2:.4f}"
        return shown

    def _forgetting_text(self) -> str:
        """Each task's forgetting with its 95% interval: ``task 0 0.125 [0.031, 0.219], ...``."""
        shown = []
        for task, value in enumerate(self.matrix.forgetting_by_task()):
            interval = self.intervals()["metrics"].get(f"forgetting_task_{task}")
            shown.append(f"task {task} {value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""))
        return ", ".join(shown)

    def _probes(self) -> list[MetricSpec]:
        """The specs of the metrics measured once per evaluation (one-column matrices)."""
        return [spec for name, spec in self.all_specs().items() if not spec.per_task and name in self.matrices]

    def probe_table(self) -> str:
        """The probes before training and after each phase, each ``value ± half-width``."""
        probes = self._probes()
        better = {True: "higher", False: "lower"}
        header = [self.probe_title, *[f"{spec.shown_name} ({better[spec.higher_is_better]} is better)"
                                      for spec in probes]]
        lines = [header] + [[label, *[self._probe_cell(spec.name, row) for spec in probes]]
                            for row, label in enumerate(self.matrix.row_labels())]
        widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
        return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines)

    def _probe_cell(self, name: str, row: int) -> str:
        """One cell of a one-column matrix as ``value ± half-width`` (the value alone without an interval)."""
        text = f"{self.matrices[name][row][0]:.3f}"
        cells = self.intervals()["cells"].get(name)
        if cells is not None:
            low, high = cells[row][0]
            text += f" ± {(high - low) / 2:.3f}"
        return text


def _bootstrap_intervals(results: Results) -> dict[str, Any]:
    """The cell and summary-metric intervals of ``results`` (the work behind :meth:`Results.intervals`)."""
    from sequoia import intervals

    cells: dict[str, Any] = {}
    metrics: dict[str, list[float] | None] = {}
    for name, items in results.items.items():
        if not intervals.resamplable(items):
            continue
        replicates = intervals.bootstrap_matrices(items)
        cells[name] = intervals.cell_intervals(replicates)
        spec, primary = results.spec(name), name == results.matrix.metric
        oriented = spec.higher_is_better
        if primary:
            forgetting = results.matrix.forgetting_by_task()
            for task in range(len(forgetting or [])):
                metrics[f"forgetting_task_{task}"] = intervals.statistic_interval(
                    replicates, lambda m, j=task: TransferMatrix(m, higher_is_better=oriented).forgetting_by_task()[j])
        for summary in summaries_of(spec, primary):
            metrics[spec.summary_name(summary, primary)] = intervals.statistic_interval(
                replicates, lambda m, s=summary: TransferMatrix(m, higher_is_better=oriented).summary(s))
    if results.online_items:
        metrics["online_performance"] = intervals.mean_interval(results.online_items)
    return {"cells": cells, "metrics": metrics}
