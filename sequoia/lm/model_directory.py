"""Checking a local model directory before ``from_pretrained`` reads it.

``from_pretrained`` reports what is wrong with a directory in whatever way the
failing step raises: a ``ValueError`` about a backend tokenizer for an empty
directory, a ``SafetensorError`` for damaged weights, a ``TypeError`` much later
for a tokenizer without a padding token. :func:`check` looks for each part a
causal language model needs and names the first one missing, so a researcher who
points ``--setting.model`` at the wrong directory learns which file is at fault.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> directory = Path(tempfile.mkdtemp())
    >>> check(directory, "model")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: model directory ... has no config.json; expected ... as save_pretrained writes it
"""

from __future__ import annotations

from pathlib import Path

from sequoia.errors import SequoiaError
from sequoia.text_files import read_json

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "vocab.txt")


def check(path: Path, part: str) -> None:
    """Refuse a directory that lacks what loading its ``part`` needs.

    ``part``: ``model`` (a causal LM), ``classifier`` (a sequence classifier: a reward
    model) or ``tokenizer``.
    """
    where = f"model directory {path}"
    if not path.is_dir():
        raise SequoiaError(f"{where} is a file; expected a directory (config.json, weights and tokenizer files)")
    if not (path / "config.json").exists():
        raise SequoiaError(f"{where} has no config.json; expected a Hugging Face model directory "
                           "(config.json, weights and tokenizer files) as save_pretrained writes it")
    model_type = _model_type(path, where)
    if part == "tokenizer":
        if not any((path / name).exists() for name in TOKENIZER_FILES):
            raise SequoiaError(f"{where} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}); "
                               "save the tokenizer there too (tokenizer.save_pretrained)")
        return
    from transformers.models.auto import modeling_auto

    kinds = {"model": ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "a causal language model", "AutoModelForCausalLM"),
             "classifier": ("MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES", "a sequence classifier",
                            "AutoModelForSequenceClassification")}
    mapping, kind, auto_class = kinds[part]
    if model_type not in getattr(modeling_auto, mapping):
        raise SequoiaError(f"{where}: model type {model_type!r} is not {kind} (transformers has no {auto_class} "
                           "for it)")
    if not any((path / name).exists() for name in WEIGHT_FILES):
        raise SequoiaError(f"{where} has no weights ({' or '.join(WEIGHT_FILES[::2])}, or their sharded index)")


def _model_type(path: Path, where: str) -> str:
    """The ``model_type`` of ``config.json``, known to this transformers."""
    import transformers
    from transformers import CONFIG_MAPPING

    config = read_json(path / "config.json", f"{where}: its file")
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str) or not model_type:
        raise SequoiaError(f"{where}: config.json names no model_type (expected a JSON object with, e.g., "
                           "\"model_type\": \"llama\")")
    if model_type not in CONFIG_MAPPING:
        raise SequoiaError(f"{where}: config.json names model type {model_type!r}, which transformers "
                           f"{transformers.__version__} does not know (a typo, or a model that needs a newer "
                           "transformers)")
    return model_type


def check_vocabulary(tokenizer, model, spec: str) -> None:
    """Refuse a tokenizer whose token ids go past the model's embedding table.

    Example:
        >>> import torch
        >>> from types import SimpleNamespace
        >>> from sequoia.lm.models import byte_tokenizer
        >>> model = SimpleNamespace(get_input_embeddings=lambda: torch.nn.Embedding(100, 4))
        >>> check_vocabulary(byte_tokenizer(), model, "m")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: the tokenizer of m has 259 tokens, but the model's embedding table has 100 rows; ...
    """
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise SequoiaError(f"the tokenizer of {spec} has {len(tokenizer)} tokens, but the model's embedding table "
                           f"has {rows} rows; they do not belong together")
