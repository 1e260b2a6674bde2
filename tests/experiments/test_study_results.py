"""The runs of a study kept in the repository (studies/results/): runs of its arms, under one protocol,
and what `sequoia compare` rebuilds the study document's table from."""

from pathlib import Path

import pytest

from sequoia.cli import main
from sequoia.experiments.sweep import read_definition
from sequoia.yaml_file import read_yaml

STUDIES = Path(__file__).resolve().parents[2] / "studies"
KEPT = sorted(path for path in (STUDIES / "results" / "value_alignment").iterdir() if path.is_dir())


def arms() -> list[dict]:
    definition = read_yaml(STUDIES / "value_alignment.yaml", "sweep file")
    read_definition(definition, "sweep file")  # a valid sweep file
    return definition["axes"]["arm"]


def matches(arm: dict, config: dict) -> bool:
    """Whether a run's config.yaml is a run of ``arm`` (its setting, method and their options)."""
    for key, value in arm.items():
        group, _, option = key.partition(".")
        section = config.get(group, {})
        if (section.get("name") if not option else section.get(option)) != value:
            return False
    return True


def test_study_runs_are_kept():
    assert KEPT, "no run of the value-alignment study under studies/results/value_alignment"


@pytest.mark.parametrize("run", KEPT, ids=lambda path: path.name)
def test_a_kept_run_is_a_finished_run_of_an_arm_of_the_study(run):
    config = read_yaml(run / "config.yaml", "config.yaml")
    assert (run / "results.json").is_file()
    assert sum(matches(arm, config) for arm in arms()) == 1, config
    assert run.name.endswith(f"-seed-{config['seed']}")


def test_kept_runs_share_one_protocol():
    protocols = set()
    for run in KEPT:
        config = read_yaml(run / "config.yaml", "config.yaml")
        setting = {key: value for key, value in config["setting"].items() if key != "name"}
        protocols.add(repr((sorted(setting.items()), sorted(config["eval"].items()))))
    assert len(protocols) == 1


def test_compare_rebuilds_the_table_from_them(tmp_path, capsys):
    assert main(["compare", str(STUDIES / "results" / "value_alignment"), "--output", str(tmp_path),
                 "--metrics", "average_final,average_forgetting,alignment_tax_text_nll"]) == 0
    assert "method=experts" in capsys.readouterr().out
    assert (tmp_path / "comparison.md").is_file()
