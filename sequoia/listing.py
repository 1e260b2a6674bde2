"""``sequoia list``: the domains, the setting tree with the methods that apply at each node, the methods,
and the learners.

Example:
    >>> text = tree_listing()
    >>> "Learners" in text and "classifier" in text
    True
"""

from __future__ import annotations

import dataclasses

from sequoia.registry import domains, learners, methods, settings
from sequoia.settings.assumptions import LEVEL_ALIASES


def tree_listing() -> str:
    """The registered domains, the settings as a tree per domain, then the methods, then the learners."""
    return "\n".join([*_domains_lines(), "", *_settings_lines(), "", *_methods_lines(), "", *_learners_lines()])


def _domains_lines() -> list[str]:
    """Each domain, where it comes from (the package of its first module), its presets and what it is."""
    lines = ["Domains (`--preset NAME` sets a domain's option defaults):"]
    for name, domain in sorted(domains().items(), key=lambda item: (item[1].priority, item[0])):
        package = domain.modules[0].split(".")[0] if domain.modules else "?"
        presets = ", ".join(["default", *sorted(set(domain.presets) - {"default"})])
        lines.append(f"  {name:<4} from {package}; presets: {presets}. {domain.description}".rstrip())
    return lines


def _settings_lines() -> list[str]:
    registered = settings()
    all_methods = methods()
    children: dict[type | None, list[type]] = {}
    for cls in registered.values():
        parent = next((base for base in cls.__mro__[1:] if base in registered.values()), None)
        children.setdefault(parent, []).append(cls)
    aliases = {canonical: alias for alias, canonical in LEVEL_ALIASES.items()}
    lines = ["Settings (a method listed at a node runs on every node below it that trains in more than one "
             "phase; options: `sequoia --setting NAME --help`):"]

    def show(cls: type, depth: int) -> None:
        alias = f" (alias {cls.domain}.{aliases[cls.level]})" if cls.level in aliases else ""
        applicable = sorted(name for name, m in all_methods.items() if m.is_applicable(cls))
        lines.append(f"{'  ' * depth}- {cls.qualified_name()}{alias}: {', '.join(applicable) or '-'}")
        for child in children.get(cls, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 1)
    return lines


def _methods_lines() -> list[str]:
    lines = ["Methods:"]
    for name, method in sorted(methods().items()):
        summary = (method.__doc__ or "").strip().splitlines()[0] if method.__doc__ else ""
        lines.append(f"  {name:<10} targets {method.target_setting.__name__}: {summary}")
    return lines


def _default_learner_name(method: type) -> str | None:
    """The value of a method's ``learner`` option by default (``auto``, a name), ``None`` if it has none."""
    for field in dataclasses.fields(method):
        if field.name == "learner":
            return str(field.default)
    return None


def _trainers(learner: type, domain_settings: list[type]) -> list[str]:
    """The methods that train ``learner``: those applying to its domain whose ``learner`` option can name it."""
    return sorted(name for name, method in methods().items()
                  if _default_learner_name(method) in ("auto", learner.name)
                  and any(method.is_applicable(cls) for cls in domain_settings))


def _learners_lines() -> list[str]:
    """Each learner, the domain it serves (its default there or not), and the methods that train it."""
    lines = ["Learners (`--method.learner NAME`, options `--learner.*`; * marks a domain's default):"]
    registered = settings()
    for name, learner in sorted(learners().items()):
        domain_settings = [cls for cls in registered.values() if issubclass(cls, learner.domain)]
        default = any(cls.default_learner == name for cls in domain_settings)
        label = f"{name}{'*' if default else ''}"
        trainers = ", ".join(_trainers(learner, domain_settings)) or "-"
        lines.append(f"  {label:<12} {learner.domain.__name__:<18} trained by: {trainers}")
    return lines
