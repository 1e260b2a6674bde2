"""Runs that survive crashes: checkpoints, resuming, metric logs and deliberate faults for tests."""

from sequoia.runs.run import LoopState, Run, describe

__all__ = ["LoopState", "Run", "describe"]
