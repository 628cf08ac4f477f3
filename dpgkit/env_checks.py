"""Every call dpgkit makes into an environment while it trains or evaluates, checked: an env that
raises, or returns something other than Gymnasium's API promises, becomes one
:class:`~dpgkit.errors.EnvFailed` line naming the env, the call, where in its episode, and what
went wrong, in place of a traceback from deep inside the loop (or a silent wrong shape).

What is checked, per call: ``reset`` returns ``(obs, info)`` and ``step`` returns
``(obs, reward, terminated, truncated, info)``; an ``obs`` only or a 4-tuple ``(obs, reward,
done, info)`` is named as the old Gym API, a common porting mistake; every observation has the
shape of the observation space; every reward is a real number. The run adds its env step
(:func:`dpgkit.train.train`).
"""

from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.errors import DpgkitError, EnvFailed

OLD_GYM = ("the env follows the old Gym API; Gymnasium's reset returns (obs, info) and its step "
           "(obs, reward, terminated, truncated, info): port the env, or wrap it with "
           "shimmy's GymV26CompatibilityV0")


class CheckedEnv(gym.Wrapper):
    """``env`` (made from ``env_id``) whose reset and step raise EnvFailed, with one clear line,
    for any exception or any result of the wrong form."""

    def __init__(self, env: gym.Env, env_id: str) -> None:
        super().__init__(env)
        self.env_id = env_id
        self.episode_steps = 0

    def _where(self, call: str) -> str:
        at = "" if call.startswith("reset") else f" at step {self.episode_steps + 1} of its episode"
        return f"the environment {self.env_id} failed in {call}{at}"

    def _call(self, call: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except DpgkitError:
            raise
        except Exception as error:  # the env's own code: any exception at all
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise EnvFailed(f"{self._where(call)}: {type(error).__name__}: {first}") from None

    def _check_obs(self, obs: Any, call: str) -> None:
        expected = self.observation_space.shape
        if expected is not None and np.shape(obs) != expected:  # None: a Dict/Tuple space
            raise EnvFailed(f"{self._where(call)}: it returned an observation of shape "
                            f"{np.shape(obs)}, but its observation space has shape {expected}")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        call = f"reset(seed={seed})"
        result = self._call(call, self.env.reset, seed=seed, options=options)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            raise EnvFailed(f"{self._where(call)}: it returned {_form(result)}, not (obs, info): "
                            f"{OLD_GYM}")
        self._check_obs(result[0], call)
        self.episode_steps = 0
        return result

    def step(self, action: Any) -> Any:
        result = self._call("step", self.env.step, action)
        if not (isinstance(result, tuple) and len(result) == 5):
            raise EnvFailed(f"{self._where('step')}: it returned {_form(result)}, not (obs, "
                            f"reward, terminated, truncated, info): {OLD_GYM}")
        self._check_obs(result[0], "step")
        reward = result[1]
        if isinstance(reward, (bool, np.bool_)) or np.ndim(reward) != 0 or not np.isreal(reward):
            raise EnvFailed(f"{self._where('step')}: it returned the reward {reward!r}, not a "
                            "real number")
        self.episode_steps += 1
        return result


def _form(result: Any) -> str:
    """What a call returned, in a few words: ``a 4-tuple``, ``an ndarray of shape (3,)``."""
    if isinstance(result, tuple):
        return f"a {len(result)}-tuple"
    if isinstance(result, np.ndarray):
        return f"an ndarray of shape {result.shape}"
    return f"a {type(result).__name__}"
