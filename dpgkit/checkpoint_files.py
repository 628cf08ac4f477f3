"""A run's checkpoint directories on disk: written so that a complete one is never lost, pruned,
and put back in order after a kill.

Writing ``checkpoints/step-N`` goes through hidden siblings that say how far it got:

    .tmp-step-N     being written; complete once renamed into place
    .old-step-N     the complete checkpoint of the same step that it replaces, moved aside
                    (rename) before the new one is renamed into place, deleted after
    .pruned-step-N  an old checkpoint being deleted by pruning

Every change of ``step-N`` is a rename, so a kill at any moment leaves each step either complete
or absent, with its complete copy in one of the siblings; :func:`dpgkit.checkpoint_recovery.recover`
puts them in order at the next resume. A write that fails (a full disk: any OSError) removes
its partial ``.tmp-step-N`` and raises :class:`~dpgkit.errors.WriteFailed` naming the newest
checkpoint left.
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
from safetensors import SafetensorError
from torch import Tensor

from dpgkit.checkpoint_checks import seal
from dpgkit.errors import CheckpointError, WriteFailed
from dpgkit.version import __version__

FORMAT = "dpgkit-checkpoint"
FORMAT_VERSION = 3  # 3: replay stored once per field (rows, cursors); "integrity" came later
META_FILE = "checkpoint.json"
TENSOR_FILES = ("agent.safetensors", "replay.safetensors")
PREFIX = "step-"
TMP, OLD, PRUNED = ".tmp-", ".old-", ".pruned-"


def library_versions() -> dict[str, str]:
    """Versions of dpgkit and of the libraries a result depends on."""
    import gymnasium

    return {"dpgkit": __version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def digest(path: Path) -> str:
    """The SHA-256 of a file, as hex."""
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
    ``directory``: into ``.tmp-<name>`` first, flushed, then renamed into place. An existing
    ``directory`` is replaced only if it is a checkpoint (holds nothing else), and stays
    complete until its replacement is in place (moved aside to ``.old-<name>``, deleted after)."""
    if directory.exists():
        others = ([] if directory.is_dir() else [directory.name]) or sorted(
            p.name for p in directory.iterdir() if p.name not in (META_FILE, *TENSOR_FILES))
        if others:
            raise CheckpointError(f"{directory} exists and holds {', '.join(others[:5])}, not "
                                  "only a checkpoint: save to a new or an empty directory "
                                  "(a checkpoint is replaced, nothing else is)")
    temporary = directory.parent / f"{TMP}{directory.name}"
    aside = directory.parent / f"{OLD}{directory.name}"
    try:
        _write_files(temporary, files, meta)
        if directory.exists():  # the same step written again (e.g. after a resume)
            shutil.rmtree(aside, ignore_errors=True)  # a leftover copy of it, complete or not
            os.rename(directory, aside)
        os.rename(temporary, directory)
        _fsync(directory.parent)
    except BaseException as error:  # an OSError, or a second stop signal: undo, then report
        if aside.is_dir() and not directory.exists():
            os.rename(aside, directory)
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, (OSError, SafetensorError)):
            raise WriteFailed(_write_failed(directory, error)) from None
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return directory


def _write_files(temporary: Path, files: dict[str, dict[str, Tensor]],
                 meta: dict[str, Any]) -> None:
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    manifest = {}
    for name, tensors in files.items():
        path = temporary / name
        safetensors.torch.save_file({k: v.detach().contiguous() for k, v in tensors.items()},
                                    str(path))
        os.chmod(path, _file_mode())  # safetensors writes 0600; others in a group may eval it
        _fsync(path)
        manifest[name] = {"bytes": path.stat().st_size, "sha256": digest(path)}
    meta = seal({"format": FORMAT, "format_version": FORMAT_VERSION, **meta, "files": manifest,
                 "versions": library_versions()})
    with (temporary / META_FILE).open("w") as file:
        json.dump(meta, file, indent=1)
        file.flush()
        os.fsync(file.fileno())
    _fsync(temporary)


def _write_failed(directory: Path, error: Exception) -> str:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    kept = [p for p in list_checkpoints(directory.parent) if p != directory]
    if directory.is_dir():
        kept.append(directory)
    last = f"the last good checkpoint is {max(kept)}" if kept else "no checkpoint was written"
    return (f"cannot write the checkpoint {directory} ({reason}): the partial checkpoint was "
            f"removed; {last}")


def step_checkpoint_dir(checkpoints_dir: Path, env_steps: int) -> Path:
    """Where a run keeps its checkpoint of ``env_steps``."""
    return checkpoints_dir / f"{PREFIX}{env_steps:012d}"


def prune_checkpoints(checkpoints_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints of a run (each renamed out of the list
    first, so a kill mid-delete leaves no half-deleted ``step-N``)."""
    for old in list_checkpoints(checkpoints_dir)[:-keep]:
        doomed = old.with_name(f"{PRUNED}{old.name}")
        os.rename(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def list_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """The checkpoints in ``checkpoints_dir`` (``step-*``), oldest first."""
    if not checkpoints_dir.is_dir():
        return []
    return sorted(p for p in checkpoints_dir.iterdir()
                  if p.is_dir() and p.name.startswith(PREFIX))
