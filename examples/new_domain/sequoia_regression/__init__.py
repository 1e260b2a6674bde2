"""Continual regression on drifting synthetic functions: a sequoia domain from a package of its own.

Task ``t`` is the function ``y = sin(x + t * shift)`` on ``x`` in ``[-pi, pi]``: every task
shares the inputs and the later ones move the curve, so a model fitted to one task is
wrong on the others, and its error there rises (forgetting, in a lower-is-better metric).
"""

from sequoia_regression.learner import Regressor
from sequoia_regression.protocol import Regresses
from sequoia_regression.setting import RegressionData, RegressionSetting, RegressionView

__all__ = ["RegressionData", "RegressionSetting", "RegressionView", "Regresses", "Regressor"]
