"""A sweep of 9 runs shared by the sweep and comparison tests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import sequoia_environment

GRID = ["--setting", "sl.incremental", "--setting.nb_tasks", "3", "--method", "naive,replay,ewc"]


def sweep(args: list[str], **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sequoia", "sweep", *args, "--quiet"], capture_output=True,
                          text=True, env=sequoia_environment(), timeout=600, **popen)


def summary_metrics(directory: Path) -> list:
    """What the summary says of each configuration: label, runs and every statistic (no paths, no times)."""
    return json.loads((directory / "summary.json").read_text())["configurations"]


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("sweeps") / "whole"
    done = sweep([*GRID, "--seeds", "0-2", "--workers", "2", "--directory", str(directory)])
    assert done.returncode == 0, done.stderr
    assert "method=replay" in done.stdout and "±" in done.stdout  # the comparison table is printed
    return directory
