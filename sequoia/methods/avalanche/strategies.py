"""The wrapped strategies: one small class each, with Avalanche 0.6's options and defaults.

Each class names its strategy in ``avalanche.training`` and declares its options as
fields, named as in Avalanche, with Avalanche's default where Avalanche has one.
Where Avalanche has none (a required argument), the default here is stated as ours
in the field's help. ``tests/methods/test_avalanche.py`` checks every default
against the strategy's signature.

Applicability. A strategy that only keeps or replays data (and ``naive``) runs on
every SL setting: each ``fit`` call is one experience, so on the levels without
boundaries its buffer is updated at the end of each chunk of the stream. A strategy
that consolidates at the end of an experience (importance weights, an old model, a
consolidated layer) needs the boundaries to be real task boundaries, so it targets
the incremental level, like sequoia's own EWC, SI and LwF. Every strategy but
``naive`` carries something from one phase to the next, so none applies to
``multi_task``'s single joint phase.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.methods.avalanche.adapter import AvalancheMethod
from sequoia.registry import register_method
from sequoia.settings.sl.levels import IncrementalSLSetting
from sequoia.settings.sl.setting import SLView

Memory = Annotated[int, Field(gt=0, le=100_000_000)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


@register_method
@dataclass
class AvalancheNaive(AvalancheMethod):
    """Avalanche's ``Naive``: fine-tuning on each experience, nothing against forgetting."""

    name: ClassVar[str] = "avalanche.naive"
    strategy_class: ClassVar[str] = "Naive"
    carries_across_phases: ClassVar[bool] = False


@register_method
@dataclass
class AvalancheCumulative(AvalancheMethod):
    """Avalanche's ``Cumulative``: each experience trains on the union of every experience so far."""

    name: ClassVar[str] = "avalanche.cumulative"
    strategy_class: ClassVar[str] = "Cumulative"


@register_method
@dataclass
class AvalancheReplay(AvalancheMethod):
    """Avalanche's ``Replay``: a buffer balanced over experiences, concatenated to each minibatch."""

    name: ClassVar[str] = "avalanche.replay"
    strategy_class: ClassVar[str] = "Replay"

    mem_size: Memory = 200
    """Replay buffer size (Avalanche's default)."""


@register_method
@dataclass
class AvalancheGDumb(AvalancheMethod):
    """GDumb (Prabhu et al. 2020): a class-balanced buffer; the model is retrained from it alone."""

    name: ClassVar[str] = "avalanche.gdumb"
    strategy_class: ClassVar[str] = "GDumb"

    mem_size: Memory = 200
    """Buffer size (Avalanche's default)."""


@register_method
@dataclass
class AvalancheGSS(AvalancheMethod):
    """GSS-greedy (Aljundi et al. 2019, gradient-based sample selection): a buffer of gradient-diverse samples."""

    name: ClassVar[str] = "avalanche.gss_greedy"
    strategy_class: ClassVar[str] = "GSS_greedy"

    mem_size: Memory = 200
    """Buffer size (Avalanche's default)."""
    mem_strength: Annotated[int, Field(gt=0, le=100_000)] = 1
    """Buffer samples each new sample's gradient is compared with (Avalanche's default)."""

    def strategy_arguments(self, model: torch.nn.Sequential, view: SLView) -> dict[str, Any]:
        return {"input_size": list(view.input_shape)}


@register_method
@dataclass
class AvalancheMIR(AvalancheMethod):
    """MIR (Aljundi et al. 2019, maximally interfered retrieval): replay the buffer samples a step would hurt most."""

    name: ClassVar[str] = "avalanche.mir"
    strategy_class: ClassVar[str] = "MIR"
    resumable: ClassVar[bool] = False  # its replay loader is a generator, made at an experience's end

    mem_size: Memory = 200
    """Buffer size (no default in Avalanche; ours, as its other buffers')."""
    subsample: Memory = 50
    """Buffer samples scored for interference at each step (no default in Avalanche; ours)."""
    batch_size_mem: Memory = 1
    """Of those, how many are replayed (Avalanche's default)."""


@register_method
@dataclass
class AvalancheERACE(AvalancheMethod):
    """ER-ACE (Caccia et al. 2022): replay with an asymmetric cross-entropy on the incoming classes."""

    name: ClassVar[str] = "avalanche.er_ace"
    strategy_class: ClassVar[str] = "ER_ACE"

    mem_size: Memory = 200
    """Buffer size (Avalanche's default)."""
    batch_size_mem: Memory = 10
    """Buffer samples replayed per step (Avalanche's default)."""


@register_method
@dataclass
class AvalancheDER(AvalancheMethod):
    """DER++ (Buzzega et al. 2020, dark experience replay): replay logits and labels from a buffer."""

    name: ClassVar[str] = "avalanche.der"
    strategy_class: ClassVar[str] = "DER"

    mem_size: Memory = 200
    """Buffer size (Avalanche's default)."""
    batch_size_mem: Memory | None = None
    """Buffer samples replayed per step; unset: the training minibatch size (Avalanche's default)."""
    alpha: NonNegative = 0.1
    """Weight of the logit-matching term (Avalanche's default)."""
    beta: NonNegative = 0.5
    """Weight of the replayed labels' cross-entropy (Avalanche's default; 0 gives DER)."""


@register_method
@dataclass
class AvalancheGEM(AvalancheMethod):
    """GEM (Lopez-Paz & Ranzato 2017): project each gradient so no past experience's loss rises."""

    name: ClassVar[str] = "avalanche.gem"
    strategy_class: ClassVar[str] = "GEM"

    patterns_per_exp: Memory = 40
    """Samples kept per experience (no default in Avalanche; ours: 200 over digits' 5 tasks)."""
    memory_strength: NonNegative = 0.5
    """Offset added to the projection to favour backward transfer (gamma in the paper; Avalanche's default)."""


@register_method
@dataclass
class AvalancheAGEM(AvalancheMethod):
    """A-GEM (Chaudhry et al. 2019): project each gradient against the average gradient on a memory sample."""

    name: ClassVar[str] = "avalanche.agem"
    strategy_class: ClassVar[str] = "AGEM"
    resumable: ClassVar[bool] = False  # its memory iterator is made at an experience's end

    patterns_per_exp: Memory = 40
    """Samples kept per experience (no default in Avalanche; ours: 200 over digits' 5 tasks)."""
    sample_size: Memory = 64
    """Memory samples the reference gradient is computed on (Avalanche's default)."""


@register_method
@dataclass
class AvalancheEWC(AvalancheMethod):
    """EWC (Kirkpatrick et al. 2017): a quadratic pull toward past experiences' weights, weighted by the Fisher."""

    name: ClassVar[str] = "avalanche.ewc"
    strategy_class: ClassVar[str] = "EWC"
    target_setting: ClassVar[type] = IncrementalSLSetting

    ewc_lambda: NonNegative = 100.0
    """Strength of the penalty (no default in Avalanche; ours, as sequoia's ewc)."""
    mode: Literal["separate", "online"] = "separate"
    """`separate`: one penalty per past experience; `online`: one running Fisher (Avalanche's default)."""
    decay_factor: Annotated[float, Field(ge=0, le=1)] | None = None
    """Decay of the running Fisher in `online` mode (required there; Avalanche's default: unset)."""


@register_method
@dataclass
class AvalancheMAS(AvalancheMethod):
    """MAS (Aljundi et al. 2018, memory-aware synapses): importance from the output's sensitivity to each weight."""

    name: ClassVar[str] = "avalanche.mas"
    strategy_class: ClassVar[str] = "MAS"
    target_setting: ClassVar[type] = IncrementalSLSetting

    lambda_reg: NonNegative = 1.0
    """Strength of the penalty (Avalanche's default)."""
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Weight of the previous importance when a new one is added (Avalanche's default)."""


@register_method
@dataclass
class AvalancheLwF(AvalancheMethod):
    """LwF (Li & Hoiem 2016): distil the previous model's outputs on the classes it knew."""

    name: ClassVar[str] = "avalanche.lwf"
    strategy_class: ClassVar[str] = "LwF"
    target_setting: ClassVar[type] = IncrementalSLSetting

    alpha: NonNegative = 1.0
    """Weight of the distillation loss (no default in Avalanche; ours, as sequoia's lwf)."""
    temperature: Annotated[float, Field(gt=0, le=1_000)] = 2.0
    """Softmax temperature of the distillation (no default in Avalanche; ours, as sequoia's lwf)."""


@register_method
@dataclass
class AvalancheLFL(AvalancheMethod):
    """LFL (Jung et al. 2016, less-forgetful learning): keep the features close to the previous model's."""

    name: ClassVar[str] = "avalanche.lfl"
    strategy_class: ClassVar[str] = "LFL"
    target_setting: ClassVar[type] = IncrementalSLSetting

    lambda_e: NonNegative = 1.0
    """Weight of the feature-distance penalty (no default in Avalanche; ours)."""

    def prepare_model(self, model: torch.nn.Sequential) -> torch.nn.Module:
        from sequoia.methods.avalanche.models import FeatureSequential

        return FeatureSequential(*model)  # LFL compares features: every layer but the last
