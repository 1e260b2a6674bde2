#!/usr/bin/env bash
# The GPU checks of the PA branch in one command, for a machine with an NVIDIA GPU (under 8 minutes):
# a 1.1B Llama built from its config, sequoia's DPO step against TRL's in bf16 and in 4-bit QLoRA,
# and one short PA run of the CLI; one JSON summary, $OUT/device_check.json (default ./device_check_out).
#
# A GPU image with torch, transformers, peft and triton but no network lacks the rest: bring it as
# wheels in ./.whl (built where pip can reach PyPI, for the image's Python), and the default model's
# tokenizer in ./.device/tokenizer:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform any -d .whl \
#     trl bitsandbytes pydantic pydantic-core annotated-types typing-inspection simple-parsing \
#     docstring-parser gymnasium farama-notifications datasets dill multiprocess
#   python benchmarks/build_llama.py --tokenizer-only --out .device/tokenizer
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-device_check_out}"
WHEELS="${WHEELS:-.whl}"
SITE="${TMPDIR:-/tmp}/sequoia-site"   # the wheels installed for this check only
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
TOKENIZER=()
if [ -d .device/tokenizer ]; then TOKENIZER=(--tokenizer .device/tokenizer); fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/device_check.py --out "$OUT" "${TOKENIZER[@]}" "$@"
