"""Where settings, methods and learners are registered and looked up by name.

Built-ins register themselves when their module is imported; third-party packages
add methods through the ``sequoia.methods`` entry-point group, e.g. in setup.cfg::

    [options.entry_points]
    sequoia.methods =
        my_method = my_package.my_module:MyMethod

Example:
    >>> from sequoia.registry import get_method, resolve_setting
    >>> resolve_setting("class_incremental", get_method("ewc")).qualified_name()
    'sl.incremental'
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from sequoia.errors import NotApplicableError, SequoiaError, UnknownNameError
from sequoia.settings.assumptions import LEVEL_ALIASES

if TYPE_CHECKING:
    from sequoia.learners.base import Learner
    from sequoia.methods.base import Method
    from sequoia.settings.base import Setting

DOMAIN_PRIORITY: tuple[str, ...] = ("sl", "rl", "pa")
"""When an unqualified level name fits several domains, the first here wins (SL, as in Sequoia)."""

_SETTINGS: dict[str, type[Setting]] = {}
_METHODS: dict[str, type[Method]] = {}
_LEARNERS: dict[str, type[Learner]] = {}
_BUILTIN_MODULES = ("sequoia.settings.sl", "sequoia.settings.rl", "sequoia.settings.pa", "sequoia.learners",
                    "sequoia.methods")
_loaded = False

T = TypeVar("T")


class RegistrationError(SequoiaError):
    """A second, different definition was registered under a name that is taken."""


def where_defined(cls: type) -> str:
    """``module.QualName (file:line)`` of a class, for messages.

    Example:
        >>> where_defined(RegistrationError).startswith("sequoia.registry.RegistrationError (")
        True
    """
    try:
        place = f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    except (OSError, TypeError):
        place = "defined at run time"
    return f"{cls.__module__}.{cls.__qualname__} ({place})"


def _add(registry: dict[str, type], kind: str, name: str, cls: type) -> None:
    """Register ``cls`` as ``name``, refusing a different class under a taken name (as PEFT does)."""
    taken = registry.get(name)
    same = taken is not None and (taken.__module__, taken.__qualname__) == (cls.__module__, cls.__qualname__)
    if taken is not None and not same:
        raise RegistrationError(f"{kind} name {name!r} is taken by {where_defined(taken)}; "
                                f"{where_defined(cls)} needs another name")
    registry[name] = cls  # the same definition again (a module reloaded) replaces itself


def register_setting(cls: T) -> T:
    """Register a concrete setting under its qualified name ``<domain>.<level>``. Usable as a decorator.

    Raises:
        RegistrationError: another setting already has that qualified name.
    """
    _add(_SETTINGS, "setting", cls.qualified_name(), cls)
    return cls


def register_method(cls: T) -> T:
    """Register a method under ``cls.name``. Usable as a decorator.

    Raises:
        RegistrationError: another method already has that name.
    """
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty `name` class attribute")
    _add(_METHODS, "method", cls.name, cls)
    return cls


def register_learner(cls: T) -> T:
    """Register a learner (a base trainer that strategies wrap) under ``cls.name``.

    Raises:
        RegistrationError: another learner already has that name.
    """
    _add(_LEARNERS, "learner", cls.name, cls)
    return cls


def _ensure_loaded() -> None:
    """Import the built-ins and the ``sequoia.methods`` entry points, once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    load_entry_points()


def load_entry_points() -> list[str]:
    """Register the methods third-party packages declare in the ``sequoia.methods`` group.

    A package's own ``register_method`` call wins over its entry point (the same
    class), and a taken name is never replaced: an entry point whose method is
    another class under a taken name is skipped with a warning naming both.
    Returns the names registered.
    """
    added = []
    for entry_point in entry_points(group="sequoia.methods"):
        try:
            method = entry_point.load()
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break sequoia
            raise SequoiaError(f"could not load method entry point {entry_point.name!r}: {error}") from error
        taken = _METHODS.get(method.name)
        if taken is None:
            register_method(method)
            added.append(method.name)
        elif taken is not method:
            warnings.warn(f"entry point {entry_point.name!r} skipped: method name {method.name!r} is taken by "
                          f"{where_defined(taken)}", stacklevel=2)
    return added


def settings() -> dict[str, type[Setting]]:
    """Every registered setting by qualified name."""
    _ensure_loaded()
    return dict(_SETTINGS)


def methods() -> dict[str, type[Method]]:
    """Every registered method by name."""
    _ensure_loaded()
    return dict(_METHODS)


def learners() -> dict[str, type[Learner]]:
    """Every registered learner by name."""
    _ensure_loaded()
    return dict(_LEARNERS)


def _unknown(kind: str, name: str, known: list[str]) -> UnknownNameError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else f"; known: {', '.join(sorted(known))}"
    return UnknownNameError(f"unknown {kind} {name!r}{hint}")


def get_method(name: str) -> type[Method]:
    """The method registered as ``name``, with close-match suggestions when there is none."""
    found = methods().get(name)
    if found is None:
        raise _unknown("method", name, list(_METHODS))
    return found


def get_learner(name: str) -> type[Learner]:
    """The learner registered as ``name``."""
    found = learners().get(name)
    if found is None:
        raise _unknown("learner", name, list(_LEARNERS))
    return found


def default_learner(setting: type[Setting]) -> type[Learner]:
    """The learner ``setting`` names as its domain's default (``Setting.default_learner``)."""
    if not setting.default_learner:
        raise SequoiaError(f"{setting.qualified_name()} names no default learner; pass --method.learner NAME")
    return get_learner(setting.default_learner)


def applicable_settings(method: type[Method]) -> list[str]:
    """Qualified names of the settings ``method`` applies to."""
    return [name for name, cls in settings().items() if method.is_applicable(cls)]


def _canonical_level(level: str) -> str:
    return LEVEL_ALIASES.get(level, level)


def resolve_setting(name: str, method: type[Method] | None = None) -> type[Setting]:
    """The setting class a (possibly unqualified) name means for ``method``.

    ``sl.class_incremental`` names one setting. An unqualified level such as
    ``class_incremental`` picks, among the domains having that level, those the
    method applies to, preferring the domain that comes first in :data:`DOMAIN_PRIORITY`.
    """
    domain, _, level = name.rpartition(".")
    level = _canonical_level(level)
    if domain:
        return _qualified_setting(name, f"{domain}.{level}", method)
    candidates = [cls for cls in settings().values() if cls.level == level]
    if not candidates:
        raise _unknown("setting", name, _all_setting_names())
    if method is not None:
        candidates = [cls for cls in candidates if method.is_applicable(cls)]
        if not candidates:
            raise _not_applicable(method, name)

    def priority(cls: type[Setting]) -> int:
        return DOMAIN_PRIORITY.index(cls.domain) if cls.domain in DOMAIN_PRIORITY else len(DOMAIN_PRIORITY)

    return min(candidates, key=priority)


def _qualified_setting(name: str, qualified: str, method: type[Method] | None) -> type[Setting]:
    """The setting ``domain.level`` names (``name`` as the user gave it, for the errors)."""
    found = settings().get(qualified)
    if found is None:
        raise _unknown("setting", name, _all_setting_names())
    if method is not None and not method.is_applicable(found):
        raise _not_applicable(method, found.qualified_name())
    return found


def _all_setting_names() -> list[str]:
    names = set(settings())
    names |= {cls.level for cls in _SETTINGS.values()}
    names |= set(LEVEL_ALIASES)
    for qualified in list(names):
        domain, _, level = qualified.rpartition(".")
        for alias, canonical in LEVEL_ALIASES.items():
            if level == canonical and domain:
                names.add(f"{domain}.{alias}")
    return sorted(names)


def _not_applicable(method: type[Method], setting_name: str) -> NotApplicableError:
    applies_to = applicable_settings(method)
    reason = method.why_not_applicable(_SETTINGS.get(setting_name), repr(setting_name))
    return NotApplicableError(f"{reason}; it applies to: {', '.join(applies_to) or 'no registered setting'}")
