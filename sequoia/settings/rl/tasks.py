"""Tasks for the RL branch: gymnasium environments whose physics change from task to task."""

import math
from pathlib import Path
from typing import Any

import numpy as np

from sequoia.errors import SequoiaError
from sequoia.options import LARGEST
from sequoia.yaml_file import read_yaml

# The physical parameters each built-in environment exposes on `env.unwrapped`.
PHYSICS: dict[str, tuple[str, ...]] = {
    "CartPole-v1": ("gravity", "length", "masspole", "masscart", "force_mag"),
    "MountainCar-v0": ("force", "gravity"),
    "Acrobot-v1": ("LINK_LENGTH_1", "LINK_LENGTH_2", "LINK_MASS_1", "LINK_MASS_2"),
    "Pendulum-v1": ("g", "m", "l"),
}

# Returns of a solved task, for the normalised transfer matrix (gymnasium's reward
# thresholds; Pendulum has none, -200 is a common "solved" mark).
SOLVED_RETURN: dict[str, float] = {"CartPole-v1": 475.0, "MountainCar-v0": -110.0, "Acrobot-v1": -100.0,
                                   "Pendulum-v1": -200.0}


def sampled_schedule(env_id: str, nb_tasks: int, std: float, rng: np.random.Generator,
                     defaults: dict[str, float]) -> list[dict[str, float]]:
    """Per-task parameters: each physical parameter is its default times a draw from N(1, std).

    Task 0 keeps the defaults, so the first task is the environment as published.

    Example:
        >>> tasks = sampled_schedule("CartPole-v1", 3, 0.2, np.random.default_rng(0),
        ...                          {"gravity": 9.8, "length": 0.5, "masspole": 0.1, "masscart": 1.0, "force_mag": 10.0})
        >>> tasks[0]["gravity"], round(tasks[1]["gravity"], 3) != 9.8
        (9.8, True)
    """
    names = PHYSICS.get(env_id)
    if names is None:
        raise SequoiaError(f"{env_id} has no built-in parameter list; give a schedule file (--setting.schedule)")
    tasks = [dict(defaults)]
    for _ in range(1, nb_tasks):
        # Clipped so that no mass or length turns negative or vanishes.
        tasks.append({name: defaults[name] * float(np.clip(rng.normal(1.0, std), 0.1, 3.0)) for name in names})
    return tasks


# The parameter whose sign reverses what each action does: a push to the left becomes a
# push to the right (CartPole, MountainCar), a torque turns the other way (Pendulum, whose
# angular acceleration is 3g/(2l) sin(theta) + 3u/(m l^2)).
REVERSING: dict[str, str] = {"CartPole-v1": "force_mag", "MountainCar-v0": "force", "Pendulum-v1": "m"}


def alternating_schedule(env_id: str, nb_tasks: int, defaults: dict[str, float]) -> list[dict[str, float]]:
    """Per-task parameters that alternate between the published dynamics and their mirror image.

    Even tasks are the environment as published; odd tasks negate its reversing parameter
    (:data:`REVERSING`), so the right action of one task is the wrong one of the next.

    Example:
        >>> alternating_schedule("CartPole-v1", 3, {"force_mag": 10.0})
        [{'force_mag': 10.0}, {'force_mag': -10.0}, {'force_mag': 10.0}]
        >>> alternating_schedule("Acrobot-v1", 2, {})
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: --setting.schedule alternating needs a parameter that reverses the actions, \
and Acrobot-v1 has none (CartPole-v1, MountainCar-v0 and Pendulum-v1 have one); use --setting.schedule sampled \
or a schedule file
    """
    name = REVERSING.get(env_id)
    if name is None:
        raise SequoiaError(f"--setting.schedule alternating needs a parameter that reverses the actions, and {env_id} "
                           f"has none ({', '.join(list(REVERSING)[:-1])} and {list(REVERSING)[-1]} have one); "
                           "use --setting.schedule sampled or a schedule file")
    return [{name: defaults[name] * (-1) ** task} for task in range(nb_tasks)]


def default_sequence(env_id: str) -> str:
    """The sequence of an empty ``--setting.schedule``: ``alternating`` where the environment has a
    reversing parameter (tasks that conflict, so fine-tuning forgets), ``sampled`` physics otherwise.

    Example:
        >>> default_sequence("CartPole-v1"), default_sequence("Acrobot-v1")
        ('alternating', 'sampled')
    """
    return "alternating" if env_id in REVERSING else "sampled"


SHIPPED_SCHEDULES = Path(__file__).resolve().parents[2] / "data" / "rl_schedules"
"""Named task sequences that ship with sequoia (``--setting.schedule NAME``)."""
SCHEDULE_ENVS = {"cartpole_reversed": "CartPole-v1", "pendulum_reversed": "Pendulum-v1"}
"""The environment each shipped schedule is written for."""


def schedule_file(value: str, env_id: str) -> str:
    """The file ``--setting.schedule`` names: a shipped schedule by name (for its environment), or a path
    to an existing file.

    Example:
        >>> Path(schedule_file("cartpole_reversed", "CartPole-v1")).name
        'cartpole_reversed.yaml'
        >>> schedule_file("altrenating", "CartPole-v1")
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: --setting.schedule altrenating: no such file, and not a sequence name \
(alternating, sampled, cartpole_reversed, pendulum_reversed)
        >>> schedule_file("cartpole_reversed", "Pendulum-v1")
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: --setting.schedule cartpole_reversed is written for CartPole-v1, not Pendulum-v1; add --setting.env CartPole-v1
    """
    if value not in SCHEDULE_ENVS:
        if not Path(value).is_file():
            names = ", ".join(["alternating", "sampled", *SCHEDULE_ENVS])
            raise SequoiaError(f"--setting.schedule {value}: no such file, and not a sequence name ({names})")
        return value
    if SCHEDULE_ENVS[value] != env_id:
        raise SequoiaError(f"--setting.schedule {value} is written for {SCHEDULE_ENVS[value]}, not {env_id}; "
                           f"add --setting.env {SCHEDULE_ENVS[value]}")
    return str(SHIPPED_SCHEDULES / f"{value}.yaml")


def load_schedule(path: str) -> list[dict[str, float]]:
    """A user's schedule ``{task: {attribute: value}}`` from a YAML or JSON file, tasks in key order.

    Every value must be a finite, non-zero number no larger than ``options.LARGEST``:
    a physical constant of NaN, of infinity, of zero or of 1e300 stops the simulation
    or makes it meaningless.
    """
    loaded = read_yaml(path, "schedule file")  # JSON is YAML too
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, dict) for v in loaded.values()):
        raise SequoiaError(f"schedule file {path} must map each task to {{attribute: value}}")
    return [_task_values(path, task, loaded[task]) for task in sorted(loaded, key=_task_order)]


def _task_values(path: str, task: Any, values: dict) -> dict[str, float]:
    checked = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value == 0 or abs(value) > LARGEST:
            raise SequoiaError(f"schedule file {path}, task {task}, {name}: expected a finite, non-zero number "
                               f"(at most {LARGEST:.0e} in size), got {value!r}")
        checked[str(name)] = float(value)
    return checked


def _task_order(key: Any) -> tuple[int, str]:
    return (int(key), "") if str(key).isdigit() else (1 << 30, str(key))


def set_physics(env, parameters: dict[str, float]) -> None:
    """Set physical parameters on ``env.unwrapped``; an unknown name is a one-line error.

    CartPole caches ``total_mass`` and ``polemass_length`` at construction, so they
    are recomputed here, or a changed mass or length would have no effect.
    """
    core = env.unwrapped
    for name, value in parameters.items():
        if not hasattr(core, name) or callable(getattr(core, name)):
            known = sorted(k for k, v in vars(core).items() if isinstance(v, (int, float)) and not k.startswith("_"))
            raise SequoiaError(f"{env.spec.id if env.spec else type(core).__name__} has no parameter {name!r}; "
                               f"numeric attributes: {', '.join(known)}")
        setattr(core, name, type(getattr(core, name))(value))
    if hasattr(core, "polemass_length"):
        core.total_mass = core.masspole + core.masscart
        core.polemass_length = core.masspole * core.length


def default_physics(env, names: tuple[str, ...]) -> dict[str, float]:
    """The current values of ``names`` on ``env.unwrapped``."""
    return {name: float(getattr(env.unwrapped, name)) for name in names}
