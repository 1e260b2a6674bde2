"""The built-in methods. Importing this package registers them."""

from sequoia.methods.base import Method
from sequoia.methods.ewc import EWC
from sequoia.methods.learner_method import LearnerMethod
from sequoia.methods.naive import Naive
from sequoia.methods.preference import DPOLoRAMethod, LoRASFTMethod
from sequoia.methods.replay import Replay

__all__ = ["DPOLoRAMethod", "EWC", "LearnerMethod", "LoRASFTMethod", "Method", "Naive", "Replay"]
