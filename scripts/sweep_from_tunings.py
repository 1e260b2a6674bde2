"""One sweep file that evaluates several tuned arms side by side, from their tunings' ``best.yaml``.

``sequoia tune`` writes one ``best.yaml`` per tuning: the chosen configuration with the
protocol's evaluation options, ready for ``sequoia sweep``. A study compares several arms
(methods, each tuned on its own under the same protocol and trial budget); this script joins
their ``best.yaml`` files into one sweep: the options every arm shares go in ``base``, each
arm's own (its setting, method, fixed method options and tuned values) in one entry of the
``arm`` axis, in the order given. ``--set OPTION=VALUE`` replaces or adds a base option (the
evaluation may measure more than the trials did, for example the capability probes).

    python scripts/sweep_from_tunings.py tunings/naive tunings/ewc ... --seeds 0-4 \\
        --set eval.capability=mmlu,truthfulqa_mc1,text_nll --output studies/study.yaml

Example:
    >>> best = [{"setting": "pa.incremental", "method": "naive", "learner.lr": 0.002, "learner.epochs": "2"},
    ...         {"setting": "pa.incremental", "method": "ewc", "learner.lr": 0.0005, "learner.epochs": "2",
    ...          "method.ewc_lambda": 30.0}]
    >>> base, arms = split_common(best)
    >>> base
    {'learner.epochs': '2'}
    >>> arms[1]
    {'setting': 'pa.incremental', 'method': 'ewc', 'learner.lr': 0.0005, 'method.ewc_lambda': 30.0}
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ARM_KEYS = ("setting", "method")


def read_best(tuning: Path) -> dict[str, Any]:
    """The ``base`` of ``tuning/best.yaml`` (one line and exit 2 where it is missing or not a tuning's)."""
    from sequoia.errors import SequoiaError
    from sequoia.yaml_file import read_yaml

    path = tuning / "best.yaml"
    if not path.is_file():
        sys.exit(f"sweep_from_tunings: {path} does not exist (has the tuning {tuning} finished a trial?)")
    try:  # sequoia's reader: a damaged or oversized file is one line, as everywhere else
        loaded = read_yaml(path, "best.yaml")
    except SequoiaError as error:
        sys.exit(f"sweep_from_tunings: {error}")
    if not isinstance(loaded, dict) or not isinstance(loaded.get("base"), dict) or loaded.get("axes"):
        sys.exit(f"sweep_from_tunings: {path} is not a best.yaml of `sequoia tune` (a mapping with `base`, no axes)")
    return loaded["base"]


def split_common(bests: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The options every arm has with the same value (the base), and what is left of each arm.

    ``setting`` and ``method`` stay in every arm, shared or not: an arm names what it runs.
    """
    common = {key: value for key, value in bests[0].items()
              if key not in ARM_KEYS and all(key in best and best[key] == value for best in bests[1:])}
    return common, [{key: value for key, value in best.items() if key not in common} for best in bests]


def parse_set(entries: list[str]) -> dict[str, str]:
    """``OPTION=VALUE`` pairs of ``--set``."""
    pairs = {}
    for entry in entries:
        option, equals, value = entry.partition("=")
        if not equals or not option:
            sys.exit(f"sweep_from_tunings: --set {entry}: expected OPTION=VALUE")
        pairs[option] = value
    return pairs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tunings", nargs="+", type=Path, help="tuning directories, one per arm, in the arms' order")
    parser.add_argument("--seeds", default="0-4", help="the evaluation's seeds (0-4)")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="a base option to replace or add (repeat it)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once (1: each timing is a run alone)")
    parser.add_argument("--output", type=Path, required=True, help="the sweep file to write")
    options = parser.parse_args(argv)
    base, arms = split_common([read_best(tuning) for tuning in options.tunings])
    base.update(parse_set(options.set))
    sources = ", ".join(str(tuning / "best.yaml") for tuning in options.tunings)
    header = f"# Written by scripts/sweep_from_tunings.py from {sources}.\n"
    body = yaml.safe_dump({"base": base, "axes": {"arm": arms}, "seeds": options.seeds,
                           "launch": {"workers": options.workers}}, sort_keys=False, width=120)
    options.output.write_text(header + body)
    print(f"written: {options.output} ({len(arms)} arms, seeds {options.seeds})")


if __name__ == "__main__":
    main()
