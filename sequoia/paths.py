"""Paths a user hands sequoia, checked against the operating system's limits where they enter.

A name longer than the file system allows (``NAME_MAX``, 255 bytes on most) or a path
longer than ``PATH_MAX`` fails deep inside ``mkdir`` or ``open`` otherwise, after a
directory may have been half made. :func:`check_path` refuses it first, in one line
that names the option and the limit; :func:`path_option` makes it an ``argparse``
type, so that every command's path options are checked while its arguments are read.
"""

import argparse
import os
from pathlib import Path

from sequoia.errors import SequoiaError

DEFAULT_NAME_MAX = 255
DEFAULT_PATH_MAX = 4096


def nearest_existing(path: Path) -> Path:
    """``path``, or its closest ancestor that exists (a name too long to look up counts as absent).

    A relative path ends at ``.`` at the latest.

    Example:
        >>> nearest_existing(Path("/") / "no-such-directory" / "run")
        PosixPath('/')
        >>> nearest_existing(Path("no-such-directory") / "run")
        PosixPath('.')
    """
    candidate = path
    while candidate != candidate.parent:
        try:
            if candidate.exists():
                return candidate
        except OSError:  # ENAMETOOLONG and the like: not a place anything exists
            pass
        candidate = candidate.parent
    return candidate


def unwritable(path: Path) -> str | None:
    """Why nothing can be written at or under ``path`` (its nearest existing ancestor decides), or ``None``.

    Example:
        >>> unwritable(Path("/etc/passwd/cache"))
        '/etc/passwd is a file, not a directory'
    """
    existing = nearest_existing(path)
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        return f"{existing} {'is on a read-only file system' if read_only else 'is not writable'}"
    return None


def check_resumable_place(directory: Path) -> None:
    """A directory ``--resume`` continues in must take new files (checkpoints, logs, results), checked first."""
    problem = unwritable(directory)
    if problem:
        raise SequoiaError(f"cannot resume {directory}: {problem}, and resuming writes there (copy the directory "
                           "to a writable place and resume the copy)")


def _limit(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(nearest_existing(path), name)
    except (OSError, ValueError):
        return default


def _shown(text: str, keep: int = 24) -> str:
    """``text``, cut in the middle if long, so that a refusal stays one readable line."""
    return text if len(text) <= 2 * keep + 3 else f"{text[:keep]}...{text[-keep:]}"


def check_path(text: str | os.PathLike, option: str) -> str:
    """``text`` unchanged, or a :class:`SequoiaError` naming ``option`` and the limit the path breaks.

    Example:
        >>> check_path("results/run", "--output")
        'results/run'
        >>> check_path("a" * 300, "--output")
        Traceback (most recent call last):
        ...
        sequoia.errors.SequoiaError: --output aaaaaaaaaaaaaaaaaaaaaaaa...aaaaaaaaaaaaaaaaaaaaaaaa: a name in it is 300 bytes; this file system allows at most 255 bytes for one name
    """
    path = Path(text)
    name_max = _limit(path, "PC_NAME_MAX", DEFAULT_NAME_MAX)
    longest = max(path.parts, key=lambda part: len(os.fsencode(part)), default="")
    if len(os.fsencode(longest)) > name_max:
        raise SequoiaError(f"{option} {_shown(str(text))}: a name in it is {len(os.fsencode(longest))} bytes; "
                           f"this file system allows at most {name_max} bytes for one name")
    path_max = _limit(path, "PC_PATH_MAX", DEFAULT_PATH_MAX)
    size = len(os.fsencode(str(path.absolute())))
    if size >= path_max:  # PATH_MAX counts the terminating null byte
        raise SequoiaError(f"{option} {_shown(str(text))}: the path is {size} bytes from the root; this system allows "
                           f"at most {path_max - 1}")
    return str(text)


def path_option(option: str):
    """An ``argparse`` ``type`` that checks a path option's value with :func:`check_path`.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> _ = parser.add_argument("--output", type=path_option("--output"))
        >>> parser.parse_args(["--output", "results"]).output
        'results'
    """
    def checked(text: str) -> str:
        try:
            return check_path(text, option)
        except SequoiaError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{option} ")) from None
    checked.__name__ = "path"  # argparse names the type in its own messages
    return checked
