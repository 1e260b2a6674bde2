"""``sequoia compare``: configurations from run and sweep directories, statistics over seeds, tests, plots."""

import json
import shutil

import matplotlib.image
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequoia.cli import main
from sequoia.errors import SequoiaError
from sequoia.experiments.summary import RunRecord, group_runs, holm, paired_tests, seeds_for_power


def test_compare_two_directories_writes_the_table_the_tests_and_readable_plots(uninterrupted, tmp_path, capsys):
    # Two directories of runs, one per method, as two sweeps would give them.
    for method, folder in (("naive", "a"), ("replay", "b")):
        for run in (uninterrupted / "runs").glob(f"*-method-{method}-*"):
            shutil.copytree(run, tmp_path / folder / run.name)
    output = tmp_path / "comparison"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--baseline", "naive",
                 "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "method=replay" in printed and "ttest_rel" in printed
    table = (output / "comparison.md").read_text()
    assert "| method=naive | 3 |" in table and " ± " in table
    saved = json.loads((output / "comparison.json").read_text())
    [test] = [t for t in saved["paired_tests"] if t["metric"] == "average_final"]
    assert test["configuration"] == "method=replay" and test["n"] == 3
    assert test["difference"] > 0.2 and test["p"] < 0.05
    for name in ("metrics.png", "transfer_matrices.png", "average_performance.png"):
        image = matplotlib.image.imread(output / name)
        assert image.shape[0] > 250 and image.shape[1] > 500, name
    assert (output / "comparison.csv").read_text().startswith("configuration,metric,n,mean,std,ci_low,ci_high")


def _record(method: str, seed: int, value: float, lr: float = 0.1) -> RunRecord:
    config = {"seed": seed, "setting": {"name": "sl.incremental"}, "method": {"name": method},
              "learner": {"name": "classifier", "lr": lr}}
    return RunRecord(f"{method}-{lr}-{seed}", config, {"metric": "accuracy", "average_final": value},
                     {"transfer_matrix": [[0.1, 0.1], [value, 0.1], [value, value]]})


def test_a_label_names_a_configuration_by_its_own_options_only():
    runs = [_record("ewc", 0, 0.5), _record("experts", 0, 0.6), _record("experts", 0, 0.4)]
    runs[1].config["method"]["aggregate"], runs[2].config["method"]["aggregate"] = "top1", "weighted"
    assert [c.label for c in group_runs(runs)] == [
        "method=ewc", "method=experts method.aggregate=top1", "method=experts method.aggregate=weighted"]


def test_each_configuration_is_tested_against_the_baseline_with_its_own_other_options():
    runs = [_record(method, seed, base + 0.01 * seed + (0.3 + 0.01 * seed ** 2 if method == "replay" else 0.0), lr)
            for method in ("naive", "replay") for lr, base in ((0.1, 0.2), (0.01, 0.4)) for seed in range(3)]
    configurations = group_runs(runs)
    assert [c.label for c in configurations] == ["method=naive learner.lr=0.01", "method=naive learner.lr=0.1",
                                                 "method=replay learner.lr=0.01", "method=replay learner.lr=0.1"]
    tests = {t["configuration"]: t for t in paired_tests(configurations, "naive")}
    assert tests["method=replay learner.lr=0.01"]["baseline"] == "method=naive learner.lr=0.01"
    assert tests["method=replay learner.lr=0.1"]["difference"] == pytest.approx(0.3 + 0.05 / 3)


# statsmodels' TTestPower().solve_power(effect_size=d, power=0.8, alpha=0.05) for each d, rounded up
# (89.15, 33.37, 14.30, 9.94, 4.22, 3.14): G*Power's one-sample two-sided table gives the same.
@pytest.mark.parametrize("effect, seeds", [(0.3, 90), (0.5, 34), (0.8, 15), (1.0, 10), (2.0, 5), (3.0, 4)])
def test_the_seeds_a_paired_test_needs_match_statsmodels(effect, seeds):
    differences = [effect - 0.5 ** 0.5, effect + 0.5 ** 0.5]  # mean effect, sample standard deviation 1
    assert seeds_for_power(differences) == seeds
    assert seeds_for_power([-d for d in differences]) == seeds  # the sign does not matter


def test_no_power_estimate_without_an_effect_size():
    assert seeds_for_power([0.2]) is None  # one seed: no spread
    assert seeds_for_power([0.2, 0.2, 0.2]) is None  # no variance: d is not defined
    assert seeds_for_power([-0.1, 0.1]) is None  # no mean difference
    assert seeds_for_power([-1.0, 1.001]) is None  # d = 0.0007: beyond 10000 seeds


# statsmodels.stats.multitest.multipletests(p, method="holm")[1] on each family (statsmodels 0.14).
@pytest.mark.parametrize("pvalues, adjusted", [
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),
    ([0.0042, 0.0874, 0.0910, 0.1966, 0.5888, 0.8467], [0.0252, 0.437, 0.437, 0.5898, 1.0, 1.0]),
    ([0.2, 0.2, 0.01, 0.5, 0.049], [0.6, 0.6, 0.05, 0.6, 0.196]),
])
def test_holm_s_adjustment_matches_statsmodels(pvalues, adjusted):
    assert holm(pvalues) == pytest.approx(adjusted)


@given(st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=12))
def test_holm_never_lowers_a_p_keeps_the_order_and_skips_missing_tests(pvalues):
    adjusted = holm(pvalues)
    pairs = [(p, a) for p, a in zip(pvalues, adjusted) if p is not None]
    assert [a is None for a in adjusted] == [p is None for p in pvalues]
    assert all(p <= a <= 1 for p, a in pairs)
    assert all(a1 <= a2 for (p1, a1) in pairs for (p2, a2) in pairs if p1 < p2)  # a smaller p, no larger adjusted p


def test_each_metric_s_tests_are_adjusted_together_over_the_configurations():
    runs = [_record(method, seed, {"naive": 0.2, "ewc": 0.3, "replay": 0.6}[method] + 0.01 * seed * (1 + len(method)))
            for method in ("naive", "ewc", "replay") for seed in range(3)]
    tests = [t for t in paired_tests(group_runs(runs), "naive") if t["metric"] == "average_final"]
    assert len(tests) == 2
    assert [t["p_holm"] for t in tests] == pytest.approx(holm([t["p"] for t in tests]))
    assert all(t["p_holm"] >= t["p"] for t in tests)


def test_compare_prints_and_saves_the_seeds_each_test_would_need(uninterrupted, tmp_path, capsys):
    output = tmp_path / "comparison"
    assert main(["compare", str(uninterrupted / "runs"), "--baseline", "naive", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "seeds for 80% power" in printed and "p (Holm)" in printed
    saved = json.loads((output / "comparison.json").read_text())
    [test] = [t for t in saved["paired_tests"] if t["metric"] == "average_final" and "replay" in t["configuration"]]
    differences = [run - base for run, base in zip(*(
        [seed_value for _, seed_value in sorted(c["metrics"]["average_final"]["seeds"].items())]
        for label in (test["configuration"], test["baseline"])
        for c in saved["configurations"] if c["label"] == label))]
    assert test["seeds_for_power"] == seeds_for_power(differences) and test["seeds_for_power"] >= 2
    assert "seeds_for_power" in (output / "paired_tests.csv").read_text().splitlines()[0]


def test_a_seed_twice_in_one_configuration_is_refused():
    with pytest.raises(SequoiaError, match="has seed 0 twice"):
        group_runs([_record("naive", 0, 0.2), _record("naive", 0, 0.3)])


def test_an_unknown_baseline_is_refused(uninterrupted, tmp_path):
    with pytest.raises(SequoiaError, match="--baseline lwf: no configuration"):
        from sequoia.experiments.commands import compare_command

        compare_command([str(uninterrupted), "--baseline", "lwf", "--output", str(tmp_path)])


def test_metrics_choose_the_columns_of_the_table(uninterrupted, tmp_path, capsys):
    output = tmp_path / "chosen"
    assert main(["compare", str(uninterrupted), "--metrics", "bwt,average_final", "--output", str(output)]) == 0
    markdown = (output / "comparison.md").read_text()
    assert "| configuration | seeds | bwt | average_final |" in markdown
    tested = {row.split(" | ")[2] for row in markdown.split("## Against the baseline")[1].splitlines()[6:]}
    assert tested == {"bwt", "average_final"}  # the paired tests of the chosen metrics only
    assert "average_forgetting" in (output / "paired_tests.csv").read_text()
    assert capsys.readouterr().out.splitlines()[1].split() == ["configuration", "seeds", "bwt", "average_final"]
    assert "average_forgetting" in (output / "comparison.csv").read_text()  # the CSV keeps every metric


def test_a_metric_no_run_reported_is_refused_before_anything_is_written(uninterrupted, tmp_path):
    from sequoia.experiments.commands import compare_command

    with pytest.raises(SequoiaError, match="--metrics bwtt: no run reported that metric; the metrics are "
                                           "average_final"):
        compare_command([str(uninterrupted), "--metrics", "average_final,bwtt", "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def _tuned(method: str, seed: int, value: float, lr: float, setting: str = "pa.incremental") -> RunRecord:
    record = _record(method, seed, value, lr)
    record.config["setting"]["name"] = setting
    return record


def test_tuned_arms_are_compared_with_a_baseline_named_by_part_of_its_label(tmp_path, capsys):
    """Arms tuned on their own differ in their learning rate too: a method name finds them no partner (said
    once on stderr); part of the baseline's label names it, and every arm is tested against it."""
    runs = [_tuned("naive", s, 0.5 + 0.01 * s, 0.003) for s in range(3)]
    runs += [_tuned("ewc", s, 0.7 + 0.02 * s, 0.001) for s in range(3)]
    runs += [_tuned("naive", s, 0.9 - 0.01 * s, 0.001, setting="pa.multi_task") for s in range(3)]
    for run in runs:  # each a finished run directory, as compare reads them
        directory = tmp_path / "runs" / f"{run.config['setting']['name']}-{run.directory}"
        directory.mkdir(parents=True)
        (directory / "config.yaml").write_text(json.dumps(run.config))
        (directory / "results.json").write_text(json.dumps({"metrics": run.metrics}))
    assert main(["compare", str(tmp_path / "runs"), "--baseline", "naive", "--output", str(tmp_path / "a")]) == 0
    assert "no paired test for 1 configuration(s) (method=ewc" in capsys.readouterr().err
    # Both naive arms match `method=naive`: one line, exit 2.
    assert main(["compare", str(tmp_path / "runs"), "--baseline", "method=naive", "--output", str(tmp_path / "b")]) == 2
    assert "2 configurations match" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "runs"), "--baseline", "setting=pa.incremental method=naive",
                 "--output", str(tmp_path / "c")]) == 0
    assert "no paired test" not in capsys.readouterr().err
    tests = json.loads((tmp_path / "c" / "comparison.json").read_text())["paired_tests"]
    tested = {t["configuration"] for t in tests if t["metric"] == "average_final"}
    assert tested == {"method=ewc setting=pa.incremental learner.lr=0.001",
                      "method=naive setting=pa.multi_task learner.lr=0.001"}
    [ewc] = [t for t in tests if t["metric"] == "average_final" and "ewc" in t["configuration"]]
    assert ewc["difference"] == pytest.approx(0.21) and ewc["n"] == 3
