"""Episode limits: every env dpgkit trains or evaluates on ends its episodes.

An evaluation runs each episode to its end, so an env whose episodes never end would hang it.
:func:`limit_episodes` gives every env made by :func:`dpgkit.envs.make_env` a time limit
(Gymnasium's ``TimeLimit``, which *truncates*: the last transition still bootstraps):

- ``max_episode_steps`` N given (the ``--max_episode_steps`` setting, or in ``env_kwargs``):
  a Gymnasium id gets it through ``gym.make(id, max_episode_steps=N)`` (it replaces the
  registered limit), an env class of the user's (``module:Class``) is wrapped in
  ``TimeLimit(env, N)``;
- not given: the env's own limit (its registration's ``max_episode_steps``; the DeepMind Control
  Suite's tasks end their 1000-step episodes themselves); an env with none at all is cut at
  :data:`DEFAULT_EPISODE_STEPS`, with a warning that says how to choose the first time it cuts
  (:class:`DefaultTimeLimit`; an env that ends its episodes itself never sees it).
"""

import warnings
from typing import Any, SupportsFloat

import gymnasium as gym

from dpgkit.dmc import NAMESPACE as DMC_NAMESPACE
from dpgkit.errors import DpgkitWarning

DEFAULT_EPISODE_STEPS = 1000
"""The episode limit of an env that has none of its own (MuJoCo's and DMC's episode length)."""

LIMITED_NAMESPACES = (DMC_NAMESPACE,)
"""Ids whose envs end their episodes themselves without a registered limit (shimmy's DMC)."""


def has_time_limit(env: gym.Env) -> bool:
    """Whether a ``TimeLimit`` wraps ``env`` somewhere along its wrappers."""
    layer = env
    while layer is not None:
        if isinstance(layer, gym.wrappers.TimeLimit):
            return True
        layer = getattr(layer, "env", None)
    return False


def limit_episodes(env: gym.Env, env_id: str, max_episode_steps: int | None) -> gym.Env:
    """``env`` with a time limit (see the module): ``max_episode_steps`` if given and not
    already applied by ``gym.make``, else its own, else :data:`DEFAULT_EPISODE_STEPS`."""
    if max_episode_steps:
        return env if has_time_limit(env) else gym.wrappers.TimeLimit(env, max_episode_steps)
    if has_time_limit(env) or env_id.startswith(LIMITED_NAMESPACES):
        return env
    return DefaultTimeLimit(env, env_id)


class DefaultTimeLimit(gym.wrappers.TimeLimit):
    """``TimeLimit(env, DEFAULT_EPISODE_STEPS)`` for an env with no limit of its own, which
    warns (once per process) the first time it cuts an episode: an env that ends its episodes
    itself, before the limit, never hears of it."""

    def __init__(self, env: gym.Env, env_id: str) -> None:
        super().__init__(env, DEFAULT_EPISODE_STEPS)
        self.env_id = env_id

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        if truncated and self._elapsed_steps >= self._max_episode_steps:
            warnings.warn(f"{self.env_id} has no time limit of its own: dpgkit cut its episode "
                          f"at {DEFAULT_EPISODE_STEPS} steps (a truncation; evaluation too); "
                          "choose with --max_episode_steps N", DpgkitWarning, stacklevel=2)
        return obs, reward, terminated, truncated, info
