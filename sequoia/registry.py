"""Where domains, settings, methods and learners are registered and looked up by name.

Built-ins and third-party packages register the same way, through entry-point groups
(sequoia's own are in its ``setup.cfg``), loaded the first time a name is looked up:

* ``sequoia.domains``: a :class:`~sequoia.domain.Domain` (its settings, learners and presets);
* ``sequoia.settings``, ``sequoia.learners``, ``sequoia.methods``: a class, registered
  under its name, or a module, whose import registers what it holds.

For example, in a package's setup.cfg::

    [options.entry_points]
    sequoia.methods =
        my_method = my_package.my_module:MyMethod

A name taken by another class is never replaced: a second class registered under it
by a call is refused (:class:`RegistrationError`), and one from an entry point is
skipped with a warning naming both.

Example:
    >>> from sequoia.registry import get_method, resolve_setting
    >>> resolve_setting("class_incremental", get_method("ewc")).qualified_name()
    'sl.incremental'
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import types
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from sequoia.domain import DEFAULT_PRIORITY, Domain
from sequoia.errors import NotApplicableError, SequoiaError, UnknownNameError
from sequoia.settings.assumptions import LEVEL_ALIASES

if TYPE_CHECKING:
    from sequoia.learners.base import Learner
    from sequoia.methods.base import Method
    from sequoia.settings.base import Setting

_DOMAINS: dict[str, Domain] = {}
_SETTINGS: dict[str, type[Setting]] = {}
_METHODS: dict[str, type[Method]] = {}
_LEARNERS: dict[str, type[Learner]] = {}
GROUPS = ("sequoia.domains", "sequoia.settings", "sequoia.learners", "sequoia.methods")
"""The entry-point groups, in the order they load (a domain's settings before the methods that target them)."""
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


def register_domain(domain: Domain) -> Domain:
    """Register a domain and import its modules (which register its settings and learners).

    Raises:
        RegistrationError: another domain already has that name.
    """
    taken = _DOMAINS.get(domain.name)
    if taken is not None and taken != domain:
        raise RegistrationError(f"domain name {domain.name!r} is taken (by the domain whose modules are "
                                f"{', '.join(taken.modules) or 'none'}); the domain of {', '.join(domain.modules)} "
                                "needs another name")
    _DOMAINS[domain.name] = domain
    for module in domain.modules:
        importlib.import_module(module)
    return domain


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
    """Load every entry-point group, once (sequoia's own domains and methods among them)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for group in GROUPS:
        load_entry_points(group)
    if not _DOMAINS:
        raise SequoiaError("no domain is registered: sequoia's entry points are missing from its installed "
                           "metadata; install it (pip install -e .) rather than running it from its folder alone")


_KINDS: dict[str, tuple[str, dict[str, Any], Callable[[Any], Any], Callable[[Any], str]]] = {
    "sequoia.domains": ("domain", _DOMAINS, register_domain, lambda domain: domain.name),
    "sequoia.settings": ("setting", _SETTINGS, register_setting, lambda cls: cls.qualified_name()),
    "sequoia.learners": ("learner", _LEARNERS, register_learner, lambda cls: cls.name),
    "sequoia.methods": ("method", _METHODS, register_method, lambda cls: cls.name),
}
"""Per group: what it registers, its registry, how to register one, and the name it is registered under."""


def load_entry_points(group: str = "sequoia.methods") -> list[str]:
    """Register what the packages installed here declare in ``group`` (one of :data:`GROUPS`).

    An entry point names a module (imported: its own ``register_*`` calls register what it holds)
    or an object (a :class:`~sequoia.domain.Domain`, or a setting, learner or method class). A
    package's own ``register_*`` call wins over its entry point (the same object), and a taken name is
    never replaced: an entry point whose object is another one under a taken name is skipped with a
    warning naming both. Returns the names registered.
    """
    kind, registry, register, name_of = _KINDS[group]
    added = []
    for entry_point in entry_points(group=group):
        try:
            loaded = entry_point.load()
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break sequoia
            raise SequoiaError(f"could not load {kind} entry point {entry_point.name!r}: {error}") from error
        if isinstance(loaded, types.ModuleType):
            continue  # importing it registered what it holds
        if group == "sequoia.domains" and not isinstance(loaded, Domain):
            raise SequoiaError(f"domain entry point {entry_point.name!r} names {loaded!r}, not a sequoia.domain.Domain")
        name = name_of(loaded)
        taken = registry.get(name)
        if taken is None:
            register(loaded)
            added.append(name)
        elif taken is not loaded and taken != loaded:
            shown = where_defined(taken) if isinstance(taken, type) else repr(taken.name)
            warnings.warn(f"entry point {entry_point.name!r} skipped: {kind} name {name!r} is taken by {shown}",
                          stacklevel=2)
    return added


def domains() -> dict[str, Domain]:
    """Every registered domain by name."""
    _ensure_loaded()
    return dict(_DOMAINS)


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


def learner_for(name: str, setting: type[Setting]) -> type[Learner]:
    """The learner registered as ``name``; an unknown name is refused listing the learners of ``setting``'s
    domain (those other domains' packages add are no answer here)."""
    found = learners().get(name)
    if found is None:
        raise _unknown("learner", name, [n for n, cls in _LEARNERS.items() if issubclass(setting, cls.domain)])
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
    method applies to, preferring the domain of the lowest :attr:`Domain.priority`.
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
        domain = _DOMAINS.get(cls.domain)
        return domain.priority if domain is not None else DEFAULT_PRIORITY

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
