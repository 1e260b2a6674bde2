"""One evaluation row of the default PA run (3 tasks' test pairs and 3 capability probes), timed.

The default setting (``sequoia --setting class_incremental --method dpo_lora``: Moral
Stories, then consent to a change of goal, then refusal of one, 64 test pairs each; MMLU,
TruthfulQA MC1 and held-out text, 24 items each) scores an untrained ``dpo_lora``
method, as the run does before training (row 0, which also tokenizes every item) and
again (a later row, tokens cached). Layouts of the same scoring, in this process,
taking turns:

* ``packed``: replies to the same prompt scored together, the prompt computed once, the
  groups packed into rows without padding, the beginning common to a row's prompts
  computed once (the default: ``--learner.packing true --learner.stems true``);
* ``unstemmed``: packed, but every prompt whole (``--learner.stems false``);
* ``padded``: one left-padded row per reply (``--learner.packing false``), TRL's layout.

    python benchmarks/pa_eval.py [--dtype auto|float32|bfloat16] [--rounds 2] [--layouts packed,unstemmed,padded]
                                 [--model NAME] [--tasks SEQUENCE] [--json PATH]

``--tasks values`` times the previous default sequence (Moral Stories, ETHICS
utilitarianism, HH-RLHF helpfulness), a column of the table in docs/scale.md.

Run on a checkout without the ``packing`` option, it times that version's scoring alone
(``before``), so a change can be measured by running this file against both; on one
without ``stems``, ``packed`` is that version's packed layout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def evaluator(args: argparse.Namespace, options: dict[str, bool]):
    """A prepared default setting and a configured, untrained dpo_lora method with the learner ``options``."""
    from sequoia.learners import DPOLoRA
    from sequoia.methods.preference import DPOLoRAMethod
    from sequoia.settings.pa import IncrementalPASetting

    tasks = {"tasks": args.tasks} if args.tasks else {}  # else the setting's own default
    setting = IncrementalPASetting(model=args.model, dtype=args.dtype, **tasks)
    setting.rng, setting.progress = np.random.default_rng(0), False
    setting.prepare()
    method = DPOLoRAMethod().use_learner(DPOLoRA(**options))
    torch.manual_seed(0)
    method.configure(setting.view())
    return setting, method


def timed(setting, method) -> float:
    start = time.perf_counter()
    setting.evaluate(method)
    return time.perf_counter() - start


def print_report(args: argparse.Namespace, report: dict) -> None:
    print(f"one evaluation row of the PA run on {args.tasks or 'the default tasks'}, model {args.model} "
          f"({report['dtype']}), {report['threads']} threads")
    for name, row in report["layouts"].items():
        print(f"  {name:<9} row 0 {row['first_row_s']:6.1f} s, later rows {row['later_row_s']:6.1f} s (median of "
              f"{len(row['later_rows_s'])})")
    for other in ("unstemmed", "padded"):
        if {"packed", other} <= set(report["layouts"]):
            ratio = report["layouts"]["packed"]["later_row_s"] / report["layouts"][other]["later_row_s"]
            report[f"packed_to_{other}"] = ratio
            print(f"  packed / {other}, later rows: {ratio:.3f}")


LAYOUTS = {"packed": {"packing": True, "stems": True}, "unstemmed": {"packing": True, "stems": False},
           "padded": {"packing": False}}


def chosen_layouts(parser: argparse.ArgumentParser, names: str) -> dict[str, dict[str, bool]]:
    """``--layouts`` as learner options; ``before`` alone on a version without the ``packing`` option."""
    from sequoia.learners import DPOLoRA

    fields = DPOLoRA.__dataclass_fields__
    if "packing" not in fields:
        return {"before": {}}
    chosen = [name.strip() for name in names.split(",")]
    if unknown := sorted(set(chosen) - set(LAYOUTS)):
        parser.error(f"--layouts: unknown {unknown}; expected a comma-separated subset of {', '.join(LAYOUTS)}")
    if "stems" not in fields and "unstemmed" in chosen:
        parser.error("--layouts: this version has no stems option, so no unstemmed layout")
    return {name: {key: value for key, value in LAYOUTS[name].items() if key in fields} for name in chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=2, help="later rows timed per layout")
    parser.add_argument("--layouts", default="packed,padded", help="comma-separated: packed, unstemmed, padded")
    parser.add_argument("--tasks", help="--setting.tasks (default: the setting's own)")
    parser.add_argument("--json", help="write the measurements to this file")
    args = parser.parse_args()
    layouts = chosen_layouts(parser, args.layouts)
    from sequoia.errors import SequoiaError

    try:
        built = {name: evaluator(args, options) for name, options in layouts.items()}
    except SequoiaError as error:  # a bad --tasks or --model: the one line the CLI would print
        parser.error(str(error))
    resolved = built[next(iter(built))][1].base_learner.model.dtype
    first = {name: timed(*pair) for name, pair in built.items()}  # row 0: every item tokenized, base scores kept
    later: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(args.rounds):
        for name, pair in built.items():
            later[name].append(timed(*pair))
    report = {"model": args.model, "tasks": args.tasks or "default", "dtype": str(resolved).removeprefix("torch."),
              "threads": torch.get_num_threads(),
              "layouts": {name: {"first_row_s": first[name], "later_row_s": statistics.median(later[name]),
                                 "later_rows_s": later[name]} for name in built}}
    print_report(args, report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
