"""The bootstrap against closed forms, and the intervals of a run in results.json."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequoia import intervals
from sequoia.learners import Classifier
from sequoia.methods.naive import Naive
from sequoia.results import Results, TransferMatrix
from sequoia.runs import Run
from sequoia.settings.sl import IncrementalSLSetting


def test_bootstrap_of_an_accuracy_matches_the_binomial_interval():
    # 280 of 400 correct: the normal approximation to the binomial gives
    # p ± 1.96 sqrt(p (1 - p) / n) = 0.7 ± 0.0449; the percentile bootstrap of the
    # mean of 0/1 items converges to it.
    n, correct = 400, 280
    items = np.array([1.0] * correct + [0.0] * (n - correct))
    p = correct / n
    half = 1.959964 * math.sqrt(p * (1 - p) / n)
    low, high = intervals.percentile_interval(intervals.bootstrap_matrices([[items]], samples=20_000)[:, 0, 0])
    assert low == pytest.approx(p - half, abs=0.004) and high == pytest.approx(p + half, abs=0.004)
    # The default number of replicates is within 0.01 of it too.
    low, high = intervals.percentile_interval(intervals.bootstrap_matrices([[items]])[:, 0, 0])
    assert low == pytest.approx(p - half, abs=0.01) and high == pytest.approx(p + half, abs=0.01)


def test_t_interval_against_the_t_table():
    mean, sd, (low, high) = intervals.t_interval([1.0, 2.0, 3.0])
    # t(0.975, 2) = 4.303: 2 ± 4.303 / sqrt(3)
    assert (mean, sd) == (2.0, 1.0)
    assert (low, high) == pytest.approx((2 - 4.3027 / math.sqrt(3), 2 + 4.3027 / math.sqrt(3)), abs=1e-3)
    assert math.isnan(intervals.t_interval([0.5])[1])


def test_the_paired_bootstrap_keeps_a_difference_between_rows_exact():
    # The same items in both rows, shifted by a constant: every replicate of the
    # difference is that constant, so its interval has no width.
    rng = np.random.default_rng(0)
    before = rng.random(50)
    replicates = intervals.bootstrap_matrices([[before], [before + 0.25]])
    difference = replicates[:, 1, 0] - replicates[:, 0, 0]
    assert np.allclose(difference, 0.25)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=40))
def test_a_mean_lies_in_its_interval_and_the_interval_in_the_range(values):
    low, high = intervals.mean_interval(values)
    assert min(values) - 1e-9 <= low <= np.mean(values) + 1e-9
    assert np.mean(values) - 1e-9 <= high <= max(values) + 1e-9


def test_no_interval_from_fewer_than_two_items():
    result = Results("s", "m", TransferMatrix([[0.5]]), items={"accuracy": [[[0.5]]]})
    assert result.intervals() == {"cells": {}, "metrics": {}}
    assert "±" not in result.summary()


def test_a_run_writes_and_prints_the_interval_of_every_cell(tmp_path):
    run = Run.new(tmp_path, config={"seed": 0})
    results = IncrementalSLSetting(nb_tasks=2).apply(Naive().use_learner(Classifier(epochs=2)), progress=False,
                                                     run=run)
    saved = json.loads((run.directory / "results.json").read_text())
    cells = np.asarray(saved["intervals"]["cells"]["accuracy"])
    assert cells.shape == (3, 2, 2)
    assert np.all(cells[..., 0] <= np.asarray(saved["transfer_matrix"]) + 1e-9)
    for name in ("average_final", "average_forgetting", "bwt", "fwt"):
        low, high = saved["intervals"]["metrics"][name]
        assert low <= high
    # A cell scored on about 70 test images has an interval some points wide.
    widths = cells[..., 1] - cells[..., 0]
    assert widths.max() > 0.02
    assert " ± " in results.summary().splitlines()[2]
