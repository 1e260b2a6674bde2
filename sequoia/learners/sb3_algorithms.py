"""SAC, PPO and SB3's DQN as sequoia learners (``--method.learner sac|ppo|sb3_dqn``).

Each class gives SB3 its options and tells the plugins what its loss and its outputs
are. The losses are SB3's own formulas (``SAC.train``, ``PPO.train``, ``DQN.train``
in stable-baselines3 2.x), recomputed on a batch of stored transitions: EWC's Fisher
is the empirical Fisher of that loss, as for sequoia's DQN, and A-GEM's reference
gradient is its gradient.

Which plugins each algorithm refuses, and why (``docs/errors.md``):

* **PPO** learns on-policy from rollouts of its current policy: transitions of older
  policies (replay's memory, A-GEM's reference batches) would bias its gradient;
* **SAC** steps its critic and its actor with two optimizers, while A-GEM projects one
  gradient of one loss: it is refused there.

Example:
    >>> SAC().learning_starts, PPO().n_steps, SB3DQN().train_freq
    (1000, 1000, 4)
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch.nn import functional as F

from sequoia.batching import Batch
from sequoia.errors import SequoiaError
from sequoia.learners.base import Plugin
from sequoia.learners.sb3 import SB3Learner
from sequoia.registry import register_learner
from sequoia.settings.rl.setting import RLView

TRANSITION_FIELDS = {"obs": "observations", "action": "actions", "next_obs": "next_observations",
                     "done": "dones", "reward": "rewards"}
ROLLOUT_FIELDS = {"obs": "observations", "action": "actions", "old_values": "old_values",
                  "old_log_prob": "old_log_prob", "advantages": "advantages", "returns": "returns"}


@functools.cache
def adapting_replay_buffer() -> type:
    """SB3's ``ReplayBuffer`` whose sampled batches go through ``adapt`` (the plugins' ``adapt_batch``)."""
    from stable_baselines3.common.buffers import ReplayBuffer

    class AdaptingReplayBuffer(ReplayBuffer):
        adapt = staticmethod(lambda batch: batch)

        def sample(self, batch_size: int, env=None):
            samples = super().sample(batch_size, env)
            batch = self.adapt({key: getattr(samples, field) for key, field in TRANSITION_FIELDS.items()})
            return samples._replace(**{field: batch[key] for key, field in TRANSITION_FIELDS.items()})

        def rows(self, start: int, count: int) -> Batch:
            """``count`` transitions from position ``start`` on (wrapping), with SB3's ``done`` (no time-outs)."""
            index = (start + np.arange(count)) % self.buffer_size
            done = self.dones[index, 0] * (1 - self.timeouts[index, 0])
            arrays = {"obs": self.observations[index, 0], "action": self.actions[index, 0],
                      "next_obs": self.next_observations[index, 0], "done": done.reshape(-1, 1),
                      "reward": self.rewards[index, 0].reshape(-1, 1)}
            return {key: torch.as_tensor(value, dtype=torch.float32) for key, value in arrays.items()}

    return AdaptingReplayBuffer


@functools.cache
def recording_rollout_buffer() -> type:
    """SB3's ``RolloutBuffer`` whose minibatches go through ``adapt``, which keeps the last one for penalties."""
    from stable_baselines3.common.buffers import RolloutBuffer

    class RecordingRolloutBuffer(RolloutBuffer):
        adapt = staticmethod(lambda batch: batch)

        def _get_samples(self, batch_inds, env=None):
            samples = super()._get_samples(batch_inds, env)
            self.adapt({key: getattr(samples, field) for key, field in ROLLOUT_FIELDS.items()})
            return samples

        def rows(self) -> Batch:
            """The last rollout, flattened (after training on it)."""
            samples = RolloutBuffer._get_samples(self, np.arange(self.buffer_size * self.n_envs))
            return {key: getattr(samples, field) for key, field in ROLLOUT_FIELDS.items()}

    return RecordingRolloutBuffer


def _refuse_memory(plugin: Plugin, why: str) -> str | None:
    from sequoia.methods.replay import MemoryPlugin

    return why if isinstance(plugin, MemoryPlugin) else None


def _mean_squared(outputs: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(F.mse_loss(outputs[key], teacher[key]) for key in outputs)


@contextmanager
def frozen(module: torch.nn.Module):
    """``module``'s parameters take no gradient inside the block (its inputs still do)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


BufferSize = Annotated[int, Field(gt=0, le=100_000_000)]
BatchSize = Annotated[int, Field(gt=0, le=1_000_000)]


def require_action_space(view: RLView, space: str, learner: str, instead: str) -> None:
    """Refuse, in one line, a view whose actions are not of gymnasium's ``space`` class.

    Example:
        >>> from types import SimpleNamespace
        >>> import gymnasium as gym
        >>> view = SimpleNamespace(env="CartPole-v1", action_space=gym.spaces.Discrete(2))
        >>> require_action_space(view, "Box", "SAC needs continuous (Box) actions", "ppo")
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: SAC needs continuous (Box) actions; CartPole-v1 has Discrete(2): use \
--method.learner ppo
    """
    import gymnasium as gym

    if not isinstance(view.action_space, getattr(gym.spaces, space)):
        raise SequoiaError(f"{learner}; {view.env} has {view.action_space}: use --method.learner {instead}")


@dataclass
class OffPolicy(SB3Learner):
    """What SAC and SB3's DQN share: a replay buffer that adapts its batches, emptied at each ``fit``."""

    buffer_size: BufferSize = 100_000
    """Capacity of the replay buffer (preallocated; a checkpoint keeps its filled rows)."""
    learning_starts: Annotated[int, Field(ge=0, le=1_000_000_000)] = 1_000
    """Random-action steps at the start of the run before the first gradient step."""
    batch_size: BatchSize = 256
    """Transitions per gradient step."""
    keep_buffer_across_fits: bool = False
    """Keep the replay buffer from one `fit` call (task or chunk) to the next."""

    def _replay_options(self) -> dict[str, Any]:
        return {"buffer_size": self.buffer_size, "learning_starts": self.learning_starts,
                "batch_size": self.batch_size, "replay_buffer_class": adapting_replay_buffer()}

    def start_fit(self) -> None:
        if not self.keep_buffer_across_fits:
            self.algo.replay_buffer.reset()

    def last_experience(self, steps: int) -> Batch:
        """The transitions of the last ``fit`` (its last ``buffer_size`` if it took more)."""
        buffer = self.algo.replay_buffer
        count = min(steps, buffer.buffer_size)
        return buffer.rows((buffer.pos - count) % buffer.buffer_size, count)


@register_learner
@dataclass
class SAC(OffPolicy):
    """Soft actor-critic (Haarnoja et al. 2018), SB3's implementation: continuous actions.

    Continual World (Wolczyk et al. 2021) runs its methods on SAC. Defaults are SB3's,
    except ``learning_starts`` (1000 random steps at the start of the run, not 100)
    and ``buffer_size`` (emptied at each ``fit``, so it need only hold one).
    """

    name: ClassVar[str] = "sac"
    algorithm: ClassVar[str] = "SAC"

    tau: Annotated[float, Field(gt=0, le=1)] = 0.005
    """Polyak rate of the target critic."""

    def check_action_space(self, view: RLView) -> None:
        require_action_space(view, "Box", "SAC needs continuous (Box) actions", "ppo, sb3_dqn or dqn")

    def algorithm_options(self, view: RLView) -> dict[str, Any]:
        return {**self._replay_options(), "tau": self.tau,
                "policy_kwargs": {"net_arch": list(self.hidden_sizes)}}

    def policy_optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.algo.critic.optimizer, self.algo.actor.optimizer]

    def refusal(self, plugin: Plugin) -> str | None:
        from sequoia.methods.agem import AGEMPlugin

        if isinstance(plugin, AGEMPlugin):
            return "SAC steps its critic and its actor with two optimizers; A-GEM projects one gradient of one loss"
        return None

    def _entropy_coefficient(self) -> torch.Tensor:
        algo = self.algo
        return torch.exp(algo.log_ent_coef.detach()) if algo.ent_coef_optimizer is not None else algo.ent_coef_tensor

    def outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The actor's deterministic action and every critic's Q-value of the batch's actions."""
        algo = self.algo
        return {"action": algo.actor(batch["obs"], deterministic=True),
                "q": torch.cat(algo.critic(batch["obs"], batch["action"]), dim=1)}

    def loss(self, batch: Batch, outputs: Any = None) -> torch.Tensor:
        """SAC's critic loss plus its actor loss, each reaching only its own network (as in ``SAC.train``)."""
        critic_loss, actor_loss = self.losses(batch)
        return critic_loss + actor_loss

    def losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """SAC's critic loss and actor loss on ``batch``, with the random actions drawn in SB3's order."""
        algo = self.algo
        entropy = self._entropy_coefficient()
        actions, log_prob = algo.actor.action_log_prob(batch["obs"])
        with torch.no_grad():
            next_actions, next_log_prob = algo.actor.action_log_prob(batch["next_obs"])
            next_q = torch.cat(algo.critic_target(batch["next_obs"], next_actions), dim=1).min(dim=1, keepdim=True)[0]
            next_q = next_q - entropy * next_log_prob.reshape(-1, 1)
            target = batch["reward"] + (1 - batch["done"]) * self.gamma * next_q
        critic_loss = 0.5 * sum(F.mse_loss(q, target) for q in algo.critic(batch["obs"], batch["action"]))
        with frozen(algo.critic):  # the actor's loss moves the actor only
            q_pi = torch.cat(algo.critic(batch["obs"], actions), dim=1).min(dim=1, keepdim=True)[0]
        actor_loss = (entropy * log_prob.reshape(-1, 1) - q_pi).mean()
        return critic_loss, actor_loss

    def distillation(self, outputs: dict, teacher: dict, temperature: float) -> torch.Tensor:
        """Mean squared difference of the actions and of the Q-values (no temperature)."""
        return _mean_squared(outputs, teacher)


@register_learner
@dataclass
class SB3DQN(OffPolicy):
    """Deep Q-network, SB3's implementation (Mnih et al. 2015): discrete actions.

    Next to sequoia's own ``dqn`` (double-DQN targets, epsilon decaying over the run's
    first steps), this is the one DQN users of SB3 already know. SB3's epsilon decays
    over ``exploration_fraction`` of the steps of the first ``fit``.
    """

    name: ClassVar[str] = "sb3_dqn"
    algorithm: ClassVar[str] = "DQN"

    lr: Annotated[float, Field(gt=0, le=10)] = 5e-4
    hidden_sizes: tuple[Annotated[int, Field(gt=0, le=65_536)], ...] = (128, 128)
    buffer_size: BufferSize = 50_000
    batch_size: BatchSize = 64
    train_freq: Annotated[int, Field(gt=0, le=1_000_000)] = 4
    """Environment steps per gradient step (each ``fit`` must take a multiple of it)."""
    target_update_interval: Annotated[int, Field(gt=0, le=1_000_000_000)] = 500
    """Environment steps between copies of the Q-network into its target."""
    exploration_fraction: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of the first ``fit``'s steps over which epsilon falls from 1 to ``exploration_final_eps``."""
    exploration_final_eps: Annotated[float, Field(ge=0, le=1)] = 0.05

    def check_action_space(self, view: RLView) -> None:
        require_action_space(view, "Discrete", "DQN needs discrete actions", "sac or ppo")

    def algorithm_options(self, view: RLView) -> dict[str, Any]:
        return {**self._replay_options(), "train_freq": self.train_freq,
                "target_update_interval": self.target_update_interval,
                "exploration_fraction": self.exploration_fraction,
                "exploration_final_eps": self.exploration_final_eps,
                "policy_kwargs": {"net_arch": list(self.hidden_sizes)}}

    def check_budget(self, steps: int) -> None:
        if steps % self.train_freq:
            raise SequoiaError(f"sb3_dqn trains every --learner.train_freq {self.train_freq} steps, and a fit of "
                               f"{steps} steps is not a multiple of it: change the steps per task (or chunk)")

    def outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Q-values of every action in each transition's observation."""
        return {"q": self.algo.q_net(batch["obs"])}

    def loss(self, batch: Batch, outputs: Any = None) -> torch.Tensor:
        """The Huber TD error against the target network's greedy value (as in ``DQN.train``)."""
        algo = self.algo
        with torch.no_grad():
            next_q = algo.q_net_target(batch["next_obs"]).max(dim=1, keepdim=True)[0]
            target = batch["reward"] + (1 - batch["done"]) * self.gamma * next_q
        q_values = outputs["q"] if outputs is not None else algo.q_net(batch["obs"])
        return F.smooth_l1_loss(q_values.gather(1, batch["action"].long()), target)

    def distillation(self, outputs: dict, teacher: dict, temperature: float) -> torch.Tensor:
        """Mean squared difference of the Q-values of every action (no temperature)."""
        return _mean_squared(outputs, teacher)


@register_learner
@dataclass
class PPO(SB3Learner):
    """Proximal policy optimisation (Schulman et al. 2017), SB3's implementation: any action space.

    It collects rollouts of ``n_steps`` steps, so each ``fit`` must take a multiple of
    ``n_steps`` (the default 1000 divides the settings' step counts). Refuses replay
    and A-GEM (see the module docstring).
    """

    name: ClassVar[str] = "ppo"
    algorithm: ClassVar[str] = "PPO"

    hidden_sizes: tuple[Annotated[int, Field(gt=0, le=65_536)], ...] = (64, 64)
    n_steps: Annotated[int, Field(gt=1, le=100_000_000)] = 1_000
    """Environment steps per rollout."""
    batch_size: Annotated[int, Field(gt=1, le=1_000_000)] = 100
    """Minibatch size of the updates."""
    n_epochs: Annotated[int, Field(gt=0, le=1_000)] = 10
    """Passes over each rollout."""
    clip_range: Annotated[float, Field(gt=0, le=10)] = 0.2
    ent_coef: Annotated[float, Field(ge=0, le=10)] = 0.0
    vf_coef: Annotated[float, Field(ge=0, le=10)] = 0.5

    def algorithm_options(self, view: RLView) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "batch_size": self.batch_size, "n_epochs": self.n_epochs,
                "clip_range": self.clip_range, "ent_coef": self.ent_coef, "vf_coef": self.vf_coef,
                "rollout_buffer_class": recording_rollout_buffer(),
                "policy_kwargs": {"net_arch": list(self.hidden_sizes)}}

    def check_budget(self, steps: int) -> None:
        if steps % self.n_steps:
            raise SequoiaError(f"ppo collects rollouts of --learner.n_steps {self.n_steps} steps, and a fit of "
                               f"{steps} steps is not a multiple of it: change one of them")

    def refusal(self, plugin: Plugin) -> str | None:
        return _refuse_memory(plugin, "PPO learns on-policy from its own fresh rollouts; transitions of older "
                                      "policies from a memory would bias its gradient")

    def last_experience(self, steps: int) -> Batch:
        """The last rollout (on-policy: the rows PPO's last update trained on)."""
        return self.algo.rollout_buffer.rows()

    def policy_actions(self, batch: Batch) -> torch.Tensor:
        import gymnasium as gym

        discrete = isinstance(self.algo.action_space, gym.spaces.Discrete)
        return batch["action"].long().flatten() if discrete else batch["action"]

    def outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The policy's logits (discrete) or mean action (continuous), and the value."""
        policy = self.algo.policy
        distribution = policy.get_distribution(batch["obs"]).distribution
        head = {"logits": distribution.logits} if hasattr(distribution, "logits") else {"mean": distribution.mean}
        return {**head, "value": policy.predict_values(batch["obs"])}

    def loss(self, batch: Batch, outputs: Any = None) -> torch.Tensor:
        """PPO's clipped surrogate, value and entropy terms on rollout rows (as in ``PPO.train``)."""
        algo = self.algo
        values, log_prob, entropy = algo.policy.evaluate_actions(batch["obs"], self.policy_actions(batch))
        advantages = batch["advantages"]
        if algo.normalize_advantage and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        ratio = torch.exp(log_prob - batch["old_log_prob"])
        clipped = torch.clamp(ratio, 1 - self.clip_range, 1 + self.clip_range)
        policy_loss = -torch.min(advantages * ratio, advantages * clipped).mean()
        value_loss = F.mse_loss(batch["returns"], values.flatten())
        entropy_loss = -torch.mean(-log_prob) if entropy is None else -torch.mean(entropy)
        return policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

    def distillation(self, outputs: dict, teacher: dict, temperature: float) -> torch.Tensor:
        """KL from the teacher's softened action distribution (discrete) or squared distance of the means,
        plus the squared distance of the values."""
        total = F.mse_loss(outputs["value"], teacher["value"])
        if "logits" in outputs:
            log_ours = F.log_softmax(outputs["logits"] / temperature, dim=-1)
            theirs = F.softmax(teacher["logits"] / temperature, dim=-1)
            return total + F.kl_div(log_ours, theirs, reduction="batchmean") * temperature**2
        return total + F.mse_loss(outputs["mean"], teacher["mean"])
