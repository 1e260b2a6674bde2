"""The ``sequoia`` command's entry point: signals handled before anything heavy loads.

SIGINT (Ctrl-C) and SIGTERM raise :class:`Interrupted` wherever the program is, even
while torch imports or a model loads; :func:`sequoia.cli.main` turns it into one line
and exit code 130 or 143 (128 + the signal). A second signal while the first is
handled ends the process at once with the same code: checkpoints are written
atomically, so even that leaves a resumable run directory.
"""

from __future__ import annotations

import os
import signal
import sys


class Interrupted(KeyboardInterrupt):
    """A SIGINT or SIGTERM, raised where the program was; ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def _raise_interrupted(signum: int, frame) -> None:
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), _exit_now)
    raise Interrupted(signum)


def _exit_now(signum: int, frame) -> None:
    os._exit(128 + signum)


def install_signal_handlers() -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` (main thread only, as Python requires)."""
    signal.signal(signal.SIGINT, _raise_interrupted)
    signal.signal(signal.SIGTERM, _raise_interrupted)


def entry() -> None:
    """``sequoia ...``: run the command line and exit with its code."""
    install_signal_handlers()
    try:
        from sequoia.cli import main

        code = main()
    except KeyboardInterrupt as error:  # before main() could take it: torch was still importing
        print("sequoia: interrupted", file=sys.stderr)
        code = getattr(error, "exit_code", 130)
    sys.exit(code)
