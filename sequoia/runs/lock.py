"""One process at a time in a run directory.

A run (new or resumed) holds an exclusive ``flock`` on its ``config.yaml`` while it
runs. The lock belongs to the open file, so it dies with the process however the
process ends (SIGKILL included), and taking it writes nothing: a refused process
leaves the directory byte-identical. A second process gets one line naming the
holder's pid (read from ``/proc/locks`` where the system has it).

Where ``fcntl`` is missing (Windows) runs are not locked.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> run_dir = Path(tempfile.mkdtemp()); _ = (run_dir / "config.yaml").write_text("seed: 0\\n")
    >>> first = DirectoryLock.take(run_dir)
    >>> DirectoryLock.take(run_dir)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: ...another sequoia process (pid ...) is running in it...
    >>> first.release(); DirectoryLock.take(run_dir).release()
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from sequoia.errors import SequoiaError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCKED_FILE = "config.yaml"


class DirectoryLock:
    """An exclusive lock on one run directory, held until :meth:`release` or the process ends."""

    def __init__(self, directory: Path, file: BinaryIO | None) -> None:
        self.directory = directory
        self._file = file  # a file object, so that a lock its owner forgot still ends when it is collected

    @classmethod
    def take(cls, directory: Path, locked_file: str = LOCKED_FILE) -> "DirectoryLock":
        """Lock ``directory`` (which holds ``locked_file``), or a one-line error naming the holder."""
        if fcntl is None:
            return cls(directory, None)
        file = (directory / locked_file).open("rb")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_pid(file.fileno())
            file.close()
            who = f" (pid {holder})" if holder else ""
            raise SequoiaError(f"cannot run in {directory}: another sequoia process{who} is running in it; "
                               "wait for it to end, or stop it and resume") from None
        return cls(directory, file)

    def release(self) -> None:
        """Let another process in (closing the file drops the lock)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _holder_pid(descriptor: int) -> int | None:
    """The pid holding a ``flock`` on the file, from ``/proc/locks`` (Linux), else ``None``."""
    inode = os.fstat(descriptor).st_ino
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF": pid, then major:minor:inode
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return int(fields[4]) if fields[4].isdigit() else None
    return None
