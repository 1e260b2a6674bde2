"""Turning ``--setting.env`` into a gymnasium environment sequoia can run, or into one line.

gymnasium accepts more than a registered id, and answers some mistakes with
warnings rather than errors:

* ``module:Env-v0`` imports ``module`` first (where a package registers its
  environments); a module that does not import raised a bare ``ModuleNotFoundError``;
* an id without a version (``CartPole``) runs the newest version with a warning,
  and an out-of-date version (``CartPole-v0``) runs with a deprecation warning:
  sequoia refuses both, naming the version to use, because a run on another
  version than the one the user meant measures something else, and a warning in
  the middle of the output is easy to miss;
* an environment whose observations are not a ``Box`` (``FrozenLake``'s
  ``Discrete``, ``Blackjack``'s ``Tuple``) has no observation vector for the learners.

Example:
    >>> registered_id("gymnasium:CartPole-v1")
    'CartPole-v1'
    >>> registered_id("CartPole-v0")
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: --setting.env CartPole-v0: gymnasium marks version v0 out of date; use CartPole-v1
"""

from __future__ import annotations

import importlib

from sequoia.errors import SequoiaError, first_line, summary


def registered_id(env_id: str) -> str:
    """The registered id that ``env_id`` names, its module (``module:Env-v0``) imported."""
    import gymnasium as gym
    from gymnasium.envs import registration

    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except Exception as error:  # noqa: BLE001 - importing a user's module can fail in any way
            raise SequoiaError(f"--setting.env {env_id}: cannot import module {module!r} "
                               f"({summary(error)})") from None
    try:
        namespace, base, version = registration.parse_env_id(name)
    except gym.error.Error as error:
        raise SequoiaError(f"unknown gymnasium environment {env_id!r}: {first_line(error)}") from None
    newest = registration.find_highest_version(namespace, base)
    family = base if namespace is None else f"{namespace}/{base}"
    if newest is not None and version is None:
        raise SequoiaError(f"--setting.env {env_id} names no version; name one, e.g. {family}-v{newest}")
    if newest is not None and version < newest:
        raise SequoiaError(f"--setting.env {env_id}: gymnasium marks version v{version} out of date; "
                           f"use {family}-v{newest}")
    return name


def make(env_id: str):
    """``gymnasium.make`` for an id :func:`registered_id` accepted; a failure to build it is one line."""
    import gymnasium as gym

    try:
        return gym.make(env_id)
    except gym.error.Error as error:
        raise SequoiaError(f"unknown gymnasium environment {env_id!r}: {first_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - an environment's constructor can fail in any way
        raise SequoiaError(f"could not make gymnasium environment {env_id!r} "
                           f"({summary(error)})") from None


def check_observations(env, env_id: str) -> None:
    """Refuse observations that are not a ``Box``: the learners read one vector of numbers.

    Example:
        >>> import gymnasium as gym
        >>> check_observations(gym.make("FrozenLake-v1"), "FrozenLake-v1")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        sequoia.errors.SequoiaError: --setting.env FrozenLake-v1: its observations are Discrete(16); ...
    """
    import gymnasium as gym

    space = env.observation_space
    if not isinstance(space, gym.spaces.Box):
        raise SequoiaError(f"--setting.env {env_id}: its observations are {space}; sequoia's RL settings need a Box "
                           "(an array of numbers): register the environment wrapped in gymnasium's "
                           "FlattenObservation")
