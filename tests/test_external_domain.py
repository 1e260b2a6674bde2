"""A domain from outside: examples/new_domain is a package of its own that adds continual regression.

`make install` installs it beside sequoia (its only link is a `sequoia.domains` entry point), so
the registry finds it and the contract suite (tests/methods/test_contract.py) runs every method
that applies on each of its levels. These tests check that it is there, that sequoia's own code
never names it, and that its lower-is-better metric reaches the CLI, sweeps and compare with
forgetting and BWT of the right signs.
"""

import json
import subprocess
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import numpy as np
import pytest

from sequoia import registry
from sequoia.cli import main
from tests.conftest import run_sequoia

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_METHODS = ("naive", "replay", "ewc", "lwf", "si", "agem")


def test_the_example_domain_is_installed_and_registered_through_its_entry_point():
    try:
        distribution("sequoia-regression")
    except PackageNotFoundError:
        pytest.fail("examples/new_domain is not installed: `make install` installs it "
                    "(pip install --no-deps -e examples/new_domain)")
    assert "reg" in registry.domains()
    assert {"reg.continual", "reg.incremental", "reg.task_incremental", "reg.multi_task"} <= set(registry.settings())
    assert registry.get_learner("regressor").__module__ == "sequoia_regression.learner"
    for method in PLUGIN_METHODS:
        assert "reg.incremental" in registry.applicable_settings(registry.get_method(method)), method


def test_sequoia_itself_never_names_the_example_domain():
    found = subprocess.run(["git", "grep", "-nE", "sequoia_regression|regressor|\"reg\"|reg\\.", "--", "sequoia/"],
                           cwd=ROOT, capture_output=True, text=True)
    assert found.returncode == 1, found.stdout  # git grep exits 1 when nothing matches


def test_sequoia_list_shows_the_domain_its_levels_and_methods(capsys):
    assert main(["list"]) == 0
    shown = capsys.readouterr().out
    assert "reg  from sequoia_regression; presets: default, smoke." in shown
    assert "reg.incremental (alias reg.class_incremental): agem, ewc, lwf, naive, replay, si" in shown


def test_the_six_plugin_methods_sweep_and_compare_with_the_signs_of_an_error(tmp_path, capsys):
    # naive and replay on three seeds (the paired test needs them), the four others on one (a run each: time).
    for methods, seeds, folder in (("naive,replay", "0-2", "paired"), ("ewc,lwf,si,agem", "0", "others")):
        proc = run_sequoia(["sweep", "--setting", "reg.incremental", "--method", methods, "--preset", "smoke",
                            "--seeds", seeds, "--workers", "2", "--directory", str(tmp_path / folder)])
        assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(path.read_text()) for path in tmp_path.rglob("results.json")]
    assert sorted({r["method"] for r in runs}) == sorted(PLUGIN_METHODS) and len(runs) == 2 * 3 + 4
    for results in runs:
        errors = np.asarray(results["transfer_matrix"])
        # Forgetting of an error: how far each task's error rose from its lowest after its training.
        rose = [errors[-1, j] - errors[j + 1 :, j].min() for j in range(errors.shape[1] - 1)]
        assert results["metrics"]["average_forgetting"] == pytest.approx(np.mean(rose))
        assert results["metrics"]["average_forgetting"] >= 0
        assert results["summaries"]["average_final"]["higher_is_better"] is False
    naive = [r for r in runs if r["method"] == "naive"]
    assert all(r["metrics"]["average_forgetting"] > 0.2 and r["metrics"]["bwt"] < -0.2 for r in naive)

    assert main(["compare", str(tmp_path / "paired"), str(tmp_path / "others"), "--output",
                 str(tmp_path / "comparison")]) == 0
    assert "lower is better: average_final, average_forgetting" in capsys.readouterr().out
    saved = json.loads((tmp_path / "comparison" / "comparison.json").read_text())
    verdicts = {(t["configuration"], t["metric"]): t["verdict"] for t in saved["paired_tests"]}
    # Replay keeps a memory of the earlier curves: its errors rise less than naive's on every seed.
    assert verdicts[("method=replay", "average_forgetting")] == "better"
