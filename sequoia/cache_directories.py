"""The cache and configuration directories sequoia's libraries write to, named by environment variables.

matplotlib (plots of every run, sweep and comparison) keeps a font cache, and the
Hugging Face libraries keep downloaded models and datasets, under directories that
``MPLCONFIGDIR``, ``HF_HOME``, ``XDG_CACHE_HOME``, ``XDG_CONFIG_HOME`` and ``HOME`` decide.
A value that cannot be such a directory (a file, a directory that cannot be written, or a
place where one cannot be made) fails later inside a library, with a traceback or with a
warning and a fallback. Here each location in use is checked before anything is made,
and a bad one is one line naming the variable that chose it.

``HOME`` is checked only for the locations it decides: with ``XDG_CACHE_HOME``,
``XDG_CONFIG_HOME`` (or ``MPLCONFIGDIR``) and ``HF_HOME`` set to writable directories,
a read-only home is fine.

Example:
    >>> environment = {"HOME": "/etc/passwd"}
    >>> [(use.variable, use.what) for use in locations(environment)][:2]
    [('HOME', "matplotlib's configuration"), ('HOME', "matplotlib's cache")]
    >>> check(environment)
    Traceback (most recent call last):
    ...
    sequoia.errors.SequoiaError: environment variable HOME='/etc/passwd': matplotlib's configuration goes in \
/etc/passwd/.config/matplotlib, and /etc/passwd is a file, not a directory; set HOME (or XDG_CONFIG_HOME, \
XDG_CACHE_HOME, HF_HOME) to a writable directory
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sequoia.errors import SequoiaError
from sequoia.paths import unwritable


@dataclass(frozen=True)
class Location:
    """A directory a library writes to, and the environment variable that chose it."""

    what: str
    path: Path
    variable: str


def _under(environment: Mapping[str, str], variable: str, fallback: tuple[str, str] | None,
           tail: str) -> tuple[Path, str] | None:
    """``$variable/tail``, else ``$HOME/<fallback subfolder>/tail``; ``None`` where neither is set."""
    value = environment.get(variable, "").strip()
    if value:
        return Path(value) / tail, variable
    home = environment.get("HOME", "").strip()
    if fallback and home:
        return Path(home) / fallback[1] / tail, "HOME"
    return None


def locations(environment: Mapping[str, str]) -> list[Location]:
    """The directories in use: matplotlib's configuration and cache, and the Hugging Face cache."""
    found: list[Location] = []
    config_dir = environment.get("MPLCONFIGDIR", "").strip()
    if config_dir:
        choices = [("matplotlib's configuration", (Path(config_dir), "MPLCONFIGDIR"))]
    else:
        choices = [("matplotlib's configuration", _under(environment, "XDG_CONFIG_HOME", ("HOME", ".config"),
                                                       "matplotlib")),
                   ("matplotlib's cache", _under(environment, "XDG_CACHE_HOME", ("HOME", ".cache"), "matplotlib"))]
    hf_home = environment.get("HF_HOME", "").strip()
    choices.append(("the Hugging Face cache", (Path(hf_home), "HF_HOME") if hf_home else
                    _under(environment, "XDG_CACHE_HOME", ("HOME", ".cache"), "huggingface")))
    for what, chosen in choices:
        if chosen is not None:
            found.append(Location(what, chosen[0], chosen[1]))
    return found


def check(environment: Mapping[str, str] | None = None) -> None:
    """One line for the first location in use that cannot be a writable directory."""
    environment = os.environ if environment is None else environment
    for location in locations(environment):
        reason = unwritable(location.path)
        if reason:
            value = environment[location.variable]
            others = "XDG_CONFIG_HOME, XDG_CACHE_HOME, HF_HOME" if location.variable == "HOME" else ""
            advice = f"set {location.variable} (or {others})" if others else f"set {location.variable}"
            raise SequoiaError(f"environment variable {location.variable}={value!r}: {location.what} goes in "
                               f"{location.path}, and {reason}; {advice} to a writable directory")
