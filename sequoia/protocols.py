"""What a setting asks of a method at test time, as a protocol its domain declares.

The core's :class:`~sequoia.methods.base.Method` knows only what every method has
(configure, fit, task switches, state). Each domain declares in its own package the
calls its evaluation makes, as a :func:`typing.runtime_checkable` protocol (SL's
``predict``, RL's ``act``, PA's ``logprobs``), and names it in its root setting's
``test_protocol``; the setting checks a method against it once the method is
configured and names, in one line, the calls it lacks. A learner-based method answers
the calls of its learner's protocols (``Learner.test_protocols``).

Example:
    >>> from typing import Protocol, runtime_checkable
    >>> @runtime_checkable
    ... class Predicts(Protocol):
    ...     def predict(self, x, task_id): ...
    >>> calls_of(Predicts)
    ('predict',)
    >>> class Silent:
    ...     name = "silent"
    >>> require(Silent(), Predicts, "toy.incremental")
    Traceback (most recent call last):
    ...
    sequoia.errors.NotApplicableError: method 'silent' cannot be evaluated on toy.incremental: it has no predict() (the Predicts protocol of sequoia.protocols)
"""

from __future__ import annotations

from typing import Any

from sequoia.errors import NotApplicableError

def calls_of(protocol: type) -> tuple[str, ...]:
    """The methods a protocol class declares (its own and its bases', in definition order)."""
    names: list[str] = []
    for cls in reversed(protocol.__mro__):
        if cls is object or not getattr(cls, "_is_protocol", False):
            continue
        names += [name for name, value in vars(cls).items()
                  if callable(value) and not name.startswith("_") and name not in names]
    return tuple(names)


def missing_calls(obj: Any, protocol: type) -> list[str]:
    """The calls of ``protocol`` that ``obj`` does not answer."""
    return [name for name in calls_of(protocol) if not callable(getattr(obj, name, None))]


def require(method: Any, protocol: type | None, setting_name: str) -> None:
    """Refuse, in one line, a method that lacks a call of the setting's test protocol (``None``: no protocol).

    Raises:
        NotApplicableError: naming the method, the setting, the missing calls and the protocol.
    """
    if protocol is None or isinstance(method, protocol):
        return
    missing = missing_calls(method, protocol)
    if missing:
        calls = ", ".join(f"{name}()" for name in missing)
        raise NotApplicableError(f"method {getattr(method, 'name', type(method).__name__)!r} cannot be evaluated on "
                                 f"{setting_name}: it has no {calls} (the {protocol.__name__} protocol of "
                                 f"{protocol.__module__})")
