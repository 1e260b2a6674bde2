"""``sequoia compare``: configurations from run and sweep directories, statistics over seeds, tests, plots."""

import json
import shutil

import matplotlib.image
import pytest

from sequoia.cli import main
from sequoia.errors import SequoiaError
from sequoia.experiments.summary import RunRecord, group_runs, paired_tests


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
