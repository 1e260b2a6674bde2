"""The parts of the benchmark scripts that need no GPU: the device check's model builder, the JSON they write, and the
matrix-product rate's report of `auto`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def python(*argv: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """This Python run with ``argv`` (and ``env`` added to this environment), whatever its exit status."""
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def launch(script: str, *args: str, timeout: float = 600, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess:
    """``benchmarks/script`` run with ``args`` (and ``env`` added to this environment), whatever its exit status."""
    return python(str(BENCHMARKS / script), *args, timeout=timeout, env=env)


def run(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = launch(script, *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_the_device_check_builds_a_llama_from_its_config_that_sequoia_loads(tmp_path):
    from sequoia.lm.models import load_model, load_tokenizer
    from sequoia.lm.models import byte_tokenizer

    byte_tokenizer().save_pretrained(tmp_path / "tokenizer")
    built = json.loads(run("build_llama.py", "--out", str(tmp_path / "model"), "--size", "tiny", "--tokenizer",
                           str(tmp_path / "tokenizer"), "--dtype", "float32").stdout)
    assert built["vocab_size"] == 259 and built["size"] == "tiny"
    assert json.loads((tmp_path / "model" / "built.json").read_text()) == built
    model = load_model(str(tmp_path / "model"), "float32", "cpu")
    assert sum(p.numel() for p in model.parameters()) == built["parameters"]
    assert load_tokenizer(str(tmp_path / "model")).pad_token_id == model.config.pad_token_id


def test_the_dpo_benchmark_writes_its_ratios_to_json(tmp_path):
    target = tmp_path / "dpo.json"
    run("dpo_step.py", "--model", "tiny-random", "--steps", "1", "--pairs", "2", "--batches",
        "moral_stories", "--same-process", "--json", str(target))
    report = json.loads(target.read_text())
    batch = report["batches"]["moral_stories"]
    assert set(batch) >= {"sequoia", "trl_default", "trl_best", "time_ratio_vs_trl_best"}
    for name in ("sequoia", "trl_default", "trl_best"):
        assert batch[name]["seconds_per_step"] > 0 and batch[name]["tokens_per_step"] > 0
    assert batch["sequoia"]["layout"] == "packed"
    # TRL's default runs the reference forward in every step: twice the tokens of its best configuration
    assert batch["trl_default"]["tokens_per_step"] == 2 * batch["trl_best"]["tokens_per_step"]
    assert batch["sequoia"]["tokens_per_step"] < batch["trl_best"]["tokens_per_step"]


def test_the_dpo_benchmark_times_stems_against_whole_prompts_on_the_same_steps(tmp_path):
    target = tmp_path / "stems.json"
    run("dpo_step.py", "--model", "tiny-random", "--steps", "2", "--pairs", "4", "--batches", "moral_stories",
        "--compare-stems", "--json", str(target))
    stems = json.loads(target.read_text())["batches"]["moral_stories"]["stems"]
    assert stems["stems_seconds"] > 0 and stems["whole_seconds"] > 0
    assert stems["stems_tokens"] < stems["whole_tokens"]  # the pairs' prompts begin alike
    assert stems["largest_loss_gap"] < 1e-5 and len(stems["stems_losses"]) == 2
    both = launch("dpo_step.py", "--compare-stems", "--compare-dtypes")
    assert both.returncode == 2 and "one comparison at a time" in both.stderr.strip().splitlines()[-1]


def test_the_evaluation_benchmark_times_the_tasks_and_layouts_it_is_given_and_refuses_unknown_ones(tmp_path):
    target = tmp_path / "eval.json"
    run("pa_eval.py", "--model", "tiny-random", "--rounds", "1", "--layouts", "packed,unstemmed", "--tasks",
        "values", "--json", str(target))
    report = json.loads(target.read_text())
    assert report["tasks"] == "values" and report["layouts"]["packed"]["later_row_s"] > 0
    assert report["layouts"]["unstemmed"]["later_row_s"] > 0 and report["packed_to_unstemmed"] > 0
    unknown = launch("pa_eval.py", "--model", "tiny-random", "--layouts", "packed,stemless")
    assert unknown.returncode == 2 and "stemless" in unknown.stderr.strip().splitlines()[-1]
    missing = tmp_path / "missing.jsonl"
    proc = launch("pa_eval.py", "--model", "tiny-random", "--tasks", str(missing), env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "missing.jsonl" in proc.stderr.strip().splitlines()[-1]


def test_the_matmul_rate_names_auto_s_choice_and_follows_an_instruction_ceiling(tmp_path):
    target = tmp_path / "rate.json"
    run("matmul_rate.py", "--tokens", "64", "--seconds", "0.05", "--device", "cpu", "--json", str(target))
    report = json.loads(target.read_text())
    assert report["float32"]["gflops"] > 0 and report["bfloat16"]["repeats"] >= 3
    assert report["auto"] in ("float32", "bfloat16") and report["auto_reason"].startswith("auto: ")
    capped = launch("matmul_rate.py", "--tokens", "64", "--seconds", "0.05", "--device", "cpu",
                    env={"ATEN_CPU_CAPABILITY": "avx2"})
    assert capped.returncode == 0, capped.stderr[-3000:]
    assert "auto: float32 (auto: no native bfloat16 on cpu (ATEN_CPU_CAPABILITY caps it))" in capped.stdout
    bad = launch("matmul_rate.py", "--tokens", "0")
    assert bad.returncode == 2 and "--tokens" in bad.stderr.strip().splitlines()[-1] and "Traceback" not in bad.stderr


def test_the_dpo_benchmark_names_an_instruction_ceiling_beside_the_cpu():
    # Figures measured under a ceiling must not read as if the CPU itself lacked bfloat16.
    code = (f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import sequoia, dpo_step; "
            "print(dpo_step.machine())")
    capped = python("-c", code, timeout=120, env={"ATEN_CPU_CAPABILITY": "avx2"})
    assert capped.returncode == 0, capped.stderr[-3000:]
    assert capped.stdout.strip().endswith("CPU without native bfloat16 (ATEN_CPU_CAPABILITY caps it)")


@pytest.mark.slow
def test_the_device_check_runs_end_to_end_on_a_tiny_model(tmp_path):
    run("device_check.py", "--out", str(tmp_path), "--size", "tiny", "--steps", "1", "--budget", "1200",
        timeout=1500)
    summary = json.loads((tmp_path / "device_check.json").read_text())
    assert summary["model"]["size"] == "tiny"
    for part in ("bf16", "qlora_4bit", "cli_run"):
        assert summary[part]["returncode"] == 0, summary[part]["output_tail"]
    assert "qlora_4bit_peak_at_most_trl" in summary["checks"]
