"""The foundation's acceptance numbers, end to end (slow: run with `make test-slow`)."""

import subprocess
import sys
import time

import numpy as np
import pytest

from sequoia.methods import EWC, Naive, Replay
from sequoia.settings.sl import IncrementalSLSetting, TaskIncrementalSLSetting

pytestmark = pytest.mark.slow
SEEDS = (0, 1, 2)


def mean_metric(setting_cls, method_cls, metric):
    return np.mean([getattr(setting_cls().apply(method_cls(), seed=s, progress=False).matrix, metric)()
                    for s in SEEDS])


def test_replay_beats_naive_by_15_points_on_class_incremental():
    gain = mean_metric(IncrementalSLSetting, Replay, "average_final") - mean_metric(
        IncrementalSLSetting, Naive, "average_final")
    assert gain >= 0.15


def test_ewc_cuts_naive_forgetting_by_30_percent_on_task_incremental():
    naive = mean_metric(TaskIncrementalSLSetting, Naive, "average_forgetting")
    ewc = mean_metric(TaskIncrementalSLSetting, EWC, "average_forgetting")
    assert ewc <= 0.7 * naive


def test_default_command_finishes_in_a_minute(tmp_path):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sequoia", "--setting", "class_incremental", "--method", "ewc",
                           "--output", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - start < 60
    assert len(list(tmp_path.rglob("*.png"))) == 2
