"""User-facing errors.

Every mistake a user can make on the command line or in a config file raises a
:class:`SequoiaError`; the CLI prints its message as one line and exits with code 2.
"""

from __future__ import annotations


class SequoiaError(Exception):
    """A problem with the user's input (a name, an option value, a file), not a bug."""


class UnknownNameError(SequoiaError):
    """A setting, method or learner name that is not registered."""


class NotApplicableError(SequoiaError):
    """A method was asked to run on a setting outside its target."""
