"""Signals handled before anything heavy loads (installed by :mod:`sequoia.entry`, the command's entry point).

SIGINT (Ctrl-C) and SIGTERM raise :class:`Interrupted` wherever the program is, even
while torch imports or a model loads; :func:`sequoia.exits.guarded` turns it into one line
and exit code 130 or 143 (128 + the signal). A second signal while the first is
handled ends the process at once with the same code: checkpoints are written
atomically, so even that leaves a resumable run directory. (A sweep's worker processes
ignore a second signal instead: their driver forwards the one it got, and a terminal's
Ctrl-C reaches them as well.)

The signal is also remembered: a library that catches every exception while it loads
(``except BaseException``) or wraps it in its own error cannot make the run go on, since
:func:`raise_if_signalled` raises it again at the next training step or evaluation part,
and ``main`` reports an error that follows a signal as the interrupt it was.

Example:
    >>> signalled() is None
    True
"""

from __future__ import annotations

import os
import signal


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM, raised where the program was; ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


_received: list[int] = []
"""The signals this process has received, first first."""
_then = {"second": None}
"""What a second signal does: ``exit_now``, or ``signal.SIG_IGN`` in a sweep's worker."""


def _raise_interrupted(signum: int, frame) -> None:
    _received.append(signum)
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), _then["second"] or exit_now)
    raise Interrupted(signum)


def exit_now(signum: int, frame: object = None) -> None:
    """End this process at once with 128 + ``signum``: what a second signal does (no cleanup runs)."""
    os._exit(128 + signum)


def install_signal_handlers(second_ends_at_once: bool = True) -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` (main thread only, as Python requires).

    ``second_ends_at_once=False``: a second signal is ignored (a sweep's workers, which get
    the driver's forwarded signal and, from a terminal, the Ctrl-C itself).
    """
    _then["second"] = exit_now if second_ends_at_once else signal.SIG_IGN
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)


def signalled() -> int | None:
    """The first signal this process received, or ``None``."""
    return _received[0] if _received else None


def raise_if_signalled() -> None:
    """Raise :class:`Interrupted` for a signal received earlier whose exception something swallowed."""
    if _received:
        raise Interrupted(_received[0])
