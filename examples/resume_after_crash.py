"""Checkpoints from Python: a run killed in its second task resumes to the results of a run never killed.

The first attempt runs in a child process that kills itself with SIGKILL in the
middle of task 1 (through the test hook ``SEQUOIA_FAULT``; a power cut or an
out-of-memory killer would do the same). The parent then rebuilds the same setting
and method, resumes from the run directory's last checkpoint, and compares with an
uninterrupted run. On the command line the same is ``sequoia --resume RUN_DIR``.

    python examples/resume_after_crash.py
"""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sequoia.learners import Classifier
from sequoia.methods.ewc import EWC
from sequoia.runs import Run, describe
from sequoia.settings.sl import IncrementalSLSetting

SEED = 0


def build():
    """The experiment: EWC on three class-incremental digit tasks."""
    return IncrementalSLSetting(nb_tasks=3), EWC(ewc_lambda=100.0).use_learner(Classifier(epochs=3))


def first_attempt(output: str) -> None:
    setting, method = build()
    setting.apply(method, seed=SEED, progress=False, run=Run.new(output, describe(setting, method, SEED)))


def main() -> None:
    output = tempfile.mkdtemp(prefix="sequoia-resume-")
    child = subprocess.run([sys.executable, __file__, "--first-attempt", output],
                           env={**os.environ, "SEQUOIA_FAULT": "kill@phase=2,step=10"})
    print(f"first attempt killed by SIGKILL: {child.returncode == -signal.SIGKILL}")
    [config] = Path(output).rglob("config.yaml")
    run_dir = config.parent
    print(f"left behind: {sorted(p.name for p in run_dir.iterdir())}")

    setting, method = build()
    resumed = setting.apply(method, seed=SEED, progress=False, run=Run.resume(run_dir))
    setting, method = build()
    uninterrupted = setting.apply(method, seed=SEED, progress=False)
    print(resumed.matrix.format())
    same = np.array_equal(resumed.matrix.values, uninterrupted.matrix.values)
    print(f"resumed run equals the uninterrupted run: {same}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--first-attempt"]:
        first_attempt(sys.argv[2])
    else:
        main()
