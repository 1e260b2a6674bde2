"""A reader of stdout that went away (``sequoia ... | head -0``), for the commands that need runs to work on:
``--config``, ``--resume``, ``sweep --resume``, ``compare`` and ``tune``. Each ends quietly with 141, as Unix
tools end, and its work is done and saved (tests/test_os_limits.py covers ``list``, ``--help`` and a run)."""

import shutil

import pytest

from sequoia.runs.files import RESULT_FILES
from tests.test_os_limits import RUN, closed_stdout


@pytest.mark.slow  # 40 s of the default suite's time; test_os_limits keeps a run, list and --help covered
def test_every_command_that_works_ends_quietly_for_a_reader_that_went_away(uninterrupted, tmp_path):
    shutil.copytree(uninterrupted, tmp_path / "sweep")  # a finished sweep: --resume only reports it again
    first_run = sorted((tmp_path / "sweep" / "runs").iterdir())[0]
    shutil.copytree(first_run, tmp_path / "interrupted")
    for result in RESULT_FILES:  # as the run was after its last checkpoint, before its results
        (tmp_path / "interrupted" / result).unlink()
    commands = {
        "--config": ["--config", str(first_run / "config.yaml"), "--directory", "from-config", "--quiet"],
        "--resume": ["--resume", "interrupted", "--quiet"],
        "sweep --resume": ["sweep", "--resume", "sweep", "--quiet"],
        "compare": ["compare", "sweep", "--output", "comparison"],
        "tune": ["tune", *RUN, "--space", "learner.lr=loguniform:1e-3:1e-1", "--protocol", "validation",
                 "--trials", "1", "--directory", "tuning", "--quiet"],
    }
    for name, args in commands.items():
        done = closed_stdout(args, tmp_path)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr, (name, done.stderr)
        assert done.returncode == 141, (name, done.returncode, done.stderr)
    for made in ("interrupted/results.json", "from-config/results.json", "comparison/comparison.md",
                 "tuning/best.yaml"):
        assert (tmp_path / made).is_file(), made
