"""Structured observations: Dict and Tuple spaces (nested, of Boxes) flattened at the env's edge.

DeepMind Control Suite tasks (through shimmy) and goal-conditioned tasks observe a Dict of
Boxes; dpgkit's networks read one flat vector. :func:`flatten_structured` wraps such an env in
Gymnasium's ``FlattenObservation`` when it is made (:func:`dpgkit.envs.make_env`), so training,
``dpgkit eval`` and the Python API see the same flat vector, and :func:`obs_layout` describes
where each part of the structure lies in it. The layout is recorded with the env's spaces in
every checkpoint and policy file (``env["obs_layout"]``): evaluation refuses an env whose
layout differs, and ``dpgkit export`` prints it, since the exported policy takes the flat vector.

The order is Gymnasium's ``spaces.flatten``: a Dict's keys in the space's order (Gymnasium
sorts the keys of a plain dict), a Tuple's items in order, each Box flattened in C order.
"""

from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.errors import EnvError

STRUCTURED = (gym.spaces.Dict, gym.spaces.Tuple)


def _leaves(space: gym.Space, path: str = "") -> list[tuple[str, gym.Space]]:
    """(path, space) of every leaf of a Dict/Tuple space, in ``spaces.flatten``'s order; a
    path is the keys and indices from the top, joined by '/'."""
    if isinstance(space, gym.spaces.Dict):
        items = list(space.spaces.items())
    elif isinstance(space, gym.spaces.Tuple):
        items = [(str(i), s) for i, s in enumerate(space.spaces)]
    else:
        return [(path, space)]
    return [leaf for key, sub in items for leaf in _leaves(sub, f"{path}/{key}" if path else key)]


def obs_layout(space: gym.Space) -> list[dict[str, Any]]:
    """Where each leaf of a structured observation space lies in the flat vector:
    ``[{"key": "position", "shape": [3], "start": 0, "end": 3}, ...]``."""
    layout, start = [], 0
    for key, leaf in _leaves(space):
        size = int(np.prod(leaf.shape))
        layout.append({"key": key, "shape": list(leaf.shape), "start": start,
                       "end": start + size})
        start += size
    return layout


def flatten_structured(env: gym.Env, env_id: str) -> gym.Env:
    """``env`` with a Dict/Tuple observation space of Boxes (nested or not) wrapped in
    ``FlattenObservation``; any other env as it is. A structure with a leaf that is not a Box
    (Discrete, Text, ...) is refused: its flat form is not a continuous observation."""
    space = getattr(env, "observation_space", None)
    if not isinstance(space, STRUCTURED):
        return env
    others = [f"{key or '(top)'}: {type(leaf).__name__}" for key, leaf in _leaves(space)
              if not isinstance(leaf, gym.spaces.Box)]
    if others:
        raise EnvError(f"{env_id} observes a {type(space).__name__} space with parts that are "
                       f"not Boxes ({', '.join(others[:4])}); dpgkit flattens Dict and Tuple "
                       "observations of Boxes only: wrap the env to turn those parts into Boxes")
    return gym.wrappers.FlattenObservation(env)


def recorded_layout(env: gym.Env) -> list[dict[str, Any]] | None:
    """The layout of the structured observation ``env`` flattens (None if it flattens none),
    found along its wrappers."""
    layer: Any = env
    while layer is not None:
        if isinstance(layer, gym.wrappers.FlattenObservation) and isinstance(
                layer.env.observation_space, STRUCTURED):
            return obs_layout(layer.env.observation_space)
        layer = getattr(layer, "env", None)
    return None


def flatten_observation(observation: Any, layout: list[dict[str, Any]]) -> np.ndarray:
    """A structured observation (a dict or tuple, nested as the env gives it) as the flat
    float32 vector of ``layout``: what the policy reads (the Python API's ``predict``). A batch
    as a vector env gives it (every part with a leading axis B) becomes the batch (B, obs_dim).
    Raises ValueError (KeyError, IndexError for a missing part) when a part does not fit."""
    parts = []
    for part in layout:
        value = observation
        for key in part["key"].split("/"):
            value = value[int(key)] if isinstance(value, (tuple, list)) else value[key]
        value = np.asarray(value, dtype=np.float32)
        shape = tuple(part["shape"])
        batch = value.shape[:value.ndim - len(shape)]
        if len(batch) > 1 or value.ndim < len(shape) or value.shape[len(batch):] != shape:
            raise ValueError(f"part {part['key']!r} has shape {value.shape}: expected {shape}, "
                             f"or (B,) + {shape} for a batch")
        parts.append(value.reshape(*batch, -1))
    return np.concatenate(parts, axis=-1)


def describe_layout(layout: list[dict[str, Any]] | None) -> str:
    """'position [0:3], velocity [3:5]' (empty for a flat observation)."""
    return ", ".join(f"{part['key']} [{part['start']}:{part['end']}]" for part in layout or [])
