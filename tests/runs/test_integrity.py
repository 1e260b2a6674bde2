"""Run directories that nothing corrupts: damaged checkpoints refused, one process per
directory, a full disk, damaged metric logs, signals.

Each refusal must be one line, exit code 2, and leave the directory byte-identical.
The runs that resume compare with an uninterrupted run, as in ``test_resume.py``.
"""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sequoia.cli import main
from sequoia.runs.files import RESULT_FILES
from sequoia.runs import checkpoint
from sequoia.runs.lock import DirectoryLock
from sequoia.runs.run import CHECKPOINT_FORMAT
from tests.conftest import run_sequoia, sequoia_environment, snapshot
from tests.runs.test_resume import RUNS, comparable, only_run_dir, uninterrupted  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A short SL run stopped after its last checkpoint, before its results: resumable."""
    root = tmp_path_factory.mktemp("interrupted")
    assert main(["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2",
                 "--learner.epochs", "1", "--output", str(root / "out"), "--quiet"]) == 0
    run_dir = only_run_dir(root / "out")
    for name in RESULT_FILES:
        (run_dir / name).unlink()
    return run_dir


def refused(run_dir: Path, capsys) -> str:
    """The one line a ``--resume`` of ``run_dir`` prints, checked to exit 2 and change nothing."""
    before = snapshot(run_dir)
    code = main(["--resume", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert snapshot(run_dir) == before
    return err.strip()


def header_with(payload: bytes, file_format: int = CHECKPOINT_FORMAT) -> bytes:
    return b"SEQUOIA-CHECKPOINT %d %s\n" % (file_format, hashlib.sha256(payload).hexdigest().encode()) + payload


def torch_bytes(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


CORRUPTIONS = {
    "truncated": (lambda raw: raw[: len(raw) // 2], "is damaged (its checksum does not match"),
    "zero bytes": (lambda raw: b"", "is not a sequoia checkpoint"),
    "one byte flipped": (lambda raw: raw[:-100] + bytes([raw[-100] ^ 1]) + raw[-99:],
                         "is damaged (its checksum does not match"),
    "zeroed": (lambda raw: bytes(len(raw)), "is not a sequoia checkpoint"),
    "a plain torch file": (lambda raw: torch_bytes({"format": CHECKPOINT_FORMAT}), "is not a sequoia checkpoint"),
    "a newer format": (lambda raw: header_with(raw.partition(b"\n")[2], CHECKPOINT_FORMAT + 1),
                       f"has format {CHECKPOINT_FORMAT + 1}, written by a newer sequoia"),
    "not a dict": (lambda raw: header_with(torch_bytes([1, 2, 3])), "its checkpoint lacks all"),
    "a missing key": (lambda raw: header_with(torch_bytes({"format": CHECKPOINT_FORMAT})),
                      "its checkpoint lacks setting_name"),
}


@pytest.mark.parametrize("damage", CORRUPTIONS)
def test_a_damaged_checkpoint_is_refused_in_one_line(damage, interrupted, tmp_path, capsys):
    run_dir = shutil.copytree(interrupted, tmp_path / "run")
    corrupt, message = CORRUPTIONS[damage]
    path = run_dir / checkpoint.FILE
    path.write_bytes(corrupt(path.read_bytes()))
    line = refused(run_dir, capsys)
    assert line.startswith(f"sequoia: error: cannot resume {run_dir}") and message in line, line


def test_a_run_directory_in_use_is_refused_naming_the_holder(interrupted, tmp_path, capsys):
    run_dir = shutil.copytree(interrupted, tmp_path / "run")
    lock = DirectoryLock.take(run_dir)
    try:
        line = refused(run_dir, capsys)
    finally:
        lock.release()
    assert line == (f"sequoia: error: cannot run in {run_dir}: another sequoia process (pid {os.getpid()}) is "
                    "running in it; wait for it to end, or stop it and resume")
    assert main(["--resume", str(run_dir), "--quiet"]) == 0  # released: the run goes on


@pytest.mark.parametrize("damage", ["shorter", "NUL bytes"])
def test_a_damaged_metrics_log_is_refused(damage, interrupted, tmp_path, capsys):
    run_dir = shutil.copytree(interrupted, tmp_path / "run")
    metrics = run_dir / "metrics.jsonl"
    raw = metrics.read_bytes()
    metrics.write_bytes(raw[: len(raw) // 2] if damage == "shorter" else raw[:10] + bytes(20) + raw[30:])
    line = refused(run_dir, capsys)
    assert "metrics.jsonl no longer holds the" in line, line


def test_two_resumes_started_together_run_once(uninterrupted, tmp_path):  # noqa: F811 - the fixture
    killed = run_sequoia([*RUNS["sl"], "--output", str(tmp_path)], fault="kill@phase=2,step=1")
    assert killed.returncode == -signal.SIGKILL
    run_dir = only_run_dir(tmp_path)
    command = [sys.executable, "-m", "sequoia", "--resume", str(run_dir), "--quiet"]
    processes = [subprocess.Popen(command, env=sequoia_environment(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = sorted((process.wait(timeout=300), process.stderr.read(), process.pid) for process in processes)
    (ran, ran_err, ran_pid), (lost, lost_err, _) = outcomes
    assert (ran, lost) == (0, 2), (ran_err, lost_err)
    assert lost_err == (f"sequoia: error: cannot run in {run_dir}: another sequoia process (pid {ran_pid}) is "
                        "running in it; wait for it to end, or stop it and resume\n")
    assert comparable(run_dir) == uninterrupted("sl")


def test_a_full_disk_keeps_the_previous_checkpoint(uninterrupted, tmp_path):  # noqa: F811 - the fixture
    stopped = run_sequoia([*RUNS["sl"], "--output", str(tmp_path)], fault="full@checkpoint=2")
    run_dir = only_run_dir(tmp_path)
    assert stopped.returncode == 1
    assert stopped.stderr.strip().splitlines() == [
        f"sequoia: error: could not write the checkpoint of phase 2 in {run_dir} (the disk is full); the previous "
        f"checkpoint is intact; {run_dir} keeps the checkpoint taken after phase 1 (`sequoia --resume {run_dir}` "
        "continues from there)"]
    assert not list(run_dir.glob("*.tmp"))
    assert len(checkpoint.load(checkpoint.verify(run_dir, CHECKPOINT_FORMAT))["loop"]["rows"]) == 2
    assert run_sequoia(["--resume", str(run_dir)]).returncode == 0
    assert comparable(run_dir) == uninterrupted("sl")


def test_a_disk_full_while_logging_leaves_one_line_and_a_resumable_run(uninterrupted, tmp_path):  # noqa: F811
    stopped = run_sequoia([*RUNS["sl"], "--output", str(tmp_path)], fault="full@evaluate=2")
    run_dir = only_run_dir(tmp_path)
    assert stopped.returncode == 1
    assert stopped.stderr.strip().splitlines() == [
        f"sequoia: error: the disk is full (writing in {run_dir}); {run_dir} keeps the checkpoint taken after "
        f"phase 1 (`sequoia --resume {run_dir}` continues from there)"]
    assert run_sequoia(["--resume", str(run_dir)]).returncode == 0
    assert comparable(run_dir) == uninterrupted("sl")


def test_a_disk_full_at_the_start_leaves_nothing(tmp_path):
    stopped = run_sequoia(["--setting", "sl.incremental", "--method", "naive", "--preset", "smoke",
                           "--output", str(tmp_path / "out")], fault="full@start=0")
    assert stopped.returncode == 2
    assert stopped.stderr.strip().splitlines() == [
        f"sequoia: error: --output {tmp_path / 'out'}: cannot make a run directory there (the disk is full)"]
    assert not [path for path in (tmp_path / "out").rglob("*") if path.is_file()]


def test_a_read_only_output_is_refused_before_anything_loads(tmp_path, monkeypatch, capsys):
    # os.access and statvfs answer for tmp_path as a read-only mount would (tests/test_os_limits.py mounts
    # one where the machine allows it); everywhere else (the caches' directories) stays writable.
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: not str(path).startswith(str(tmp_path))
                        and real_access(path, mode))
    real_statvfs = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda path: type("Stat", (), {"f_flag": real_statvfs(path).f_flag
                                                                       | os.ST_RDONLY})())
    code = main(["--setting", "sl.incremental", "--method", "naive", "--output", str(tmp_path / "runs")])
    assert code == 2
    assert capsys.readouterr().err == (f"sequoia: error: --output {tmp_path / 'runs'}: {tmp_path} is on a "
                                       "read-only file system\n")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("edit,key", [("nb_tasks: 2", "setting.nb_tasks"), ("name: naive", "method.name"),
                                      ("epochs: 1", "learner.epochs")])
def test_an_edited_config_is_refused_naming_the_key(edit, key, interrupted, tmp_path, capsys):
    run_dir = shutil.copytree(interrupted, tmp_path / "run")
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace(edit, edit.replace(edit.split(": ")[1], "[7]")))
    line = refused(run_dir, capsys)
    assert line.startswith(f"sequoia: error: cannot resume {run_dir}: config.yaml changed since the run started "
                           f"({key}: ") and line.endswith("[7] now); restore it, or start a new run "
                                                         "(sequoia --config FILE)")


def test_a_comment_added_to_the_config_still_resumes(interrupted, tmp_path):
    run_dir = shutil.copytree(interrupted, tmp_path / "run")
    config = run_dir / "config.yaml"
    config.write_text("# learning rate checked by hand\n" + config.read_text())
    assert main(["--resume", str(run_dir), "--quiet"]) == 0


def test_a_torn_metrics_line_after_the_checkpoint_is_dropped_on_resume(uninterrupted, tmp_path):  # noqa: F811
    killed = run_sequoia([*RUNS["sl"], "--output", str(tmp_path)], fault="kill@phase=2,step=10")
    assert killed.returncode == -signal.SIGKILL
    run_dir = only_run_dir(tmp_path)
    with (run_dir / "metrics.jsonl").open("a") as log:
        log.write('{"step": 31, "phase": 2, "train/lo')  # what a kill in the middle of a write leaves
    assert run_sequoia(["--resume", str(run_dir)]).returncode == 0
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert comparable(run_dir) == uninterrupted("sl")


def started(tmp_path: Path, until: str | None) -> subprocess.Popen:
    """A ``sequoia`` run in a subprocess, returned once its metrics log holds ``until`` (or at once)."""
    process = subprocess.Popen([sys.executable, "-m", "sequoia", *RUNS["sl"], "--output", str(tmp_path), "--quiet"],
                               env=sequoia_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while until and time.time() < deadline and process.poll() is None:
        logs = list(tmp_path.rglob("metrics.jsonl"))
        if logs and until in logs[0].read_text():
            break
        time.sleep(0.02)
    return process


@pytest.mark.parametrize("name,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_in_training_leaves_one_line_and_a_resumable_run(name, code, uninterrupted, tmp_path):  # noqa: F811
    process = started(tmp_path, until='"phase": 2')
    process.send_signal(getattr(signal, name))
    assert process.wait(timeout=120) == code
    err = process.stderr.read()
    run_dir = only_run_dir(tmp_path)
    assert err.count("\n") == 1 and err.startswith(f"sequoia: interrupted; {run_dir} keeps the checkpoint"), err
    assert run_sequoia(["--resume", str(run_dir)]).returncode == 0
    assert comparable(run_dir) == uninterrupted("sl")


def handles_sigterm(pid: int) -> bool:
    """Whether the process catches SIGTERM yet: the interpreter has started and sequoia's handlers are in."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads signal masks from /proc")
@pytest.mark.parametrize("after_s", [0.0, 1.0])
def test_a_signal_while_loading_leaves_one_line(after_s, tmp_path):
    process = started(tmp_path, until=None)
    deadline = time.time() + 60
    while time.time() < deadline and not handles_sigterm(process.pid):
        time.sleep(0.005)
    time.sleep(after_s)  # torch importing, or the data loading
    if process.poll() is not None:  # a fast machine can finish the whole run within after_s
        pytest.skip(f"the run ended within {after_s} s, before the signal")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    err = process.stderr.read()
    assert err.count("\n") == 1 and err.startswith("sequoia: interrupted") and "Traceback" not in err, err
