"""Environment variables sequoia or torch read are input: a wrong value is one line, before anything is made."""

import re
from pathlib import Path

import pytest

from sequoia.cli import main
from sequoia.errors import SequoiaError
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


A_FILE = __file__  # a path that exists and is not a directory
CACHE_VARIABLES = ("HOME", "HF_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "MPLCONFIGDIR")
CACHE_CASES = {
    "HOME a file": ({"HOME": A_FILE, "XDG_CONFIG_HOME": "", "MPLCONFIGDIR": ""}, f"environment variable HOME={A_FILE!r}: matplotlib's configuration goes in "
                    f"{A_FILE}/.config/matplotlib, and {A_FILE} is a file, not a directory; set HOME (or "
                    "XDG_CONFIG_HOME, XDG_CACHE_HOME, HF_HOME) to a writable directory"),
    "HF_HOME under a file": ({"HF_HOME": f"{A_FILE}/hf"}, f"environment variable HF_HOME='{A_FILE}/hf': the Hugging "
                             f"Face cache goes in {A_FILE}/hf, and {A_FILE} is a file, not a directory; set HF_HOME "
                             "to a writable directory"),
    "XDG_CACHE_HOME a file": ({"XDG_CACHE_HOME": A_FILE, "MPLCONFIGDIR": ""}, f"environment variable XDG_CACHE_HOME={A_FILE!r}: "
                              f"matplotlib's cache goes in {A_FILE}/matplotlib, and {A_FILE} is a file, not a "
                              "directory; set XDG_CACHE_HOME to a writable directory"),
    "MPLCONFIGDIR a file": ({"MPLCONFIGDIR": A_FILE}, f"environment variable MPLCONFIGDIR={A_FILE!r}: matplotlib's "
                            f"configuration goes in {A_FILE}, and {A_FILE} is a file, not a directory; set "
                            "MPLCONFIGDIR to a writable directory"),
}


@pytest.mark.parametrize("case", CACHE_CASES)
@pytest.mark.parametrize("command", [RUN, ["sweep", *RUN], ["compare", "."]], ids=["run", "sweep", "compare"])
def test_a_cache_directory_that_cannot_be_written_is_one_line_before_anything_is_made(case, command, tmp_path,
                                                                                      monkeypatch, capsys):
    variables, message = CACHE_CASES[case]
    home = tmp_path.parent / f"{tmp_path.name}-home"
    for name in CACHE_VARIABLES:
        monkeypatch.setenv(name, str(home / name.lower()))  # writable places; the case replaces one
    for name, value in variables.items():
        monkeypatch.setenv(name, value)  # an empty value counts as unset
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    assert capsys.readouterr().err == f"sequoia: error: {message}\n"
    assert not any(tmp_path.iterdir()) and not home.exists()


def test_a_read_only_home_is_fine_when_every_cache_is_elsewhere_and_refused_when_one_is_under_it(tmp_path,
                                                                                                 monkeypatch):
    from sequoia import cache_directories

    home = tmp_path / "home"
    home.mkdir()
    real_access = cache_directories.os.access
    monkeypatch.setattr(cache_directories.os, "access", lambda path, mode: Path(path) != home and
                        real_access(path, mode))  # as if home were read-only (root may write anywhere)
    elsewhere = {"HOME": str(home), "HF_HOME": str(tmp_path / "hf"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                 "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cache_directories.check(elsewhere)
    del elsewhere["HF_HOME"], elsewhere["XDG_CACHE_HOME"]
    expected = f"matplotlib's cache goes in {home}/.cache/matplotlib, and {home} is not writable"
    with pytest.raises(SequoiaError, match=re.escape(expected)):
        cache_directories.check(elsewhere)
