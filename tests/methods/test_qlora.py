"""QLoRA through bitsandbytes, executed on the CPU (bitsandbytes runs 4-bit layers there from 0.50)."""
import bitsandbytes
import numpy as np
import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.learners import DPOLoRA
from sequoia.lm import models
from sequoia.methods import DPOLoRAMethod
from sequoia.settings.pa import IncrementalPASetting
from tests.conftest import YES_TASK, quick_setting

FAST = {"lr": 1e-2, "epochs": 3}


def setting(**overrides):
    return quick_setting(IncrementalPASetting, tasks=str(YES_TASK), device="cpu", **overrides)


def test_a_4bit_base_keeps_its_hidden_states_in_the_compute_dtype():
    # peft's prepare_model_for_kbit_training casts embeddings and norms to float32, and with them
    # every hidden state: twice the activations' memory of the unquantized bf16 model.
    s = setting(quantization="4bit", dtype="bfloat16")
    s.rng = np.random.default_rng(0)
    s.prepare()
    learner = DPOLoRA(**FAST)
    learner.configure(s)
    layers = learner.model.base_model.model.model.layers
    assert isinstance(layers[0].self_attn.q_proj.base_layer, bitsandbytes.nn.Linear4bit)
    assert learner.scorer.mode == "packed"  # the scorer's one-time checks run before the hook counts passes
    dtypes = []
    layers[-1].register_forward_hook(lambda module, args, out: dtypes.append(
        (out[0] if isinstance(out, tuple) else out).dtype))
    pairs = next(iter(s.phases())).chunks[0].pairs[:2]
    rows = learner.encode_pairs(pairs)
    logprobs = learner.chosen_outputs(rows).logprobs
    assert dtypes == [torch.bfloat16]
    assert logprobs.requires_grad
    assert {p.dtype for p in learner.trainable_parameters().values()} == {torch.float32}


def test_dpo_on_a_4bit_base_lifts_preference_accuracy_from_chance():
    results = setting(quantization="4bit", dtype="bfloat16").apply(
        DPOLoRAMethod().use_learner(DPOLoRA(**FAST)), progress=False)
    before, after = results.matrix.values[:, 0]
    assert before == 0.5
    assert after >= 0.9


def test_8bit_base_loads_on_the_cpu():
    model = models.load_model(models.TINY_MODEL, dtype="bfloat16", device="cpu", quantization="8bit")
    assert isinstance(model.model.layers[0].self_attn.q_proj, bitsandbytes.nn.Linear8bitLt)


def test_missing_or_old_bitsandbytes_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(bitsandbytes, "__version__", "0.45.5")
    with pytest.raises(SequoiaError, match=r"on the CPU needs bitsandbytes>=0.50 \(found 0.45.5"):
        models.load_model(models.TINY_MODEL, device="cpu", quantization="4bit")
    monkeypatch.setitem(__import__("sys").modules, "bitsandbytes", None)
    with pytest.raises(SequoiaError, match=r"needs bitsandbytes: pip install 'sequoia\[qlora\]'"):
        models.load_model(models.TINY_MODEL, device="cpu", quantization="4bit")


def test_bitsandbytes_optional_kernels_note_stays_out_of_a_run():
    import subprocess
    import sys

    shown = subprocess.run([sys.executable, "-c", "import sequoia, bitsandbytes"], capture_output=True, text=True)
    assert shown.returncode == 0 and "kernels-community" not in shown.stderr
