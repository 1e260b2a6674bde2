"""Runs killed anywhere (SIGKILL) resume to the same results as runs never interrupted.

Each killed run is a real process that the fault hook (``SEQUOIA_FAULT``) kills with
SIGKILL at a chosen point; ``test_killed_from_outside_at_a_random_moment`` kills one
from outside instead. The resumed run must write a ``results.json`` equal to the
uninterrupted run's in everything but ``runtime_s``, and the same metrics log.
"""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sequoia.runs import checkpoint
from sequoia.runs.run import CHECKPOINT_FORMAT
from tests.conftest import full_and_resumed_after_nan, run_sequoia, sequoia_environment

# Three tasks each, small enough for seconds per run; every method with saved state:
# EWC (Fisher, anchors) on SL, replay (reservoir of tokenized pairs with their DPO
# reference log-probs) on PA with a tiny random Llama, EWC on RL (DQN buffer, target net).
RUNS = {
    "sl": ["--setting", "sl.incremental", "--method", "ewc", "--setting.nb_tasks", "3", "--learner.epochs", "2"],
    "pa": ["--setting", "pa.incremental", "--method", "replay", "--preset", "smoke"],
    "rl": ["--setting", "rl.incremental", "--method", "ewc", "--preset", "smoke", "--setting.nb_tasks", "3",
           "--setting.steps_per_task", "1200", "--learner.learning_starts", "300"],
}
# Phase 2 trains on the second task (phase 0 is the evaluation before training).
# SL has 20 steps per task, PA 4, RL 900: first step, middle, last step, during the
# evaluation that ends the task, and while its checkpoint is half written.
KILL_POINTS = {
    "sl": ["phase=2,step=1", "phase=2,step=10", "phase=2,step=20", "evaluate=2", "checkpoint=2"],
    "pa": ["phase=2,step=1", "phase=2,step=2", "phase=2,step=4", "evaluate=2", "checkpoint=2"],
    "rl": ["phase=2,step=450", "checkpoint=2"],
}
# Every kill resumes from the same checkpoint, so each domain needs one kill in training (its state
# saved and restored) and PA one in evaluation (its cached base scores); the kills while writing a
# checkpoint or between steps test code no domain owns, which SL's runs cover. The rest: slow tests.
SLOW_POINTS = {("sl", "phase=2,step=10"), ("pa", "phase=2,step=2"), ("pa", "phase=2,step=4"),
               ("pa", "checkpoint=2"), ("rl", "checkpoint=2")}


def only_run_dir(root: Path) -> Path:
    [config] = root.rglob("config.yaml")
    return config.parent


def comparable(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    del results["runtime_s"]  # wall-clock time is the one thing a resumed run cannot repeat
    files = {name: (run_dir / name).read_text() for name in ("metrics.jsonl", "samples.jsonl")
             if (run_dir / name).exists()}
    return {"results": results, **files}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each domain's run, never interrupted, computed once."""
    cache: dict[str, dict] = {}

    def get(domain: str) -> dict:
        if domain not in cache:
            root = tmp_path_factory.mktemp(f"full-{domain}")
            done = run_sequoia([*RUNS[domain], "--output", str(root)])
            assert done.returncode == 0, done.stderr
            cache[domain] = comparable(only_run_dir(root))
        return cache[domain]

    return get


@pytest.mark.parametrize("domain,point", [
    pytest.param(d, p, marks=[pytest.mark.slow] if (d, p) in SLOW_POINTS else [], id=f"{d}-{p.replace(',', '-')}")
    for d, points in KILL_POINTS.items() for p in points])
def test_killed_run_resumes_to_identical_results(domain, point, uninterrupted, tmp_path):
    killed = run_sequoia([*RUNS[domain], "--output", str(tmp_path)], fault=f"kill@{point}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_dir = only_run_dir(tmp_path)
    assert not (run_dir / "results.json").exists()
    saved = checkpoint.load(checkpoint.verify(run_dir, CHECKPOINT_FORMAT))
    # Killed in phase 2: the checkpoint holds row 0 and phase 1 (or, killed after
    # phase 2's checkpoint was renamed into place, which these points never are, phase 2).
    assert len(saved["loop"]["rows"]) == 2
    resumed = run_sequoia(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(run_dir) == uninterrupted(domain)
    assert not list(run_dir.glob("*.tmp"))


def test_killed_from_outside_at_a_random_moment(uninterrupted, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "sequoia", *RUNS["sl"], "--output", str(tmp_path), "--quiet"],
                               env=sequoia_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        logs = list(tmp_path.rglob("metrics.jsonl"))
        if logs and '"phase": 2' in logs[0].read_text():
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run_dir = only_run_dir(tmp_path)
    if (run_dir / "results.json").exists():
        pytest.skip("the run finished before the kill landed")
    resumed = run_sequoia(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(run_dir) == uninterrupted("sl")


def test_nan_loss_stops_cleanly_and_the_run_resumes(uninterrupted, tmp_path):
    stopped = run_sequoia([*RUNS["sl"], "--output", str(tmp_path)], fault="nan@phase=2,step=3")
    assert stopped.returncode == 1
    run_dir = only_run_dir(tmp_path)
    assert stopped.stderr.strip().splitlines() == [
        "sequoia: error: the loss became nan at task 1 (phase 2), step 3; try a lower --learner.lr"
        f"; {run_dir} keeps the checkpoint taken after phase 1 (`sequoia --resume {run_dir}` continues from there)"]
    saved = checkpoint.load(checkpoint.verify(run_dir, CHECKPOINT_FORMAT))
    assert len(saved["loop"]["rows"]) == 2
    assert all(torch.isfinite(p).all() for p in saved["method"]["learner"]["parameters"].values())
    resumed = run_sequoia(["--resume", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(run_dir) == uninterrupted("sl")


def test_out_of_memory_gives_a_hint(tmp_path):
    stopped = run_sequoia([*RUNS["sl"], "--output", str(tmp_path)], fault="oom@phase=1,step=2")
    assert stopped.returncode == 1
    [line] = stopped.stderr.strip().splitlines()
    assert "out of memory at task 0 (phase 1), step 2" in line and "--learner.batch_size" in line
    assert "--learner.gradient_accumulation" in line


@pytest.mark.parametrize("method_name", ["lwf", "agem", "si", "experts"])
def test_lwf_agem_si_and_experts_resume_to_identical_results(method_name, tmp_path, monkeypatch):
    """Their state (snapshot, memory, path integral, importances, experts, router) goes into checkpoints and back."""
    from sequoia.learners import Classifier
    from sequoia.registry import get_method
    from sequoia.settings.sl import TaskIncrementalSLSetting

    def build():
        setting = TaskIncrementalSLSetting(nb_tasks=3)
        return setting, get_method(method_name)().use_learner(Classifier(epochs=2))

    full, resumed, full_dir, resumed_dir = full_and_resumed_after_nan(build, tmp_path, monkeypatch,
                                                                      "nan@phase=3,step=5")
    assert resumed.to_dict() | {"runtime_s": 0} == full.to_dict() | {"runtime_s": 0}
    assert (resumed_dir / "metrics.jsonl").read_text() == (full_dir / "metrics.jsonl").read_text()
