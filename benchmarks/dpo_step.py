"""One DPO training step of sequoia's dpo_lora learner against TRL's DPOTrainer, on two batches.

All train the same model with the same LoRA config (rank 8, alpha 16, peft's default
target modules) on the same 8 preference pairs per step with beta 0.1. Two batches:

* ``moral_stories``: the first 8 training pairs of the shipped Moral Stories task (short
  one-turn prompts);
* ``hh_helpful``: the first 8 training pairs of the shipped HH-RLHF helpful-base subset
  whose prompts have two or more user turns (long shared prompts, where sharing saves most).

Three configurations run on each batch:

* ``sequoia``: each pair one stretch ``[prompt | chosen | rejected]`` (the prompt computed
  once), the pairs packed into rows without padding, the beginning common to a row's
  prompts (the chat template's system prompt) computed once, each reply's last token
  scored but not computed on (its output would predict nothing scored), reply log-probs
  from the hidden states a chunk at a time; reference log-probs computed once per task,
  read from the rows;
* ``trl_default``: TRL as configured by default, a reference forward pass (adapters
  disabled) in every step;
* ``trl_best``: TRL at its best for this step: ``precompute_ref_log_probs=True``, the
  reference log-probs computed once before training. TRL 1.16 already scores tokens
  through a chunked head (``fused_lm_head``); its ``padding_free`` warns and falls back
  to padding, and no other ``DPOConfig`` option lowers the cost of a LoRA step on these
  devices (``gradient_checkpointing`` trades time for memory).

A step is forward + backward + optimizer step. Each configuration runs in a fresh process
(TRL's padded steps on the HH batch take over 10 GB on the CPU: three models side by side
ran out of 24 GB), one after the other, on an idle machine: the median step time of
``--steps`` steps after a warm-up; the peak memory of a step, over two more steps (resident
memory above the level before it, sampled every millisecond on a thread, which would slow
the timed steps; on a GPU, torch's peak allocated memory above the weights); and the
activations saved for the backward pass. Tokens are what the
model's forward passes compute on, padding and repeated prompts included.

    python benchmarks/dpo_step.py [--model smollm2-135m-instruct|tiny-random|PATH] [--steps 5]
        [--dtype float32|bfloat16] [--device auto|cpu|cuda] [--quantization none|4bit]
        [--batches moral_stories,hh_helpful] [--json PATH] [--compare-dtypes | --compare-stems] [--same-process]

``--compare-dtypes`` times sequoia's step in bfloat16 against float32 instead (in one
process, the two taking turns), and the losses of the same steps from the same adapters:
whether bfloat16 pays depends on the CPU (native with AVX512-BF16 or AMX, emulated and
several times slower on AVX2), so the report names the CPU. ``--compare-stems`` times
sequoia's step with stems (the default) against every prompt whole (``--learner.stems
false``) the same way, with the tokens each computes on. ``--same-process`` measures
every configuration in this process, for tiny models (the tests) where memory is no concern.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

CONFIGURATIONS = ("sequoia", "trl_default", "trl_best")
BATCHES = ("moral_stories", "hh_helpful")
_TASKS = {"moral_stories": "moral_stories", "hh_helpful": "helpfulness"}


class PeakMemory:
    """Peak memory (MB) above the level at entry: resident memory sampled on a thread, or CUDA's peak."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.gpu_start = torch.cuda.memory_allocated()
        self.start = self.peak = self._rss()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join()

    @property
    def extra_mb(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - self.gpu_start) / 2**20
        return (self.peak - self.start) / 2**20

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    @staticmethod
    def _rss() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def saved_for_backward_mb(forward, model) -> float:
    """MB of the activations autograd keeps from ``forward()`` for the backward pass (each storage once,
    the model's weights not at all): what a step holds between its passes, on any device."""
    weights = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(storages.values()) / 2**20


# -- the batches ----------------------------------------------------------------------
def setting_of(args: argparse.Namespace, batch: str, dtype: str):
    """A prepared PA setting holding ``batch``'s task; limits wide enough that neither library truncates."""
    from sequoia.settings.pa import IncrementalPASetting
    from sequoia.settings.pa.evaluation import PAEvaluation

    setting = IncrementalPASetting(model=args.model, tasks=_TASKS[batch], train_pairs_per_task=100_000,
                                   dtype=dtype, device=args.device, quantization=args.quantization,
                                   max_prompt_length=2048, max_completion_length=1024, truncation_side="error")
    setting.rng, setting.progress = np.random.default_rng(0), False
    setting.use_options("eval", PAEvaluation(capability="none"))
    setting.prepare()
    return setting


def pairs_of(setting, batch: str, count: int) -> list:
    """The batch's pairs: the first ``count`` training pairs (with two or more user turns for ``hh_helpful``)."""
    pairs = setting.prepared.train[0]
    if batch == "hh_helpful":
        pairs = [p for p in pairs if sum(m["role"] == "user" for m in p.prompt) >= 2]
    if len(pairs) < count:
        raise SystemExit(f"batch {batch} has only {len(pairs)} pairs")
    return pairs[:count]


# -- the configurations -----------------------------------------------------------------
def sequoia_step(setting, pairs, options: dict | None = None) -> dict:
    """sequoia's dpo_lora learner (with the learner ``options``) on ``pairs``: its step, forward, model and the
    tokens its forward computes on."""
    from sequoia.learners import DPOLoRA
    from sequoia.lm.packing import Group, pack

    torch.manual_seed(0)
    learner = DPOLoRA(batch_size=len(pairs), **(options or {}))
    learner.configure(setting.view())
    rows = learner.prepare_rows(learner.encode_pairs(pairs))  # once per task, outside the step
    learner.model.train()
    groups = [Group(p, [c, r]) for p, c, r in zip(rows["prompt_ids"], rows["chosen_ids"], rows["rejected_ids"])]
    scorer = learner.scorer  # its rows, laid out as its own forward lays them out
    tokens = pack(groups, scorer.budget, scorer.pad_id, scorer.stems).tokens if scorer.mode == "packed" else None
    if tokens is None:  # padded rows: one per reply
        tokens = 2 * len(pairs) * max(len(g.prompt) + max(map(len, g.replies)) for g in groups)
    return {"step": lambda: learner.optimize(rows), "forward": lambda: learner.loss(rows),
            "model": learner.model, "tokens": tokens, "mode": learner.scorer.mode}


def trl_step(args, setting, pairs, precompute: bool) -> dict:
    """TRL's DPOTrainer on the same pairs and model: its step, forward, model and tokens."""
    import datasets
    import peft
    import trl

    from sequoia.lm.models import load_model, load_tokenizer
    from sequoia.lm.tokens import is_chat, render_prompt

    tokenizer = load_tokenizer(args.model)
    if is_chat(tokenizer):
        records = [{"prompt": list(p.prompt), "chosen": [{"role": "assistant", "content": p.chosen}],
                    "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]
    else:  # TRL's text format, with the prompt rendered as sequoia renders it
        records = [{"prompt": render_prompt(tokenizer, p.prompt), "chosen": " " + p.chosen,
                    "rejected": " " + p.rejected} for p in pairs]
    on_cpu = setting.device == "cpu" or not torch.cuda.is_available()
    config = trl.DPOConfig(output_dir=tempfile.mkdtemp(), beta=0.1, per_device_train_batch_size=len(pairs),
                           use_cpu=on_cpu, report_to=[], max_length=None, learning_rate=5e-4, seed=0,
                           precompute_ref_log_probs=precompute, bf16=setting.view().dtype == "bfloat16" and not on_cpu)
    model = load_model(args.model, setting.view().dtype, setting.device, setting.quantization)
    torch.manual_seed(0)
    trainer = trl.DPOTrainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(records),
                             processing_class=tokenizer,
                             peft_config=peft.LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train()
    batch = next(iter(trainer.get_train_dataloader()))

    def step():
        trainer.training_step(trainer.model, batch)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()

    inputs = trainer._prepare_inputs(batch)  # what training_step hands to compute_loss
    passes = 1 if precompute else 2  # the default runs the reference forward in every step
    return {"step": step, "forward": lambda: trainer.compute_loss(trainer.model, inputs), "model": trainer.model,
            "tokens": passes * batch["input_ids"].numel(), "mode": "padded"}


def build(args, name: str, batch: str, dtype: str, options: dict | None = None) -> dict:
    setting = setting_of(args, batch, dtype)
    pairs = pairs_of(setting, batch, args.pairs)
    if name == "sequoia":
        return sequoia_step(setting, pairs, options)
    return trl_step(args, setting, pairs, precompute=name == "trl_best")


# -- measurements ----------------------------------------------------------------------
def timed_steps(step, steps: int, sampled: int = 2) -> tuple[float, float]:
    """Median seconds of ``steps`` steps after one warm-up, then the largest peak memory (MB) of ``sampled``
    more steps.

    Time and memory come from different steps: the thread that samples memory every millisecond takes
    the interpreter's lock, and would slow Python-heavy steps more than others.
    """
    step()  # warm-up: allocator, lazy initialisation
    times = []
    for _ in range(steps):
        synchronize()
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    peaks = []
    for _ in range(sampled):
        with PeakMemory() as memory:
            step()
            synchronize()
        peaks.append(memory.extra_mb)
    return statistics.median(times), max(peaks)


def measure(args, name: str, batch: str) -> dict:
    """One configuration's step on one batch, in this process."""
    config = build(args, name, batch, args.dtype)
    seconds, peak = timed_steps(config["step"], args.steps)
    return {"seconds_per_step": seconds, "peak_mb": peak, "tokens_per_step": config["tokens"],
            "saved_for_backward_mb": saved_for_backward_mb(config["forward"], config["model"]),
            "layout": config["mode"]}


def measure_here(args) -> None:
    """The measurement ``--only NAME:BATCH`` names, printed as one JSON line."""
    name, batch = args.only.split(":")
    print(json.dumps(measure(args, name, batch)))


def measure_isolated(name: str, batch: str) -> dict:
    """One configuration on one batch in a fresh process: its memory is its own, and it is freed after."""
    argv = [sys.executable, __file__, *sys.argv[1:], "--only", f"{name}:{batch}"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} on {batch} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_batch(args, batch: str) -> dict:
    if args.same_process:
        result = {name: measure(args, name, batch) for name in CONFIGURATIONS}
    else:
        result = {name: measure_isolated(name, batch) for name in CONFIGURATIONS}
    ours, best = result["sequoia"], result["trl_best"]
    result["time_ratio_vs_trl_best"] = ours["seconds_per_step"] / best["seconds_per_step"]
    result["time_ratio_vs_trl_default"] = ours["seconds_per_step"] / result["trl_default"]["seconds_per_step"]
    result["memory_ratio_vs_trl_best"] = ours["peak_mb"] / max(best["peak_mb"], 1e-9)
    result["saved_ratio_vs_trl_best"] = ours["saved_for_backward_mb"] / max(best["saved_for_backward_mb"], 1e-9)
    return result


def taking_turns(args, batch: str, variants: dict[str, tuple[str, dict]]) -> tuple[dict, float]:
    """sequoia's step in two ``variants`` (name: dtype and learner options) on ``batch``, in this process.

    Returns, per variant, the median seconds of ``--steps`` steps (the two taking turns), the losses of
    the same steps from the same initial adapters and the tokens a step computes on; and the largest
    gap between the two variants' losses.
    """
    configs = {name: build(args, "sequoia", batch, dtype, options) for name, (dtype, options) in variants.items()}
    losses = {name: [float(config["step"]()) for _ in range(args.steps)] for name, config in configs.items()}
    seconds = {name: [] for name in configs}
    for _ in range(args.steps):
        for name, config in configs.items():
            start = time.perf_counter()
            config["step"]()
            synchronize()
            seconds[name].append(time.perf_counter() - start)
    first, second = losses.values()
    results = {name: {"seconds": statistics.median(seconds[name]), "losses": losses[name],
                      "tokens": configs[name]["tokens"]} for name in configs}
    return results, max(abs(a - b) for a, b in zip(first, second))


def compare_dtypes(args, batch: str) -> dict:
    """sequoia's step in bfloat16 against float32 on ``batch`` (see :func:`taking_turns`)."""
    results, gap = taking_turns(args, batch, {"float32": ("float32", {}), "bfloat16": ("bfloat16", {})})
    fp32, bf16 = results["float32"], results["bfloat16"]
    return {"float32_seconds": fp32["seconds"], "bfloat16_seconds": bf16["seconds"],
            "bf16_to_fp32_time": bf16["seconds"] / fp32["seconds"], "largest_loss_gap": gap,
            "float32_losses": fp32["losses"], "bfloat16_losses": bf16["losses"]}


def compare_stems(args, batch: str) -> dict:
    """sequoia's step with stems (the default) against every prompt whole, in ``--dtype`` (see
    :func:`taking_turns`), with the tokens each computes on."""
    results, gap = taking_turns(args, batch, {"stems": (args.dtype, {"stems": True}),
                                              "whole": (args.dtype, {"stems": False})})
    stems, whole = results["stems"], results["whole"]
    return {"stems_seconds": stems["seconds"], "whole_seconds": whole["seconds"],
            "stems_to_whole_time": stems["seconds"] / whole["seconds"], "stems_tokens": stems["tokens"],
            "whole_tokens": whole["tokens"], "largest_loss_gap": gap, "stems_losses": stems["losses"],
            "whole_losses": whole["losses"]}


# -- output -----------------------------------------------------------------------------
def print_batch(batch: str, result: dict) -> None:
    print(f"\n{batch}:")
    for name in CONFIGURATIONS:
        row = result[name]
        print(f"  {name:<12} {row['seconds_per_step']:7.3f} s/step, {row['tokens_per_step']:6d} tokens a step "
              f"({row['layout']}), peak {row['peak_mb']:.0f} MB, saved for backward "
              f"{row['saved_for_backward_mb']:.0f} MB")
    print(f"  sequoia / TRL best: time {result['time_ratio_vs_trl_best']:.3f} (target <= 0.4), peak memory "
          f"{result['memory_ratio_vs_trl_best']:.3f} (target <= 0.5), "
          f"saved for backward {result['saved_ratio_vs_trl_best']:.3f}; sequoia / TRL default: time "
          f"{result['time_ratio_vs_trl_default']:.3f}")


def machine() -> str:
    """The CPU's model name and whether it computes bfloat16 natively (timings differ ~7x by that), naming
    an instruction-set ceiling set in the environment, as ``--setting.dtype auto`` does."""
    import platform

    from sequoia.lm.models import cpu_isa_capped, native_bfloat16

    name = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        name = names[0] if names else name
    except OSError:
        pass
    capped = cpu_isa_capped()
    emulated = "CPU without native bfloat16" + (f" ({capped} caps it)" if capped else "")
    return f"{name}, {native_bfloat16(torch.device('cpu')) or emulated}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batches", default=",".join(BATCHES), help="comma-separated: " + ", ".join(BATCHES))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quantization", default="none", choices=["none", "4bit", "8bit"])
    parser.add_argument("--compare-dtypes", default=False, action=argparse.BooleanOptionalAction,
                        help="instead of the TRL comparison, time sequoia's step in bfloat16 against float32")
    parser.add_argument("--compare-stems", default=False, action=argparse.BooleanOptionalAction,
                        help="instead of the TRL comparison, time sequoia's step with stems against whole prompts")
    parser.add_argument("--same-process", default=False, action=argparse.BooleanOptionalAction,
                        help="every configuration in this process (tiny models, where memory is no concern)")
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # NAME:BATCH, in a process of its own
    args = parser.parse_args()
    unknown = set(args.batches.split(",")) - set(BATCHES)
    if unknown:
        parser.error(f"unknown batches {sorted(unknown)}; expected some of {', '.join(BATCHES)}")
    if args.compare_dtypes and args.compare_stems:
        parser.error("--compare-dtypes and --compare-stems: one comparison at a time")
    return args


def measure_and_print(args, batch: str) -> dict:
    """The comparison ``args`` ask for on ``batch``, printed."""
    if args.compare_dtypes:
        d = compare_dtypes(args, batch)
        print(f"{batch}: sequoia bf16 / fp32 step time {d['bf16_to_fp32_time']:.3f} ({d['bfloat16_seconds']:.3f} s "
              f"against {d['float32_seconds']:.3f} s); losses of the same {args.steps} steps differ by at most "
              f"{d['largest_loss_gap']:.4f}")
        return {"dtypes": d}
    if args.compare_stems:
        d = compare_stems(args, batch)
        print(f"{batch}: sequoia with stems / whole prompts, step time {d['stems_to_whole_time']:.3f} "
              f"({d['stems_seconds']:.3f} s, {d['stems_tokens']} tokens, against {d['whole_seconds']:.3f} s, "
              f"{d['whole_tokens']} tokens); losses of the same {args.steps} steps differ by at most "
              f"{d['largest_loss_gap']:.2e}")
        return {"stems": d}
    result = measure_batch(args, batch)
    print_batch(batch, result)
    return result


def main() -> None:
    args = parse_args()
    if args.only:
        measure_here(args)
        return
    report = {"model": args.model, "dtype": args.dtype, "quantization": args.quantization, "pairs": args.pairs,
              "steps": args.steps, "threads": torch.get_num_threads(), "machine": machine(),
              "device": "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu", "batches": {}}
    print(f"model {args.model} ({args.dtype}, quantization {args.quantization}), {args.pairs} pairs a step, "
          f"{args.steps} timed steps each, {report['threads']} threads, on {report['device']} ({report['machine']})")
    for batch in args.batches.split(","):
        report["batches"][batch] = measure_and_print(args, batch)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
