"""Named bundles of option defaults, per domain: ``sequoia ... --preset smoke``.

A preset sets defaults for the ``setting``, ``method`` and ``learner`` groups; a
config file and command-line options still override it. Each domain declares its
presets (:class:`sequoia.domain.Domain`); two names are common:

* ``default``: the options' own defaults (the full default run), in every domain.
* ``smoke``: a quick end-to-end check of a domain (about a minute on 2 CPU cores):
  for PA, the tiny random model on small slices of the default tasks; for RL,
  3000 steps per task.
"""

from typing import Any

from sequoia.errors import SequoiaError

DEFAULT = "default"


def known_presets() -> list[str]:
    """Every preset some registered domain declares, ``default`` first."""
    from sequoia.registry import domains

    names = {name for domain in domains().values() for name in domain.presets}
    return [DEFAULT, *sorted(names - {DEFAULT})]


def preset_values(name: str, domain: str) -> dict[str, dict[str, Any]]:
    """The option defaults of preset ``name`` for ``domain``, by group (setting, method, learner).

    Example:
        >>> from sequoia.settings.pa import IncrementalPASetting
        >>> preset_values("smoke", IncrementalPASetting.domain)["setting"]["model"]
        'tiny-random'
    """
    from sequoia.registry import domains

    if name not in known_presets():
        raise SequoiaError(f"unknown preset {name!r}; known: {', '.join(known_presets())}")
    registered = domains().get(domain)
    return registered.preset(name) if registered is not None else {}
