"""Where training and evaluation metrics go as a run proceeds.

``metrics.jsonl`` in the run directory is always written: one JSON object per line,
``{"step": ..., "phase": ..., "train/loss": ...}`` for training steps and
``{"step": ..., "phase": ..., "eval/<metric>/task_0": ..., "eval/<metric>/mean": ...}``
after each evaluation. TensorBoard and
Weights & Biases are optional (``pip install sequoia[tensorboard]`` / ``[wandb]``),
chosen with ``--loggers tensorboard,wandb``. Runs resumed from a checkpoint
continue the same files.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "metrics.jsonl"
    >>> logger = JsonlLogger(path)
    >>> logger.log({"train/loss": 0.5}, step=1, phase=1)
    >>> json.loads(path.read_text())
    {'step': 1, 'phase': 1, 'train/loss': 0.5}
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from sequoia.errors import SequoiaError, summary

OPTIONAL_LOGGERS = ("tensorboard", "wandb")


class MetricsLogger:
    """Receives metrics; every hook defaults to a no-op."""

    def log(self, metrics: dict[str, float], step: int, phase: int) -> None:
        """Record ``metrics`` at global training ``step`` during ``phase``."""

    def sync(self) -> None:
        """Put what was logged on disk (before a checkpoint counts it)."""

    def close(self) -> None:
        """Flush and release files."""


class JsonlLogger(MetricsLogger):
    """One JSON line per call, flushed at once so that a killed run keeps what it logged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("a", encoding="utf-8")

    def log(self, metrics: dict[str, float], step: int, phase: int) -> None:
        self.handle.write(json.dumps({"step": step, "phase": phase, **metrics}) + "\n")
        self.handle.flush()

    def sync(self) -> None:
        # fsync only here, once per checkpoint: on every line it would cost a disk
        # round trip per training step.
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


class TensorBoardLogger(MetricsLogger):
    """Scalars for TensorBoard under ``<run>/tensorboard``; a resumed run drops events after its checkpoint."""

    def __init__(self, directory: Path, resume_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(directory), purge_step=resume_step or None)

    def log(self, metrics: dict[str, float], step: int, phase: int) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger(MetricsLogger):
    """A Weights & Biases run stored under ``<run>/wandb``; resuming continues the same wandb run.

    Set ``WANDB_MODE=offline`` to log without an account (sync later with ``wandb sync``).
    """

    def __init__(self, directory: Path, run_id: str, config: dict[str, Any]) -> None:
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(project="sequoia", dir=str(directory), id=run_id, resume="allow", config=config)
        except Exception as error:  # noqa: BLE001 - wandb fails in many types (no key, no network)
            raise SequoiaError(f"logger 'wandb' could not start ({summary(error)}); "
                               "log in with `wandb login`, or set WANDB_MODE=offline to log on this machine "
                               "(and `wandb sync` later)") from None

    def log(self, metrics: dict[str, float], step: int, phase: int) -> None:
        self.run.log({**metrics, "phase": phase}, step=step)

    def close(self) -> None:
        self.run.finish()


def check_logger_names(names: list[str]) -> None:
    """Raise a one-line error for an unknown or uninstalled optional logger."""
    for name in names:
        if name not in OPTIONAL_LOGGERS:
            raise SequoiaError(f"unknown logger {name!r}; choose from {', '.join(OPTIONAL_LOGGERS)} "
                               "(metrics.jsonl is always written)")
        module = "torch.utils.tensorboard" if name == "tensorboard" else "wandb"
        try:
            __import__(module)
        except ImportError as error:
            raise SequoiaError(f"logger {name!r} needs `pip install {name}` ({error})") from error


def make_loggers(names: list[str], run_dir: Path, resume_step: int, config: dict[str, Any]) -> list[MetricsLogger]:
    """The JSONL logger plus the optional ones named, all writing into ``run_dir``."""
    loggers: list[MetricsLogger] = [JsonlLogger(run_dir / "metrics.jsonl")]
    try:
        if "tensorboard" in names:
            loggers.append(TensorBoardLogger(run_dir / "tensorboard", resume_step))
        if "wandb" in names:
            # The id follows the directory, so a resumed run continues its wandb run.
            run_id = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]
            loggers.append(WandbLogger(run_dir, run_id=run_id, config=config))
    except SequoiaError:
        for logger in loggers:
            logger.close()
        raise
    return loggers
