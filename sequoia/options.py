"""Command-line options from the fields of a (pydantic) dataclass, with plain argparse.

Each field ``f`` of a class becomes ``--<prefix>.f``, typed from its annotation
(``Annotated[int, Field(gt=0)]`` is an ``int``; a ``Literal`` is a choice; a
``bool`` takes ``true``/``false`` or stands alone for true), with its attribute
docstring as help. Options carry no argparse default: only what the user gave
lands in the namespace, so that layers (preset, config file, command line) merge
by plain dictionary updates and the dataclass itself validates the result.

Example:
    >>> import argparse
    >>> from sequoia.settings.sl import IncrementalSLSetting
    >>> parser = argparse.ArgumentParser(add_help=False)
    >>> add_options(parser, IncrementalSLSetting, "setting")
    >>> given(parser.parse_args(["--setting.nb_tasks", "2"]), "setting")
    {'nb_tasks': 2}
    >>> build(IncrementalSLSetting, [("--setting.", {"nb_tasks": 2})]).nb_tasks
    2
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Annotated, Any, Literal, get_args, get_origin

import pydantic
from pydantic import AfterValidator
from simple_parsing.docstring import get_attribute_docstring

from sequoia.errors import SequoiaError

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser that raises a :class:`SequoiaError` instead of printing usage and exiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(add_help=False, allow_abbrev=False, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse API
        raise SequoiaError(message)


def parse_bool(text: str) -> bool:
    """``true``/``false`` (and yes/no, 1/0, on/off) as a bool.

    Example:
        >>> parse_bool("False"), parse_bool("yes")
        (False, True)
    """
    lowered = text.lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise argparse.ArgumentTypeError(f"invalid bool value: {text!r} (use true or false)")


parse_bool.__name__ = "bool"  # argparse names the type in its messages


def _unwrap(annotation: Any) -> Any:
    """The plain type inside ``Annotated[...]`` and ``X | None``."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _argument(annotation: Any, where: str) -> dict[str, Any]:
    """The ``add_argument`` keywords for a field's type."""
    kind = _unwrap(annotation)
    if get_origin(kind) is Literal:
        choices = list(get_args(kind))
        return {"type": type(choices[0]), "choices": choices}
    if kind is bool:
        return {"type": parse_bool, "nargs": "?", "const": True, "metavar": "bool"}
    if get_origin(kind) in (list, tuple):
        element = _unwrap(get_args(kind)[0])
        return {"type": element, "nargs": "+", "metavar": element.__name__}
    if kind in (int, float, str):
        return {"type": kind, "metavar": kind.__name__}
    raise TypeError(f"{where}: options of type {annotation!r} cannot be given on the command line")


def add_options(parser: argparse.ArgumentParser, cls: type, prefix: str) -> None:
    """Add ``--<prefix>.<field>`` for every field of the dataclass ``cls``, in a group of its own."""
    hints = typing.get_type_hints(cls, include_extras=True)
    group = parser.add_argument_group(f"--{prefix}.* ({cls.__name__})")
    for field in dataclasses.fields(cls):
        doc = get_attribute_docstring(cls, field.name).help_string.strip()
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{doc} (default: {default})" if doc else f"(default: {default})"
        group.add_argument(f"--{prefix}.{field.name}", dest=f"{prefix}.{field.name}", default=argparse.SUPPRESS,
                           help=help_text.replace("%", "%%"),
                           **_argument(hints[field.name], f"{cls.__name__}.{field.name}"))


def given(namespace: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """The options of group ``prefix`` that were given, by field name."""
    start = f"{prefix}."
    return {key[len(start):]: value for key, value in vars(namespace).items() if key.startswith(start)}


def known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are fields of ``cls``."""
    names = {field.name for field in dataclasses.fields(cls)}
    return {key: value for key, value in values.items() if key in names}


def build(cls: type, layers: list[tuple[str, dict[str, Any]]]) -> Any:
    """An instance of ``cls`` from layered values, later layers winning.

    Each layer is ``(where, values)``; ``where`` prefixes the names in messages
    (``"config setting."``, ``"--setting."``). An unknown name or an invalid value
    is a one-line :class:`SequoiaError` naming the layer it came from.
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {field.name for field in dataclasses.fields(cls)}
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for where, values in layers:
        unknown = set(values) - names
        if unknown:
            raise SequoiaError(f"{where.rstrip('.')}: unknown option(s) {', '.join(sorted(map(str, unknown)))} "
                               f"for {cls.__name__}")
        values = {name: _checked(cls, name, _unwrap(hints[name]), value, f"{where}{name}")
                  for name, value in values.items()}
        merged.update(values)
        origin.update(dict.fromkeys(values, where))
    try:
        return cls(**merged)
    except pydantic.ValidationError as error:
        raise SequoiaError(_one_line(error, origin)) from error


LARGEST = 10**12
"""No option works beyond this magnitude (sizes, steps, rates): such a value is a typo."""

MAX_TASKS = 1_000
"""No task sequence is longer: each task is evaluated after every task, so the work grows with its square."""


def comma_list_of_tasks(text: str) -> str:
    """A pydantic check (``AfterValidator``) for an option naming tasks joined by commas: at most :data:`MAX_TASKS`.

    Example:
        >>> comma_list_of_tasks("harmlessness,helpfulness")
        'harmlessness,helpfulness'
        >>> comma_list_of_tasks(",".join(["harmlessness"] * 1001))
        Traceback (most recent call last):
        ValueError: names 1001 tasks; a sequence holds at most 1000
    """
    count = sum(1 for part in text.split(",") if part.strip())
    if count > MAX_TASKS:
        raise ValueError(f"names {count} tasks; a sequence holds at most {MAX_TASKS}")
    return text


class CommaList:
    """The mark of a text option whose value is a comma-separated list: ``Annotated[str, CommaList()]``.

    Marked by its type, such an option takes a YAML list in a config or sweep file (joined
    with commas), and a sweep never splits its value into an axis.
    """

    def __repr__(self) -> str:
        return "CommaList()"


CommaSeparated = Annotated[str, CommaList()]
"""A text option holding a comma-separated list (``--learner.target_modules q_proj,v_proj``)."""
TaskList = Annotated[str, CommaList(), AfterValidator(comma_list_of_tasks)]
"""A comma-separated list of tasks, at most :data:`MAX_TASKS`."""


def is_comma_list(cls: type, name: str) -> bool:
    """Whether field ``name`` of ``cls`` holds a comma-separated list (its type is marked :class:`CommaList`).

    Example:
        >>> from sequoia.learners.lora import LoRALearner
        >>> is_comma_list(LoRALearner, "target_modules"), is_comma_list(LoRALearner, "lr")
        (True, False)
    """
    hint = typing.get_type_hints(cls, include_extras=True).get(name)
    return any(isinstance(mark, CommaList) for mark in _marks(hint))


def _marks(annotation: Any) -> list[Any]:
    """The metadata of ``Annotated[...]`` in an annotation, through ``X | None``."""
    if get_origin(annotation) is Annotated:
        return [*annotation.__metadata__, *_marks(get_args(annotation)[0])]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return [mark for arg in get_args(annotation) for mark in _marks(arg)]
    return []


def _checked(cls: type, name: str, kind: Any, value: Any, where: str) -> Any:
    """``value`` for the field ``name`` of type ``kind``, where a config file's YAML types need a look first.

    YAML gives ``true`` for a number pydantic would take as 1, and a list where a
    comma-separated option is meant; the first is refused, the second joined.

    Example:
        >>> from sequoia.learners.lora import LoRALearner
        >>> _checked(LoRALearner, "target_modules", str, ["q_proj", "v_proj"], "config learner.target_modules")
        'q_proj,v_proj'
        >>> _checked(LoRALearner, "lr", float, True, "config learner.lr")
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: invalid value True for config learner.lr: expected a number, not true or false
    """
    if isinstance(value, bool) and kind in (int, float):
        raise SequoiaError(f"invalid value {value!r} for {where}: expected a number, not true or false")
    if isinstance(value, list) and all(isinstance(item, str) for item in value) and is_comma_list(cls, name):
        return ",".join(value)
    _check_number(value, where)
    return value


def _check_number(value: Any, where: str) -> None:
    """Refuse NaN, infinities and magnitudes beyond :data:`LARGEST`, in a value or a list of them."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        if item != item or abs(item) == float("inf"):
            raise SequoiaError(f"invalid value {item!r} for {where}: expected a finite number")
        if abs(item) > LARGEST:
            raise SequoiaError(f"invalid value {item!r} for {where}: beyond any workable value (at most {LARGEST:.0e})")


def _one_line(error: pydantic.ValidationError, origin: dict[str, str]) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        where = origin.get(str(item["loc"][0]) if item["loc"] else "", "")
        shown = repr(item.get("input"))
        shown = shown if len(shown) <= 80 else f"{shown[:60]}... ({len(shown)} characters)"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"invalid value {shown} for {where}{field}: {message}")
    return "; ".join(problems)
