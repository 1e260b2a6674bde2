"""Environment variables sequoia or torch read are input: a wrong value is one line, before anything is made."""

import pytest

from sequoia.cli import main
from tests.conftest import snapshot

RUN = ["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2", "--learner.epochs", "1",
       "--quiet"]
CASES = {
    "WORLD_SIZE not a number": ({"WORLD_SIZE": "two"},
                                "environment variable WORLD_SIZE='two': expected an integer from 1 to 65536"),
    "WORLD_SIZE 0": ({"WORLD_SIZE": "0"}, "environment variable WORLD_SIZE='0': expected an integer from 1 to 65536"),
    "RANK negative": ({"RANK": "-1"}, "environment variable RANK='-1': expected an integer from 0 to 65535"),
    "RANK beyond the world": ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"},
                              "environment variables RANK=2 and WORLD_SIZE=2: RANK must be below WORLD_SIZE"),
    "LOCAL_RANK text": ({"LOCAL_RANK": "gpu0"},
                        "environment variable LOCAL_RANK='gpu0': expected an integer from 0 to 65535"),
    "no MASTER_ADDR": ({"WORLD_SIZE": "2", "RANK": "0"}, "environment variable WORLD_SIZE=2 without MASTER_ADDR: "
                                                          "start the processes with torchrun or accelerate launch, "
                                                          "which set both"),
    "MASTER_PORT out of range": ({"WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "99999"},
                                 "environment variable MASTER_PORT='99999': expected an integer from 1 to 65535"),
    "OMP_NUM_THREADS 0": ({"OMP_NUM_THREADS": "0"}, "environment variable OMP_NUM_THREADS='0': expected an integer "
                                                     "from 1 to 4096 (or a comma list of them, one per nesting level)"),
    "OMP_NUM_THREADS text": ({"OMP_NUM_THREADS": "all"}, "environment variable OMP_NUM_THREADS='all': expected an "
                             "integer from 1 to 4096 (or a comma list of them, one per nesting level)"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", [RUN, ["sweep", *RUN]], ids=["run", "sweep"])
def test_a_wrong_launch_variable_is_one_line_before_anything_is_made(case, command, tmp_path, monkeypatch, capsys):
    variables, message = CASES[case]
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    assert capsys.readouterr().err == f"sequoia: error: {message}\n"
    assert snapshot(tmp_path) == {} and not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["1", "4", "4,2"])
def test_openmp_thread_counts_are_accepted(value, monkeypatch):
    from sequoia.distributed import check_environment

    monkeypatch.setenv("OMP_NUM_THREADS", value)
    check_environment()
