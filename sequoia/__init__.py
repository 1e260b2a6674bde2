"""sequoia: continual-learning research problems as a tree of settings.

Example:
    >>> from sequoia import get_method, resolve_setting
    >>> setting = resolve_setting("class_incremental", get_method("replay"))()
    >>> results = setting.apply(get_method("replay")(), progress=False)
    >>> 0.0 <= results.matrix.average_final() <= 1.0
    True
"""

from sequoia.errors import NotApplicableError, SequoiaError, UnknownNameError
from sequoia.registry import (
    get_learner,
    get_method,
    register_learner,
    register_method,
    register_setting,
    resolve_setting,
)
from sequoia.results import Results, TransferMatrix

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
