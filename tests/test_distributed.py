"""Several processes (torchrun, accelerate launch) give the results of one, on the CPU over gloo.

Each rank trains on its share of every batch and the gradients are summed, so the
steps equal the one-process steps up to floating-point rounding. Observed: the
transfer matrices are identical and the PA margins differ by under 1e-5; the tests
allow 1e-4 on every matrix.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_sequoia

TOLERANCE = 1e-4
SMOKE_RUNS = {
    "sl": ["--setting", "sl.class_incremental", "--method", "replay", "--preset", "smoke"],
    "pa": ["--setting", "pa.class_incremental", "--method", "dpo_lora", "--preset", "smoke"],
}


def launch(launcher: list[str], args: list[str], output: Path) -> subprocess.CompletedProcess:
    return run_sequoia([*args, "--output", str(output)], launcher=tuple(launcher))


def results(output: Path) -> dict:
    [path] = output.rglob("results.json")
    return json.loads(path.read_text())


def assert_same_results(one: dict, two: dict) -> None:
    np.testing.assert_allclose(two["transfer_matrix"], one["transfer_matrix"], atol=TOLERANCE)
    assert one["matrices"].keys() == two["matrices"].keys()
    for name in one["matrices"]:
        np.testing.assert_allclose(two["matrices"][name], one["matrices"][name], atol=TOLERANCE, err_msg=name)


@pytest.mark.parametrize("domain", ["sl", "pa"])
def test_torchrun_two_processes_match_one(domain, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = launch(torchrun, SMOKE_RUNS[domain], tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert "sequoia: 2 processes (gloo)" in two.stderr
    assert two.stdout.count("run directory:") == 1  # rank 0 alone prints and writes
    assert len(list((tmp_path / "two").rglob("config.yaml"))) == 1
    one = launch([sys.executable], SMOKE_RUNS[domain], tmp_path / "one")
    assert one.returncode == 0, one.stderr
    assert_same_results(results(tmp_path / "one"), results(tmp_path / "two"))


@pytest.mark.slow  # the torchrun tests of the default suite check the same ranks; this one checks accelerate's launcher
@pytest.mark.skipif(shutil.which("accelerate") is None and not Path(sys.executable).with_name("accelerate").exists(),
                    reason="accelerate is not installed")
def test_accelerate_launch_runs_two_processes(tmp_path):
    accelerate = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    # On a machine without GPUs `--multi_gpu` still starts the ranks; sequoia picks gloo.
    two = launch([accelerate, "launch", "--multi_gpu", "--num_processes", "2"], SMOKE_RUNS["sl"], tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert "sequoia: 2 processes (gloo)" in two.stderr
    one = launch([sys.executable], SMOKE_RUNS["sl"], tmp_path / "one")
    assert one.returncode == 0, one.stderr
    assert_same_results(results(tmp_path / "one"), results(tmp_path / "two"))


def test_rl_refuses_several_processes(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = launch(torchrun, ["--setting", "rl.incremental", "--method", "naive", "--preset", "smoke"], tmp_path)
    assert run.returncode != 0
    assert "sequoia: error: rl.incremental runs in one process; launch it without torchrun" in run.stderr
    # torchrun prints its own traceback for a failed child; none comes from sequoia's code.
    assert "sequoia/cli.py" not in run.stderr and "sequoia/settings" not in run.stderr
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow  # two processes killed and resumed; the default suite runs both domains under torchrun above
def test_two_processes_killed_and_resumed_match_one(tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    killed = run_sequoia([*SMOKE_RUNS["pa"], "--output", str(tmp_path / "two")], launcher=tuple(torchrun),
                         fault="kill@phase=2,step=2")
    assert killed.returncode != 0
    [config] = (tmp_path / "two").rglob("config.yaml")
    assert not (config.parent / "results.json").exists()
    resumed = run_sequoia(["--resume", str(config.parent)], launcher=tuple(torchrun))
    assert resumed.returncode == 0, resumed.stderr
    one = launch([sys.executable], SMOKE_RUNS["pa"], tmp_path / "one")
    assert one.returncode == 0, one.stderr
    assert_same_results(results(tmp_path / "one"), results(tmp_path / "two"))


@pytest.mark.slow  # over 20 s on 2 cores
def test_agem_projects_the_same_under_two_processes(tmp_path):
    """A-GEM's reference gradient is summed over ranks like the step's, so two processes project as one."""
    args = ["--setting", "sl.class_incremental", "--method", "agem", "--preset", "smoke", "--setting.nb_tasks", "2"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = launch(torchrun, args, tmp_path / "two")
    assert two.returncode == 0, two.stderr
    one = launch([sys.executable], args, tmp_path / "one")
    assert one.returncode == 0, one.stderr
    assert_same_results(results(tmp_path / "one"), results(tmp_path / "two"))
