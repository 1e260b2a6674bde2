"""Stable-Baselines3 algorithms as sequoia learners, with the plugins applied inside SB3's own loop.

SB3 runs its own training loop (``learn``: collect experience, then ``train``).
sequoia does not copy or subclass that loop; it reaches in at three points, each
through an extension point SB3 or torch offers:

* **the buffers** (``replay_buffer_class`` / ``rollout_buffer_class``): every batch SB3
  samples passes through the plugins' ``adapt_batch``, which is how replay's memory
  rows join SAC's and DQN's batches; the last batch is kept for the penalties;
* **the optimizers' step hooks** (``torch.optim.Optimizer.register_step_pre_hook``):
  before each step of a policy optimizer, the plugins' penalties (EWC, SI, LwF) on
  that batch are differentiated with respect to that optimizer's parameters only and
  added to their gradients, then the plugins' ``before_step`` runs; after it, their
  ``after_step``. SAC steps its critic and its actor with two optimizers, so each
  network gets its share of a penalty once per gradient step. SB3 has already clipped
  the gradient at that point, so a penalty's gradient is not clipped;
* **a callback** shows progress.

What the plugins need from a learner (:class:`~sequoia.learners.base.Learner`):
``loss`` (the algorithm's own loss on a batch of transitions, for EWC's Fisher and
A-GEM), ``outputs`` and ``distillation`` (for LwF), ``experience`` (the transitions
of the last ``fit``, for replay's memory and EWC) and ``trainable_parameters`` (those
the policy optimizers step). The algorithms' classes are in
:mod:`sequoia.learners.sb3_algorithms`.

Each ``fit`` call starts with an empty replay buffer unless
``keep_buffer_across_fits`` (as for sequoia's DQN): plain fine-tuning forgets, and
older experience returns only through replay. SB3's schedules (DQN's epsilon, any
learning-rate schedule) run over the run's steps so far, as one ``learn`` continued
task after task (``reset_num_timesteps=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.errors import SequoiaError
from sequoia.learners.base import FitRecord, Learner, Plugin
from sequoia.runs.state import capture, restore
from sequoia.settings.rl.protocol import Acts
from sequoia.settings.rl.setting import RLSetting, RLView

ALGORITHM_STATE = ("num_timesteps", "_n_updates", "_n_calls", "_episode_num", "_current_progress_remaining",
                   "_total_timesteps", "exploration_rate")
"""The attributes of an SB3 algorithm that training changes, beyond its networks and optimizers."""


def import_sb3():
    """The ``stable_baselines3`` module, or one line saying how to install it."""
    try:
        import stable_baselines3
    except ImportError:
        raise SequoiaError("the SB3 learners need Stable-Baselines3: pip install stable-baselines3") from None
    return stable_baselines3


def spaces_env(observation_space, action_space):
    """A gymnasium environment that only carries spaces: SB3 builds its networks from an env's spaces,
    before sequoia hands it the environment of each ``fit``.

    Example:
        >>> import gymnasium as gym
        >>> spaces_env(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2)).action_space
        Discrete(2)
    """
    import gymnasium as gym

    class Spaces(gym.Env):
        def reset(self, *, seed=None, options=None):
            raise RuntimeError("a stand-in for the spaces only; each fit brings its environment")

        def step(self, action):
            raise RuntimeError("a stand-in for the spaces only; each fit brings its environment")

    env = Spaces()
    env.observation_space, env.action_space = observation_space, action_space
    return env


@dataclass
class SB3Learner(Learner):
    """An SB3 algorithm trained by sequoia's loop and changed by its plugins (see the module docstring).

    Subclasses set ``algorithm`` (the SB3 class name), and implement
    :meth:`algorithm_options`, ``outputs``, ``loss`` and ``distillation``.
    """

    domain: ClassVar[type] = RLSetting
    test_protocols: ClassVar[tuple[type, ...]] = (Acts,)
    algorithm: ClassVar[str] = ""
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("record",)

    lr: Annotated[float, Field(gt=0, le=10)] = 3e-4
    """Adam learning rate (of every network)."""
    gamma: Annotated[float, Field(ge=0, le=1)] = 0.99
    """Discount factor."""
    hidden_sizes: tuple[Annotated[int, Field(gt=0, le=65_536)], ...] = (256, 256)
    """Widths of the hidden layers of each network (SB3's ``net_arch``)."""

    # -- what a subclass gives -----------------------------------------------------
    def algorithm_options(self, view: RLView) -> dict[str, Any]:
        """Keyword arguments of the SB3 class besides the policy and the environment."""
        raise NotImplementedError

    def policy_optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimizers of the networks the plugins act on (not SAC's entropy coefficient)."""
        return [self.algo.policy.optimizer]

    def check_budget(self, steps: int) -> None:
        """Refuse, in one line, a ``fit`` of ``steps`` environment steps the algorithm cannot take."""

    # -- Learner ---------------------------------------------------------------------
    def configure(self, view: RLView) -> None:
        sb3 = import_sb3()
        self.check_action_space(view)
        for steps in sorted(set(view.steps_per_fit)):
            self.check_budget(steps)
        options = self.algorithm_options(view)
        algorithm_class = getattr(sb3, self.algorithm)
        # Both seeds are drawn before SB3 seeds the global generators with the first, so
        # that from there on, the run draws exactly what SB3 alone would.
        seed, env_seed = (int(x) for x in torch.randint(2**31, (2,)))
        self.algo = algorithm_class("MlpPolicy", spaces_env(view.observation_space, view.action_space),
                                    learning_rate=self.lr, gamma=self.gamma, device="cpu", verbose=0,
                                    seed=seed, **options)
        self.algo.set_logger(silent_logger())
        self.model = self.algo.policy
        self.progress = view.progress
        self.record = FitRecord(env_seed=env_seed)
        self._batch: Batch | None = None  # the batch of the gradient step under way (the plugins' penalties)
        self._install_hooks()

    def check_action_space(self, view: RLView) -> None:
        """Refuse an action space the algorithm does not handle, in one line."""

    def _install_hooks(self) -> None:
        for index, optimizer in enumerate(self.policy_optimizers()):
            optimizer.register_step_pre_hook(self._pre_step_hook(index))
            optimizer.register_step_post_hook(lambda optimizer, args, kwargs: self._after_step())
        buffer = getattr(self.algo, "replay_buffer", None) or getattr(self.algo, "rollout_buffer", None)
        buffer.adapt = self._adapt

    def _adapt(self, batch: Batch) -> Batch:
        for plugin in self.plugins:
            batch = plugin.adapt_batch(self, batch)
        self._batch = batch
        return batch

    def _pre_step_hook(self, index: int) -> Callable:
        def hook(optimizer, args, kwargs) -> None:
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            if index == 0:  # one count and one check per gradient step, on its first optimizer
                gradients = [p.grad for p in parameters if p.grad is not None]
                norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])) if gradients \
                    else torch.zeros(())
                self.monitor.check_loss(norm, name="gradient norm")
            self._add_penalty_gradients(parameters)
            for plugin in self.plugins:
                plugin.before_step(self)

        return hook

    def _add_penalty_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        if self._batch is None or not any(type(p).penalty is not Plugin.penalty for p in self.plugins):
            return
        outputs = self.outputs(self._batch)
        total = self._with_penalties(torch.zeros(()), self._batch, outputs)
        if not total.requires_grad:
            return
        gradients = torch.autograd.grad(total, parameters, allow_unused=True)
        for parameter, gradient in zip(parameters, gradients):
            if gradient is not None:
                parameter.grad = gradient if parameter.grad is None else parameter.grad + gradient

    def _after_step(self) -> None:
        for plugin in self.plugins:
            plugin.after_step(self)

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters the policy optimizers step, by name (not SAC's target critic)."""
        stepped = {id(p) for optimizer in self.policy_optimizers() for group in optimizer.param_groups
                   for p in group["params"]}
        return {name: p for name, p in self.model.named_parameters() if id(p) in stepped}

    def train_phase(self, train, valid: Any) -> None:
        from stable_baselines3.common.vec_env import DummyVecEnv

        self.check_budget(train.steps_left)
        self.start_fit()
        vec_env = DummyVecEnv([lambda: train])
        vec_env.seed(self.record.env_seed)  # episodes of a fit are reproducible, and differ from fit to fit
        self.record.env_seed += 1
        self.algo.set_env(vec_env)
        before = self.algo.num_timesteps
        self.algo.learn(total_timesteps=train.steps_left, reset_num_timesteps=False,
                        callback=progress_callback(train.steps_left, self.name, self.progress))
        self.record.last = self.last_experience(self.algo.num_timesteps - before)
        self._batch = None

    def start_fit(self) -> None:
        """Called as each ``fit`` starts (off-policy learners empty their replay buffer there)."""

    def last_experience(self, steps: int) -> Batch:
        """What ``fit`` trained on, as a batch, after a fit of ``steps`` environment steps."""
        raise NotImplementedError

    def experience(self) -> Batch:
        assert self.record.last is not None, "fit() first"
        return self.record.last

    @torch.no_grad()
    def act(self, observations: np.ndarray, task_id: int | None) -> np.ndarray:
        """The deterministic policy's actions for a batch of observations."""
        actions, _ = self.algo.predict(np.asarray(observations, dtype=np.float32), deterministic=True)
        return actions

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers, SB3's counters and tensors, the replay buffer's filled rows."""
        algo = self.algo
        variables = algo._get_torch_save_params()[1]
        return {"sb3": algo.get_parameters(),
                "variables": {name: getattr(algo, name).detach().clone() for name in variables},
                "counters": {name: getattr(algo, name) for name in ALGORITHM_STATE if hasattr(algo, name)},
                "buffer": buffer_state(getattr(algo, "replay_buffer", None)),
                "action_space": algo.action_space.np_random.bit_generator.state,  # random actions come from it
                "attributes": capture(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        algo = self.algo
        algo.set_parameters(state["sb3"], exact_match=True)
        with torch.no_grad():
            for name, value in state["variables"].items():
                getattr(algo, name).copy_(value)
        for name, value in state["counters"].items():
            setattr(algo, name, value)
        load_buffer_state(getattr(algo, "replay_buffer", None), state["buffer"])
        algo.action_space.np_random.bit_generator.state = state["action_space"]
        restore(self, state["attributes"])


def buffer_state(buffer) -> dict[str, Any] | None:
    """The filled rows of an SB3 replay buffer and its cursor (a checkpoint need not hold the empty rest)."""
    if buffer is None:
        return None
    filled = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {name: getattr(buffer, name)[:filled].copy()
              for name in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")}
    return {"pos": buffer.pos, "full": buffer.full, "arrays": arrays}


def load_buffer_state(buffer, state: dict[str, Any] | None) -> None:
    """Put :func:`buffer_state` back into a buffer of the same size."""
    if buffer is None or state is None:
        return
    buffer.pos, buffer.full = state["pos"], state["full"]
    for name, rows in state["arrays"].items():
        getattr(buffer, name)[:len(rows)] = rows


def silent_logger():
    """An SB3 logger with no outputs: it keeps what SB3 records, and writes nothing.

    Without one, SB3 makes a log directory in the temporary folder at every ``learn``.
    """
    from stable_baselines3.common.logger import Logger

    return Logger(folder=None, output_formats=[])


def progress_callback(total: int, name: str, enabled: bool):
    """An SB3 callback that shows sequoia's tqdm bar of environment steps (not SB3's ``rich`` one)."""
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc=f"{name} steps", leave=False, disable=not enabled, mininterval=1.0)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return Progress()
