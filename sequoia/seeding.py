"""One place that seeds every random number generator a run uses."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that a run with the same seed repeats exactly.

    Example:
        >>> seed_everything(0); a = torch.rand(1)
        >>> seed_everything(0); bool(torch.equal(a, torch.rand(1)))
        True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def derived_generator(offset: int = 0) -> torch.Generator:
    """A torch generator seeded from the global torch RNG, so it follows the run's seed.

    Components (replay buffers, data shufflers) own one of these so that their draws
    do not depend on how many random numbers other components consumed.
    """
    seed = int(torch.randint(0, 2**62, (1,)).item()) + offset
    return torch.Generator().manual_seed(seed)
