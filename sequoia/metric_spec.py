"""What a metric means: its direction, its range, the summaries that apply to it, and how it is shown.

Every setting declares the metrics its evaluation produces (:meth:`Setting.metric_specs`);
the first is the primary one. The summaries computed from a metric's transfer matrix, and
the signs of forgetting, BWT and FWT, follow its direction, so that a lower-is-better metric
(a loss, an error, an NLL) gets positive forgetting where it rose, and negative BWT:

* ``final``: the mean over tasks of the last row (``average_final`` for the primary metric);
* ``forgetting``, ``bwt``, ``fwt``: Chaudhry et al.'s forgetting and Lopez-Paz & Ranzato's
  transfers (:mod:`sequoia.results`), oriented so that forgetting >= 0 is always a loss
  and a positive transfer always a gain;
* ``lost``: what the model could do before training (row 0) and no longer does at the end
  (row 0 minus the last row, or the last minus row 0 where lower is better): a positive
  value is always a loss. Preference alignment names it the alignment tax of a probe.

``results.json`` holds each spec (``metric_specs``) and the direction of every summary it
reports (``summaries``); ``sequoia compare``, its plots and ``sequoia tune`` read them.

Example:
    >>> error = MetricSpec("error", higher_is_better=False, low=0.0, summaries=("final", "forgetting", "bwt"))
    >>> error.summary_name("forgetting", primary=False), error.summary_name("final", primary=True)
    ('error_forgetting', 'average_final')
    >>> summary_higher_is_better(error, "final"), summary_higher_is_better(error, "forgetting")
    (False, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUMMARIES = ("final", "forgetting", "bwt", "fwt", "lost")
"""The summaries of a transfer matrix a metric can declare."""
TRANSFER_SUMMARIES = ("final", "forgetting", "bwt", "fwt")
"""The summaries of a per-task metric in a continual sequence: what the primary metric gets by default."""
PRIMARY_NAMES = {"final": "average_final", "forgetting": "average_forgetting", "bwt": "bwt", "fwt": "fwt"}
"""The names the primary metric's summaries have in ``results.json`` (those of the literature)."""
SUMMARY_ORIENTATION = {"final": 1, "forgetting": -1, "bwt": 1, "fwt": 1, "lost": -1}
"""+1 where a summary is better when higher in the metric's own direction, -1 where it is a loss."""


@dataclass(frozen=True)
class MetricSpec:
    """One metric a setting scores.

    Attributes:
        name: the metric's name, as the setting's ``score`` returns it.
        higher_is_better: ``False`` for a loss, an error, an NLL; ``None`` for a diagnostic that is
            neither better nor worse when it grows (PA's ``drift``): it gets its final average only.
        low, high: the range of its values, where it has one (``None``: unbounded on that side).
        summaries: which of :data:`SUMMARIES` are computed from its matrix. ``forgetting``,
            ``bwt`` and ``fwt`` need one training phase per task; ``lost`` compares row 0 with the last.
        label: how plots and tables name it (the name where empty).
        summary_names: names to report summaries under instead of ``<name>_<summary>``
            (preference alignment: ``{"lost": "alignment_tax_mmlu"}``).
        per_task: ``False`` for a probe measured once per evaluation (a matrix of one column).

    Raises:
        ValueError: a summary that is not one of :data:`SUMMARIES`, or a range whose ends are reversed.
    """

    name: str
    higher_is_better: bool | None = True
    low: float | None = None
    high: float | None = None
    summaries: tuple[str, ...] = ("final",)
    label: str = ""
    summary_names: Mapping[str, str] = field(default_factory=dict)
    per_task: bool = True

    def __post_init__(self) -> None:
        unknown = [summary for summary in self.summaries if summary not in SUMMARIES]
        if unknown:
            raise ValueError(f"metric {self.name!r}: unknown summary {unknown[0]!r}; known: {', '.join(SUMMARIES)}")
        if self.higher_is_better is None and set(self.summaries) - {"final"}:
            raise ValueError(f"metric {self.name!r} has no direction, so it can have no summary but `final`")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"metric {self.name!r}: range [{self.low}, {self.high}] has its ends reversed")
        object.__setattr__(self, "summaries", tuple(self.summaries))
        object.__setattr__(self, "summary_names", dict(self.summary_names))

    @property
    def shown_name(self) -> str:
        return self.label or self.name

    def summary_name(self, summary: str, primary: bool) -> str:
        """The name ``summary`` of this metric is reported under in ``results.json``'s metrics."""
        if summary in self.summary_names:
            return self.summary_names[summary]
        if primary and summary in PRIMARY_NAMES:
            return PRIMARY_NAMES[summary]
        return self.name if summary == "final" else f"{self.name}_{summary}"

    def to_dict(self) -> dict[str, Any]:
        """The spec as ``results.json`` holds it.

        Example:
            >>> MetricSpec("accuracy", low=0.0, high=1.0).to_dict()["range"]
            [0.0, 1.0]
        """
        return {"higher_is_better": self.higher_is_better, "range": [self.low, self.high],
                "summaries": list(self.summaries), "label": self.shown_name, "per_task": self.per_task}


def summary_higher_is_better(spec: MetricSpec, summary: str) -> bool | None:
    """Whether a larger value of ``summary`` of ``spec``'s metric is better (``None``: neither).

    The final value follows the metric; forgetting and a lost capability are losses
    (lower is better); BWT and FWT are oriented by the metric's direction, so higher is better.
    """
    if summary == "final":
        return spec.higher_is_better
    return SUMMARY_ORIENTATION[summary] > 0


def summaries_of(spec: MetricSpec, primary: bool) -> tuple[str, ...]:
    """The summaries computed for ``spec``: its own, and for the primary metric every transfer summary.

    Example:
        >>> summaries_of(MetricSpec("accuracy"), primary=True)
        ('final', 'forgetting', 'bwt', 'fwt')
    """
    if not primary:
        return spec.summaries
    return TRANSFER_SUMMARIES + tuple(s for s in spec.summaries if s not in TRANSFER_SUMMARIES)


def describe_summaries(specs: Mapping[str, MetricSpec], primary: str) -> dict[str, dict[str, Any]]:
    """Per reported summary name: which metric and summary it is, and whether higher is better.

    Example:
        >>> described = describe_summaries({"accuracy": MetricSpec("accuracy", summaries=TRANSFER_SUMMARIES)}, "accuracy")
        >>> described["average_forgetting"]
        {'of': 'accuracy', 'summary': 'forgetting', 'higher_is_better': False}
    """
    described = {}
    for name, spec in specs.items():
        for summary in summaries_of(spec, primary=name == primary):
            described[spec.summary_name(summary, primary=name == primary)] = {
                "of": name, "summary": summary, "higher_is_better": summary_higher_is_better(spec, summary)}
    return described


def check_specs(specs: list[MetricSpec], where: str) -> dict[str, MetricSpec]:
    """The specs by name, refusing an empty list and a name declared twice (``where`` names the declarer).

    Example:
        >>> check_specs([MetricSpec("a"), MetricSpec("a")], "MySetting")
        Traceback (most recent call last):
        ...
        ValueError: MySetting declares metric 'a' twice
    """
    if not specs:
        raise ValueError(f"{where} declares no metric (metric_specs() must name at least the primary one)")
    if specs[0].higher_is_better is None:
        raise ValueError(f"{where}: the primary metric {specs[0].name!r} needs a direction (higher_is_better)")
    by_name: dict[str, MetricSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ValueError(f"{where} declares metric {spec.name!r} twice")
        by_name[spec.name] = spec
    return by_name
