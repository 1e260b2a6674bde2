"""What a component saves in a checkpoint: a named list of its attributes.

Learners, plugins, methods and settings list the attributes that change during a
run in ``checkpoint_attributes``, each class only its own: a checkpoint keeps those
of every class along the object's hierarchy (:func:`checkpoint_names`), and an
attribute declared but not set is an error, not a silent gap in the checkpoint.
:func:`capture` and :func:`restore` copy them out and back. Values are saved with ``torch.save`` (pickle), so tensors, dicts,
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


def checkpoint_names(cls: type) -> tuple[str, ...]:
    """The attributes a checkpoint keeps of an instance of ``cls``: what the ``checkpoint_attributes`` of each
    class along its hierarchy declare, base classes first, each name once.

    Example:
        >>> class Base:
        ...     checkpoint_attributes = ("rng",)
        >>> class Child(Base):
        ...     checkpoint_attributes = ("cache",)
        >>> checkpoint_names(Child)
        ('rng', 'cache')
    """
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        names += [name for name in vars(klass).get("checkpoint_attributes", ()) if name not in names]
    return tuple(names)


def capture(component: Any) -> dict[str, Any]:
    """The attributes :func:`checkpoint_names` declares for ``component``.

    References, not copies, as with ``nn.Module.state_dict``: a checkpoint serializes
    them at once, before training changes them again.

    Raises:
        AttributeError: a declared attribute the component does not have (set it in ``__init__`` or ``configure``).
    """
    names = checkpoint_names(type(component))
    missing = [name for name in names if name not in vars(component)]
    if missing:
        raise AttributeError(f"{type(component).__name__} declares checkpoint attribute(s) {', '.join(missing)} but "
                             "has none of that name: set each before the first checkpoint (in __init__ or configure)")
    return {name: getattr(component, name) for name in names}


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

