"""The environment a method trains in: a gymnasium env with a step budget, task physics and task ids."""

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from sequoia.settings.rl.tasks import set_physics


class TaskEnvironment(gym.Wrapper):
    """Wraps one gymnasium environment for one ``fit`` call.

    * ``steps_left``: the environment steps this call may still take; ``step`` refuses more.
    * ``physics``: called with the number of steps taken so far and the step the current
      episode started at, it returns the physical parameters to apply (constant within a
      task, interpolated in ``continual``, a drawn task per episode in ``multi_task``).
    * ``task_id_size``: where the setting reveals task ids, the observation ends with a
      one-hot task id of this size (the current task's, from ``task_of``, called the same way).

    Example:
        >>> import gymnasium as gym
        >>> env = TaskEnvironment(gym.make("CartPole-v1"), steps=3, physics=lambda step, episode_start: {})
        >>> obs, _ = env.reset(seed=0)
        >>> _ = env.step(0); env.steps_left
        2
    """

    def __init__(self, env: gym.Env, steps: int, physics: Callable[[int, int], dict[str, float]],
                 task_of: Callable[[int, int], int] = lambda step, episode_start: 0, task_id_size: int = 0) -> None:
        super().__init__(env)
        self.steps_left = steps
        self.steps_taken = 0
        self.episodes = 0
        self.episode_start = 0
        self.physics = physics
        self.task_of = task_of
        self.task_id_size = task_id_size
        self.episode_returns: list[float] = []
        self._return = 0.0
        if task_id_size:
            low = np.concatenate([env.observation_space.low, np.zeros(task_id_size)]).astype(np.float32)
            high = np.concatenate([env.observation_space.high, np.ones(task_id_size)]).astype(np.float32)
            self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def reset(self, **kwargs):
        self.episodes += 1
        self.episode_start = self.steps_taken
        self._return = 0.0
        set_physics(self.env, self.physics(self.steps_taken, self.episode_start))
        obs, info = self.env.reset(**kwargs)
        return self._observe(obs), info

    def step(self, action):
        if self.steps_left <= 0:
            raise RuntimeError("this fit call's environment-step budget is spent")
        self.steps_left -= 1
        self.steps_taken += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        if terminated or truncated:
            self.episode_returns.append(self._return)
        else:
            set_physics(self.env, self.physics(self.steps_taken, self.episode_start))
        return self._observe(obs), reward, terminated, truncated, info

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        if not self.task_id_size:
            return obs
        one_hot = np.zeros(self.task_id_size, dtype=np.float32)
        one_hot[self.task_of(self.steps_taken, self.episode_start)] = 1.0
        return np.concatenate([obs, one_hot]).astype(np.float32)
