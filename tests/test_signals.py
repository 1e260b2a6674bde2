"""An interrupt ends the command with its exit code and one line, even where a library swallowed it
(``except BaseException``) or turned it into an error of its own (a lazy import's RuntimeError)."""

import signal

import pytest
import torch

from sequoia import cli, console
from sequoia.experiments.jobs import PENDING, STOP_MARKER, RunJob
from sequoia.runs.monitor import TrainingMonitor


@pytest.fixture
def fresh_signals(monkeypatch):
    """The console's record of signals, empty, and this process's handlers restored afterwards."""
    monkeypatch.setattr(console, "_received", [])
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def swallowed_signal(signum: int) -> None:
    """What a library that catches everything does with the interrupt raised inside it."""
    try:
        console._raise_interrupted(signum, None)
    except BaseException:  # noqa: BLE001 - the library's, not ours
        pass


def test_a_swallowed_interrupt_ends_training_at_the_next_step(fresh_signals):
    monitor = TrainingMonitor()
    monitor.enter_phase(1, task_id=0)
    monitor.check_loss(torch.tensor(0.5))
    swallowed_signal(signal.SIGTERM)
    with pytest.raises(console.Interrupted) as raised:
        monitor.check_loss(torch.tensor(0.5))
    assert raised.value.exit_code == 143


@pytest.mark.parametrize("after", ["an error of its own", "going on"])
def test_main_reports_the_interrupt_a_library_swallowed(after, fresh_signals, monkeypatch, capsys):
    def dispatch(argv):
        swallowed_signal(signal.SIGINT)
        if after == "an error of its own":
            raise RuntimeError("Failed to import transformers.models.llama because of the following error")
        return 0

    monkeypatch.setattr(cli, "dispatch", dispatch)
    assert cli.main(["--setting", "sl.incremental"]) == 130
    assert capsys.readouterr().err == "sequoia: interrupted\n"


def test_without_a_signal_an_error_is_still_an_internal_error(fresh_signals, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "dispatch", lambda argv: (_ for _ in ()).throw(RuntimeError("a bug")))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert cli.main([]) == 1
    assert capsys.readouterr().err.startswith("sequoia: internal error: RuntimeError: a bug")


def test_a_job_of_a_stopping_sweep_does_not_start(tmp_path):
    (tmp_path / STOP_MARKER).touch()
    job = RunJob("000-a", {"setting": "sl.incremental", "method": "naive"}, str(tmp_path))
    assert job() == {"state": PENDING, "message": "not started: the sweep was stopping"}
    assert not (tmp_path / "runs").exists() and not (tmp_path / "logs").exists()
