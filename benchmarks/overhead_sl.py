"""Framework overhead on SL: sequoia's `naive` digits run against a bare torch loop.

Both train the same MLP with the same optimizer, batch size and number of epochs
on the same class-incremental digits tasks, and evaluate every task after every
task, in one process. Prints the median wall time of each over several repeats
and their ratio (target: at most 1.10), for sequoia in memory and for sequoia with a
run directory as the CLI runs it (a checkpoint per task, a metrics.jsonl line per
step). The final results files are left out of the timing: their two plots take about
0.25 s once per run, and the bare loop makes none.

    python benchmarks/overhead_sl.py [--repeats 7]
"""

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from sequoia.learners import Classifier
from sequoia.methods.naive import Naive
from sequoia.runs import Run, describe
from sequoia.settings.sl import IncrementalSLSetting


class RunWithoutReport(Run):
    """A run directory with checkpoints and metrics.jsonl, but no final plots."""

    def finish(self, results) -> None:
        self.close()


def framework_run(seed: int, with_run_dir: bool = False) -> float:
    start = time.perf_counter()
    setting, method = IncrementalSLSetting(), Naive().use_learner(Classifier())
    run = RunWithoutReport.new(tempfile.mkdtemp(), describe(setting, method, seed)) if with_run_dir else None
    setting.apply(method, seed=seed, progress=False, run=run)
    return time.perf_counter() - start


def bare_run(tasks, seed: int, hp: Classifier) -> float:
    """The same work written directly in torch: no settings, methods or plugins."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    inputs = int(np.prod(tasks[0][0][0].shape[1:]))
    model = nn.Sequential(nn.Flatten(), nn.Linear(inputs, hp.hidden_size), nn.ReLU(), nn.Linear(hp.hidden_size, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.lr)
    shuffle = torch.Generator().manual_seed(seed)

    def evaluate():
        model.eval()
        with torch.no_grad():
            return [float((model(x).argmax(-1) == y).float().mean()) for _, (x, y) in tasks]

    rows = [evaluate()]
    for (x, y), _ in tasks:
        model.train()
        for _ in range(hp.epochs):
            order = torch.randperm(len(y), generator=shuffle)
            for begin in range(0, len(y), hp.batch_size):
                rows_ = order[begin : begin + hp.batch_size]
                loss = nn.functional.cross_entropy(model(x[rows_]), y[rows_])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        rows.append(evaluate())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    setting = IncrementalSLSetting()
    setting.rng = np.random.default_rng(0)
    setting.prepare()  # the bare loop gets the same task tensors, prepared outside its timing
    tasks = setting._tasks
    hp = Classifier()

    framework_run(0, with_run_dir=True), bare_run(tasks, 0, hp)  # warm-up: imports, dataset cache, allocator
    framework, with_files, bare = [], [], []
    for repeat in range(args.repeats):
        framework.append(framework_run(repeat))
        with_files.append(framework_run(repeat, with_run_dir=True))
        bare.append(bare_run(tasks, repeat, hp))
    f, w, b = statistics.median(framework), statistics.median(with_files), statistics.median(bare)
    print(f"digits class_incremental, {setting.nb_tasks} tasks, {hp.epochs} epochs, batch {hp.batch_size}, "
          f"{args.repeats} repeats (torch threads: {torch.get_num_threads()})")
    print(f"sequoia naive : {f:.3f} s (median)")
    print(f"sequoia naive, run directory : {w:.3f} s (median)")
    print(f"bare torch    : {b:.3f} s (median)")
    print(f"ratio         : {f / b:.3f}  (target <= 1.10)")
    print(f"ratio with run directory : {w / b:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
