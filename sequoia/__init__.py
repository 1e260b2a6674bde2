"""sequoia: continual-learning research problems as a tree of settings.

Example:
    >>> from sequoia import get_method, resolve_setting
    >>> setting = resolve_setting("class_incremental", get_method("replay"))()
    >>> results = setting.apply(get_method("replay")(), progress=False)
    >>> 0.0 <= results.matrix.average_final() <= 1.0
    True
"""

import importlib
import logging

from sequoia import torchvision_compat


class _NoOptionalKernelsNote(logging.Filter):
    """bitsandbytes' CPU backend logs, when peft imports it, that an optional package of faster
    kernels (``kernels``, fetched from the Hugging Face hub) is missing; it works without it,
    and the note would open every run's output. Where ``kernels`` is installed (transformers
    5.25 requires it) and the hub is offline, ``kernels`` logs instead that it skips the
    publisher check of that same optional kernel repository."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels-community" not in record.getMessage()


for _logger in ("bitsandbytes.backends.cpu.ops", "kernels._internals.hf_hub"):
    logging.getLogger(_logger).addFilter(_NoOptionalKernelsNote())

torchvision_compat.install()  # before anything (transformers, Avalanche) imports torchvision

# Imported on first use (PEP 562), so that `import sequoia` is light: the `sequoia`
# command installs its signal handlers before torch and the registries load.
_EXPORTS = {
    "NotApplicableError": "sequoia.errors",
    "SequoiaError": "sequoia.errors",
    "UnknownNameError": "sequoia.errors",
    "get_learner": "sequoia.registry",
    "get_method": "sequoia.registry",
    "register_learner": "sequoia.registry",
    "register_method": "sequoia.registry",
    "register_setting": "sequoia.registry",
    "resolve_setting": "sequoia.registry",
    "Results": "sequoia.results",
    "TransferMatrix": "sequoia.results",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sequoia' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "NotApplicableError",
    "Results",
    "SequoiaError",
    "TransferMatrix",
    "UnknownNameError",
    "get_learner",
    "get_method",
    "register_learner",
    "register_method",
    "register_setting",
    "resolve_setting",
]
