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
from dpgkit.envs import (
    ActionScaler,
    eval_seeds,
    evaluate,
    make_env,
    make_vector_env,
    space_dims,
)
from dpgkit.metrics import MetricsWriter, RunningMeans
from dpgkit.noise import Noise, make_noise, noise_scale
from dpgkit.plotting import plot_curve
from dpgkit.replay import ReplayBuffer
from dpgkit.td3 import make_agent


@dataclass
class Episode:
    """A running training episode of one env: its return and length."""

    total_reward: float = 0.0
    length: int = 0


def explore_actions(agent: DDPGAgent, obs: np.ndarray, noise: Noise, env_steps: int,
                    config: DDPGConfig, warmup_rng: np.random.Generator) -> np.ndarray:
    """The behaviour policy for a batch of envs, shape (num_envs, action_dim): uniform in
    [-1, 1] during warm-up, else clip(mu(s) + noise, -1, 1)."""
    if env_steps < config.warmup_steps:
        return warmup_rng.uniform(-1.0, 1.0, (len(obs), agent.action_dim))
    return np.clip(agent.act(obs) + noise.sample(), -1.0, 1.0)


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


class Trainer:
    """One run: its environments, agent, replay, noise, random generators, counters and records.

    ``step()`` advances every env by one step (and makes the updates due after it);
    ``finish()`` writes the checkpoint, the curve and the summary. :func:`train` drives it.
    With ``num_envs`` envs, one step adds ``num_envs`` transitions, and ``env_steps`` counts
    transitions.
    """

    def __init__(self, config: DDPGConfig, run_dir: Path) -> None:
        self.config, self.run_dir = config, run_dir
        torch.set_num_threads(config.torch_threads)
        self.eval_env = make_env(config.env_id)  # made first: a bad env fails before anything
        self.envs = make_vector_env(config.env_id, config.num_envs, config.vector_mode)
        create_run_dir(run_dir)
        obs_dim, action_dim = space_dims(self.eval_env)
        self.scaler = ActionScaler(self.eval_env.action_space)
        self.agent = make_agent(obs_dim, action_dim, config)
        self.replay = ReplayBuffer(config.replay_size, obs_dim, action_dim)
        self.warmup_rng, noise_rng, self.replay_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3))
        self.noise = make_noise(config, action_dim, noise_rng, config.num_envs)
        self.initial_noise_sigma = self.noise.sigma
        self.env_info = {"env_id": config.env_id, "obs_dim": obs_dim, "action_dim": action_dim,
                         "action_low": self.scaler.low.tolist(),
                         "action_high": self.scaler.high.tolist()}

        (run_dir / "config.json").write_text(json.dumps(config_to_dict(config), indent=2) + "\n")
        self.writer = MetricsWriter(run_dir)
        self.writer.text("config", json.dumps(config_to_dict(config), indent=2))
        self.update_stats = RunningMeans()

        self.env_steps = 0
        self.episodes_done = 0
        self.episodes = [Episode() for _ in range(config.num_envs)]
        self.update_credit = 0.0
        self.last_eval = np.array([np.nan])
        self.started = time.perf_counter()
        self.obs, _ = self.envs.reset(seed=config.seed)  # env i is seeded with seed + i
        self.noise.reset()

    def step(self) -> dict[str, float]:
        """One step of every env, its transitions into the replay, the updates due, and an
        evaluation if one is due.

        Returns what is worth showing: ``episode_return`` when an episode ended,
        ``eval_return_mean`` when an evaluation ran.
        """
        config, events = self.config, {}
        self.noise.sigma = self.initial_noise_sigma * noise_scale(
            self.env_steps, config.noise_decay, config.noise_decay_start,
            config.noise_decay_end, config.noise_final_scale)
        action = explore_actions(self.agent, self.obs, self.noise, self.env_steps, config,
                                 self.warmup_rng)
        next_obs, reward, terminated, truncated, info = self.envs.step(self.scaler.to_env(action))
        # Store the state each step really reached: where an episode ended, the vector env has
        # already reset that env, and its true final observation is in info["final_obs"].
        reached = next_obs.copy()
        for i in np.flatnonzero(info.get("_final_obs", [])):
            reached[i] = info["final_obs"][i]
        self.replay.add(self.obs, action, reward, reached, terminated, truncated)
        self.obs = next_obs
        steps_before = self.env_steps
        self.env_steps += config.num_envs

        for i, episode in enumerate(self.episodes):
            episode.total_reward += float(reward[i])
            episode.length += 1
            if terminated[i] or truncated[i]:
                events["episode_return"] = episode.total_reward
                self.writer.row(self.env_steps, updates=self.agent.updates,
                                episode=self.episodes_done, episode_return=episode.total_reward,
                                episode_length=episode.length, **self.update_stats.pop())
                self.episodes[i] = Episode()
                self.episodes_done += 1
                self.noise.reset(i)

        if self.env_steps > config.warmup_steps and len(self.replay) >= config.batch_size:
            self.update_credit += config.num_envs * config.updates_per_step
            while self.update_credit >= 1.0:
                batch = self.replay.sample(config.batch_size, self.replay_rng)
                self.update_stats.add(self.agent.update(batch))
                self.update_credit -= 1.0

        if (self.env_steps // config.eval_every > steps_before // config.eval_every
                or self.env_steps >= config.total_env_steps):
            events["eval_return_mean"] = self.evaluate()
        return events

    def evaluate(self) -> float:
        """Run the evaluation episodes (no noise, fixed start seeds) and record them."""
        self.last_eval = evaluate(self.agent.act, self.eval_env, self.scaler,
                                  eval_seeds(self.config.seed, self.config.eval_episodes))
        self.writer.row(self.env_steps, updates=self.agent.updates,
                        eval_return_mean=self.last_eval.mean(),
                        eval_return_std=self.last_eval.std())
        self.writer.scalar("steps_per_second", self.steps_per_second(), self.env_steps)
        return float(self.last_eval.mean())

    def steps_per_second(self) -> float:
        return self.env_steps / max(time.perf_counter() - self.started, 1e-9)

    def finish(self) -> dict[str, Any]:
        """Write the checkpoint, ``curve.png`` and ``summary.json``; return the summary."""
        config = self.config
        wall_seconds = time.perf_counter() - self.started
        self.writer.close()
        counters = {"env_steps": self.env_steps, "updates": self.agent.updates,
                    "episodes": self.episodes_done}
        save_checkpoint(self.run_dir / "checkpoint", self.agent, self.env_info, counters)
        plot_curve(self.run_dir / "metrics.csv", self.run_dir / "curve.png",
                   f"{config.algorithm.upper()} ({config.preset}) on {config.env_id}, "
                   f"seed {config.seed}")
        summary = {
            "eval_return_mean": float(self.last_eval.mean()),
            "eval_return_std": float(self.last_eval.std()),
            "eval_episodes": int(self.last_eval.size), **counters,
            "wall_seconds": wall_seconds, "steps_per_second": self.env_steps / wall_seconds,
            "preset": config.preset, "env_id": config.env_id, "seed": config.seed,
            "versions": library_versions(),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.envs.close()
        self.eval_env.close()
        return summary


def train(config: DDPGConfig, run_dir: Path, console: Console | None = None,
          progress: bool = True) -> dict[str, Any]:
    """Train a DDPG agent with ``config``, writing everything to ``run_dir``; return the summary.

    ``run_dir`` is created (it must not exist, or be empty) once the environment has been checked.
    It receives ``config.json``, ``metrics.csv``, TensorBoard events, ``curve.png``,
    ``checkpoint/`` and ``summary.json``. A progress bar shows on a terminal; elsewhere (or with
    ``progress=False``) one line is printed per evaluation.
    """
    console = console or Console()
    trainer = Trainer(config, run_dir)
    console.print(f"dpgkit: training {config.preset} on {config.env_id} (seed {config.seed}, "
                  f"{config.total_env_steps} env steps) -> {run_dir}")
    live = progress and console.is_terminal
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>5.0f} steps/s"),
                   TextColumn("return {task.fields[last_return]}"),
                   TextColumn("eval {task.fields[last_eval]}"), TimeElapsedColumn(),
                   console=console, disable=not live)
    task = bar.add_task(f"{config.env_id} {config.preset}", total=config.total_env_steps,
                        rate=0.0, last_return="-", last_eval="-")
    with bar:
        while trainer.env_steps < config.total_env_steps:
            events = trainer.step()
            if "episode_return" in events:
                bar.update(task, last_return=f"{events['episode_return']:8.1f}")
            if "eval_return_mean" in events:
                bar.update(task, last_eval=f"{events['eval_return_mean']:8.1f}")
                if not live:
                    console.print(f"step {trainer.env_steps:>8d}  eval return "
                                  f"{trainer.last_eval.mean():9.2f} +- "
                                  f"{trainer.last_eval.std():7.2f}  "
                                  f"({trainer.steps_per_second():.0f} steps/s)")
            if trainer.env_steps % 50 < config.num_envs:
                bar.update(task, completed=trainer.env_steps, rate=trainer.steps_per_second())
    return trainer.finish()
