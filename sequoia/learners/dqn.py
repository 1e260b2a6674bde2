"""The RL learner: deep Q-learning with a target network and double-DQN targets."""

import copy
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn
from tqdm.auto import tqdm

from sequoia.batching import Batch
from sequoia.errors import SequoiaError
from sequoia.learners.base import Learner
from sequoia.registry import register_learner
from sequoia.settings.rl.protocol import Acts
from sequoia.settings.rl.setting import RLSetting, RLView


class TransitionBuffer:
    """A FIFO buffer of transitions in preallocated tensors.

    Example:
        >>> buffer = TransitionBuffer(capacity=2, observation_size=3)
        >>> for i in range(3):
        ...     buffer.add(np.full(3, i), 0, 1.0, np.zeros(3), False)
        >>> len(buffer), buffer.rows()["obs"][:, 0].tolist()
        (2, [2.0, 1.0])
    """

    def __init__(self, capacity: int, observation_size: int) -> None:
        self.capacity = capacity
        self.obs = torch.zeros(capacity, observation_size)
        self.next_obs = torch.zeros(capacity, observation_size)
        self.action = torch.zeros(capacity, dtype=torch.long)
        self.reward = torch.zeros(capacity)
        self.done = torch.zeros(capacity)
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward, next_obs, done) -> None:
        i = self.cursor
        self.obs[i] = torch.as_tensor(obs, dtype=torch.float32)
        self.next_obs[i] = torch.as_tensor(next_obs, dtype=torch.float32)
        self.action[i], self.reward[i], self.done[i] = int(action), float(reward), float(done)
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def rows(self, indices: torch.Tensor | None = None) -> Batch:
        """Transitions as a batch (all of them, or those at ``indices``)."""
        if indices is None:
            indices = torch.arange(self.size)
        return {"obs": self.obs[indices], "action": self.action[indices], "reward": self.reward[indices],
                "next_obs": self.next_obs[indices], "done": self.done[indices]}


@plain_dataclass
class DQNTraining:
    """What DQN builds at run time and carries from step to step (its options are the learner's fields).

    Attributes:
        n_actions: the size of the discrete action space.
        target: the target network, a copy of the online one every ``target_update_every`` gradient steps.
        buffer: the FIFO transition buffer.
        rng: exploration and minibatch draws.
        env_seed: the seed of the next ``fit``'s first episode.
        gradient_steps: gradient steps so far in the run.
        steps_done: environment steps so far in the run (epsilon decays over them).
        last: the last ``fit``'s transitions (``experience()``), ``None`` before the first.
    """

    n_actions: int
    target: nn.Module
    buffer: TransitionBuffer
    rng: np.random.Generator
    env_seed: int
    gradient_steps: int = 0
    steps_done: int = 0
    last: Batch | None = None


@register_learner
@dataclass
class DQN(Learner):
    """Deep Q-network (Mnih et al. 2015) with double-DQN targets (van Hasselt et al. 2016).

    Epsilon-greedy exploration decays linearly over the first ``epsilon_decay_steps``
    environment steps of the run (not of each task: boundaries may be unknown). The
    FIFO transition buffer starts empty at each ``fit`` call unless
    ``keep_buffer_across_fits``, so that plain DQN is a true fine-tuning baseline and
    older experience comes back only through ``replay``, which keeps a reservoir of
    ``experience()`` (the last call's transitions); ``ewc`` estimates its Fisher there.

    Example:
        >>> DQN(double=True).gamma
        0.99
    """

    name: ClassVar[str] = "dqn"
    domain: ClassVar[type] = RLSetting
    test_protocols: ClassVar[tuple[type, ...]] = (Acts,)
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("training",)

    hidden_size: Annotated[int, Field(gt=0, le=65_536)] = 128
    """Width of the Q-network's two hidden layers."""
    lr: Annotated[float, Field(gt=0, le=10)] = 5e-4
    """Adam learning rate."""
    gamma: Annotated[float, Field(ge=0, le=1)] = 0.99
    """Discount factor."""
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 64
    """Transitions per gradient step."""
    buffer_size: Annotated[int, Field(gt=0, le=100_000_000)] = 50_000
    """Capacity of the FIFO transition buffer."""
    learning_starts: Annotated[int, Field(ge=0, le=1_000_000_000)] = 1_000
    """Steps of pure exploration before the first gradient step."""
    train_every: Annotated[int, Field(gt=0, le=1_000_000_000)] = 1
    """Environment steps per gradient step."""
    target_update_every: Annotated[int, Field(gt=0, le=1_000_000_000)] = 500
    """Gradient steps between copies of the online network into the target network."""
    epsilon_start: Annotated[float, Field(ge=0, le=1)] = 1.0
    epsilon_end: Annotated[float, Field(ge=0, le=1)] = 0.05
    epsilon_decay_steps: Annotated[int, Field(gt=0, le=1_000_000_000)] = 10_000
    """Steps over which epsilon falls from its start to its end value."""
    max_grad_norm: Annotated[float, Field(ge=0)] = 10.0
    """Gradient clipping (0: none)."""
    keep_buffer_across_fits: bool = False
    """Keep the transition buffer from one `fit` call (task or chunk) to the next."""
    double: bool = True
    """Double-DQN targets: the online network picks the next action, the target network values it."""

    def configure(self, view: RLView) -> None:
        import gymnasium as gym

        if not isinstance(view.action_space, gym.spaces.Discrete):
            raise SequoiaError(f"DQN needs discrete actions; {view.env} has {view.action_space}")
        n_actions = int(view.action_space.n)
        size = view.observation_size
        self.model = nn.Sequential(nn.Linear(size, self.hidden_size), nn.ReLU(),
                                   nn.Linear(self.hidden_size, self.hidden_size), nn.ReLU(),
                                   nn.Linear(self.hidden_size, n_actions))
        self.torch_optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.progress = view.progress
        rng = np.random.default_rng(int(torch.randint(2**31, (1,))))
        self.training = DQNTraining(n_actions, copy.deepcopy(self.model).requires_grad_(False),
                                    TransitionBuffer(self.buffer_size, size), rng, int(torch.randint(2**31, (1,))))

    def epsilon(self, step: int) -> float:
        fraction = min(step / self.epsilon_decay_steps, 1.0)
        return self.epsilon_start + fraction * (self.epsilon_end - self.epsilon_start)

    def train_phase(self, train, valid: Any) -> None:
        state = self.training
        buffer = state.buffer
        if not self.keep_buffer_across_fits:
            buffer.size = buffer.cursor = 0
        total = train.steps_left
        obs, _ = train.reset(seed=state.env_seed)
        state.env_seed += 1
        bar = tqdm(total=total, desc="dqn steps", leave=False, disable=not self.progress, mininterval=1.0)
        step = 0
        while train.steps_left > 0:
            if state.rng.random() < self.epsilon(state.steps_done):
                action = int(state.rng.integers(state.n_actions))
            else:
                action = int(self.act(obs[None], None)[0])
            next_obs, reward, terminated, truncated, _ = train.step(action)
            # Truncation (a time limit) is not a terminal state: keep bootstrapping through it.
            buffer.add(obs, action, reward, next_obs, terminated)
            obs = next_obs
            if terminated or truncated:
                obs, _ = train.reset()
            step += 1
            state.steps_done += 1
            if len(buffer) >= max(self.learning_starts, self.batch_size) and step % self.train_every == 0:
                self._gradient_step(state)
            bar.update()
        bar.close()
        added = min(step, buffer.capacity)  # this call's transitions end at the cursor
        state.last = buffer.rows((buffer.cursor - added + torch.arange(added)) % buffer.capacity)

    def _gradient_step(self, state: DQNTraining) -> None:
        """One minibatch from the buffer; the target network copied every ``target_update_every`` steps."""
        indices = torch.as_tensor(state.rng.integers(len(state.buffer), size=self.batch_size))
        self.optimize(state.buffer.rows(indices))
        state.gradient_steps += 1
        if state.gradient_steps % self.target_update_every == 0:
            state.target.load_state_dict(self.model.state_dict())

    def before_step(self) -> None:
        if self.max_grad_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)

    def outputs(self, batch: Batch) -> torch.Tensor:
        """Q-values of every action in each transition's observation."""
        return self.model(batch["obs"])

    def loss(self, batch: Batch, outputs: torch.Tensor | None = None) -> torch.Tensor:
        """The Huber TD error of the taken actions against (double-)DQN targets."""
        q_values = self.outputs(batch) if outputs is None else outputs
        q = q_values.gather(1, batch["action"].unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            if self.double:
                next_action = self.model(batch["next_obs"]).argmax(dim=1, keepdim=True)
                next_q = self.training.target(batch["next_obs"]).gather(1, next_action).squeeze(1)
            else:
                next_q = self.training.target(batch["next_obs"]).max(dim=1).values
            target = batch["reward"] + self.gamma * (1 - batch["done"]) * next_q
        return nn.functional.smooth_l1_loss(q, target)

    def distillation(self, outputs: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Mean squared difference of the Q-values of every action (Q-value distillation; no temperature)."""
        return nn.functional.mse_loss(outputs, teacher)

    def experience(self) -> Batch:
        assert self.training.last is not None, "fit() first"
        return self.training.last

    @torch.no_grad()
    def act(self, observations: np.ndarray, task_id: int | None) -> np.ndarray:
        """Greedy actions for a batch of observations."""
        q = self.model(torch.as_tensor(np.asarray(observations), dtype=torch.float32))
        return q.argmax(dim=1).numpy()
