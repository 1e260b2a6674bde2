"""One DPO training step of sequoia's dpo_lora learner against TRL's DPOTrainer, in one process.

Both train the same model with the same LoRA config (rank 8, alpha 16, peft's default
target modules) on the same 8 preference pairs with beta 0.1, each with its own
defaults otherwise: TRL runs a reference forward pass (adapters disabled) inside every
step, sequoia computes reference log-probs once per task and reads them from the
rows. A step is forward + backward + optimizer step. Prints the median step time and
the peak extra memory of a step (resident memory sampled every millisecond, above
the level just before the step), and the ratios ours / TRL (targets: time at most
0.8, memory at most 1.0).

    python benchmarks/dpo_step.py [--model smollm2-135m-instruct|tiny-random|PATH] [--steps 5]
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
            times.append(time.perf_counter() - start)
        peaks.append(memory.extra_mb)
    return statistics.median(times), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=8)
    args = parser.parse_args()

    import datasets
    import peft
    import trl

    from sequoia.learners import DPOLoRA
    from sequoia.lm.models import load_model, load_tokenizer
    from sequoia.lm.tokens import is_chat, render_prompt
    from sequoia.settings.pa import IncrementalPASetting

    setting = IncrementalPASetting(model=args.model, tasks="harmlessness", train_pairs_per_task=args.pairs)
    setting.rng, setting.progress = np.random.default_rng(0), False
    setting.prepare()
    pairs = setting._train[0][: args.pairs]

    torch.manual_seed(0)
    learner = DPOLoRA(batch_size=args.pairs)
    learner.configure(setting)
    rows = learner.prepare_rows(learner.encode_pairs(pairs))  # once per task, outside the step
    learner.model.train()
    tokens = sum(2 * len(p) + len(c) + len(r) for p, c, r in zip(rows["prompt_ids"], rows["chosen_ids"],
                                                             rows["rejected_ids"]))
    ours_time, ours_memory = measure(lambda: learner.optimize(rows), args.steps)

    tokenizer = load_tokenizer(args.model)
    if is_chat(tokenizer):
        records = [{"prompt": list(p.prompt), "chosen": [{"role": "assistant", "content": p.chosen}],
                    "rejected": [{"role": "assistant", "content": p.rejected}]} for p in pairs]
    else:  # TRL's text format, with the prompt rendered as sequoia renders it
        records = [{"prompt": render_prompt(tokenizer, p.prompt), "chosen": " " + p.chosen,
                    "rejected": " " + p.rejected} for p in pairs]
    config = trl.DPOConfig(output_dir=tempfile.mkdtemp(), beta=0.1, per_device_train_batch_size=args.pairs,
                           use_cpu=True, report_to=[], max_length=setting.max_prompt_length
                           + setting.max_completion_length, learning_rate=learner.lr, seed=0)
    trainer = trl.DPOTrainer(model=load_model(args.model), args=config, train_dataset=datasets.Dataset.from_list(records),
                             processing_class=tokenizer,
                             peft_config=peft.LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1  # normally set by Trainer.train()
    batch = next(iter(trainer.get_train_dataloader()))
    trl_tokens = int(batch["attention_mask"].sum())

    def trl_step():
        trainer.training_step(trainer.model, batch)
        trainer.optimizer.step()
        trainer.optimizer.zero_grad()

    trl_time, trl_memory = measure(trl_step, args.steps)

    print(f"model {args.model}, {args.pairs} pairs per step, {args.steps} timed steps, "
          f"{torch.get_num_threads()} threads")
    print(f"tokens per step : sequoia {tokens}, TRL {trl_tokens} (both sequences of each pair, prompt included)")
    print(f"step time       : sequoia {ours_time:.3f} s, TRL {trl_time:.3f} s, ratio {ours_time / trl_time:.3f} "
          "(target <= 0.8)")
    print(f"peak memory     : sequoia {ours_memory:.0f} MB, TRL {trl_memory:.0f} MB, ratio "
          f"{ours_memory / max(trl_memory, 1e-9):.3f} (target <= 1.0)")


if __name__ == "__main__":
    main()
