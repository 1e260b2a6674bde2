"""``python -m sequoia``: the same as the ``sequoia`` command."""

from sequoia.console import entry

entry()
