"""Learners: the base trainers (one or more per domain) that methods wrap.

Each domain's setting names its default (``Setting.default_learner``): ``classifier``
for SL, ``dpo_lora`` for PA, ``dqn`` for RL; ``sequoia list`` shows them all. The RL
domain also has Stable-Baselines3's ``sac``, ``ppo`` and ``sb3_dqn``.
"""

from sequoia.learners.base import Learner, Plugin
from sequoia.learners.classifier import Classifier
from sequoia.learners.dpo import DPOLoRA
from sequoia.learners.dqn import DQN
from sequoia.learners.sb3_algorithms import PPO, SAC, SB3DQN
from sequoia.learners.sft import LoRASFT

__all__ = ["DQN", "PPO", "SAC", "SB3DQN", "Classifier", "DPOLoRA", "Learner", "LoRASFT", "Plugin"]
