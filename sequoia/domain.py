"""A domain: a branch of the setting tree (SL, RL, PA, or one from another package), as it registers itself.

A package adds a domain by naming a :class:`Domain` in the ``sequoia.domains``
entry-point group (built-in domains are registered the same way, in sequoia's own
``setup.cfg``)::

    [project.entry-points."sequoia.domains"]
    regression = my_package.domain:DOMAIN

Loading the entry point imports ``modules``, whose ``register_setting`` and
``register_learner`` calls add the domain's settings and learners.

Example:
    >>> domain = Domain("toy", modules=(), presets={"smoke": {"learner": {"epochs": 1}}})
    >>> domain.preset("smoke"), domain.preset("default")
    ({'learner': {'epochs': 1}}, {})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PRIORITY = 100


@dataclass(frozen=True)
class Domain:
    """A branch of the setting tree.

    Attributes:
        name: the prefix of its settings' qualified names (``sl`` in ``sl.incremental``).
        modules: what to import so that its settings and learners register themselves.
        priority: where an unqualified level (``class_incremental``) fits several domains,
            the lowest priority wins (SL 0, RL 10, PA 20; others 100).
        presets: option defaults by preset name (``smoke``), then by option group
            (``setting``, ``method``, ``learner``): ``sequoia ... --preset smoke``. The preset
            ``default`` (the options' own defaults) exists in every domain.
        description: one line for ``sequoia list``.
    """

    name: str
    modules: tuple[str, ...] = ()
    priority: int = DEFAULT_PRIORITY
    presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    description: str = ""

    def preset(self, name: str) -> dict[str, dict[str, Any]]:
        """The option defaults of preset ``name`` by group (``{}`` for ``default``, or a preset it lacks)."""
        return {group: dict(values) for group, values in self.presets.get(name, {}).items()}
