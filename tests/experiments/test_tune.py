"""``sequoia tune``: trials on Optuna through the sweep launchers, protocols that keep the evaluation unseen,
resumption after SIGKILL, and one-line errors."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from sequoia.cli import main
from sequoia.errors import SequoiaError
from sequoia.experiments.objective import Objective
from sequoia.experiments.space import parse_space
from tests.conftest import sequoia_environment
from tests.experiments.conftest import load_script

SL = ["--setting", "sl.incremental", "--setting.nb_tasks", "3", "--method", "ewc", "--learner.epochs", "1"]
SPACE = ["--space", "learner.lr=loguniform:1e-3:1e-1"]
TWO_TASKS = [*SL[:3], "2", *SL[4:]]  # for checks that do not need a third task


def tune(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sequoia", "tune", *args, "--quiet"], capture_output=True,
                          text=True, env={**sequoia_environment(), "OMP_NUM_THREADS": "1"}, timeout=600)


def trials(directory: Path) -> list[dict]:
    with (directory / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def study(directory: Path) -> optuna.Study:
    return optuna.load_study(study_name="sequoia-tune", storage=f"sqlite:///{directory / 'optuna.db'}")


def run_configs(directory: Path) -> dict[str, dict]:
    return {run.name: yaml.safe_load((run / "config.yaml").read_text()) for run in (directory / "runs").iterdir()}


def test_first_tasks_trials_see_only_the_first_tasks_and_the_evaluation_only_the_rest(tmp_path):
    directory = tmp_path / "first"
    done = tune([*SL, *SPACE, "--space", "method.ewc_lambda=loguniform:1:10000", "--protocol", "first_tasks",
                 "--trials", "2", "--workers", "2", "--directory", str(directory)])
    assert done.returncode == 0, done.stderr
    assert [row["state"] for row in trials(directory)] == ["complete"] * 2
    configs = run_configs(directory)
    assert sorted(configs) == [f"trial-000{n}-seed-0" for n in range(2)]
    for name, config in configs.items():  # no trial trained on or scored tasks 1 and 2
        assert config["setting"]["task_slice"] == ":1" and config["setting"]["evaluate_on"] == "test"
        matrix = (directory / "runs" / name / "transfer_matrix.csv").read_text().strip().splitlines()
        assert len(matrix[0].split(",")) == 2  # a label column and task 0's
    best = yaml.safe_load((directory / "best.yaml").read_text())
    chosen = study(directory).best_trial
    assert best["base"]["setting.task_slice"] == "1:"
    assert best["base"]["learner.lr"] == chosen.params["learner.lr"]
    assert float(trials(directory)[chosen.number]["value"]) == max(float(row["value"]) for row in trials(directory))
    assert (directory / "history.png").is_file() and (directory / "importance.png").is_file()
    assert "best: trial" in done.stdout


def test_validation_trials_score_held_out_training_items_and_best_yaml_is_a_sweep(tmp_path):
    directory = tmp_path / "validation"
    done = tune([*TWO_TASKS, *SPACE, "--protocol", "validation", "--trials", "1", "--seeds", "0,1",
                 "--directory", str(directory)])
    assert done.returncode == 0, done.stderr
    configs = run_configs(directory)
    assert len(configs) == 2 and all(config["setting"]["evaluate_on"] == "validation" for config in configs.values())
    assert {config["seed"] for config in configs.values()} == {0, 1}
    values = study(directory).trials[0]
    from sequoia.experiments.summary import load_run

    means = [load_run(directory / "runs" / f"trial-0000-seed-{seed}").metrics["average_final"] for seed in (0, 1)]
    assert values.value == pytest.approx(sum(means) / 2)  # a trial's value is the mean over its seeds
    best = yaml.safe_load((directory / "best.yaml").read_text())
    assert "setting.evaluate_on" not in best["base"] and "setting.task_slice" not in best["base"]
    evaluated = subprocess.run([sys.executable, "-m", "sequoia", "sweep", str(directory / "best.yaml"), "--seeds",
                                "0", "--directory", str(tmp_path / "evaluation"), "--quiet"], capture_output=True,
                               text=True, env=sequoia_environment(), timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr
    (run,) = run_configs(tmp_path / "evaluation").values()
    assert run["setting"]["evaluate_on"] == "test" and run["learner"]["lr"] == study(directory).best_params[
        "learner.lr"]


def test_a_tuning_killed_with_sigkill_resumes_with_no_trial_lost_or_run_twice(tmp_path):
    directory = tmp_path / "killed"
    args = [*SL[:-1], "2", *SPACE, "--protocol", "validation", "--trials", "2", "--directory", str(directory)]
    driver = subprocess.Popen([sys.executable, "-m", "sequoia", "tune", *args, "--quiet"],
                              env={**sequoia_environment(), "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (directory / "runs" / "trial-0001-seed-0" / "config.yaml").is_file():
        assert driver.poll() is None and time.monotonic() < deadline, "the tuning ended before it could be killed"
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(1.0)
    first = (directory / "runs" / "trial-0000-seed-0" / "results.json").read_bytes()
    assert [t.state.name for t in study(directory).trials] == ["COMPLETE", "RUNNING"]

    resumed = tune(["--resume", str(directory)])
    assert resumed.returncode == 0, resumed.stderr
    assert [t.state.name for t in study(directory).trials] == ["COMPLETE"] * 2  # none lost, none added
    assert sorted(run.name for run in (directory / "runs").iterdir()) == [f"trial-000{n}-seed-0" for n in range(2)]
    assert (directory / "runs" / "trial-0000-seed-0" / "results.json").read_bytes() == first  # kept
    assert (directory / "logs" / "trial-0000-seed-0.log").read_text().count("$ sequoia") == 1
    assert [row["trial"] for row in trials(directory)] == ["0", "1"]


def test_trials_run_through_submitits_local_executor(tmp_path):
    directory = tmp_path / "submitit"
    done = tune([*SL, *SPACE, "--protocol", "first_tasks", "--trials", "1", "--launcher", "submitit_local",
                 "--slurm.time", "10", "--directory", str(directory)])
    assert done.returncode == 0, done.stderr
    assert [row["state"] for row in trials(directory)] == ["complete"]
    assert list((directory / "submitit").glob("*_submitted.pkl"))  # submitit ran the jobs


@pytest.mark.parametrize("args, message", [
    ([*SPACE], "sequoia tune needs --protocol first_tasks or validation"),
    ([*SPACE, "--protocol", "lucky"], "--protocol lucky: unknown protocol"),
    (["--space", "learner.lr=normal:0:1", "--protocol", "validation"], "unknown kind 'normal'"),
    (["--space", "learner.lr=loguniform:0:1", "--protocol", "validation"], "loguniform needs 0 < LOW < HIGH"),
    (["--space", "learner.lr", "--protocol", "validation"], "space file not found: learner.lr"),
    (["--space", "learner.nope=uniform:0:1", "--protocol", "validation"], "unrecognized arguments: --learner.nope"),
    (["--space", "lr=uniform:0:1", "--protocol", "validation"], "not a run option"),
    (["--space", "learner.batch_size=uniform:8:32", "--protocol", "validation"], "invalid int value"),
    (["--space", "learner.epochs=int:1:3", "--protocol", "validation"], "is both fixed and in the space"),
    (["--space", "learner.batch_size=int:8:1000000000000", "--protocol", "validation"],
     "at the high end of the space: invalid value 1000000000000 for --learner.batch_size"),
    (["--space", "setting.task_slice=choice::1|:2", "--protocol", "first_tasks"],
     "--setting.task_slice is what --protocol first_tasks sets"),
    ([*SPACE, "--protocol", "first_tasks", "--tuning-tasks", "3"], "--tuning-tasks 3: the sequence has 3 tasks"),
    ([*SPACE, "--protocol", "validation", "--objective", "average_final +"], "--objective 'average_final +'"),
    ([*SPACE, "--protocol", "validation", "--direction", "up"], "--direction up: expected maximize or minimize"),
    ([*SPACE, "--protocol", "validation", "--objective", "average_final + average_forgetting"],
     "its terms improve in opposite directions; give --direction"),
    ([*SPACE, "--protocol", "validation", "--objective", "lm_eval_score"],
     "sl.incremental does not say whether lm_eval_score is better higher or lower; give --direction"),
    ([*SPACE, "--protocol", "validation", "--trials", "0"], "--trials 0: expected a whole number"),
    ([*SPACE, "--protocol", "validation", "--sampler", "grid"], "--sampler grid: expected one of tpe, random"),
    ([*SPACE, "--protocol", "validation", "--storage", "nosuchdb://x"], "--storage nosuchdb://x: cannot open"),
])
def test_bad_tunings_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["tune", *SL, *args, "--directory", str(tmp_path / "t"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("objective, direction", [
    ("average_forgetting", "minimize"), ("average_final - 2*average_forgetting", "maximize"),
])
def test_the_direction_defaults_to_what_the_metric_specs_say(objective, direction):
    from sequoia.experiments.commands import option_pairs
    from sequoia.experiments.tune_command import _parser, new_spec

    options, rest = _parser().parse_known_args([*SL, *SPACE, "--protocol", "validation", "--objective", objective])
    assert new_spec(options, option_pairs(rest)).objective.direction == direction
    options, rest = _parser().parse_known_args([*SL, *SPACE, "--protocol", "validation", "--objective", objective,
                                                "--direction", "minimize"])
    assert new_spec(options, option_pairs(rest)).objective.direction == "minimize"  # given: it overrides


@pytest.mark.parametrize("args, message", [
    (["--setting", "sl.incremental", "--method", "naive,ewc", *SPACE, "--protocol", "validation"],
     "sequoia tune tunes one configuration"),
    (["--resume", "{tmp}", "--protocol", "first_tasks"], "it takes no --protocol"),
    (["--resume", "{tmp}", "--learner.lr", "0.1"], "it takes no --learner.lr"),
    (["--resume", "{tmp}"], "not a tuning directory"),
])
def test_an_axis_in_the_fixed_options_and_a_changed_definition_on_resume_are_refused(tmp_path, capsys, args,
                                                                                     message):
    assert main(["tune", *(arg.format(tmp=tmp_path) for arg in args)]) == 2
    assert message in capsys.readouterr().err


def test_space_files_and_objective_sums(tmp_path):
    (tmp_path / "space.yaml").write_text("learner.lr: loguniform:1e-4:1e-1\nmethod.aggregate: choice:top1|weighted\n")
    from sequoia.experiments.tune_command import read_space

    space = read_space([str(tmp_path / "space.yaml"), "method.ewc_lambda=int:1:100"])
    assert [dim.kind for dim in space.values()] == ["loguniform", "choice", "int"]
    assert space["method.ewc_lambda"].distribution() == optuna.distributions.IntDistribution(1, 100)
    with pytest.raises(SequoiaError, match="learner.lr is given twice"):
        read_space([str(tmp_path / "space.yaml"), "learner.lr=uniform:0:1"])
    with pytest.raises(SequoiaError, match="learner.lr is already in the space"):
        parse_space(["learner.lr=uniform:0:1", "learner.lr=uniform:0:2"])
    objective = Objective.parse("2*a - 0.5*b@x + c", "minimize")
    assert objective.value({"a": 1.0, "b@x": 2.0, "c": 3.0}, "r") == pytest.approx(4.0)


@pytest.mark.parametrize("edit, message", [
    ({"base": 5}, "`base` must be a mapping, as sequoia writes it, not 5"),
    ({"trials": "abc"}, "`trials` must be a whole number"),
    ({"seeds": "x"}, "`seeds` must be a list"),
    ({"protocol": {"name": "first_tasks"}}, "`protocol` must hold name and tuning_tasks"),
    ({"space": {"learner.lr": "normal:0:1"}}, "unknown kind 'normal'"),
    ({"storage": 5}, "`storage` must be text or null"),
    ({"launch": 4}, "`launch` must be a mapping"),
    ({"launch": {"workers": -1}}, "workers must be an integer from 1 to 256"),
])
def test_a_damaged_tune_yaml_is_one_line_on_resume(tmp_path, capsys, edit, message):
    (tmp_path / "runs").mkdir()
    definition = {"base": {"setting": "sl.incremental", "method": "ewc"}, "space": {"learner.lr": "uniform:0.1:0.2"},
                  "protocol": {"name": "validation", "tuning_tasks": 1},
                  "objective": {"text": "average_final", "direction": "maximize"}, "trials": 2, "seeds": [0],
                  "sampler": "tpe", "sampler_seed": 0, "storage": None, "launch": {"workers": 1}}
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump({**definition, **edit}))
    assert main(["tune", "--resume", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error, error


def test_a_storage_that_cannot_be_opened_leaves_the_users_empty_directory_as_it_was(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    assert main(["tune", *SL, *SPACE, "--protocol", "validation", "--storage", "nosuchdb://x",
                 "--directory", str(tmp_path / "mine")]) == 2
    assert "cannot open the Optuna study" in capsys.readouterr().err
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())


@pytest.mark.parametrize("command, kind", [(["sweep", "--setting", "sl.incremental", "--method", "naive"], "sweep"),
                                           (["tune", *SL, *SPACE, "--protocol", "validation"], "tuning")])
def test_a_new_sweep_or_tuning_refuses_a_directory_that_holds_files(tmp_path, capsys, command, kind):
    (tmp_path / "notes.txt").write_text("the user's own file\n")
    assert main([*command, "--directory", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{kind} directory {tmp_path} already exists and is not empty" in error, error
    assert "--resume" in error and sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


def test_sweep_from_tunings_joins_each_arms_best_yaml_into_one_sweep(tmp_path, capsys):
    from sequoia.experiments.spec import SweepSpec

    module = load_script("sweep_from_tunings")
    bests = {"naive": {"learner.lr": 0.002}, "ewc": {"learner.lr": 0.0005, "method.ewc_lambda": 30.0}}
    for method, tuned in bests.items():
        (tmp_path / method).mkdir()
        best = {"setting": "sl.incremental", "method": method, "learner.epochs": "1", "eval.x": "none",
                "setting.task_slice": "1:", **tuned}
        (tmp_path / method / "best.yaml").write_text(yaml.safe_dump({"base": best, "seeds": "0-4"}))
    output = tmp_path / "study.yaml"
    module.main([str(tmp_path / "naive"), str(tmp_path / "ewc"), "--seeds", "0-1", "--set", "eval.x=mmlu",
                 "--output", str(output)])
    loaded = yaml.safe_load(output.read_text())
    assert loaded.pop("launch") == {"workers": 1}
    runs = SweepSpec.from_file(loaded, "study.yaml").runs()
    assert [(run.options["method"], run.seed) for run in runs] == [("naive", 0), ("naive", 1), ("ewc", 0), ("ewc", 1)]
    for run in runs:  # each run is its arm's best.yaml, with the replaced option
        tuned = bests[run.options["method"]]
        assert {key: run.options[key] for key in tuned} == tuned
        assert run.options["setting.task_slice"] == "1:" and run.options["eval.x"] == "mmlu"
    assert "method.ewc_lambda" not in runs[0].options
    with pytest.raises(SystemExit, match="does not exist"):
        module.main([str(tmp_path / "nothing"), "--output", str(output)])


def test_sweep_from_tunings_refuses_a_damaged_best_yaml_in_one_line(tmp_path):
    module = load_script("sweep_from_tunings")
    (tmp_path / "best.yaml").write_text("base: [unclosed\n")
    with pytest.raises(SystemExit, match="sweep_from_tunings: .*best.yaml") as raised:
        module.main([str(tmp_path), "--output", str(tmp_path / "out.yaml")])
    assert "\n" not in str(raised.value.code)
