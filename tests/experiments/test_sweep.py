"""Sweeps: the grid, the job engine (local processes and submitit), resuming after SIGKILL, the summary."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sequoia.errors import SequoiaError
from sequoia.experiments.commands import comma_options, option_pairs
from sequoia.experiments.spec import SweepSpec, parse_seeds
from sequoia.experiments.sweep import Sweep
from sequoia.runs.lock import DirectoryLock
from tests.conftest import sequoia_environment
from tests.experiments.conftest import GRID, run_results, summary_metrics, sweep


# -- the grid ---------------------------------------------------------------------------
def test_comma_lists_make_axes_and_seeds_vary_innermost():
    spec = SweepSpec.from_options(option_pairs(["--setting", "class_incremental", "--method", "naive,replay",
                                                "--learner.lr", "1e-4,5e-4"]), "0-1", comma_options())
    runs = spec.runs()
    assert len(runs) == 8 and [run.seed for run in runs[:2]] == [0, 1]
    assert runs[-1].values == {"method": "replay", "learner.lr": "5e-4"}
    assert runs[-1].argv[-4:] == ["--learner.lr", "5e-4", "--seed", "1"]


def test_an_option_whose_value_is_a_list_is_not_split():
    spec = SweepSpec.from_options({"setting": "pa.incremental", "method": "dpo_lora",
                                   "learner.target_modules": "q_proj,v_proj"}, None, comma_options())
    assert spec.axes == {} and spec.base["learner.target_modules"] == "q_proj,v_proj"
    assert {"setting.tasks", "learner.target_modules", "loggers"} <= comma_options()


def test_a_sweep_file_varies_a_list_option_and_the_command_line_overrides_it(tmp_path):
    loaded = {"base": {"setting": "pa.incremental", "method": "dpo_lora"},
              "axes": {"setting.tasks": [["harmlessness", "helpfulness"], ["helpfulness", "harmlessness"]]},
              "seeds": "0-2"}
    spec = SweepSpec.from_file(loaded, "sweep file")
    assert spec.count() == 6 and spec.runs()[3].argv[:6] == [
        "--setting", "pa.incremental", "--method", "dpo_lora", "--setting.tasks", "helpfulness,harmlessness"]
    with pytest.raises(SequoiaError, match="unknown keys colour"):
        SweepSpec.from_file({**loaded, "colour": 1}, "sweep file")
    with pytest.raises(SequoiaError, match="both fixed"):
        SweepSpec({"method": "naive", "setting": "x"}, {"method": ["a", "b"]}).check()


def test_an_axis_of_mappings_varies_several_options_together():
    loaded = {"base": {"setting": "pa.incremental"},
              "axes": {"arm": [{"method": "lora_sft"}, {"method": "dpo_lora", "learner.sft_steps": 4}],
                       "setting.tasks": ["harmlessness", "harmlessness+helpfulness"]}}
    spec = SweepSpec.from_file(loaded, "sweep file")
    runs = spec.runs()
    assert spec.count() == 4 and spec.varied_options() == {"method", "learner.sft_steps", "setting.tasks"}
    assert runs[2].argv == ["--setting", "pa.incremental", "--method", "dpo_lora", "--learner.sft_steps", "4",
                            "--setting.tasks", "harmlessness", "--seed", "0"]
    assert runs[2].name == "002-method-dpo_lora-sft_steps-4-tasks-harmlessness-seed-0"
    with pytest.raises(SequoiaError, match="mixes mappings"):
        SweepSpec.from_file({**loaded, "axes": {"arm": [{"method": "naive"}, "replay"]}}, "sweep file")
    with pytest.raises(SequoiaError, match="`method` is both fixed"):
        SweepSpec.from_file({**loaded, "base": {"setting": "x", "method": "naive"}}, "sweep file")
    with pytest.raises(SequoiaError, match="option `colour`: not a run option"):
        SweepSpec.from_file({**loaded, "axes": {"arm": [{"method": "naive", "colour": 1}]}}, "sweep file")


def test_the_thakkar_study_builds_every_arm(tmp_path):
    from sequoia.experiments.commands import check_runs
    from sequoia.experiments.sweep import read_definition
    from sequoia.yaml_file import read_yaml

    study = Path(__file__).resolve().parents[2] / "studies" / "thakkar2024.yaml"
    spec, launch = read_definition(read_yaml(study, "sweep file"), "sweep file")
    check_runs(spec)  # every arm's setting, method and options are built
    assert len(spec.runs()) == 27 and launch.workers == 2  # 3 arms x 3 training sets x 3 seeds
    done = sweep([str(study), "--preset", "smoke", "--learner.sft_steps", "1", "--seeds", "0",
                  "--directory", str(tmp_path / "study")])
    assert done.returncode != 0 and "both fixed" in done.stderr  # sft_steps belongs to an arm, not to every run


@pytest.mark.slow  # 9 runs: over a minute on 2 cores; the default suite builds every arm (above)
def test_the_thakkar_study_runs_as_a_sweep_at_tiny_scale(tmp_path):
    study = Path(__file__).resolve().parents[2] / "studies" / "thakkar2024.yaml"
    done = sweep([str(study), "--preset", "smoke", "--setting.train_pairs_per_task", "8",
                  "--setting.test_pairs_per_task", "4", "--setting.max_prompt_length", "32",
                  "--setting.max_completion_length", "8", "--setting.generations_per_task", "0",
                  "--eval.capability_items", "4", "--seeds", "0", "--workers", "2",
                  "--directory", str(tmp_path / "study")])
    assert done.returncode == 0, done.stderr[-2000:]
    configurations = summary_metrics(tmp_path / "study")
    assert len(configurations) == 9  # 3 arms x 3 training sets
    for configuration in configurations:
        metrics = configuration["metrics"]
        assert {"preference_accuracy@harmlessness", "preference_accuracy@helpfulness",
                "alignment_tax_text_nll"} <= set(metrics)


def option(run, name: str) -> str:
    return run.argv[run.argv.index(name) + 1]


def test_the_value_alignment_study_builds_every_arm():
    from sequoia.experiments.commands import check_runs
    from sequoia.experiments.sweep import read_definition
    from sequoia.yaml_file import read_yaml

    study = Path(__file__).resolve().parents[2] / "studies" / "value_alignment.yaml"
    spec, launch = read_definition(read_yaml(study, "sweep file"), "sweep file")
    check_runs(spec)  # every arm's setting, method and options are built
    runs = spec.runs()
    assert len(runs) == 30 and launch.workers == 1
    methods = {(option(run, "--setting"), option(run, "--method")) for run in runs}
    assert ("pa.multi_task", "naive") in methods
    assert {method for _, method in methods} == {"naive", "replay", "ewc", "lwf", "experts", "merge"}
    assert {option(run, "--setting.tasks") for run in runs} == {"values"}  # its sequence, not today's default


def test_the_rl_forgetting_study_builds_every_arm():
    from sequoia.experiments.commands import check_runs
    from sequoia.experiments.sweep import read_definition
    from sequoia.yaml_file import read_yaml

    study = Path(__file__).resolve().parents[2] / "studies" / "rl_forgetting.yaml"
    spec, _ = read_definition(read_yaml(study, "sweep file"), "sweep file")
    check_runs(spec)  # every arm's setting, method and options are built
    assert {option(run, "--method") for run in spec.runs()} == {"naive", "replay", "ewc"}


@pytest.mark.slow  # three RL runs: about a minute on 2 cores; the default suite builds every arm (above)
def test_the_rl_forgetting_study_runs_as_a_sweep_at_tiny_scale(tmp_path):
    study = Path(__file__).resolve().parents[2] / "studies" / "rl_forgetting.yaml"
    done = sweep([str(study), "--setting.steps_per_task", "300", "--setting.test_episodes", "1",
                  "--learner.learning_starts", "100", "--learner.batch_size", "16", "--learner.hidden_sizes", "8",
                  "--seeds", "0", "--directory", str(tmp_path / "study")])
    assert done.returncode == 0, done.stderr[-2000:]
    configurations = summary_metrics(tmp_path / "study")
    assert len(configurations) == 3  # naive, replay, ewc
    for configuration in configurations:
        assert {"average_forgetting", "normalized_return"} <= set(configuration["metrics"])


@pytest.mark.parametrize("found", [set(), {"sbatch"}, {"sbatch", "srun"}])
def test_the_slurm_launcher_is_refused_where_slurm_is_not(found, monkeypatch, tmp_path):
    from sequoia.experiments import sweep as sweep_module
    from sequoia.experiments.sweep import LaunchOptions

    monkeypatch.setattr(sweep_module.shutil, "which", lambda tool: f"/usr/bin/{tool}" if tool in found else None)
    launch = LaunchOptions(launcher="slurm", slurm={"partition": "gpu"})
    if found == {"sbatch", "srun"}:
        launch.check("sequoia sweep")  # SLURM is here: accepted
        return
    with pytest.raises(SequoiaError, match="--launcher slurm needs SLURM, and (sbatch and srun are|srun is) not"):
        launch.check("sequoia sweep")


def test_slurm_options_in_a_sweep_file_with_the_local_launcher_are_refused(tmp_path):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(yaml.safe_dump({"base": {"setting": "sl.incremental", "method": "naive"},
                                          "launch": {"launcher": "local", "slurm": {"time": 30}}}))
    done = sweep([str(sweep_file), "--directory", str(tmp_path / "sweep")])
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "sequoia: error: sequoia sweep: --slurm.time applies to --launcher slurm or submitit_local, and this sweep's "
        "launcher is local"]
    assert not (tmp_path / "sweep").exists()


def test_a_cluster_sweep_resumes_here_with_the_local_launcher(tmp_path):
    from sequoia.experiments.sweep import LaunchOptions, Sweep

    spec = SweepSpec.from_options({"setting": "sl.incremental", "method": "naive"}, None, set())
    Sweep.create(tmp_path / "s", spec, LaunchOptions(launcher="slurm", slurm={"partition": "gpu"})).close()
    reopened = Sweep.open(tmp_path / "s", {"launcher": "local"})
    try:
        assert reopened.launch.launcher == "local" and reopened.launch.slurm == {}
    finally:
        reopened.close()


@pytest.mark.parametrize("text", ["", "a", "2-1", "0-99999999", "-1"])
def test_bad_seeds_are_refused(text):
    with pytest.raises(SequoiaError, match="invalid seeds"):
        parse_seeds(text, "--seeds")


# -- running, killing, resuming -------------------------------------------------------------
def test_a_sweep_writes_its_files_and_an_index_of_finished_runs(uninterrupted):
    index = json.loads((uninterrupted / "index.json").read_text())["runs"]
    assert len(index) == 9 and {entry["state"] for entry in index} == {"finished"}
    for name in ("sweep.yaml", "summary.md", "summary.csv", "summary.json", "metrics.png",
                 "transfer_matrices.png", "average_performance.png", "paired_tests.csv"):
        assert (uninterrupted / name).is_file(), name
    # Each run is an ordinary run directory, re-runnable from its config.yaml.
    config = yaml.safe_load((uninterrupted / "runs" / index[4]["name"] / "config.yaml").read_text())
    assert config["method"]["name"] == "replay" and config["seed"] == 1
    stats = {c["label"]: c["metrics"]["average_final"] for c in summary_metrics(uninterrupted)}
    assert stats["method=replay"]["n"] == 3
    assert stats["method=replay"]["mean"] > stats["method=naive"]["mean"] + 0.2


def _in_flight(directory: Path) -> bool:
    """Whether some run has started (its config.yaml written) and not finished."""
    return any((run / "config.yaml").is_file() and not (run / "results.json").is_file()
               for run in (directory / "runs").glob("*"))


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_runs(tmp_path, uninterrupted):
    # Two of the GRID's methods over two of its seeds: each resumed run must equal the same run of the
    # uninterrupted sweep.
    directory = tmp_path / "killed"
    grid = [*GRID[:-1], "naive,replay"]
    driver = subprocess.Popen([sys.executable, "-m", "sequoia", "sweep", *grid, "--seeds", "0-1", "--workers", "2",
                               "--directory", str(directory), "--quiet"], env=sequoia_environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (directory / "runs").is_dir() or not _in_flight(directory) or not any(
            (run / "results.json").is_file() for run in (directory / "runs").glob("*")):
        assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended before it could be killed"
        time.sleep(0.05)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(1.0)
    # The workers died with the driver: every run directory can be locked again.
    finished_before = {}
    for run in sorted((directory / "runs").glob("*")):
        if (run / "config.yaml").is_file():
            DirectoryLock.take(run).release()
        if (run / "results.json").is_file():
            finished_before[run.name] = (run / "results.json").read_bytes()
    assert 0 < len(finished_before) < 4

    resumed = sweep(["--resume", str(directory)])
    assert resumed.returncode == 0, resumed.stderr
    whole = run_results(uninterrupted)
    assert run_results(directory) == {key: whole[key] for key in run_results(directory)}
    assert len(run_results(directory)) == 4 and [c["label"] for c in summary_metrics(directory)] == [
        "method=naive", "method=replay"]
    for name, content in finished_before.items():  # kept, not run again
        assert (directory / "runs" / name / "results.json").read_bytes() == content
        assert (directory / "logs" / f"{name}.log").read_text().count("$ sequoia") == 1
    index = json.loads((directory / "index.json").read_text())["runs"]
    assert {entry["state"] for entry in index} == {"finished"}


@pytest.mark.slow  # tests/experiments/test_tune.py runs trials through submitit's LocalExecutor by default
def test_the_slurm_code_path_through_submitits_local_executor_gives_the_local_runs(tmp_path, uninterrupted):
    through_submitit = sweep([*GRID, "--seeds", "0", "--launcher", "submitit_local", "--slurm.time", "10",
                              "--directory", str(tmp_path / "submitit")])
    assert through_submitit.returncode == 0, through_submitit.stderr
    submitted, local = run_results(tmp_path / "submitit"), run_results(uninterrupted)
    assert len(submitted) == 3 and submitted == {key: local[key] for key in submitted}
    assert list((tmp_path / "submitit" / "submitit").glob("*_submitted.pkl"))  # submitit ran the jobs
    index = json.loads((tmp_path / "submitit" / "index.json").read_text())["runs"]
    assert all(entry["job_id"] for entry in index)


def test_runs_that_fail_are_reported_and_retried_by_resume(tmp_path):
    directory = tmp_path / "failing"
    failed = sweep(["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2",
                    "--setting.dataset", f"digits,{tmp_path / 'missing'}", "--learner.epochs", "1",
                    "--directory", str(directory)])
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("sequoia: error: 1 of 2 runs did not finish")
    index = {entry["values"]["setting.dataset"]: entry for entry in
             json.loads((directory / "index.json").read_text())["runs"]}
    assert index["digits"]["state"] == "finished"
    assert index[str(tmp_path / "missing")]["state"] == "failed"
    assert "missing" in index[str(tmp_path / "missing")]["message"]
    assert (directory / "summary.json").is_file()  # the runs that finished are summarised
    again = sweep(["--resume", str(directory)])
    assert again.returncode == 1 and "1 of 2 runs did not finish" in again.stderr


def test_a_second_driver_on_the_same_sweep_is_refused(uninterrupted):
    sweep_object = Sweep.open(uninterrupted, {})
    try:
        with pytest.raises(SequoiaError, match="another sequoia process"):
            Sweep.open(uninterrupted, {})
    finally:
        sweep_object.close()


def test_the_example_sweep_file_builds_every_configuration():
    from sequoia.experiments.commands import check_runs
    from sequoia.experiments.sweep import read_definition
    from sequoia.yaml_file import read_yaml

    path = Path(__file__).parents[2] / "examples" / "sweep_sl_methods.yaml"
    spec, launch = read_definition(read_yaml(path, "sweep file"), str(path))
    check_runs(spec)
    assert spec.count() == 15 and launch.workers == 2


def test_sigterm_to_a_sweep_driver_stops_its_runs_at_their_checkpoints(tmp_path):
    """The driver forwards the signal: its runs stop where they are instead of training to their end (the
    SIGKILL test above shows that `--resume` brings interrupted runs to the results of uninterrupted ones)."""
    directory = tmp_path / "stopped"
    driver = subprocess.Popen([sys.executable, "-m", "sequoia", "sweep", "--setting", "sl.incremental",
                               "--setting.nb_tasks", "2", "--method", "naive,replay", "--learner.epochs", "60",
                               "--workers", "2", "--directory", str(directory), "--quiet"],
                              env={**sequoia_environment(), "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list(directory.glob("runs/*/checkpoint.pt"))) < 2:  # both runs past phase 0, training
        assert driver.poll() is None and time.monotonic() < deadline, "the sweep ended before it could be stopped"
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=120) == 143
    last = driver.stderr.read().strip().splitlines()[-1]
    assert last == f"sequoia: interrupted; `sequoia sweep --resume {directory}` continues the sweep"
    index = json.loads((directory / "index.json").read_text())["runs"]
    assert [entry["state"] for entry in index] == ["interrupted"] * 2  # not trained to their end
    for entry in index:
        run = directory / "runs" / entry["name"]
        assert (run / "checkpoint.pt").is_file() and not (run / "results.json").exists()
        assert entry["message"].startswith(f"sequoia: interrupted; {run} keeps the checkpoint taken after phase")
    assert sorted(path.name for path in directory.iterdir()) == ["index.json", "logs", "runs", "sweep.yaml"]
