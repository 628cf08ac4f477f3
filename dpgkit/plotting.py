"""Learning curves drawn with matplotlib from runs' ``metrics.csv``: one run's ``curve.png``,
and ``dpgkit plot`` for several runs or groups of seeds."""

import csv
import json
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dpgkit.errors import DpgkitError, DpgkitWarning, writable_file  # noqa: E402
from dpgkit.metrics import read_metrics  # noqa: E402
from dpgkit.reference import TD3_CURVE_STDS, TD3_CURVES, find_task  # noqa: E402


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
        mean = np.array([r["eval_return_mean"] for r in evals])
        std = np.array([r.get("eval_return_std", 0.0) for r in evals])
        ax.plot(x, mean, color="tab:orange", marker="o", ms=3, lw=2,
                label="evaluation (no noise), mean")
        ax.fill_between(x, mean - std, mean + std, color="tab:orange", alpha=0.2,
                        label="evaluation, +- std")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if episodes or evals:
        ax.legend(loc="lower right", fontsize=8)
    else:  # stopped before its first episode ended: say so rather than draw empty axes
        ax.text(0.5, 0.5, "no episode has ended and no evaluation has run yet", ha="center",
                va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def _curve(run_dir: Path, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``metric`` against env steps in a run, or None where it has no value (a seed that
    diverged before its first evaluation)."""
    rows = [r for r in read_metrics(run_dir / "metrics.csv") if metric in r]
    if not rows:
        return None
    return np.array([r["env_steps"] for r in rows]), np.array([r[metric] for r in rows])


def _seed_dirs(run_dir: Path) -> list[Path]:
    """The run directories a path stands for: its seed*/ subdirectories, or itself."""
    seeds = sorted(p for p in run_dir.glob("seed*") if (p / "metrics.csv").is_file())
    if seeds:
        return seeds
    if (run_dir / "metrics.csv").is_file():
        return [run_dir]
    raise DpgkitError(f"{run_dir} is not a run directory (no metrics.csv, no seed*/ runs)")


def _check_metric(run_dir: Path, metric: str) -> None:
    """Refuse a ``metric`` that is no column of the run's ``metrics.csv``, listing those that
    are (the columns of dpgkit's runs, and of older runs whatever they held)."""
    with (run_dir / "metrics.csv").open(newline="") as file:
        columns = next(csv.reader(file), [])
    if metric not in columns:
        plottable = [c for c in columns if c != "env_steps"]
        raise DpgkitError(f"--metric {metric} is no column of {run_dir / 'metrics.csv'}: one of "
                          f"{', '.join(plottable)}")


def unique_labels(paths: list[Path]) -> list[str]:
    """For each path, the shortest end of it (its last k parts) that no other path shares:
    runs/a/seed0 and runs/b/seed0 -> a/seed0 and b/seed0."""
    parts = [p.resolve().parts for p in paths]
    labels = []
    for i, mine in enumerate(parts):
        for k in range(1, len(mine) + 1):
            label = "/".join(mine[-k:])
            if all("/".join(other[-k:]) != label for j, other in enumerate(parts) if j != i):
                break
        labels.append(label)
    return labels


def _run_config(run_dir: Path) -> dict[str, Any]:
    """The config of a run, or of a --seeds directory's first seed ({} where none is found)."""
    for path in [run_dir / "config.json", *sorted(run_dir.glob("seed*/config.json"))]:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return {}


def _draw_reference(ax: plt.Axes, reference: str, max_steps: float) -> None:
    """TD3's published curve for task ``reference`` (any case; an env id works too): its mean
    and +- one seed std, every 5,000 steps up to the first point at or past the runs' end."""
    task = find_task(reference)
    if task is None:
        raise DpgkitError(f"no published curve for {reference!r}: one of "
                          f"{', '.join(TD3_CURVES)}")
    start = min(TD3_CURVES[task])
    if start > max_steps:
        warnings.warn(f"the published {task} curve starts at env step {start}, after the runs "
                      f"end ({max_steps:.0f}): it is drawn from there, to the right of them",
                      DpgkitWarning, stacklevel=2)
    end = min((s for s in TD3_CURVES[task] if s >= max_steps), default=max(TD3_CURVES[task]))
    steps = [s for s in TD3_CURVES[task] if s <= end]
    mean = np.array([TD3_CURVES[task][s] for s in steps])
    std = np.array([TD3_CURVE_STDS[task][s] for s in steps])
    ax.plot(steps, mean, "k--", marker="s", ms=2.5, lw=1,
            label=f"TD3, Fujimoto et al. 2018 ({task}-v1), mean +- std over 10 seeds")
    ax.fill_between(steps, mean - std, mean + std, color="k", alpha=0.08)


def draw_runs(run_dirs: list[Path], metric: str = "eval_return_mean",
              reference: str | None = None, labels: list[str] | None = None) -> plt.Figure:
    """The figure of :func:`plot_runs`: a line per run, or a mean and +-std band per --seeds
    directory, labelled by ``labels`` (default: :func:`unique_labels`), titled with the runs'
    envs and presets; optionally TD3's published curve for task ``reference``."""
    if labels is not None and len(labels) != len(run_dirs):
        raise DpgkitError(f"--labels gave {len(labels)} labels for {len(run_dirs)} run "
                          "directories: give one per RUN_DIR, in their order")
    labels = labels or unique_labels(run_dirs)
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=130)
    try:
        _draw(ax, run_dirs, labels, metric, reference)
    except BaseException:
        plt.close(fig)
        raise
    fig.tight_layout()
    return fig


def _draw(ax: plt.Axes, run_dirs: list[Path], labels: list[str], metric: str,
          reference: str | None) -> None:
    max_steps, envs, presets = 0.0, [], []
    for run_dir, name in zip(run_dirs, labels, strict=True):
        seed_dirs = _seed_dirs(run_dir)
        _check_metric(seed_dirs[0], metric)
        curves = [c for c in (_curve(d, metric) for d in seed_dirs) if c is not None]
        if not curves:
            raise DpgkitError(f"{run_dir} has no {metric!r} values to plot (runs that diverged "
                              "before their first evaluation have none)")
        config = _run_config(run_dir)
        envs.append(config.get("env_id", "?"))
        presets.append(config.get("preset", "?"))
        x = curves[0][0]
        ys = np.array([np.interp(x, cx, cy) for cx, cy in curves])
        max_steps = max(max_steps, float(x.max()))
        label = (f"{name}: mean +- std over {len(curves)} seeds" if len(curves) > 1
                 else f"{name} (seed {config.get('seed', '?')})")
        (line,) = ax.plot(x, ys.mean(0), lw=2, marker="o", ms=3, label=label)
        if len(curves) > 1:
            ax.fill_between(x, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0),
                            color=line.get_color(), alpha=0.2)
    if reference is not None:
        _draw_reference(ax, reference, max_steps)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ')}: {', '.join(dict.fromkeys(envs))}, "
                 f"{' vs '.join(dict.fromkeys(presets))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_runs(run_dirs: list[Path], out: Path, metric: str = "eval_return_mean",
              reference: str | None = None, labels: list[str] | None = None) -> list[Path]:
    """:func:`draw_runs`, written as PNG and SVG beside each other (whatever ``out``'s suffix)."""
    fig = draw_runs(run_dirs, metric, reference, labels)
    try:
        written = [writable_file(out.with_suffix(suffix), "-o") for suffix in (".png", ".svg")]
        for path in written:
            fig.savefig(path)
    finally:
        plt.close(fig)
    return written
