"""What a method is given: a view of the setting, never the setting or its held-out data."""

import dataclasses
import gc

import numpy as np
import pytest
import torch

from sequoia.methods.base import Method
from sequoia.settings.base import Setting
from sequoia.settings.pa import IncrementalPASetting, TaskIncrementalPASetting
from sequoia.settings.pa.pairs import PreferencePair
from sequoia.settings.sl import IncrementalSLSetting, TaskIncrementalSLSetting
from sequoia.settings.view import SettingView
from tests.conftest import quick_setting


def reachable(root, limit: int = 20_000) -> list:
    """Every object reachable from ``root`` through references, without entering modules, classes or functions."""
    seen, stack, found = {id(root)}, [root], []
    skip = (type, type(gc), type(reachable))
    while stack and len(found) < limit:
        item = stack.pop()
        found.append(item)
        for child in gc.get_referents(item):
            if id(child) not in seen and not isinstance(child, skip):
                seen.add(id(child))
                stack.append(child)
    return found


def prepared(setting: Setting) -> Setting:
    setting.rng = np.random.default_rng(0)
    setting.prepare()
    return setting


@pytest.mark.parametrize("setting", [TaskIncrementalSLSetting(nb_tasks=5), IncrementalSLSetting(nb_tasks=5)],
                         ids=lambda s: s.qualified_name())
def test_the_sl_view_reaches_no_test_data(setting):
    prepared(setting)
    view = setting.view()
    objects = reachable(view)
    assert not any(item is setting for item in objects)
    assert not any(isinstance(item, torch.Tensor) for item in objects)
    test_labels = [test_y for _, (_, test_y) in setting.prepared.tasks]
    assert not any(item is labels for item in objects for labels in test_labels)


def test_the_pa_view_holds_no_pairs():
    setting = prepared(quick_setting(TaskIncrementalPASetting))
    objects = reachable(setting.view())
    assert not any(isinstance(item, PreferencePair) or item is setting for item in objects)


def test_task_ids_and_label_spaces_only_where_the_level_gives_them():
    til = prepared(TaskIncrementalSLSetting(nb_tasks=5)).view()
    cil = prepared(IncrementalSLSetting(nb_tasks=5)).view()
    assert til.task_labels_at_test and til.task_classes == ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
    assert not cil.task_labels_at_test and cil.task_classes is None
    with pytest.raises(dataclasses.FrozenInstanceError):  # a method cannot write into it either
        til.nb_tasks = 3


def test_configure_receives_the_view_not_the_setting():
    received = []

    class Spy(Method):
        name = "spy"
        target_setting = Setting

        def configure(self, view):
            received.append(view)

        def fit(self, train, valid):
            pass

        def logprobs(self, prompts, responses, task_id):
            return torch.zeros(len(prompts))

        def predict(self, x, task_id):
            return torch.zeros(len(x), dtype=torch.long)

    IncrementalSLSetting(nb_tasks=2).apply(Spy(), progress=False)
    quick_setting(IncrementalPASetting).apply(Spy(), progress=False)
    assert [type(view).__name__ for view in received] == ["SLView", "PAView"]
    assert all(isinstance(view, SettingView) and not isinstance(view, Setting) for view in received)
    assert received[1].encoding().max_prompt_length == 32


def test_an_rl_view_gives_the_steps_of_every_fit_and_leaves_the_run_generator_alone():
    from sequoia.settings.rl.levels import ContinualRLSetting, IncrementalRLSetting, MultiTaskRLSetting

    def prepared(setting):
        setting.rng = np.random.default_rng(3)
        setting.prepare()
        return setting

    stream = prepared(ContinualRLSetting(nb_tasks=2, steps_per_task=1000, chunks_per_task=4))
    before = stream.rng.bit_generator.state
    assert stream.view().steps_per_fit == (250,) * 8
    assert stream.rng.bit_generator.state == before
    assert prepared(IncrementalRLSetting(nb_tasks=3, steps_per_task=1000)).view().steps_per_fit == (1000,) * 3
    assert prepared(MultiTaskRLSetting(nb_tasks=3, steps_per_task=1000)).view().steps_per_fit == (3000,)
