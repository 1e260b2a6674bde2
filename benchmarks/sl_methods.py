"""Do replay and EWC help on digits? The foundation's acceptance numbers, over several seeds.

* class_incremental: average final accuracy of `replay` (default buffer) against `naive`
  (target: at least 15 points higher);
* task_incremental: average forgetting of `ewc` against `naive` (target: at least 30% lower).

All methods use their default hyperparameters.

    python benchmarks/sl_methods.py [--seeds 0 1 2]
"""

import argparse

import numpy as np

from sequoia.methods import EWC, Naive, Replay
from sequoia.settings.sl import IncrementalSLSetting, TaskIncrementalSLSetting


def run(setting_cls, method_cls, seeds):
    results = [setting_cls().apply(method_cls(), seed=seed, progress=False) for seed in seeds]
    final = np.array([r.matrix.average_final() for r in results])
    forgetting = np.array([r.matrix.average_forgetting() for r in results])
    return final, forgetting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    seeds = parser.parse_args().seeds

    print(f"seeds: {seeds}")
    print(f"{'setting':<18}{'method':<8}{'avg final acc':>22}{'avg forgetting':>22}")
    table = {}
    for setting_cls in (IncrementalSLSetting, TaskIncrementalSLSetting):
        for method_cls in (Naive, Replay, EWC):
            final, forgetting = run(setting_cls, method_cls, seeds)
            table[setting_cls.level, method_cls.name] = (final.mean(), forgetting.mean())
            print(f"{setting_cls.level:<18}{method_cls.name:<8}{final.mean():>12.4f} ± {final.std():.4f}"
                  f"{forgetting.mean():>12.4f} ± {forgetting.std():.4f}")

    gain = 100 * (table["incremental", "replay"][0] - table["incremental", "naive"][0])
    cut = 100 * (1 - table["task_incremental", "ewc"][1] / table["task_incremental", "naive"][1])
    print()
    print(f"class_incremental: replay - naive average final accuracy = {gain:+.1f} points (target >= +15)")
    print(f"task_incremental : ewc cuts naive's average forgetting by {cut:.1f}% (target >= 30%)")


if __name__ == "__main__":
    main()
