"""A tuning search space: run options, each with the distribution Optuna draws its value from.

On the command line each dimension is ``OPTION=KIND:ARGUMENTS``; in a YAML space file,
a mapping of ``OPTION: KIND:ARGUMENTS``:

==================  ===================================  ===========================================
kind                example                              values
==================  ===================================  ===========================================
``loguniform``      ``learner.lr=loguniform:1e-5:1e-2``  floats, uniform in log scale
``uniform``         ``method.decay=uniform:0.1:0.9``     floats
``int``             ``method.buffer_size=int:50:500``    integers, both ends included
``logint``          ``learner.lora_r=logint:2:64``       integers, uniform in log scale
``choice``          ``method.aggregate=choice:top1|weighted``  one of the listed values
==================  ===================================  ===========================================

Example:
    >>> space = parse_space(["learner.lr=loguniform:1e-5:1e-2", "method.aggregate=choice:top1|weighted"])
    >>> space["learner.lr"]
    Dimension(kind='loguniform', low=1e-05, high=0.01, choices=())
    >>> space["method.aggregate"].choices
    ('top1', 'weighted')
    >>> parse_space(["learner.lr=loguniform:0:1"])
    Traceback (most recent call last):
    ...
    sequoia.errors.SequoiaError: --space learner.lr=loguniform:0:1: loguniform needs 0 < LOW < HIGH
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sequoia.errors import SequoiaError
from sequoia.experiments.spec import check_key

KINDS = ("loguniform", "uniform", "int", "logint", "choice")


@dataclass(frozen=True)
class Dimension:
    """One option's range: ``kind`` (:data:`KINDS`), its bounds, or its choices."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[str, ...] = ()

    def distribution(self) -> Any:
        """The Optuna distribution of this dimension."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind in ("int", "logint"):
            return IntDistribution(int(self.low), int(self.high), log=self.kind == "logint")
        return FloatDistribution(self.low, self.high, log=self.kind == "loguniform")

    def text(self) -> str:
        """The dimension as ``KIND:ARGUMENTS`` (how a space file writes it)."""
        if self.kind == "choice":
            return f"choice:{'|'.join(self.choices)}"
        numbers = [int(self.low), int(self.high)] if self.kind in ("int", "logint") else [self.low, self.high]
        return f"{self.kind}:{numbers[0]:g}:{numbers[1]:g}"


def parse_dimension(option: str, text: str, where: str) -> Dimension:
    """``KIND:ARGUMENTS`` for ``option``, checked; ``where`` names the input in errors."""
    check_key(option, where)
    kind, _, arguments = str(text).partition(":")
    if kind not in KINDS:
        raise SequoiaError(f"{where}: unknown kind {kind!r}; expected one of {', '.join(KINDS)} "
                           f"(for example {option}=loguniform:1e-5:1e-2)")
    if kind == "choice":
        choices = tuple(part.strip() for part in arguments.split("|"))
        if len(choices) < 2 or not all(choices) or len(set(choices)) < len(choices):
            raise SequoiaError(f"{where}: choice needs at least two distinct values separated by | "
                               f"(choice:top1|weighted)")
        return Dimension(kind, choices=choices)
    return _numeric(kind, arguments, where)


def _bounds(kind: str, arguments: str, where: str) -> tuple[float, float]:
    """``LOW:HIGH`` as two finite numbers."""
    parts = arguments.split(":")
    try:
        low, high = (float(part) for part in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        low = high = math.nan
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SequoiaError(f"{where}: {kind} needs two finite numbers, {kind}:LOW:HIGH")
    return low, high


def _numeric(kind: str, arguments: str, where: str) -> Dimension:
    low, high = _bounds(kind, arguments, where)
    if kind in ("int", "logint") and not (low.is_integer() and high.is_integer()):
        raise SequoiaError(f"{where}: {kind} needs whole numbers, {kind}:LOW:HIGH")
    if not low < high:
        raise SequoiaError(f"{where}: {kind} needs LOW < HIGH")
    if kind.startswith("log") and low <= 0:
        raise SequoiaError(f"{where}: {kind} needs 0 < LOW < HIGH")
    return Dimension(kind, low, high)


def parse_space(entries: list[str]) -> dict[str, Dimension]:
    """``--space OPTION=KIND:ARGUMENTS`` entries as a space; an option given twice is refused."""
    space: dict[str, Dimension] = {}
    for entry in entries:
        option, equals, text = entry.partition("=")
        where = f"--space {entry}"
        if not equals or not option:
            raise SequoiaError(f"{where}: expected OPTION=KIND:ARGUMENTS, for example learner.lr=loguniform:1e-5:1e-2")
        if option in space:
            raise SequoiaError(f"{where}: {option} is already in the space")
        space[option] = parse_dimension(option, text, where)
    return space


def space_from_file(loaded: Any, where: str) -> dict[str, Dimension]:
    """A YAML space file's mapping of ``OPTION: KIND:ARGUMENTS``, checked."""
    if not isinstance(loaded, dict) or not loaded:
        raise SequoiaError(f"{where} must hold a mapping of options to KIND:ARGUMENTS "
                           "(learner.lr: loguniform:1e-5:1e-2)")
    return {str(option): parse_dimension(str(option), str(text), f"{where}: {option}")
            for option, text in loaded.items()}
