"""Align a language model to your own sequence of preference tasks (JSONL files), then read the results.

Each task is a JSONL file (or a directory with train.jsonl and test.jsonl) in any
format sequoia reads: TRL's explicit format {"prompt", "chosen", "rejected"} (text
or chat messages), TRL's implicit format, HH-RLHF transcripts, PKU-SafeRLHF or
BeaverTails rows. This script writes two small demonstration tasks if you give it
none, then runs sequential DPO and replay on them and prints what each forgot.

    python examples/align_my_jsonl.py [--tasks a.jsonl,b.jsonl] [--model tiny-random] [--method dpo_lora]

The same from the command line:

    sequoia --setting pa.class_incremental --method dpo_lora --setting.tasks a.jsonl,b.jsonl
"""

import argparse
import json
import random
import tempfile
from pathlib import Path

from sequoia.learners import DPOLoRA
from sequoia.methods import DPOLoRAMethod, Replay
from sequoia.settings.pa import IncrementalPASetting


def demo_tasks(directory: Path) -> str:
    """Two toy tasks: answer politely (task 1), then answer briefly (task 2)."""
    rng = random.Random(0)
    questions = ["Where is the station?", "Can you help me?", "What time is it?", "Is this seat free?",
                 "How do I get to the museum?", "Could you pass the salt?", "Where can I buy tickets?"]
    styles = {"polite": ("Of course, happy to help.", "Figure it out yourself."),
              "brief": ("Yes.", "Well, let me think about that for quite a long while before answering.")}
    paths = []
    for name, (chosen, rejected) in styles.items():
        path = directory / f"{name}.jsonl"
        rows = [{"prompt": f"{rng.choice(questions)} ({i})", "chosen": chosen, "rejected": rejected}
                for i in range(48)]
        path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
        paths.append(str(path))
    return ",".join(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated JSONL files or directories (default: two demo tasks)")
    parser.add_argument("--model", default="tiny-random", help="tiny-random, smollm2-135m-instruct, a hub name or path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tasks = args.tasks or demo_tasks(Path(tempfile.mkdtemp()))
    setting = IncrementalPASetting(tasks=tasks, model=args.model, train_pairs_per_task=40, test_pairs_per_task=8,
                                   generations_per_task=0)
    learner_options = {"lr": 1e-2, "epochs": 3} if args.model == "tiny-random" else {}
    for method in (DPOLoRAMethod(), Replay(buffer_size=40)):
        results = setting.apply(method.use_learner(DPOLoRA(**learner_options)), seed=args.seed, progress=False)
        print(results.summary(), end="\n\n")


if __name__ == "__main__":
    main()
