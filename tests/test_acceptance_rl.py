"""The RL default run end to end (slow: `make test-slow`)."""

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_default_ewc_run_finishes_within_10_minutes_and_learns(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sequoia", "--setting", "rl.incremental", "--method", "ewc",
                           "--output", str(tmp_path), "--quiet"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - start < 10 * 60
    [results_file] = tmp_path.rglob("results.json")
    results = json.loads(results_file.read_text())
    first_task_after_training = results["transfer_matrix"][1][0]
    assert first_task_after_training > 2 * results["metrics"]["random_return"]
