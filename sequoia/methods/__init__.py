"""The built-in methods. Importing this package registers them."""

from sequoia.methods import avalanche  # noqa: F401  (registers the avalanche.* methods)
from sequoia.methods.agem import AGEM
from sequoia.methods.base import Method
from sequoia.methods.elastic_reset import ElasticReset
from sequoia.methods.ewc import EWC
from sequoia.methods.experts import Experts
from sequoia.methods.learner_method import LearnerMethod
from sequoia.methods.lwf import LwF
from sequoia.methods.merge import Merge
from sequoia.methods.naive import Naive
from sequoia.methods.preference import DPOLoRAMethod, LoRASFTMethod
from sequoia.methods.replay import Replay
from sequoia.methods.si import SI

__all__ = ["AGEM", "DPOLoRAMethod", "ElasticReset", "EWC", "Experts", "LearnerMethod", "LoRASFTMethod", "LwF", "Merge", "Method",
           "Naive", "Replay", "SI"]
