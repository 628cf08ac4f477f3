"""A policy alone in one small file: what ``save(path)`` writes and ``load(path)`` reads.

The file is a zip archive, as Stable-Baselines3's ``save`` writes, so its default ``.zip`` name
says what it is. It holds exactly two members:

- ``policy.json``: the format and its version, the algorithm, the run's config, the
  environment's spaces (``env``, as checkpoints record them), the env steps trained, the run
  directory it comes from, library versions, and the size and SHA-256 of the tensor file;
- ``actor.safetensors``: the deployed policy's tensors: the actor mu_theta's parameters (and its
  batch-norm statistics, if any); for TD7 its checkpointed actor (``actor.*``) and the state
  encoder it acts with (``encoder.*``); and ``obs_norm.*``, normalize_obs' statistics, if any.

No critic, optimiser or replay: a 256-256 HalfCheetah actor is about 300 kB (TD7's policy, with
its state encoder, about 2 MB), where its run's checkpoint holds 100 MB of replay. Reading opens
only JSON and safetensors and checks the hash, so a policy file cannot run code, as a checkpoint
cannot.
"""

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import safetensors.torch
from torch import Tensor

from dpgkit.checkpoint import library_versions
from dpgkit.errors import CheckpointError, DpgkitError

FORMAT = "dpgkit-policy"
FORMAT_VERSION = 1
META = "policy.json"
TENSORS = "actor.safetensors"


def policy_path(path: Path) -> Path:
    """Where ``save(path)`` writes: ``path`` itself, with ``.zip`` added when it has no suffix
    (Stable-Baselines3's rule: ``save("pendulum")`` writes ``pendulum.zip``)."""
    return path if path.suffix else path.with_name(path.name + ".zip")


def write_policy(path: Path, actor: dict[str, Tensor], meta: dict[str, Any]) -> Path:
    """Write the actor's tensors and ``meta`` (algorithm, config, env, env_steps, run_dir) as
    the policy file at ``policy_path(path)``, atomically (a temporary file, then a rename)."""
    target = policy_path(path)
    if target.is_dir():
        raise DpgkitError(f"cannot save the policy to {target}: it is a directory; give a file "
                          f"name such as {target / 'policy.zip'} (save(path, whole_run=True) "
                          "writes a run directory)")
    data = safetensors.torch.save({k: v.detach().clone().contiguous() for k, v in actor.items()})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta,
            "versions": library_versions(),
            "files": {TENSORS: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}}
    temporary = target.with_name(f".tmp-{target.name}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(META, json.dumps(meta, indent=1))
            archive.writestr(TENSORS, data)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise DpgkitError(f"cannot write the policy file {target} ({error.strerror}): choose "
                          "another path") from None
    return target


def is_policy_file(path: Path) -> bool:
    """Whether ``path`` is a file that may be a policy file (a zip archive)."""
    return path.is_file() and zipfile.is_zipfile(path)


def read_policy(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The actor's tensors and the metadata of the policy file ``path``, verified; a
    CheckpointError if it is not one, or is truncated, edited or of another version."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(archive.namelist())
            if names != sorted([META, TENSORS]):
                raise CheckpointError(f"{path} is a zip archive but not a dpgkit policy file "
                                      f"(it holds {', '.join(names[:5]) or 'nothing'}; a policy "
                                      f"file holds {META} and {TENSORS})")
            meta = json.loads(archive.read(META))
            data = archive.read(TENSORS)
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable dpgkit policy file ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dpgkit policy file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has policy format version {meta.get('format_version')}; "
                              f"this dpgkit reads version {FORMAT_VERSION}")
    expected = meta.get("files", {}).get(TENSORS, {})
    if len(data) != expected.get("bytes") or hashlib.sha256(data).hexdigest() != expected.get(
            "sha256"):
        raise CheckpointError(f"{path}: {TENSORS} does not match its recorded size and SHA-256: "
                              "the file is truncated or was changed")
    for key in ("config", "env"):
        if not isinstance(meta.get(key), dict):
            raise CheckpointError(f"{path} lacks its {key!r} section: the file is corrupt")
    try:
        return safetensors.torch.load(data), meta
    except Exception as error:  # safetensors raises its own error types for corrupt data
        raise CheckpointError(f"{path}: {TENSORS} is not valid safetensors ({error})") from None
