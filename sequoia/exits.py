"""How a command ends: each kind of error as one line on stderr and an exit code.

Input errors print one line and give 2, a failed run 1, an interrupt 130 (SIGINT) or
143 (SIGTERM). A reader of stdout that went away ends the command quietly with 141
(as SIGPIPE ends Unix tools); a full device under stdout or an output file is one line
and 2. Anything else is a bug: one line names the file that holds its traceback, and
the code is 1 (``SEQUOIA_DEBUG=1`` raises it instead). The command line and a sweep's
runs (each in its worker, its output in its log) end through :func:`guarded` alike.

Example:
    >>> from sequoia.errors import SequoiaError
    >>> def bad_input():
    ...     raise SequoiaError("--seed -1: expected an integer")
    >>> import contextlib, io
    >>> with contextlib.redirect_stderr(io.StringIO()) as err:
    ...     code = guarded(bad_input)
    >>> code, err.getvalue().splitlines()
    (2, ['sequoia: error: --seed -1: expected an integer'])
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from sequoia import console
from sequoia.errors import SequoiaError, disk_full, summary


def guarded(command: Callable[[], int]) -> int:
    """Run ``command`` and return its exit code; every error it raises becomes one line and a code."""
    try:
        code = command()
        console.raise_if_signalled()  # a signal some library swallowed: the command did not end as asked
        flush_stdout()  # a full device or a reader gone fails here, where the handlers below see it
        return code
    except SequoiaError as error:
        print(f"sequoia: error: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as error:
        print(f"sequoia: interrupted{getattr(error, 'recovery_hint', '')}", file=sys.stderr)
        return getattr(error, "exit_code", 130)
    except BrokenPipeError as error:
        return output_closed(getattr(error, "recovery_hint", ""))
    except OSError as error:
        return interrupted_instead(error) or (output_full(error) if disk_full(error) else internal_error(error))
    except Exception as error:
        return interrupted_instead(error) or internal_error(error)


def interrupted_instead(error: Exception) -> int:
    """An error raised after a signal (a library wrapping the interrupt in its own error, for example inside
    a lazy import) is the interrupt: its one line and exit code; 0 where no signal came."""
    signum = console.signalled()
    if signum is None:
        return 0
    print(f"sequoia: interrupted{getattr(error, 'recovery_hint', '')}", file=sys.stderr)
    return 128 + signum


def internal_error(error: Exception) -> int:
    """A bug: one line naming the file that holds the traceback; exit code 1 (``SEQUOIA_DEBUG=1`` raises)."""
    if os.environ.get("SEQUOIA_DEBUG") == "1":
        raise error
    where = save_traceback(error, getattr(error, "run_directory", None))
    print(f"sequoia: internal error: {summary(error)} (a bug in sequoia; the "
          f"traceback is in {where}, please report it)", file=sys.stderr)
    return 1


def output_full(error: OSError) -> int:
    """A full device under stdout or an output file: one line, and 2 (as ``ls > /dev/full`` does)."""
    if os.environ.get("SEQUOIA_DEBUG") == "1":
        raise error
    silence_stdout()  # Python's flush at exit would fail on the same device
    print(f"sequoia: error: cannot write {error.filename or 'the output'}: {error.strerror}"
          f"{getattr(error, 'recovery_hint', '')}", file=sys.stderr)
    return 2


def flush_stdout() -> None:
    """Write out what stdout holds (it is None where the interpreter started without one)."""
    if sys.stdout is not None:
        sys.stdout.flush()


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that nothing more is written where writing failed."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout already closed or replaced
        pass


def output_closed(hint: str) -> int:
    """The reader of stdout went away (``sequoia list | head -1``): end quietly, as Unix tools do.

    Returns 141 (128 + SIGPIPE, what a shell reports for a tool that SIGPIPE ended). stdout
    is pointed at /dev/null so that Python's last flush at exit does not fail again; a
    run says on stderr where its checkpoint or results are (``hint``).
    """
    silence_stdout()
    if hint:
        try:
            print(f"sequoia: stdout was closed{hint}", file=sys.stderr)
        except OSError:  # stderr went with it
            pass
    return 128 + signal.SIGPIPE


def one_line(error: BaseException) -> str:
    """``error``'s message on one line: a message quoting another library's text can hold newlines."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def save_traceback(error: BaseException, run_directory: Path | None) -> Path:
    """Write ``error``'s traceback to ``traceback.txt`` in the run directory, else to a temporary file."""
    text = "".join(traceback.format_exception(error))
    if run_directory is not None and run_directory.is_dir():
        path = run_directory / "traceback.txt"
        try:
            path.write_text(text)
            return path
        except OSError:  # a read-only or full place: the temporary directory below
            pass
    handle, name = tempfile.mkstemp(prefix="sequoia-traceback-", suffix=".txt")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return Path(name)
