"""Loading preference tasks: the shipped subsets, local files of every format, the hub offline."""

import json
import re

import pytest

from sequoia.errors import SequoiaError
from sequoia.settings.pa.pairs import PreferencePair
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.pa.sources import SEQUENCES, SHIPPED_DIR, SHIPPED_TASKS, load_task, read_pairs, task_specs

datasets = pytest.importorskip("datasets")


@pytest.mark.parametrize("name", SHIPPED_TASKS)
def test_shipped_tasks_load_with_license_and_source(name):
    task = load_task(name)
    assert len(task.train) >= (150 if name == "oasst" else 250) and len(task.test) >= 50
    assert all(p.chosen != p.rejected and p.prompt for p in task.train + task.test)
    assert (SHIPPED_DIR / name / "LICENSE").stat().st_size > 500
    assert "upstream" in (SHIPPED_DIR / name / "SOURCE.md").read_text().lower()


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


ROWS = [{"prompt": f"Q{i}", "chosen": "good", "rejected": "bad"} for i in range(8)]


def test_local_jsonl_json_and_parquet(tmp_path):
    jsonl = write_jsonl(tmp_path / "a.jsonl", ROWS)
    (tmp_path / "b.json").write_text(json.dumps(ROWS))
    datasets.Dataset.from_list(ROWS).to_parquet(str(tmp_path / "c.parquet"))
    expected = [PreferencePair.from_text(f"Q{i}", "good", "bad") for i in range(8)]
    for path in (jsonl, tmp_path / "b.json", tmp_path / "c.parquet"):
        task = load_task(str(path))
        assert task.train == expected and task.test is None
    assert load_task(str(jsonl)).name == "a"


def test_directory_with_train_and_test_files(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", ROWS)
    write_jsonl(tmp_path / "test.jsonl", ROWS[:2])
    task = load_task(str(tmp_path))
    assert len(task.train) == 8 and len(task.test) == 2 and task.name == tmp_path.name


def test_save_to_disk_dataset(tmp_path):
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS),
                          "test": datasets.Dataset.from_list(ROWS[:3])}).save_to_disk(tmp_path / "ds")
    task = load_task(str(tmp_path / "ds"))
    assert len(task.train) == 8 and len(task.test) == 3


def test_pku_saferlhf_and_beavertails_schemas_in_local_files(tmp_path):
    pku = write_jsonl(tmp_path / "pku.jsonl", [{"prompt": "Q", "response_0": "a", "response_1": "b",
                                                 "safer_response_id": 0, "better_response_id": 1}])
    assert read_pairs(pku) == [PreferencePair.from_text("Q", "a", "b")]
    beaver = write_jsonl(tmp_path / "bt.jsonl", [{"prompt": "Q", "response": "fine", "is_safe": True,
                                                   "category": {}},
                                                  {"prompt": "Q", "response": "harm", "is_safe": False,
                                                   "category": {}}])
    assert read_pairs(beaver) == [PreferencePair.from_text("Q", "fine", "harm")]


@pytest.mark.parametrize("content, message", [
    ('{"prompt": "Q", "chosen": "a", "rejected": "b"}\n{"prompt": "Q", "chosen": "a"}\n',
     "bad.jsonl, row 2: expected keys chosen and rejected"),
    ('{"prompt": "Q", "chosen": "a", "rejected": "b"}\n{not json\n', "bad.jsonl, row 2: invalid JSON"),
    ('["a", "b"]\n', "bad.jsonl, row 1: expected a JSON object"),
    ("\n", "bad.jsonl: no records"),
])
def test_malformed_files_name_the_file_and_row(tmp_path, content, message):
    (tmp_path / "bad.jsonl").write_text(content)
    with pytest.raises(SequoiaError, match=message):
        load_task(str(tmp_path / "bad.jsonl"))


def test_missing_file_and_offline_hub_are_one_line_errors(tmp_path):
    with pytest.raises(SequoiaError, match="preference data file not found"):
        load_task(str(tmp_path / "nope.jsonl"))
    with pytest.raises(SequoiaError) as error:
        load_task("someone/not-cached-preferences")
    assert "Hugging Face hub" in str(error.value) and "\n" not in str(error.value)


def test_a_task_too_small_to_split_names_itself(tmp_path):
    import numpy as np

    from sequoia.settings.pa import IncrementalPASetting

    setting = IncrementalPASetting(tasks=str(write_jsonl(tmp_path / "two.jsonl", ROWS[:2])), model="tiny-random")
    setting.rng = np.random.default_rng(0)
    with pytest.raises(SequoiaError, match="task 'two' has too few pairs"):
        setting.prepare()


CONSENT = re.compile(r"\b(yes|i consent|i agree|i authorize)\b", re.IGNORECASE)


def consenting(pairs, side: str) -> float:
    return sum(bool(CONSENT.search(getattr(pair, side))) for pair in pairs) / len(pairs)


def test_the_conflicting_sequence_prefers_consent_then_refusal():
    # What makes corrigibility_conflict conflict (docs/preference_alignment.md): the first task's chosen replies
    # consent to a change of goal, the second's refuse one, so the wording alone is preferred one way, then the other.
    assert task_specs("corrigibility_conflict") == ["corrigible_consent", "corrigible_refuse"]
    assert IncrementalPASetting(tasks="corrigibility_conflict").sequence_length() == 2
    consent, refuse = (load_task(name) for name in SEQUENCES["corrigibility_conflict"])
    for pairs in (consent.train, consent.test):
        assert consenting(pairs, "chosen") > 0.8 and consenting(pairs, "rejected") < 0.1
    for pairs in (refuse.train, refuse.test):
        assert consenting(pairs, "chosen") < 0.1 and consenting(pairs, "rejected") > 0.8


def test_the_default_sequence_has_a_name_and_ends_in_the_conflict():
    # The default run shows forgetting because its last two tasks conflict (docs/preference_alignment.md).
    assert task_specs("values_conflict") == task_specs(IncrementalPASetting().tasks)
    assert task_specs(IncrementalPASetting().tasks)[1:] == list(SEQUENCES["corrigibility_conflict"])
    assert SEQUENCES["values"][0] == SEQUENCES["values_conflict"][0] == "moral_stories"
