"""What does aligning cost? Capability probes, held-out preference sets and scored generations.

Trains sequential DPO on one or more preference tasks and prints, next to the
preference matrix, what the model could do before training and after each task
(MMLU and TruthfulQA MC1 accuracy, the NLL of held-out human text), the alignment tax
with its 95% interval, and, when you give a reward model, the reward of its replies,
their win rate against the base model's and the KL to the base model on its own samples.

    python examples/alignment_tax.py                                   # tiny random model, seconds
    python examples/alignment_tax.py --model smollm2-135m-instruct --tasks moral_stories --items 64
    python examples/alignment_tax.py --reward-model OpenAssistant/reward-model-deberta-v3-large-v2

The same from the command line:

    sequoia --setting pa.class_incremental --method dpo_lora --setting.tasks moral_stories \\
        --eval.capability mmlu,text_nll --eval.test_tasks helpfulness --eval.reward_model PATH
"""

import argparse

from sequoia.learners import DPOLoRA
from sequoia.methods import DPOLoRAMethod
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.pa.evaluation import PAEvaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--tasks", default="moral_stories", help="comma-separated task specs to train on")
    parser.add_argument("--held-out", default="helpfulness", help="preference tasks only scored, never trained")
    parser.add_argument("--items", type=int, default=32, help="items per capability probe")
    parser.add_argument("--reward-model", default="", help="a sequence-classification reward model (name or path)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-2 for tiny-random)")
    args = parser.parse_args()

    tiny = args.model == "tiny-random"
    setting = IncrementalPASetting(model=args.model, tasks=args.tasks, train_pairs_per_task=32 if tiny else 64,
                                   test_pairs_per_task=32, max_prompt_length=64 if tiny else 128,
                                   max_completion_length=32 if tiny else 64, generations_per_task=0,
                                   max_new_tokens=16 if tiny else 48)
    setting.use_options("eval", PAEvaluation(capability_items=args.items, test_tasks=args.held_out,
                                             reward_model=args.reward_model, reward_prompts=4 if tiny else 16))
    learner = DPOLoRA(lr=args.lr or (1e-2 if tiny else 1e-3), epochs=2)
    results = setting.apply(DPOLoRAMethod().use_learner(learner))
    print(results.summary())
    print("\nalignment tax (positive: capability lost), with its 95% interval over the probe's items:")
    intervals = results.intervals()["metrics"]
    for probe, tax in results.alignment_tax().items():
        low, high = intervals[f"alignment_tax_{probe}"]
        print(f"  {probe}: {tax:+.4f}  [{low:+.4f}, {high:+.4f}]")


if __name__ == "__main__":
    main()
