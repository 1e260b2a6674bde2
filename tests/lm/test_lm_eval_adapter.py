"""The lm-eval harness over a sequoia method, offline on a local task file."""

import json

import numpy as np
import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.lm.lm_eval_adapter import evaluate_tasks, harness_model
from sequoia.methods import DPOLoRAMethod
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.pa.capability import choice_accuracy, load_probe

pytest.importorskip("lm_eval")

TASK_YAML = """task: local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def method():
    setting = IncrementalPASetting(model="tiny-random", max_prompt_length=64, max_completion_length=16)
    setting.rng = np.random.default_rng(0)
    setting.prepare()
    method = DPOLoRAMethod()
    method.configure(setting.view())
    torch.manual_seed(0)  # move the adapters off zero, so that scores are not the base model's
    for name, parameter in method.base_learner.model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.5)
    return method


def local_task(directory, items):
    (directory / "items.jsonl").write_text("\n".join(json.dumps(item) for item in items) + "\n")
    (directory / "local_mc.yaml").write_text(TASK_YAML.format(items=directory / "items.jsonl"))
    return directory


def test_the_harness_and_sequoias_scorer_agree_exactly_on_a_local_task(tmp_path, method):
    probe = load_probe("truthfulqa_mc1", limit=40)
    items = [{"question": item.prompt[0]["content"], "choices": list(item.choices), "answer": item.answer}
             for item in probe.items]
    scores = evaluate_tasks(method, ["local_mc"], include_path=str(local_task(tmp_path, items)))
    ours = choice_accuracy(probe.items, lambda prompts, replies: method.logprobs(prompts, replies, None))
    right = int(ours.sum())
    assert 0 < right < 40  # a score with room to disagree
    assert scores["local_mc/acc"] == right / 40
    assert scores["local_mc/sample_len"] == 40


def test_loglikelihood_is_the_methods_reply_logprob(method):
    from lm_eval.api.instance import Instance

    requests = [Instance("loglikelihood", {}, ("Is the sky blue?", " Yes"), 0),
                Instance("loglikelihood", {}, ("Is the sky blue?", " No"), 1)]
    answers = harness_model(method).loglikelihood(requests)
    expected = method.logprobs([[{"role": "user", "content": "Is the sky blue?"}]] * 2, ["Yes", "No"], None)
    assert [score for score, _ in answers] == pytest.approx(expected.tolist())


def test_generation_stops_at_the_harness_stop_strings():
    from lm_eval.api.instance import Instance

    class Echo:
        name = "echo"

        def generate(self, prompts, max_new_tokens, sample=False):
            return [f"{prompts[0][0]['content']} answer\n\nQuestion: more"]

    request = Instance("generate_until", {}, ("Q", {"until": ["\n\n"], "max_gen_toks": 8}), 0)
    assert harness_model(Echo()).generate_until([request]) == ["Q answer"]


def test_unknown_tasks_and_perplexity_tasks_are_refused_in_one_line(tmp_path, method):
    with pytest.raises(SequoiaError, match="unknown lm-eval task"):
        evaluate_tasks(method, ["no_such_task"], include_path=str(local_task(tmp_path, [
            {"question": "q", "choices": ["a", "b"], "answer": 0}])))
    with pytest.raises(SequoiaError, match="loglikelihood_rolling"):
        harness_model(method).loglikelihood_rolling([])
