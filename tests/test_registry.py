"""Registration: by call, by decorator and through the `sequoia.methods` entry-point group."""

from importlib.metadata import EntryPoint
from typing import ClassVar

import pytest
from pydantic.dataclasses import dataclass

from sequoia import registry
from sequoia.errors import SequoiaError
from sequoia.methods.naive import Naive


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
    monkeypatch.delitem(registry._METHODS, "third_party")


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
    assert registry.load_entry_points() == []
    assert registry.get_method("naive") is Naive
