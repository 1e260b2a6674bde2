"""Every row of docs/errors.md, run as written: exit code 2, one line on stderr, nothing written.

The table is the specification: each row gives a command and the exact message it
prints (a message ending in ``...`` is a prefix, where the rest comes from another
library). Commands run in a scratch directory holding the bad files of
``tests/data/bad_inputs``, an empty ``models/empty`` and eight run directories under ``runs/``.
"""

import re
import shlex
import shutil
from pathlib import Path

import pytest
from sequoia.cli import main
from sequoia.runs.files import RESULT_FILES
from sequoia.runs import checkpoint
from sequoia.runs.run import CHECKPOINT_FORMAT
from tests.conftest import snapshot

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "docs" / "errors.md"
ROW = re.compile(r"^\| (\d+) \| (.+?) \| `(sequoia [^`]+)` \| (`+) (.+?) \4 \|$")


def table_rows() -> list[tuple[str, str, str, str]]:
    """(number, bad input, command, message) for each row of the table."""
    rows = []
    for line in TABLE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            number, what, command, _, message = match.groups()
            rows.append((number, what, command, message))
    return rows


def build_workspace(root: Path) -> Path:
    """The scratch directory the table's commands run in."""
    shutil.copytree(REPO / "tests" / "data" / "bad_inputs", root / "tests" / "data" / "bad_inputs")
    runs = root / "runs"
    assert main(["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2",
                 "--learner.epochs", "1", "--output", str(root / "out"), "--quiet"]) == 0
    [config] = (root / "out").rglob("config.yaml")
    shutil.copytree(config.parent, runs / "finished")
    shutil.rmtree(root / "out")
    # Killed after its last checkpoint, before writing results: resumable.
    shutil.copytree(runs / "finished", runs / "interrupted")
    for name in RESULT_FILES:
        (runs / "interrupted" / name).unlink()
    shutil.copytree(runs / "interrupted", runs / "no-checkpoint")
    (runs / "no-checkpoint" / "checkpoint.pt").unlink()
    shutil.copytree(runs / "interrupted", runs / "mixed")
    state = checkpoint.load(checkpoint.verify(runs / "mixed", CHECKPOINT_FORMAT))
    state["setting_name"], state["method_name"] = "pa.incremental", "dpo_lora"
    checkpoint.save(runs / "mixed", state, phase=2, file_format=CHECKPOINT_FORMAT)
    shutil.copytree(runs / "interrupted", runs / "damaged")
    raw = bytearray((runs / "damaged" / "checkpoint.pt").read_bytes())
    raw[len(raw) // 2] ^= 1
    (runs / "damaged" / "checkpoint.pt").write_bytes(raw)
    shutil.copytree(runs / "interrupted", runs / "empty-checkpoint")
    (runs / "empty-checkpoint" / "checkpoint.pt").write_bytes(b"")
    shutil.copytree(runs / "interrupted", runs / "damaged-metrics")
    metrics = runs / "damaged-metrics" / "metrics.jsonl"
    metrics.write_bytes(metrics.read_bytes()[:100])
    shutil.copytree(runs / "interrupted", runs / "edited")
    config = runs / "edited" / "config.yaml"
    config.write_text(config.read_text().replace("nb_tasks: 2", "nb_tasks: 3"))
    (root / "models" / "empty").mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("errors"))


def test_the_table_covers_at_least_25_bad_inputs():
    rows = table_rows()
    assert len(rows) >= 25
    assert [int(number) for number, *_ in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize("number,what,command,message", table_rows(), ids=lambda v: v if str(v).isdigit() else "")
def test_bad_input_gives_its_message(number, what, command, message, workspace, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    before = snapshot(workspace)
    code = main(shlex.split(command)[1:])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err
    line = err.rstrip("\n")
    expected = f"sequoia: error: {message}"
    if message.endswith(" ..."):
        assert line.startswith(expected.removesuffix(" ...")), line
    else:
        assert line == expected
    assert snapshot(workspace) == before, "a bad input wrote or changed a file"


TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_test_the_table_of_other_inputs_names_exists():
    text = TABLE.read_text().split("## Inputs that are not a command line", 1)[1]
    references = TEST_REFERENCE.findall(text)
    assert len(references) >= 10
    for path, name in references:
        assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.MULTILINE), f"{path}::{name}"
