"""How a tuning keeps away from what the tuned configuration is evaluated on.

A protocol says which options a tuning trial runs with, and which the evaluation
runs of the chosen configuration take (``best.yaml``):

* ``first_tasks`` (Chaudhry et al. 2019, "Efficient Lifelong Learning with A-GEM",
  section 5: the first tasks of the stream are for cross-validation, the rest for
  evaluation): trials run on the first ``K`` tasks of the sequence
  (``setting.task_slice: ":K"``); the evaluation runs on the others (``"K:"``), which
  no trial ever trained on or scored.
* ``validation`` (mammoth's ``--validation PCT``: a percentage of each class's training
  samples is the validation set, scored instead of the test set): trials run the
  whole sequence, but every evaluation scores items held out of each task's training
  data (``setting.evaluate_on: validation``); no trial scores a test item. The
  evaluation runs use the test items (and train on all the training items).

Example:
    >>> protocol = Protocol("first_tasks", tuning_tasks=2)
    >>> protocol.trial_options(), protocol.evaluation_options()
    ({'setting.task_slice': ':2'}, {'setting.task_slice': '2:'})
    >>> Protocol("validation").trial_options()
    {'setting.evaluate_on': 'validation'}
"""

from __future__ import annotations

from dataclasses import dataclass

from sequoia.errors import SequoiaError

PROTOCOLS = ("first_tasks", "validation")
PROTOCOL_OPTIONS = ("setting.task_slice", "setting.evaluate_on")
"""The options protocols set: a tuning that fixes or tunes them itself is refused."""


@dataclass(frozen=True)
class Protocol:
    """A protocol by name; ``tuning_tasks`` is ``first_tasks``'s ``K``."""

    name: str
    tuning_tasks: int = 1

    def check(self, options: set[str]) -> None:
        """Refuse an unknown protocol, a bad ``K``, and ``options`` (fixed or tuned) that the protocol sets."""
        if self.name not in PROTOCOLS:
            raise SequoiaError(f"--protocol {self.name}: unknown protocol; expected one of {', '.join(PROTOCOLS)}")
        if isinstance(self.tuning_tasks, bool) or not isinstance(self.tuning_tasks, int) or self.tuning_tasks < 1:
            raise SequoiaError(f"--tuning-tasks {self.tuning_tasks!r}: expected a whole number of tasks, at least 1")
        taken = sorted(options & set(PROTOCOL_OPTIONS))
        if taken:
            raise SequoiaError(f"--{taken[0]} is what --protocol {self.name} sets for the trials and the evaluation; "
                               "leave it out of the options and the space")

    def trial_options(self) -> dict[str, str]:
        """What every tuning trial runs with, on top of the fixed options and the drawn values."""
        if self.name == "first_tasks":
            return {"setting.task_slice": f":{self.tuning_tasks}"}
        return {"setting.evaluate_on": "validation"}

    def evaluation_options(self) -> dict[str, str]:
        """What the evaluation runs of the chosen configuration run with."""
        if self.name == "first_tasks":
            return {"setting.task_slice": f"{self.tuning_tasks}:"}
        return {}
