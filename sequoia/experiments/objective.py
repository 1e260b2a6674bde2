"""What a tuning maximises or minimises: a metric of ``results.json``, or a weighted sum of several.

``--objective average_final`` takes one metric; ``--objective "average_final - 0.5*alignment_tax_text_nll"``
a weighted sum (each term ``[WEIGHT*]METRIC``, joined by ``+`` or ``-``). A trial of several
seeds scores the mean of its runs' values.

Example:
    >>> objective = Objective.parse("average_final - 0.5*forgetting", "maximize")
    >>> objective.terms
    (('average_final', 1.0), ('forgetting', -0.5))
    >>> objective.value({"average_final": 0.8, "forgetting": 0.2}, "run r")
    0.7000000000000001
    >>> objective.value({"average_final": 0.8}, "run r")
    Traceback (most recent call last):
    ...
    sequoia.errors.SequoiaError: the objective's metric 'forgetting' is not in the results of run r; it has average_final
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sequoia.errors import SequoiaError

TERM = re.compile(r"\s*([+-]?)\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*\*\s*)?([A-Za-z_][A-Za-z0-9_@.]*)\s*")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Objective:
    """A weighted sum of metrics (``terms``: name and weight) and whether to maximize or minimize it."""

    text: str
    terms: tuple[tuple[str, float], ...]
    direction: str = "maximize"

    @classmethod
    def parse(cls, text: str, direction: str) -> "Objective":
        """``METRIC`` or ``[W*]METRIC (+|-) [W*]METRIC ...``, checked."""
        if direction not in DIRECTIONS:
            raise SequoiaError(f"--direction {direction}: expected maximize or minimize")
        terms, position = [], 0
        while position < len(text):
            match = TERM.match(text, position)
            if not match or match.end() == position or (terms and not match[1]):
                raise SequoiaError(f"--objective {text!r}: expected METRIC or a sum like "
                                   "'average_final - 0.5*alignment_tax_text_nll'")
            weight = float(match[2]) if match[2] else 1.0
            terms.append((match[3], -weight if match[1] == "-" else weight))
            position = match.end()
        if not terms:
            raise SequoiaError("--objective names no metric")
        return cls(text, tuple(terms), direction)

    def value(self, metrics: dict[str, Any], where: str) -> float:
        """The objective on one run's metrics; a missing or non-numeric metric is one line naming ``where``."""
        total = 0.0
        for name, weight in self.terms:
            value = metrics.get(name)
            if value is None:
                raise SequoiaError(f"the objective's metric {name!r} is not in the results of {where}; it has "
                                   f"{', '.join(sorted(key for key, v in metrics.items() if _number(v)))}")
            if not _number(value):
                raise SequoiaError(f"the objective's metric {name!r} of {where} is not a number ({value!r})")
            total += weight * float(value)
        return total  # NaN where a metric is: the trial fails, the tuning goes on


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
