"""Loading Hugging Face ``datasets`` from the places a user names, with one-line errors.

``datasets`` reports a damaged ``save_to_disk`` directory in many ways: a
``JSONDecodeError`` for a malformed ``state.json``, a ``TypeError`` when that file
holds a list, a ``FileNotFoundError`` for a missing shard, and it logs its own
error lines before raising. :func:`load_saved` checks the directory's JSON metadata
itself first, so the common damage gets a message naming the file, and turns
whatever ``datasets`` still raises into one line. :func:`quiet` keeps ``datasets``'
logging and, where stderr is not a terminal, its progress bars out of the output,
so a failure is the one line sequoia prints.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> saved = Path(tempfile.mkdtemp())
    >>> _ = (saved / "state.json").write_text("[1, 2]")
    >>> load_saved(saved, "dataset")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: dataset ...: state.json must hold a JSON object, not a list (a damaged save_to_disk directory)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sequoia.errors import SequoiaError, summary
from sequoia.text_files import read_json

MARKERS = ("dataset_dict.json", "state.json")
"""Files that make a directory a ``save_to_disk`` dataset (a ``DatasetDict``, or one ``Dataset``)."""
METADATA = ("dataset_dict.json", "state.json", "dataset_info.json")


def is_saved(path: Path) -> bool:
    """Whether ``path`` is a directory written by ``save_to_disk``."""
    return path.is_dir() and any((path / marker).exists() for marker in MARKERS)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """``datasets`` without its log lines, and without progress bars unless stderr is a terminal."""
    from datasets.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity(logging.CRITICAL)
    if not sys.stderr.isatty():
        logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def load_saved(path: Path, what: str) -> Any:
    """``datasets.load_from_disk(path)``: its metadata checked first, any failure one line naming ``what``."""
    for directory in (path, *sorted(p for p in path.iterdir() if p.is_dir())):
        for name in METADATA:
            _check_metadata(directory / name, path, what)
    import datasets

    try:
        with quiet():
            return datasets.load_from_disk(str(path))
    except Exception as error:  # noqa: BLE001 - datasets raises many types for a damaged directory
        raise SequoiaError(f"{what} {path} cannot be loaded as a saved dataset "
                           f"({summary(error)})") from None


def _check_metadata(file: Path, root: Path, what: str) -> None:
    if not file.exists():
        return
    name = file.relative_to(root)
    value = read_json(file, f"{what} {root}: its file")
    if not isinstance(value, dict):
        raise SequoiaError(f"{what} {root}: {name} must hold a JSON object, not a {type(value).__name__} "
                           "(a damaged save_to_disk directory)")

