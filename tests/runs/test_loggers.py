"""Metric logs: metrics.jsonl always, TensorBoard and wandb (offline) when asked for."""

import json

import pytest

from sequoia.cli import main

RUN = ["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2", "--learner.epochs", "1",
       "--quiet"]


def run_dir(root):
    [config] = root.rglob("config.yaml")
    return config.parent


def test_jsonl_has_every_step_and_every_evaluation(tmp_path):
    assert main([*RUN, "--output", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in (run_dir(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "train/loss" in line]
    evaluations = [line for line in lines if "eval/accuracy/mean" in line]
    assert [line["step"] for line in steps] == list(range(1, len(steps) + 1))
    assert {line["phase"] for line in steps} == {1, 2}
    assert [line["phase"] for line in evaluations] == [0, 1, 2]
    results = json.loads((run_dir(tmp_path) / "results.json").read_text())
    assert [line["eval/accuracy/task_1"] for line in evaluations] == [row[1] for row in results["transfer_matrix"]]


def test_tensorboard_gets_the_same_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main([*RUN, "--output", str(tmp_path), "--loggers", "tensorboard"]) == 0
    events = EventAccumulator(str(run_dir(tmp_path) / "tensorboard"))
    events.Reload()
    lines = [json.loads(line) for line in (run_dir(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    losses = [line["train/loss"] for line in lines if "train/loss" in line]
    assert [round(e.value, 5) for e in events.Scalars("train/loss")] == [round(v, 5) for v in losses]
    assert len(events.Scalars("eval/accuracy/mean")) == 3


def test_wandb_logs_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert main([*RUN, "--output", str(tmp_path), "--loggers", "wandb"]) == 0
    [offline_run] = (run_dir(tmp_path) / "wandb").glob("offline-run-*")
    assert list(offline_run.glob("*.wandb"))
    assert json.loads((run_dir(tmp_path) / "results.json").read_text())["setting"] == "sl.incremental"


def evaluations(root) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir(root) / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if any(key.startswith("eval/") for key in line)]


def test_wandb_that_cannot_start_is_one_line_and_leaves_no_run_directory(tmp_path, monkeypatch, capsys):
    wandb = pytest.importorskip("wandb")

    def no_account(**kwargs):
        raise wandb.errors.UsageError("No API key configured. Use `wandb login` to log in.")

    monkeypatch.setattr(wandb, "init", no_account)
    code = main(["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2",
                 "--learner.epochs", "1", "--loggers", "wandb", "--output", str(tmp_path), "--quiet"])
    assert code == 2
    assert capsys.readouterr().err == (
        "sequoia: error: logger 'wandb' could not start (UsageError: No API key configured. Use `wandb login` to "
        "log in.); log in with `wandb login`, or set WANDB_MODE=offline to log on this machine (and `wandb sync` "
        "later)\n")
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


def test_every_pa_metric_reaches_the_logs_at_each_evaluation(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert main(["--setting", "pa.incremental", "--method", "dpo_lora", "--preset", "smoke", "--quiet",
                 "--output", str(tmp_path), "--loggers", "tensorboard"]) == 0
    rows = evaluations(tmp_path)
    assert [row["phase"] for row in rows] == [0, 1, 2, 3]
    names = ("preference_accuracy", "mean_margin", "length_normalized_accuracy", "drift")
    for row in rows:
        assert all(f"eval/{name}/task_{j}" in row for name in names for j in range(3))
    results = json.loads((run_dir(tmp_path) / "results.json").read_text())
    assert [row["eval/drift/task_2"] for row in rows] == [r[2] for r in results["matrices"]["drift"]]
    events = EventAccumulator(str(run_dir(tmp_path) / "tensorboard"))
    events.Reload()
    for name in names:
        assert len(events.Scalars(f"eval/{name}/task_1")) == 4 and len(events.Scalars(f"eval/{name}/mean")) == 4


def test_the_rl_normalised_return_reaches_the_logs(tmp_path):
    assert main(["--setting", "rl.incremental", "--method", "naive", "--preset", "smoke", "--quiet",
                 "--setting.steps_per_task", "600", "--setting.test_episodes", "1", "--output", str(tmp_path)]) == 0
    rows = evaluations(tmp_path)
    assert len(rows) == 4 and all("eval/normalized_return/task_2" in row and "eval/mean_return/mean" in row
                                  for row in rows)
