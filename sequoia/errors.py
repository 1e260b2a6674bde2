"""User-facing errors.

Every mistake a user can make on the command line or in a config file raises a
:class:`SequoiaError`; the CLI prints its message as one line and exits with code 2.
A :class:`TrainingError` (a loss that became NaN, memory that ran out) stops a run
that started well; the CLI prints it as one line and exits with code 1, and the run
directory keeps its last checkpoint.
"""

from __future__ import annotations

import errno


class SequoiaError(Exception):
    """A problem with the user's input (a name, an option value, a file), not a bug."""

    exit_code = 2


class UnknownNameError(SequoiaError):
    """A setting, method or learner name that is not registered."""


class NotApplicableError(SequoiaError):
    """A method was asked to run on a setting outside its target."""


class TrainingError(SequoiaError):
    """Training failed after the run started (the input was fine)."""

    exit_code = 1


class NonFiniteLossError(TrainingError):
    """A training loss was NaN or infinite."""


class IncompleteSweepError(SequoiaError):
    """Some runs of a sweep did not finish (each run's own error is in the sweep's index and logs)."""

    exit_code = 1


def disk_full(error: OSError) -> bool:
    """Whether ``error`` says the disk (or the user's quota) is full.

    Example:
        >>> import errno
        >>> disk_full(OSError(errno.ENOSPC, "No space left on device")), disk_full(OSError(errno.EACCES, "no"))
        (True, False)
    """
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of ``error``'s message, at most ``limit`` characters: for one-line reports.

    Example:
        >>> first_line(ValueError("bad value\\nmore detail"))
        'bad value'
    """
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else "(no message)"


def summary(error: BaseException, limit: int = 200) -> str:
    """``Type: first line`` of ``error``: how a one-line message quotes another library's failure.

    Example:
        >>> summary(KeyError("x"))
        "KeyError: 'x'"
    """
    return f"{type(error).__name__}: {first_line(error, limit)}"
