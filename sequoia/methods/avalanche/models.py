"""Model classes some Avalanche strategies ask for; imported only once Avalanche is."""

import torch
from avalanche.models.base_model import BaseModel


class FeatureSequential(torch.nn.Sequential, BaseModel):
    """The SL classifier's layers, with Avalanche's ``get_features``: the output of every layer but the last.

    Built from the classifier's own modules, so it trains the same parameters (LFL needs it).

    Example:
        >>> body = FeatureSequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        >>> body.get_features(torch.zeros(5, 2, 2)).shape
        torch.Size([5, 3])
    """

    def get_features(self, x: torch.Tensor) -> torch.Tensor:
        return self[:-1](x)
