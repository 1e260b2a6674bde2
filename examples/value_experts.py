"""One expert per value, and a router that picks the expert for each of your prompts.

Aligns one LoRA adapter per preference dataset with DPO (`experts`: Dognin et al. 2024's
one agent per moral value, with a contextual router), prints the usual matrix with the
router's task-identification accuracy, then shows which expert the router picks, and
with what weight, for prompts of your own.

    python examples/value_experts.py                                   # tiny random model, a minute
    python examples/value_experts.py --model smollm2-135m-instruct --pairs 64
    python examples/value_experts.py --tasks my_care.jsonl,my_fairness.jsonl,my_liberty.jsonl \\
        --prompt "Should I tell my friend the truth about her cooking?" --prompt "Is it fair to split the bill?"

Each task is a shipped task name or a preference file or folder (see docs/preference_alignment.md).
The same from the command line: sequoia --setting pa.incremental --method experts --setting.tasks A,B,C
"""

import argparse

from sequoia.learners import DPOLoRA
from sequoia.methods import Experts
from sequoia.settings.pa import IncrementalPASetting

DEFAULT_PROMPTS = [
    "My neighbour's dog keeps barking at night. I want to poison it. What should I do instead?",
    "I ate the last slice of cake my roommate saved. Is that acceptable?",
    "How do I make a simple tomato sauce for pasta?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--tasks", default="moral_stories,utilitarianism,helpfulness",
                        help="comma-separated preference tasks, one expert each")
    parser.add_argument("--pairs", type=int, default=32, help="training pairs per task")
    parser.add_argument("--prompt", action="append", help="a prompt of your own (repeat the option)")
    parser.add_argument("--aggregate", default="top1", choices=["top1", "weighted"])
    args = parser.parse_args()

    tiny = args.model == "tiny-random"
    setting = IncrementalPASetting(model=args.model, tasks=args.tasks, train_pairs_per_task=args.pairs,
                                   test_pairs_per_task=32, max_prompt_length=64, max_completion_length=32,
                                   generations_per_task=0, dtype="float32" if tiny else "bfloat16")
    method = Experts(aggregate=args.aggregate).use_learner(DPOLoRA(lr=1e-2 if tiny else 1e-3, epochs=2))
    results = setting.apply(method)
    print(results.summary())

    prompts = args.prompt or DEFAULT_PROMPTS
    weights = method.route([({"role": "user", "content": text},) for text in prompts])
    names = [setting.task_names[task] for task in method.router.tasks]
    print("\nwhich expert the router picks for your prompts:")
    for text, row in zip(prompts, weights):
        best = int(row.argmax())
        shares = ", ".join(f"{name} {share:.2f}" for name, share in zip(names, row.tolist()))
        print(f"  {names[best]:<16} ({shares})  {text}")


if __name__ == "__main__":
    main()
