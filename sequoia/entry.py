"""The ``sequoia`` command's entry point: the signal handlers first, then the command line.

Kept apart from :mod:`sequoia.console` (the signal handling every part may use) so that
only this module names the command line; nothing imports it.
"""

import sys

from sequoia.console import install_signal_handlers


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
