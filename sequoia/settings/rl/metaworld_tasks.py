"""Continual World (Wolczyk et al. 2021, arXiv 2105.10919): sequences of Meta-World robot-arm tasks.

``--setting.tasks cw10`` is Continual World's CW10 sequence, ``cw20`` is CW10 twice,
and a list of Meta-World task names (``hammer-v3,push-wall-v3``) is any sequence.
The tasks are Meta-World 3's (``-v3``; Continual World used ``-v2``, whose names it
shares). Each task's environment is Meta-World's ``MT1`` of that task: each episode
draws one of the task's 50 object and goal placements (Continual World drew any
placement, "random_init_all"), and lasts 200 steps, Continual World's horizon. An
episode succeeds if Meta-World's ``info["success"]`` is 1 at any of its steps, as in
Continual World's ``SuccessCounter``.

Meta-World and MuJoCo are an extra: ``pip install 'sequoia[metaworld]'``.

Example:
    >>> sequence("cw10")[:3]
    ['hammer-v3', 'push-wall-v3', 'faucet-close-v3']
    >>> len(sequence("cw20"))
    20
"""

from __future__ import annotations

import numpy as np

from sequoia.errors import SequoiaError

CW10 = ["hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3", "stick-pull-v3", "handle-press-side-v3",
        "push-v3", "shelf-place-v3", "window-close-v3", "peg-unplug-side-v3"]
"""Continual World's CW10, in its order (``continualworld/tasks.py``), with Meta-World 3's names."""
SEQUENCES = {"cw10": CW10, "cw20": CW10 + CW10}
HORIZON = 200
"""Steps per episode: Continual World's ``META_WORLD_TIME_HORIZON``."""


def sequence(spec: str) -> list[str]:
    """The task names ``--setting.tasks`` gives: a named sequence, or Meta-World names joined by commas.

    The names are checked against Meta-World's only when it is installed (see :func:`check_names`).
    """
    named = SEQUENCES.get(spec.strip().lower())
    if named is not None:
        return list(named)
    names = [name.strip() for name in spec.split(",")]
    if not all(names):
        raise SequoiaError(f"--setting.tasks {spec!r}: expected cw10, cw20 or Meta-World task names joined by "
                           "commas (hammer-v3,push-wall-v3), with none empty")
    return names


def import_metaworld():
    """The ``metaworld`` module (it registers the ``Meta-World/`` environments), or one line on how to install it."""
    try:
        import metaworld
    except ImportError:
        raise SequoiaError("--setting.tasks names Meta-World tasks: pip install 'sequoia[metaworld]' "
                           "(metaworld and mujoco)") from None
    return metaworld


def check_names(names: list[str]) -> None:
    """Refuse a name Meta-World does not have, in one line that lists a few it has."""
    known = import_metaworld().ALL_V3_ENVIRONMENTS
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SequoiaError(f"--setting.tasks: Meta-World has no task {unknown[0]!r}; its tasks end in -v3, "
                           f"e.g. {', '.join(sorted(known)[:4])} (or use cw10, cw20)")


def make(name: str, seed: int | None = None):
    """The environment of one Meta-World task: 200-step episodes, float32 observations in an unbounded box.

    The box is the same for every task (Continual World also drops the goal bounds),
    so one network reads every task's observations.
    """
    import gymnasium as gym

    import_metaworld()
    env = gym.make("Meta-World/MT1", env_name=name, seed=seed, max_episode_steps=HORIZON)
    shape = env.observation_space.shape
    space = gym.spaces.Box(-np.inf, np.inf, shape, np.float32)
    return gym.wrappers.TransformObservation(env, lambda obs: np.asarray(obs, dtype=np.float32), space)
