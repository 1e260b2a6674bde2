"""The RL domain root: a gymnasium environment whose physics change from task to task."""

from collections.abc import Iterator
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.errors import SequoiaError
from sequoia.results import Results
from sequoia.settings.base import Phase, Setting
from sequoia.settings.rl.tasks import (
    PHYSICS,
    SOLVED_RETURN,
    default_physics,
    load_schedule,
    sampled_schedule,
    set_physics,
)


@dataclass
class RLSetting(Setting):
    """Continual reinforcement learning: one gymnasium environment, different physics per task.

    By default each task multiplies CartPole's gravity, pole length, pole mass, cart mass
    and force by draws from N(1, 0.2) (task 0 keeps the defaults), as Sequoia did. The
    transfer matrix holds mean test returns (separately seeded, greedy episodes); its
    normalised version, ``(return - random) / (solved - random)``, is in ``results.json``.

    Example:
        >>> from sequoia.settings.rl import IncrementalRLSetting
        >>> IncrementalRLSetting(steps_per_task=1000).qualified_name()
        'rl.incremental'
    """

    domain: ClassVar[str] = "rl"
    metric_name: ClassVar[str] = "mean_return"
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("rng", "_online_episodes")
    supports_several_processes: ClassVar[bool] = False  # environment steps are sequential

    env: str = "CartPole-v1"
    """A gymnasium environment id: CartPole-v1, MountainCar-v0, Acrobot-v1, Pendulum-v1, or any registered id
    together with a schedule file."""
    nb_tasks: Annotated[int, Field(gt=0)] = 3
    """Number of tasks (ignored when a schedule file gives them)."""
    schedule: str = ""
    """A YAML/JSON file {task: {attribute: value}} of per-task parameters (empty: sampled)."""
    parameter_std: Annotated[float, Field(ge=0)] = 0.2
    """Spread of the sampled parameters: each is its default times N(1, parameter_std)."""
    steps_per_task: Annotated[int, Field(gt=0)] = 20_000
    """Environment steps of training per task."""
    test_episodes: Annotated[int, Field(gt=0)] = 10
    """Greedy test episodes per task and evaluation."""
    chunks_per_task: Annotated[int, Field(gt=0)] = 4
    """Online levels: each task's steps go to `fit` in this many chunks, each scored by one episode first."""

    def prepare(self) -> None:
        import gymnasium as gym

        try:
            probe = gym.make(self.env)
        except gym.error.Error as error:
            raise SequoiaError(f"unknown gymnasium environment {self.env!r}: {error}") from error
        if self.schedule:
            self.task_physics = load_schedule(self.schedule)
        else:
            names = PHYSICS.get(self.env, ())
            self.task_physics = sampled_schedule(self.env, self.nb_tasks, self.parameter_std, self.rng,
                                                 default_physics(probe, names))
        for parameters in self.task_physics:
            set_physics(probe, parameters)  # fails early, with a message, on a wrong attribute name
        self.observation_size = int(np.prod(probe.observation_space.shape)) + self.task_id_size
        self.action_space = probe.action_space
        probe.close()
        self._online_episodes = 0
        self.random_returns = [self._mean_return(lambda obs, task: None, task) for task in range(self.nb_tasks_total)]

    @property
    def nb_tasks_total(self) -> int:
        return len(self.task_physics)

    @property
    def task_id_size(self) -> int:
        """Length of the one-hot task id appended to observations (0 where ids are hidden)."""
        return len(self.task_physics) if self.task_labels_at_test else 0

    # -- environments -------------------------------------------------------------
    def _environment(self, steps: int, physics, task_of=lambda step, episode: 0):
        import gymnasium as gym

        from sequoia.settings.rl.environment import TaskEnvironment

        return TaskEnvironment(gym.make(self.env), steps, physics, task_of, self.task_id_size)

    def _interpolated(self, offset: int):
        """Physics moving linearly from task to task as training steps go by (``continual``)."""

        def physics(step: int, episode: int) -> dict[str, float]:
            position = min((offset + step) / self.steps_per_task, self.nb_tasks_total - 1)
            low = int(position)
            high = min(low + 1, self.nb_tasks_total - 1)
            weight = position - low
            return {name: (1 - weight) * value + weight * self.task_physics[high][name]
                    for name, value in self.task_physics[low].items()}

        return physics

    def phases(self) -> Iterator[Phase]:
        if self.joint_training:
            draws = self.rng.integers(self.nb_tasks_total, size=self.steps_per_task * self.nb_tasks_total + 1)

            def task_of(step: int, episode: int) -> int:
                return int(draws[episode % len(draws)])

            env = self._environment(self.steps_per_task * self.nb_tasks_total,
                                    lambda step, episode: self.task_physics[task_of(step, episode)], task_of)
            yield Phase(None, [env], None)
            return
        for task in range(self.nb_tasks_total):
            if self.online_evaluation:
                chunk_steps = np.array_split(np.arange(self.steps_per_task), self.chunks_per_task)
                chunks = []
                for part in chunk_steps:
                    physics = (self._interpolated(task * self.steps_per_task + int(part[0]))
                               if self.smooth_task_shift else (lambda s, e, t=task: self.task_physics[t]))
                    chunks.append(self._environment(len(part), physics))
                yield Phase(None, chunks, None)
            else:
                yield Phase(task, [self._environment(self.steps_per_task, lambda s, e, t=task: self.task_physics[t],
                                                     lambda s, e, t=task: t)], None)

    # -- evaluation ---------------------------------------------------------------
    def _mean_return(self, act, task: int, physics: dict[str, float] | None = None, episodes: int | None = None,
                     seed_base: int = 1_000_000) -> float:
        """Mean return of ``act`` on ``task`` (or on the given ``physics``); ``act`` returning None acts randomly."""
        physics = self.task_physics[task] if physics is None else physics
        env = self._environment(10**9, lambda step, episode: physics, lambda step, episode: task)
        env.action_space.seed(seed_base + task)
        total, episodes = 0.0, episodes or self.test_episodes
        for episode in range(episodes):
            # Test episodes have their own seeds, apart from anything used in training.
            obs, _ = env.reset(seed=seed_base + 1000 * task + episode)
            done = False
            while not done:
                action = act(obs[None], task if self.task_labels_at_test else None)
                action = env.action_space.sample() if action is None else np.asarray(action)[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
        env.close()
        return total / episodes

    def evaluate(self, method) -> list[float]:
        return [self._mean_return(method.act, task) for task in range(self.nb_tasks_total)]

    def online_score(self, method, chunk) -> tuple[float, int]:
        # One greedy episode under the physics the chunk starts with, before training on it.
        self._online_episodes += 1
        return self._mean_return(method.act, 0, physics=chunk.physics(0, 0), episodes=1,
                                 seed_base=2_000_000 + self._online_episodes), 1

    def finish(self, method, results: Results) -> None:
        solved = SOLVED_RETURN.get(self.env)
        if solved is None:
            return
        random = np.array(self.random_returns)
        normalized = (results.matrix.values - random) / (solved - random)
        results.matrices["normalized_return"] = normalized.tolist()
        results.extra["average_final_normalized"] = float(normalized[-1].mean())
        results.extra["random_return"] = float(random.mean())
