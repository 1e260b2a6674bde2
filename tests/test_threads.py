"""The thread policy: small models on one thread, large ones on their share of the cores, overrides first."""

import torch

from sequoia.threads import SMALL_MODEL, WORKERS_VARIABLE, ThreadPolicy, choose


def test_small_models_get_one_thread_and_large_ones_their_share_of_the_cores():
    assert choose(SMALL_MODEL - 1, workers=1, cores=16) == 1
    assert choose(None, workers=1, cores=16) == 1
    assert choose(SMALL_MODEL, workers=1, cores=16) == 16
    assert choose(SMALL_MODEL, workers=3, cores=16) == 5
    assert choose(SMALL_MODEL, workers=32, cores=16) == 1


def test_threads_given_win_then_omp_num_threads_then_the_rule(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert ThreadPolicy(threads=2).count(10**9) == 2
    assert ThreadPolicy().count(10**9) is None  # torchrun's setting is kept
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv(WORKERS_VARIABLE, "2")
    monkeypatch.setattr("sequoia.threads.available_cores", lambda: 4)
    assert ThreadPolicy().count(10**9) == 2 and ThreadPolicy().count(10) == 1


def test_a_run_applies_the_threads_asked_for(tmp_path):
    from sequoia.cli import main

    before = torch.get_num_threads()
    try:
        assert main(["--setting", "sl.incremental", "--method", "naive", "--setting.nb_tasks", "2",
                     "--learner.epochs", "1", "--threads", "2", "--output", str(tmp_path), "--quiet"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
