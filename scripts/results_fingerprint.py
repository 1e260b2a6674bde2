"""Record, or check, the numbers a fixed set of runs produces: for refactors that must not change results.

Each run goes through the CLI (`sequoia --setting ... --method ... --seed N --directory D`),
in one process after the other, and what its `results.json` holds is kept: every transfer
matrix (the primary one and the others), every metric but the run time, and each metric's
spec where the results name one. `--write FILE` stores them; `--check FILE` runs them again
and lists every number that differs (exit 1), or says that all are identical (exit 0).

    python scripts/results_fingerprint.py --write before.json     # on the commit before a refactor
    python scripts/results_fingerprint.py --check before.json     # on the refactored code

The runs: SL, RL and PA smoke runs on 3 seeds each (several methods, capability probes
included) and the default SL run. Floating-point results depend on the CPU's instruction
set: compare fingerprints made on the same kind of machine (`lscpu`).

`scripts/results_fingerprint_reference.json` is the fingerprint of the code before the core
refactor that gave metrics their specs (an AMD EPYC with AVX-512 and AVX512_BF16, 2 cores);
`--check` it on such a machine, or write a new one from that commit on another kind.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

RUNS = [
    *[(["--setting", "sl.class_incremental", "--method", method, "--preset", "smoke"], seed)
      for method in ("naive", "replay", "ewc") for seed in range(3)],
    *[(["--setting", "sl.task_incremental", "--method", "lwf", "--preset", "smoke"], seed) for seed in range(3)],
    *[(["--setting", "rl.incremental", "--method", method, "--preset", "smoke"], seed)
      for method in ("naive", "ewc") for seed in range(3)],
    *[(["--setting", "pa.incremental", "--method", "dpo_lora", "--preset", "smoke",
        "--eval.capability_items", "8"], seed) for seed in range(3)],
    (["--setting", "sl.class_incremental", "--method", "naive"], 0),
]
"""Each run's options and seed."""

SKIPPED = ("runtime_s",)


def fingerprint(results: dict) -> dict:
    """What must not change: the matrices and the metrics of one ``results.json`` (run time left out)."""
    return {
        "transfer_matrix": results["transfer_matrix"],
        "matrices": results.get("matrices", {}),
        "metrics": {name: value for name, value in results["metrics"].items() if name not in SKIPPED},
    }


def run_all() -> dict[str, dict]:
    from sequoia.cli import main

    found = {}
    with tempfile.TemporaryDirectory() as scratch:
        for number, (options, seed) in enumerate(RUNS):
            key = " ".join([*options, "--seed", str(seed)])
            print(f"[{number + 1}/{len(RUNS)}] sequoia {key}", file=sys.stderr, flush=True)
            directory = Path(scratch) / f"run-{number}"
            code = main([*options, "--seed", str(seed), "--directory", str(directory), "--quiet"])
            if code:
                raise SystemExit(f"sequoia {key} exited {code}")
            found[key] = fingerprint(json.loads((directory / "results.json").read_text()))
    return found


def differences(before: object, after: object, where: str = "") -> list[str]:
    """Every place where two fingerprints differ (exact float equality; NaN equals NaN).

    Example:
        >>> differences({"a": [1.0, 2.0]}, {"a": [1.0, 2.5]})
        ['a[1]: 2.0 -> 2.5']
    """
    if isinstance(before, dict) and isinstance(after, dict):
        found = [f"{where}.{key}".lstrip(".") + ": missing" for key in before if key not in after]
        found += [f"{where}.{key}".lstrip(".") + ": new" for key in after if key not in before]
        for key in [key for key in before if key in after]:
            found += differences(before[key], after[key], f"{where}.{key}".lstrip("."))
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [line for index, (b, a) in enumerate(zip(before, after))
                for line in differences(b, a, f"{where}[{index}]")]
    both_nan = isinstance(before, float) and isinstance(after, float) and math.isnan(before) and math.isnan(after)
    return [] if before == after or both_nan else [f"{where}: {before} -> {after}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, help="store the fingerprint of the runs in this file")
    action.add_argument("--check", type=Path, help="run again and compare with this stored fingerprint")
    args = parser.parse_args()
    if args.check and not args.check.is_file():
        parser.error(f"--check {args.check}: no such file (write one with --write first)")
    found = run_all()
    if args.write:
        args.write.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
        print(f"wrote the fingerprint of {len(found)} runs to {args.write}")
        return 0
    changed = differences(json.loads(args.check.read_text()), json.loads(json.dumps(found)))
    for line in changed:
        print(line)
    print(f"{len(found)} runs: " + (f"{len(changed)} numbers differ" if changed else "every number identical"))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
