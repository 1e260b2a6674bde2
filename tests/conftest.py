"""Shared fixtures: no network, synthetic preference tasks, and quick versions of every setting."""

import dataclasses
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

# Tests never touch the network. Set before any test module imports the HF
# libraries, which read these once at import: the hub then fails at once
# instead of retrying for about 24 seconds.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
# The tests' models are tiny: on 2 cores one torch thread per process runs them faster
# than threads contending (the RL contract runs take about 20% less time), and the two
# pytest workers and the `sequoia` subprocesses they start (which inherit this) then
# each keep to one core.
USER_THREADS = os.environ.get("OMP_NUM_THREADS")
"""``OMP_NUM_THREADS`` as it was before the tests set it (``None``: not set)."""
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from sequoia.methods.learner_method import LearnerMethod  # noqa: E402
from sequoia.registry import get_learner  # noqa: E402
from sequoia.settings.base import Setting  # noqa: E402


torch.set_num_threads(1)


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, by relative path: equal snapshots mean nothing was written."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sequoia_environment(fault: str | None = None) -> dict[str, str]:
    """The environment of a ``sequoia`` subprocess: offline, with the fault hook set only if asked."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("SEQUOIA_FAULT", None)
    if fault:
        env["SEQUOIA_FAULT"] = fault
    return env


def user_environment() -> dict[str, str]:
    """The environment of a ``sequoia`` subprocess that must run as a user's would (a timed acceptance run):
    offline, with the user's own ``OMP_NUM_THREADS`` (or none, so that the run picks its threads itself)
    instead of the one thread per process that the tests set."""
    env = sequoia_environment()
    env.pop("OMP_NUM_THREADS", None)
    if USER_THREADS is not None:
        env["OMP_NUM_THREADS"] = USER_THREADS
    return env


def run_sequoia(args: list[str], launcher: tuple[str, ...] = (sys.executable,),
                fault: str | None = None) -> subprocess.CompletedProcess:
    """``<launcher> -m sequoia ARGS --quiet`` in a subprocess, output captured."""
    return subprocess.run([*launcher, "-m", "sequoia", *args, "--quiet"], capture_output=True, text=True,
                          env=sequoia_environment(fault), timeout=300)


def synthetic_preference_task(directory: Path, chosen: str, rejected: str, n_train: int = 32, n_test: int = 16,
                              seed: int = 0) -> Path:
    """An easy preference task: many different prompts, always the same preferred reply.

    Written as ``train.jsonl`` and ``test.jsonl`` in TRL's explicit format, so loading it
    goes through the same code as a user's files.
    """
    rng = random.Random(seed)
    words = ["river", "stone", "cloud", "apple", "train", "music", "paper", "light", "sugar", "tiger"]
    directory.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n_train), ("test", n_test)):
        rows = [{"prompt": f"{rng.choice(words)} {rng.choice(words)} {rng.randint(0, 999)}?", "chosen": chosen,
                 "rejected": rejected} for _ in range(count)]
        (directory / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return directory


_SYNTHETIC = Path(tempfile.mkdtemp(prefix="sequoia-tests-"))
YES_TASK = synthetic_preference_task(_SYNTHETIC / "yes", "yes", "no")
NO_TASK = synthetic_preference_task(_SYNTHETIC / "no", "no", "yes", n_train=96, seed=1)
COLOUR_TASK = synthetic_preference_task(_SYNTHETIC / "colour", "blue", "red", seed=2)

# Options that make each domain's settings and learners small enough for the contract suite.
QUICK_SETTING_OPTIONS: dict[str, dict] = {
    "sl": {},  # digits is small enough to use whole
    "pa": {"model": "tiny-random", "tasks": f"{YES_TASK},{COLOUR_TASK}", "train_pairs_per_task": 32,
           "test_pairs_per_task": 16, "max_prompt_length": 32, "max_completion_length": 8,
           "generations_per_task": 1, "max_new_tokens": 4},
    # Sampled physics: 4000 steps relearn a task, but not yet a task whose actions the last one
    # reversed (the default sequence); forgetting under reversal has its own tests.
    "rl": {"nb_tasks": 2, "steps_per_task": 4000, "test_episodes": 3, "chunks_per_task": 2, "schedule": "sampled"},
}
# How well the last-trained task must score after training, per domain, and on which
# matrix: SL accuracy, PA preference accuracy, RL normalised return (random policy 0,
# solved 1). The gain is over row 0, the untrained model; RL has none, since an
# untrained greedy Q-network can score anywhere, so it is compared with a random policy.
LEARNED: dict[str, tuple[str | None, float, float | None]] = {
    # domain: (matrix name in results.matrices, or None for the main one; minimum; minimum gain over row 0)
    "sl": (None, 0.7, 0.2),
    "pa": (None, 0.7, 0.2),
    "rl": ("normalized_return", 0.15, None),
}
QUICK_LEARNER_OPTIONS: dict[str, dict] = {
    "dpo_lora": {"lr": 1e-2, "epochs": 3},
    "lora_sft": {"lr": 1e-2, "epochs": 3},
    "dqn": {"learning_starts": 500, "epsilon_decay_steps": 2000},
}
QUICK_METHOD_OPTIONS: dict[str, dict] = {
    "ewc": {"fisher_samples": 16},
    "elastic_reset": {"reset_every": 5, "ema_decay": 0.5},  # the quick PA tasks train 12 steps each
    # The contract asks that the last task is learned (above 0.7). GDumb trains on its buffer alone:
    # with Avalanche's 200 samples (20 per digit) the last task ends near 0.6, and with 500 on
    # domain_incremental's five permutations too. MAS at Avalanche's lambda_reg 1.0 holds the fifth
    # digit task near 0.5 (stability over plasticity).
    "avalanche.gdumb": {"mem_size": 1000},
    "avalanche.mas": {"lambda_reg": 0.1},
}


def smoke_preset(domain: str, group: str) -> dict:
    """A domain's ``smoke`` preset for one option group: the quick options of a domain this file does not know
    (one from another package)."""
    from sequoia.registry import domains

    registered = domains().get(domain)
    return registered.preset("smoke").get(group, {}) if registered is not None else {}


def learned_criterion(setting: Setting) -> tuple[str | None, float | None, float | None]:
    """:data:`LEARNED` of the setting's domain; for a domain not listed there, the primary metric's last
    task must end better than before training, in the direction its spec gives."""
    return LEARNED.get(setting.domain, (None, None, 0.0))


def quick_setting(setting_cls: type[Setting], **overrides) -> Setting:
    """An instance of ``setting_cls`` with its domain's quick options (those it has)."""
    names = {f.name for f in dataclasses.fields(setting_cls)}
    quick = QUICK_SETTING_OPTIONS.get(setting_cls.domain) if setting_cls.domain in QUICK_SETTING_OPTIONS \
        else smoke_preset(setting_cls.domain, "setting")
    options = {k: v for k, v in quick.items() if k in names}
    return setting_cls(**{**options, **overrides})


def quick_method(method_cls, setting_cls: type[Setting], **overrides):
    """An instance of ``method_cls`` with quick options, and quick learner options where it wraps a learner."""
    method = method_cls(**{**QUICK_METHOD_OPTIONS.get(method_cls.name, {}), **overrides})
    if isinstance(method, LearnerMethod):
        learner_cls = method.learner_class(setting_cls)
        quick = QUICK_LEARNER_OPTIONS.get(learner_cls.name) if setting_cls.domain in QUICK_SETTING_OPTIONS \
            else smoke_preset(setting_cls.domain, "learner")
        method.use_learner(get_learner(learner_cls.name)(**(quick or {})))
    return method


def full_and_resumed_after_nan(build, tmp_path: Path, monkeypatch, fault: str):
    """``(full, resumed, full_dir, resumed_dir)``: a run uninterrupted, and the same run stopped by a NaN
    injected at ``fault`` (``nan@phase=P,step=S``) and resumed from its checkpoint.

    ``build()`` returns a fresh ``(setting, method)`` each time, so the three runs start alike.
    """
    import pytest

    from sequoia.errors import NonFiniteLossError
    from sequoia.runs import Run, describe

    setting, method = build()
    full = setting.apply(method, seed=0, progress=False, run=Run.new(tmp_path / "full", describe(setting, method, 0)))
    monkeypatch.setenv("SEQUOIA_FAULT", fault)
    setting, method = build()
    with pytest.raises(NonFiniteLossError):
        setting.apply(method, seed=0, progress=False, run=Run.new(tmp_path / "cut", describe(setting, method, 0)))
    monkeypatch.delenv("SEQUOIA_FAULT")
    [config] = (tmp_path / "cut").rglob("config.yaml")
    setting, method = build()
    resumed = setting.apply(method, seed=0, progress=False, run=Run.resume(config.parent))
    [full_config] = (tmp_path / "full").rglob("config.yaml")
    return full, resumed, full_config.parent, config.parent
