"""Many seeds of one config: parallel runs in sibling directories and one aggregate summary.

``dpgkit train --seeds 0-4 --out DIR`` writes ``DIR/seed0`` ... ``DIR/seed4`` (each a full run
directory) and ``DIR/summary.json`` with the mean, the standard deviation and the per-seed values
of the final evaluation return. A seed that diverges is reported (``diverged``) and left out of
the mean; the others still count.
"""

import dataclasses
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from dpgkit import rundir
from dpgkit.config import DDPGConfig
from dpgkit.envs import make_env
from dpgkit.errors import ConfigError, Diverged, DpgkitError
from dpgkit.threads import usable_cores, warn_if_too_many_threads


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '1,5,7' -> [1, 5, 7]; '3' -> [3]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds += range(int(first), int(last or first) + 1)
    except ValueError:
        raise ConfigError(f"--seeds takes a range such as 0-4 or a list such as 0,3,7; got "
                          f"{text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds must name distinct seeds >= 0, got {text!r}")
    return seeds


def _train_one(config: DDPGConfig, run_dir: Path) -> dict[str, Any]:
    """One seed's run, in its own process: its lines (one per evaluation) go to the shared
    stdout, each starting with "seed N: "."""
    import sys

    from rich.console import Console

    from dpgkit.progress import PrefixedLines
    from dpgkit.train import train

    console = Console(file=PrefixedLines(sys.stdout, f"seed {config.seed}: "), soft_wrap=True)
    return train(config, run_dir, console, progress=False)


def default_workers(seeds: int, threads: int) -> int:
    """Runs at a time: one per seed, as many as the cores hold at ``threads`` each (at least 1)."""
    return min(seeds, max(1, usable_cores() // threads))


def train_seeds(config: DDPGConfig, seeds: list[int], out: Path, workers: int | None = None,
                report: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``config`` once per seed, ``workers`` runs at a time (default: as many as the
    cores hold at ``torch_threads`` each)."""
    workers = workers or default_workers(len(seeds), config.torch_threads)
    warn_if_too_many_threads(config.torch_threads, workers)
    make_env(config.env_id, **config.env_arguments()).close()  # a bad env fails first
    if out.exists() and any(out.iterdir()):
        raise DpgkitError(f"{out} already exists and is not empty: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    per_seed: dict[int, dict[str, Any]] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(_train_one, dataclasses.replace(config, seed=seed),
                               rundir.seed_dir(out, seed)): seed for seed in seeds}
        for future in as_completed(futures):
            seed = futures[future]
            try:
                per_seed[seed] = future.result()
            except Diverged as error:  # one diverging seed is a result, not a crash
                per_seed[seed] = {"diverged": str(error)}
                report(f"seed {seed}: diverged ({error})")
                continue
            except BrokenProcessPool:
                raise DpgkitError(f"the process training seed {seed} died (out of memory, or "
                                  f"killed); the finished seeds are in {out}") from None
            report(f"seed {seed}: eval return {per_seed[seed]['eval_return_mean']:.2f} "
                   f"({per_seed[seed]['wall_seconds']:.0f} s)")
    finished = [s for s in seeds if "eval_return_mean" in per_seed[s]]
    finals = np.array([per_seed[s]["eval_return_mean"] for s in finished])
    summary = {
        "preset": config.preset, "algorithm": config.algorithm, "env_id": config.env_id,
        "env_steps": config.total_env_steps, "seeds": seeds,
        "eval_return_mean": float(finals.mean()) if finished else None,
        "eval_return_std": float(finals.std()) if finished else None,
        "per_seed": {str(s): per_seed[s].get("eval_return_mean") for s in seeds},
        "diverged": {str(s): per_seed[s]["diverged"] for s in seeds if s not in finished},
        "wall_seconds": time.perf_counter() - started, "workers": workers,
        **({f"target_reached_at_{unit}": {str(s): per_seed[s].get(f"target_reached_at_{unit}")
                                          for s in seeds} for unit in ("env_steps", "seconds")}
           if config.target_return is not None else {}),
    }
    rundir.write_summary(out, summary)
    if not finished:
        raise Diverged(f"every seed diverged; see {out / rundir.SUMMARY}")
    return summary
