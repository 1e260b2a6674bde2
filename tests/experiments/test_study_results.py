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
KEPT_STUDIES = ("value_alignment", "experts_digits", "corrigibility_conflict", "conflict_rerun", "thakkar_finding1")


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
    """The setting's and the evaluation's options are those of every run, but for what an arm sets (Thakkar's
    arms differ in their training data, ``setting.tasks``)."""
    own = {key for arm in arms(folder) for key in arm}
    protocols = set()
    for run in kept(folder):
        config = read_yaml(run / "config.yaml", "config.yaml")
        setting = {key: value for key, value in config["setting"].items()
                   if key != "name" and f"setting.{key}" not in own}
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


@pytest.mark.parametrize("data", ["harmless", "helpful"])
def test_compare_pairs_dpo_with_sft_on_each_training_set_of_thakkar_s_finding_1(tmp_path, data):
    import json

    runs = [str(run) for run in kept("thakkar_finding1") if f"-{data}-seed-" in run.name]
    assert len(runs) == 10  # 2 arms x 5 seeds
    assert main(["compare", *runs, "--baseline", "method=lora_sft", "--output", str(tmp_path),
                 "--metrics", "preference_accuracy@harmlessness,preference_accuracy@helpfulness"]) == 0
    saved = json.loads((tmp_path / "comparison.json").read_text())
    [test] = [t for t in saved["paired_tests"] if t["metric"] == "preference_accuracy@harmlessness"]
    assert test["configuration"].startswith("method=dpo_lora") and test["n"] == 5
    assert test["p_holm"] == test["p"]  # one arm tested: Holm's adjustment changes nothing


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


# The kept tunings: one directory per arm, each with its tune.yaml, Optuna study, trials.csv, best.yaml, and
# each trial's config.yaml and results.json. The conflict re-run's arms (studies/conflict_tuning.sh) were tuned
# by first_tasks, Thakkar's finding 1 (studies/thakkar_tuning.sh) by validation.
TUNING_PROTOCOLS = {"conflict_tuning": "first_tasks", "thakkar_tuning": "validation"}


KEPT_TUNINGS = [tuning for folder in TUNING_PROTOCOLS for tuning in kept(folder)]


def trial_saw_only_tuning_data(protocol: str, config: dict, matrix: list[list[float]]) -> bool:
    """first_tasks: a trial trained and scored the first two tasks only (its slice, a matrix of two columns);
    validation: it scored pairs held out of the training pairs (``evaluate_on``), never a test pair."""
    if protocol == "first_tasks":
        return config["setting"]["task_slice"] == ":2" and all(len(row) == 2 for row in matrix)
    return config["setting"]["evaluate_on"] == "validation"


@pytest.mark.parametrize("tuning", KEPT_TUNINGS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_kept_tuning_trained_and_scored_only_its_protocol_s_data(tuning):
    import csv
    import json

    protocol = TUNING_PROTOCOLS[tuning.parent.name]
    definition = read_yaml(tuning / "tune.yaml", "tune.yaml")
    assert definition["protocol"]["name"] == protocol
    runs = sorted(path for path in (tuning / "runs").iterdir() if (path / "results.json").is_file())
    assert len(runs) == definition["trials"], f"a trial of {tuning} did not finish"
    for run in runs:
        config = read_yaml(run / "config.yaml", "config.yaml")
        matrix = json.loads((run / "results.json").read_text())["transfer_matrix"]
        assert trial_saw_only_tuning_data(protocol, config, matrix), run
    trials = list(csv.DictReader((tuning / "trials.csv").open()))
    best_trial = max((t for t in trials if t["state"] == "complete"), key=lambda t: float(t["value"]))
    best = read_yaml(tuning / "best.yaml", "best.yaml")
    read_definition(best, "best.yaml")
    evaluation = {"first_tasks": {"setting.task_slice": "2:"}, "validation": {}}[protocol]
    assert {key: best["base"].get(key) for key in ("setting.task_slice", "setting.evaluate_on")} == {
        "setting.task_slice": None, "setting.evaluate_on": None, **evaluation}  # the evaluation: test items
    for option in definition["space"]:
        assert float(best["base"][option]) == pytest.approx(float(best_trial[option]))


@pytest.mark.parametrize("folder", TUNING_PROTOCOLS)
def test_every_kept_tuning_of_a_study_had_the_same_budget_and_fixed_options(folder):
    """The same trial budget for every arm (a re-run's fairness): trials, seeds, sampler, and the fixed options
    but for each arm's own (its setting, method, method options and, for Thakkar, its training data)."""
    shared = set()
    for tuning in kept(folder):
        definition = read_yaml(tuning / "tune.yaml", "tune.yaml")
        fixed = {key: value for key, value in definition["base"].items()
                 if key not in ("setting", "method", "setting.tasks") and not key.startswith("method.")}
        if folder == "conflict_tuning":
            assert definition["base"]["setting.tasks"].startswith("harmlessness,helpfulness,")
        shared.add(repr((definition["trials"], definition["seeds"], definition["sampler"],
                         definition["sampler_seed"], sorted(fixed.items()),
                         definition["space"]["learner.lr"])))
    assert len(shared) == 1, shared


# Each evaluation sweep (scripts/sweep_from_tunings.py), its tunings, and what it adds to their best.yaml: the
# probes, which the trials had off, and for Thakkar both preference test sets.
EVALUATIONS = {
    "conflict_rerun": ("conflict_tuning", 8, {"eval.capability": "mmlu,truthfulqa_mc1,text_nll"}),
    "thakkar_finding1": ("thakkar_tuning", 4, {"eval.capability": "mmlu,truthfulqa_mc1,text_nll",
                                              "eval.test_tasks": "harmlessness,helpfulness"}),
}


@pytest.mark.parametrize("study", EVALUATIONS)
def test_an_evaluation_runs_each_arm_at_its_tuning_s_choice(study):
    """The study's sweep file runs every kept tuning's best.yaml, one arm each, and changes nothing but what
    it adds."""
    folder, count, added = EVALUATIONS[study]
    sweep = read_yaml(STUDIES / f"{study}.yaml", "sweep file")
    read_definition(sweep, "sweep file")
    assert {key: sweep["base"][key] for key in added} == added
    runs = [{**sweep["base"], **arm} for arm in sweep["axes"]["arm"]]
    assert len(runs) == len(kept(folder)) == count
    for tuning in kept(folder):
        best = {**read_yaml(tuning / "best.yaml", "best.yaml")["base"], **added}
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
