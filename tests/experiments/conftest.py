"""A sweep of 9 runs shared by the sweep and comparison tests (made once, also under pytest-xdist)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from tests.conftest import sequoia_environment

GRID = ["--setting", "sl.incremental", "--setting.nb_tasks", "3", "--method", "naive,replay,ewc"]


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[2] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sweep(args: list[str], **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sequoia", "sweep", *args, "--quiet"], capture_output=True,
                          text=True, env=sequoia_environment(), timeout=600, **popen)


def summary_metrics(directory: Path) -> list:
    """What the summary says of each configuration: label, runs and every statistic (no paths, no times)."""
    return json.loads((directory / "summary.json").read_text())["configurations"]


def run_results(directory: Path) -> dict[tuple, dict]:
    """Each finished run's results.json (less its wall-clock time), keyed by its axis values and seed."""
    found = {}
    for entry in json.loads((directory / "index.json").read_text())["runs"]:
        results = json.loads((directory / "runs" / entry["name"] / "results.json").read_text())
        del results["runtime_s"]
        found[(tuple(sorted(entry["values"].items())), entry["seed"])] = results
    return found


@pytest.fixture(scope="session")
def uninterrupted(tmp_path_factory, worker_id) -> Path:
    """The GRID over seeds 0-2, swept once per test session.

    Under pytest-xdist each worker has its own session: the first worker that needs the
    sweep makes it under a file lock in the directory the workers share, and the others
    wait for it and read it.
    """
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent
    directory = shared / "sweep-whole"
    with FileLock(str(shared / "sweep-whole.lock")):
        if not (directory / "summary.json").is_file():
            shutil.rmtree(directory, ignore_errors=True)
            done = sweep([*GRID, "--seeds", "0-2", "--workers", "2", "--directory", str(directory)])
            assert done.returncode == 0, done.stderr
            assert "method=replay" in done.stdout and "±" in done.stdout  # the comparison table is printed
    return directory
