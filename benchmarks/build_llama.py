"""A Llama built from its config with seeded random weights, saved with a tokenizer: a model without a download.

``1b`` has TinyLlama-1.1B's shape (22 layers, 2048 wide, 32 query and 4 key-value
heads, 5632 MLP); ``tiny`` (2 layers, 64 wide) is for tests. The vocabulary is the
tokenizer's: SmolLM2's (49,152 tokens, with its chat template) where the default model
is installed or its tokenizer directory is given, else sequoia's byte tokenizer.
Random weights give the speed and memory of a real model of that shape, not its outputs.

    python benchmarks/build_llama.py --out DIR [--size 1b|tiny] [--tokenizer DIR] [--dtype bfloat16]
    python benchmarks/build_llama.py --tokenizer-only --out DIR   # the tokenizer alone, to carry elsewhere
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import sequoia  # noqa: F401  (first: makes torchvision importable for transformers, see sequoia/torchvision_compat.py)

SHAPES = {
    "1b": {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
           "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2},
}


def tokenizer_from(source: str | None):
    """The tokenizer in ``source`` (a directory or model name), else the default model's, else the byte tokenizer."""
    from sequoia.errors import SequoiaError
    from sequoia.lm.models import DEFAULT_MODEL, byte_tokenizer, load_tokenizer

    if source:  # a directory holding a tokenizer alone (as --tokenizer-only saves it), or a model's
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        return tokenizer
    try:
        return load_tokenizer(DEFAULT_MODEL)
    except SequoiaError:
        return byte_tokenizer()


def llama_config(size: str, tokenizer):
    """The config of a Llama of ``size`` whose vocabulary and special tokens are ``tokenizer``'s.

    Example:
        >>> from sequoia.lm.models import byte_tokenizer
        >>> config = llama_config("tiny", byte_tokenizer())
        >>> config.vocab_size, config.num_hidden_layers
        (259, 2)
    """
    from transformers import LlamaConfig

    if size not in SHAPES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SHAPES)}")
    return LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=4096, tie_word_embeddings=False,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, **SHAPES[size])


def build(out: Path, size: str = "1b", tokenizer_source: str | None = None, dtype: str = "bfloat16",
          seed: int = 0) -> dict:
    """Build, seed and save the model and its tokenizer in ``out``; returns what was built."""
    from transformers import LlamaForCausalLM

    tokenizer = tokenizer_from(tokenizer_source)
    config = llama_config(size, tokenizer)
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):  # initialising 1.1B weights on the GPU takes seconds, on a CPU a minute
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    built = {"size": size, "parameters": sum(p.numel() for p in model.parameters()), "vocab_size": config.vocab_size,
             "dtype": dtype, "chat_template": bool(getattr(tokenizer, "chat_template", None)), "directory": str(out)}
    (out / "built.json").write_text(json.dumps(built, indent=2))
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--size", default="1b", choices=sorted(SHAPES))
    parser.add_argument("--tokenizer", help="a tokenizer directory or model name (default: the default model's)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--tokenizer-only", action="store_true", help="save the tokenizer alone")
    args = parser.parse_args()
    if args.tokenizer_only:
        tokenizer_from(args.tokenizer).save_pretrained(args.out)
        print(f"tokenizer saved in {args.out}")
        return
    print(json.dumps(build(args.out, args.size, args.tokenizer, args.dtype)))


if __name__ == "__main__":
    main()
