"""Checkpoints that hold a whole run, are written atomically, and load without pickle.

A checkpoint is a directory ``RUN_DIR/checkpoints/step-<env_steps>/`` holding exactly:

- ``checkpoint.json``: format and version, the resolved config, the environment's spaces, every
  counter, every random generator's state, the noise state, the optimisers' settings, library
  versions, and the size and SHA-256 of each tensor file;
- ``agent.safetensors``: the networks and the optimisers' tensors;
- ``replay.safetensors``: the stored transitions.

It is written to a hidden temporary directory, flushed to disk, then renamed into place, so it
is either complete or absent, and a checkpoint it replaces stays complete until then
(:mod:`dpgkit.checkpoint_files`). Loading reads only JSON and safetensors, checks that no other
file is present, that every file has its recorded size and hash, that ``checkpoint.json`` passes
its own integrity check and holds values of the right types and ranges
(:mod:`dpgkit.checkpoint_checks`), so a truncated, edited or foreign checkpoint is refused with a
clear message, and a stranger's checkpoint cannot run code. A run directory's newest checkpoint
that fails these checks is skipped, with a warning, for the newest one that passes them.
"""

import json
import warnings
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import Tensor

from dpgkit import rundir
from dpgkit.agent import DDPGAgent
from dpgkit.agents import make_agent
from dpgkit.checkpoint_checks import check_belongs, check_integrity, check_name, check_values
from dpgkit.checkpoint_files import (  # noqa: F401  (dpgkit.checkpoint's names since version 1)
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    PREFIX,
    TENSOR_FILES,
    digest,
    library_versions,
    list_checkpoints,
    prune_checkpoints,
    step_checkpoint_dir,
    write_checkpoint,
)
from dpgkit.config_dict import config_from_dict
from dpgkit.errors import CheckpointError, DpgkitWarning

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


# --- reading -----------------------------------------------------------------------------------

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
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a checkpoint directory (it does not exist)")
    present = {p.name for p in directory.iterdir()}
    unexpected = present - {META_FILE, *TENSOR_FILES}
    if unexpected:
        names = ", ".join(sorted(unexpected))
        raise CheckpointError(f"{directory} holds unexpected file(s) {names}"
                              f": a dpgkit checkpoint holds only {META_FILE} and "
                              f"{', '.join(TENSOR_FILES)}; refusing to load it")
    meta = _read_meta(directory / META_FILE)
    check_integrity(meta, directory / META_FILE)
    try:
        check_values(meta)
    except CheckpointError as error:
        raise CheckpointError(f"{directory / META_FILE} holds a bad value: {error}") from None
    files = {}
    for name in TENSOR_FILES:
        path = directory / name
        expected = meta["files"].get(name)
        if not path.is_file() or not isinstance(expected, dict):
            raise CheckpointError(f"{path} is missing: the checkpoint is incomplete")
        if path.stat().st_size != expected.get("bytes") or digest(path) != expected.get("sha256"):
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
    """The agent saved at ``path`` (a run directory: its newest usable checkpoint; or a
    checkpoint) and its metadata."""
    directory, files, meta = usable_checkpoint(path)
    config = config_from_dict(meta["config"])  # checked with the other values
    agent = make_agent(meta["env"]["obs_dim"], meta["env"]["action_dim"], config)
    load_agent_tensors(agent, files["agent.safetensors"], meta)
    return agent, meta


def is_checkpoint_dir(path: Path) -> bool:
    """Whether ``path`` names one checkpoint (``.../step-N``, or a directory holding
    ``checkpoint.json``) rather than a run directory."""
    return (path / META_FILE).is_file() or (path.name.startswith(PREFIX) and
                                            path.parent.name == rundir.CHECKPOINTS)


def run_of(path: Path) -> Path:
    """The run directory of ``path``: itself, or for ``RUN/checkpoints/step-N``, ``RUN``."""
    if is_checkpoint_dir(path) and path.parent.name == rundir.CHECKPOINTS:
        return path.parent.parent
    return path


def resume_meta(path: Path) -> dict[str, Any] | None:
    """The ``checkpoint.json`` a resume of ``path`` most likely starts from, read cheaply (no
    tensor file hashed): the newest that reads and passes its integrity check and value checks;
    None if none."""
    candidates = [path] if is_checkpoint_dir(path) else list_checkpoints(
        rundir.checkpoints_dir(path))[::-1]
    for directory in candidates:
        try:
            meta = _read_meta(directory / META_FILE)
            check_integrity(meta, directory / META_FILE)
            check_values(meta)
            return meta
        except (CheckpointError, OSError):
            continue
    return None


Checked = tuple[Path, dict[str, dict[str, Tensor]], dict[str, Any]]


def usable_checkpoint(path: Path) -> Checked:
    """The checkpoint ``path`` names, read and checked: a checkpoint directory itself, or a run
    directory's newest checkpoint that passes its checks. Newer ones that fail (incomplete,
    damaged, bad values) are skipped with one warning line naming each and why; a complete
    checkpoint of another run (:func:`~dpgkit.checkpoint_checks.check_belongs`) stops it."""
    run_dir = run_of(path)
    if is_checkpoint_dir(path):
        candidates, skipped = [path], None
    else:
        find_checkpoint(path)  # no checkpoint at all, or a --seeds directory: say so
        candidates, skipped = list_checkpoints(rundir.checkpoints_dir(path))[::-1], []
    for directory in candidates:
        try:
            files, meta = read_checkpoint(directory)
        except CheckpointError as error:
            if skipped is None:
                raise
            skipped.append(f"{directory.name} ({error})")
            continue
        if directory.parent.name == rundir.CHECKPOINTS:  # a run's: one of this run's
            check_name(directory, meta)
            check_belongs(directory, meta, run_dir / rundir.CONFIG)
        if skipped:
            warnings.warn(f"skipped the newest checkpoint{'s' if len(skipped) > 1 else ''} of "
                          f"{run_dir}, which failed {'their' if len(skipped) > 1 else 'its'} "
                          f"checks: {'; '.join(skipped)}; using {directory}", DpgkitWarning,
                          stacklevel=2)
        return directory, files, meta
    raise CheckpointError(f"no usable checkpoint in {path}: every one fails its checks: "
                          f"{'; '.join(skipped or [])}")
