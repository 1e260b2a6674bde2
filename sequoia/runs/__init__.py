"""Runs that survive crashes: checkpoints, resuming, metric logs and deliberate faults for tests."""

from typing import Any

from sequoia.runs.run import LoopState, Run

__all__ = ["LoopState", "Run", "describe"]


def __getattr__(name: str) -> Any:
    """``describe`` (the schema of ``config.yaml``, in :mod:`sequoia.experiment`), loaded on first use: importing
    it here eagerly would load the registry whenever the monitor of this package is imported."""
    if name == "describe":
        from sequoia.experiment import describe

        return describe
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
