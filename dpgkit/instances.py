"""Env objects given to the Python API, recorded so that another process can make them again.

``dpgkit.DDPG(env)`` with an env object records in the run's config (``env_id``, ``env_kwargs``)
the first of these that makes the same env:

1. its Gymnasium id, with the keyword arguments it was made with that differ from the id's
   registration (``env.spec``; ``max_episode_steps`` included, ``render_mode`` left out);
2. ``module:Class`` of its class, with those arguments, when the class can be imported by that
   name (not one defined in ``__main__`` or inside a function).

"The same env" is checked, not assumed: a fresh env made from the record must have the same
wrappers (each ``TimeLimit`` with its limit; Gymnasium's order and API checkers aside), the same
spaces, the same first :data:`CHECK_STEPS` steps as a copy of the object, from one seed and one
sequence of actions, and then the same plain attributes (numbers and strings, such as a
constructor's arguments kept as attributes). The run then trains on envs made from the
record, so a resume in another process (``dpgkit train --resume``) and
``dpgkit.load(run).evaluate()`` make that env.

An object that fails the check (wrappers added by hand, an attribute changed after it was made,
a class in your script) is trained on copies of itself (``copy.deepcopy``), under an id only
this process knows (``dpgkit-instance/<Class>-<hex>-v0``); in another process, pass the env
again (``env=``). The object itself is never stepped: the comparison steps a copy. A copy of a
class that rebuilds itself from its constructor's arguments (Gymnasium's ``EzPickle`` envs, the
MuJoCo tasks among them) has lost attributes changed after construction: give such settings as
constructor arguments (``gym.make(id, **kwargs)``, ``env_kwargs=``), which are recorded.
"""

import copy
import functools
import importlib
import uuid
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.envs import INSTANCE_PREFIX, check_spaces, env_info, make_env, quiet_mujoco
from dpgkit.errors import DpgkitError
from dpgkit.obs_layout import flatten_structured

CHECK_STEPS = 10
_CHECKERS = {"OrderEnforcing", "PassiveEnvChecker",  # they check calls, not the dynamics
             "DefaultTimeLimit",  # what make_env adds to an env without a limit (episode_limit)
             "CheckedEnv"}  # and the API check it puts around every env (env_checks)


def record(env: gym.Env) -> tuple[str, dict[str, Any]]:
    """``(env_id, env_kwargs)`` for an env object: a form another process can make (see the
    module's docstring), or else an id registered in this process that makes copies of it.
    The object itself is left as it was: the comparison steps a copy."""
    name = type(env.unwrapped).__name__
    flat = flatten_structured(env, name)  # a Dict/Tuple of Boxes: as make_env flattens it
    check_spaces(flat, name)
    steps = _steps(flatten_structured(_copy(env), name))
    for env_id, kwargs in _candidates(env):
        if _makes_the_same(flat, steps, env_id, kwargs):
            return env_id, kwargs
    env_id = f"{INSTANCE_PREFIX}{type(env.unwrapped).__name__}-{uuid.uuid4().hex[:8]}-v0"
    _register_copies(env_id, env)
    return env_id, {}


def attach(env_id: str, env_kwargs: dict[str, Any], env: gym.Env | str) -> None:
    """Let this process make a run's recorded env from ``env`` (``DDPG.resume(run, env=...)``):
    an id of an env object becomes copies of ``env`` (or the env an id or ``module:Class``
    names); a recorded form that any process makes must be the one ``env`` is made from."""
    if env_id.startswith(INSTANCE_PREFIX):
        _register_copies(env_id, env)
        return
    given = (env, {}) if isinstance(env, str) else next(
        (c for c in _candidates(env) if _makes_the_same(env, _steps(_copy(env)), *c)), None)
    if given != (env_id, env_kwargs):
        made = f"{given[0]} with {given[1]}" if given else "in a way dpgkit cannot record"
        raise DpgkitError(f"this run trained on {env_id} with env_kwargs {env_kwargs}, which "
                          f"dpgkit makes itself, and the env given is {made}: leave out env= to "
                          "continue the run on its own env")


def _register_copies(env_id: str, env: gym.Env | str) -> None:
    gym.registry.pop(env_id, None)  # a run resumed again in the same process
    entry = (functools.partial(make_env, env) if isinstance(env, str)
             else functools.partial(_copy, env))
    gym.register(env_id, entry_point=entry)


def _copy(env: gym.Env) -> gym.Env:
    with quiet_mujoco():  # a MuJoCo env's copy compiles its model again
        return copy.deepcopy(env)


def _candidates(env: gym.Env) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        spec = env.spec
    except Exception:  # a wrapper of the user's whose spec cannot be built
        spec = None
    kwargs = {}
    if spec is not None:
        registered = gym.registry.get(spec.id)
        base = registered.kwargs if registered is not None else {}
        kwargs = {k: v for k, v in spec.kwargs.items()
                  if k != "render_mode" and (k not in base or base[k] != v)}
        if registered is not None and not spec.additional_wrappers:
            limit = ({"max_episode_steps": spec.max_episode_steps}
                     if spec.max_episode_steps != registered.max_episode_steps else {})
            yield spec.id, {**kwargs, **limit}
    cls = type(env.unwrapped)
    if cls.__module__ != "__main__" and "." not in cls.__qualname__:
        try:
            importable = getattr(importlib.import_module(cls.__module__), cls.__qualname__,
                                 None) is cls
        except ImportError:
            importable = False
        if importable:
            yield f"{cls.__module__}:{cls.__qualname__}", kwargs


def _makes_the_same(env: gym.Env, steps: list[tuple], env_id: str, kwargs: dict[str, Any]
                    ) -> bool:
    """Whether ``make_env(env_id, **kwargs)`` makes an env with ``env``'s wrappers and spaces
    that takes its ``steps``."""
    try:
        fresh = make_env(env_id, **kwargs)
    except Exception:  # EnvError, or whatever the env's constructor raises
        return False
    try:
        return (_layers(env) == _layers(fresh) and env_info(env, "") == env_info(fresh, "")
                and _steps(fresh) == steps)
    except Exception:  # a step that fails: not an env to remake
        return False
    finally:
        fresh.close()


def _layers(env: gym.Env) -> list[tuple[str, Any]]:
    """The env's wrappers and itself, outside in, each with its time limit if it has one."""
    layers = []
    while True:
        if type(env).__name__ not in _CHECKERS:
            layers.append((type(env).__name__, getattr(env, "_max_episode_steps", None)))
        if not isinstance(env, gym.Wrapper):
            return layers
        env = env.env


def _steps(env: gym.Env) -> list[tuple]:
    """The first observation from seed 12345, then each step's (obs, reward, terminated,
    truncated) for a fixed sequence of actions, until an episode ends or :data:`CHECK_STEPS`
    steps, then the env's plain attributes (numbers, strings: its settings, and the state these
    steps left); arrays as bytes, so two lists compare exactly."""
    rng = np.random.default_rng(0)
    space = env.action_space
    obs, _ = env.reset(seed=12345)
    steps: list[tuple] = [(np.asarray(obs).tobytes(),)]
    for _ in range(CHECK_STEPS):
        obs, reward, terminated, truncated, _ = env.step(
            rng.uniform(space.low, space.high).astype(space.dtype))
        steps.append((np.asarray(obs).tobytes(), float(reward), bool(terminated),
                      bool(truncated)))
        if terminated or truncated:
            break
    plain = (bool, int, float, str, type(None))
    steps.append(tuple(sorted((k, v) for k, v in vars(env.unwrapped).items()
                              if isinstance(v, plain) and k != "render_mode")))
    return steps
