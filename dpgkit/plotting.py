"""The learning curve of a run, drawn with matplotlib from its ``metrics.csv``."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

from dpgkit.metrics import read_metrics  # noqa: E402


def plot_curve(metrics_csv: Path, out: Path, title: str) -> None:
    """Training-episode returns and evaluation mean +- std against env steps, saved to ``out``."""
    rows = read_metrics(metrics_csv)
    episodes = [r for r in rows if "episode_return" in r]
    evals = [r for r in rows if "eval_return_mean" in r]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    if episodes:
        ax.plot([r["env_steps"] for r in episodes], [r["episode_return"] for r in episodes],
                color="tab:blue", alpha=0.35, lw=1, label="training episode (with noise)")
    if evals:
        x = [r["env_steps"] for r in evals]
        mean = [r["eval_return_mean"] for r in evals]
        std = [r.get("eval_return_std", 0.0) for r in evals]
        ax.plot(x, mean, color="tab:orange", marker="o", ms=3, lw=2,
                label="evaluation (no noise), mean")
        ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                        color="tab:orange", alpha=0.2, label="evaluation, +- std")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
