"""The GPU checks of the PA branch, one after the other, each result added to one JSON summary as it comes.

1. build a 1.1B-parameter Llama from its config (``benchmarks/build_llama.py``; no download);
2. ``benchmarks/dpo_step.py`` on it in bfloat16: sequoia against TRL's defaults and TRL at its best;
3. the same in 4-bit QLoRA (bitsandbytes NF4), where sequoia's peak memory should be at most TRL's;
4. one short PA run of the CLI on the GPU (``sequoia --setting pa.incremental --method dpo_lora``).

A part that fails or runs out of its time is recorded as such and the next one runs.
``benchmarks/device_check.sh`` is the one command that installs what the GPU image lacks and calls this.

    python benchmarks/device_check.py --out DIR [--size 1b|tiny] [--tokenizer DIR] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import sequoia  # noqa: F401  (first: makes torchvision importable for transformers, see sequoia/torchvision_compat.py)

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    """The device and library versions the figures were measured with."""
    import torch
    import transformers

    info = {"torch": torch.__version__, "transformers": transformers.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(0)
        info |= {"gpu": properties.name, "gpu_memory_gb": round(properties.total_memory / 2**30, 1),
                 "capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}
    return info


def run_part(command: list[str], timeout: float) -> dict:
    """Run one part; its exit code, seconds, and the end of its output."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as expired:
        code, output = "timeout", f"{expired.stdout or ''}{expired.stderr or ''}"
    return {"returncode": code, "seconds": round(time.perf_counter() - start, 1), "output_tail": str(output)[-2000:],
            "command": " ".join(command)}


def dpo_part(model: Path, out: Path, quantization: str, steps: int, timeout: float) -> dict:
    target = out / f"dpo_step_{quantization}.json"
    command = [sys.executable, str(HERE / "dpo_step.py"), "--model", str(model), "--dtype", "bfloat16",
               "--quantization", quantization, "--steps", str(steps), "--json", str(target)]
    part = run_part(command, timeout)
    if target.exists():
        part["result"] = json.loads(target.read_text())
    return part


def cli_part(model: Path, out: Path, timeout: float) -> dict:
    command = [sys.executable, "-m", "sequoia", "--setting", "pa.incremental", "--method", "dpo_lora",
               "--setting.model", str(model), "--setting.device", "auto", "--setting.train_pairs_per_task", "32",
               "--setting.test_pairs_per_task", "32", "--eval.capability", "text_nll", "--output", str(out / "runs"),
               "--quiet"]
    part = run_part(command, timeout)
    found = sorted((out / "runs").rglob("results.json"))
    if found:
        results = json.loads(found[-1].read_text())
        part["result"] = {key: results.get(key) for key in ("transfer_matrix", "runtime_s")} | {
            "metrics": results.get("metrics")}
    return part


def checks(summary: dict) -> dict:
    """The acceptance figures read off the parts: ratios to TRL at its best, and the 4-bit peak against TRL's.

    Example:
        >>> part = {"result": {"batches": {"b": {"time_ratio_vs_trl_best": 0.3, "memory_ratio_vs_trl_best": 0.9}}}}
        >>> checks({"bf16": part, "qlora_4bit": part})["qlora_4bit_peak_at_most_trl"]
        True
    """
    found = {}
    for name in ("bf16", "qlora_4bit"):
        batches = summary.get(name, {}).get("result", {}).get("batches", {})
        for batch, row in batches.items():
            found[f"{name}_{batch}_time_ratio_vs_trl_best"] = row.get("time_ratio_vs_trl_best")
            found[f"{name}_{batch}_memory_ratio_vs_trl_best"] = row.get("memory_ratio_vs_trl_best")
    ratios = [v for k, v in found.items() if k.startswith("qlora_4bit") and "memory" in k and v is not None]
    found["qlora_4bit_peak_at_most_trl"] = bool(ratios) and all(ratio <= 1.0 for ratio in ratios)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="1b", choices=["1b", "tiny"])
    parser.add_argument("--tokenizer", help="a tokenizer directory (default: the default model's, else bytes)")
    parser.add_argument("--steps", type=int, default=3, help="timed DPO steps per configuration")
    parser.add_argument("--budget", type=float, default=450, help="seconds for all parts together")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from build_llama import build

    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "device_check.json"
    start = time.perf_counter()
    summary = {"machine": machine()}

    def save() -> None:
        summary["checks"] = checks(summary)
        summary["seconds"] = round(time.perf_counter() - start, 1)
        summary_path.write_text(json.dumps(summary, indent=2))

    model = args.out / "model"
    summary["model"] = build(model, args.size, args.tokenizer)
    save()
    shares = {"bf16": 0.35, "qlora_4bit": 0.35, "cli_run": 0.3}
    for index, (name, share) in enumerate(shares.items()):
        left = args.budget - (time.perf_counter() - start)  # the parts still to run share what is left
        timeout = max(30.0, left * share / sum(list(shares.values())[index:]))
        if name == "cli_run":
            summary[name] = cli_part(model, args.out, timeout)
        else:
            summary[name] = dpo_part(model, args.out, "none" if name == "bf16" else "4bit", args.steps, timeout)
        save()
        print(f"{name}: exit {summary[name]['returncode']} in {summary[name]['seconds']} s", flush=True)
    print(json.dumps(summary["checks"], indent=2))
    print(f"written: {summary_path}")


if __name__ == "__main__":
    main()
