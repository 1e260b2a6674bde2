"""The PA methods: LoRA-SFT and DPO-LoRA, trained task after task with nothing against forgetting.

They are ``naive`` with their learner fixed; ``replay`` and ``ewc`` wrap the same
learners (``--method replay --method.learner dpo_lora``).
"""

from typing import ClassVar

from pydantic.dataclasses import dataclass

from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.settings.base import Setting
from sequoia.settings.pa.setting import PreferenceSetting


@register_method
@dataclass
class DPOLoRAMethod(LearnerMethod):
    """Sequential DPO with LoRA adapters (Rafailov et al. 2023; Hu et al. 2021).

    Its options are the learner's (`--learner.beta`, `--learner.loss_type`, `--learner.reference`,
    `--learner.sft_steps`, `--learner.lora_rank`...).

    Example:
        >>> from sequoia.settings.pa import IncrementalPASetting
        >>> DPOLoRAMethod.is_applicable(IncrementalPASetting())
        True
    """

    name: ClassVar[str] = "dpo_lora"
    target_setting: ClassVar[type[Setting]] = PreferenceSetting

    learner: str = "dpo_lora"
    """The base learner (`dpo_lora`)."""


@register_method
@dataclass
class LoRASFTMethod(LearnerMethod):
    """Sequential supervised fine-tuning of LoRA adapters on the chosen replies.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> LoRASFTMethod.is_applicable(IncrementalSLSetting())
        False
    """

    name: ClassVar[str] = "lora_sft"
    target_setting: ClassVar[type[Setting]] = PreferenceSetting

    learner: str = "lora_sft"
    """The base learner (`lora_sft`)."""
