"""Progress within one part of an evaluation: the items scored so far, shown on the part's bar.

The evaluation's bar counts parts (a task's test items, a probe), and one part can take
minutes (thousands of replies scored on a CPU, a hundred episodes). The loops that do
the work (:func:`sequoia.lm.scoring.score_replies`, a classifier's predictions, the test
episodes of RL) report what they have done through :func:`items`, which shows it on the
bar of the part in progress (:func:`within`), so that a user can tell slow from stuck.
Outside an evaluation, or for a method whose loops do not report, nothing happens.

Each report also ends the run at once if a signal arrived whose interrupt a library
swallowed (:func:`sequoia.console.raise_if_signalled`).

Example:
    >>> shown = []
    >>> with within(shown.append):
    ...     items(64, 256, "replies")
    >>> shown
    ['64/256 replies']
    >>> items(1, 2, "replies")  # outside a part: nothing shown, nothing raised
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from sequoia.console import raise_if_signalled

_show: ContextVar[Callable[[str], None] | None] = ContextVar("sequoia_part_progress", default=None)
_last_shown: ContextVar[float] = ContextVar("sequoia_part_progress_time", default=0.0)
MIN_INTERVAL_S = 0.5
"""Reports closer together than this are not redrawn (the last of a part always is)."""


@contextlib.contextmanager
def within(show: Callable[[str], None]) -> Iterator[None]:
    """Route :func:`items` reports to ``show`` (the text to put on the part's bar) while inside."""
    token, shown = _show.set(show), _last_shown.set(0.0)  # a part's first report is always drawn
    try:
        yield
    finally:
        _show.reset(token)
        _last_shown.reset(shown)


def items(done: int, total: int, unit: str) -> None:
    """``done`` of ``total`` items (``unit``: replies, images, episodes...) of the current part are done."""
    raise_if_signalled()
    show = _show.get()
    if show is None:
        return
    now = time.monotonic()
    if done < total and now - _last_shown.get() < MIN_INTERVAL_S:
        return
    _last_shown.set(now)
    show(f"{done}/{total} {unit}")
