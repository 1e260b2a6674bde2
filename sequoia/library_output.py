"""Keeping the libraries sequoia drives from talking on stderr, unless ``--verbose``.

transformers reports each model load as a table (a dozen lines before sequoia's own
one-line refusal of a model whose weights do not match its config), gymnasium's
environment checker warns once per check and call site, bitsandbytes logged a line per
matrix product on the CPU. On stderr a user should find sequoia's progress, its
warnings and its one-line errors. ``sequoia --verbose`` (or ``SEQUOIA_VERBOSE=1``, which
the runs of a sweep inherit) lets every library speak.

The Hugging Face libraries read their verbosity from the environment when first
imported (setting a logger's level before that is undone by the import), so their
variables are set here, before any of them loads, unless the user set them already.

Example:
    >>> environment = {"DATASETS_VERBOSITY": "info"}
    >>> quiet_hugging_face(environment)
    >>> environment["TRANSFORMERS_VERBOSITY"], environment["DATASETS_VERBOSITY"]  # the user's choice kept
    ('error', 'info')
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import MutableMapping

VERBOSE_VARIABLE = "SEQUOIA_VERBOSE"
SET_HERE_VARIABLE = "SEQUOIA_QUIETED"
"""The variables of :data:`HUGGING_FACE_VARIABLES` sequoia set, not the user (a verbose child removes them)."""

HUGGING_FACE_VARIABLES = {
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # "Loading weights" and download bars, beside sequoia's own
}
"""Read by transformers, datasets and huggingface_hub at import."""

LIBRARIES = ("accelerate", "bitsandbytes", "datasets", "gymnasium", "huggingface_hub", "kernels", "lm_eval",
             "matplotlib", "metaworld", "numpy", "optuna", "peft", "PIL", "stable_baselines3", "submitit", "torch",
             "torchvision", "transformers", "trl", "avalanche", "qpsolvers")
"""Packages whose log records below ERROR and whose Python warnings are hidden."""


VERBOSE_VALUES = {"1": True, "true": True, "yes": True, "on": True, "": False, "0": False, "false": False,
                  "no": False, "off": False}
"""What ``SEQUOIA_VERBOSE`` may hold (any case, surrounding spaces ignored)."""


def verbose_requested(argv: list[str], environment: MutableMapping[str, str]) -> bool:
    """Whether ``--verbose`` is among the arguments (before a ``--``) or ``SEQUOIA_VERBOSE`` says so.

    Raises:
        SequoiaError: ``SEQUOIA_VERBOSE`` holds something other than the values of :data:`VERBOSE_VALUES`.

    Example:
        >>> verbose_requested(["--setting", "sl.incremental", "--verbose"], {})
        True
        >>> verbose_requested([], {"SEQUOIA_VERBOSE": "0"}), verbose_requested([], {"SEQUOIA_VERBOSE": "True"})
        (False, True)
    """
    from sequoia.errors import SequoiaError

    arguments = argv[:argv.index("--")] if "--" in argv else argv
    value = environment.get(VERBOSE_VARIABLE, "")
    requested = VERBOSE_VALUES.get(value.strip().lower())
    if requested is None:
        raise SequoiaError(f"{VERBOSE_VARIABLE}={value!r}: expected 1, true, yes or on (the libraries' output "
                           "shown) or 0, false, no, off or nothing (hidden)")
    return "--verbose" in arguments or requested


def quiet_libraries(environment: MutableMapping[str, str] | None = None, verbose: bool = False) -> None:
    """Hide the libraries' warnings and log records below ERROR; with ``verbose``, hide nothing.

    ``environment`` (``os.environ`` by default) receives the Hugging Face variables and, when
    verbose, ``SEQUOIA_VERBOSE=1`` for the processes this one starts.
    """
    environment = os.environ if environment is None else environment
    if verbose:
        environment[VERBOSE_VARIABLE] = "1"
        for name in environment.pop(SET_HERE_VARIABLE, "").split(","):
            environment.pop(name, None)  # inherited from a quiet parent process
        return
    quiet_hugging_face(environment)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    pattern = "|".join(LIBRARIES)
    warnings.filterwarnings("ignore", module=rf"({pattern})(\.|$)")


def quiet_hugging_face(environment: MutableMapping[str, str]) -> None:
    """The Hugging Face libraries' verbosity variables, where the user has not set them (recorded as set here)."""
    set_here = {name for name in environment.get(SET_HERE_VARIABLE, "").split(",") if name}
    for name, value in HUGGING_FACE_VARIABLES.items():
        if name not in environment:
            environment[name] = value
            set_here.add(name)
    if set_here:
        environment[SET_HERE_VARIABLE] = ",".join(sorted(set_here))
