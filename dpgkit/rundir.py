"""The run directory: what it holds, its default name, the JSON files written into it, and the
check that lets ``--overwrite`` delete an earlier run and nothing else.

A run directory (``dpgkit train --out RUN_DIR``, ``dpgkit.DDPG(..., run_dir=...)``) holds:

    config.json        the resolved config            (written when the run starts)
    metrics.csv        one row per episode and evaluation; TensorBoard's events.out.tfevents.*
    checkpoints/       step-<env_steps>/, the newest keep_checkpoints of them
    curve.png          the learning curve             (written at the end)
    summary.json       the final evaluation and counts (written at the end)
    divergence.json    what became NaN or infinite, if the run diverged
    eval.json          the last ``dpgkit eval``; videos/ and policy*.onnx / policy*.pt its
                       other commands' files

A ``--seeds`` directory holds one run directory per seed, ``seed<N>/``, and a ``summary.json``
over them.
"""

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from dpgkit.config import DDPGConfig
from dpgkit.config_dict import config_to_dict
from dpgkit.errors import DpgkitError, writable_directory
from dpgkit.runlock import check_not_in_use

CONFIG = "config.json"
METRICS = "metrics.csv"
CHECKPOINTS = "checkpoints"
CURVE = "curve.png"
SUMMARY = "summary.json"
DIVERGENCE = "divergence.json"
EVAL = "eval.json"
VIDEOS = "videos"
POLICY_FILES = {"onnx": "policy.onnx", "torchscript": "policy.pt"}
"""The file ``dpgkit export`` writes for each format, by default."""
TENSORBOARD_PREFIX = "events.out.tfevents."
SEED_PREFIX = "seed"

# everything dpgkit writes into a run directory; --overwrite deletes nothing else
RUN_FILES = {CONFIG, METRICS, SUMMARY, CURVE, EVAL, DIVERGENCE, CHECKPOINTS, VIDEOS,
             *POLICY_FILES.values()}


def default_run_dir(config: DDPGConfig, seeds: str | None = None) -> Path:
    """``runs/<env>-<preset>-seed<N>-<time>`` (``seeds<SEEDS>`` for ``--seeds``), the env id with
    every character other than letters, digits, ``_``, ``.`` and ``-`` replaced by ``_``. The
    same rule for the command line and the Python API."""
    env = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.env_id)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    which = f"seeds{seeds.replace(',', '_')}" if seeds else f"{SEED_PREFIX}{config.seed}"
    return Path("runs") / f"{env}-{config.preset}-{which}-{stamp}"


def seed_dir(out: Path, seed: int) -> Path:
    """The run directory of ``seed`` inside a ``--seeds`` directory."""
    return out / f"{SEED_PREFIX}{seed}"


def checkpoints_dir(run_dir: Path) -> Path:
    return run_dir / CHECKPOINTS


def create_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` for a new run; refuse one that holds files, or that cannot be written."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise DpgkitError(f"run directory {run_dir} already exists and is not empty: choose "
                          "another --out, or delete it")
    writable_directory(run_dir, "--out", what="the run directory")


def taken_message(run_dir: Path) -> str:
    """Why an --out that holds files is refused, and the flags that take it."""
    if (run_dir / METRICS).is_file():
        return (f"--out {run_dir} already exists and holds a run: continue it with dpgkit train "
                f"--resume {run_dir}, replace it with --overwrite, or choose another --out")
    return (f"--out {run_dir} already exists and is not empty: choose another --out (--resume "
            "continues a dpgkit run and --overwrite replaces one; neither touches other files)")


def write_json(path: Path, data: dict[str, Any], default: Any = None) -> None:
    """``data`` as indented JSON; ``default`` turns values JSON cannot hold into something it
    can (``str``)."""
    path.write_text(json.dumps(data, indent=2, default=default) + "\n")


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json``: a run's final evaluation and counts, or a ``--seeds`` directory's."""
    write_json(run_dir / SUMMARY, summary)


def write_divergence(run_dir: Path, report: dict[str, Any]) -> Path:
    """``divergence.json``: what became NaN or infinite, and where; returns its path."""
    write_json(run_dir / DIVERGENCE, report, default=str)
    return run_dir / DIVERGENCE


def write_config(run_dir: Path, config: DDPGConfig) -> str:
    """Write ``config.json`` (the resolved config); return its text."""
    text = json.dumps(config_to_dict(config), indent=2)
    temporary = run_dir / f".tmp-{CONFIG}"  # then renamed: a kill never leaves half a file,
    temporary.write_text(text + "\n")      # which a resume would compare checkpoints with
    os.replace(temporary, run_dir / CONFIG)
    return text


def _foreign_entries(run_dir: Path, seeds: bool = True) -> list[str]:
    """The entries of ``run_dir`` that dpgkit does not write into a run (or, with ``seeds``,
    into a directory of ``seed<N>/`` runs), relative to ``run_dir``."""
    foreign = []
    for entry in sorted(run_dir.iterdir()):
        name = entry.name
        if seeds and entry.is_dir() and name.startswith(SEED_PREFIX) and \
                name[len(SEED_PREFIX):].isdigit():
            foreign += [f"{name}/{inner}" for inner in _foreign_entries(entry, seeds=False)]
        elif not (name in RUN_FILES or name == f".tmp-{CONFIG}"
                  or name.startswith(TENSORBOARD_PREFIX)
                  or (name.startswith("policy") and name.endswith((".onnx", ".pt")))):
            foreign.append(name)
    return foreign


def remove_earlier_run(run_dir: Path) -> None:
    """Delete an earlier run's directory for --overwrite, never anything that is not one."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise DpgkitError(f"--out {run_dir} is a file, not a run directory: choose another "
                          "--out (--overwrite replaces only an earlier run)")
    if not any(run_dir.iterdir()):
        return
    is_run = (run_dir / METRICS).is_file() or any(run_dir.glob(f"{SEED_PREFIX}*/{METRICS}"))
    foreign = _foreign_entries(run_dir)
    if not is_run or foreign:
        what = (f"no {METRICS}" if not is_run
                else "files dpgkit did not write: " + ", ".join(foreign[:5])
                + (", ..." if len(foreign) > 5 else ""))
        raise DpgkitError(f"{run_dir} does not look like a dpgkit run directory ({what}); "
                          "--overwrite deletes only runs: remove it yourself or choose "
                          "another --out")
    check_not_in_use(run_dir, *sorted(p for p in run_dir.glob(f"{SEED_PREFIX}*") if p.is_dir()))
    shutil.rmtree(run_dir)
