"""The operating system's limits and the terminal as inputs: over-long names and paths, an output path
that is a file, a reader of stdout that went away, stdout on a full device.

Each ends in one line (or, for a reader gone, in silence, as Unix tools end), never in a
traceback or an "internal error", and leaves nothing behind.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sequoia.cli import main
from tests.conftest import sequoia_environment, snapshot

LONG = "a" * 300  # over NAME_MAX (255 bytes) on every common file system
DEEP = "/".join(["b" * 200] * 25)  # over PATH_MAX (4096 bytes), each name short enough
RUN = ["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2", "--learner.epochs", "1"]

COMMANDS = {
    "run --output": [*RUN, "--output", LONG],
    "run --directory": [*RUN, "--directory", f"out/{LONG}"],
    "run --output, path too long": [*RUN, "--output", DEEP],
    "--config": ["--config", f"{LONG}.yaml"],
    "--resume": ["--resume", LONG],
    "sweep --directory": ["sweep", *RUN, "--directory", LONG],
    "sweep --output": ["sweep", *RUN, "--output", DEEP],
    "sweep --resume": ["sweep", "--resume", LONG],
    "sweep file": ["sweep", f"{LONG}.yaml"],
    "compare DIR": ["compare", LONG],
    "compare --output": ["compare", ".", "--output", LONG],
    "tune --directory": ["tune", *RUN, "--space", "learner.lr=loguniform:1e-3:1e-1", "--protocol", "validation",
                         "--directory", LONG],
    "tune --resume": ["tune", "--resume", LONG],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_an_over_long_name_or_path_is_one_line_and_leaves_nothing(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").write_text("a file, so that the directory is not empty\n")
    before = snapshot(tmp_path)
    assert main([*COMMANDS[name], "--quiet"] if name.startswith(("run", "sweep", "tune")) else COMMANDS[name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sequoia: error: "), err
    assert "bytes" in err and ("255" in err or "4095" in err), err
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_compare_into_a_file_is_refused_before_anything_is_read(tmp_path, capsys):
    (tmp_path / "table.md").write_text("mine\n")
    assert main(["compare", str(tmp_path), "--output", str(tmp_path / "table.md")]) == 2
    assert capsys.readouterr().err == f"sequoia: error: --output {tmp_path / 'table.md'}: {tmp_path / 'table.md'} " \
                                      "is a file, not a directory\n"
    assert (tmp_path / "table.md").read_text() == "mine\n"


def with_stdout(args: list[str], stdout, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sequoia", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=sequoia_environment(), cwd=cwd, timeout=300)


@pytest.mark.parametrize("args", [["list"], ["--help"], ["sweep", "--help"], [*RUN, "--quiet"]],
                         ids=["list", "help", "sweep help", "run"])  # and tests/experiments/test_broken_pipe.py
def test_a_reader_that_went_away_ends_the_command_quietly(args, tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # `sequoia ... | head -0`: every write to stdout fails with EPIPE
    try:
        done = with_stdout(args, write_end, tmp_path)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr  # 128 + SIGPIPE, as a shell reports a tool SIGPIPE ended
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    if args[0] == "--setting":  # a run says where its results are
        assert done.stderr.startswith("sequoia: stdout was closed; the run finished: its results are in ")
        [results] = tmp_path.rglob("results.json")
        assert str(results.parent.relative_to(tmp_path)) in done.stderr
    else:
        assert done.stderr == ""


def closed_stdout(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``sequoia ARGS | head -0``: the reader of stdout is gone before the command writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "sequoia", *args], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, env=sequoia_environment(), cwd=cwd, timeout=300)
    finally:
        os.close(write_end)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_stdout_on_a_full_device_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        done = with_stdout(["list"], full, tmp_path)
    assert done.returncode == 2
    assert done.stderr == "sequoia: error: cannot write the output: No space left on device\n"


READ_ONLY_COMMANDS = {
    "run --output": [*RUN, "--output", "ro/out"],
    "run --directory": [*RUN, "--directory", "ro/new"],
    "--resume": ["--resume", "ro/run"],
    "sweep --directory": ["sweep", *RUN, "--directory", "ro/sweep-new"],
    "sweep --resume": ["sweep", "--resume", "ro/sweep"],
    "tune --resume": ["tune", "--resume", "ro/tuning"],
    "compare --output": ["compare", "ro", "--output", "ro/comparison"],
}
IN_A_READ_ONLY_MOUNT = """
import contextlib, io, json, subprocess, sys
mounted = subprocess.run(["mount", "--bind", "ro", "ro"]).returncode == 0 and \\
    subprocess.run(["mount", "-o", "remount,bind,ro", "ro"]).returncode == 0
if not mounted:
    sys.exit(99)
from sequoia.cli import main
outcomes = {}
for name, args in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    outcomes[name] = [code, err.getvalue()]
print(json.dumps(outcomes))
"""


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("mount") is None,
                    reason="needs unshare and mount to make a read-only file system without privileges")
def test_a_read_only_file_system_is_one_line_for_every_command(tmp_path):
    """A run, sweep or tuning directory on a read-only mount (root writes anywhere else, so a mount it is)."""
    read_only = tmp_path / "ro"
    for directory, marker in (("run", "config.yaml"), ("sweep", "sweep.yaml"), ("tuning", "tune.yaml")):
        (read_only / directory).mkdir(parents=True)
        (read_only / directory / marker).write_text("{}\n")
    (read_only / "run" / "checkpoint.pt").write_bytes(b"")
    before = snapshot(read_only)
    namespace = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c",
                                IN_A_READ_ONLY_MOUNT, json.dumps(READ_ONLY_COMMANDS)], capture_output=True, text=True,
                               env=sequoia_environment(), cwd=tmp_path, timeout=300)
    if namespace.returncode != 0:
        pytest.skip(f"no read-only mount here (unshare exited {namespace.returncode}: {namespace.stderr.strip()})")
    for name, (code, err) in json.loads(namespace.stdout).items():
        assert code == 2 and err.count("\n") == 1 and "read-only file system" in err.lower(), (name, code, err)
        assert "Traceback" not in err and "internal error" not in err, (name, err)
    assert snapshot(read_only) == before
