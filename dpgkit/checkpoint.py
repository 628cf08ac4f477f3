"""Checkpoints that hold a whole run, are written atomically, and load without pickle.

A checkpoint is a directory ``RUN_DIR/checkpoints/step-<env_steps>/`` holding exactly:

- ``checkpoint.json``: format and version, the resolved config, the environment's spaces, every
  counter, every random generator's state, the noise state, the optimisers' settings, library
  versions, and the size and SHA-256 of each tensor file;
- ``agent.safetensors``: the networks and the optimisers' tensors;
- ``replay.safetensors``: the stored transitions.

It is written to a hidden temporary directory, flushed to disk, then renamed into place, so it
is either complete or absent. Loading reads only JSON and safetensors, checks that no other file
is present and that every file has its recorded size and hash, so a truncated, edited or foreign
checkpoint is refused with a clear message, and a stranger's checkpoint cannot run code.
"""

import hashlib
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import Tensor

from dpgkit import rundir
from dpgkit.agent import DDPGAgent
from dpgkit.config import config_from_dict
from dpgkit.errors import CheckpointError, DpgkitError
from dpgkit.td7 import make_agent
from dpgkit.version import __version__

FORMAT = "dpgkit-checkpoint"
FORMAT_VERSION = 3  # 3: replay stored once per field (rows, cursors)
META_FILE = "checkpoint.json"
TENSOR_FILES = ("agent.safetensors", "replay.safetensors")
PREFIX = "step-"


def library_versions() -> dict[str, str]:
    """Versions of dpgkit and of the libraries a result depends on."""
    import gymnasium

    return {"dpgkit": __version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


# --- the agent as tensors and JSON -------------------------------------------------------------

def agent_tensors(agent: DDPGAgent) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Every network parameter and buffer, and the optimisers' state, as flat named tensors;
    the optimisers' settings (param_groups) as JSON. Each is a copy: with the fast path they are
    views of shared flat tensors (:mod:`dpgkit.flatlayout`), which safetensors will not save."""
    tensors = {f"{name}.{key}": value.clone() for name, module in agent.modules().items()
               for key, value in module.state_dict().items()}
    groups = {}
    for name, optimizer in agent.optimizers().items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                tensors[f"optimizer.{name}.{index}.{slot}"] = torch.as_tensor(value).clone()
    return tensors, {"param_groups": groups}


def load_agent_tensors(agent: DDPGAgent, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """The inverse of :func:`agent_tensors`; a missing or misshapen tensor is a CheckpointError."""
    for name, module in agent.modules().items():
        state = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0]
            raise CheckpointError(f"the {name} tensors do not fit this config ({first_line})"
                                  ) from None
    for name, optimizer in agent.optimizers().items():
        slots: dict[int, dict[str, Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(f"optimizer.{name}."):
                index, slot = key[len(f"optimizer.{name}."):].split(".")
                slots.setdefault(int(index), {})[slot] = value
        # the kernel that steps the optimiser (fused, foreach) is this machine's choice, not the
        # checkpoint's: a run saved where torch has fused Adam resumes where it has not
        kernels = [{k: g[k] for k in ("fused", "foreach") if k in g}
                   for g in optimizer.param_groups]
        try:
            optimizer.load_state_dict({"state": slots,
                                       "param_groups": meta["param_groups"][name]})
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"the {name} optimizer state does not fit ({error})") from None
        for group, kernel in zip(optimizer.param_groups, kernels, strict=False):
            group.update(kernel)


# --- writing -----------------------------------------------------------------------------------

def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _file_mode() -> int:
    """The mode a new file gets here: 0666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(directory: Path, files: dict[str, dict[str, Tensor]],
                     meta: dict[str, Any]) -> Path:
    """Write ``files`` (tensor file name -> named tensors) and ``meta`` as the checkpoint
    ``directory``, atomically: into a hidden sibling first, flushed, then renamed into place.
    An existing ``directory`` is replaced only if it is a checkpoint (holds nothing else)."""
    if directory.exists():
        others = ([] if directory.is_dir() else [directory.name]) or sorted(
            p.name for p in directory.iterdir() if p.name not in (META_FILE, *TENSOR_FILES))
        if others:
            raise CheckpointError(f"{directory} exists and holds {', '.join(others[:5])}, not "
                                  "only a checkpoint: save to a new or an empty directory "
                                  "(a checkpoint is replaced, nothing else is)")
    temporary = directory.parent / f".tmp-{directory.name}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    manifest = {}
    for name, tensors in files.items():
        path = temporary / name
        safetensors.torch.save_file({k: v.detach().contiguous() for k, v in tensors.items()},
                                    str(path))
        os.chmod(path, _file_mode())  # safetensors writes 0600; others in a group may eval it
        _fsync(path)
        manifest[name] = {"bytes": path.stat().st_size, "sha256": _digest(path)}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "files": manifest,
            "versions": library_versions()}
    with (temporary / META_FILE).open("w") as file:
        json.dump(meta, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    _fsync(temporary)
    if directory.exists():  # the same checkpoint written again (e.g. after a resume)
        shutil.rmtree(directory)
    os.rename(temporary, directory)
    _fsync(directory.parent)
    return directory


def step_checkpoint_dir(checkpoints_dir: Path, env_steps: int) -> Path:
    """Where a run keeps its checkpoint of ``env_steps``."""
    return checkpoints_dir / f"{PREFIX}{env_steps:012d}"


def prune_checkpoints(checkpoints_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints of a run."""
    for old in list_checkpoints(checkpoints_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


# --- reading -----------------------------------------------------------------------------------

def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """The complete checkpoints in ``checkpoints_dir``, oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    return sorted(p for p in checkpoints_dir.iterdir()
                  if p.is_dir() and p.name.startswith(PREFIX))


def find_checkpoint(path: Path) -> Path:
    """The checkpoint ``path`` names: a checkpoint directory, or a run directory (its newest)."""
    if (path / META_FILE).is_file():
        return path
    found = list_checkpoints(rundir.checkpoints_dir(path))
    seeds = sorted(p.parent.name for p in path.glob(f"{rundir.SEED_PREFIX}*/{rundir.CHECKPOINTS}"))
    if not found and seeds:
        raise CheckpointError(f"{path} holds the runs of --seeds ({', '.join(seeds)}), not one "
                              f"run: name one of them, as in {path / seeds[0]}")
    if not found:
        raise CheckpointError(f"no checkpoint in {path}: give a run directory written by "
                              "`dpgkit train` (it holds checkpoints/step-*/)")
    return found[-1]


def read_checkpoint(directory: Path) -> tuple[dict[str, dict[str, Tensor]], dict[str, Any]]:
    """The tensor files and the metadata of a checkpoint, each verified; CheckpointError if
    anything is missing, extra, truncated, edited or not a dpgkit checkpoint."""
    present = {p.name for p in directory.iterdir()}
    unexpected = present - {META_FILE, *TENSOR_FILES}
    if unexpected:
        names = ", ".join(sorted(unexpected))
        raise CheckpointError(f"{directory} holds unexpected file(s) {names}"
                              f": a dpgkit checkpoint holds only {META_FILE} and "
                              f"{', '.join(TENSOR_FILES)}; refusing to load it")
    meta = _read_meta(directory / META_FILE)
    files = {}
    for name in TENSOR_FILES:
        path = directory / name
        expected = meta["files"].get(name)
        if not path.is_file() or not isinstance(expected, dict):
            raise CheckpointError(f"{path} is missing: the checkpoint is incomplete")
        if path.stat().st_size != expected.get("bytes") or _digest(path) != expected.get("sha256"):
            raise CheckpointError(f"{path} does not match its recorded size and SHA-256: the file "
                                  "is truncated or was changed; use an older checkpoint")
        try:
            files[name] = safetensors.torch.load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for corrupt files
            raise CheckpointError(f"{path} is not a valid safetensors file ({error})") from None
    return files, meta


def _read_meta(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the checkpoint is incomplete")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}): the checkpoint is corrupt"
                              ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dpgkit checkpoint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {meta.get('format_version')}; this "
                              f"dpgkit reads version {FORMAT_VERSION}")
    for key in ("config", "env", "files", "counters", "param_groups"):
        if not isinstance(meta.get(key), dict):
            raise CheckpointError(f"{path} lacks its {key!r} section: the checkpoint is corrupt")
    return meta


def load_agent(path: Path) -> tuple[DDPGAgent, dict[str, Any]]:
    """The agent saved at ``path`` (a run directory or a checkpoint) and its metadata."""
    directory = find_checkpoint(path)
    files, meta = read_checkpoint(directory)
    try:
        config = config_from_dict(meta["config"])
        obs_dim, action_dim = int(meta["env"]["obs_dim"]), int(meta["env"]["action_dim"])
    except (DpgkitError, KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / META_FILE} holds a bad config or env section "
                              f"({error})") from None
    agent = make_agent(obs_dim, action_dim, config)
    load_agent_tensors(agent, files["agent.safetensors"], meta)
    return agent, meta
