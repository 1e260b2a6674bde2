"""Do the methods help on digits? Each method against `naive` on its natural metric, over several seeds.

* class_incremental, average final accuracy: `replay` (target: at least 15 points above
  naive) and `agem`, which should beat naive;
* task_incremental, average forgetting (max-based, see docs/metrics.md): `ewc` (target:
  at least 30% below naive), `lwf` and `si`, which should beat naive.

All methods use their default hyperparameters. Each cell is the mean over seeds with a
95% t-interval (Student's t, n - 1 degrees of freedom). The runs of one seed share
everything but the method (class splits, data order, initial weights), so a
comparison with naive is paired: the 95% t-interval of the per-seed differences. A
method beats naive only where that interval excludes 0; otherwise the comparison
reads "within noise". Whether the two methods' own intervals overlap is printed too.

    python benchmarks/sl_methods.py [--seeds 0 1 2]
"""

import argparse

import numpy as np
from scipy import stats

from sequoia.methods import AGEM, EWC, SI, LwF, Naive, Replay
from sequoia.settings.sl import IncrementalSLSetting, TaskIncrementalSLSetting

METHODS = (Naive, Replay, EWC, LwF, AGEM, SI)
# (setting, method, metric, whether lower is better): the comparisons with naive.
CLAIMS = (
    (IncrementalSLSetting, Replay, "final", False),
    (IncrementalSLSetting, AGEM, "final", False),
    (TaskIncrementalSLSetting, EWC, "forgetting", True),
    (TaskIncrementalSLSetting, LwF, "forgetting", True),
    (TaskIncrementalSLSetting, SI, "forgetting", True),
)


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for a single seed)."""
    if len(values) < 2:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(half)


def run(setting_cls, method_cls, seeds) -> dict[str, np.ndarray]:
    results = [setting_cls().apply(method_cls(), seed=seed, progress=False) for seed in seeds]
    return {"final": np.array([r.matrix.average_final() for r in results]),
            "forgetting": np.array([r.matrix.average_forgetting() for r in results])}


def paired(method: np.ndarray, naive: np.ndarray, lower_is_better: bool) -> str:
    """The paired comparison of one method with naive over the same seeds, in words."""
    gain = naive - method if lower_is_better else method - naive
    mean, half = interval(gain)
    (a, a_half), (b, b_half) = interval(method), interval(naive)
    overlap = "overlap" if abs(a - b) <= a_half + b_half else "do not overlap"
    if mean - half > 0:
        word = "better than naive, beyond noise"
    elif mean + half < 0:
        word = "worse than naive, beyond noise"
    else:
        word = "within noise of naive"
    return f"improvement {mean:+.4f} ± {half:.4f} (paired): {word}; the separate intervals {overlap}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    seeds = parser.parse_args().seeds

    print(f"seeds: {seeds}; mean ± 95% t-interval half-width over seeds")
    print(f"{'setting':<18}{'method':<8}{'avg final acc':>20}{'avg forgetting':>20}")
    table = {}
    for setting_cls in (IncrementalSLSetting, TaskIncrementalSLSetting):
        for method_cls in METHODS:
            table[setting_cls.level, method_cls.name] = run(setting_cls, method_cls, seeds)
            cells = "".join(f"{mean:>12.4f} ± {half:.4f}" for mean, half in
                            map(interval, table[setting_cls.level, method_cls.name].values()))
            print(f"{setting_cls.level:<18}{method_cls.name:<8}{cells}")

    print()
    for setting_cls, method_cls, metric, lower_is_better in CLAIMS:
        ours, naive = table[setting_cls.level, method_cls.name][metric], table[setting_cls.level, "naive"][metric]
        print(f"{setting_cls.level:<18}{method_cls.name:<8}{metric:<11} {paired(ours, naive, lower_is_better)}")
    gain = 100 * (table["incremental", "replay"]["final"].mean() - table["incremental", "naive"]["final"].mean())
    cut = 100 * (1 - table["task_incremental", "ewc"]["forgetting"].mean()
                 / table["task_incremental", "naive"]["forgetting"].mean())
    print(f"class_incremental: replay - naive average final accuracy = {gain:+.1f} points (target >= +15)")
    print(f"task_incremental : ewc cuts naive's average forgetting by {cut:.1f}% (target >= 30%)")


if __name__ == "__main__":
    main()
