"""Importing Avalanche (``avalanche-lib``), an optional dependency, with one-line errors.

Avalanche imports torchvision; :mod:`sequoia.torchvision_compat`, installed when
``sequoia`` is imported, makes that import work where torchvision's compiled operators
cannot load.

Example:
    >>> missing_extra_message("avalanche.gem").startswith("--method avalanche.gem needs Avalanche")
    True
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

from sequoia.errors import SequoiaError


class MissingExtraError(SequoiaError):
    """An optional dependency is not installed."""


def missing_extra_message(method: str) -> str:
    """The one-line error for an Avalanche method without Avalanche installed."""
    return (f"--method {method} needs Avalanche, which is not installed: pip install 'sequoia[avalanche]' "
            "(docs/methods/avalanche.md says how to keep your torch)")


def import_avalanche(method: str) -> ModuleType:
    """``avalanche.training``, imported quietly; :class:`MissingExtraError` naming the extra where it is missing."""
    try:
        with warnings.catch_warnings():
            # qpsolvers warns at import that no solver is installed; GEM says so itself when it needs one.
            warnings.simplefilter("ignore")
            return importlib.import_module("avalanche.training")
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] in {"avalanche", "torchvision"}:
            raise MissingExtraError(missing_extra_message(method)) from None
        raise
