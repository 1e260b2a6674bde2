"""Reading the text and JSON files a user hands to ``sequoia``, with one-line errors.

Every file that enters from outside (a config, a schedule, a preference file, the
JSON metadata of a saved dataset) goes through :func:`read_utf8`, so a missing
file, a directory where a file belongs, bytes that are not UTF-8 or an unreadable
file each give the same kind of message, naming the file and what it was for.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "state.json"
    >>> _ = path.write_bytes(b'{"a": [1, 2]}')
    >>> read_json(path, "dataset state")
    {'a': [1, 2]}
    >>> _ = path.write_bytes(b"caf\\xe9")
    >>> read_json(path, "dataset state")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: dataset state .../state.json is not UTF-8 text (byte 3 cannot be decoded)
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

from sequoia.errors import SequoiaError
from sequoia.paths import check_path


def read_utf8(path: str | Path, what: str, max_bytes: int | None = None) -> str:
    """The text of the file ``path``; ``what`` names it in messages (``"config file"``).

    Raises:
        SequoiaError: the file is missing, not a regular file, larger than
            ``max_bytes``, unreadable, or not UTF-8, or its path breaks the file system's limits.
    """
    file = Path(check_path(path, what))
    if not file.exists():
        raise SequoiaError(f"{what} not found: {path}")
    if not file.is_file():
        kind = "a directory" if file.is_dir() else "not a regular file"
        raise SequoiaError(f"{what} {path} is {kind}; expected a file")
    try:
        if max_bytes is not None and file.stat().st_size > max_bytes:
            raise SequoiaError(f"{what} {path} is over {max_bytes // 1024} KiB; a {what} is a short text file")
        return file.read_bytes().decode("utf-8-sig")  # a leading byte-order mark, as some editors write, is dropped
    except UnicodeDecodeError as error:
        raise SequoiaError(f"{what} {path} is not UTF-8 text (byte {error.start} cannot be decoded)") from None
    except OSError as error:
        raise SequoiaError(f"{what} {path} cannot be read ({error.strerror or error})") from None


def check_utf8(path: str | Path, what: str, chunk: int = 1 << 20) -> None:
    """Refuse a file that is not UTF-8, read in chunks: for data files too large to hold as text.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> path = Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> _ = path.write_bytes("é".encode() * 3 + b"\\xff")
        >>> check_utf8(path, "dataset file", chunk=3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: dataset file .../rows.jsonl is not UTF-8 text (byte 6 cannot be decoded)
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open(path, "rb") as file:
            while block := file.read(chunk):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as error:
                    held = len(error.object) - len(block)  # bytes of a character begun in the last block
                    raise SequoiaError(f"{what} {path} is not UTF-8 text "
                                       f"(byte {offset - held + error.start} cannot be decoded)") from None
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise SequoiaError(f"{what} {path} is not UTF-8 text (it ends inside a character)") from None
    except OSError as error:
        raise SequoiaError(f"{what} {path} cannot be read ({error.strerror or error})") from None


def parse_json(text: str, where: str) -> Any:
    """``json.loads``, with its errors (a nesting past the recursion limit included) as one line.

    Example:
        >>> parse_json("[1, 2", "row 3")
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: row 3: invalid JSON (Expecting ',' delimiter)
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SequoiaError(f"{where}: invalid JSON ({error.msg})") from None
    except RecursionError:
        raise SequoiaError(f"{where}: JSON nested too deeply to be a record") from None


def read_json(path: str | Path, what: str) -> Any:
    """The JSON value in the file ``path``, every failure one line naming ``what`` and the file."""
    return parse_json(read_utf8(path, what), f"{what} {path}")


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary name and a rename: a kill leaves the old file or the new one.

    Example:
        >>> import tempfile
        >>> path = write_atomically(Path(tempfile.mkdtemp()) / "index.json", "{}\\n")
        >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
        ('{}\\n', ['index.json'])
    """
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    partial.replace(path)
    return path
