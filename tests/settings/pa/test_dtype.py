"""``--setting.dtype auto``: bfloat16 where the device computes it natively, float32 elsewhere; recorded and kept."""

import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.lm import models
from sequoia.methods.preference import DPOLoRAMethod
from sequoia.runs import describe
from sequoia.runs.run import CHECKPOINT_FORMAT, Run
from sequoia.settings.pa import IncrementalPASetting


@pytest.fixture(autouse=True)
def no_instruction_ceiling(monkeypatch):
    """The tests decide from the flags they set, whatever ceiling the environment running them has."""
    for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("flags", "expected"), [({"avx512_bf16", "avx2"}, "bfloat16"), ({"amx_bf16"}, "bfloat16"),
                                                 ({"avx2", "fma3"}, "float32"), (set(), "float32")])
def test_auto_is_bfloat16_only_where_the_cpu_computes_it(monkeypatch, flags, expected):
    monkeypatch.setattr(models, "cpu_flags", lambda: flags)
    dtype, why = models.resolve_dtype("auto", "cpu")
    assert dtype == expected
    assert why.startswith("auto: ")
    assert models.resolve_dtype("float32", "cpu") == ("float32", "as asked")


@pytest.mark.parametrize(("variable", "value", "dispatch", "expected"), [
    ("ONEDNN_MAX_CPU_ISA", "AVX2", "AVX512", "float32"),
    ("DNNL_MAX_CPU_ISA", "avx512_core", "AVX512", "float32"),
    ("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16", "AVX512", "bfloat16"),
    ("ONEDNN_MAX_CPU_ISA", "ALL", "AVX512", "bfloat16"),
    ("ATEN_CPU_CAPABILITY", "avx2", "AVX2", "float32"),
    ("ATEN_CPU_CAPABILITY", "avx512", "AVX512", "bfloat16")])
def test_auto_is_float32_where_the_environment_keeps_torch_below_avx512(monkeypatch, variable, value, dispatch,
                                                                        expected):
    # How an AVX2-only CPU is emulated on an AVX-512 one: bfloat16 is no longer native there.
    monkeypatch.setattr(models, "cpu_flags", lambda: {"avx512_bf16", "avx2"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: dispatch)
    monkeypatch.setenv(variable, value)
    dtype, why = models.resolve_dtype("auto", "cpu")
    assert dtype == expected
    assert (variable in why) == (expected == "float32"), why


def test_the_cpu_flags_are_read_from_torch():
    flags = models.cpu_flags()
    assert isinstance(flags, set) and all(isinstance(flag, str) for flag in flags)
    if hasattr(torch.cpu, "get_capabilities"):
        assert ("avx512_bf16" in flags) == bool(torch.cpu.get_capabilities().get("avx512_bf16"))


def test_the_model_loads_in_the_resolved_dtype_and_config_yaml_records_it(monkeypatch):
    monkeypatch.setattr(models, "cpu_flags", lambda: set())
    setting = IncrementalPASetting(model="tiny-random", device="cpu")
    assert setting.dtype == "auto"
    assert setting.resolved() == {"dtype": "float32"}
    assert models.load_model("tiny-random", "auto", "cpu").dtype == torch.float32
    config = describe(setting, DPOLoRAMethod(), seed=0)
    assert config["setting"]["dtype"] == "auto"  # --config re-runs decide again on their machine
    assert config["resolved"] == {"setting": {"dtype": "float32"}}
    monkeypatch.setattr(models, "cpu_flags", lambda: {"avx512_bf16"})
    assert setting.resolved() == {"dtype": "bfloat16"}


def test_a_resume_on_a_machine_that_resolves_otherwise_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "cpu_flags", lambda: set())
    setting, method = IncrementalPASetting(model="tiny-random", device="cpu"), DPOLoRAMethod()
    saved = {"format": CHECKPOINT_FORMAT, "setting_name": setting.qualified_name(), "method_name": method.name,
             "config": {"resolved": {"setting": {"dtype": "bfloat16"}}}}
    run = Run(directory=tmp_path, resuming=True)
    with pytest.raises(SequoiaError, match="ran with setting.dtype bfloat16 .* this machine resolves it to float32"):
        run._check_matches(saved, setting, method)
    saved["config"]["resolved"]["setting"]["dtype"] = "float32"
    run._check_matches(saved, setting, method)  # the same machine kind: resumes
