"""The runs of a study kept in the repository (studies/results/): runs of its arms, under one protocol,
and what `sequoia compare` rebuilds the study document's table from."""

from pathlib import Path

import pytest

from sequoia.cli import main
from sequoia.errors import SequoiaError
from sequoia.experiments.sweep import read_definition
from sequoia.registry import get_method, resolve_setting
from sequoia.yaml_file import read_yaml
from tests.experiments.conftest import load_script

STUDIES = Path(__file__).resolve().parents[2] / "studies"
# Each study's sweep file is studies/NAME.yaml, and its kept runs are in studies/results/NAME/.
KEPT_STUDIES = ("value_alignment", "experts_digits", "corrigibility_conflict", "conflict_rerun")


def kept(folder: str) -> list[Path]:
    return sorted(path for path in (STUDIES / "results" / folder).iterdir() if path.is_dir())


KEPT = [(study, run) for study in KEPT_STUDIES for run in kept(study)]
ALPHA = kept("value_alignment_alpha")


def arms(study: str) -> list[dict]:
    definition = read_yaml(STUDIES / f"{study}.yaml", "sweep file")
    read_definition(definition, "sweep file")  # a valid sweep file
    return definition["axes"]["arm"]


def _value(key: str, value):
    """An arm's value as config.yaml records it: a setting by its qualified name (class_incremental -> incremental)."""
    if key != "setting":
        return value
    return resolve_setting(value, get_method("naive")).qualified_name()


def matches(arm: dict, config: dict) -> bool:
    """Whether a run's config.yaml is a run of ``arm`` (its setting, method and their options)."""
    for key, value in arm.items():
        group, _, option = key.partition(".")
        section = config.get(group, {})
        if (section.get("name") if not option else section.get(option)) != _value(key, value):
            return False
    return True


@pytest.mark.parametrize("folder", KEPT_STUDIES)
def test_study_runs_are_kept(folder):
    assert kept(folder), f"no run under studies/results/{folder}"


@pytest.mark.parametrize("study, run", KEPT, ids=lambda item: getattr(item, "name", item))
def test_a_kept_run_is_a_finished_run_of_an_arm_of_the_study(study, run):
    config = read_yaml(run / "config.yaml", "config.yaml")
    assert (run / "results.json").is_file()
    assert sum(matches(arm, config) for arm in arms(study)) == 1, config
    assert run.name.endswith(f"-seed-{config['seed']}")


@pytest.mark.parametrize("folder", KEPT_STUDIES)
def test_kept_runs_share_one_protocol(folder):
    protocols = set()
    for run in kept(folder):
        config = read_yaml(run / "config.yaml", "config.yaml")
        setting = {key: value for key, value in config["setting"].items() if key != "name"}
        protocols.add(repr((sorted(setting.items()), sorted(config.get("eval", {}).items()))))
    assert len(protocols) == 1


def test_compare_rebuilds_the_table_from_them(tmp_path, capsys):
    assert main(["compare", str(STUDIES / "results" / "value_alignment"), "--output", str(tmp_path),
                 "--metrics", "average_final,average_forgetting,alignment_tax_text_nll"]) == 0
    assert "method=experts" in capsys.readouterr().out
    assert (tmp_path / "comparison.md").is_file()


def test_compare_rebuilds_the_digits_table_and_its_paired_tests(tmp_path):
    assert main(["compare", str(STUDIES / "results" / "experts_digits"), "--output", str(tmp_path),
                 "--metrics", "average_final,average_forgetting,task_identification"]) == 0
    table = (tmp_path / "comparison.md").read_text()
    assert "| method=experts setting=sl.task_incremental | 5 |" in table and "## Against the baseline" in table
    assert (tmp_path / "average_performance.png").is_file()


def test_compare_tests_every_arm_of_the_conflict_rerun_against_the_tuned_naive(tmp_path):
    metrics = "average_final,average_forgetting,alignment_tax_text_nll,alignment_tax_mmlu"
    assert main(["compare", str(STUDIES / "results" / "conflict_rerun"), "--output", str(tmp_path),
                 "--baseline", "setting=pa.incremental method=naive", "--metrics", metrics]) == 0
    import json

    saved = json.loads((tmp_path / "comparison.json").read_text())
    tested = {t["configuration"] for t in saved["paired_tests"] if t["metric"] == "average_final"}
    assert len(saved["configurations"]) == 8 and len(tested) == 7  # every arm but the baseline itself
    assert (tmp_path / "forgetting_tradeoff.png").is_file()


@pytest.mark.parametrize("run", ALPHA, ids=lambda path: path.name)
def test_a_kept_alpha_run_is_a_ties_merge_at_a_swept_alpha(run):
    config = read_yaml(run / "config.yaml", "config.yaml")
    assert (run / "results.json").is_file()
    assert config["setting"]["name"] == "pa.incremental" and config["method"]["name"] == "merge"
    assert config["method"]["combination"] == "ties" and config["method"]["alpha"] in (0.25, 0.5, 0.75)
    assert run.name == f"merge-alpha-{config['method']['alpha']}-seed-{config['seed']}"


def test_compare_draws_the_alpha_tradeoff_with_the_study_s_ties_runs(tmp_path):
    ties = [str(run) for run in kept("value_alignment") if run.name.startswith("merge-ties-")]  # alpha 1
    assert len(ALPHA) >= 3 and len(ties) == 3
    assert main(["compare", str(STUDIES / "results" / "value_alignment_alpha"), *ties,
                 "--output", str(tmp_path), "--metrics", "average_final,alignment_tax_text_nll"]) == 0
    assert "method.alpha=0.25" in (tmp_path / "comparison.md").read_text()
    assert (tmp_path / "tradeoff.png").is_file()


# The tunings of the conflict re-run (studies/conflict_tuning.sh): one directory per arm, each with its
# tune.yaml, Optuna study, trials.csv, best.yaml, and each trial's config.yaml and results.json.
TUNINGS = STUDIES / "results" / "conflict_tuning"
KEPT_TUNINGS = sorted(path for path in TUNINGS.iterdir() if path.is_dir()) if TUNINGS.is_dir() else []


@pytest.mark.parametrize("tuning", KEPT_TUNINGS, ids=lambda path: path.name)
def test_a_kept_tuning_trained_and_scored_only_the_tuning_tasks(tuning):
    import csv
    import json

    definition = read_yaml(tuning / "tune.yaml", "tune.yaml")
    assert definition["protocol"] == {"name": "first_tasks", "tuning_tasks": 2}
    runs = sorted(path for path in (tuning / "runs").iterdir() if (path / "results.json").is_file())
    assert runs, f"no finished trial in {tuning}"
    for run in runs:  # a trial saw the first two tasks only: its slice, and a matrix of two columns
        config = read_yaml(run / "config.yaml", "config.yaml")
        assert config["setting"]["task_slice"] == ":2"
        assert all(len(row) == 2 for row in json.loads((run / "results.json").read_text())["transfer_matrix"])
    trials = list(csv.DictReader((tuning / "trials.csv").open()))
    best_trial = max((t for t in trials if t["state"] == "complete"), key=lambda t: float(t["value"]))
    best = read_yaml(tuning / "best.yaml", "best.yaml")
    read_definition(best, "best.yaml")
    assert best["base"]["setting.task_slice"] == "2:"  # the evaluation: the tasks no trial saw
    for option in definition["space"]:
        assert float(best["base"][option]) == pytest.approx(float(best_trial[option]))


def test_every_kept_tuning_had_the_same_budget_and_fixed_options():
    """The same trial budget for every arm (the re-run's fairness): trials, seeds, sampler, and the fixed options
    but for each arm's own (its setting, method and method options)."""
    shared = set()
    for tuning in KEPT_TUNINGS:
        definition = read_yaml(tuning / "tune.yaml", "tune.yaml")
        fixed = {key: value for key, value in definition["base"].items()
                 if key not in ("setting", "method") and not key.startswith("method.")}
        shared.add(repr((definition["trials"], definition["seeds"], definition["sampler"],
                         definition["sampler_seed"], sorted(fixed.items()),
                         definition["space"]["learner.lr"])))
    assert len(shared) <= 1, shared


def test_the_rerun_evaluates_each_arm_at_its_tuning_s_choice():
    """studies/conflict_rerun.yaml (scripts/sweep_from_tunings.py) runs every kept tuning's best.yaml, one arm
    each, and changes nothing but the probes, which the trials had off."""
    sweep = read_yaml(STUDIES / "conflict_rerun.yaml", "sweep file")
    read_definition(sweep, "sweep file")
    assert sweep["base"]["eval.capability"] == "mmlu,truthfulqa_mc1,text_nll"
    runs = [{**sweep["base"], **arm} for arm in sweep["axes"]["arm"]]
    assert len(runs) == len(KEPT_TUNINGS) == 8
    for tuning in KEPT_TUNINGS:
        best = read_yaml(tuning / "best.yaml", "best.yaml")["base"]
        best = {**best, "eval.capability": sweep["base"]["eval.capability"]}
        assert sum(run == best for run in runs) == 1, tuning.name


def test_final_per_task_reads_each_task_s_final_and_just_trained_accuracy_from_the_kept_runs(capsys):
    import json

    from sequoia.intervals import t_interval

    script = load_script("final_per_task")
    assert script.per_task([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]) == {"final": [0.2, 0.8], "just_trained": [0.9, 0.8]}
    assert script.per_task([[0.5, 0.5], [0.9, 0.1]])["just_trained"] == [0.9, 0.1]  # multi-task: one phase
    with pytest.raises(SequoiaError, match="expected 4 rows"):
        script.per_task([[0.5, 0.5, 0.5], [0.9, 0.1, 0.1], [0.2, 0.8, 0.1]])
    folder = STUDIES / "results" / "corrigibility_conflict"
    assert script.main([str(folder), "--markdown"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| method=naive")]
    matrices = [json.loads((run / "results.json").read_text())["transfer_matrix"]
                for run in kept("corrigibility_conflict")]
    mean, _, (low, high) = t_interval([matrix[-1][0] for matrix in matrices])
    assert row.split(" | ")[2] == f"{mean:.3f} ± {(high - low) / 2:.3f}"  # task 0's final accuracy
    assert script.main([str(STUDIES / "results" / "conflict_tuning" / "naive" / "tune.yaml")]) == 2
