"""The training loop: collect a transition, store it, update, evaluate, record. Nothing clever.

This is the only module, with :mod:`dpgkit.envs`, that touches Gymnasium. Per env step it does:

    a = uniform(-1, 1)                         for the first warmup_steps
    a = clip(mu(s) + noise, -1, 1)             after (noise: OU or Gaussian)
    s', r, terminated, truncated = env.step(scale_action(a))
    replay.add(s, a, r, s', terminated, truncated)   # s' is the real final obs at an episode end
    if the episode ended: reset the env and the noise process
    agent.update(replay.sample(batch_size))    updates_per_step times (after warm-up)
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dpgkit.agent import DDPGAgent
from dpgkit.checkpoint import library_versions, save_checkpoint
from dpgkit.config import DDPGConfig, config_to_dict
from dpgkit.errors import DpgkitError
from dpgkit.envs import ActionScaler, eval_seeds, evaluate, make_env, space_dims
from dpgkit.metrics import MetricsWriter, RunningMeans
from dpgkit.noise import Noise, make_noise
from dpgkit.plotting import plot_curve
from dpgkit.replay import ReplayBuffer


@dataclass
class Episode:
    """The running training episode: its return, length and index."""

    index: int = 0
    total_reward: float = 0.0
    length: int = 0


def explore_action(agent: DDPGAgent, obs: np.ndarray, noise: Noise, env_steps: int,
                   config: DDPGConfig, warmup_rng: np.random.Generator) -> np.ndarray:
    """The behaviour policy: uniform in [-1, 1] during warm-up, else clip(mu(s) + noise, -1, 1)."""
    if env_steps < config.warmup_steps:
        return warmup_rng.uniform(-1.0, 1.0, agent.action_dim)
    return np.clip(agent.act(obs) + noise.sample()[0], -1.0, 1.0)


def create_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` for a new run; refuse one that holds files, or that cannot be written."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise DpgkitError(f"run directory {run_dir} already exists and is not empty: choose "
                          "another --out, or delete it")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise DpgkitError(f"cannot write the run directory {run_dir} ({error.strerror}): "
                          "choose a writable --out") from None


def train(config: DDPGConfig, run_dir: Path, console: Console | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train a DDPG agent with ``config``, writing everything to ``run_dir``; return the summary.

    ``run_dir`` is created (it must not exist, or be empty) once the environment has been checked.
    It receives ``config.json``, ``metrics.csv``, TensorBoard events, ``curve.png``,
    ``checkpoint/`` and ``summary.json``.
    """
    console = console or Console()
    torch.set_num_threads(config.torch_threads)
    env, eval_env = make_env(config.env_id), make_env(config.env_id)
    create_run_dir(run_dir)
    console.print(f"dpgkit: training {config.preset} on {config.env_id} (seed {config.seed}, "
                  f"{config.total_env_steps} env steps) -> {run_dir}")
    obs_dim, action_dim = space_dims(env)
    scaler = ActionScaler(env.action_space)
    agent = DDPGAgent(obs_dim, action_dim, config)
    replay = ReplayBuffer(config.replay_size, obs_dim, action_dim)
    warmup_rng, noise_rng, replay_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3))
    noise = make_noise(config, action_dim, noise_rng)
    (run_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2) + "\n")
    writer = MetricsWriter(run_dir)
    writer.tensorboard.add_text("config", "\n".join(
        f"    {k} = {v}" for k, v in config_to_dict(config).items()))
    update_stats = RunningMeans()

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>5.0f} steps/s"),
                   TextColumn("return {task.fields[last_return]}"),
                   TextColumn("eval {task.fields[last_eval]}"), TimeElapsedColumn(),
                   console=console, disable=not progress)
    task = bar.add_task(f"{config.env_id} {config.preset}", total=config.total_env_steps,
                        rate=0.0, last_return="-", last_eval="-")

    obs, _ = env.reset(seed=config.seed)
    noise.reset()
    episode = Episode()
    update_credit, last_eval = 0.0, np.array([np.nan])
    start = time.perf_counter()
    with bar:
        for env_steps in range(1, config.total_env_steps + 1):
            action = explore_action(agent, obs, noise, env_steps - 1, config, warmup_rng)
            next_obs, reward, terminated, truncated, _ = env.step(scaler.to_env(action))
            # next_obs is the true next state even at an episode's end: the reset comes below.
            replay.add(obs, action, float(reward), next_obs, terminated, truncated)
            obs = next_obs
            episode.total_reward += float(reward)
            episode.length += 1

            if terminated or truncated:
                writer.row(env_steps, updates=agent.updates, episode=episode.index,
                           episode_return=episode.total_reward, episode_length=episode.length,
                           **update_stats.pop())
                bar.update(task, last_return=f"{episode.total_reward:8.1f}")
                episode = Episode(index=episode.index + 1)
                obs, _ = env.reset()
                noise.reset()

            if env_steps > config.warmup_steps and len(replay) >= config.batch_size:
                update_credit += config.updates_per_step
                while update_credit >= 1.0:
                    update_stats.add(agent.update(replay.sample(config.batch_size, replay_rng)))
                    update_credit -= 1.0

            if env_steps % config.eval_every == 0 or env_steps == config.total_env_steps:
                last_eval = evaluate(agent.act, eval_env, scaler,
                                     eval_seeds(config.seed, config.eval_episodes))
                writer.row(env_steps, updates=agent.updates, eval_return_mean=last_eval.mean(),
                           eval_return_std=last_eval.std())
                rate = env_steps / (time.perf_counter() - start)
                writer.scalar("steps_per_second", rate, env_steps)
                bar.update(task, last_eval=f"{last_eval.mean():8.1f}")
                if not progress or not console.is_terminal:
                    console.print(f"step {env_steps:>8d}  eval return {last_eval.mean():9.2f} "
                                  f"+- {last_eval.std():7.2f}  ({rate:.0f} steps/s)")
            if env_steps % 50 == 0:
                bar.update(task, completed=env_steps,
                           rate=env_steps / (time.perf_counter() - start))
        bar.update(task, completed=config.total_env_steps)
    wall_seconds = time.perf_counter() - start
    writer.close()

    env_info = {"env_id": config.env_id, "obs_dim": obs_dim, "action_dim": action_dim,
                "action_low": scaler.low.tolist(), "action_high": scaler.high.tolist()}
    counters = {"env_steps": config.total_env_steps, "updates": agent.updates,
                "episodes": episode.index}
    save_checkpoint(run_dir / "checkpoint", agent, env_info, counters)
    plot_curve(run_dir / "metrics.csv", run_dir / "curve.png",
               f"DDPG ({config.preset}) on {config.env_id}, seed {config.seed}")
    summary = {
        "eval_return_mean": float(last_eval.mean()), "eval_return_std": float(last_eval.std()),
        "eval_episodes": int(last_eval.size), "env_steps": config.total_env_steps,
        "updates": agent.updates, "episodes": episode.index, "wall_seconds": wall_seconds,
        "steps_per_second": config.total_env_steps / wall_seconds, "preset": config.preset,
        "env_id": config.env_id, "seed": config.seed, "versions": library_versions(),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    env.close()
    eval_env.close()
    return summary
