"""Behaviour of `experts`: experts do not forget, the router recognises tasks, an expert costs an adapter."""

import json
import random

import pytest
import torch

from sequoia.errors import NotApplicableError
from sequoia.learners import Classifier, DPOLoRA
from sequoia.methods import Experts, Naive
from sequoia.methods.routers import CentroidRouter
from sequoia.registry import get_method, resolve_setting
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.sl import IncrementalSLSetting, TaskIncrementalSLSetting
from tests.conftest import full_and_resumed_after_nan, quick_setting

SL_LEARNER = {"epochs": 5, "hidden_size": 64}
FAST = {"lr": 1e-2, "epochs": 3}


def test_experts_beat_naive_by_30_points_on_class_incremental_digits():
    experts = IncrementalSLSetting().apply(Experts().use_learner(Classifier(**SL_LEARNER)), progress=False)
    naive = IncrementalSLSetting().apply(Naive().use_learner(Classifier(**SL_LEARNER)), progress=False)
    metrics = experts.metrics()
    assert metrics["average_final"] > naive.metrics()["average_final"] + 0.3
    assert metrics["task_identification"] > 0.8  # 5 tasks: chance is 0.2
    assert len(experts.matrices["task_identification"][-1]) == 5
    assert experts.matrices["task_identification"][0] == [0.0] * 5  # row 0: no task known yet
    assert metrics["experts"] == 5 and metrics["total_parameters"] == 5 * metrics["parameters_per_expert"]
    assert metrics["trainable_parameters"] == metrics["total_parameters"]


def test_the_task_id_bypasses_the_router_where_the_level_gives_it():
    oracle = TaskIncrementalSLSetting().apply(Experts().use_learner(Classifier(**SL_LEARNER)), progress=False)
    routed = IncrementalSLSetting().apply(Experts().use_learner(Classifier(**SL_LEARNER)), progress=False)
    # Same seed, same experts: the oracle's errors are the experts' own, within their 2 classes.
    assert oracle.metrics()["average_final"] >= routed.metrics()["average_final"]
    assert oracle.metrics()["average_final"] > 0.95


def test_weighted_aggregation_with_a_cold_router_equals_top1():
    results = {}
    for aggregate, temperature in (("top1", 0.1), ("weighted", 1e-6)):
        method = Experts(aggregate=aggregate, router_temperature=temperature).use_learner(Classifier(**SL_LEARNER))
        results[aggregate] = IncrementalSLSetting(nb_tasks=3).apply(method, progress=False).matrix.values
    assert torch.equal(torch.as_tensor(results["top1"]), torch.as_tensor(results["weighted"]))


def test_experts_refuse_rl_with_the_reason():
    assert not Experts.is_applicable(resolve_setting("rl.incremental", get_method("naive")))
    with pytest.raises(NotApplicableError, match="RL tasks differ by their dynamics"):
        resolve_setting("rl.incremental", Experts)


def test_own_variances_route_around_a_group_of_no_spread():
    """A task whose inputs are all one point (as ETHICS-utilitarianism's one prompt) next to a spread-out task:
    under one pooled scale, the spread-out task's inputs far from its mean go to the point; each group's own
    Gaussian sends them home."""
    generator = torch.Generator().manual_seed(0)
    point = torch.zeros(50, 8)
    spread = torch.randn(200, 8, generator=generator) * 3 + 2
    test = torch.randn(200, 8, generator=generator) * 3 + 2
    accuracy = {}
    for variance in ("pooled", "own"):
        router = CentroidRouter(variance=variance)
        router.add(0, point)
        router.add(1, spread)
        accuracy[variance] = float((router.predict(test) == 1).float().mean())
    assert accuracy["own"] == 1.0 and accuracy["pooled"] < 0.9, accuracy
    with pytest.raises(ValueError, match="pooled"):
        CentroidRouter(variance="shared")


def test_router_means_are_updated_by_a_second_fit_of_the_same_task():
    router = CentroidRouter()
    router.add(0, torch.tensor([[0.0, 0.0]]))
    router.add(0, torch.tensor([[2.0, 0.0]]))
    router.add(1, torch.tensor([[10.0, 10.0]]))
    assert router.centroids.tolist() == [[1.0, 0.0], [10.0, 10.0]]
    assert router.predict(torch.tensor([[1.5, 0.0]])).tolist() == [0]


def _task(directory, words, chosen, rejected, seed, n_train=48):
    """A preference task whose prompts use their own vocabulary, so that a router can recognise them."""
    rng = random.Random(seed)
    directory.mkdir(parents=True)
    for split, count in (("train", n_train), ("test", 16)):
        rows = [{"prompt": " ".join(rng.choice(words) for _ in range(4)) + "?", "chosen": chosen,
                 "rejected": rejected} for _ in range(count)]
        (directory / f"{split}.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return directory


@pytest.fixture(scope="module")
def opposite_tasks(tmp_path_factory):
    """Two tasks with opposite preferences and prompts of different vocabularies.

    The second has three times the pairs (and steps) of the first, so that it can undo it.
    """
    root = tmp_path_factory.mktemp("experts")
    first = _task(root / "animals", ["cat", "dog", "horse", "bird", "fish", "mouse"], "yes", "no", 0)
    second = _task(root / "numbers", ["12", "47", "305", "8", "66", "91"], "no", "yes", 1, n_train=144)
    return f"{first},{second}"


def _pa_run(method, tasks):
    setting = quick_setting(IncrementalPASetting, tasks=tasks, train_pairs_per_task=144)
    return setting.apply(method.use_learner(DPOLoRA(**FAST)), progress=False)


def test_pa_experts_do_not_forget_an_opposite_preference_and_route_every_prompt(opposite_tasks):
    naive = _pa_run(Naive(), opposite_tasks)
    experts = _pa_run(Experts(), opposite_tasks)
    assert naive.matrix.values[1, 0] >= 0.9 and naive.matrix.average_forgetting() >= 0.3
    assert experts.matrix.values[-1].min() >= 0.9
    assert experts.matrix.average_forgetting() < naive.matrix.average_forgetting() - 0.3
    assert min(experts.matrices["task_identification"][-1]) >= 0.9


def test_an_expert_costs_an_adapter_not_a_model(opposite_tasks):
    from sequoia.lm.models import load_model

    metrics = _pa_run(Experts(), opposite_tasks).metrics()
    base = sum(p.numel() for p in load_model("tiny-random").parameters())
    # 2 experts: 2 adapters on the one base model.
    assert metrics["total_parameters"] == base + 2 * metrics["parameters_per_expert"]
    assert metrics["parameters_per_expert"] < base / 10
    assert metrics["trainable_parameters"] == 2 * metrics["parameters_per_expert"]


@pytest.mark.parametrize("name", ["experts", "merge"])
def test_pa_experts_and_merge_resume_to_identical_results(name, opposite_tasks, tmp_path, monkeypatch):
    """Every adapter, the router's means (experts), the merged adapter (merge: DARE's drops are random, so it is
    saved, not merged again) and the learner's generators go into checkpoints and back."""
    from sequoia.methods import Merge

    def build():
        setting = quick_setting(IncrementalPASetting, tasks=opposite_tasks, train_pairs_per_task=144)
        method = Experts() if name == "experts" else Merge(combination="dare_ties")
        return setting, method.use_learner(DPOLoRA(**FAST))

    full, resumed, _, _ = full_and_resumed_after_nan(build, tmp_path, monkeypatch, "nan@phase=2,step=3")
    assert resumed.to_dict() | {"runtime_s": 0} == full.to_dict() | {"runtime_s": 0}


def test_pa_weighted_experts_mix_the_experts_and_keep_both_preferences(opposite_tasks):
    results = _pa_run(Experts(aggregate="weighted"), opposite_tasks)
    assert results.matrix.values[-1].min() >= 0.9
    assert results.matrix.average_forgetting() <= 0.1
