"""The shape of the tree: flags per level, isinstance between levels, and names."""

import pytest

from sequoia import registry
from sequoia.errors import NotApplicableError, UnknownNameError
from sequoia.settings.assumptions import (
    ContinualAssumption,
    DiscreteTaskAgnosticAssumption,
    IncrementalAssumption,
    MultiTaskAssumption,
    TaskIncrementalAssumption,
)
from sequoia.settings.base import Setting
from sequoia.settings.sl import (
    ContinualSLSetting,
    DiscreteTaskAgnosticSLSetting,
    DomainIncrementalSLSetting,
    IncrementalSLSetting,
    MultiTaskSLSetting,
    SLSetting,
    TaskIncrementalSLSetting,
)

LEVEL_FLAGS = {
    # level: (smooth, boundaries signalled, task id train, task id test, joint)
    ContinualSLSetting: (True, False, False, False, False),
    DiscreteTaskAgnosticSLSetting: (False, False, False, False, False),
    IncrementalSLSetting: (False, True, True, False, False),
    DomainIncrementalSLSetting: (False, True, True, False, False),
    TaskIncrementalSLSetting: (False, True, True, True, False),
    MultiTaskSLSetting: (False, False, True, True, True),
}


@pytest.mark.parametrize("cls", list(LEVEL_FLAGS), ids=lambda c: c.qualified_name())
def test_level_flags(cls):
    flags = (cls.smooth_task_shift, cls.task_boundaries_signalled, cls.task_labels_at_train,
             cls.task_labels_at_test, cls.joint_training)
    assert flags == LEVEL_FLAGS[cls]


def test_children_are_instances_of_their_ancestors():
    setting = MultiTaskSLSetting()
    for ancestor in (TaskIncrementalAssumption, IncrementalAssumption, DiscreteTaskAgnosticAssumption,
                     ContinualAssumption, TaskIncrementalSLSetting, IncrementalSLSetting, SLSetting, Setting):
        assert isinstance(setting, ancestor)
    assert not isinstance(ContinualSLSetting(), IncrementalAssumption)
    assert not isinstance(TaskIncrementalSLSetting(), MultiTaskAssumption)


def test_every_concrete_sl_setting_is_registered_under_its_qualified_name():
    names = set(registry.settings())
    assert {"sl.continual", "sl.discrete_task_agnostic", "sl.incremental", "sl.domain_incremental",
            "sl.task_incremental", "sl.multi_task"} <= names


@pytest.mark.parametrize("name", ["class_incremental", "incremental", "sl.class_incremental", "sl.incremental"])
def test_alias_and_qualified_names_resolve(name):
    assert registry.resolve_setting(name, registry.get_method("ewc")) is IncrementalSLSetting


def test_unqualified_name_prefers_sl_when_several_domains_apply(monkeypatch):
    class FakePA(IncrementalAssumption, Setting):
        domain = "pa"

    monkeypatch.setitem(registry._SETTINGS, "pa.incremental", FakePA)
    assert registry.resolve_setting("class_incremental", registry.get_method("replay")) is IncrementalSLSetting
    assert registry.resolve_setting("pa.class_incremental", registry.get_method("replay")) is FakePA


def test_unqualified_name_picks_the_domain_the_method_applies_to(monkeypatch):
    class FakePA(IncrementalAssumption, Setting):
        domain = "pa"

    class PAOnly(registry.get_method("naive")):
        name = "pa_only"
        target_setting = FakePA

    monkeypatch.setitem(registry._SETTINGS, "pa.incremental", FakePA)
    assert registry.resolve_setting("class_incremental", PAOnly) is FakePA


def test_method_that_does_not_apply_lists_where_it_does():
    with pytest.raises(NotApplicableError, match="targets IncrementalAssumption.*applies to: .*sl.incremental"):
        registry.resolve_setting("continual", registry.get_method("ewc"))


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'class_incremental'"):
        registry.resolve_setting("class_incremntal")
    with pytest.raises(UnknownNameError, match="did you mean 'replay'"):
        registry.get_method("replya")
