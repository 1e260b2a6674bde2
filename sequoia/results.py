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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class TransferMatrix:
    """Performance on every task's test set after every training phase (row 0: before)."""

    def __init__(self, rows: Any, metric: str = "accuracy") -> None:
        self.values = np.asarray(rows, dtype=float)
        if self.values.ndim != 2 or self.values.shape[0] < 1:
            raise ValueError(f"a transfer matrix needs rows of task scores, got {self.values.shape}")
        self.metric = metric

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
        final = self.values[-1]
        return [float(self.values[j + 1 :, j].max() - final[j]) for j in range(self.nb_tasks - 1)]

    def bwt(self) -> float | None:
        """Backward transfer (Lopez-Paz & Ranzato 2017)."""
        if not self._one_phase_per_task():
            return None
        n = self.nb_tasks
        just_trained = np.array([self.values[j + 1, j] for j in range(n - 1)])
        return float((self.values[-1, : n - 1] - just_trained).mean())

    def fwt(self) -> float | None:
        """Forward transfer against row 0, the performance at initialisation (GEM's ``b_j``)."""
        if not self._one_phase_per_task():
            return None
        n = self.nb_tasks
        before_own_phase = np.array([self.values[j, j] for j in range(1, n)])
        return float((before_own_phase - self.values[0, 1:]).mean())

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


PRIMARY_STATISTICS = ("average_final", "average_forgetting", "bwt", "fwt")
"""The summary metrics computed from the primary metric's transfer matrix."""


@dataclass
class Results:
    """What one run of a method on a setting produced.

    ``metrics()`` holds every number that depends only on the seed; ``runtime_s``
    is kept apart since it varies from run to run. ``matrix`` is the primary
    metric's transfer matrix; ``matrices`` those of every other metric the setting
    scores (PA: margins, drift...; RL: normalised return), whose final-row averages
    ``metrics()`` reports under their names; ``extra`` other numbers a domain adds
    (RL: the random policy's return); ``curves`` per-step series, such as the online
    performance of each stream chunk; ``samples`` example outputs (PA: generated
    replies), saved as ``samples.jsonl``. ``items`` holds, per metric, the score of
    every test item in every cell (``items[metric][row][task]``) and ``online_items``
    those of the online evaluation; :meth:`intervals` bootstraps them.

    ``capability`` names the capability probes (PA: ``mmlu``...), each with whether
    higher is better. A probe's matrix ``capability_<probe>`` has one column, and its
    ``alignment_tax_<probe>`` is what the base model (row 0) could do and the final
    model no longer does: ``base - final``, or ``final - base`` for a loss, so that a
    positive tax is always a loss of capability.
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
    capability: dict[str, bool] = field(default_factory=dict)
    _intervals: dict[str, Any] | None = field(default=None, repr=False)

    def alignment_tax(self) -> dict[str, float]:
        """Per probe, the capability lost from row 0 to the last row (positive: lost).

        Example:
            >>> r = Results("pa.incremental", "dpo_lora", TransferMatrix([[0.5], [0.6]]),
            ...             matrices={"capability_mmlu": [[0.40], [0.35]], "capability_text_nll": [[2.0], [2.5]]},
            ...             capability={"mmlu": True, "text_nll": False})
            >>> {name: round(tax, 2) for name, tax in r.alignment_tax().items()}
            {'mmlu': 0.05, 'text_nll': 0.5}
        """
        return {probe: tax_of(self.matrices[f"capability_{probe}"], higher)
                for probe, higher in self.capability.items() if f"capability_{probe}" in self.matrices}

    def metrics(self) -> dict[str, Any]:
        """The seed-determined metrics, by name."""
        return {
            "metric": self.matrix.metric,
            "average_final": self.matrix.average_final(),
            "average_forgetting": self.matrix.average_forgetting(),
            "bwt": self.matrix.bwt(),
            "fwt": self.matrix.fwt(),
            "online_performance": self.online_performance,
            "trainable_parameters": self.trainable_parameters,
            **{name: float(np.mean(rows[-1])) for name, rows in self.matrices.items()},
            **{f"alignment_tax_{probe}": tax for probe, tax in self.alignment_tax().items()},
            **self.extra,
        }

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
        return {
            "setting": self.setting,
            "method": self.method,
            "metrics": self.metrics(),
            "intervals": self.intervals(),
            "runtime_s": self.runtime_s,
            "transfer_matrix": self.matrix.to_list(),
            "curves": self.curves,
            "matrices": self.matrices,
            "capability": {probe: {"higher_is_better": higher, "matrix": f"capability_{probe}"}
                           for probe, higher in self.capability.items()},
        }

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
        if self.capability:
            lines += ["", self.capability_table()]
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

    def capability_table(self) -> str:
        """The capability probes before training and after each phase, each ``value ± half-width``."""
        probes = [probe for probe in self.capability if f"capability_{probe}" in self.matrices]
        better = {True: "higher", False: "lower"}
        header = ["capability", *[f"{probe} ({better[self.capability[probe]]} is better)" for probe in probes]]
        lines = [header] + [[label, *[self._probe_cell(f"capability_{probe}", row) for probe in probes]]
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


def tax_of(rows: Any, higher_is_better: bool) -> float:
    """``base - final`` of a one-column matrix (``final - base`` for a loss): the capability lost."""
    rows = np.asarray(rows, dtype=float)
    lost = rows[0].mean() - rows[-1].mean()
    return float(lost if higher_is_better else -lost)


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
        if name == results.matrix.metric:
            forgetting = results.matrix.forgetting_by_task()
            for task in range(len(forgetting or [])):
                metrics[f"forgetting_task_{task}"] = intervals.statistic_interval(
                    replicates, lambda m, j=task: TransferMatrix(m).forgetting_by_task()[j])
            for statistic in PRIMARY_STATISTICS:
                metrics[statistic] = intervals.statistic_interval(
                    replicates, lambda m, s=statistic: getattr(TransferMatrix(m), s)())
        else:
            metrics[name] = intervals.statistic_interval(replicates, lambda m: float(m[-1].mean()))
        probe = name.removeprefix("capability_")
        if name.startswith("capability_") and probe in results.capability:
            metrics[f"alignment_tax_{probe}"] = intervals.statistic_interval(
                replicates, lambda m, higher=results.capability[probe]: tax_of(m, higher))
    if results.online_items:
        metrics["online_performance"] = intervals.mean_interval(results.online_items)
    return {"cells": cells, "metrics": metrics}
