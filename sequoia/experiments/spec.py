"""What a sweep runs: a base set of options, the axes to vary, and the seeds.

Every run of a sweep is an ordinary ``sequoia`` command: the base options, one value
of each axis, and a seed. A sweep comes from the command line, where a comma list
makes an axis (``--method naive,replay --learner.lr 1e-4,5e-4``), or from a sweep
file::

    base:                 # options every run takes (without the leading --)
      setting: class_incremental
      preset: smoke
    axes:                 # option -> the values to try; runs take every combination
      method: [naive, replay, ewc]
      learner.lr: [0.001, 0.01]
    seeds: 0-4            # a range, a list, or both: "0-2,7"

An option whose own value is a comma list (``setting.tasks``, ``learner.target_modules``,
``loggers``) is never split on the command line; vary it in a sweep file, one list per value.

In a sweep file, an axis whose values are mappings varies several options together
(the arms of a study); its name is only a label::

    axes:
      arm:
        - {method: lora_sft}
        - {method: dpo_lora, learner.sft_steps: 0}
        - {method: dpo_lora, learner.sft_steps: 16}

Example:
    >>> spec = SweepSpec.from_options({"setting": "class_incremental", "method": "naive,replay"}, "0-1")
    >>> [run.name for run in spec.runs()]
    ['000-method-naive-seed-0', '001-method-naive-seed-1', '002-method-replay-seed-0', '003-method-replay-seed-1']
    >>> spec.runs()[2].argv
    ['--setting', 'class_incremental', '--method', 'replay', '--seed', '0']
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sequoia.errors import SequoiaError

if TYPE_CHECKING:
    from sequoia.experiment import ExperimentConfig

RUN_KEYS = ("setting", "method", "preset", "config", "loggers")
"""Run options a sweep may set or vary (beyond the ``setting.``, ``method.`` and ``learner.`` options)."""
GROUP_OPTION = re.compile(r"^(setting|eval|method|learner)\.[A-Za-z_][A-Za-z0-9_]*$")
SWEEP_FILE_KEYS = {"base", "axes", "seeds"}
MAX_RUNS = 100_000
MAX_SEED = 2**32 - 1


@dataclass
class RunSpec:
    """One run of a sweep: its name (its directory under ``runs/``), seed, axis values and options.

    ``options`` is what the run's job carries (an :class:`~sequoia.experiment.ExperimentConfig`
    is built from it); ``argv`` is the same run as a ``sequoia`` command, to show.
    """

    name: str
    seed: int
    values: dict[str, Any]
    options: dict[str, Any]

    @property
    def argv(self) -> list[str]:
        """The ``sequoia`` arguments of the same run."""
        return arguments(self.options)

    def config(self) -> "ExperimentConfig":
        """The run as an experiment config (a ``config`` file named among the options is read)."""
        from sequoia.experiment import ExperimentConfig

        return ExperimentConfig.from_options(self.options)


@dataclass
class SweepSpec:
    """A grid of options times seeds.

    Attributes:
        base: options every run takes, by name (``setting``, ``learner.lr``...).
        axes: options to vary, each with its values, in order; runs take every combination.
        seeds: the seeds every combination runs with.
    """

    base: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])

    @classmethod
    def from_options(cls, options: dict[str, str], seeds: str | None, comma_options: set[str] = frozenset(),
                     complete: bool = True) -> "SweepSpec":
        """A sweep from command-line options: a value with commas is an axis, unless its option takes a list.

        ``complete=False``: the options only override a sweep file's, so they need not name a
        setting or a method (the merged sweep is checked whole).
        """
        base, axes = {}, {}
        for key, text in options.items():
            check_key(key, f"--{key}")
            values = [part.strip() for part in text.split(",")]
            if len(values) > 1 and key not in comma_options and key != "loggers":
                if any(not value for value in values):
                    raise SequoiaError(f"--{key} {text}: an empty value in the comma list")
                axes[key] = values
            else:
                base[key] = text
        spec = cls(base, axes, parse_seeds(seeds if seeds is not None else "0", "--seeds"))
        if complete:
            spec.check()
        else:
            spec.check_keys()
        return spec

    def check_keys(self) -> None:
        """Only the option names (options that override a sweep file's need not name a setting or method)."""
        for key in [*self.base, *self.axes]:
            check_key(str(key), f"--{key}")

    @classmethod
    def from_file(cls, loaded: Any, where: str) -> "SweepSpec":
        """A sweep from a sweep file's mapping (``base``, ``axes``, ``seeds``), checked key by key."""
        if not isinstance(loaded, dict):
            raise SequoiaError(f"{where} must hold a mapping with keys base, axes, seeds")
        unknown = set(map(str, loaded)) - SWEEP_FILE_KEYS
        if unknown:
            raise SequoiaError(f"{where}: unknown keys {', '.join(sorted(unknown))} (expected base, axes, seeds)")
        base, axes = _checked_parts(loaded, where)
        seeds = loaded.get("seeds", [0])
        seeds = ",".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds)
        spec = cls(dict(base), {str(key): list(values) for key, values in axes.items()}, parse_seeds(seeds, where))
        spec.check(where)
        return spec

    def varied_options(self) -> set[str]:
        """The options the axes set: each plain axis, and every option of a bundle axis's mappings."""
        varied = set()
        for key, values in self.axes.items():
            varied |= {str(k) for value in values for k in value} if _is_bundle(values) else {key}
        return varied

    def check(self, where: str = "the sweep") -> None:
        """Option names known, no option both fixed and varied, and a run count that fits."""
        _check_bundles(self.axes, where)
        varied = self.varied_options()
        for key in [*self.base, *varied]:
            check_key(str(key), f"{where}: option `{key}`")
        both = set(self.base) & varied
        if both:
            raise SequoiaError(f"{where}: `{sorted(both)[0]}` is both fixed (base) and varied (axes)")
        if "setting" not in self.base and "setting" not in varied and "config" not in self.base:
            raise SequoiaError(f"{where}: no setting (give --setting, or `setting` in base or axes)")
        if "method" not in self.base and "method" not in varied and "config" not in self.base:
            raise SequoiaError(f"{where}: no method (give --method, or `method` in base or axes)")
        if self.count() > MAX_RUNS:
            raise SequoiaError(f"{where}: {self.count()} runs; a sweep holds at most {MAX_RUNS}")

    def count(self) -> int:
        """How many runs the sweep holds."""
        total = len(self.seeds)
        for values in self.axes.values():
            total *= len(values)
        return total

    def runs(self) -> list[RunSpec]:
        """Every run, combinations in axis order, seeds innermost."""
        keys = list(self.axes)
        runs = []
        for combination in itertools.product(*(self.axes[key] for key in keys)):
            values = dict(zip(keys, combination))
            for seed in self.seeds:
                name = run_name(len(runs), values, seed)
                runs.append(RunSpec(name, seed, values, {**self.base, **expand(values), "seed": seed}))
        return runs

    def to_dict(self) -> dict[str, Any]:
        """The sweep as a sweep file holds it."""
        return {"base": dict(self.base), "axes": {key: list(values) for key, values in self.axes.items()},
                "seeds": list(self.seeds)}


def _check_bundles(axes: dict[str, list[Any]], where: str) -> None:
    """An axis is all mappings (options varied together) or all plain values."""
    for key, values in axes.items():
        if any(isinstance(value, dict) for value in values) and not _is_bundle(values):
            raise SequoiaError(f"{where}: axis `{key}` mixes mappings (options varied together) and plain values")


def _is_bundle(values: list[Any]) -> bool:
    """Whether an axis varies several options together: every value a mapping of options."""
    return all(isinstance(value, dict) and value for value in values)


def expand(values: dict[str, Any]) -> dict[str, Any]:
    """A run's axis values as options: a bundle axis contributes its mapping's options.

    Example:
        >>> expand({"arm": {"method": "dpo_lora", "learner.sft_steps": 8}, "learner.lr": 0.1})
        {'method': 'dpo_lora', 'learner.sft_steps': 8, 'learner.lr': 0.1}
    """
    options: dict[str, Any] = {}
    for key, value in values.items():
        options |= value if isinstance(value, dict) else {key: value}
    return options


def _checked_parts(loaded: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sweep file's ``base`` and ``axes``: mappings, each axis a non-empty list."""
    base, axes = loaded.get("base") or {}, loaded.get("axes") or {}
    for name, part in (("base", base), ("axes", axes)):
        if not isinstance(part, dict):
            raise SequoiaError(f"{where}: `{name}` must be a mapping of option names to values")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SequoiaError(f"{where}: axis `{key}` must be a non-empty list of values")
    return base, axes


def check_key(key: str, where: str) -> None:
    """A sweep option: a run option of :data:`RUN_KEYS` or ``setting.X`` / ``eval.X`` / ``method.X`` / ``learner.X``."""
    if key in ("seed", "seeds"):
        raise SequoiaError(f"{where}: seeds are the sweep's own axis (--seeds 0-4, or `seeds:` in a sweep file)")
    if key not in RUN_KEYS and not GROUP_OPTION.match(key):
        raise SequoiaError(f"{where}: not a run option; a sweep sets {', '.join(RUN_KEYS)} and the "
                           "setting., eval., method. and learner. options")


def parse_seeds(text: str, where: str) -> list[int]:
    """``0-4``, ``0,2,5`` or ``0-2,7`` as a sorted list of distinct seeds.

    Example:
        >>> parse_seeds("0-2,7", "--seeds")
        [0, 1, 2, 7]
    """
    seeds: set[int] = set()
    for part in str(text).replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise SequoiaError(f"invalid seeds {text!r} in {where}: expected seeds like 0-4, 0,2,5 or 0-2,7")
        low, high = int(match[1]), int(match[2] or match[1])
        if high < low or high > MAX_SEED or high - low >= MAX_RUNS:
            raise SequoiaError(f"invalid seeds {text!r} in {where}: a range runs from low to high, at most "
                               f"{MAX_RUNS} seeds, each from 0 to {MAX_SEED}")
        seeds.update(range(low, high + 1))
    return sorted(seeds)


def arguments(options: dict[str, Any]) -> list[str]:
    """Options as ``sequoia`` arguments: ``{"learner.lr": 0.1}`` -> ``["--learner.lr", "0.1"]``.

    Example:
        >>> arguments({"learner.target_modules": ["q_proj", "v_proj"], "learner.bf16": True})
        ['--learner.target_modules', 'q_proj,v_proj', '--learner.bf16', 'true']
    """
    argv = []
    for key, value in options.items():
        argv += [f"--{key}", argument_text(value)]
    return argv


def argument_text(value: Any) -> str:
    """One option value as command-line text (lists joined with commas, booleans in lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(argument_text(item) for item in value)
    return str(value)


def run_name(index: int, values: dict[str, Any], seed: int) -> str:
    """A run's directory name: its index, its axis values and its seed, in characters safe in paths."""
    shown = [f"{key.split('.')[-1]}-{argument_text(value)}" for key, value in expand(values).items()]
    parts = [f"{index:03d}", *shown, f"seed-{seed}"]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))[:120]
