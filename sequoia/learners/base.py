"""Learners: the domain-specific trainers that strategies like replay and EWC wrap.

A :class:`Learner` owns a model, its loss on a batch and its training loop (SL:
epochs over minibatches; RL: environment steps; PA: steps over preference pairs).
Every gradient step goes through :meth:`Learner.optimize`, which lets a list of
:class:`Plugin` objects change the batch (replay) or add a penalty (EWC). That
small interface is all replay and EWC know about, which is why they run on every
domain without a copy per domain.
"""

from typing import Any, ClassVar

import torch
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.settings.base import Setting

class Plugin:
    """Changes how a learner takes its gradient steps. Every hook defaults to a no-op."""

    def adapt_batch(self, learner: "Learner", batch: Batch) -> Batch:
        """Return the batch to train on (e.g. the current batch plus replayed rows)."""
        return batch

    def penalty(self, learner: "Learner") -> torch.Tensor | None:
        """A term added to the loss, or ``None``."""
        return None

    def after_fit(self, learner: "Learner") -> None:
        """Called when a ``fit`` call ends."""


@dataclass
class Learner:
    """A trainable model for one domain. Its dataclass fields are its hyperparameters.

    Subclasses set ``name`` and ``domain`` (the domain root setting class they serve)
    and implement ``configure``, ``fit``, ``loss`` and ``experience``. They call
    ``self.optimize(batch)`` for each gradient step so that plugins apply.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[type[Setting]]

    def __post_init__(self) -> None:
        self.plugins: list[Plugin] = []
        self.model: torch.nn.Module | None = None
        self.torch_optimizer: torch.optim.Optimizer | None = None

    def configure(self, setting: Setting) -> None:
        """Build the model and optimizer for this setting."""
        raise NotImplementedError

    def fit(self, train: Any, valid: Any) -> None:
        """Train on one phase's data, calling :meth:`optimize` for each step."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> torch.Tensor:
        """The mean training loss on a batch (no plugin terms)."""
        raise NotImplementedError

    def experience(self) -> Batch:
        """The rows the last ``fit`` trained on, in the batch format ``loss`` takes."""
        raise NotImplementedError

    def generate(self, prompts: list, max_new_tokens: int) -> list[str] | None:
        """Replies to prompts, for learners of generative models; ``None`` otherwise."""
        return None

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters training changes, by name (``requires_grad`` only)."""
        assert self.model is not None, "configure() first"
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def optimize(self, batch: Batch) -> torch.Tensor:
        """One gradient step on ``batch``, with every plugin applied.

        Returns the detached loss, left as a tensor so that callers that do not log
        it never pay for a device synchronisation.
        """
        for plugin in self.plugins:
            batch = plugin.adapt_batch(self, batch)
        loss = self.loss(batch)
        for plugin in self.plugins:
            extra = plugin.penalty(self)
            if extra is not None:
                loss = loss + extra
        assert self.torch_optimizer is not None, "configure() first"
        self.torch_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.before_step()
        self.torch_optimizer.step()
        return loss.detach()

    def before_step(self) -> None:
        """Called between ``backward`` and the optimizer step (e.g. to clip gradients)."""

    def end_fit(self) -> None:
        """Subclasses call this at the end of ``fit`` so that plugins see it."""
        for plugin in self.plugins:
            plugin.after_fit(self)
