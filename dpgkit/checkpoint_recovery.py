"""Putting a run's checkpoints in order after a kill, before a resume reads them.

A checkpoint write, rewrite or prune (:mod:`dpgkit.checkpoint_files`) changes ``step-N`` only by
renames, through the hidden siblings ``.tmp-step-N``, ``.old-step-N`` and ``.pruned-step-N``; a
kill may leave any of them. :func:`recover` finishes what was under way without ever deleting a
complete checkpoint that no complete copy replaces.
"""

import os
import shutil
from pathlib import Path

from dpgkit import rundir
from dpgkit.checkpoint import read_checkpoint
from dpgkit.checkpoint_checks import check_belongs, check_name
from dpgkit.checkpoint_files import OLD, PREFIX, PRUNED, TMP, list_checkpoints
from dpgkit.errors import CheckpointError


def recover(checkpoints_dir: Path, run_dir: Path) -> None:
    """Put a run's checkpoints in order after a kill (see :mod:`dpgkit.checkpoint_files`):
    finish deleting pruned ones; put back a checkpoint moved aside whose replacement never
    arrived, or delete it if the replacement is in place; promote a complete ``.tmp-step-N``
    newer than every complete checkpoint (or whose ``step-N`` is broken), delete other ones.
    Every change is a rename or the deletion of a copy, so a kill here is recovered the same."""
    for pruned in checkpoints_dir.glob(f"{PRUNED}*"):
        shutil.rmtree(pruned, ignore_errors=True)
    for aside in checkpoints_dir.glob(f"{OLD}{PREFIX}*"):
        target = checkpoints_dir / aside.name[len(OLD):]
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(aside, target)
    for temporary in sorted(checkpoints_dir.glob(f"{TMP}{PREFIX}*")):
        target = checkpoints_dir / temporary.name[len(TMP):]
        newer = [p for p in list_checkpoints(checkpoints_dir) if p.name >= target.name]
        if is_complete(temporary, run_dir, target) and not any(
                is_complete(p, run_dir) for p in newer):
            if target.exists():  # broken: the complete copy takes its place
                os.rename(target, checkpoints_dir / f"{PRUNED}{target.name}")
            os.rename(temporary, target)
            shutil.rmtree(checkpoints_dir / f"{PRUNED}{target.name}", ignore_errors=True)
        else:  # incomplete, or older than a complete checkpoint: stale
            shutil.rmtree(temporary, ignore_errors=True)


def is_complete(directory: Path, run_dir: Path, named: Path | None = None) -> bool:
    """Whether ``directory`` holds a complete checkpoint of the run ``run_dir`` that passes its
    checks, to be called ``named`` (by default its own name)."""
    try:
        _, meta = read_checkpoint(directory)
        check_name(named or directory, meta)
        check_belongs(directory, meta, run_dir / rundir.CONFIG)
    except (CheckpointError, OSError):
        return False
    return True
