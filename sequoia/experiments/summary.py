"""Runs grouped into configurations, statistics over seeds, and paired tests against a baseline.

A configuration is everything in a run's ``config.yaml`` but its seed (and loggers):
runs that differ only in their seed are repetitions of one configuration. Its
label names what sets it apart from the other configurations compared
(``method=replay``, ``method=ewc learner.lr=0.01``).

Per configuration and summary metric: the mean over seeds, the sample standard
deviation, and the 95% Student's t interval of the mean (:func:`sequoia.intervals.t_interval`).

The paired test: for a configuration and the baseline configuration it is compared
with (the same options outside the ``method`` group, with the baseline's method), the
runs with the same seed form pairs, and a two-sided paired t-test
(``scipy.stats.ttest_rel``) asks whether the mean difference is zero. A seed fixes the
data splits, orders and initial weights, so a pair differs only by the method; with
few seeds, a small p says the difference is consistent across them.

Example:
    >>> runs = [RunRecord(f"r{m}{s}", {"seed": s, "method": {"name": m}}, {"average_final": a})
    ...         for m, s, a in [("naive", 0, 0.2), ("naive", 1, 0.21), ("naive", 2, 0.19),
    ...                         ("replay", 0, 0.8), ("replay", 1, 0.82), ("replay", 2, 0.85)]]
    >>> groups = group_runs(runs)
    >>> [group.label for group in groups]
    ['method=naive', 'method=replay']
    >>> round(groups[1].statistics()["average_final"]["mean"], 3)
    0.823
    >>> test = paired_tests(groups, "naive")[0]
    >>> test["configuration"], test["n"], round(test["difference"], 3), test["p"] < 0.01
    ('method=replay', 3, 0.623, True)
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sequoia.errors import SequoiaError
from sequoia.experiment import RUN_KEYS
from sequoia.intervals import t_interval
from sequoia.text_files import read_utf8
from sequoia.yaml_file import read_yaml

SKIPPED_METRICS = ("metric", "trainable_parameters")
"""Entries of ``results.json``'s metrics that are not compared (a name; a count that does not vary by seed)."""
SKIPPED_KEYS = RUN_KEYS


@dataclass
class RunRecord:
    """One finished run: where it is, its config, its metrics; ``results`` holds all of ``results.json``."""

    directory: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def method(self) -> str:
        return str((self.config.get("method") or {}).get("name", "?"))


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"learner": {"lr": 0.1}}`` -> ``{"learner.lr": 0.1}`` (the seed and loggers left out)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if not prefix and key in SKIPPED_KEYS:
            continue
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _label_key(key: str) -> str:
    return key[: -len(".name")] if key.endswith(".name") else key


@dataclass
class Configuration:
    """The runs of one configuration (one per seed), and what sets it apart."""

    label: str
    options: dict[str, Any]
    runs: list[RunRecord]
    _statistics: dict[str, dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def method(self) -> str:
        return str(self.options.get("method.name", "?"))

    def metric_names(self) -> list[str]:
        names: list[str] = []
        for run in self.runs:
            names += [name for name, value in run.metrics.items()
                      if name not in SKIPPED_METRICS and name not in names and _is_number(value)]
        return names

    def higher_is_better(self, name: str) -> bool | None:
        """Whether a larger value of metric ``name`` is better, as the runs' ``results.json`` say
        (``None``: neither, or not said); see :func:`metric_direction`."""
        for run in self.runs:
            said = metric_direction(run.results, name)
            if said is not NOT_SAID:
                return said
        return None

    def summary_kind(self, name: str) -> str | None:
        """Which summary metric ``name`` is (``final``, ``forgetting``, ``lost``...), as the runs' ``results.json``
        say; for runs written before they said, an ``alignment_tax_*`` metric is a ``lost`` one."""
        for run in self.runs:
            described = run.results.get("summaries")
            if isinstance(described, dict) and isinstance(described.get(name), dict):
                return described[name].get("summary")
        return "lost" if name.startswith("alignment_tax_") else None

    def transfer_matrices(self) -> list[list[list[float]]]:
        """The primary transfer matrix of each run that has one, in seed order."""
        return [run.results["transfer_matrix"] for run in self.runs if run.results.get("transfer_matrix")]

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Per metric: n, mean, std, the 95% t interval, and the value of each seed (computed once)."""
        if self._statistics is None:
            self._statistics = self._compute_statistics()
        return self._statistics

    def _compute_statistics(self) -> dict[str, dict[str, Any]]:
        return {name: seed_statistics({run.seed: float(run.metrics[name]) for run in self.runs
                                       if _is_number(run.metrics.get(name))})
                for name in self.metric_names()}


def seed_statistics(values: dict[int, float]) -> dict[str, Any]:
    """n, mean, std, the 95% t interval (``low``, ``high``; ``None`` with one seed) and each seed's value.

    Example:
        >>> stat = seed_statistics({0: 0.5, 1: 0.7})
        >>> stat["mean"], stat["n"], seed_statistics({0: 0.5})["low"]
        (0.6, 2, None)
    """
    mean, sd, (low, high) = t_interval(list(values.values()))
    return {"n": len(values), "mean": mean, "std": _finite(sd), "low": _finite(low), "high": _finite(high),
            "seeds": values}


NOT_SAID = "not said"
"""What :func:`metric_direction` returns for a metric whose direction a ``results.json`` does not give."""

LEGACY_DIRECTIONS = {"average_final": True, "average_forgetting": False, "bwt": True, "fwt": True,
                     "online_performance": True, "drift": None, "sample_kl": None}
"""Directions of the metrics of runs written before ``results.json`` held its ``summaries``."""


def metric_direction(results: dict[str, Any], name: str) -> bool | None | str:
    """Whether higher is better for metric ``name`` of one ``results.json``: from its ``summaries``
    (:mod:`sequoia.metric_spec`), else, for a run written before they existed, from the metric's name:
    forgetting and alignment taxes are losses, a capability probe says its own direction.

    Example:
        >>> metric_direction({"summaries": {"error": {"higher_is_better": False}}}, "error")
        False
        >>> metric_direction({}, "alignment_tax_mmlu"), metric_direction({}, "lm_eval/arc")
        (False, 'not said')
    """
    described = results.get("summaries")
    if isinstance(described, dict):
        entry = described.get(name)
        return entry.get("higher_is_better") if isinstance(entry, dict) else NOT_SAID
    return legacy_direction(results, name)


def legacy_direction(results: dict[str, Any], name: str) -> bool | None | str:
    """The direction of metric ``name`` of a run written before ``results.json`` held its ``summaries``, read
    from the metric's name (the study runs kept under ``studies/results/`` are such runs)."""
    if name in LEGACY_DIRECTIONS:
        return LEGACY_DIRECTIONS[name]
    if name.startswith("alignment_tax_"):
        return False
    probe = (results.get("capability") or {}).get(name.removeprefix("capability_"))
    if name.startswith("capability_") and isinstance(probe, dict):
        return probe.get("higher_is_better")
    return True if name in (results.get("matrices") or {}) or name.startswith("preference_accuracy@") else NOT_SAID


def direction(configurations: list[Configuration], name: str) -> bool | None:
    """Whether higher is better for metric ``name``: the first configuration whose runs say (``None``: none does)."""
    return next((d for c in configurations if (d := c.higher_is_better(name)) is not None), None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def group_runs(runs: list[RunRecord]) -> list[Configuration]:
    """Runs grouped by configuration, labelled by the options that differ between configurations."""
    groups: dict[str, list[RunRecord]] = {}
    options: dict[str, dict[str, Any]] = {}
    for run in runs:
        flat = flatten(run.config)
        key = json.dumps(flat, sort_keys=True, default=str)
        groups.setdefault(key, []).append(run)
        options[key] = flat
    # The method first, then the setting, each group's name before its options.
    varying = sorted(_varying_keys(list(options.values())), key=lambda k: (
        not k.startswith("method."), not k.startswith("setting."), not k.endswith(".name"), k))
    configurations = []
    for key, members in groups.items():
        flat = options[key]
        # An option a configuration does not have (another method's) is left out of its label.
        label = (" ".join(f"{_label_key(k)}={flat[k]}" for k in varying if k in flat)
                 or f"method={flat.get('method.name')}")
        configurations.append(Configuration(label, flat, sorted(members, key=lambda run: run.seed)))
    _check_seeds_unique(configurations)
    return sorted(configurations, key=lambda c: c.label)


def _varying_keys(options: list[dict[str, Any]]) -> set[str]:
    """Keys whose value differs among the configurations that have them.

    A key only some configurations have (one method's own options) is implied by
    the name that chose the class, so it does not label them by its absence.
    """
    keys = {key for flat in options for key in flat}
    return {key for key in keys if len({json.dumps(flat[key], default=str) for flat in options if key in flat}) > 1}


def _check_seeds_unique(configurations: list[Configuration]) -> None:
    for configuration in configurations:
        seeds = [run.seed for run in configuration.runs]
        if len(seeds) != len(set(seeds)):
            twice = sorted({seed for seed in seeds if seeds.count(seed) > 1})[0]
            directories = [run.directory for run in configuration.runs if run.seed == twice]
            raise SequoiaError(f"configuration {configuration.label} has seed {twice} twice ({', '.join(directories)});"
                               " compare each copy apart, or remove one")


def find_baseline(configurations: list[Configuration], baseline: str | None) -> str | None:
    """The baseline's method name or label: as given (checked), else ``naive`` where present.

    A part of a label (some of its ``option=value`` words) stands for the one configuration
    whose label holds them all: tuned arms differ in more than their method (each its own
    learning rate), so a method name finds them no partner, and their full labels are long.

    Example:
        >>> runs = [RunRecord(f"r{m}{lr}", {"seed": 0, "method": {"name": m}, "learner": {"lr": lr}}, {})
        ...         for m, lr in [("naive", 0.003), ("ewc", 0.001)]]
        >>> find_baseline(group_runs(runs), "method=naive")
        'method=naive learner.lr=0.003'
    """
    methods = {c.method for c in configurations}
    labels = {c.label for c in configurations}
    if baseline is None:
        return "naive" if "naive" in methods and len(configurations) > 1 else None
    if baseline in methods or baseline in labels:
        return baseline
    return _label_holding(configurations, baseline)


def _label_holding(configurations: list[Configuration], words: str) -> str:
    """The label of the one configuration whose label holds every word of ``words`` (else one line)."""
    matching = [c.label for c in configurations if set(words.split()) <= set(c.label.split())]
    if len(matching) > 1:
        raise SequoiaError(f"--baseline {words}: {len(matching)} configurations match ({'; '.join(matching)}); "
                           "name one by more of its label")
    if not matching:
        methods = ", ".join(sorted({c.method for c in configurations}))
        raise SequoiaError(f"--baseline {words}: no configuration has that method or label (or part of one); "
                           f"the methods are {methods}")
    return matching[0]


def unpaired(configurations: list[Configuration], baseline: str | None) -> list[str]:
    """The labels of the configurations that ``baseline`` (a method name) finds no partner for.

    Example:
        >>> runs = [RunRecord(f"r{m}", {"seed": 0, "method": {"name": m}, "learner": {"lr": lr}}, {})
        ...         for m, lr in [("naive", 0.003), ("ewc", 0.001)]]
        >>> unpaired(group_runs(runs), "naive")
        ['method=ewc learner.lr=0.001']
    """
    if baseline is None:
        return []
    return [c.label for c in configurations if c.label != baseline and c.method != baseline
            and _partner(c, configurations, baseline) is None]


def _partner(candidate: Configuration, configurations: list[Configuration], baseline: str) -> Configuration | None:
    """The baseline configuration ``candidate`` is compared with: the label, or the same options outside ``method``."""
    named = [c for c in configurations if c.label == baseline]
    if named:
        return named[0] if named[0] is not candidate else None
    same_context = [c for c in configurations if c.method == baseline and c is not candidate
                    and _context(c) == _context(candidate)]
    return same_context[0] if same_context else None


def _context(configuration: Configuration) -> dict[str, Any]:
    """A configuration's options outside the ``method`` group."""
    return {k: v for k, v in configuration.options.items() if not k.startswith("method.")}


def paired_tests(configurations: list[Configuration], baseline: str | None) -> list[dict[str, Any]]:
    """A paired t-test (two-sided) of every configuration against its baseline, per metric, over shared seeds."""
    tests = []
    for candidate in configurations if baseline else []:
        partner = _partner(candidate, configurations, baseline)
        if partner is None:
            continue
        ours, theirs = candidate.statistics(), partner.statistics()
        for metric in [name for name in ours if name in theirs]:
            test = paired_t_test(ours[metric]["seeds"], theirs[metric]["seeds"])
            tests.append({"configuration": candidate.label, "baseline": partner.label, "metric": metric, **test,
                          "verdict": verdict(test, candidate.higher_is_better(metric))})
    _adjust_per_metric(tests)
    return tests


def _adjust_per_metric(tests: list[dict[str, Any]]) -> None:
    """Give each test ``p_holm``: its p adjusted by Holm's method among the tests of its metric."""
    for metric in {test["metric"] for test in tests}:
        family = [test for test in tests if test["metric"] == metric]
        for test, adjusted in zip(family, holm([test["p"] for test in family])):
            test["p_holm"] = adjusted


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (Holm 1979) of a family of p-values: the ``k``-th smallest of ``m`` is
    multiplied by ``m - k + 1``, kept at least its predecessor's and at most 1; a family-wise error rate of
    5% holds where the adjusted p is below 0.05. ``None`` (no test) stays ``None`` and is not counted.
    Equal to ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]``.

    ``sequoia compare`` adjusts per metric, over the configurations tested against the baseline: each metric
    is a question of its own ("does any method forget less than naive?"), asked of every arm.

    Example:
        >>> holm([0.01, 0.04, 0.03, None])
        [0.03, 0.06, 0.06, None]
    """
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


SIGNIFICANCE = 0.05
"""The p below which a paired difference is called better or worse rather than within noise."""


def verdict(test: dict[str, Any], higher_is_better: bool | None) -> str:
    """``better`` or ``worse`` than the baseline where p < 0.05 (in the metric's direction), else ``within
    noise``; ``n/a`` without a p (one seed) or without a direction.

    Example:
        >>> verdict({"difference": -0.2, "p": 0.01}, False), verdict({"difference": 0.2, "p": 0.3}, True)
        ('better', 'within noise')
    """
    if test["p"] is None or higher_is_better is None:
        return "n/a"
    if test["p"] >= SIGNIFICANCE:
        return "within noise"
    return "better" if (test["difference"] > 0) == higher_is_better else "worse"


def paired_t_test(ours: dict[int, float], theirs: dict[int, float]) -> dict[str, Any]:
    """``n``, the mean difference and the two-sided p of a paired t-test over the seeds both have.

    Example:
        >>> result = paired_t_test({0: 0.8, 1: 0.9, 2: 0.85}, {0: 0.2, 1: 0.25, 2: 0.3})
        >>> result["n"], round(result["difference"], 3), result["p"] < 0.01
        (3, 0.6, True)
    """
    from scipy import stats

    seeds = sorted(set(ours) & set(theirs))
    differences = [ours[s] - theirs[s] for s in seeds]
    p = None
    if len(seeds) >= 2:
        pvalue = stats.ttest_rel([ours[s] for s in seeds], [theirs[s] for s in seeds]).pvalue
        # Identical differences give no variance: p is 1 when they are all 0, else 0.
        p = float(pvalue) if math.isfinite(pvalue) else (1.0 if not any(differences) else 0.0)
    return {"n": len(seeds), "difference": sum(differences) / len(seeds) if seeds else None, "p": p,
            "effect_size": effect_size(differences), "seeds_for_power": seeds_for_power(differences)}


POWER = 0.8
"""The power the seed estimate of a paired test aims at (the usual 80%)."""
MAX_SEEDS = 10_000
"""Beyond this many seeds the estimate says only that it is more (``None``)."""


def effect_size(differences: list[float]) -> float | None:
    """Cohen's d of paired differences: their mean over their sample standard deviation (signed).

    ``None`` with fewer than 2 differences, or with no variance among them (equal up to rounding).

    Example:
        >>> effect_size([0.1, 0.3]), effect_size([0.2, 0.2]), effect_size([0.2])  # doctest: +ELLIPSIS
        (1.414..., None, None)
    """
    if len(differences) < 2:
        return None
    mean = sum(differences) / len(differences)
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
    if spread <= 1e-9 * abs(mean):  # equal differences, up to rounding (0 <= 0 when all are 0)
        return None
    return mean / spread


def seeds_for_power(differences: list[float], power: float = POWER, alpha: float = SIGNIFICANCE) -> int | None:
    """How many seeds a paired t-test would need to find an effect of the observed size, with ``power``.

    The effect size is Cohen's d of the paired differences (their mean over their sample
    standard deviation), taken as the true one: the answer is what the observed effect would
    need, not a promise that it is real. The power of the two-sided test at ``n`` seeds is
    that of the noncentral t with ``n - 1`` degrees of freedom and noncentrality
    ``d * sqrt(n)``, as statsmodels' ``TTestPower`` (and G*Power) compute it. ``None`` with
    fewer than 2 differences, with no variance among them (no d), with a mean of 0, or when
    more than ``MAX_SEEDS`` would be needed.

    Example (d = 0.433 and 1.265; statsmodels' ``TTestPower().solve_power`` gives 43.8 and 7.06):
        >>> seeds_for_power([-0.5, 1.5, -0.5, 1.5]), seeds_for_power([0.1, 0.3, 0.2, 0.4, 0.0])
        (44, 8)
    """
    signed = effect_size(differences)
    if not signed:  # no d (under 2 seeds, no variance), or no effect at all
        return None
    effect = abs(signed)
    # The power rises with n: double n until it is reached, then bisect. (Doubling keeps every
    # n tried near the answer, where scipy's noncentral t is accurate; far above it, it can be nan.)
    high = 2
    while _paired_power(high, effect, alpha) < power:
        if high >= MAX_SEEDS:
            return None
        high = min(2 * high, MAX_SEEDS)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if _paired_power(middle, effect, alpha) >= power else (middle + 1, high)
    return low


def _paired_power(n: int, effect: float, alpha: float) -> float:
    """The power of a two-sided one-sample (paired) t-test at ``n`` observations and effect size ``effect``."""
    from scipy import stats

    critical = stats.t.ppf(1 - alpha / 2, n - 1)
    shift = effect * math.sqrt(n)
    return float(stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift))


def load_run(directory: Path) -> RunRecord:
    """A finished run directory's config and metrics, each checked where compare and tune read it.

    Raises:
        SequoiaError: a file that cannot be read or a field of the wrong type, naming the file and the field.
    """
    path = directory / "results.json"
    try:
        results = json.loads(read_utf8(path, "results file", MAX_RESULTS_BYTES))
    except ValueError as error:
        raise SequoiaError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise SequoiaError(f"{path}: expected a mapping with a `metrics` mapping, as sequoia writes it")
    _check_matrix(results.get("transfer_matrix"), path)
    config = read_yaml(directory / "config.yaml", "config file")
    _check_config(config, directory / "config.yaml")
    return RunRecord(str(directory), config, results["metrics"], results)


MAX_RESULTS_BYTES = 256 << 20
"""Largest results.json read (256 MiB: per-item scores of a long run)."""


def _check_matrix(matrix: Any, path: Path) -> None:
    """A transfer matrix: absent, or rows of numbers (null where a cell has none), all of one length."""
    if matrix is None:
        return
    if not _rectangular(matrix):
        raise SequoiaError(f"{path}: `transfer_matrix` must be a list of rows of one length, as sequoia writes it")
    for number, row in enumerate(matrix):
        if not all(value is None or _is_numeric(value) for value in row):
            raise SequoiaError(f"{path}: `transfer_matrix` row {number} holds a value that is not a number")


def _rectangular(matrix: Any) -> bool:
    """A non-empty list of non-empty lists, all of one length."""
    return (isinstance(matrix, list) and bool(matrix) and all(isinstance(row, list) for row in matrix)
            and bool(matrix[0]) and all(len(row) == len(matrix[0]) for row in matrix))


def _is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_config(config: Any, path: Path) -> None:
    """A run's config: a mapping whose sections are mappings and whose seed is a whole number."""
    if not isinstance(config, dict):
        raise SequoiaError(f"{path} must hold a mapping of sections (setting, method, ...), as sequoia writes it")
    for key in ("setting", "method", "learner", "eval"):
        if key in config and not isinstance(config[key], dict):
            raise SequoiaError(f"{path}: section `{key}` must be a mapping of options, not {config[key]!r}")
    seed = config.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SequoiaError(f"{path}: `seed` must be a whole number, not {seed!r}")


def collect(paths: list[str]) -> list[RunRecord]:
    """The finished runs in ``paths``: run directories, sweep directories, or folders holding either."""
    runs: list[RunRecord] = []
    for text in paths:
        path = Path(text)
        if not path.is_dir():
            raise SequoiaError(f"{text}: not a directory (expected a run or sweep directory)")
        found = sorted({result.parent for result in path.rglob("results.json")})
        if not found:
            raise SequoiaError(f"{text}: holds no finished run (no results.json under it)")
        for directory in found:
            if (directory / "config.yaml").is_file():
                runs.append(load_run(directory))
            else:  # a results.json alone (copied out of its run): nothing says which configuration it is
                print(f"sequoia: warning: skipped {directory}: results.json without its config.yaml",
                      file=sys.stderr)
    if not runs:
        raise SequoiaError(f"{', '.join(paths)}: no finished run with its config.yaml")
    return runs
