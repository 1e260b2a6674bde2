"""``python -m sequoia``: the same as the ``sequoia`` command."""

from sequoia.entry import entry

entry()
