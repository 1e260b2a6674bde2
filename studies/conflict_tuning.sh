#!/usr/bin/env bash
# The tuning of the conflict study (docs/studies/value_alignment.md, "The re-run on a conflicting sequence"):
# every arm tuned by the first_tasks protocol (Chaudhry et al. 2019) with the same budget,
# 4 Optuna trials (TPE, sampler seed 0) of one seed each, objective average_final.
# The sequence is HH-RLHF harmlessness, then helpfulness (the tuning tasks, which the
# evaluation never sees), then corrigible_consent, then corrigible_refuse (the evaluation:
# `setting.task_slice: "2:"` in each best.yaml). The fixed options are those of
# studies/corrigibility_conflict.yaml.
#
#   bash studies/conflict_tuning.sh [OUTPUT_DIR] [ARM ...]     # default: tunings/conflict, every arm
set -euo pipefail
out=${1:-tunings/conflict}; shift || true
sequoia=${SEQUOIA:-sequoia}

fixed=(--setting.tasks harmlessness,helpfulness,corrigible_consent,corrigible_refuse
       --setting.train_pairs_per_task 128 --setting.test_pairs_per_task 64
       --setting.max_prompt_length 128 --setting.max_completion_length 16
       --setting.generations_per_task 0 --eval.capability none --learner.epochs 2
       --protocol first_tasks --tuning-tasks 2 --trials 4 --seeds 0 --sampler-seed 0 --quiet)
lr=(--space learner.lr=loguniform:1e-4:1e-2)

tune() {  # ARM SETTING METHOD [OPTIONS ...]
    local arm=$1 setting=$2 method=$3; shift 3
    if [ -d "$out/$arm" ]; then "$sequoia" tune --resume "$out/$arm" --quiet
    else "$sequoia" tune --setting "$setting" --method "$method" "${fixed[@]}" "${lr[@]}" "$@" --directory "$out/$arm"
    fi
}

tune_arm() {  # ARM: its space (the learning rate for every arm, and the method's own strength)
    case $1 in
        naive) tune naive pa.incremental naive ;;
        replay) tune replay pa.incremental replay --space method.replay_share=uniform:0.1:0.9 ;;
        ewc) tune ewc pa.incremental ewc --space method.ewc_lambda=loguniform:1:10000 ;;
        lwf) tune lwf pa.incremental lwf --space method.alpha=loguniform:0.1:10 ;;
        experts) tune experts pa.incremental experts --method.aggregate top1 ;;
        merge-ties) tune merge-ties pa.incremental merge --method.combination ties --space method.density=uniform:0.2:0.9 ;;
        elastic_reset) tune elastic_reset pa.incremental elastic_reset \
                           --space method.reset_every=logint:4:32 --space method.ema_decay=uniform:0.8:0.99 ;;
        multi_task) tune multi_task pa.multi_task naive ;;
        *) echo "conflict_tuning.sh: unknown arm $1" >&2; return 2 ;;
    esac
}

arms=("$@"); [ ${#arms[@]} -gt 0 ] || arms=(naive replay ewc lwf experts merge-ties elastic_reset multi_task)
failed=0
for arm in "${arms[@]}"; do   # an arm that fails does not stop the others
    tune_arm "$arm" || { echo "conflict_tuning.sh: $arm failed" >&2; failed=1; }
done
exit $failed
