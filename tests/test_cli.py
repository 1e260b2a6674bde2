"""The command line: runs, outputs, config round trips, and one-line errors for bad input."""

import json
from pathlib import Path
import subprocess
import sys

import pytest
import yaml

from sequoia import cli
from sequoia.cli import main
from sequoia.runs.files import RUN_FILES

QUICK = ["--quiet", "--learner.epochs", "2"]


def run_dirs(root):
    return sorted(p.parent for p in root.rglob("results.json"))


def test_run_prints_matrix_and_writes_every_file(tmp_path, capsys):
    code = main(["--setting", "class_incremental", "--method", "ewc", "--output", str(tmp_path), *QUICK])
    assert code == 0
    out = capsys.readouterr().out
    assert "sl.incremental / ewc" in out and "average_forgetting" in out and "after 4" in out
    [run_dir] = run_dirs(tmp_path)
    assert run_dir.parent == tmp_path / "sl.incremental" / "ewc"
    assert sorted(p.name for p in run_dir.iterdir()) == sorted([*RUN_FILES, "checkpoint.pt", "metrics.jsonl"])
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["transfer_matrix"]) == 6
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["setting"]["name"] == "sl.incremental" and config["learner"]["epochs"] == 2


def test_same_seed_gives_identical_metrics_and_config_reruns_the_experiment(tmp_path):
    args = ["--setting", "sl.task_incremental", "--method", "replay", "--seed", "3", "--method.buffer_size", "60",
            "--output", str(tmp_path), *QUICK]
    assert main(args) == 0
    assert main(args) == 0
    first, second = run_dirs(tmp_path)
    assert main(["--config", str(first / "config.yaml"), "--output", str(tmp_path), "--quiet"]) == 0
    third = [d for d in run_dirs(tmp_path) if d not in (first, second)][0]
    metrics = [json.loads((d / "results.json").read_text())["metrics"] for d in (first, second, third)]
    assert metrics[0] == metrics[1] == metrics[2]
    rerun_config = yaml.safe_load((third / "config.yaml").read_text())
    assert rerun_config == yaml.safe_load((first / "config.yaml").read_text())


def test_options_on_the_command_line_override_the_config(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"setting": {"name": "sl.incremental", "nb_tasks": 2},
                                      "method": {"name": "naive"}, "learner": {"epochs": 1}}))
    assert main(["--config", str(config), "--setting.nb_tasks", "5", "--output", str(tmp_path), "--quiet"]) == 0
    [run_dir] = run_dirs(tmp_path)
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["setting"]["nb_tasks"] == 5 and saved["learner"]["epochs"] == 1


def test_dpo_lora_on_class_incremental_runs_the_pa_branch(tmp_path, capsys):
    assert main(["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
                 "--output", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "pa.incremental / dpo_lora  (preference_accuracy, ± half the 95% bootstrap interval" in printed
    assert " ± " in printed.splitlines()[2]  # every cell with its interval
    [run_dir] = run_dirs(tmp_path)
    assert (run_dir / "samples.jsonl").exists()
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["matrices"]) == {"mean_margin", "length_normalized_accuracy", "drift", "capability_mmlu",
                                        "capability_truthfulqa_mc1", "capability_text_nll"}
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["setting"]["model"] == "tiny-random"


def test_ewc_with_a_pa_learner(tmp_path):
    assert main(["--setting", "pa.task_incremental", "--method", "ewc", "--method.learner", "dpo_lora",
                 "--preset", "smoke", "--output", str(tmp_path), "--quiet"]) == 0
    [run_dir] = run_dirs(tmp_path)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["learner"]["name"] == "dpo_lora" and config["method"]["fisher_samples"] == 8


def test_rl_smoke_preset_writes_the_normalised_matrix(tmp_path):
    assert main(["--setting", "rl.incremental", "--method", "replay", "--preset", "smoke",
                 "--setting.steps_per_task", "1000", "--output", str(tmp_path), "--quiet"]) == 0
    [run_dir] = run_dirs(tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    assert len(results["matrices"]["normalized_return"]) == 4
    assert results["metrics"]["random_return"] > 0


def test_list_shows_the_tree_with_methods(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert ("sl.incremental (alias sl.class_incremental): agem, avalanche.agem, avalanche.cumulative, avalanche.der, "
            "avalanche.er_ace, avalanche.ewc, avalanche.gdumb, avalanche.gem, avalanche.gss_greedy, avalanche.lfl, "
            "avalanche.lwf, avalanche.mas, avalanche.mir, avalanche.naive, avalanche.replay, ewc, experts, lwf, naive, "
            "replay, si") in out
    assert ("pa.incremental (alias pa.class_incremental): agem, dpo_lora, elastic_reset, ewc, experts, lora_sft, lwf, "
            "merge, naive, replay, si") in out
    assert "rl.incremental (alias rl.class_incremental): agem, ewc, lwf, naive, replay, si" in out  # no experts
    assert ("    - sl.discrete_task_agnostic: agem, avalanche.agem, avalanche.cumulative, avalanche.der, "
            "avalanche.er_ace, avalanche.gdumb, avalanche.gem, avalanche.gss_greedy, avalanche.mir, avalanche.naive, "
            "avalanche.replay, naive, replay") in out
    # multi_task trains in one phase: only methods that need no second phase apply there.
    assert "          - sl.multi_task: avalanche.naive, naive\n" in out
    # The learners that --method.learner takes, each domain's default marked.
    assert ("  classifier*  SLSetting          trained by: agem, avalanche.agem, avalanche.cumulative, avalanche.der, "
            "avalanche.er_ace, avalanche.ewc, avalanche.gdumb, avalanche.gem, avalanche.gss_greedy, avalanche.lfl, "
            "avalanche.lwf, avalanche.mas, avalanche.mir, avalanche.naive, avalanche.replay, ewc, experts, lwf, naive, "
            "replay, si") in out
    assert "  lora_sft     PreferenceSetting" in out


def test_setting_help_lists_setting_options(capsys):
    assert main(["--setting", "class_incremental", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--setting.nb_tasks int" in out and "Number of tasks" in out


def test_method_help_lists_method_and_learner_options(capsys):
    assert main(["--setting", "class_incremental", "--method", "replay", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--method.buffer_size" in out and "--learner.lr" in out


def write(path, text):
    path.write_text(text)
    return path


def bad_config(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return ["--config", str(path)]


BAD_INPUTS = {
    "unknown setting": (lambda t: ["--setting", "class_incrementl", "--method", "ewc"],
                        "unknown setting 'class_incrementl'; did you mean 'class_incremental'"),
    "unknown method": (lambda t: ["--setting", "class_incremental", "--method", "ewx"],
                       "unknown method 'ewx'; did you mean 'ewc'"),
    "method does not apply": (lambda t: ["--setting", "continual", "--method", "ewc"],
                              "targets IncrementalAssumption and does not apply to 'continual'; it applies to: "),
    "out of range": (lambda t: ["--setting", "class_incremental", "--method", "ewc", "--setting.nb_tasks", "0"],
                     "invalid value 0 for --setting.nb_tasks: Input should be greater than 0"),
    "wrong type": (lambda t: ["--setting", "class_incremental", "--method", "ewc", "--method.ewc_lambda", "x"],
                   "argument --method.ewc_lambda: invalid float value: 'x'"),
    "bad choice": (lambda t: ["--setting", "class_incremental", "--method", "ewc", "--learner.optimizer", "lbfgs"],
                   "invalid choice: 'lbfgs'"),
    "unknown option": (lambda t: ["--setting", "class_incremental", "--method", "ewc", "--setting.nb_taks", "3"],
                       "unrecognized arguments: --setting.nb_taks 3"),
    "missing method": (lambda t: ["--setting", "class_incremental"], "--setting and --method are required"),
    "too many tasks": (lambda t: ["--setting", "class_incremental", "--method", "naive", "--setting.nb_tasks", "11"],
                       "nb_tasks=11 exceeds the 10 classes of digits"),
    "missing config": (lambda t: ["--config", str(t / "missing.yaml")], "config file not found"),
    "config not yaml": (lambda t: bad_config(t, "setting: [unclosed"), "is not valid YAML"),
    "config unknown key": (lambda t: bad_config(t, "settings: {}"), "unknown keys settings"),
    "config bad value": (lambda t: bad_config(t, "setting: {name: sl.incremental, nb_tasks: -1}\nmethod: {name: naive}"),
                         "invalid value -1 for config setting.nb_tasks"),
    "config unknown option": (lambda t: bad_config(t, "setting: {name: sl.incremental, tasks: 2}\nmethod: {name: naive}"),
                              "config setting: unknown option(s) tasks"),
    "unknown preset": (lambda t: ["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smok"],
                       "unknown preset 'smok'; known: default, smoke"),
    "missing preference file": (lambda t: ["--setting", "pa.incremental", "--method", "dpo_lora", "--preset", "smoke",
                                           "--setting.tasks", str(t / "mine.jsonl")],
                                "preference data file not found"),
    "missing model": (lambda t: ["--setting", "pa.incremental", "--method", "lora_sft", "--setting.model",
                                 str(t / "no-model")], "model directory not found"),
    "bad loss type": (lambda t: ["--setting", "class_incremental", "--method", "dpo_lora", "--learner.loss_type",
                                 "kto"], "invalid choice: 'kto'"),
    "bad rl parameter": (lambda t: ["--setting", "rl.incremental", "--method", "naive", "--setting.env",
                                    "MountainCar-v0", "--setting.schedule", str(write(t / "s.yaml", "0: {gravty: 1}"))],
                         "has no parameter 'gravty'"),
    "unknown environment": (lambda t: ["--setting", "rl.incremental", "--method", "naive", "--setting.env", "Nope-v0"],
                            "unknown gymnasium environment"),
    "missing dataset path": (lambda t: ["--setting", "class_incremental", "--method", "naive",
                                        "--setting.dataset", "hub-user/not-here"], "pass a local path"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_line_and_exit_code_2(case, tmp_path, capsys):
    make_args, expected = BAD_INPUTS[case]
    code = main([*make_args(tmp_path), "--output", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sequoia: error: ")
    assert expected in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_console_script_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sequoia", "--setting", "nope", "--method", "ewc"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_an_unexpected_error_is_one_line_naming_its_traceback_file(monkeypatch, capsys):
    def broken(*arguments):
        raise KeyError("x")

    monkeypatch.setattr("sequoia.experiment.choose_classes", broken)
    assert main(["--setting", "sl.incremental", "--method", "naive"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sequoia: internal error: KeyError: 'x' (a bug in sequoia; the "
                                                   "traceback is in ")
    saved = Path(err.split("the traceback is in ")[1].split(", please report it")[0])
    assert "Traceback" in saved.read_text() and "KeyError: 'x'" in saved.read_text()
    saved.unlink()
    monkeypatch.setenv("SEQUOIA_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["--setting", "sl.incremental", "--method", "naive"])


def test_an_unexpected_error_in_a_run_leaves_its_traceback_in_the_run_directory(monkeypatch, capsys, tmp_path):
    from sequoia.settings.base import Setting

    def broken(self, *arguments):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(Setting, "_results", broken)
    assert main(["--setting", "sl.incremental", "--method", "naive", "--preset", "smoke", "--quiet",
                 "--output", str(tmp_path)]) == 1
    [config] = tmp_path.rglob("config.yaml")
    err = capsys.readouterr().err
    assert err == (f"sequoia: internal error: RuntimeError: boom (a bug in sequoia; the traceback is in "
                   f"{config.parent / 'traceback.txt'}, please report it)\n")


def test_an_input_error_quoting_several_lines_is_printed_as_one(monkeypatch, capsys):
    from sequoia.errors import SequoiaError

    def refuse(argv):
        raise SequoiaError("could not read dataset x: ParserError: bad row\n  at line 3\n\n  near 'foo'")

    monkeypatch.setattr(cli, "run", refuse)
    assert main(["--setting", "sl.incremental", "--method", "naive"]) == 2
    assert capsys.readouterr().err == ("sequoia: error: could not read dataset x: ParserError: bad row; at line 3; "
                                       "near 'foo'\n")
