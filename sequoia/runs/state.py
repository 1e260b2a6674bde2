"""What a component saves in a checkpoint: a named list of its attributes.

Learners, plugins, methods and settings list the attributes that change during a
run in ``checkpoint_attributes``; :func:`capture` and :func:`restore` copy them
out and back. Values are saved with ``torch.save`` (pickle), so tensors, dicts,
lists, dataclasses and NumPy or torch random generators all work. Generators are
restored in place, so objects that share one keep sharing it.

Example:
    >>> import torch
    >>> class Counter:
    ...     checkpoint_attributes = ("count", "generator")
    ...     def __init__(self):
    ...         self.count, self.generator = 0, torch.Generator().manual_seed(0)
    >>> a = Counter(); a.count = 5; saved = capture(a)
    >>> b = Counter(); restore(b, saved); b.count
    5
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def capture(component: Any) -> dict[str, Any]:
    """The attributes ``component.checkpoint_attributes`` names (those it has).

    References, not copies, as with ``nn.Module.state_dict``: a checkpoint serializes
    them at once, before training changes them again.
    """
    names = getattr(type(component), "checkpoint_attributes", ())
    return {name: getattr(component, name) for name in names if name in vars(component)}


def restore(component: Any, saved: dict[str, Any]) -> None:
    """Put captured attributes back, generators in place."""
    for name, value in saved.items():
        current = vars(component).get(name)
        if isinstance(current, torch.Generator) and isinstance(value, torch.Generator):
            current.set_state(value.get_state())
        elif isinstance(current, np.random.Generator) and isinstance(value, np.random.Generator):
            current.bit_generator.state = value.bit_generator.state
        else:
            setattr(component, name, value)

