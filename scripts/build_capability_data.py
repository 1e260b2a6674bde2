"""Build the capability probes shipped in sequoia/data/capability from the published data.

    python scripts/build_capability_data.py PATH_TO_SOURCE_DATA

PATH_TO_SOURCE_DATA holds the folders ``mmlu``, ``truthfulqa`` and ``oasst_helpful`` as
published, each with its LICENSE and SOURCE.md. Each probe gets ``items.jsonl``, the
source's LICENSE and a SOURCE.md. The selection is seeded, so the output is the same
every time.

* ``mmlu``: 4 test questions from each of the 57 subjects (228), in cloze form: the
  question is the prompt and each answer text a reply.
* ``truthfulqa_mc1``: 200 questions of TruthfulQA v1 (the version most published MC1
  numbers use), their MC1 options shuffled (upstream always lists the true one first).
* ``text``: every human-written assistant reply in the OpenAssistant trees
  that the shipped ``oasst`` preference task does not use (see
  ``build_preference_data.py``), for the general-text log-likelihood probe.
"""

import csv
import json
import random
import sys
from pathlib import Path

from build_preference_data import HELD_OUT_TREES, oasst_trees, write_jsonl, write_provenance

OUT = Path(__file__).resolve().parent.parent / "sequoia" / "data" / "capability"
MMLU_PER_SUBJECT, TRUTHFULQA_ITEMS = 4, 200
MAX_QUESTION_CHARS, MAX_CHOICE_CHARS = 500, 200
TEXT_PROMPT_CHARS, TEXT_REPLY_CHARS = (1, 1000), (100, 3000)


def mmlu(source: Path) -> list[dict]:
    rng = random.Random(0)
    items = []
    for path in sorted((source / "data" / "test").glob("*_test.csv")):
        subject = path.name.removesuffix("_test.csv")
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [row for row in csv.reader(handle)
                    if len(row[0]) <= MAX_QUESTION_CHARS and max(map(len, row[1:5])) <= MAX_CHOICE_CHARS]
        for row in rng.sample(rows, MMLU_PER_SUBJECT):
            items.append({"question": row[0], "choices": row[1:5], "answer": "ABCD".index(row[5]),
                          "subject": subject})
    rng.shuffle(items)
    return items


def truthfulqa(source: Path) -> list[dict]:
    rng = random.Random(0)
    questions = json.loads((source / "v1" / "mc_task.json").read_text(encoding="utf-8"))
    items = []
    for row in rng.sample(questions, TRUTHFULQA_ITEMS):
        options = list(row["mc1_targets"].items())
        rng.shuffle(options)
        items.append({"question": row["question"], "choices": [text for text, _ in options],
                      "answer": [label for _, label in options].index(1)})
    return items


def _human_replies(node: dict, history: list[dict]):
    """(conversation so far, human reply) for every human-written assistant reply of a tree."""
    if node["role"] == "prompter":
        history = history + [{"role": "user", "content": node["text"]}]
        if not node.get("synthetic"):
            for reply in node.get("replies", []):
                if not reply.get("synthetic") and not reply.get("deleted"):
                    yield history, reply["text"]
    else:
        history = history + [{"role": "assistant", "content": node["text"]}]
    for reply in node.get("replies", []):
        yield from _human_replies(reply, history)


def text(source: Path) -> list[dict]:
    items = []
    for tree in oasst_trees(source)[0]:
        for prompt, reply in _human_replies(tree["prompt"], []):
            prompt_chars = sum(len(message["content"]) for message in prompt)
            if TEXT_PROMPT_CHARS[0] <= prompt_chars <= TEXT_PROMPT_CHARS[1] \
                    and TEXT_REPLY_CHARS[0] <= len(reply) <= TEXT_REPLY_CHARS[1]:
                items.append({"prompt": prompt, "text": reply})
    random.Random(0).shuffle(items)
    return items


PROBES = {"mmlu": ("mmlu", mmlu), "truthfulqa_mc1": ("truthfulqa", truthfulqa), "text": ("oasst_helpful", text)}
HOW = {
    "mmlu": f"{MMLU_PER_SUBJECT} test questions per subject (question at most {MAX_QUESTION_CHARS} characters, "
            f"choices at most {MAX_CHOICE_CHARS}), in a seeded random order",
    "truthfulqa_mc1": f"{TRUTHFULQA_ITEMS} questions of v1/mc_task.json drawn with a fixed seed, with their mc1 "
                      "options shuffled (`answer` is the index of the true one)",
    "text": f"every human-written (non-synthetic) assistant reply of {TEXT_REPLY_CHARS[0]} to "
            f"{TEXT_REPLY_CHARS[1]} characters, after a conversation of at most {TEXT_PROMPT_CHARS[1]}, in the "
            f"{HELD_OUT_TREES} trees that the `oasst` preference task leaves out",
}


def main(root: Path) -> None:
    for probe, (folder, convert) in PROBES.items():
        source, target = root / folder, OUT / probe
        items = convert(source)
        target.mkdir(parents=True, exist_ok=True)
        write_jsonl(target / "items.jsonl", items)
        write_provenance(source, target, f"# {probe}: a capability probe drawn from {folder}\n\n{len(items)} items: "
                                         f"{HOW[probe]}; written by scripts/build_capability_data.py. Evaluation only: "
                                         "never train on them.")
        print(f"{probe:>15}: {len(items)} items")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
