"""What the Python API checks in what it is given: a step budget, an observation, an env.

:class:`dpgkit.api.DDPG` calls these before it trains, predicts or evaluates, so that a wrong
argument ends with one :class:`~dpgkit.errors.DpgkitError` that says what to write instead.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.config import DDPGConfig
from dpgkit.envs import make_env
from dpgkit.errors import DpgkitError
from dpgkit.obs_layout import describe_layout, flatten_observation


def budget_target(call: str, done: int, config_total: int, total_env_steps: int | None,
                  additional_steps: int | None, clash: bool = False) -> int:
    """The env step ``call`` trains until, for a run that has ``done`` env steps and a config
    budget of ``config_total``, checked: a budget the run already has is an error that says how
    to train more."""
    if clash or (total_env_steps is not None and additional_steps is not None):
        raise DpgkitError(f"{call}() takes one budget: total_env_steps= (until the run has "
                          "that many env steps) or additional_steps= (that many more; "
                          "total_timesteps= in Stable-Baselines3's words)")
    check_steps("total_env_steps", total_env_steps)
    check_steps("additional_steps", additional_steps)
    if additional_steps is not None:
        return done + int(additional_steps)
    target = config_total if total_env_steps is None else int(total_env_steps)
    if target <= done:
        asked = f"{call}({total_env_steps})" if total_env_steps is not None else \
            f"{call}(), with the config's total_env_steps,"
        more = total_env_steps if total_env_steps is not None else "N"
        sb3_form = (f" (Stable-Baselines3's learn(total_timesteps={more}) does the same)"
                    if call == "learn" else "")
        raise DpgkitError(f"{asked} trains until the run has {target} env steps in all, "
                          f"and it has {done}: to train {more} more, write "
                          f"{call}(additional_steps={more}){sb3_form}")
    return target


def learn_budget(additional_steps: int | None, total_timesteps: int | None,
                 reset_num_timesteps: Any, callback: Any) -> tuple[int | None, bool]:
    """``learn``'s other arguments checked: Stable-Baselines3's ``total_timesteps`` is dpgkit's
    ``additional_steps`` (returned in its place; True beside it where both were given);
    ``reset_num_timesteps`` a bool (either way: dpgkit never resets a run's step counter);
    ``callback`` a function of the events dict."""
    if not isinstance(reset_num_timesteps, bool):
        raise DpgkitError(f"reset_num_timesteps must be True or False, got "
                          f"{reset_num_timesteps!r}")
    if callback is not None and not callable(callback):
        raise DpgkitError("callback must be a function of the events dict, called after "
                          "every env step (return False to stop); Stable-Baselines3's "
                          "callback objects do not fit (docs/api.md)")
    check_steps("total_timesteps", total_timesteps)
    if total_timesteps is not None and additional_steps is None:
        return total_timesteps, False
    return additional_steps, total_timesteps is not None


def check_steps(name: str, value: Any) -> None:
    """A budget must be a whole number of env steps >= 1 (None: not given)."""
    if value is None or (isinstance(value, int | np.integer) and not isinstance(value, bool)
                         and value >= 1):
        return
    hint = f": write {int(value):_}" if isinstance(value, float) and value.is_integer() else ""
    raise DpgkitError(f"{name} must be a whole number of env steps >= 1, got {value!r}{hint}")


@contextlib.contextmanager
def made_env(env: gym.Env | str | None, config: DDPGConfig) -> Iterator[gym.Env]:
    """``env`` itself if an env object; else the env an id names (None: the run's own), made
    here and closed after."""
    if env is not None and not isinstance(env, str):
        yield env
        return
    made = make_env(env) if env is not None else make_env(config.env_id, **config.env_arguments())
    try:
        yield made
    finally:
        made.close()


def checked_observation(observation: Any, env: dict[str, Any]) -> np.ndarray:
    """``observation`` as float32 of shape (obs_dim,) or (B, obs_dim), checked against the
    env's observation size; for an env that observes a Dict or Tuple, also its structure as the
    env gives it (one observation, or a vector env's batch), flattened in the env's layout."""
    size = int(env["obs_dim"])
    expected = (f"expected an observation of shape ({size},) for {env['env_id']} or a batch "
                f"(B, {size})")
    layout = env.get("obs_layout")
    pair = isinstance(observation, tuple) and len(observation) == 2 and isinstance(
        observation[1], dict)
    if layout and isinstance(observation, dict | tuple):  # as a Dict/Tuple-observing env gives
        try:
            observation = flatten_observation(observation, layout)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            if not pair:  # else a tuple of numbers given as the flat vector, or neither
                try:
                    return _flat_observation(observation, size, expected)
                except DpgkitError:
                    kind = type(observation).__name__
                    raise DpgkitError(f"{expected}, or its structure as the env gives it (one "
                                      f"observation or a vector env's batch), with the parts "
                                      f"{describe_layout(layout)}; got a {kind} that does not "
                                      f"fit ({error})") from None
        else:
            pair = False
    if pair:
        raise DpgkitError(f"{expected}, got a pair (obs, info), what env.reset() returns: write "
                          "obs, info = env.reset()")
    return _flat_observation(observation, size, expected)


def _flat_observation(observation: Any, size: int, expected: str) -> np.ndarray:
    """``observation`` as a float32 (size,) or (B, size) array; DpgkitError saying ``expected``
    for anything else."""
    try:
        obs = np.asarray(observation)
    except ValueError as error:
        raise DpgkitError(f"{expected}, got {type(observation).__name__} ({error})") from None
    if obs.dtype.kind not in "biuf":
        raise DpgkitError(f"{expected}, got {type(observation).__name__} of dtype {obs.dtype}")
    if not (obs.ndim in (1, 2) and obs.shape[-1] == size and obs.shape[0] >= 1):
        raise DpgkitError(f"{expected}, got {obs.shape}")
    return obs.astype(np.float32, copy=False)
