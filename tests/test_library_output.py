"""The libraries sequoia drives keep off stderr unless ``--verbose``: transformers' load report before a
one-line refusal, gymnasium's environment checker on a user's environment."""

import json
import subprocess
import sys
import textwrap

import pytest

from sequoia.library_output import quiet_libraries
from sequoia.lm import models
from tests.conftest import sequoia_environment

NOISY_ENVIRONMENT = '''
import gymnasium as gym
import numpy as np


class Noisy(gym.Env):
    """Observations outside their space and of the wrong dtype: gymnasium's checker warns at each call site."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.gain = 1.0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([5.0, 5.0]), {}

    def step(self, action):
        return np.array([5.0, 5.0], dtype=np.float32), 1.0, False, False, {}


gym.register("Noisy-v0", entry_point=Noisy, max_episode_steps=10)
'''


def sequoia(args: list[str], cwd, verbose: bool) -> subprocess.CompletedProcess:
    environment = {**sequoia_environment(), "PYTHONPATH": str(cwd), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sequoia", *args, "--quiet", *(["--verbose"] if verbose else [])],
                          capture_output=True, text=True, env=environment, cwd=cwd, timeout=300)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_model_refused_after_loading_is_one_line_without_transformers_load_report(tmp_path, verbose):
    model = tmp_path / "model"
    models.tiny_random_model().save_pretrained(model)
    models.byte_tokenizer().save_pretrained(model)
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 3}))
    run = sequoia(["--setting", "pa.incremental", "--method", "naive", "--preset", "smoke", "--setting.model",
                   str(model), "--output", str(tmp_path / "out")], tmp_path, verbose)
    assert run.returncode == 2
    assert run.stderr.splitlines()[-1].startswith("sequoia: error: the weights of ")
    if verbose:  # the report is there to be hidden: without it this test would prove nothing
        assert "LOAD REPORT" in run.stderr and len(run.stderr.splitlines()) > 5
    else:
        assert len(run.stderr.splitlines()) == 1, run.stderr


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_gymnasiums_environment_checker_speaks_only_when_verbose(tmp_path, verbose):
    (tmp_path / "noisy_environment.py").write_text(textwrap.dedent(NOISY_ENVIRONMENT))
    (tmp_path / "schedule.yaml").write_text("0: {gain: 1.0}\n1: {gain: 2.0}\n")
    run = sequoia(["--setting", "rl.incremental", "--method", "naive", "--preset", "smoke", "--setting.env",
                   "noisy_environment:Noisy-v0", "--setting.schedule", "schedule.yaml", "--setting.steps_per_task", "300",
                   "--learner.learning_starts", "100", "--setting.test_episodes", "1", "--output", "out"],
                  tmp_path, verbose)
    assert run.returncode == 0, run.stderr
    if verbose:
        assert "is not within the observation space" in run.stderr
    else:
        assert run.stderr == ""


def test_a_verbose_process_drops_the_variables_a_quiet_parent_set_but_keeps_the_users():
    parent = {"DATASETS_VERBOSITY": "info"}  # the user's
    quiet_libraries(parent, verbose=False)
    assert parent["TRANSFORMERS_VERBOSITY"] == "error" and parent["DATASETS_VERBOSITY"] == "info"
    child = dict(parent)
    quiet_libraries(child, verbose=True)
    assert "TRANSFORMERS_VERBOSITY" not in child and child["DATASETS_VERBOSITY"] == "info"
    assert child["SEQUOIA_VERBOSE"] == "1"


def test_an_unknown_verbose_value_is_one_line(monkeypatch, capsys):
    from sequoia import cli

    monkeypatch.setenv("SEQUOIA_VERBOSE", "maybe")
    assert cli.main(["list"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "sequoia: error: SEQUOIA_VERBOSE='maybe': expected 1, true, yes or on (the libraries' output shown) or 0, "
        "false, no, off or nothing (hidden)"]
    monkeypatch.setenv("SEQUOIA_VERBOSE", " Off ")
    assert cli.main(["list"]) == 0
