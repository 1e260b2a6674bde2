"""Each task's accuracy after the last task, and just after its own training, per configuration over seeds.

``sequoia compare`` summarises a transfer matrix by its averages (final, forgetting). On a
sequence whose tasks conflict those hide what happened: a method that never learns the second
task forgets nothing of the first, and its average final accuracy is that of one that learns
the second and forgets the first. This prints, per configuration and task, the final accuracy
(the last row of the transfer matrix, ``a[T, j]``) and the accuracy just after the task's own
training (``a[j + 1, j]``; their mean over tasks is the learning accuracy of Riemer et al. 2019,
"Learning to Learn without Forgetting by Maximizing Transfer and Minimizing Interference", ICLR),
each as mean ± half the 95% Student's t interval over seeds, as ``sequoia compare`` writes
intervals. Row 0 of a transfer matrix is the model before training, as sequoia writes it.

    python scripts/final_per_task.py studies/results/conflict_rerun [--markdown]

Example:
    >>> per_task([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    {'final': [0.2, 0.8], 'just_trained': [0.9, 0.8]}
"""

from __future__ import annotations

import argparse
import sys

from sequoia.errors import SequoiaError
from sequoia.experiments.report import cell, markdown_table, text_table
from sequoia.experiments.summary import collect, group_runs, seed_statistics


def per_task(matrix: list[list[float]]) -> dict[str, list[float]]:
    """The last row of a transfer matrix (row 0: before training), and each task's score after its own training.

    A matrix of two rows is one training phase over every task (``pa.multi_task``): there the
    score after a task's training is its final score.

        >>> per_task([[0.5, 0.5], [0.7, 0.6]])
        {'final': [0.7, 0.6], 'just_trained': [0.7, 0.6]}
    """
    tasks = len(matrix[0])
    if len(matrix) == 2:
        return {"final": list(matrix[-1]), "just_trained": list(matrix[-1])}
    if len(matrix) != tasks + 1:
        raise SequoiaError(f"a transfer matrix of {len(matrix)} rows and {tasks} tasks: expected {tasks + 1} rows "
                           "(the model before training, then one row per task) or 2 (one phase over every task)")
    return {"final": list(matrix[-1]), "just_trained": [matrix[j + 1][j] for j in range(tasks)]}


def rows(paths: list[str]) -> tuple[list[str], list[list[str]]]:
    """One row per configuration: its label, seeds, and per task its final and just-trained accuracy."""
    configurations = group_runs(collect(paths))
    tasks = None
    table = []
    for configuration in configurations:
        scores = {run.seed: per_task(run.results["transfer_matrix"]) for run in configuration.runs
                  if run.results.get("transfer_matrix")}
        if not scores:
            continue
        tasks = tasks or len(next(iter(scores.values()))["final"])
        cells = [cell(seed_statistics({seed: score[kind][j] for seed, score in scores.items()}))
                 for j in range(tasks) for kind in ("final", "just_trained")]
        table.append([configuration.label, str(len(scores)), *cells])
    if not table:
        raise SequoiaError(f"{', '.join(paths)}: no run with a transfer matrix")
    header = ["configuration", "seeds", *(f"task {j} {kind}" for j in range(tasks or 0)
                                          for kind in ("final", "after its training"))]
    return header, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="+", help="run or sweep directories, as for sequoia compare")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (else plain text)")
    options = parser.parse_args(argv)
    try:
        header, table = rows(options.directories)
    except SequoiaError as error:
        print(f"final_per_task: {error}", file=sys.stderr)
        return 2
    print("mean ± half the 95% t interval over seeds")
    print(markdown_table(header, table) if options.markdown else text_table(header, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
