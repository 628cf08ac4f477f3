"""The environment's edge: making Gymnasium envs, checking their spaces, rescaling actions.

Gymnasium's envs are made only here and stepped only here and above (acting, the loop, the
API, and :mod:`dpgkit.evaluation`'s episodes); :mod:`dpgkit.episode_replay`,
:mod:`dpgkit.rendering` and :mod:`dpgkit.instances` wrap, render and record them; the learning
core never imports Gymnasium. Inside
dpgkit every action lies in [-1, 1]^d; :class:`ActionScaler` maps it to the env's Box bounds
per dimension just before ``env.step``.
"""

import contextlib
import difflib
import functools
import importlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.dmc import register_namespace
from dpgkit.env_checks import CheckedEnv
from dpgkit.episode_limit import limit_episodes
from dpgkit.episode_replay import EpisodeRecorder
from dpgkit.equations import scale_action
from dpgkit.errors import EnvError, EnvFailed
from dpgkit.obs_layout import flatten_structured, recorded_layout


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """The environment ``env_id`` names, checked: a Gymnasium id (``Pendulum-v1``,
    ``module:Env-v0``, ``dm_control/cartpole-swingup-v0`` through shimmy) or
    ``package.module:ClassName`` for an env class of your own, made with ``kwargs`` (a run's
    ``env_kwargs``, and ``max_episode_steps``: :mod:`dpgkit.episode_limit`). A Dict or Tuple
    observation of Boxes is flattened (:mod:`dpgkit.obs_layout`).

    Raises EnvError with a clear message for unknown ids and spaces DDPG cannot act in. MuJoCo's
    deprecation line about its own ``settotalmass`` attribute (HalfCheetah's model) is dropped.
    """
    env_class = _env_class(env_id)
    register_namespace(env_id)
    max_episode_steps = kwargs.pop("max_episode_steps", None) if env_class is not None else \
        kwargs.get("max_episode_steps")  # gym.make applies an id's limit itself
    try:  # the warnings of a make that fails are dropped: its error line says what to do
        with quiet_mujoco(env_id), warnings.catch_warnings(record=True) as caught:
            env = env_class(**kwargs) if env_class is not None else gym.make(env_id, **kwargs)
    except gym.error.Error as error:
        raise EnvError(_unknown_env_message(env_id, error)) from None
    except TypeError as error:
        given = [name for name in kwargs if name != "render_mode"]  # render_mode is dpgkit's
        if env_class is None and given:  # gym.make's own words follow the env's
            cause = error.__cause__ or error
            raise EnvError(f"cannot make {env_id} with the env_kwargs {', '.join(given)} "
                           f"({cause}): give only arguments the env takes") from None
        if env_class is None:
            raise
        made = f"with the env_kwargs {', '.join(given)}" if given else "with no arguments"
        raise EnvError(f"cannot construct {env_id} ({error}): dpgkit makes it {made}; give its "
                       "parameters defaults, pass them with --env_kwargs, or register it with "
                       "gymnasium.register and pass the id") from None
    except ModuleNotFoundError as error:
        raise EnvError(f"environment {env_id!r} needs the package {error.name!r}: "
                       f"install it (pip install {error.name}) and try again") from None
    except ImportError as error:  # Gymnasium's v2/v3 MuJoCo tasks need the retired mujoco-py
        raise EnvError(_old_env_message(env_id, error)) from None
    except Exception as error:  # the env's own constructor failed: one line, no traceback
        raise EnvFailed(f"the environment {env_id} failed in its constructor, before the first "
                        f"env step: {type(error).__name__}: {error}") from None
    for warning in caught:  # those Python's filters let through, shown now
        warnings.showwarning(warning.message, warning.category, warning.filename,
                             warning.lineno, warning.file, warning.line)
    env = CheckedEnv(env, env_id)  # every call checked once, under dpgkit's wrappers (an old-API
    # env would fail inside them with an unpacking error instead of its own one-line message)
    env = flatten_structured(env, env_id)
    check_spaces(env, env_id)
    return limit_episodes(env, env_id, max_episode_steps)


MUJOCO_NOISE = ("settotalmass",)
"""MuJoCo compiler warnings that say nothing to a dpgkit user (Gymnasium's own models use these
deprecated attributes); any other MuJoCo warning is printed as MuJoCo prints it."""


@contextlib.contextmanager
def quiet_mujoco(env_id: str = "") -> Iterator[None]:
    """Drop MuJoCo's :data:`MUJOCO_NOISE` warnings while ``env_id`` is made (or, once mujoco is
    imported, an env copied: a copy compiles its model again); a no-op for other envs (mujoco
    is imported only for an env that imports it anyway)."""
    spec = gym.registry.get(env_id)
    entry = spec.entry_point if spec is not None else env_id
    if not ("mujoco" in sys.modules or (isinstance(entry, str) and "mujoco" in entry)):
        yield
        return
    try:
        import mujoco
    except ImportError:
        yield
        return
    previous = mujoco.get_mju_user_warning()

    def handler(message: str) -> None:
        if not any(noise in message for noise in MUJOCO_NOISE):
            print(f"WARNING: {message}", file=sys.stderr)

    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def _old_env_message(env_id: str, error: ImportError) -> str:
    """What to use instead of an id whose env needs a package that cannot be installed here."""
    name, _, version = env_id.rpartition("-v")
    newer = sorted((s.version or 0, s.id) for s in gym.registry.values()
                   if s.id.rpartition("-v")[0] == name and str(s.version) != version)
    hint = (f"use {newer[-1][1]}, the same task on the maintained mujoco bindings (its returns "
            "differ a little from the older version's: docs/results.md)" if newer
            else "use a newer version of the task")
    return f"cannot make environment {env_id!r} ({str(error).strip().rstrip('.')}): {hint}"


def _env_class(env_id: str) -> type[gym.Env] | None:
    """For ``package.module:ClassName``, that class; None for anything gym.make should handle."""
    if ":" not in env_id:
        return None
    module_name, _, name = env_id.partition(":")
    if not module_name or not name:
        raise EnvError(f"environment {env_id!r} names no module or no class: write "
                       "package.module:ClassName (or a Gymnasium id such as Pendulum-v1)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise EnvError(f"cannot import {module_name!r} for environment {env_id!r} ({error}): "
                       "install it or put it on PYTHONPATH") from None
    found = getattr(module, name, None)
    if isinstance(found, type) and issubclass(found, gym.Env):
        return found
    return None  # gymnasium's own "module:EnvId-v0" form: the import registered the id


def _recorded_env(env_id: str, env_kwargs: dict[str, Any]) -> EpisodeRecorder:
    return EpisodeRecorder(make_env(env_id, **env_kwargs))


def make_vector_env(env_id: str, num_envs: int, mode: str,
                    env_kwargs: dict[str, Any] | None = None) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``make_env(env_id, **env_kwargs)`` stepped together, sync or async,
    each inside an :class:`EpisodeRecorder`.

    Autoreset is SAME_STEP: when env i's episode ends, the step returns the first observation of
    its next episode and the true final observation in ``info["final_obs"][i]``, so every step
    of the vector env is a real transition of every env.
    """
    env_fns = [functools.partial(_recorded_env, env_id, env_kwargs or {})
               for _ in range(num_envs)]
    vector_class = gym.vector.SyncVectorEnv if mode == "sync" else gym.vector.AsyncVectorEnv
    return vector_class(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


INSTANCE_PREFIX = "dpgkit-instance/"
"""The namespace of the env ids that stand for an env object given to the Python API, made
again only in the process that registered them (:mod:`dpgkit.instances`)."""


def _unknown_env_message(env_id: str, error: Exception) -> str:
    if env_id.startswith(INSTANCE_PREFIX):
        return (f"{env_id} stands for an env object given to dpgkit's Python API, which dpgkit "
                "could not record in a form another process can make: pass that env again in "
                "Python, as in dpgkit.load(RUN, env=my_env).evaluate() or "
                "dpgkit.DDPG.resume(RUN, env=my_env).learn() (dpgkit eval takes --env NAME, an "
                "env that makes the same one)")
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else "see gymnasium.pprint_registry()"
    return f"cannot make environment {env_id!r} ({error}): {hint}"


def check_spaces(env: gym.Env, env_id: str) -> None:
    """Refuse environments DDPG cannot act in: it needs a bounded Box action, a flat Box obs."""
    missing = [name for name in ("action_space", "observation_space") if not hasattr(env, name)]
    if missing:
        raise EnvError(f"{env_id} sets no {' and no '.join(missing)}: a Gymnasium env must set "
                       "both in its __init__")
    space = env.action_space
    if not isinstance(space, gym.spaces.Box):
        raise EnvError(
            f"{env_id} has a {type(space).__name__} action space, but DDPG needs a continuous Box "
            "action space: use an environment with continuous actions (e.g. Pendulum-v1)")
    if len(space.shape) != 1:
        raise EnvError(f"{env_id} has actions of shape {space.shape}; dpgkit needs a flat "
                       "(1-D) Box: flatten it with gymnasium.wrappers.FlattenObservation-style "
                       "wrapping of the action")
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise EnvError(f"{env_id} has an action Box with infinite bounds (low={space.low}, "
                       f"high={space.high}); DDPG's tanh actor needs finite bounds: wrap the env "
                       "with gymnasium.wrappers.ClipAction or give the Box finite low/high")
    if np.any(space.high <= space.low):
        raise EnvError(f"{env_id} has an action Box with high <= low (low={space.low}, "
                       f"high={space.high})")
    obs_space = env.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise EnvError(f"{env_id} has observation space {obs_space}; dpgkit needs a flat (1-D) "
                       "Box, or a Dict or Tuple of Boxes (which it flattens): wrap the env with "
                       "gymnasium.wrappers.FlattenObservation")


class ActionScaler:
    """a_env = low + (a + 1) (high - low) / 2, per dimension, from the env's Box bounds."""

    def __init__(self, low: Any, high: Any, dtype: Any = np.float32) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self.dtype = dtype

    @classmethod
    def for_space(cls, space: gym.spaces.Box) -> "ActionScaler":
        """The scaler of an env's action Box."""
        return cls(space.low, space.high, space.dtype)

    def to_env(self, action: np.ndarray) -> np.ndarray:
        """[-1, 1] -> [low, high], in the env's dtype, clipped against rounding."""
        env_action = scale_action(np.asarray(action, dtype=np.float64), self.low, self.high)
        return np.clip(env_action, self.low, self.high).astype(self.dtype)


def space_dims(env: gym.Env) -> tuple[int, int]:
    """(obs_dim, action_dim) of a checked env."""
    return int(env.observation_space.shape[0]), int(env.action_space.shape[0])


def env_info(env: gym.Env, env_id: str) -> dict[str, Any]:
    """What a policy trained on ``env`` depends on, as checkpoints record it: the env's id, its
    observation and action sizes and its action bounds."""
    obs_dim, action_dim = space_dims(env)
    scaler = ActionScaler.for_space(env.action_space)
    layout = recorded_layout(env)  # a flattened Dict/Tuple observation: where each part lies
    return {"env_id": env_id, "obs_dim": obs_dim, "action_dim": action_dim,
            "action_low": scaler.low.tolist(), "action_high": scaler.high.tolist(),
            **({"obs_layout": layout} if layout is not None else {})}


def describe_env(info: dict[str, Any]) -> str:
    """One line for an :func:`env_info` record (or a checkpoint's, which may lack keys)."""
    return (f"{info.get('env_id')} (obs_dim {info.get('obs_dim')}, actions in "
            f"{info.get('action_low')}..{info.get('action_high')})")


def check_fits(env: gym.Env, env_id: str, saved: dict[str, Any]) -> None:
    """Refuse an env whose observation size or action bounds differ from ``saved`` (the
    :func:`env_info` a checkpoint or a policy file recorded)."""
    check_spaces(env, env_id)
    now = env_info(env, env_id)
    if any(now[key] != saved.get(key) for key in now if key != "env_id"):
        raise EnvError(f"the policy was made for {describe_env(saved)}, but {env_id} is "
                       f"{describe_env(now)}: evaluate on the environment it was trained on")
