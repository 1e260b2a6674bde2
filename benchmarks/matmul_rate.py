"""How fast this machine multiplies matrices in float32 and in bfloat16, and what ``--setting.dtype auto`` picks.

Nearly all of a PA run's time goes into matrix products (84% of a float32 evaluation row of the
default run, by torch's profiler), so their rate in each dtype indicates which dtype pays
and how long a run takes. The product timed has the shape of SmolLM2-135M's MLP (hidden
576, intermediate 1536) over a packed row of ``--tokens`` tokens, on torch's threads.

    python benchmarks/matmul_rate.py [--tokens 1400] [--seconds 1.0] [--device auto|cpu|cuda] [--json PATH]

Instruction ceilings in the environment count, as they do for ``auto``: on an AMD CPU with
AVX512-BF16, ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` makes bfloat16 emulated,
and ``MKL_CBWR=COMPATIBLE`` holds MKL's float32 products to 128-bit vectors without FMA
(about a first-generation Zen core's rate per cycle); ``MKL_ENABLE_INSTRUCTIONS`` did not
change MKL's float32 rate on that CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

HIDDEN, INTERMEDIATE = 576, 1536
"""SmolLM2-135M's hidden and MLP sizes: the most frequent product of its forward pass."""


def gflops(tokens: int, dtype: torch.dtype, device: torch.device, seconds: float) -> dict:
    """GFLOP/s of ``[tokens, 576] @ [576, 1536]`` in ``dtype``: repeated for at least ``seconds`` (3 times at least)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(tokens, HIDDEN, generator=generator).to(device, dtype)
    b = torch.randn(HIDDEN, INTERMEDIATE, generator=generator).to(device, dtype)
    a @ b  # warm-up: the first call picks and prepares a kernel
    _synchronize(device)
    repeats, start = 0, time.perf_counter()
    while repeats < 3 or time.perf_counter() - start < seconds:
        a @ b
        _synchronize(device)
        repeats += 1
    per_product = (time.perf_counter() - start) / repeats
    return {"ms": per_product * 1e3, "gflops": 2 * tokens * HIDDEN * INTERMEDIATE / per_product / 1e9,
            "repeats": repeats}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(tokens: int, seconds: float, device_name: str) -> dict:
    """The rates in both dtypes, their ratio, and ``auto``'s choice with its reason."""
    from sequoia.lm.models import resolve_device, resolve_dtype

    device = resolve_device(device_name)
    rates = {name: gflops(tokens, getattr(torch, name), device, seconds) for name in ("float32", "bfloat16")}
    chosen, reason = resolve_dtype("auto", device_name)
    capability = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else torch.cuda.get_device_name()
    return {"device": str(device), "capability": capability, "threads": torch.get_num_threads(), "tokens": tokens,
            **rates, "bfloat16_time_ratio": rates["bfloat16"]["ms"] / rates["float32"]["ms"],
            "auto": chosen, "auto_reason": reason}


def positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value
    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=positive(int), default=1400, help="rows of the left matrix (a packed row)")
    parser.add_argument("--seconds", type=positive(float), default=1.0, help="time each dtype at least this long")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here")
    report = measure(args.tokens, args.seconds, args.device)
    print(f"[{args.tokens}, {HIDDEN}] @ [{HIDDEN}, {INTERMEDIATE}] on {report['device']} ({report['capability']}, "
          f"{report['threads']} threads)")
    for name in ("float32", "bfloat16"):
        print(f"  {name:<8} {report[name]['ms']:8.2f} ms  {report[name]['gflops']:7.1f} GFLOP/s")
    print(f"  bfloat16 / float32 time: {report['bfloat16_time_ratio']:.2f}")
    print(f"  --setting.dtype auto: {report['auto']} ({report['auto_reason']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
