"""The training loop: collect a transition, store it, update, evaluate, record. Nothing clever.

This is the only module, with :mod:`dpgkit.envs`, that touches Gymnasium. Per env step it does:

    a = uniform(-1, 1)                         for the first warmup_steps
    a = clip(mu(s) + noise, -1, 1)             after (noise: OU or Gaussian)
    s', r, terminated, truncated = env.step(scale_action(a))
    replay.add(s, a, r, s', terminated, truncated)   # s' is the real final obs at an episode end
    if the episode ended: reset the env and the noise process
    agent.update(replay.sample(batch_size))    updates_per_step times (after warm-up, or
                                               from the first batch: update_during_warmup)
"""

import dataclasses
import json
import math
import random
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dpgkit import resume
from dpgkit.agent import DDPGAgent
from dpgkit.checkpoint import (
    find_checkpoint,
    library_versions,
    list_checkpoints,
    prune_checkpoints,
    read_checkpoint,
    step_checkpoint_dir,
    write_checkpoint,
)
from dpgkit.config import DDPGConfig, config_from_dict, config_to_dict
from dpgkit.envs import (
    ActionScaler,
    env_info,
    eval_seeds,
    evaluate,
    make_env,
    make_vector_env,
    space_dims,
)
from dpgkit.errors import CheckpointError, Diverged, DpgkitError, Interrupted, writable_directory
from dpgkit.metrics import MetricsWriter, RunningMeans
from dpgkit.noise import Noise, make_noise, noise_scale
from dpgkit.plotting import plot_curve
from dpgkit.prioritized import PrioritizedReplayBuffer
from dpgkit.progress import EvaluationCounter, time_left
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


def make_replay(config: DDPGConfig, obs_dim: int, action_dim: int, num_streams: int
                ) -> ReplayBuffer:
    """The replay of ``config``: uniform or prioritized, one- or n-step; one stream per env."""
    if config.prioritized:
        return PrioritizedReplayBuffer(
            config.replay_size, obs_dim, action_dim, num_streams, config.n_step, config.gamma,
            config.priority_alpha, config.priority_beta, config.priority_epsilon)
    return ReplayBuffer(config.replay_size, obs_dim, action_dim, num_streams, config.n_step,
                        config.gamma)


def step_envs(envs: Any, scaler: ActionScaler, obs: np.ndarray, action: np.ndarray
              ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Step every env of ``envs`` with ``action`` (in [-1, 1]); return the next observations
    (where an episode ended, the first of the next one) and the transitions
    (obs, action, reward, reached, terminated, truncated) to store.

    ``reached`` is the state each step really reached: where an episode ended, the vector env
    (SAME_STEP autoreset) has already reset that env, and the true final observation is in
    ``info["final_obs"]``.
    """
    next_obs, reward, terminated, truncated, info = envs.step(scaler.to_env(action))
    reached = next_obs.copy()
    for i in np.flatnonzero(info.get("_final_obs", [])):
        reached[i] = info["final_obs"][i]
    return next_obs, (obs, action, reward, reached, terminated, truncated)


def end_episodes(episodes: list[Episode], reward: np.ndarray, terminated: np.ndarray,
                 truncated: np.ndarray) -> list[tuple[int, Episode]]:
    """Add one step's rewards to each env's running episode; return the episodes that ended,
    as (env index, episode), and start new ones in their place."""
    ended = []
    for i, episode in enumerate(episodes):
        episode.total_reward += float(reward[i])
        episode.length += 1
        if terminated[i] or truncated[i]:
            ended.append((i, episode))
            episodes[i] = Episode()
    return ended


def experience_streams(config: DDPGConfig) -> int:
    """How many experience streams (envs) feed the replay: ``num_envs`` of each actor."""
    return config.num_envs * max(config.actors, 1)


def create_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` for a new run; refuse one that holds files, or that cannot be written."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise DpgkitError(f"run directory {run_dir} already exists and is not empty: choose "
                          "another --out, or delete it")
    writable_directory(run_dir, "--out", what="the run directory")


def _write_config(run_dir: Path, config: DDPGConfig) -> str:
    """Write ``config.json`` (the resolved config); return its text."""
    text = json.dumps(config_to_dict(config), indent=2)
    (run_dir / "config.json").write_text(text + "\n")
    return text


class Trainer:
    """One run: its environments, agent, replay, noise, random generators, counters and records.

    ``step()`` advances every env by one step (and makes the updates due after it);
    ``finish()`` writes the last checkpoint, the curve and the summary. :func:`train` drives it.
    With ``num_envs`` envs, one step adds ``num_envs`` transitions, and ``env_steps`` counts
    transitions. Build a new run with ``Trainer(config, run_dir)``, or continue one from its
    newest checkpoint with ``Trainer.resume(run_dir)``.
    """

    def __init__(self, config: DDPGConfig, run_dir: Path,
                 checkpoint: tuple[dict, dict[str, Any]] | None = None) -> None:
        self.config, self.run_dir = config, run_dir
        torch.set_num_threads(config.torch_threads)
        torch.set_flush_denormal(config.flush_denormal)
        # dpgkit draws from its own generators; the global ones are seeded too, so that a user's
        # code run inside the loop (an env, a callback) is reproducible, and are checkpointed.
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.eval_env = make_env(config.env_id, **config.env_kwargs)  # first: a bad env fails
        self.envs = make_vector_env(config.env_id, config.num_envs, config.vector_mode,
                                    config.env_kwargs)
        obs_dim, action_dim = space_dims(self.eval_env)
        self.scaler = ActionScaler.for_space(self.eval_env.action_space)
        self.agent = make_agent(obs_dim, action_dim, config)
        self.replay = make_replay(config, obs_dim, action_dim, experience_streams(config))
        self.warmup_rng, noise_rng, self.replay_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3))
        self.noise = make_noise(config, action_dim, noise_rng, config.num_envs)
        self.initial_noise_sigma = self.noise.sigma
        if checkpoint is None:  # once the env, the networks and the replay have been made
            create_run_dir(run_dir)
        self.env_info = env_info(self.eval_env, config.env_id)
        self.update_stats = RunningMeans()
        self.env_steps = 0
        self.episodes_done = 0
        self.episodes = [Episode() for _ in range(config.num_envs)]
        self.update_credit = 0.0
        self.last_eval = np.array([np.nan])
        self.obs, _ = self.envs.reset(seed=config.seed)  # env i is seeded with seed + i
        self.noise.reset()
        self.started = time.perf_counter()
        self.stop_signal: int | None = None

        if checkpoint is None:
            self.writer = MetricsWriter(run_dir)
            self.writer.text("config", _write_config(run_dir, config))
        else:  # everything checked and restored before the run's files are touched: a refused
            # resume leaves metrics.csv, config.json and the TensorBoard events as they were
            files, meta = checkpoint
            resume.restore(self, files, meta)
            try:
                metrics_bytes = int(meta["metrics_bytes"])
                self.started -= float(meta["wall_seconds"])
            except (KeyError, TypeError, ValueError) as error:
                raise CheckpointError(f"the checkpoint's run state is incomplete ({error!r})"
                                      ) from None
            metrics = run_dir / "metrics.csv"
            if not metrics.is_file() or not 0 <= metrics_bytes <= metrics.stat().st_size:
                raise CheckpointError(
                    f"{metrics} is missing or shorter than the checkpoint recorded "
                    f"({metrics_bytes} bytes): resume needs the run directory the checkpoint "
                    "belongs to, with its metrics.csv")
            self.writer = MetricsWriter(run_dir, resume_at=(metrics_bytes, self.env_steps))
            if (run_dir / "config.json").is_file():
                _write_config(run_dir, config)  # the step budget may have changed

    @classmethod
    def resume(cls, run_dir: Path, total_env_steps: int | None = None) -> "Trainer":
        """The run in ``run_dir``, continued from its newest checkpoint (optionally with a new
        step budget)."""
        for stale in (run_dir / "checkpoints").glob(".tmp-*"):  # left by a kill mid-write
            shutil.rmtree(stale, ignore_errors=True)
        files, meta = read_checkpoint(find_checkpoint(run_dir))
        config = config_from_dict(meta["config"])
        if total_env_steps is not None:
            done = meta["counters"].get("env_steps")
            if isinstance(done, int) and total_env_steps < done:
                raise DpgkitError(f"--steps {total_env_steps} is less than the {done} env steps "
                                  f"this run has already done: give --steps of at least {done} "
                                  "(or leave it out to keep the run's own budget)")
            config = dataclasses.replace(config, total_env_steps=total_env_steps)
        return trainer_class(config)(config, run_dir, checkpoint=(files, meta))

    @property
    def done(self) -> bool:
        return self.env_steps >= self.config.total_env_steps

    def step(self) -> dict[str, float]:
        """One step of every env, its transitions into the replay, the updates due, an
        evaluation and a checkpoint if one is due.

        Returns what is worth showing: ``episode_return`` when an episode ended,
        ``eval_return_mean`` when an evaluation ran.
        """
        config, events = self.config, {}
        self.noise.sigma = self.initial_noise_sigma * noise_scale(
            self.env_steps, config.noise_decay, config.noise_decay_start,
            config.noise_decay_end, config.noise_final_scale)
        action = explore_actions(self.agent, self.obs, self.noise, self.env_steps, config,
                                 self.warmup_rng)
        self.obs, transitions = step_envs(self.envs, self.scaler, self.obs, action)
        _, _, reward, reached, terminated, truncated = transitions
        self._check_finite(self.env_steps + config.num_envs, observation=reached, reward=reward)
        self.replay.add(*transitions)
        steps_before = self.env_steps
        self.env_steps += config.num_envs
        for i, episode in end_episodes(self.episodes, reward, terminated, truncated):
            events["episode_return"] = self.record_episode(episode)
            self.noise.reset(i)
        self.learn(config.num_envs)
        return {**events, **self.periodic(steps_before)}

    def record_episode(self, episode: Episode) -> float:
        """Count a finished training episode and write its row; return its return."""
        self.writer.row(self.env_steps, updates=self.agent.updates, episode=self.episodes_done,
                        episode_return=episode.total_reward, episode_length=episode.length,
                        **self.update_stats.pop())
        self.episodes_done += 1
        return episode.total_reward

    def periodic(self, steps_before: int) -> dict[str, float]:
        """The evaluation and the checkpoint due now that ``env_steps`` went past
        ``steps_before``."""
        config, events = self.config, {}

        def crossed(every: int) -> bool:
            return every > 0 and self.env_steps // every > steps_before // every

        if crossed(config.eval_every) or self.done:
            events["eval_return_mean"] = self.evaluate()
        if crossed(config.checkpoint_every) and not self.done:
            self.save_checkpoint()
        return events

    def learn(self, new_transitions: int) -> int:
        """The updates due after ``new_transitions`` more transitions: ``updates_per_step`` per
        transition once warm-up is over (or at once, with ``update_during_warmup``) and the
        replay holds a batch. Returns how many updates ran."""
        config = self.config
        learning = config.update_during_warmup or self.env_steps > config.warmup_steps
        if not learning or len(self.replay) < config.batch_size:
            return 0
        self.update_credit += new_transitions * config.updates_per_step
        done = 0
        while self.update_credit >= 1.0:
            self.update_once()
            self.update_credit -= 1.0
            done += 1
        return done

    def update_once(self) -> dict[str, float]:
        """Sample a batch, make one agent update, check and record its losses."""
        config, replay = self.config, self.replay
        if isinstance(replay, PrioritizedReplayBuffer):  # beta rises linearly over the run
            replay.beta = config.priority_beta + (config.priority_beta_end - config.priority_beta) \
                * min(self.env_steps / config.total_env_steps, 1.0)
        batch = replay.sample(config.batch_size, self.replay_rng)
        losses = self.agent.update(batch)
        self._check_finite(self.env_steps, **losses)
        self.update_stats.add(losses)
        if isinstance(replay, PrioritizedReplayBuffer):
            replay.update_priorities(batch.indices, self.agent.td_error.numpy())
        return losses

    def _check_finite(self, env_steps: int, **values: Any) -> None:
        for name, value in values.items():
            if isinstance(value, float) and math.isfinite(value):
                continue
            if not np.all(np.isfinite(value)):
                bad = np.ravel(value)[~np.isfinite(np.ravel(value))][0]
                raise Diverged(f"{name.replace('_', ' ')} became {bad} at env step {env_steps}")

    def evaluate(self) -> float:
        """Run the evaluation episodes (no noise, fixed start seeds) and record them."""
        self.last_eval = evaluate(self.agent.act, self.eval_env, self.scaler,
                                  eval_seeds(self.config.seed, self.config.eval_episodes))
        self.writer.row(self.env_steps, updates=self.agent.updates,
                        eval_return_mean=self.last_eval.mean(),
                        eval_return_std=self.last_eval.std())
        self.writer.scalar("steps_per_second", self.steps_per_second(), self.env_steps)
        return float(self.last_eval.mean())

    def save_checkpoint(self) -> Path:
        """The run's periodic checkpoint: ``checkpoints/step-<env_steps>``, keeping the newest
        ``keep_checkpoints``."""
        path = self.write_state(step_checkpoint_dir(self.run_dir / "checkpoints", self.env_steps))
        prune_checkpoints(self.run_dir / "checkpoints", self.config.keep_checkpoints)
        return path

    def write_state(self, directory: Path) -> Path:
        """Write the whole run as a checkpoint at ``directory``; refuse non-finite parameters."""
        for name, module in self.agent.modules().items():
            for key, value in module.state_dict().items():
                if value.is_floating_point() and not torch.isfinite(value).all():
                    raise Diverged(f"parameter {name}.{key} became non-finite by env step "
                                   f"{self.env_steps}")
        files, meta = resume.capture(self)
        return write_checkpoint(directory, files, meta)

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.started

    def steps_per_second(self) -> float:
        return self.env_steps / max(self.wall_seconds(), 1e-9)

    def finish(self, close: bool = True) -> dict[str, Any]:
        """Write the last checkpoint, ``curve.png`` and ``summary.json``; return the summary.
        With ``close=False`` the run can go on (a later ``step`` continues it)."""
        config = self.config
        wall_seconds = self.wall_seconds()
        self.save_checkpoint()
        self.writer.file.flush()
        if close:
            self.close()
        plot_curve(self.run_dir / "metrics.csv", self.run_dir / "curve.png",
                   f"{config.algorithm.upper()} ({config.preset}) on {config.env_id}, "
                   f"seed {config.seed}")
        summary = {
            "eval_return_mean": float(self.last_eval.mean()),
            "eval_return_std": float(self.last_eval.std()),
            "eval_episodes": int(self.last_eval.size), "env_steps": self.env_steps,
            "updates": self.agent.updates, "episodes": self.episodes_done,
            "wall_seconds": wall_seconds, "steps_per_second": self.env_steps / wall_seconds,
            "preset": config.preset, "algorithm": config.algorithm, "env_id": config.env_id,
            "seed": config.seed, "versions": library_versions(),
        }
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    def close(self) -> None:
        self.writer.close()
        self.envs.close()
        self.eval_env.close()


def trainer_class(config: DDPGConfig) -> type[Trainer]:
    """:class:`Trainer`, or with ``config.actors`` > 0 the distributed learner (it needs Ray)."""
    if config.actors == 0:
        return Trainer
    from dpgkit.distributed import DistributedTrainer

    return DistributedTrainer


def _request_stop(trainer: Trainer) -> Any:
    """The SIGINT/SIGTERM handler: the first signal asks the run to stop once the current step
    is over, with a checkpoint; a second one stops it at once (a step that never ends, such as
    an evaluation episode of an env without a time limit). Stopping mid-step loses nothing:
    checkpoints are written atomically and a resume cuts metrics.csv back to its checkpoint."""
    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_signal is None:
            trainer.stop_signal = signum
            return
        kept = list_checkpoints(trainer.run_dir / "checkpoints")
        where = (f"the newest checkpoint is {kept[-1]}; continue with: dpgkit train --resume "
                 f"{trainer.run_dir}" if kept else "no checkpoint was written yet")
        raise Interrupted(f"{signal.Signals(signum).name} twice, in the middle of env step "
                          f"{trainer.env_steps}: stopped without a new checkpoint; {where}",
                          signum)
    return handler


def train(config: DDPGConfig | None, run_dir: Path, console: Console | None = None,
          progress: bool = True, resume_steps: int | None = None) -> dict[str, Any]:
    """Train with ``config``, writing everything to ``run_dir``; return the summary.
    With ``config=None``, continue the run in ``run_dir`` from its newest checkpoint
    (``resume_steps`` may raise its step budget).

    ``run_dir`` is created (it must not exist, or be empty) once the environment has been checked.
    It receives ``config.json``, ``metrics.csv``, TensorBoard events, ``curve.png``,
    ``checkpoints/`` and ``summary.json``. A progress bar shows on a terminal; elsewhere (or with
    ``progress=False``) one line is printed per evaluation. SIGINT and SIGTERM end the run after
    the current step with a checkpoint (raising :class:`Interrupted`); a NaN or infinity raises
    :class:`Diverged` and keeps the last good checkpoint.
    """
    console = console or Console()
    trainer = (trainer_class(config)(config, run_dir) if config is not None
               else Trainer.resume(run_dir, resume_steps))
    config = trainer.config
    verb = "training" if trainer.env_steps == 0 else f"resuming at env step {trainer.env_steps}:"
    console.print(f"dpgkit: {verb} {config.preset} on {config.env_id} (seed {config.seed}, "
                  f"{config.total_env_steps} env steps) -> {run_dir}")
    live = progress and console.is_terminal
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(bar_width=12),
                   MofNCompleteColumn(), TextColumn("{task.fields[rate]:.0f} steps/s"),
                   TextColumn("return {task.fields[last_return]}"),
                   TextColumn("eval {task.fields[last_eval]}"), TimeElapsedColumn(),
                   TimeRemainingColumn(), console=console, disable=not live)
    task = bar.add_task(config.env_id, total=config.total_env_steps,
                        completed=trainer.env_steps, rate=0.0, last_return="-", last_eval="-")
    if live:  # "evaluating k/N" while an evaluation's episodes run
        trainer.eval_env = EvaluationCounter(trainer.eval_env, config.eval_episodes, lambda k, n: (
            bar.update(task, description=f"evaluating {k}/{n}"), bar.refresh()))
    previous, shown = {}, trainer.env_steps
    if threading.current_thread() is threading.main_thread():  # signals reach only the main one
        previous = {s: signal.signal(s, _request_stop(trainer)) for s in (signal.SIGINT,
                                                                          signal.SIGTERM)}
    try:
        with bar:
            while not trainer.done:
                events = trainer.step()
                if "episode_return" in events:
                    bar.update(task, last_return=f"{events['episode_return']:.1f}")
                if "eval_return_mean" in events:
                    bar.update(task, last_eval=f"{events['eval_return_mean']:.1f}",
                               description=config.env_id)
                    if not live:
                        rate = trainer.steps_per_second()
                        left = "" if trainer.done else ", " + time_left(
                            (config.total_env_steps - trainer.env_steps) / rate) + " left"
                        console.print(f"step {trainer.env_steps:>8d}  eval return "
                                      f"{trainer.last_eval.mean():9.2f} +- "
                                      f"{trainer.last_eval.std():7.2f}  ({rate:.0f} steps/s{left})")
                if trainer.env_steps // 50 > shown // 50:  # a step may add many transitions
                    shown = trainer.env_steps
                    bar.update(task, completed=trainer.env_steps,
                               rate=trainer.steps_per_second())
                if trainer.stop_signal is not None and not trainer.done:
                    path = trainer.save_checkpoint()
                    trainer.close()
                    name = signal.Signals(trainer.stop_signal).name
                    raise Interrupted(f"{name} at env step {trainer.env_steps}: checkpoint "
                                      f"written to {path}; continue with: dpgkit train "
                                      f"--resume {run_dir}", trainer.stop_signal)
        return trainer.finish()
    except Diverged as error:
        trainer.close()
        raise Diverged(_divergence_report(trainer, str(error))) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _divergence_report(trainer: Trainer, what: str) -> str:
    """Write ``divergence.json`` to the run directory; return the one-line message."""
    kept = list_checkpoints(trainer.run_dir / "checkpoints")
    report = {"what": what, "env_steps": trainer.env_steps, "updates": trainer.agent.updates,
              "last_losses": trainer.update_stats.pop(),
              "last_good_checkpoint": str(kept[-1]) if kept else None,
              "config": config_to_dict(trainer.config)}
    (trainer.run_dir / "divergence.json").write_text(
        json.dumps(report, indent=2, default=str) + "\n")
    where = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"
    return (f"training diverged: {what}; {where}; details in "
            f"{trainer.run_dir / 'divergence.json'}. Try lower learning rates or a smaller tau")
