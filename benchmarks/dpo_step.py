"""One DPO training step of sequoia's dpo_lora learner against TRL's DPOTrainer, in one process.

All train the same model with the same LoRA config (rank 8, alpha 16, peft's default
target modules) on the same preference pairs (8 per step) with beta 0.1. Three
configurations run on the same batch:

* sequoia: reference log-probs computed once per task and read from the rows;
* TRL as configured by default: a reference forward pass (adapters disabled) in every step;
* TRL at its best for this case: ``precompute_ref_log_probs=True``, the reference
  log-probs computed once before training and read from the batch, as sequoia does.
  (``padding_free`` needs FlashAttention and is off in TRL's current DPO trainer; no other
  option of ``DPOConfig`` changes the cost of a LoRA step.)

A step is forward + backward + optimizer step. The script prints tokens per second, the
median step time, the peak extra memory of a step (resident memory sampled every
millisecond above the level before it; on a GPU, torch's peak allocated memory), the
activations saved for the backward pass (on any device; resident memory on the CPU
misses what the allocator kept from the warm-up step), and the ratios sequoia / TRL for
both TRL configurations (targets: time at most 0.8 of TRL's default and at most 1.0 of
its best; memory at most 1.0).

Then sequoia in bfloat16 against float32 (``--compare-dtypes``, on by default): step time,
and how far the bf16 losses stray from the fp32 ones over the same steps from the same
initial adapters.

    python benchmarks/dpo_step.py [--model smollm2-135m-instruct|tiny-random|PATH] [--steps 5]
        [--dtype float32|bfloat16] [--device auto|cpu|cuda] [--quantization none|4bit]
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch


class PeakMemory:
    """Peak resident memory (MB) above the level at entry, sampled from /proc on a thread."""

    def __enter__(self):
        if torch.cuda.is_available():  # on a GPU the step's memory is the device's
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.gpu_start = torch.cuda.memory_allocated()
        self.start = self._rss()
        self.peak = self.start
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
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * 4096


def measure(step, steps: int) -> tuple[float, float]:
    step()  # warm-up: allocator, lazy initialisation
    times, peaks = [], []
    for _ in range(steps):
        with PeakMemory() as memory:
            start = time.perf_counter()
            step()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peaks.append(memory.extra_mb)
    return statistics.median(times), max(peaks)


def saved_for_backward_mb(forward, model) -> float:
    """MB of the activations autograd keeps from ``forward()`` for the backward pass.

    Each storage counts once, and the model's own weights not at all. Unlike resident memory
    on the CPU, which keeps what the allocator freed in an earlier step, this is exactly what
    a step holds between its forward and backward passes, on any device. (With gradient
    checkpointing the backward pass recomputes a layer's activations, so there it is a floor.)
    """
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


def tokens_per_step(rows) -> int:
    """Tokens of both sequences of each pair, prompt included."""
    return sum(2 * len(p) + len(c) + len(r) for p, c, r in zip(rows["prompt_ids"], rows["chosen_ids"],
                                                              rows["rejected_ids"]))


def sequoia_learner(setting, pairs):
    """A fresh dpo_lora learner (seeded adapters) and the rows of ``pairs`` with their reference log-probs."""
    from sequoia.learners import DPOLoRA

    torch.manual_seed(0)
    learner = DPOLoRA(batch_size=len(pairs))
    learner.configure(setting.view())
    rows = learner.prepare_rows(learner.encode_pairs(pairs))  # once per task, outside the step
    learner.model.train()
    return learner, rows


def time_sequoia(setting, pairs, steps: int) -> dict:
    learner, rows = sequoia_learner(setting, pairs)
    seconds, memory = measure(lambda: learner.optimize(rows), steps)
    saved = saved_for_backward_mb(lambda: learner.loss(rows), learner.model)
    return {"seconds": seconds, "memory": memory, "saved": saved, "tokens": tokens_per_step(rows)}


def trl_trainer(args, setting, pairs, precompute: bool):
    """TRL's DPOTrainer on the same pairs and model, and one collated batch of them."""
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
                           use_cpu=on_cpu, report_to=[], max_length=setting.max_prompt_length
                           + setting.max_completion_length, learning_rate=5e-4, seed=0,
                           precompute_ref_log_probs=precompute, bf16=args.dtype == "bfloat16" and not on_cpu)
    model = load_model(args.model, args.dtype, setting.device, setting.quantization)
    torch.manual_seed(0)
    trainer = trl.DPOTrainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(records),
                             processing_class=tokenizer,
                             peft_config=peft.LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train()
    return trainer, next(iter(trainer.get_train_dataloader()))


def time_trl(args, setting, pairs, precompute: bool) -> dict:
    trainer, batch = trl_trainer(args, setting, pairs, precompute)

    def step():
        trainer.training_step(trainer.model, batch)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()

    seconds, memory = measure(step, args.steps)
    inputs = trainer._prepare_inputs(batch)  # what training_step hands to compute_loss
    saved = saved_for_backward_mb(lambda: trainer.compute_loss(trainer.model, inputs), trainer.model)
    return {"seconds": seconds, "memory": memory, "saved": saved, "tokens": int(batch["attention_mask"].sum())}


def compare_dtypes(args) -> dict:
    """sequoia's step in bfloat16 against float32: time, and the losses of the same steps."""
    results = {}
    for dtype in ("float32", "bfloat16"):
        setting, pairs = pairs_of(args, dtype)
        learner, rows = sequoia_learner(setting, pairs)
        results[f"{dtype}_losses"] = [float(learner.optimize(rows)) for _ in range(args.steps)]
        results[f"{dtype}_seconds"], _ = measure(lambda: learner.optimize(rows), args.steps)
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="moral_stories", help="whose first pairs make the batch")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--quantization", default="none", choices=["none", "4bit", "8bit"])
    parser.add_argument("--compare-dtypes", default=True, action=argparse.BooleanOptionalAction)
    parser.add_argument("--only", choices=["sequoia", "trl", "trl_precompute", "dtypes"],
                        help=argparse.SUPPRESS)  # one measurement, in a process of its own
    return parser.parse_args()


def pairs_of(args: argparse.Namespace, dtype: str):
    """The setting and the batch's pairs; the limits are wide enough that neither library truncates."""
    from sequoia.settings.pa import IncrementalPASetting
    from sequoia.settings.pa.evaluation import PAEvaluation

    setting = IncrementalPASetting(model=args.model, tasks=args.task, train_pairs_per_task=args.pairs,
                                   dtype=dtype, device=args.device, quantization=args.quantization,
                                   max_prompt_length=512, max_completion_length=256, truncation_side="error")
    setting.rng, setting.progress = np.random.default_rng(0), False
    setting.use_options("eval", PAEvaluation(capability="none"))
    setting.prepare()
    return setting, setting._train[0][: args.pairs]


def measure_one(args: argparse.Namespace) -> dict:
    """The measurement ``--only`` names, as a dict (printed as one JSON line)."""
    if args.only == "dtypes":
        return compare_dtypes(args)
    setting, pairs = pairs_of(args, args.dtype)
    if args.only == "sequoia":
        result = time_sequoia(setting, pairs, args.steps)
    else:
        result = time_trl(args, setting, pairs, precompute=args.only == "trl_precompute")
    return {**result, "threads": torch.get_num_threads()}


def run_isolated(only: str) -> dict:
    """One measurement in a fresh process: peak memory then starts from the same clean slate for each."""
    import json
    import subprocess
    import sys

    argv = [arg for arg in sys.argv[1:]]
    proc = subprocess.run([sys.executable, __file__, *argv, "--only", only], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{only} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace, results: dict) -> None:
    ours = results["sequoia"]
    print(f"model {args.model} ({args.dtype}, quantization {args.quantization}), {args.pairs} pairs of "
          f"{args.task} per step, {args.steps} timed steps, {ours['threads']} threads, each in its own process")
    names = {"sequoia": "sequoia", "trl": "TRL default", "trl_precompute": "TRL precomputed reference"}
    for key, name in names.items():
        row = results[key]
        print(f"{name:<26}: {row['seconds']:.3f} s/step, {row['tokens'] / row['seconds']:,.0f} tokens/s "
              f"({row['tokens']} tokens a step), peak {row['memory']:.0f} MB, "
              f"saved for backward {row['saved']:.0f} MB")
    for key, target in (("trl", 0.8), ("trl_precompute", 1.0)):
        row = results[key]
        print(f"ratio to {names[key]:<26}: time {ours['seconds'] / row['seconds']:.3f} (target <= {target}), "
              f"memory {ours['memory'] / max(row['memory'], 1e-9):.3f} (target <= 1.0), "
              f"saved for backward {ours['saved'] / max(row['saved'], 1e-9):.3f}")


def main() -> None:
    import json

    args = parse_args()
    if args.only:
        print(json.dumps(measure_one(args)))
        return
    report(args, {key: run_isolated(key) for key in ("sequoia", "trl", "trl_precompute")})
    if args.compare_dtypes:
        d = run_isolated("dtypes")
        gaps = [abs(a - b) for a, b in zip(d["float32_losses"], d["bfloat16_losses"])]
        print(f"bf16 vs fp32 (sequoia): step {d['bfloat16_seconds']:.3f} s vs {d['float32_seconds']:.3f} s, ratio "
              f"{d['bfloat16_seconds'] / d['float32_seconds']:.3f}; losses of the same {args.steps} steps from the "
              f"same adapters: fp32 {' '.join(f'{x:.4f}' for x in d['float32_losses'])}, bf16 "
              f"{' '.join(f'{x:.4f}' for x in d['bfloat16_losses'])}; largest gap {max(gaps):.4f}")


if __name__ == "__main__":
    main()
