"""Avalanche's strategies as sequoia methods: options, the missing extra, checkpoints.

What each strategy learns on every SL setting it claims is in the contract suite
(tests/methods/test_contract.py); the cross-checks against sequoia's own methods are
measured in docs/methods/avalanche.md.
"""

import dataclasses
import inspect
import json
import signal
import sys

import pytest
import torch

from sequoia import cli, registry
from sequoia.methods.avalanche.adapter import AvalancheMethod
from sequoia.methods.avalanche.compat import import_avalanche
from tests.conftest import run_sequoia
from tests.runs.test_resume import comparable, only_run_dir

WRAPPED = sorted(name for name, method in registry.methods().items() if issubclass(method, AvalancheMethod))


def test_torchvision_and_transformers_import_though_torchvisions_operators_cannot_load():
    """Where torchvision's compiled operators load, nothing changes; where not (a wheel for another torch
    variant, as on this CPU-only test machine), importing sequoia first makes torchvision importable,
    and with it transformers' models (which import torchvision when it is installed)."""
    import subprocess

    code = "import sequoia, torchvision; from transformers import BloomPreTrainedModel; print(torchvision.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "torchvision", done.stderr


def test_at_least_twelve_strategies_are_wrapped_and_listed(capsys):
    assert len(WRAPPED) >= 12
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in WRAPPED)


CLAIMED = [(name, setting) for name in WRAPPED for setting in sorted(registry.settings())
           if registry.get_method(name).is_applicable(registry.settings()[setting])]


@pytest.mark.parametrize("name,setting", [
    pytest.param(n, s, marks=[] if s == "sl.incremental" else [pytest.mark.slow], id=f"{n}-{s}") for n, s in CLAIMED])
def test_every_strategy_runs_through_the_cli_on_every_setting_it_claims(name, setting, tmp_path):
    """What each learns is the contract suite's (tests/methods/test_contract.py); here, the command line end to end."""
    code = cli.main(["--setting", setting, "--method", name, "--setting.nb_tasks", "2", "--learner.epochs", "1",
                     "--output", str(tmp_path), "--quiet"])
    assert code == 0
    [results] = tmp_path.rglob("results.json")
    assert json.loads(results.read_text())["method"] == name


@pytest.mark.parametrize("name", WRAPPED)
def test_options_carry_avalanche_defaults(name):
    """Each option is named as in Avalanche, with its default where Avalanche has one, and says so where not."""
    method = registry.get_method(name)
    strategy = getattr(import_avalanche(name), method.strategy_class)
    parameters = inspect.signature(strategy.__init__).parameters
    from simple_parsing.docstring import get_attribute_docstring

    for field in dataclasses.fields(method):
        if field.name == "learner":
            continue
        assert field.name in parameters, f"{name}: {field.name} is not an argument of {strategy.__name__}"
        default = parameters[field.name].default
        help_text = get_attribute_docstring(method, field.name).help_string
        if default is inspect.Parameter.empty:
            assert "no default in Avalanche" in help_text, (name, field.name)
        else:
            assert field.default == default and "Avalanche's default" in help_text, (name, field.name)


def test_without_avalanche_the_method_names_the_extra(monkeypatch, capsys, tmp_path):
    for module in [m for m in sys.modules if m.split(".")[0] in {"avalanche", "torchvision"}]:
        monkeypatch.delitem(sys.modules, module)
    for package in ("avalanche", "torchvision"):  # None: what an environment without the package raises
        monkeypatch.setitem(sys.modules, package, None)
    code = cli.main(["--setting", "sl.incremental", "--method", "avalanche.gem", "--output", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["sequoia: error: --method avalanche.gem needs Avalanche, which is not installed: pip install "
                   "'sequoia[avalanche]' (docs/methods/avalanche.md says how to keep your torch)"]


def test_a_strategy_is_refused_where_it_does_not_apply(capsys, tmp_path):
    code = cli.main(["--setting", "sl.continual", "--method", "avalanche.ewc", "--output", str(tmp_path)])
    assert code == 2
    assert "method 'avalanche.ewc' targets IncrementalSLSetting and does not apply to 'sl.continual'" \
        in capsys.readouterr().err


def test_the_strategy_trains_the_learners_model_and_optimizer():
    from sequoia.learners import Classifier
    from sequoia.settings.sl import IncrementalSLSetting

    method = registry.get_method("avalanche.replay")().use_learner(Classifier(epochs=1, lr=0.01))
    IncrementalSLSetting(nb_tasks=2).apply(method, seed=0, progress=False)
    assert method.strategy.model is method.base_learner.model
    assert method.strategy.optimizer is method.base_learner.torch_optimizer
    assert method.strategy.train_mb_size == 32 and method.strategy.train_epochs == 1
    [replay] = [p for p in method.strategy.plugins if type(p).__name__ == "ReplayPlugin"]
    assert len(replay.storage_policy.buffer) == 200  # Avalanche's replay buffer, filled


# One strategy with a buffer, one with importance weights, one with an old model.
@pytest.mark.parametrize("name", ["avalanche.replay", "avalanche.ewc", "avalanche.lwf"])
def test_killed_run_resumes_to_the_uninterrupted_results(name, tmp_path):
    args = ["--setting", "sl.incremental", "--method", name, "--setting.nb_tasks", "3", "--learner.epochs", "2",
            "--quiet"]
    assert cli.main([*args, "--output", str(tmp_path / "full")]) == 0
    killed = run_sequoia([*args, "--output", str(tmp_path / "cut")], fault="kill@phase=2,step=10")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert cli.main(["--resume", str(only_run_dir(tmp_path / "cut")), "--quiet"]) == 0
    assert comparable(only_run_dir(tmp_path / "cut")) == comparable(only_run_dir(tmp_path / "full"))


RESUMABLE = [name for name in WRAPPED if registry.get_method(name).resumable]


def test_a_strategy_that_cannot_be_saved_says_so_at_start_and_resume_refuses(tmp_path):
    args = ["--setting", "sl.incremental", "--method", "avalanche.agem", "--setting.nb_tasks", "2",
            "--learner.epochs", "1", "--output", str(tmp_path)]
    killed = run_sequoia(args, fault="kill@phase=1,step=2")
    assert killed.returncode == -signal.SIGKILL
    assert "method 'avalanche.agem' has no state_dict(): this run writes no checkpoints and cannot be resumed" \
        in killed.stderr
    [config] = tmp_path.rglob("config.yaml")
    resumed = run_sequoia(["--resume", str(config.parent)])
    assert resumed.returncode == 2
    assert len(resumed.stderr.strip().splitlines()) == 1, resumed.stderr


@pytest.mark.parametrize("name", RESUMABLE)
def test_every_strategy_saves_and_restores_with_its_model_shared(name):
    """Every wrapped strategy's state pickles; restored, its model and optimizer are the learner's, as before."""
    from sequoia.learners import Classifier
    from sequoia.settings.sl import IncrementalSLSetting
    from sequoia.settings.sl.setting import SLView

    setting = IncrementalSLSetting(nb_tasks=2)
    method = registry.get_method(name)().use_learner(Classifier(epochs=1))
    setting.apply(method, seed=0, progress=False)
    fresh = registry.get_method(name)().use_learner(Classifier(epochs=1))
    fresh.configure(SLView.of(setting, input_shape=(8, 8), num_classes=10))
    fresh.load_state_dict(method.state_dict())
    model = fresh.base_learner.model
    assert fresh.strategy.model is model
    optimized = {id(p) for group in fresh.base_learner.torch_optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.parameters()}
    x = torch.rand(16, 8, 8)
    assert torch.equal(fresh.predict(x, None), method.predict(x, None))
    if name == "avalanche.lwf":  # the old model comes back as its own copy, not as the live model
        [old], [restored] = ([p.lwf.prev_model for p in m.strategy.plugins if hasattr(p, "lwf")]
                             for m in (method, fresh))
        assert restored is not model
        assert all(torch.equal(a, b) for a, b in zip(old.parameters(), restored.parameters()))


def test_the_installed_torchvision_is_the_one_built_for_the_installed_torch():
    """The avalanche extra must not have replaced torch: torchvision pins the exact torch it was built for."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    [pin] = [Requirement(r) for r in requires("torchvision") if Requirement(r).name == "torch"]
    assert pin.specifier.contains(torch.__version__.split("+")[0]), (str(pin), torch.__version__)
