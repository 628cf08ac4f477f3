"""What a run's ``summary.json`` says: written by :meth:`dpgkit.loop.Trainer.finish` when a run
ends (and again at each later end of a resumed or continued run)."""

from typing import Any

import numpy as np

from dpgkit.checkpoint_files import library_versions
from dpgkit.config import DDPGConfig
from dpgkit.target import target_record


def run_summary(config: DDPGConfig, eval_returns: np.ndarray, counts: dict[str, int],
                wall_seconds: float, target_reached: dict[str, float] | None
                ) -> dict[str, Any]:
    """The last evaluation's mean, std and episode count; ``counts`` (``env_steps``,
    ``updates``, ``episodes``); the training clock and its rate; what ran (preset, algorithm,
    env, seed, library versions); and, with a ``target_return``, when it was first reached."""
    return {
        "eval_return_mean": float(eval_returns.mean()),
        "eval_return_std": float(eval_returns.std()),
        "eval_episodes": int(eval_returns.size), **counts,
        "wall_seconds": wall_seconds,
        "steps_per_second": counts["env_steps"] / wall_seconds,
        "preset": config.preset, "algorithm": config.algorithm, "env_id": config.env_id,
        "seed": config.seed, "versions": library_versions(),
        **target_record(config.target_return, target_reached),
    }
