"""torchvision importable where its compiled operators cannot load.

A torchvision wheel built for another variant of the same torch (PyPI's CUDA wheel beside
a CPU-only torch, say) cannot load its compiled operators. torchvision 0.28 then still
imports everything else, except that two of its fake-tensor registrations (``nms`` and
``qnms``) are not guarded and raise ``operator torchvision::nms does not exist``
(pytorch/vision#9337; the fix proposed upstream guards them, pytorch/vision#9649). Every
library that imports torchvision when it is installed then fails too: Avalanche, and
transformers (whose image utilities import it).

:func:`install` (called when ``sequoia`` is imported; it imports nothing) puts a finder
first on ``sys.meta_path`` that, the first time torchvision is imported, tries to load its
compiled operators as torchvision would; only where that fails it declares the two
operators' schemas, so that torchvision imports as the upstream fix intends: its
detection operators say they are missing when called, and nothing else changes.

Example:
    >>> import sys
    >>> install(); install()
    >>> sum(isinstance(finder, _PrepareTorchvision) for finder in sys.meta_path) <= 1
    True
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

# The schemas of the two operators torchvision registers fakes for without checking them.
_UNGUARDED_OPERATORS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_declared: list = []  # the torch library fragment, kept alive (its definitions go with it)


class _PrepareTorchvision(importlib.abc.MetaPathFinder):
    """Prepares torch for torchvision's first import, then steps aside (it finds nothing itself)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)  # once, and before find_spec below looks for torchvision again
            prepare()
        return None


def install() -> None:
    """Prepare torchvision's first import (once; nothing is imported now)."""
    if "torchvision" in sys.modules or any(isinstance(f, _PrepareTorchvision) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _PrepareTorchvision())


def prepare() -> bool:
    """Load torchvision's compiled operators, or declare the two unguarded ones; ``True`` if declared."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations or _declared:
        return False
    import torch

    compiled = sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C.*"))
    try:
        torch.ops.load_library(str(compiled[0]))
        return False  # they load: torchvision registers its fakes on real operators
    except (IndexError, OSError):
        pass
    fragment = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _UNGUARDED_OPERATORS:
        fragment.define(schema)
    _declared.append(fragment)
    return True
