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


# -- the tree does not lie, and level options live on their level -----------------------------------------


def test_methods_that_carry_state_across_phases_do_not_claim_multi_task():
    """One joint phase: nothing to remember, consolidate or distill from (they would equal naive)."""
    for name in ("replay", "ewc", "lwf", "agem", "si"):
        method = registry.get_method(name)
        assert method.carries_across_phases
        assert not method.is_applicable(MultiTaskSLSetting)
        assert method.is_applicable(TaskIncrementalSLSetting)
    assert registry.get_method("naive").is_applicable(MultiTaskSLSetting)
    with pytest.raises(NotApplicableError, match="works across training phases and does not apply to 'sl.multi_task'"):
        registry.resolve_setting("sl.multi_task", registry.get_method("ewc"))


def test_the_degeneration_check_would_catch_ewc_on_multi_task(monkeypatch):
    """With the old targets, EWC ran on multi_task and trained exactly as naive: the contract test's signal."""
    import torch

    from sequoia.learners import Classifier
    from sequoia.methods import EWC, Naive

    monkeypatch.setattr(EWC, "carries_across_phases", False)  # the old claim
    ewc = EWC().use_learner(Classifier(epochs=1))
    naive = Naive().use_learner(Classifier(epochs=1))
    for method in (ewc, naive):
        MultiTaskSLSetting(nb_tasks=2).apply(method, progress=False)
    ours, plain = ewc.base_learner.trainable_parameters(), naive.base_learner.trainable_parameters()
    assert all(torch.equal(ours[name], plain[name]) for name in ours)


def option_names(cls) -> set[str]:
    import dataclasses

    return {field.name for field in dataclasses.fields(cls)}


@pytest.mark.parametrize("domain", ["sl", "rl", "pa"])
def test_stream_options_exist_only_where_they_act(domain):
    settings = registry.settings()
    continual, agnostic = settings[f"{domain}.continual"], settings[f"{domain}.discrete_task_agnostic"]
    assert "chunks_per_task" in option_names(continual) and "chunks_per_task" in option_names(agnostic)
    # Only a smooth shift blends tasks; RL's tasks blend by interpolating physics, not by mixing.
    assert ("drift_width" in option_names(continual)) == (domain != "rl")
    assert "drift_width" not in option_names(agnostic)
    for level in ("incremental", "task_incremental", "multi_task"):
        assert not {"chunks_per_task", "drift_width"} & option_names(settings[f"{domain}.{level}"])


def test_a_level_option_given_where_it_does_not_act_is_refused():
    from sequoia.cli import main

    assert main(["--setting", "sl.incremental", "--method", "naive", "--setting.chunks_per_task", "3"]) == 2


def test_setting_help_shows_only_the_options_of_its_level(capsys):
    from sequoia.cli import main

    assert main(["--setting", "sl.incremental", "--help"]) == 0
    assert "chunks_per_task" not in capsys.readouterr().out
    assert main(["--setting", "sl.continual", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--setting.chunks_per_task int" in out and "--setting.drift_width float" in out


def test_no_domain_reads_the_schedule_flags():
    """The per-level phase switch lives once, in the root (``Setting.phase_plans``)."""
    from pathlib import Path

    import sequoia.settings as package

    for domain in ("sl", "rl", "pa"):
        for path in (Path(package.__file__).parent / domain).glob("*.py"):
            text = path.read_text()
            for flag in ("joint_training", "online_evaluation", "smooth_task_shift"):
                assert flag not in text, f"{path.name} reads {flag}"
