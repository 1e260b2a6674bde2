"""The options of a PA run's evaluation beyond the preference pairs: ``--eval.*``.

They form the ``eval`` group of the command line and of ``config.yaml``. From Python,
give them to a setting with ``setting.use_options("eval", PAEvaluation(...))``.

Example:
    >>> from sequoia.settings.pa import IncrementalPASetting
    >>> setting = IncrementalPASetting(model="tiny-random")
    >>> setting.evaluation.capability
    'mmlu,truthfulqa_mc1,text_nll'
    >>> setting.use_options("eval", PAEvaluation(capability="text_nll", capability_items=16))
    >>> setting.evaluation.capability_items
    16
"""

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.errors import SequoiaError
from sequoia.options import CommaSeparated


@dataclass
class PAEvaluation:
    """What a PA run measures beyond its tasks' test pairs.

    Capability probes, held-out preference sets and scored generations run before
    training and after each phase; lm-eval tasks run once, after the last phase.
    """

    capability: CommaSeparated = "mmlu,truthfulqa_mc1,text_nll"
    """Comma-separated capability probes (mmlu, truthfulqa_mc1, text_nll), or `none`."""
    capability_items: Annotated[int, Field(ge=0, le=100_000)] = 24
    """Items per probe, the first of each shipped subset (0: all of it: 228 MMLU, 200 TruthfulQA, 122 texts)."""
    test_tasks: CommaSeparated = ""
    """Comma-separated preference task specs scored after every phase but never trained on (their test pairs)."""
    reward_model: str = ""
    """A Hugging Face sequence-classification reward model (hub name or local path) that scores generated replies."""
    reward_prompts: Annotated[int, Field(gt=0, le=100_000)] = 16
    """Test prompts per task whose replies the reward model scores."""
    sample_kl: bool = True
    """With a reward model: also estimate the KL to the base model on sampled replies."""
    lm_eval_tasks: CommaSeparated = ""
    """Comma-separated lm-eval harness tasks to run after training (needs `pip install sequoia[lm_eval]`)."""
    lm_eval_include_path: str = ""
    """A directory of extra lm-eval task YAML files (local tasks)."""
    lm_eval_limit: Annotated[int, Field(ge=0, le=100_000_000)] = 0
    """Documents per lm-eval task (0: all)."""

    def lm_eval_task_names(self) -> list[str]:
        """The lm-eval tasks to run, by name."""
        return [task.strip() for task in self.lm_eval_tasks.split(",") if task.strip()]

    def __post_init__(self) -> None:
        from sequoia.settings.pa.capability import parse_probe_names

        parse_probe_names(self.capability)  # a misspelt probe fails before anything runs
        if self.lm_eval_include_path and not Path(self.lm_eval_include_path).is_dir():
            raise SequoiaError(f"--eval.lm_eval_include_path {self.lm_eval_include_path} is not a directory "
                               "(expected one holding lm-eval task YAML files)")
        if self.lm_eval_include_path and not self.lm_eval_tasks:
            raise SequoiaError("--eval.lm_eval_include_path is set but --eval.lm_eval_tasks names no task to run")
