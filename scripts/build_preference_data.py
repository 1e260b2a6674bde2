"""Build the preference subsets shipped in sequoia/data/preferences from the published data.

    python scripts/build_preference_data.py PATH_TO_SOURCE_DATA

PATH_TO_SOURCE_DATA holds one folder per source, as published (hh_rlhf_harmless,
hh_rlhf_helpful, oasst_helpful, ethics_utilitarianism, moral_stories, anthropic_evals_ai_risk), each
with its LICENSE and SOURCE.md. Each task gets train.jsonl and test.jsonl in TRL's
explicit conversational format, plus the source's LICENSE and a SOURCE.md. The
selection is seeded, so the output is the same every time.
"""

import csv
import gzip
import json
import random
import re
import shutil
import sys
from pathlib import Path

from sequoia.settings.pa.pairs import PreferencePair, from_hh_record, pairs_from_oasst_tree

OUT = Path(__file__).resolve().parent.parent / "sequoia" / "data" / "preferences"
TRAIN, TEST = 256, 128
MAX_PROMPT_CHARS, MAX_REPLY_CHARS = 600, 800
# OpenAssistant replies are long; training truncates completions anyway, so allow
# longer ones there rather than keep only a few dozen pairs.
LIMITS = {"oasst": (1500, 2000)}
HELD_OUT_TREES = 30
"""OpenAssistant trees the ``oasst`` task leaves out: the general-text capability probe's
(``build_capability_data.py``), so training on ``oasst`` never sees the probe's text."""


def hh(source: Path) -> list[PreferencePair]:
    with gzip.open(source / "test.jsonl.gz", "rt", encoding="utf-8") as handle:
        return [from_hh_record(json.loads(line)) for line in handle]


def oasst_trees(source: Path) -> tuple[list[dict], list[dict]]:
    """The OpenAssistant trees split, with a fixed seed, into (held out for the text probe, the rest)."""
    trees = [json.loads(line) for line in (source / "en_100_tree.jsonl").read_text(encoding="utf-8").splitlines()]
    random.Random(0).shuffle(trees)
    return trees[:HELD_OUT_TREES], trees[HELD_OUT_TREES:]


def oasst(source: Path) -> list[PreferencePair]:
    return [pair for tree in oasst_trees(source)[1] for pair in pairs_from_oasst_tree(tree)]


def ethics(source: Path) -> list[PreferencePair]:
    prompt = "Tell me about something that happened to you recently."
    with (source / "util_test.csv").open(encoding="utf-8") as handle:
        return [PreferencePair.from_text(prompt, better, worse) for better, worse in csv.reader(handle)]


def moral_stories(source: Path) -> list[PreferencePair]:
    halves: dict[str, dict] = {}
    for line in (source / "original_ms_norm_distance_test.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        halves.setdefault(row["ID"][:-1], {}).update(row)
    return [PreferencePair.from_text(f"Norm: {row['norm']}\nDescribe what the person does next.",
                                     row["moral_action"], row["immoral_action"])
            for row in halves.values() if "moral_action" in row and "immoral_action" in row]


CORRIGIBILITY_FILES = {"corrigible-more-HHH": "answer_matching_behavior",
                       "corrigible-neutral-HHH": "answer_matching_behavior",
                       "corrigible-less-HHH": "answer_not_matching_behavior"}
"""Which answer is desirable in each file (see the source's SOURCE.md)."""


def corrigibility(source: Path, files: tuple[str, ...] = tuple(CORRIGIBILITY_FILES)) -> list[PreferencePair]:
    pairs = []
    for stem in files:
        good_key = CORRIGIBILITY_FILES[stem]
        for line in (source / "human_generated_evals" / f"{stem}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            options = dict(re.findall(r"\(([A-Z])\) ([^\n]+)", row["question"]))
            bad_key = "answer_not_matching_behavior" if good_key == "answer_matching_behavior" else "answer_matching_behavior"
            good, bad = row[good_key].strip(" ()"), row[bad_key].strip(" ()")
            if good in options and bad in options:
                pairs.append(PreferencePair.from_text(row["question"], f"({good}) {options[good]}", f"({bad}) {options[bad]}"))
    return pairs


TASKS = {
    "harmlessness": ("hh_rlhf_harmless", hh),
    "helpfulness": ("hh_rlhf_helpful", hh),
    "oasst": ("oasst_helpful", oasst),
    "utilitarianism": ("ethics_utilitarianism", ethics),
    "moral_stories": ("moral_stories", moral_stories),
    "corrigibility": ("anthropic_evals_ai_risk", corrigibility),
    # The two halves of corrigibility as tasks of their own: the chosen reply consents to a change of goal
    # toward HHH (or a neutral one), or refuses a change away from it. In sequence they pull a policy that
    # reads only the answer's wording ("Yes" / "No") in opposite directions (docs/preference_alignment.md).
    "corrigible_consent": ("anthropic_evals_ai_risk",
                           lambda source: corrigibility(source, ("corrigible-more-HHH", "corrigible-neutral-HHH"))),
    "corrigible_refuse": ("anthropic_evals_ai_risk", lambda source: corrigibility(source, ("corrigible-less-HHH",))),
}


def keep(pair: PreferencePair, max_prompt: int, max_reply: int) -> bool:
    prompt_chars = sum(len(m["content"]) for m in pair.prompt)
    return (pair.chosen.strip() != pair.rejected.strip() and prompt_chars <= max_prompt
            and 0 < len(pair.chosen) <= max_reply and 0 < len(pair.rejected) <= max_reply)


def write_jsonl(path: Path, records: list[dict]) -> None:
    """One JSON object a line, UTF-8, non-ASCII kept as is."""
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_provenance(source: Path, target: Path, heading: str) -> None:
    """Copy the source's licenses to ``target`` and write a SOURCE.md: ``heading``, then the upstream SOURCE.md."""
    shutil.copy(source / "LICENSE", target / "LICENSE")
    for extra in source.glob("LICENSE.*"):
        shutil.copy(extra, target / extra.name)
    upstream = (source / "SOURCE.md").read_text(encoding="utf-8")
    body = upstream.split("\n", 1)[1] if "\n" in upstream else upstream
    (target / "SOURCE.md").write_text(f"{heading}\n\n## The upstream source\n\n{body}", encoding="utf-8")


def main(root: Path) -> None:
    for task, (folder, convert) in TASKS.items():
        source = root / folder
        max_prompt, max_reply = LIMITS.get(task, (MAX_PROMPT_CHARS, MAX_REPLY_CHARS))
        pairs = [p for p in convert(source) if keep(p, max_prompt, max_reply)]
        random.Random(0).shuffle(pairs)
        n_test = min(TEST, len(pairs) // 4)  # oasst has fewer pairs than the others
        test, train = pairs[:n_test], pairs[n_test : n_test + TRAIN]
        target = OUT / task
        target.mkdir(parents=True, exist_ok=True)
        for name, rows in (("train", train), ("test", test)):
            write_jsonl(target / f"{name}.jsonl", [pair.to_record() for pair in rows])
        write_provenance(source, target,
                         f"# {task}: a subset of {folder}\n\n{len(train)} train and {len(test)} test pairs, drawn with "
                         f"a fixed seed from {len(pairs)} usable pairs (prompt at most {max_prompt} characters, replies "
                         f"at most {max_reply}, replies differ), converted by scripts/build_preference_data.py.")
        print(f"{task:>15}: {len(train)} train, {len(test)} test (of {len(pairs)} usable)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
