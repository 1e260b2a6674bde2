#!/usr/bin/env bash
# The tuning of Thakkar et al.'s finding 1 re-run (docs/studies/thakkar2024.md, "Finding 1 with tuned
# learning rates"): SFT and DPO, each trained on HH-RLHF harmless or helpful data, each with its own
# learning rate chosen by the validation protocol (mammoth's held-out training pairs: a trial trains on
# 192 of the 256 shipped training pairs and scores the other 64, never a test pair), the same budget
# for every arm:
# 8 Optuna trials of one seed, objective average_final (the trained preference's accuracy).
# The trials come in two rounds, as they were run: 4 (sampler seed 0), then `--resume --trials 8`,
# whose sampler takes a seed of its own, so that the second round does not draw the first's values.
# The other options are those of studies/thakkar2024.yaml with twice the training pairs.
#
#   bash studies/thakkar_tuning.sh [OUTPUT_DIR] [ARM ...]     # default: tunings/thakkar, every arm
#
# Then the evaluation, scored on both preference test sets and the probes:
#   python scripts/sweep_from_tunings.py tunings/thakkar/{sft,dpo}-{harmless,helpful} --seeds 0-4 \
#       --set eval.test_tasks=harmlessness,helpfulness --set eval.capability=mmlu,truthfulqa_mc1,text_nll \
#       --output studies/thakkar_finding1.yaml
set -euo pipefail
out=${1:-tunings/thakkar}; shift || true
sequoia=${SEQUOIA:-sequoia}

fixed=(--setting.dtype auto --setting.train_pairs_per_task 256 --setting.test_pairs_per_task 64
       --setting.max_prompt_length 64 --setting.max_completion_length 48
       --setting.generations_per_task 0 --eval.capability none --learner.epochs 1
       --protocol validation --trials 4 --seeds 0 --sampler-seed 0 --quiet
       --space learner.lr=loguniform:1e-4:1e-2)

tune_arm() {  # ARM: METHOD-DATA
    local arm=$1 method data
    case ${arm%-*} in sft) method=lora_sft ;; dpo) method=dpo_lora ;;
        *) echo "thakkar_tuning.sh: unknown arm $arm (sft-* or dpo-*)" >&2; return 2 ;; esac
    case ${arm#*-} in harmless) data=harmlessness ;; helpful) data=helpfulness ;;
        *) echo "thakkar_tuning.sh: unknown arm $arm (*-harmless or *-helpful)" >&2; return 2 ;; esac
    [ -d "$out/$arm" ] || "$sequoia" tune --setting pa.incremental --method "$method" --setting.tasks "$data" \
                              "${fixed[@]}" --directory "$out/$arm"
    "$sequoia" tune --resume "$out/$arm" --trials 8 --quiet   # the second round (or the rest of a killed tuning)
}

arms=("$@"); [ ${#arms[@]} -gt 0 ] || arms=(sft-harmless dpo-harmless sft-helpful dpo-helpful)
failed=0
for arm in "${arms[@]}"; do   # an arm that fails does not stop the others
    tune_arm "$arm" || { echo "thakkar_tuning.sh: $arm failed" >&2; failed=1; }
done
exit $failed
