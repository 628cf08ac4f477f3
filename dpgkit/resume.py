"""A training run as a checkpoint and back: everything needed to continue it bit for bit.

:func:`capture` turns a :class:`~dpgkit.train.Trainer` into tensor files and JSON; :func:`restore`
puts a freshly built Trainer into the captured state. Besides the networks and optimisers this
covers the replay buffer, the noise processes, every random generator (numpy's, torch's, TD3's
smoothing noise, and each env's through its episode record), the counters, the running update
statistics and the length of ``metrics.csv`` at the time.
"""

import random
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dpgkit.checkpoint import agent_tensors, load_agent_tensors
from dpgkit.config import config_to_dict
from dpgkit.envs import describe_env, restore_episodes
from dpgkit.errors import CheckpointError
from dpgkit.noise import OrnsteinUhlenbeckNoise
from dpgkit.td3 import TD3Agent

if TYPE_CHECKING:
    from dpgkit.train import Trainer

def capture(trainer: "Trainer") -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """The run's state: {tensor file: {name: tensor}} and the JSON metadata."""
    agent, replay = trainer.agent, trainer.replay
    tensors, agent_meta = agent_tensors(agent)
    tensors["rng.torch"] = torch.get_rng_state()
    if isinstance(agent, TD3Agent):
        tensors["rng.td3_smoothing"] = agent.generator.get_state()
    if isinstance(trainer.noise, OrnsteinUhlenbeckNoise):
        tensors["noise.x"] = torch.from_numpy(trainer.noise.x.copy())
    tensors["obs"] = torch.from_numpy(np.asarray(trainer.obs).copy())
    replay_arrays, replay_counters = replay.state()
    replay_tensors = {name: torch.from_numpy(value) for name, value in replay_arrays.items()}
    meta = {
        "config": config_to_dict(trainer.config), "env": trainer.env_info, **agent_meta,
        "counters": {"env_steps": trainer.env_steps, "updates": agent.updates,
                     "episodes": trainer.episodes_done, "update_credit": trainer.update_credit,
                     "replay": replay_counters},
        "episodes": [asdict(e) for e in trainer.episodes],
        "episode_records": list(trainer.envs.call("episode_record")),
        "rng": {"python": random.getstate(), "warmup": trainer.warmup_rng.bit_generator.state,
                "noise": trainer.noise.rng.bit_generator.state,
                "replay": trainer.replay_rng.bit_generator.state},
        "update_stats": {"sums": trainer.update_stats.sums, "count": trainer.update_stats.count},
        "last_eval": trainer.last_eval.tolist(),
        "metrics_bytes": trainer.writer.bytes_written(),
        "wall_seconds": trainer.wall_seconds(),
    }
    return {"agent.safetensors": tensors, "replay.safetensors": replay_tensors}, meta


def restore(trainer: "Trainer", files: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]
            ) -> None:
    """Put ``trainer`` (built from the same config, with fresh envs) into the captured state."""
    if meta["env"] != trainer.env_info:
        raise CheckpointError(f"the checkpoint was made for {describe_env(meta['env'])}, but "
                              f"the environment now is {describe_env(trainer.env_info)}: resume "
                              "with the environment the checkpoint was made for")
    try:
        _restore(trainer, files, meta)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise CheckpointError(f"the checkpoint's run state is incomplete or does not fit "
                              f"({type(error).__name__}: {error})") from None


def _restore(trainer: "Trainer", files: dict[str, dict[str, torch.Tensor]],
             meta: dict[str, Any]) -> None:
    tensors, replay_tensors = files["agent.safetensors"], files["replay.safetensors"]
    agent, replay, counters = trainer.agent, trainer.replay, meta["counters"]
    load_agent_tensors(agent, tensors, meta)
    agent.updates = int(counters["updates"])
    torch.set_rng_state(tensors["rng.torch"])
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    if isinstance(agent, TD3Agent):
        agent.generator.set_state(tensors["rng.td3_smoothing"])
    if isinstance(trainer.noise, OrnsteinUhlenbeckNoise):
        trainer.noise.x = tensors["noise.x"].numpy().copy()

    replay.load_state({name: value.numpy() for name, value in replay_tensors.items()},
                      counters["replay"])

    for generator, state in ((trainer.warmup_rng, meta["rng"]["warmup"]),
                             (trainer.noise.rng, meta["rng"]["noise"]),
                             (trainer.replay_rng, meta["rng"]["replay"])):
        generator.bit_generator.state = state
    trainer.env_steps = int(counters["env_steps"])
    trainer.episodes_done = int(counters["episodes"])
    trainer.update_credit = float(counters["update_credit"])
    for episode, saved in zip(trainer.episodes, meta["episodes"], strict=True):
        episode.total_reward, episode.length = float(saved["total_reward"]), int(saved["length"])
    trainer.update_stats.sums = {k: float(v) for k, v in meta["update_stats"]["sums"].items()}
    trainer.update_stats.count = int(meta["update_stats"]["count"])
    trainer.last_eval = np.asarray(meta["last_eval"], dtype=np.float64)

    trainer.obs = restore_episodes(trainer.envs, meta["episode_records"])
    if not np.array_equal(trainer.obs, tensors["obs"].numpy()):
        raise ValueError("replaying the running episodes did not reproduce the observations: "
                         "this environment is not deterministic given its seed and actions")
