"""Learners: the base trainers (one or more per domain) that methods wrap.

Each domain's setting names its default (``Setting.default_learner``): ``classifier``
for SL, ``dpo_lora`` for PA, ``dqn`` for RL; ``sequoia list`` shows them all.
"""

from sequoia.learners.base import Learner, Plugin
from sequoia.learners.classifier import Classifier
from sequoia.learners.dpo import DPOLoRA
from sequoia.learners.dqn import DQN
from sequoia.learners.sft import LoRASFT

__all__ = ["DQN", "Classifier", "DPOLoRA", "Learner", "LoRASFT", "Plugin"]
