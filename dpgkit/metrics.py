"""What a run records: ``metrics.csv`` (deterministic values only) and TensorBoard events.

``metrics.csv`` has one row per finished training episode and one per evaluation, with the same
columns throughout (empty where a value does not apply). It holds no wall-clock values, so two runs
with the same seed write identical files; timing (steps per second) goes to TensorBoard and to
``summary.json``.
"""

import csv
import math
from pathlib import Path
from typing import IO

from torch.utils.tensorboard import SummaryWriter

from dpgkit.rundir import METRICS

COLUMNS = (
    "env_steps", "updates", "episode", "episode_return", "episode_length",
    "critic_loss", "actor_loss", "q_mean", "eval_return_mean", "eval_return_std",
)


class RunningMeans:
    """Means of update statistics (critic_loss, actor_loss, q_mean) since the last ``pop``."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1

    def pop(self) -> dict[str, float]:
        means = {key: total / self.count for key, total in self.sums.items()} if self.count else {}
        self.sums, self.count = {}, 0
        return means


class MetricsWriter:
    """Writes rows to ``metrics.csv`` and scalars to TensorBoard in ``run_dir``."""

    def __init__(self, run_dir: Path, resume_at: tuple[int, int] | None = None) -> None:
        """A new ``metrics.csv``; or, with ``resume_at = (csv bytes, env steps)`` of a checkpoint,
        the existing one cut back to what it held then, and TensorBoard's events after the
        checkpoint's env step purged (those at that step came before the checkpoint: they
        stay, as their rows in metrics.csv do)."""
        self.path = run_dir / METRICS
        if resume_at is None:
            self.file: IO[str] = self.path.open("w", newline="")
        else:
            with self.path.open("r+b") as raw:
                raw.truncate(resume_at[0])
            self.file = self.path.open("a", newline="")
        self.csv = csv.DictWriter(self.file, fieldnames=COLUMNS, lineterminator="\n")
        if resume_at is None:
            self.csv.writeheader()
        self.tensorboard = SummaryWriter(
            str(run_dir), purge_step=None if resume_at is None else resume_at[1] + 1)

    def bytes_written(self) -> int:
        """The size of ``metrics.csv`` so far (recorded in checkpoints)."""
        self.file.flush()
        return self.file.tell()

    def row(self, env_steps: int, **values: float | int) -> None:
        """One CSV row and the matching TensorBoard scalars at x = env_steps."""
        self.csv.writerow({"env_steps": env_steps, **{k: _format(v) for k, v in values.items()}})
        self.file.flush()
        for key, value in values.items():
            self.scalar(key, value, env_steps)

    def scalar(self, key: str, value: float | int, env_steps: int) -> None:
        """A TensorBoard-only scalar (for example steps_per_second)."""
        if key not in ("updates", "episode"):
            self.tensorboard.add_scalar(key, value, env_steps)

    def text(self, key: str, value: str) -> None:
        """A TensorBoard text entry (the run's config)."""
        self.tensorboard.add_text(key, f"```\n{value}\n```")

    def close(self) -> None:
        self.file.close()
        self.tensorboard.close()


def _format(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value)) if math.isfinite(value) else str(value)


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of a ``metrics.csv`` with the empty cells dropped."""
    with path.open(newline="") as file:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]
