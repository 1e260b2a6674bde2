"""Shared fixtures: no network, and quick versions of every registered setting."""

import dataclasses
import os

# Tests never touch the network. Set before any test module imports the HF
# libraries, which read these once at import: the hub then fails at once
# instead of retrying for about 24 seconds.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from sequoia.settings.base import Setting  # noqa: E402


# Options that make each domain's settings small enough for the contract suite.
QUICK_OPTIONS: dict[str, dict] = {
    "sl": {},  # digits is small enough to use whole
}


def quick_setting(setting_cls: type[Setting]) -> Setting:
    """An instance of ``setting_cls`` with its domain's quick options (those it has)."""
    names = {f.name for f in dataclasses.fields(setting_cls)}
    options = {k: v for k, v in QUICK_OPTIONS.get(setting_cls.domain, {}).items() if k in names}
    return setting_cls(**options)
