"""The RL domain root: a gymnasium environment whose physics change from task to task."""

import copy
import dataclasses
import math
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import progress
from sequoia.errors import SequoiaError
from sequoia.metric_spec import TRANSFER_SUMMARIES, MetricSpec
from sequoia.options import TaskList
from sequoia.results import FinalOutputs
from sequoia.settings.base import Setting
import sequoia.settings.rl.envs as envs
import sequoia.settings.rl.metaworld_tasks as metaworld_tasks
from sequoia.settings.rl.protocol import Acts
from sequoia.settings.rl.tasks import (
    PHYSICS,
    SOLVED_RETURN,
    alternating_schedule,
    default_physics,
    default_sequence,
    load_schedule,
    sampled_schedule,
    schedule_file,
    set_physics,
)
from sequoia.settings.schedule import Items
from sequoia.settings.view import SettingView

MAX_TRAINING_STEPS = 1_000_000_000
"""Most environment steps a run may train for: days on a fast simulator already."""
MAX_TEST_EPISODES = 1_000_000
"""Most test episodes a run may play over all its evaluations."""
TEST_SEEDS, VALIDATION_SEEDS = 1_000_000, 3_000_000
"""First environment seeds of test and of validation episodes (``evaluate_on``); online episodes start at 2e6."""


@dataclasses.dataclass(frozen=True)
class RLView(SettingView):
    """What a method may know on an RL setting: the environment's id and spaces.

    Attributes:
        env: the gymnasium environment id.
        observation_size: the length of an observation (with the one-hot task id where the level gives it).
        observation_space: the gymnasium observation space (a ``Box``, with the task id where given).
        action_space: the gymnasium action space.
        steps_per_fit: the environment steps of each ``fit``, in order (an algorithm that
            collects whole rollouts checks them before anything runs).
    """

    env: str = ""
    observation_size: int = 0
    observation_space: Any = None
    action_space: Any = None
    steps_per_fit: tuple[int, ...] = ()


@dataclasses.dataclass
class PreparedEnvironments:
    """What :meth:`RLSetting.prepare` builds (not saved in checkpoints: a resumed run builds it again).

    Attributes:
        env_id: the registered id of ``--setting.env`` (``Meta-World`` with ``--setting.tasks``).
        task_envs: each task's Meta-World environment; empty without ``--setting.tasks``.
        task_physics: each task's physics parameters (``{}`` per Meta-World task).
        observation_size: the length of an observation as methods see it (task id included where given).
        observation_space: the observation space as methods see it.
        action_space: the environment's action space.
        random_returns: each task's mean test return of a random policy (the normalised return's baseline).
    """

    env_id: str = ""
    task_envs: list[str] = dataclasses.field(default_factory=list)
    task_physics: list[dict[str, float]] = dataclasses.field(default_factory=list)
    observation_size: int = 0
    observation_space: Any = None
    action_space: Any = None
    random_returns: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class OnlineEpisodes:
    """How many online-evaluation episodes the run has played: each takes the next seed (saved in checkpoints)."""

    count: int = 0


@dataclass
class RLSetting(Setting):
    """Continual reinforcement learning: one gymnasium environment, different physics per task.

    By default the tasks alternate between CartPole as published and CartPole with its push
    reversed, so what one task teaches is wrong in the next; ``--setting.schedule sampled``
    instead multiplies its physical parameters by draws from N(1, 0.2), as Sequoia did. The
    transfer matrix holds mean test returns (separately seeded, greedy episodes); its
    normalised version, ``(return - random) / (solved - random)``, is a second matrix,
    ``normalized_return``, for the environments with a known solved return.

    Tasks blend by their physics: in ``continual`` the parameters move linearly from one
    task's values to the next as the steps of the stream go by.

    ``tasks`` gives a Meta-World task sequence instead (``cw10``, ``cw20``, or task names:
    Continual World, :mod:`sequoia.settings.rl.metaworld_tasks`): each task is its own
    environment, and the transfer matrix holds success rates (``mean_return`` stays a
    second matrix). It needs one task per phase, so ``multi_task`` and ``continual``
    refuse it.

    Example:
        >>> from sequoia.settings.rl import IncrementalRLSetting
        >>> IncrementalRLSetting(steps_per_task=1000).qualified_name()
        'rl.incremental'
    """

    domain: ClassVar[str] = "rl"
    test_protocol: ClassVar[type] = Acts
    task_not_in_inputs: ClassVar[str] = ("RL tasks differ by their dynamics, not by what an observation looks like, "
                                         "so no router can tell them apart from an observation")
    default_learner: ClassVar[str] = "dqn"
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("online",)
    supports_several_processes: ClassVar[bool] = False  # environment steps are sequential

    env: str = "CartPole-v1"
    """A gymnasium environment id: CartPole-v1, MountainCar-v0, Acrobot-v1, Pendulum-v1, or any registered id
    together with a schedule file."""
    tasks: TaskList = ""
    """A Meta-World task sequence instead of --setting.env: cw10, cw20, or task names joined by commas
    (needs pip install 'sequoia[metaworld]')."""
    nb_tasks: Annotated[int, Field(gt=0, le=1_000)] = 3
    """Number of tasks of the alternating and sampled sequences (a schedule file gives its own)."""
    schedule: str = ""
    """The task sequence: alternating (published and reversed actions, task after task), sampled (random
    physics), a shipped sequence (cartpole_reversed, pendulum_reversed), or a YAML/JSON file
    {task: {attribute: value}}. Empty: alternating where the environment can reverse its actions
    (CartPole, MountainCar, Pendulum), sampled otherwise."""
    parameter_std: Annotated[float, Field(ge=0)] = 0.2
    """Spread of the sampled physics: each parameter is its default times N(1, parameter_std)."""
    steps_per_task: Annotated[int, Field(gt=0, le=100_000_000)] = 20_000
    """Environment steps of training per task."""
    test_episodes: Annotated[int, Field(gt=0, le=10_000)] = 10
    """Greedy test episodes per task and evaluation."""

    def sequence_length(self) -> int | None:
        if self.tasks:
            return len(metaworld_tasks.sequence(self.tasks))
        return self.nb_tasks if self.schedule in ("", "alternating", "sampled") else None  # a file: read in prepare

    def prepare(self) -> None:
        self.prepared = PreparedEnvironments()
        if self.tasks:
            self._prepare_metaworld()
        else:
            self.prepared.env_id = envs.registered_id(self.env)
            probe = envs.make(self.env)
            try:
                self._prepare_tasks(probe)
            finally:
                probe.close()
        self.online = OnlineEpisodes()
        self.prepared.random_returns = [float(np.mean(self._returns(lambda obs, task: None, task)))
                               for task in range(self.nb_tasks_total)]

    def _prepare_metaworld(self) -> None:
        """One Meta-World environment per task, success rate as the metric (Continual World)."""
        self.prepared.task_envs = self.kept_tasks(metaworld_tasks.sequence(self.tasks))
        self.prepared.task_physics = [{} for _ in self.prepared.task_envs]
        self._refuse_mixed_phases()
        metaworld_tasks.check_names(self.prepared.task_envs)
        self.prepared.env_id = "Meta-World"
        probe = metaworld_tasks.make(self.prepared.task_envs[0])
        try:
            self._check_budget()
            self._set_spaces(probe)
        finally:
            probe.close()

    def _refuse_mixed_phases(self) -> None:
        """Refuse a level whose training chunks mix tasks (or blend them): each Meta-World task is its own
        environment. Read from the level's plan (on a copy of the generator, which it must not advance)."""
        generator, self.rng = self.rng, copy.deepcopy(self.rng)
        try:
            chunks = [items for plan in self.phase_plans() for items in plan.chunks]
        finally:
            self.rng = generator
        if any(items.positions is not None or len(set(np.asarray(items.tasks).tolist())) > 1 for items in chunks):
            raise SequoiaError(f"--setting.tasks {self.tasks}: {self.qualified_name()} mixes tasks within a phase, "
                               "and each Meta-World task is its own environment; use rl.incremental, "
                               "rl.task_incremental or rl.discrete_task_agnostic")

    def _prepare_tasks(self, probe) -> None:
        """Each task's physics, checked on ``probe``, and the spaces the methods see."""
        envs.check_observations(probe, self.env)
        self.prepared.task_physics = self._task_sequence(probe)
        self._check_budget()
        for parameters in self.prepared.task_physics:
            set_physics(probe, parameters)  # fails early, with a message, on a wrong attribute name
        self._set_spaces(probe)

    def _task_sequence(self, probe) -> list[dict[str, float]]:
        """The physics of each task: the sequence ``--setting.schedule`` names, or the file it gives."""
        sequence = self.schedule or default_sequence(self.prepared.env_id)
        published = default_physics(probe, PHYSICS.get(self.prepared.env_id, ()))
        if sequence == "alternating":
            return self.kept_tasks(alternating_schedule(self.prepared.env_id, self.nb_tasks, published))
        if sequence == "sampled":
            return self.kept_tasks(sampled_schedule(self.prepared.env_id, self.nb_tasks, self.parameter_std, self.rng,
                                                    published))
        return self.kept_tasks(load_schedule(schedule_file(sequence, self.prepared.env_id)))

    def _set_spaces(self, probe) -> None:
        """The spaces the methods see: ``probe``'s, with the task id where the level gives it."""
        from sequoia.settings.rl.environment import TaskEnvironment

        self.prepared.observation_size = int(np.prod(probe.observation_space.shape)) + self.task_id_size
        self.prepared.observation_space = TaskEnvironment(probe, 0, lambda step, start: {}, task_id_size=self.task_id_size
                                                 ).observation_space
        self.prepared.action_space = probe.action_space

    def _check_budget(self) -> None:
        """Refuse a run too long to finish: the counts are each in range, their products may not be."""
        tasks = self.nb_tasks_total
        if tasks * self.steps_per_task > MAX_TRAINING_STEPS:
            raise SequoiaError(f"{tasks} tasks of --setting.steps_per_task {self.steps_per_task} make "
                               f"{tasks * self.steps_per_task:.3g} training steps; at most {MAX_TRAINING_STEPS:.0e}")
        episodes = self.test_episodes * tasks * (tasks + 1)  # every task, before training and after each task
        if episodes > MAX_TEST_EPISODES:
            raise SequoiaError(f"{tasks} tasks of --setting.test_episodes {self.test_episodes} make {episodes:.3g} "
                               f"test episodes (episodes x tasks x evaluations); at most {MAX_TEST_EPISODES:.0e}")

    @property
    def task_physics(self) -> list[dict[str, float]]:
        """Each task's physics (``{}`` for each Meta-World task), once prepared."""
        return self.prepared.task_physics

    @property
    def task_envs(self) -> list[str]:
        """Each task's Meta-World environment (none without ``--setting.tasks``), once prepared."""
        return self.prepared.task_envs

    @property
    def env_id(self) -> str:
        """The registered id of the environment (``Meta-World`` with ``--setting.tasks``), once prepared."""
        return self.prepared.env_id

    @property
    def observation_size(self) -> int:
        return self.prepared.observation_size

    @property
    def observation_space(self) -> Any:
        return self.prepared.observation_space

    @property
    def action_space(self) -> Any:
        return self.prepared.action_space

    @property
    def nb_tasks_total(self) -> int:
        return len(self.prepared.task_physics)

    @property
    def task_id_size(self) -> int:
        """Length of the one-hot task id appended to observations (0 where ids are hidden)."""
        return len(self.prepared.task_physics) if self.task_labels_at_test else 0

    def view(self) -> RLView:
        env = f"Meta-World tasks {self.tasks}" if self.prepared.task_envs else self.env
        return RLView.of(self, env=env, observation_size=self.prepared.observation_size,
                         observation_space=self.prepared.observation_space, action_space=self.prepared.action_space,
                         steps_per_fit=self.fit_lengths())

    def train_size(self, task: int) -> int:
        return self.steps_per_task

    # -- environments -------------------------------------------------------------
    def _environment(self, steps: int, physics, task_of=lambda step, episode_start: 0, task: int = 0):
        """A task environment of ``steps`` steps: ``--setting.env`` with the physics given, or task ``task``'s
        Meta-World environment."""
        import gymnasium as gym

        from sequoia.settings.rl.environment import TaskEnvironment

        env = metaworld_tasks.make(self.prepared.task_envs[task]) if self.prepared.task_envs else gym.make(self.env)
        return TaskEnvironment(env, steps, physics, task_of, self.task_id_size)

    def physics_at(self, position: float) -> dict[str, float]:
        """The physics at a place on the task axis: task ``t``'s at ``t``, linearly blended in between.

        A parameter that changes sign on the way (a reversed push or torque) passes close
        to 0 but never lands on it: Pendulum divides by its mass.
        """
        position = min(position, self.nb_tasks_total - 1)
        low = int(position)
        high = min(low + 1, self.nb_tasks_total - 1)
        weight = position - low
        blended = {name: (1 - weight) * value + weight * self.prepared.task_physics[high][name]
                   for name, value in self.prepared.task_physics[low].items()}
        return {name: value or math.copysign(1e-6, self.prepared.task_physics[high][name]) for name, value in blended.items()}

    def training_data(self, items: Items):
        """An environment with a budget of ``len(items)`` steps.

        Each episode takes the task of the step it starts at (one task per phase, or a
        drawn task per episode in a joint phase); where the shift is smooth, the
        physics follow the items' positions step by step.
        """
        last = len(items) - 1
        tasks, positions = items.tasks, items.positions

        def task_of(step: int, episode_start: int) -> int:
            return int(tasks[min(episode_start, last)])

        if positions is None:
            return self._environment(len(items), lambda step, start: self.prepared.task_physics[task_of(step, start)], task_of,
                                     task=int(tasks[0]))
        return self._environment(len(items), lambda step, start: self.physics_at(float(positions[min(step, last)])),
                                 task_of)

    # -- evaluation ---------------------------------------------------------------
    def _returns(self, act, task: int, physics: dict[str, float] | None = None, episodes: int | None = None,
                 seed_base: int | None = None, task_id: int | None = None) -> list[float]:
        """The return of each test episode of ``act`` (told ``task_id``) on ``task`` or on the given ``physics``.

        ``act`` returning None acts randomly.
        """
        return [total for total, _ in self._episodes(act, task, physics, episodes, seed_base, task_id)]

    def _episodes(self, act, task: int, physics: dict[str, float] | None = None, episodes: int | None = None,
                  seed_base: int | None = None, task_id: int | None = None) -> list[tuple[float, bool]]:
        """The return of each test episode, and whether it succeeded (``info["success"]`` at any step)."""
        physics = self.prepared.task_physics[task] if physics is None else physics
        # Test and validation episodes have seeds of their own, apart from each other and from training.
        seed_base = (VALIDATION_SEEDS if self.evaluate_on == "validation" else TEST_SEEDS) if seed_base is None \
            else seed_base
        env = self._environment(10**9, lambda step, episode_start: physics, lambda step, episode_start: task, task)
        env.action_space.seed(seed_base + task)
        played = []
        for episode in range(episodes or self.test_episodes):
            played.append(_play(env, act, task_id, seed_base + 1000 * task + episode))
            progress.items(len(played), episodes or self.test_episodes, "episodes")
        env.close()
        return played

    def metric_specs(self) -> list[MetricSpec]:
        """Mean test return (primary), and its normalised version; with Meta-World tasks the success rate
        is primary, as Continual World reports it, and the mean return second.

        Example:
            >>> from sequoia.settings.rl import IncrementalRLSetting
            >>> [spec.name for spec in IncrementalRLSetting(tasks="cw10").metric_specs()]
            ['success_rate', 'mean_return']
        """
        mean_return = MetricSpec("mean_return", label="mean test return", summaries=TRANSFER_SUMMARIES)
        if self.tasks:
            return [MetricSpec("success_rate", low=0.0, high=1.0, summaries=TRANSFER_SUMMARIES),
                    dataclasses.replace(mean_return, summaries=("final",))]
        return [mean_return, MetricSpec("normalized_return", label="(return - random) / (solved - random)")]

    def score(self, method, task: int, task_id: int | None) -> dict[str, np.ndarray]:
        if self.prepared.task_envs:  # Meta-World: success rate first, as Continual World reports it
            played = self._episodes(method.act, task, task_id=task_id)
            return {"success_rate": np.asarray([float(success) for _, success in played]),
                    "mean_return": np.asarray([total for total, _ in played])}
        returns = np.asarray(self._returns(method.act, task, task_id=task_id))
        scores = {"mean_return": returns}  # one score per test episode
        solved = SOLVED_RETURN.get(self.prepared.env_id)
        if solved is not None:
            random = self.prepared.random_returns[task]
            scores["normalized_return"] = (returns - random) / (solved - random)
        return scores

    def online_score(self, method, chunk) -> list[float]:
        # One greedy episode under the physics the chunk starts with, before training on it.
        self.online.count += 1
        seed_base = 2_000_000 + self.online.count
        if self.prepared.task_envs:  # Meta-World: the chunk's own task, whose environment it is
            return self._returns(method.act, chunk.task_of(0, 0), episodes=1, seed_base=seed_base)
        return self._returns(method.act, 0, physics=chunk.physics(0, 0), episodes=1, seed_base=seed_base)

    def final_outputs(self, method) -> FinalOutputs:
        # The baseline of the normalised matrix, so that a reader can undo the normalisation.
        return FinalOutputs(extra={"random_return": float(np.mean(self.prepared.random_returns))})


def _play(env, act, task_id: int | None, seed: int) -> tuple[float, bool]:
    """One test episode from ``seed``: its return, and whether it succeeded (``info["success"]`` at any step)."""
    obs, _ = env.reset(seed=seed)
    done, total, success = False, 0.0, False
    while not done:
        action = act(obs[None], task_id)
        action = env.action_space.sample() if action is None else np.asarray(action)[0]
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        success = success or bool(info.get("success", False))
        done = terminated or truncated
    return total, success
