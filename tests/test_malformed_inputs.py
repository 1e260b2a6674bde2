"""Property tests: any malformed preference file or config file gets the one-line contract.

Hypothesis writes files that are broken in ways nobody listed (bytes that are not
UTF-8, JSON of the wrong shape at any row, wrong types under known keys, YAML
aliases, NaNs, deep nesting). For each, ``sequoia`` must exit with 2, print one
line on stderr without a traceback, and leave the scratch directory unchanged.
Each generated file is malformed by construction (it holds at least one row or
key that no reader accepts), so none of them starts a run.
"""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequoia.cli import main
from tests.conftest import snapshot

EXAMPLES = 200

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4)), max_leaves=12)
good_row = st.builds(lambda p, c, r: json.dumps({"prompt": p, "chosen": c, "rejected": r}),
                     st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30),
                     st.text(min_size=1, max_size=30))
# Rows no reader accepts: broken JSON, JSON that is not an object, objects without
# a reply pair or with replies of the wrong type, bytes that are not UTF-8, nesting
# past the parser's limit.
bad_row = st.one_of(
    st.text(min_size=1, max_size=40).filter(lambda text: _not_json(text)),
    json_values.filter(lambda value: not isinstance(value, dict)).map(json.dumps),
    st.dictionaries(st.text(max_size=8).filter(lambda key: key not in ("chosen", "rejected")), json_values,
                    max_size=4).map(json.dumps),
    st.builds(lambda c, r: json.dumps({"prompt": "p", "chosen": c, "rejected": r}),
              json_values.filter(lambda v: not isinstance(v, (str, list))), json_values),
    st.integers(min_value=2000, max_value=50_000).map(lambda depth: "[" * depth + "]" * depth),
).map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(min_size=1, max_size=8).map(
    lambda raw: b"\xff" + raw)  # not UTF-8


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return bool(text.strip())
    return False


@st.composite
def preference_files(draw) -> bytes:
    rows = [row.encode("utf-8", "surrogatepass") for row in draw(st.lists(good_row, max_size=4))]
    rows.insert(draw(st.integers(0, len(rows))), draw(bad_row))
    return b"\n".join(rows) + b"\n"


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12),
                         st.sampled_from([".nan", ".inf", "-.inf", "1e999", "~", "'5'"]))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                 st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=3)), max_leaves=8)


@st.composite
def config_files(draw) -> bytes:
    """A config whose ``setting`` is never a valid one, with any other keys around it."""
    bad_setting = draw(st.one_of(
        yaml_values.filter(lambda v: not isinstance(v, dict)),
        st.dictionaries(st.text(max_size=8), yaml_values, max_size=3).filter(lambda d: "name" not in d),
        # a name no setting has: not text, or text with a "?" in it
        st.builds(lambda name, rest: {**rest, "name": name},
                  yaml_values.filter(lambda v: not isinstance(v, str)) | st.text(max_size=12).map(lambda t: t + "?"),
                  st.dictionaries(st.text(max_size=8), yaml_values, max_size=2)),
    ))
    others = draw(st.dictionaries(st.sampled_from(["method", "learner", "seed", "loggers", "extra"]), yaml_values,
                                  max_size=3))
    lines = [f"setting: {json.dumps(bad_setting)}"] + [f"{key}: {json.dumps(value)}" for key, value in others.items()]
    text = "\n".join(lines) + "\n"
    anchor = draw(st.sampled_from(["", "x: &a [1, 2]\ny: *a\n", "z: *missing\n", "\t- tab\n", ": :\n"]))
    raw = (text + anchor).encode("utf-8", "surrogatepass")
    return draw(st.sampled_from([raw, raw, raw, b"\xfe\xff" + raw]))


def _one_line_refusal(arguments: list[str], name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / name).write_bytes(content)
        before = snapshot(root)
        err = io.StringIO()
        cwd = os.getcwd()
        os.chdir(root)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(arguments)
        finally:
            os.chdir(cwd)
        text = err.getvalue()
        assert code == 2, (content[:300], text)
        assert text.startswith("sequoia: error: ") and text.count("\n") == 1 and "Traceback" not in text, text
        assert snapshot(root) == before, "a malformed input wrote or changed a file"


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(preference_files())
def test_a_malformed_preference_file_is_one_line(content):
    _one_line_refusal(["--setting", "pa.incremental", "--method", "dpo_lora", "--preset", "smoke",
                       "--setting.tasks", "task.jsonl"], "task.jsonl", content)


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(config_files())
def test_a_malformed_config_file_is_one_line(content):
    _one_line_refusal(["--config", "config.yaml"], "config.yaml", content)
