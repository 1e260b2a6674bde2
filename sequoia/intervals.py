"""95% intervals: bootstrap over a run's test items, and Student's t over seeds.

Within one run, the uncertainty of a score is the sampling error of its test set:
another draw of the same number of test items (images, preference pairs, episodes)
would give another score. :func:`bootstrap_matrices` draws those sets again, with
replacement, ``BOOTSTRAP_SAMPLES`` times. Every row of a transfer matrix scores the
same test items of a task, so one draw of a task's items is used in every row
(a paired bootstrap): a difference between rows, such as forgetting, then carries
only its own noise. Each summary metric is computed on every replicate matrix, and
its interval is the 2.5th and 97.5th percentiles of those values (the percentile
bootstrap, Efron & Tibshirani 1993, ch. 13). The generator is seeded by a constant,
so the intervals depend on the scores alone and a resumed run repeats them.

Across seeds, :func:`t_interval` gives the usual ``mean ± t(0.975, n-1) * sd / sqrt(n)``.

Example:
    >>> items = [[np.array([1.0, 0.0, 1.0, 1.0])]]  # one row, one task, four test items
    >>> low, high = percentile_interval(bootstrap_matrices(items)[:, 0, 0])
    >>> 0.0 <= low <= 0.75 <= high <= 1.0
    True
    >>> t_interval([0.5, 0.7, 0.6])  # doctest: +ELLIPSIS
    (0.6, 0.1, (0.351..., 0.848...))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 1000
"""Replicates per run: the interval ends move by about 0.002 between generators at 1000 (for accuracies)."""
BOOTSTRAP_SEED = 0


def percentile_interval(replicates: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` share of ``replicates``: (low, high)."""
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(np.asarray(replicates, dtype=float), [tail, 100 - tail])
    return float(low), float(high)


def resamplable(items: list[list[np.ndarray]]) -> bool:
    """Whether every task has at least 2 test items, the same number in every row (else: no interval)."""
    if not items:
        return False
    sizes = [len(scores) for scores in items[0]]
    return min(sizes, default=0) >= 2 and all([len(s) for s in row] == sizes for row in items)


def bootstrap_matrices(items: list[list[np.ndarray]], samples: int = BOOTSTRAP_SAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Replicate transfer matrices, shape ``(samples, rows, tasks)``.

    Args:
        items: ``items[i][j]`` holds one score per test item of task ``j`` in row ``i``;
            a task has the same items in every row.
        samples: how many replicates.
        seed: the generator's seed (fixed, so that intervals depend on scores only).
    """
    if not resamplable(items):
        raise ValueError("a bootstrap needs at least 2 test items per task, the same number in every row")
    rng = np.random.default_rng(seed)
    rows, tasks = len(items), len(items[0])
    replicates = np.empty((samples, rows, tasks))
    for task in range(tasks):
        scores = np.stack([np.asarray(items[row][task], dtype=float) for row in range(rows)])  # rows x n
        draws = rng.integers(scores.shape[1], size=(samples, scores.shape[1]))
        replicates[:, :, task] = scores[:, draws].mean(axis=2).T
    return replicates


def cell_intervals(replicates: np.ndarray) -> list[list[list[float]]]:
    """The interval of every cell of the replicate matrices: ``[[[low, high], ...], ...]``."""
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    return np.stack([low, high], axis=-1).tolist()


def statistic_interval(replicates: np.ndarray, statistic: Callable[[np.ndarray], float | None]
                       ) -> list[float] | None:
    """The interval of ``statistic`` (a matrix to a number, or ``None`` where undefined) over the replicates."""
    values = [statistic(matrix) for matrix in replicates]
    if any(value is None for value in values):
        return None
    return list(percentile_interval(values))


def mean_interval(items: Sequence[float]) -> list[float] | None:
    """The bootstrap interval of the mean of ``items`` (``None`` with fewer than 2)."""
    if len(items) < 2:
        return None
    replicates = bootstrap_matrices([[np.asarray(items, dtype=float)]])
    return list(percentile_interval(replicates[:, 0, 0]))


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, tuple[float, float]]:
    """Mean, sample standard deviation and Student's t interval of the mean of ``values`` (over seeds).

    With one value the standard deviation and the interval are NaN: one seed says nothing of the spread.
    """
    from scipy import stats

    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return mean, math.nan, (math.nan, math.nan)
    sd = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(data) - 1)) * sd / math.sqrt(len(data))
    return round(mean, 12), round(sd, 12), (mean - half, mean + half)


def half_width(interval: Sequence[float] | None) -> float | None:
    """Half the width of an interval, for ``value ± half-width`` displays."""
    return None if interval is None else (interval[1] - interval[0]) / 2
