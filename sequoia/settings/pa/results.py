"""The results of a preference-alignment run: the generic results, with the capability probes named as such.

Example:
    >>> from sequoia.results import TransferMatrix
    >>> from sequoia.settings.pa.capability import probe_spec
    >>> r = PreferenceResults("pa.incremental", "dpo_lora", TransferMatrix([[0.5], [0.6]]),
    ...                       matrices={"capability_mmlu": [[0.40], [0.35]], "capability_text_nll": [[2.0], [2.5]]},
    ...                       specs={"capability_mmlu": probe_spec("mmlu"), "capability_text_nll": probe_spec("text_nll")})
    >>> r.capability
    {'mmlu': True, 'text_nll': False}
    >>> {name: round(tax, 2) for name, tax in r.alignment_tax().items()}
    {'mmlu': 0.05, 'text_nll': 0.5}
"""

from __future__ import annotations

from typing import Any, ClassVar

from sequoia.results import Results

PROBE_PREFIX = "capability_"


class PreferenceResults(Results):
    """:class:`~sequoia.results.Results` whose one-column matrices ``capability_<probe>`` are capability probes.

    A probe's ``alignment_tax_<probe>`` (its spec's ``lost`` summary) is what the base model
    (row 0) could do and the final model no longer does: ``base - final``, or ``final - base``
    for a loss, so that a positive tax is always a loss of capability.
    """

    probe_title: ClassVar[str] = "capability"

    @property
    def capability(self) -> dict[str, bool]:
        """The capability probes this run scored, each with whether higher is better."""
        return {name.removeprefix(PROBE_PREFIX): spec.higher_is_better for name, spec in self.all_specs().items()
                if name.startswith(PROBE_PREFIX) and name in self.matrices}

    def alignment_tax(self) -> dict[str, float]:
        """Per probe, the capability lost from row 0 to the last row (positive: lost)."""
        return {probe: self._matrix_of(PROBE_PREFIX + probe).lost() for probe in self.capability}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(),
                "capability": {probe: {"higher_is_better": higher, "matrix": PROBE_PREFIX + probe}
                               for probe, higher in self.capability.items()}}
