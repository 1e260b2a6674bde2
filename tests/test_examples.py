"""The example scripts run and show what they claim."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


def run_example(name, *args):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_new_setting_runs_every_applicable_method_unchanged():
    out = run_example("new_assumption_setting.py", "--nb-tasks", "3")
    finals = dict(re.findall(r"(\w+): average final accuracy ([\d.]+)", out))
    assert set(finals) == {"naive", "replay", "ewc", "lwf", "agem", "si", "experts"}
    assert float(finals["replay"]) > float(finals["naive"])


def test_new_method_runs_on_incremental_and_task_incremental():
    out = run_example("new_method.py", "--epochs", "3")
    assert "sl.incremental / confident_experts" in out and "sl.task_incremental / confident_experts" in out


def test_plugin_method_reduces_forgetting():
    out = run_example("plugin_method.py")
    forgetting = dict(re.findall(r"(\w+): average final accuracy [\d.]+, average forgetting ([\d.]+)", out))
    assert float(forgetting["l2_anchor"]) < float(forgetting["naive"])


def test_align_my_jsonl_shows_replay_keeping_the_first_task():
    out = run_example("align_my_jsonl.py")
    forgetting = dict(re.findall(r"pa.incremental / (\w+) .*?average_forgetting: ([\d.]+)", out, re.S))
    assert float(forgetting["replay"]) < float(forgetting["dpo_lora"])


def test_rl_task_schedule_runs_both_methods():
    out = run_example("rl_task_schedule.py", "--steps-per-task", "1500")
    assert "rl.incremental / naive" in out and "rl.incremental / replay" in out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_has_a_docstring_with_its_command(name):
    text = (EXAMPLES / name).read_text()
    assert text.startswith('"""') and f"python examples/{name}" in text


def test_resume_after_crash_matches_the_uninterrupted_run():
    out = run_example("resume_after_crash.py")
    assert "first attempt killed by SIGKILL: True" in out
    assert "'checkpoint.pt'" in out and "'results.json'" not in out
    assert "resumed run equals the uninterrupted run: True" in out


def test_alignment_tax_prints_each_probe_with_its_interval():
    out = run_example("alignment_tax.py", "--items", "8")
    taxes = re.findall(r"  (\w+): ([+-][\d.]+)  \[([+-][\d.]+), ([+-][\d.]+)\]", out)
    assert {name for name, *_ in taxes} == {"mmlu", "truthfulqa_mc1", "text_nll"}
    for _, tax, low, high in taxes:
        assert float(low) <= float(tax) <= float(high)
    assert "preference_accuracy@helpfulness" in out


def test_value_experts_routes_the_users_prompts():
    out = run_example("value_experts.py", "--pairs", "16", "--prompt", "How do I bake bread?")
    identification = float(re.search(r"task_identification: ([\d.]+)", out).group(1))
    assert identification > 0.5  # 3 tasks: chance is 1/3
    [line] = out.split("which expert the router picks for your prompts:\n")[1].strip().splitlines()
    assert line.split()[0] in {"moral_stories", "utilitarianism", "helpfulness"} and "How do I bake bread?" in line


@pytest.mark.slow  # a minute on 2 cores; tests/settings/rl/test_metaworld.py trains the same tasks by default
def test_continual_world_sac_prints_a_success_rate_matrix_per_method():
    pytest.importorskip("metaworld")
    out = run_example("continual_world_sac.py", "--tasks", "reach-v3,push-v3", "--steps-per-task", "400",
                      "--episodes", "1")
    assert "rl.task_incremental / naive: reach-v3, push-v3" in out and "rl.task_incremental / ewc" in out
    assert out.count("success rate (rows: before training, after each task)") == 2
