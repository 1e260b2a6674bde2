"""Where preference tasks come from: the shipped subsets, local files, or the HF hub.

A task spec is one of

* a shipped task name: ``harmlessness``, ``helpfulness``, ``oasst``, ``utilitarianism``,
  ``moral_stories``, ``corrigibility`` (see ``sequoia/data/preferences``);
* a local file (``.jsonl``, ``.json``, ``.parquet``) or a directory holding
  ``train.*`` and ``test.*`` files, or a ``save_to_disk`` dataset;
* a hub dataset name, e.g. ``Anthropic/hh-rlhf``, ``PKU-Alignment/PKU-SafeRLHF``,
  ``PKU-Alignment/BeaverTails``, read with ``datasets.load_dataset``;
* a mixture of any of these joined by ``+`` (``harmlessness+helpfulness``): one task
  whose pairs are the union of theirs.

Records may be in any format of ``pairs.py``: TRL's explicit, implicit and
conversational formats, HH-RLHF transcripts, PKU-SafeRLHF, BeaverTails or
OpenAssistant trees; the format is recognised from the first record's keys.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sequoia import hf_datasets
from sequoia.errors import SequoiaError
from sequoia.settings.pa.pairs import (
    PreferencePair,
    RowError,
    from_pku_saferlhf_record,
    from_trl_record,
    pairs_from_beavertails,
    pairs_from_oasst_tree,
)
from sequoia.text_files import parse_json, read_utf8

SHIPPED_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "preferences"
SHIPPED_TASKS = ("harmlessness", "helpfulness", "oasst", "utilitarianism", "moral_stories", "corrigibility",
                 "corrigible_consent", "corrigible_refuse")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
WHAT = "preference data file"


SEQUENCES: dict[str, tuple[str, ...]] = {
    "values_conflict": ("moral_stories", "corrigible_consent", "corrigible_refuse"),
    "values": ("moral_stories", "utilitarianism", "helpfulness"),
    "corrigibility_conflict": ("corrigible_consent", "corrigible_refuse"),
}
"""Named task sequences ``--setting.tasks`` takes whole (docs/preference_alignment.md says how each was chosen)."""


def task_specs(text: str) -> list[str]:
    """The task specs ``--setting.tasks`` names: a named sequence (:data:`SEQUENCES`), or specs joined by commas.

    Example:
        >>> task_specs("values"), task_specs("harmlessness, oasst")
        (['moral_stories', 'utilitarianism', 'helpfulness'], ['harmlessness', 'oasst'])
    """
    named = SEQUENCES.get(text.strip())
    return list(named) if named else [spec.strip() for spec in text.split(",") if spec.strip()]


@dataclass
class PreferenceTask:
    """A named preference dataset with its train pairs and, where the source has them, test pairs."""

    name: str
    train: list[PreferencePair]
    test: list[PreferencePair] | None


def load_task(spec: str) -> PreferenceTask:
    """Load one task from a shipped name, a local path, or a hub name.

    Example:
        >>> task = load_task("harmlessness")
        >>> task.name, len(task.train) > 100, task.test is not None
        ('harmlessness', True, True)
    """
    if "+" in spec and not Path(spec).exists():
        return mixture([load_task(part.strip()) for part in spec.split("+") if part.strip()], spec)
    if spec in SHIPPED_TASKS:
        directory = SHIPPED_DIR / spec
        return PreferenceTask(spec, read_pairs(directory / "train.jsonl"), read_pairs(directory / "test.jsonl"))
    path = Path(spec)
    if path.is_file():
        return PreferenceTask(path.stem, read_pairs(path), None)
    if path.is_dir():
        return _load_directory(path)
    if path.suffix in DATA_SUFFIXES or spec.startswith((".", "/", "~")):
        raise SequoiaError(f"preference data file not found: {spec}")
    return _load_hub(spec)


def mixture(tasks: list[PreferenceTask], spec: str) -> PreferenceTask:
    """One task holding the pairs of ``tasks`` (its test split too, where every part has one).

    Example:
        >>> mixed = load_task("harmlessness+helpfulness")
        >>> mixed.name, len(mixed.train) == len(load_task("harmlessness").train) * 2
        ('harmlessness+helpfulness', True)
    """
    if len(tasks) < 2:
        raise SequoiaError(f"task mixture {spec!r} names fewer than 2 tasks (join task specs with +)")
    tests = [task.test for task in tasks]
    return PreferenceTask("+".join(task.name for task in tasks), [pair for task in tasks for pair in task.train],
                          None if any(test is None for test in tests) else [pair for test in tests for pair in test])


def _load_directory(path: Path) -> PreferenceTask:
    if hf_datasets.is_saved(path):
        return _from_dataset(path.name, hf_datasets.load_saved(path, "preference dataset"), str(path))
    splits = {}
    for split in ("train", "test"):
        found = [path / f"{split}{suffix}" for suffix in DATA_SUFFIXES if (path / f"{split}{suffix}").exists()]
        if found:
            splits[split] = read_pairs(found[0])
    if "train" not in splits:
        raise SequoiaError(f"{path} holds no train.jsonl, train.json or train.parquet (nor a save_to_disk dataset)")
    return PreferenceTask(path.name, splits["train"], splits.get("test"))


def _load_hub(name: str) -> PreferenceTask:
    import datasets

    try:
        with hf_datasets.quiet():
            loaded = datasets.load_dataset(name)
    except Exception as error:  # noqa: BLE001 - many error types, all mean "cannot load"
        raise SequoiaError(
            f"could not load preference dataset {name!r} from the Hugging Face hub ({type(error).__name__}); "
            "if you are offline, pass a local JSONL/JSON/parquet file or directory instead"
        ) from error
    return _from_dataset(name.rsplit("/", 1)[-1], loaded, name)


def _from_dataset(name: str, loaded: Any, source: str) -> PreferenceTask:
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        train_split = "train" if "train" in loaded else next(iter(loaded))
        train = records_to_pairs(list(enumerate(loaded[train_split], start=1)), f"{source} [{train_split}]")
        test = (records_to_pairs(list(enumerate(loaded["test"], start=1)), f"{source} [test]")
                if "test" in loaded else None)
        return PreferenceTask(name, train, test)
    return PreferenceTask(name, records_to_pairs(list(enumerate(loaded, start=1)), source), None)


def read_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(row number, record) for every record of a JSONL, JSON or parquet file (rows count from 1)."""
    if not path.exists():
        raise SequoiaError(f"preference data file not found: {path}")
    if not path.is_file():
        raise SequoiaError(f"preference data file {path} is a directory; expected a .jsonl, .json or .parquet file")
    readers = {".jsonl": _jsonl_records, ".json": _json_records, ".parquet": _parquet_records}
    if path.suffix not in readers:
        raise SequoiaError(f"{path}: expected a .jsonl, .json or .parquet file")
    return readers[path.suffix](path)


def _jsonl_records(path: Path) -> list[tuple[int, Any]]:
    return [(number, parse_json(line, f"{path}, row {number}"))
            for number, line in enumerate(read_utf8(path, WHAT).splitlines(), start=1) if line.strip()]


def _json_records(path: Path) -> list[tuple[int, Any]]:
    loaded = parse_json(read_utf8(path, WHAT), str(path))
    rows = loaded.get("data") if isinstance(loaded, dict) else loaded
    if not isinstance(rows, list):
        raise SequoiaError(f"{path}: expected a list of records (or {{\"data\": [...]}})")
    return list(enumerate(rows, start=1))


def _parquet_records(path: Path) -> list[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        return list(enumerate(pq.read_table(path).to_pylist(), start=1))
    except Exception as error:  # noqa: BLE001 - pyarrow's errors for a damaged file vary
        raise SequoiaError(f"{path}: not a readable parquet file ({type(error).__name__})") from error


def read_pairs(path: Path) -> list[PreferencePair]:
    """Every pair in a file, in its format; a malformed row raises an error naming the file and row."""
    return records_to_pairs(read_records(path), str(path))


def _row_format(first: dict[str, Any]):
    """The function that turns one record into its pairs, for the format the first record has."""
    if "message_tree_id" in first:
        return pairs_from_oasst_tree
    if "response_0" in first:
        return lambda record: [from_pku_saferlhf_record(record)]
    return lambda record: [from_trl_record(record)]


def _check_objects(records: list[tuple[int, Any]], source: str) -> None:
    for number, record in records:
        if not isinstance(record, dict):
            raise SequoiaError(f"{source}, row {number}: expected a JSON object, got {type(record).__name__}")


def records_to_pairs(records: list[tuple[int, Any]], source: str) -> list[PreferencePair]:
    """Convert numbered records, recognising the format from the first one."""
    if not records:
        raise SequoiaError(f"{source}: no records")
    _check_objects(records, source)
    first = records[0][1]
    pairs: list[PreferencePair] = []
    if "is_safe" in first and "response" in first:
        try:
            return list(pairs_from_beavertails([record for _, record in records]))
        except RowError as error:
            raise SequoiaError(f"{source}: {error}") from error
    pairs_of = _row_format(first)
    for number, record in records:
        try:
            pairs.extend(pairs_of(record))
        except RowError as error:
            raise SequoiaError(f"{source}, row {number}: {error}") from error
    if not pairs:
        raise SequoiaError(f"{source}: no usable preference pairs")
    return pairs
