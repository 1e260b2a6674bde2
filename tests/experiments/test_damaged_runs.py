"""sequoia's own files, read back after a user (or a crash, or another version) changed them.

Generated damage to ``results.json``, ``config.yaml`` and ``transfer_matrix.csv`` of a finished run:
``sequoia compare`` and ``sequoia --resume`` answer each with exit 0 (or a documented skip) or one line
and exit 2; neither changes a file of the run nor leaves a comparison behind.
"""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequoia.cli import main

FILES = ("results.json", "config.yaml", "transfer_matrix.csv")
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                           | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                       max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("finished") / "run"
    assert main(["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2", "--learner.epochs",
                 "1", "--directory", str(directory), "--quiet"]) == 0
    return directory


def damaged_field(path: Path, data, value) -> None:
    """Replace one field of a JSON or YAML file (at any depth it has) with ``value``."""
    loads, dumps = (json.loads, json.dumps) if path.suffix == ".json" else (yaml.safe_load, yaml.safe_dump)
    content = loads(path.read_text())
    node, keys = content, []
    while isinstance(node, dict) and node:
        key = data.draw(st.sampled_from(sorted(node)))
        keys.append(key)
        if not isinstance(node[key], dict) or data.draw(st.booleans()):
            break
        node = node[key]
    node[keys[-1]] = value
    path.write_text(dumps(content))


def damage(path: Path, data) -> None:
    fields = path.suffix in (".json", ".yaml")  # a mapping to edit a field of; CSV and JSON lines are cut or replaced
    kind = data.draw(st.sampled_from(["field", "truncate", "bytes"] if fields else ["truncate", "bytes"]))
    if kind == "field":
        damaged_field(path, data, data.draw(JSON_VALUES))
    elif kind == "truncate":
        text = path.read_bytes()
        path.write_bytes(text[: data.draw(st.integers(0, len(text)))])
    else:
        path.write_bytes(data.draw(st.binary(max_size=64)))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_compare_and_resume_answer_damaged_run_files_in_one_line(finished, tmp_path_factory, capsys, data):
    copy = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(finished, copy)
    damage(copy / data.draw(st.sampled_from(FILES)), data)
    before = snapshot(copy)
    output = copy.parent / "comparison"
    capsys.readouterr()
    codes = []
    for argv in (["compare", str(copy), "--output", str(output)], ["--resume", str(copy), "--quiet"]):
        codes.append(main(argv))
        error = capsys.readouterr().err
        lines = [line for line in error.splitlines() if line.strip()]
        assert codes[-1] in (0, 2), (argv, error)
        assert "internal error" not in error and "Traceback" not in error
        if codes[-1] == 2:
            assert len(lines) == 1 and lines[0].startswith("sequoia: error:"), error
        else:
            assert all(line.startswith("sequoia: warning:") for line in lines), error
    assert snapshot(copy) == before  # the run's files are left as they were
    assert codes[0] == 0 or not output.exists()  # a refused comparison leaves nothing


def test_a_results_file_without_its_config_is_skipped_with_a_warning(finished, tmp_path, capsys):
    shutil.copytree(finished, tmp_path / "runs" / "a")
    (tmp_path / "runs" / "b").mkdir()
    shutil.copy(finished / "results.json", tmp_path / "runs" / "b" / "results.json")
    assert main(["compare", str(tmp_path / "runs"), "--output", str(tmp_path / "out")]) == 0
    error = capsys.readouterr().err
    assert error.strip() == f"sequoia: warning: skipped {tmp_path / 'runs' / 'b'}: results.json without its config.yaml"


def test_a_comparison_that_fails_midway_leaves_nothing(finished, tmp_path, monkeypatch):
    from sequoia.experiments import plots

    def broken(*args):
        raise OSError(28, "No space left on device", str(tmp_path / "out" / "metrics.png"))

    monkeypatch.setattr(plots, "write_all", broken)
    assert main(["compare", str(finished), "--output", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_a_config_whose_alias_contains_itself_is_one_line(tmp_path, capsys):
    (tmp_path / "loop.yaml").write_text("setting: &a {name: sl.incremental, more: *a}\n")
    assert main(["--config", str(tmp_path / "loop.yaml")]) == 2
    assert "the value at line 1 contains itself through an alias" in capsys.readouterr().err


@pytest.fixture(scope="module")
def interrupted(finished, tmp_path_factory) -> Path:
    """The finished run as it was after its last checkpoint, before its results: resumable."""
    from sequoia.runs.files import RESULT_FILES

    directory = tmp_path_factory.mktemp("interrupted") / "run"
    shutil.copytree(finished, directory)
    for name in RESULT_FILES:
        (directory / name).unlink()
    return directory


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_resume_answers_a_damaged_interrupted_run_in_one_line_or_finishes_it(interrupted, tmp_path_factory, capsys,
                                                                             data):
    copy = tmp_path_factory.mktemp("damaged-interrupted") / "run"
    shutil.copytree(interrupted, copy)
    damage(copy / data.draw(st.sampled_from(["config.yaml", "metrics.jsonl"])), data)
    before = snapshot(copy)
    capsys.readouterr()
    code = main(["--resume", str(copy), "--quiet"])
    error = capsys.readouterr().err
    assert "internal error" not in error and "Traceback" not in error
    if code == 2:
        assert error.count("\n") == 1 and error.startswith("sequoia: error:"), error
        assert snapshot(copy) == before  # refused: the run's files are left as they were
    else:  # damage resuming does not depend on (a comment, a field it rewrites): the run finishes
        assert code == 0, error
        assert (copy / "results.json").is_file()
