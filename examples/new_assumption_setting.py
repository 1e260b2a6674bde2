"""Add a node to the setting tree and run the existing methods on it, unchanged.

`RotatedDigitsSetting` is a child of `sl.domain_incremental`: it keeps every
assumption of its parent (shared label space, boundaries signalled, task ids in
training) and adds one: the shift between tasks is a rotation of the image.
Because it is an instance of its parent, every method that applies to the parent
(naive, replay, ewc, lwf, agem, si, experts) applies to it without a line of change;
so do Avalanche's strategies (`avalanche.*`, with the `avalanche` extra), run with
`--include-avalanche`.

    python examples/new_assumption_setting.py [--angle 30] [--nb-tasks 4] [--seed 0] [--include-avalanche]
"""

import argparse
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass
from scipy.ndimage import rotate

from sequoia import register_setting
from sequoia.registry import methods
from sequoia.settings.sl import DomainIncrementalSLSetting


@register_setting  # makes it `sl.rotated_domain_incremental` on the command line too
@dataclass
class RotatedDigitsSetting(DomainIncrementalSLSetting):
    """Domain-incremental digits where task ``t`` rotates every image by ``t * angle`` degrees.

    Example:
        >>> RotatedDigitsSetting(angle=45.0).qualified_name()
        'sl.rotated_domain_incremental'
    """

    level: ClassVar[str] = "rotated_domain_incremental"

    angle: Annotated[float, Field(gt=0, lt=360)] = 30.0
    """Rotation added by each task, in degrees."""

    def input_transform(self, task, image_shape):
        degrees = task * self.angle
        return lambda x: rotate(x, degrees, axes=(1, 2), reshape=False, order=1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--angle", type=float, default=30.0)
    parser.add_argument("--nb-tasks", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--include-avalanche", action="store_true", help="also run the avalanche.* methods")
    args = parser.parse_args()

    setting = RotatedDigitsSetting(angle=args.angle, nb_tasks=args.nb_tasks)
    for name, method_cls in sorted(methods().items()):
        if not method_cls.is_applicable(setting) or (name.startswith("avalanche.") and not args.include_avalanche):
            continue
        results = setting.apply(method_cls(), seed=args.seed, progress=False)
        print(f"{name:>8}: average final accuracy {results.matrix.average_final():.3f}, "
              f"average forgetting {results.matrix.average_forgetting():.3f}")


if __name__ == "__main__":
    main()
