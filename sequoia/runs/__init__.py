"""Runs that survive crashes: checkpoints, resuming, metric logs and deliberate faults for tests."""

from sequoia.runs.run import LoopState, Run

__all__ = ["LoopState", "Run"]
