"""Avalanche's supervised strategies as sequoia methods (``--method avalanche.<strategy>``).

The methods register without Avalanche installed (``sequoia list`` shows them);
running one without it is a one-line error naming the ``avalanche`` extra.
See :mod:`sequoia.methods.avalanche.adapter` for how a strategy is driven and
docs/methods/avalanche.md for the list, the applicability and the cross-checks.
"""

from sequoia.methods.avalanche import strategies  # noqa: F401  (registers the methods)
