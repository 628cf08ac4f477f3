"""Checkpoints that load without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is a directory holding ``model.safetensors`` (the four networks, keys
``actor.<param>``, ``critic.<param>``, ...) and ``checkpoint.json`` (format version, the resolved
config, the environment's spaces, counters, library versions). Loading reads only these two
formats, so a checkpoint from a stranger cannot run code.
"""

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from dpgkit.agent import DDPGAgent
from dpgkit.config import DDPGConfig, config_from_dict, config_to_dict
from dpgkit.errors import CheckpointError, DpgkitError
from dpgkit.td3 import make_agent

FORMAT = "dpgkit-checkpoint"
FORMAT_VERSION = 1
TENSORS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"


def library_versions() -> dict[str, str]:
    """Versions of dpgkit and of the libraries a result depends on."""
    import gymnasium

    from dpgkit import __version__

    return {"dpgkit": __version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def save_checkpoint(directory: Path, agent: DDPGAgent, env_info: dict[str, Any],
                    counters: dict[str, int]) -> None:
    """Write the agent's networks and the run's metadata to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"{name}.{key}": value.detach().contiguous()
               for name, module in agent.modules().items()
               for key, value in module.state_dict().items()}
    safetensors.torch.save_file(tensors, str(directory / TENSORS_FILE))
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "config": config_to_dict(agent.config), "env": env_info, "counters": counters,
            "versions": library_versions()}
    (directory / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def read_meta(directory: Path) -> dict[str, Any]:
    """The checkpoint's JSON metadata, checked for format and version."""
    path = directory / META_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {directory} ({META_FILE} is missing): "
                              "give the run directory written by `dpgkit train`")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}): the checkpoint is corrupt"
                              ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dpgkit checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('format_version')}, this "
                              f"dpgkit reads version {FORMAT_VERSION}")
    for key in ("config", "env"):
        if not isinstance(meta.get(key), dict):
            raise CheckpointError(f"{path} lacks its {key!r} section: the checkpoint is corrupt")
    return meta


def load_agent(directory: Path) -> tuple[DDPGAgent, dict[str, Any]]:
    """The agent saved in ``directory`` and the checkpoint's metadata."""
    meta = read_meta(directory)
    try:
        config: DDPGConfig = config_from_dict(meta["config"])
        obs_dim, action_dim = int(meta["env"]["obs_dim"]), int(meta["env"]["action_dim"])
    except (DpgkitError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / META_FILE} holds a bad config or env section "
                              f"({error})") from None
    agent = make_agent(obs_dim, action_dim, config)
    path = directory / TENSORS_FILE
    try:
        tensors = safetensors.torch.load_file(str(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: the checkpoint is incomplete") from None
    except Exception as error:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path} is not a valid safetensors file ({error})") from None
    for name, module in agent.modules().items():
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0]
            raise CheckpointError(f"{path}: the {name} tensors do not match the config "
                                  f"({first_line})") from None
    return agent, meta
