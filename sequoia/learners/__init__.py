"""Learners: the base trainers (one or more per domain) that methods wrap."""

from sequoia.learners.base import Learner, Plugin
from sequoia.learners.classifier import Classifier

__all__ = ["Classifier", "Learner", "Plugin"]
