"""Registration: by call, by decorator and through the `sequoia.methods` entry-point group."""

from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest
from pydantic.dataclasses import dataclass

from sequoia import registry
from sequoia.errors import SequoiaError
from sequoia.methods.naive import Naive


@pytest.fixture(autouse=True)
def loaded():
    """The registry loaded from the real entry points before a test replaces them."""
    registry.settings()


@dataclass
class ThirdPartyMethod(Naive):
    name: ClassVar[str] = "third_party"


def test_entry_point_group_registers_third_party_methods(monkeypatch):
    entry = EntryPoint(name="third_party", value=f"{__name__}:ThirdPartyMethod", group="sequoia.methods")
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry] if group == "sequoia.methods" else [])
    monkeypatch.delitem(registry._METHODS, "third_party", raising=False)
    assert registry.load_entry_points() == ["third_party"]
    assert registry.get_method("third_party") is ThirdPartyMethod
    assert "sl.incremental" in registry.applicable_settings(ThirdPartyMethod)
    del registry._METHODS["third_party"]  # not monkeypatch.delitem: its undo would put the method back


def test_broken_entry_point_is_a_one_line_error(monkeypatch):
    entry = EntryPoint(name="broken", value="not_a_module_anywhere:Thing", group="sequoia.methods")
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry])
    with pytest.raises(SequoiaError, match="could not load method entry point 'broken'"):
        registry.load_entry_points()


def test_register_method_needs_a_name():
    class Nameless(Naive):
        name = ""

    with pytest.raises(ValueError, match="non-empty `name`"):
        registry.register_method(Nameless)


def test_builtin_names_are_not_replaced_by_entry_points(monkeypatch):
    @dataclass
    class Impostor(Naive):
        name: ClassVar[str] = "naive"

    entry = EntryPoint(name="naive", value="x:y", group="sequoia.methods")
    monkeypatch.setattr(EntryPoint, "load", lambda self: Impostor)
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry])
    with pytest.warns(UserWarning, match="entry point 'naive' skipped: method name 'naive' is taken by .*Naive"):
        assert registry.load_entry_points() == []
    assert registry.get_method("naive") is Naive


def test_a_second_method_named_like_a_builtin_is_refused_naming_both(monkeypatch):
    @dataclass
    class MyReplay(Naive):
        name: ClassVar[str] = "replay"

    with pytest.raises(registry.RegistrationError) as error:
        registry.register_method(MyReplay)
    message = str(error.value)
    assert "\n" not in message
    assert "sequoia.methods.replay.Replay (" in message and "replay.py:" in message
    assert "test_registry" in message and "MyReplay" in message
    assert registry.get_method("replay").__module__ == "sequoia.methods.replay"


def test_duplicate_settings_and_learners_are_refused_too():
    from sequoia.learners import Classifier
    from sequoia.settings.sl import IncrementalSLSetting

    class OtherClassifier(Classifier):
        pass

    class OtherIncremental(IncrementalSLSetting):
        pass

    with pytest.raises(registry.RegistrationError, match="learner name 'classifier' is taken"):
        registry.register_learner(OtherClassifier)
    with pytest.raises(registry.RegistrationError, match="setting name 'sl.incremental' is taken"):
        registry.register_setting(OtherIncremental)


def test_registering_the_same_class_again_is_harmless():
    assert registry.register_method(Naive) is Naive


def test_the_cli_prints_a_duplicate_as_one_line(monkeypatch, capsys):
    from sequoia.cli import main

    def clash(name):
        raise registry.RegistrationError("method name 'replay' is taken by a (x.py:1); b (y.py:2) needs another name")

    monkeypatch.setattr("sequoia.experiment.get_method", clash)
    assert main(["--setting", "sl.incremental", "--method", "replay"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_each_domain_names_its_default_learner():
    from sequoia.settings.pa import IncrementalPASetting
    from sequoia.settings.rl import IncrementalRLSetting
    from sequoia.settings.sl import IncrementalSLSetting

    assert [registry.default_learner(cls).name for cls in (IncrementalSLSetting, IncrementalRLSetting,
                                                           IncrementalPASetting)] == ["classifier", "dqn", "dpo_lora"]


def test_every_count_option_has_an_upper_bound():
    """A count without a ceiling lets a typo start a run that never ends (or a head of 10^12 outputs)."""
    import dataclasses
    import typing

    import annotated_types

    from sequoia import registry

    unbounded = []
    for cls in [*registry.settings().values(), *registry.methods().values(), *registry.learners().values()]:
        if not dataclasses.is_dataclass(cls):
            continue
        hints = typing.get_type_hints(cls, include_extras=True)
        for field in dataclasses.fields(cls):
            hint = hints[field.name]
            if typing.get_origin(hint) is not typing.Annotated or typing.get_args(hint)[0] is not int:
                continue
            bounds = [item for info in typing.get_args(hint)[1:] for item in getattr(info, "metadata", [])]
            if not any(isinstance(item, (annotated_types.Le, annotated_types.Lt)) for item in bounds):
                unbounded.append(f"{cls.__name__}.{field.name}")
    assert not unbounded, unbounded


def test_a_second_domain_under_a_taken_name_is_refused_and_the_same_one_again_is_not():
    from sequoia.domain import Domain

    sl = registry.domains()["sl"]
    assert registry.register_domain(sl) is sl  # a module imported twice registers the same domain again
    with pytest.raises(registry.RegistrationError, match="domain name 'sl' is taken"):
        registry.register_domain(Domain("sl", modules=("my_package.settings",)))


def test_a_domain_entry_point_must_name_a_domain(monkeypatch):
    entry = EntryPoint(name="mine", value=f"{__name__}:ThirdPartyMethod", group="sequoia.domains")
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry] if group == "sequoia.domains" else [])
    with pytest.raises(SequoiaError, match="domain entry point 'mine' names .*ThirdPartyMethod.*, not a "
                                           "sequoia.domain.Domain"):
        registry.load_entry_points("sequoia.domains")


def test_an_unqualified_level_goes_to_the_domain_of_lowest_priority():
    # class_incremental exists in SL (priority 0), RL, PA and others: a method that runs everywhere gets SL.
    assert registry.resolve_setting("class_incremental", registry.get_method("ewc")).qualified_name() == "sl.incremental"
    assert [d.priority for d in (registry.domains()[name] for name in ("sl", "rl", "pa"))] == [0, 10, 20]
