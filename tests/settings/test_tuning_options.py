"""The two setting options the tuning protocols rest on, in every domain.

``task_slice`` keeps part of the task sequence (``first_tasks``: trials see ``:K``, the
evaluation ``K:``); ``evaluate_on: validation`` scores items held out of the training data,
never a test item (``validation``).
"""

import json

import numpy as np
import pytest

from sequoia.errors import SequoiaError
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.rl import IncrementalRLSetting
from sequoia.settings.rl.setting import TEST_SEEDS, VALIDATION_SEEDS
from sequoia.settings.sl import IncrementalSLSetting


def prepared(setting, seed=0):
    setting.rng = np.random.default_rng(seed)
    setting.prepare()
    return setting


def rows(x) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def test_sl_task_slices_partition_the_sequence_and_keep_each_tasks_classes():
    first = prepared(IncrementalSLSetting(nb_tasks=5, task_slice=":2"))
    rest = prepared(IncrementalSLSetting(nb_tasks=5, task_slice="2:"))
    assert first.nb_tasks_total == 2 and rest.nb_tasks_total == 3
    assert first.task_classes == [[0, 1], [2, 3]] and rest.task_classes == [[4, 5], [6, 7], [8, 9]]
    first_labels = {int(label) for _, (_, y) in first.prepared.tasks for label in y}
    rest_labels = {int(label) for _, (_, y) in rest.prepared.tasks for label in y}
    assert first_labels == {0, 1, 2, 3} and rest_labels == {4, 5, 6, 7, 8, 9}


@pytest.mark.parametrize("task_slice", ["5:", "3:3"])
def test_a_slice_that_keeps_no_task_is_one_line(task_slice):
    with pytest.raises(SequoiaError, match=f"--setting.task_slice {task_slice} keeps none of the 5 tasks"):
        prepared(IncrementalSLSetting(nb_tasks=5, task_slice=task_slice))


@pytest.mark.parametrize("text", ["1", "a:b", "-1:", "1:2:3"])
def test_a_malformed_slice_is_refused_when_the_options_are_read(text):
    with pytest.raises(Exception, match="task_slice"):
        IncrementalSLSetting(task_slice=text)


def test_sl_validation_scores_held_out_training_images_and_no_test_image():
    tested = prepared(IncrementalSLSetting(nb_tasks=2))
    validated = prepared(IncrementalSLSetting(nb_tasks=2, evaluate_on="validation"))
    test_rows = set().union(*(rows(x) for _, (x, _) in tested.prepared.tasks))
    scored = set().union(*(rows(x) for _, (x, _) in validated.prepared.tasks))
    trained = set().union(*(rows(x) for (x, _), _ in validated.prepared.tasks))
    train_of_test_run = set().union(*(rows(x) for (x, _), _ in tested.prepared.tasks))
    assert scored and not scored & test_rows and not scored & trained
    assert scored <= train_of_test_run  # held out of the training images the test run trains on
    assert len(scored) == pytest.approx(0.25 * len(train_of_test_run), rel=0.05)


def write_pairs(path, prefix: str, count: int):
    path.write_text("".join(json.dumps({"prompt": f"{prefix} question {i}?", "chosen": f"yes {i}",
                                        "rejected": f"no {i}"}) + "\n" for i in range(count)))


def test_pa_validation_never_scores_a_pair_of_the_test_split(tmp_path):
    task = tmp_path / "values"
    task.mkdir()
    write_pairs(task / "train.jsonl", "TRAIN", 40)
    write_pairs(task / "test.jsonl", "TEST", 10)
    options = dict(tasks=str(task), model="tiny-random", train_pairs_per_task=64, test_pairs_per_task=8)
    tested = prepared(IncrementalPASetting(**options))
    validated = prepared(IncrementalPASetting(**options, evaluate_on="validation"))

    def prompts(pairs):
        return {pair.prompt[-1]["content"] for pair in pairs}

    assert all(prompt.startswith("TEST") for prompt in prompts(tested.prepared.test[0]))
    scored, trained = prompts(validated.prepared.test[0]), prompts(validated.prepared.train[0])
    assert len(scored) == 8 and all(prompt.startswith("TRAIN") for prompt in scored)
    assert not scored & trained and len(trained) == 32


def test_pa_task_slice_keeps_the_named_tasks(tmp_path):
    for name in ("a", "b", "c"):
        write_pairs(tmp_path / f"{name}.jsonl", name, 12)
    tasks = ",".join(str(tmp_path / f"{name}.jsonl") for name in ("a", "b", "c"))
    setting = prepared(IncrementalPASetting(tasks=tasks, model="tiny-random", task_slice="1:"))
    assert setting.task_names == ["b", "c"] and setting.nb_tasks_total == 2


def test_rl_slices_tasks_and_validation_plays_episodes_of_other_seeds(monkeypatch):
    setting = prepared(IncrementalRLSetting(nb_tasks=3, task_slice=":2", test_episodes=2))
    assert setting.nb_tasks_total == 2
    full = prepared(IncrementalRLSetting(nb_tasks=3, test_episodes=2))
    assert setting.task_physics == full.task_physics[:2]

    seeds = []
    reset = type(setting._environment(10, lambda s, e: {}, lambda s, e: 0)).reset

    def recording_reset(self, *args, seed=None, **kwargs):
        seeds.append(seed)
        return reset(self, *args, seed=seed, **kwargs)

    monkeypatch.setattr(type(setting._environment(10, lambda s, e: {}, lambda s, e: 0)), "reset", recording_reset)
    for evaluate_on, first in (("test", TEST_SEEDS), ("validation", VALIDATION_SEEDS)):
        seeds.clear()
        setting.evaluate_on = evaluate_on
        setting.score(type("Random", (), {"act": staticmethod(lambda obs, task_id: None)})(), 1, None)
        assert seeds == [first + 1000 + episode for episode in range(2)]
