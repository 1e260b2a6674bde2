"""The training monitor: counts steps, checks losses and forwards metrics to the loggers.

Every gradient step of every learner goes through :meth:`TrainingMonitor.check_loss`,
which is where a non-finite loss stops the run (before the optimizer step, so the
weights stay finite) with a message that names the task and the step.

Example:
    >>> import torch
    >>> monitor = TrainingMonitor()
    >>> monitor.enter_phase(1, task_id=0)
    >>> float(monitor.check_loss(torch.tensor(0.25)))
    0.25
    >>> monitor.check_loss(torch.tensor(float("nan")))
    Traceback (most recent call last):
    ...
    sequoia.errors.NonFiniteLossError: the loss became nan at task 0 (phase 1), step 2; try a lower --learner.lr
"""

from __future__ import annotations

import math

import torch

from sequoia.console import raise_if_signalled
from sequoia.errors import NonFiniteLossError
from sequoia.runs import faults
from sequoia.runs.loggers import MetricsLogger


class TrainingMonitor:
    """Where the run is (phase, task, step) and what it reports.

    Attributes:
        phase: 0 before training, ``i`` while training phase ``i`` (task ``i - 1`` in incremental levels).
        task_id: the task of the current phase, ``None`` when unknown or mixed.
        step: gradient steps since the run started (the x-axis of logged curves).
        phase_step: gradient steps since the current phase started.
        log_every: log the training loss every this many steps.
    """

    def __init__(self, loggers: list[MetricsLogger] | None = None, log_every: int = 1) -> None:
        self.loggers = loggers or []
        self.log_every = log_every
        self.phase, self.task_id, self.step, self.phase_step = 0, None, 0, 0
        self.fault = faults.planned()  # a deliberate failure, for tests; None otherwise

    def where(self) -> str:
        """The current position in words, for messages."""
        task = "mixed tasks" if self.task_id is None else f"task {self.task_id}"
        return f"{task} (phase {self.phase}), step {self.phase_step}"

    def enter_phase(self, phase: int, task_id: int | None) -> None:
        self.phase, self.task_id, self.phase_step = phase, task_id, 0

    def check_loss(self, loss: torch.Tensor, name: str = "loss") -> torch.Tensor:
        """Count a step; raise :class:`NonFiniteLossError` if ``loss`` is NaN or infinite; log it.

        ``name`` says what the value is where a learner cannot see its loss (the SB3
        learners check their gradient norm): it is in the message and the logged key.
        """
        raise_if_signalled()  # an interrupt a library swallowed while loading still ends the run here
        self.step += 1
        self.phase_step += 1
        if self.fault is not None:
            loss = self.fault.at_step(self.phase, self.phase_step, loss)
        value = float(loss)
        if not math.isfinite(value):
            raise NonFiniteLossError(f"the {name} became {value} at {self.where()}; try a lower --learner.lr")
        if self.loggers and self.step % self.log_every == 0:
            self.log({f"train/{name.replace(' ', '_')}": value})
        return loss

    def fault_point(self, place: str) -> None:
        """Where a test may kill the run outside training steps (``evaluate``), and a swallowed interrupt ends it."""
        raise_if_signalled()
        if self.fault is not None:
            self.fault.at(place, self.phase)

    def log(self, metrics: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.log(metrics, step=self.step, phase=self.phase)

    def sync_logs(self) -> None:
        """Put every logger's lines on disk."""
        for logger in self.loggers:
            logger.sync()

    def state(self) -> dict[str, int]:
        return {"step": self.step}

    def load_state(self, state: dict[str, int]) -> None:
        self.step = state["step"]
