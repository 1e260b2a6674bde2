"""Capability probes and the alignment tax: scored blind through the method, in every PA run's results."""

import json

import numpy as np
import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.learners import DPOLoRA
from sequoia.methods import DPOLoRAMethod
from sequoia.results import Results, TransferMatrix
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.pa.capability import (ChoiceItem, TextItem, choice_accuracy, load_probe, parse_probe_names,
                                            probe_spec, text_nll)
from sequoia.settings.pa.evaluation import PAEvaluation
from tests.conftest import NO_TASK, YES_TASK, quick_setting, run_sequoia


def test_choice_accuracy_takes_the_most_likely_answer_and_the_first_of_equals():
    items = (ChoiceItem([{"role": "user", "content": "q1"}], ("a", "b", "c"), 2),
             ChoiceItem([{"role": "user", "content": "q2"}], ("a", "b"), 1))
    scores = {"a": -3.0, "b": -3.0, "c": -1.0}
    accuracy = choice_accuracy(items, lambda prompts, replies: torch.tensor([scores[r] for r in replies]))
    assert accuracy.tolist() == [1.0, 0.0]  # q2: a tie goes to the first choice, as argmax does


def test_text_nll_is_per_token():
    items = (TextItem([{"role": "user", "content": "x"}], "four"), TextItem([{"role": "user", "content": "y"}], "ab"))
    nll = text_nll(items, lambda prompts, replies: torch.tensor([-8.0, -2.0]), lambda texts: torch.tensor([4.0, 2.0]))
    assert nll.tolist() == [2.0, 1.0]


def test_shipped_probes_have_their_documented_sizes_and_valid_answers():
    for name, size in (("mmlu", 228), ("truthfulqa_mc1", 200)):
        probe = load_probe(name)
        assert len(probe.items) == size
        assert all(0 <= item.answer < len(item.choices) for item in probe.items)
    answers = [item.answer for item in load_probe("truthfulqa_mc1").items]
    assert np.mean(np.asarray(answers) == 0) < 0.5  # the options were shuffled: the true one is not always first
    assert not load_probe("text_nll").higher_is_better


def test_unknown_or_repeated_probe_names_are_refused():
    with pytest.raises(SequoiaError, match="unknown capability probe"):
        parse_probe_names("mmlu,hellaswag")
    with pytest.raises(SequoiaError, match="twice"):
        parse_probe_names("mmlu,mmlu")


def test_a_pa_run_measures_capability_before_training_and_after_each_phase():
    setting = quick_setting(IncrementalPASetting, tasks=f"{YES_TASK},{YES_TASK}")
    setting.use_options("eval", PAEvaluation(capability_items=12))
    results = setting.apply(DPOLoRAMethod().use_learner(DPOLoRA(lr=1e-2, epochs=3)), progress=False)
    assert set(results.capability) == {"mmlu", "truthfulqa_mc1", "text_nll"}
    for probe in results.capability:
        matrix = np.asarray(results.matrices[f"capability_{probe}"])
        assert matrix.shape == (3, 1)  # row 0 and after each of the 2 phases; one column
        assert len(results.items[f"capability_{probe}"][0][0]) == 12
    # Training on the synthetic task moves the model: the text NLL changes, and the tax says by how much.
    nll = np.asarray(results.matrices["capability_text_nll"])[:, 0]
    assert nll[-1] != nll[0]
    assert results.alignment_tax()["text_nll"] == pytest.approx(nll[-1] - nll[0])
    low, high = results.intervals()["metrics"]["alignment_tax_text_nll"]
    assert low <= results.metrics()["alignment_tax_text_nll"] <= high


def test_alignment_tax_interval_is_paired_over_the_same_items():
    # Every item loses exactly 0.1: a paired bootstrap gives a zero-width interval, an unpaired one would not.
    base = list(np.linspace(1.0, 3.0, 20))
    items = {"preference_accuracy": [[[0.5, 0.5]], [[1.0, 1.0]]],
             "capability_text_nll": [[base], [[value + 0.1 for value in base]]]}
    results = Results("pa.incremental", "m", TransferMatrix([[0.5], [1.0]]), items=items,
                      matrices={"capability_text_nll": [[float(np.mean(base))], [float(np.mean(base)) + 0.1]]},
                      specs={"capability_text_nll": probe_spec("text_nll")})
    low, high = results.intervals()["metrics"]["alignment_tax_text_nll"]
    assert low == pytest.approx(0.1) and high == pytest.approx(0.1)


def test_results_json_holds_capability_matrices_intervals_and_alignment_tax(tmp_path):
    proc = run_sequoia(["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
                        "--eval.capability_items", "8", "--output", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    [results_file] = tmp_path.rglob("results.json")
    results = json.loads(results_file.read_text())
    for probe in ("mmlu", "truthfulqa_mc1", "text_nll"):
        name = f"capability_{probe}"
        assert len(results["matrices"][name]) == 4 and len(results["matrices"][name][0]) == 1
        assert len(results["intervals"]["cells"][name]) == 4
        assert f"alignment_tax_{probe}" in results["metrics"]
        assert results["intervals"]["metrics"][f"alignment_tax_{probe}"] is not None
    assert "capability" in proc.stdout and "text_nll (lower is better)" in proc.stdout
    config = (results_file.parent / "config.yaml").read_text()
    assert "eval:" in config and "capability_items: 8" in config


def test_eval_options_are_checked_where_they_enter(tmp_path):
    proc = run_sequoia(["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
                        "--eval.capability", "mmlu,bbh", "--output", str(tmp_path)])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "sequoia: error: unknown capability probe(s) 'bbh' in --eval.capability; known: mmlu, truthfulqa_mc1, "
        "text_nll (or none)"]
    assert not any(tmp_path.iterdir())  # refused before any run directory was made
    proc = run_sequoia(["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
                        "--eval.capability_items", "-1", "--output", str(tmp_path)])
    assert proc.returncode == 2 and "--eval.capability_items" in proc.stderr


def test_held_out_preference_sets_are_scored_but_never_trained_on():
    setting = quick_setting(IncrementalPASetting, tasks=str(YES_TASK))
    setting.use_options("eval", PAEvaluation(capability="none", test_tasks=f"{NO_TASK}"))
    results = setting.apply(DPOLoRAMethod().use_learner(DPOLoRA(lr=1e-2, epochs=3)), progress=False)
    held_out = np.asarray(results.matrices["preference_accuracy@no"])[:, 0]
    assert held_out[0] == 0.5  # row 0 is its own reference
    assert results.matrix.values[1, 0] >= 0.9 and held_out[1] <= 0.1  # learning "yes" is unlearning "no"
    assert not results.capability and "capability_mmlu" not in results.matrices


def test_the_eval_group_is_saved_in_config_yaml_and_runs_again_from_it(tmp_path):
    args = ["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
            "--eval.capability", "text_nll", "--eval.capability_items", "4"]
    first = run_sequoia([*args, "--directory", str(tmp_path / "first")])
    assert first.returncode == 0, first.stderr[-2000:]
    again = run_sequoia(["--config", str(tmp_path / "first" / "config.yaml"), "--directory", str(tmp_path / "again")])
    assert again.returncode == 0, again.stderr[-2000:]
    first_results, again_results = (json.loads((tmp_path / name / "results.json").read_text())
                                    for name in ("first", "again"))
    assert again_results["matrices"]["capability_text_nll"] == first_results["matrices"]["capability_text_nll"]
    assert "capability_mmlu" not in again_results["matrices"]


def test_help_lists_the_eval_options():
    proc = run_sequoia(["--setting", "pa.incremental", "--method", "dpo_lora", "--help"])
    assert proc.returncode == 0
    assert "--eval.capability" in proc.stdout and "--eval.reward_model" in proc.stdout
