"""Metric specs: a lower-is-better metric gets forgetting, BWT and FWT of the right sign, everywhere they are read."""

import json
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic.dataclasses import dataclass

from sequoia.experiments.commands import compare_command
from sequoia.experiments.summary import RunRecord, group_runs, paired_tests
from sequoia.metric_spec import TRANSFER_SUMMARIES, MetricSpec, check_specs
from sequoia.methods.base import Method
from sequoia.results import Results, TransferMatrix
from sequoia.runs.run import Run
from sequoia.settings.assumptions import IncrementalAssumption
from sequoia.settings.base import Setting

ERRORS = [[0.9, 0.9, 0.9],   # before training
          [0.1, 0.8, 0.9],   # after task 0: its error fell
          [0.4, 0.2, 0.7],   # after task 1: task 0's error rose again (forgotten by 0.3)
          [0.5, 0.3, 0.1]]   # after task 2


def test_lower_is_better_forgetting_is_the_rise_of_the_error_and_bwt_its_negative():
    errors = TransferMatrix(ERRORS, metric="error", higher_is_better=False)
    # Task 0: best (lowest) error 0.1 from its training on, final 0.5; task 1: best 0.2, final 0.3.
    assert errors.forgetting_by_task() == pytest.approx([0.4, 0.1])
    assert errors.average_forgetting() == pytest.approx(0.25)
    assert errors.bwt() == pytest.approx(-((0.5 - 0.1) + (0.3 - 0.2)) / 2)
    # FWT: task 1 before its phase 0.8 against 0.9 at the start, task 2 0.7 against 0.9: earlier tasks helped.
    assert errors.fwt() == pytest.approx(((0.9 - 0.8) + (0.9 - 0.7)) / 2)
    assert errors.lost() == pytest.approx(np.mean(ERRORS[-1]) - np.mean(ERRORS[0]))


def test_lower_is_better_summaries_equal_those_of_the_negated_matrix():
    errors = TransferMatrix(ERRORS, higher_is_better=False)
    negated = TransferMatrix(-np.asarray(ERRORS))
    assert errors.average_forgetting() == pytest.approx(negated.average_forgetting())
    assert errors.bwt() == pytest.approx(negated.bwt()) and errors.fwt() == pytest.approx(negated.fwt())
    assert errors.average_final() == pytest.approx(-negated.average_final())


def test_a_bad_spec_is_refused_in_one_line():
    with pytest.raises(ValueError, match="unknown summary 'mean'"):
        MetricSpec("error", summaries=("mean",))
    with pytest.raises(ValueError, match="no direction"):
        MetricSpec("drift", higher_is_better=None, summaries=("final", "forgetting"))
    with pytest.raises(ValueError, match="ends reversed"):
        MetricSpec("error", low=1.0, high=0.0)
    with pytest.raises(ValueError, match="primary metric 'drift' needs a direction"):
        check_specs([MetricSpec("drift", higher_is_better=None)], "ToySetting")


# A domain whose primary metric is a squared error: each task is a target value, the method
# remembers the last one it was trained on, and the error of a task rises once another replaces it.
@dataclass
class TargetSetting(IncrementalAssumption, Setting):
    domain: ClassVar[str] = "toy"
    targets: tuple[float, ...] = (1.0, -1.0, 2.0)

    def metric_specs(self) -> list[MetricSpec]:
        return [MetricSpec("squared_error", higher_is_better=False, low=0.0, summaries=TRANSFER_SUMMARIES),
                MetricSpec("absolute_error", higher_is_better=False, low=0.0, summaries=("final", "forgetting"))]

    @property
    def nb_tasks_total(self) -> int:
        return len(self.targets)

    def train_size(self, task: int) -> int:
        return 4

    def training_data(self, items: Any) -> float:
        return self.targets[int(items.tasks[0])]

    def score(self, method, task: int, task_id: int | None) -> dict[str, Any]:
        guesses = np.full(4, method.guess) + np.linspace(-0.1, 0.1, 4)
        return {"squared_error": (guesses - self.targets[task]) ** 2,
                "absolute_error": np.abs(guesses - self.targets[task])}


@dataclass
class LastTarget(Method):
    name: ClassVar[str] = "last_target"
    target_setting: ClassVar[type[Setting]] = TargetSetting
    guess: float = 0.0

    def fit(self, train: float, valid: Any) -> None:
        self.guess = train

    def state_dict(self) -> dict[str, float]:
        return {"guess": self.guess}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.guess = state["guess"]


def test_a_lower_is_better_primary_metric_gets_positive_forgetting_and_negative_bwt_in_results(tmp_path):
    run = Run.new(tmp_path, {"setting": {"name": "toy.incremental"}, "method": {"name": "last_target"}})
    run.exact_directory = tmp_path / "run"
    results = TargetSetting().apply(LastTarget(), progress=False, run=run)
    metrics = results.metrics()
    assert metrics["metric"] == "squared_error"
    # Task 0 (target 1) ends with guess 2: its error rose from ~0 to ~1 (forgetting > 0, BWT < 0).
    assert metrics["average_forgetting"] > 0.5 and metrics["bwt"] < -0.5
    assert metrics["absolute_error_forgetting"] > 0.5
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["summaries"]["average_final"]["higher_is_better"] is False
    assert saved["summaries"]["average_forgetting"]["higher_is_better"] is False
    assert saved["summaries"]["bwt"]["higher_is_better"] is True
    assert saved["metric_specs"]["squared_error"]["primary"] is True
    low, high = saved["intervals"]["metrics"]["average_forgetting"]
    assert 0 < low <= metrics["average_forgetting"] <= high


def test_compare_calls_a_lower_error_better_and_says_which_metrics_are_lower_is_better(tmp_path, capsys):
    for method, guess_shift in (("naive", 0.0), ("better", -0.5)):
        for seed in range(3):
            matrix = np.asarray(ERRORS) + guess_shift * (1 + 0.1 * seed) + 0.01 * seed
            results = Results("toy.incremental", method, TransferMatrix(matrix, "error", higher_is_better=False),
                              specs={"error": MetricSpec("error", higher_is_better=False, summaries=TRANSFER_SUMMARIES)})
            run = tmp_path / "runs" / f"{method}-{seed}"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps(results.to_dict()))
            (run / "config.yaml").write_text(f"seed: {seed}\nmethod: {{name: {method}}}\n")
    assert compare_command([str(tmp_path / "runs"), "--baseline", "naive", "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "lower is better: average_final" in printed
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    [test] = [t for t in saved["paired_tests"] if t["metric"] == "average_final"]
    assert test["difference"] < 0 and test["verdict"] == "better"
    assert saved["higher_is_better"]["average_final"] is False


def test_runs_written_before_specs_keep_their_directions():
    runs = [RunRecord(f"{m}{s}", {"seed": s, "method": {"name": m}},
                      {"average_forgetting": f + 0.01 * s * f, "alignment_tax_mmlu": f + 0.02 * s * f},
                      {"transfer_matrix": [[0.5]]})
            for m, f in (("naive", 0.3), ("replay", 0.1)) for s in range(3)]
    tests = {t["metric"]: t for t in paired_tests(group_runs(runs), "naive")}
    assert tests["average_forgetting"]["verdict"] == "better"  # less forgetting than naive
    assert tests["alignment_tax_mmlu"]["verdict"] == "better"  # less tax than naive on every seed


def test_the_tradeoff_plot_draws_any_lost_metric_against_the_final_score_in_its_direction(tmp_path):
    from sequoia.experiments.plots import tradeoff

    summaries = {"average_final": {"of": "error", "summary": "final", "higher_is_better": False},
                 "calibration_lost": {"of": "calibration", "summary": "lost", "higher_is_better": False}}
    runs = [RunRecord(f"{m}{s}", {"seed": s, "method": {"name": m}},
                      {"average_final": e + 0.01 * s, "calibration_lost": lost + 0.02 * s},
                      {"transfer_matrix": [[0.5]], "summaries": summaries})
            for m, e, lost in (("naive", 0.4, 0.1), ("replay", 0.2, 0.3)) for s in range(3)]
    configurations = group_runs(runs)
    assert configurations[0].summary_kind("calibration_lost") == "lost"
    assert tradeoff(configurations, tmp_path / "tradeoff.png") and (tmp_path / "tradeoff.png").stat().st_size > 0


def test_the_forgetting_tradeoff_draws_forgetting_against_each_lost_metric_where_runs_have_both(tmp_path):
    from sequoia.experiments.plots import forgetting_tradeoff

    summaries = {"average_forgetting": {"of": "accuracy", "summary": "forgetting", "higher_is_better": False},
                 "alignment_tax_mmlu": {"of": "mmlu", "summary": "lost", "higher_is_better": False}}

    def runs(metrics: dict[str, float]) -> list[RunRecord]:
        return [RunRecord(f"{m}{s}", {"seed": s, "method": {"name": m}},
                          {name: value + offset + 0.01 * s for name, value in metrics.items()},
                          {"transfer_matrix": [[0.5]], "summaries": summaries})
                for m, offset in (("naive", 0.0), ("replay", 0.2)) for s in range(3)]

    assert forgetting_tradeoff(group_runs(runs({"average_forgetting": 0.3, "alignment_tax_mmlu": 0.1})),
                               tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    assert not forgetting_tradeoff(group_runs(runs({"alignment_tax_mmlu": 0.1})), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
