"""The training loop: act, store, update, evaluate, record. Nothing clever.

Per step of its envs, a :class:`Trainer` does:

    s, a, r, s', terminated, truncated = acting.step()      # dpgkit.acting: warm-up, noise,
                                                            # the true final obs at an episode end
    replay.add(s, a, r, s', terminated, truncated)
    for every episode that ended: a row of metrics.csv, and the updates the agent asks for
                                               (TD7, update_at_episode_end: a burst)
    agent.update(replay.sample(batch_size))    updates_per_step times (after warm-up, or
                                               from the first batch: update_during_warmup)
    evaluate and checkpoint when due

:func:`dpgkit.train.train` drives it from the terminal; :mod:`dpgkit.resume` writes and reads its
checkpoints; :class:`dpgkit.distributed.DistributedTrainer` replaces only its ``step``.
"""

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dpgkit import resume, rundir
from dpgkit.acting import Acting, Episode
from dpgkit.agents import make_agent
from dpgkit.checkpoint import prune_checkpoints, step_checkpoint_dir, write_checkpoint
from dpgkit.config import DDPGConfig
from dpgkit.envs import ActionScaler, env_info, make_env, make_vector_env, space_dims
from dpgkit.evaluation import eval_seeds, evaluate
from dpgkit.finite import check_finite, check_parameters_finite
from dpgkit.metrics import MetricsWriter, RunningMeans
from dpgkit.noise import make_noise
from dpgkit.plotting import plot_curve
from dpgkit.prioritized import PrioritizedReplayBuffer
from dpgkit.runlock import RunLock
from dpgkit.saturation import trained_actions, warn_if_saturated
from dpgkit.summary import run_summary
from dpgkit.threads import use_threads


def experience_streams(config: DDPGConfig) -> int:
    """How many experience streams (envs) feed the replay: ``num_envs`` of each actor."""
    return config.num_envs * max(config.actors, 1)


class Trainer:
    """One run: its environments, agent, replay, acting, random generators, counters, records.

    ``step()`` advances every env by one step (and makes the updates due after it);
    ``finish()`` writes the last checkpoint, the curve and the summary. With ``num_envs`` envs,
    one step adds ``num_envs`` transitions, and ``env_steps`` counts transitions. A new run:
    ``Trainer(config, run_dir)``; a run continued from a checkpoint read by
    :func:`dpgkit.resume.read_run` gets it as ``checkpoint``, and :func:`dpgkit.resume.restore`
    puts it into that state before anything else happens (the attributes it reads and writes
    are listed in :class:`dpgkit.resume.Run`).
    """

    def __init__(self, config: DDPGConfig, run_dir: Path,
                 checkpoint: resume.Checkpoint | None = None,
                 run_lock: RunLock | None = None) -> None:
        self.config, self.run_dir = config, run_dir
        use_threads(config.torch_threads)
        torch.set_flush_denormal(config.flush_denormal)
        # dpgkit draws from its own generators; the global ones are seeded too, so that a user's
        # code run inside the loop (an env, a callback) is reproducible, and are checkpointed.
        torch.manual_seed(config.seed)
        random.seed(config.seed)
        self.eval_env = make_env(config.env_id, **config.env_arguments())  # a bad env fails here
        self.envs = make_vector_env(config.env_id, config.num_envs, config.vector_mode,
                                    config.env_arguments())
        obs_dim, action_dim = space_dims(self.eval_env)
        self.scaler = ActionScaler.for_space(self.eval_env.action_space)
        self.agent = make_agent(obs_dim, action_dim, config)
        self.replay = self.agent.make_replay(experience_streams(config))  # TD7: LAP
        warmup_rng, noise_rng, self.replay_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3))
        noise = make_noise(config, action_dim, noise_rng, config.num_envs)
        obs, _ = self.envs.reset(seed=config.seed)  # env i is seeded with seed + i
        if checkpoint is None:  # once the env, the networks and the replay have been made
            rundir.create_run_dir(run_dir)
        self.run_lock = run_lock or RunLock(run_dir)  # one training process per run (runlock)
        self.env_info = env_info(self.eval_env, config.env_id)
        self.update_stats = RunningMeans()
        self.env_steps = 0
        self.episodes_done = 0
        self.update_credit = 0.0
        self.last_eval = np.array([np.nan])
        self.target_reached: dict[str, float] | None = None  # env_steps, seconds: first reached
        self.eval_pending = False  # an evaluation was due and has not been recorded yet
        self.warned_saturated = False  # dpgkit.saturation's warning, given once a run
        self.burst_left = 0  # TD7: updates still due from an episode end (a stop came first)
        self.episode_ends_left: list[Episode] = []  # ended episodes not yet through the agent
        noise.reset()
        self.acting = Acting(config, self.envs, obs, self.agent, noise, noise.sigma, warmup_rng)
        self.started = time.perf_counter()
        self.stop_signal: int | None = None
        if checkpoint is None:
            self.writer = MetricsWriter(run_dir)
            self.writer.text("config", rundir.write_config(run_dir, config))
        else:  # checked and restored before the run's files are touched
            resume.restore(self, checkpoint)

    @property
    def budget_reached(self) -> bool:
        """Whether the run is over: it has made its ``total_env_steps``, or an evaluation
        reached ``target_return`` (with ``stop_at_target``), and its last step is complete."""
        return not self.step_unfinished and (
            self.env_steps >= self.config.total_env_steps
            or (self.config.stop_at_target and self.target_reached is not None))

    @property
    def step_unfinished(self) -> bool:
        """A stop signal came during a step's training burst (TD7: up to 20,000 updates):
        the step stopped there, and its rest is due first (checkpointed with the run)."""
        return self.burst_left > 0 or bool(self.episode_ends_left)

    def hold(self) -> None:
        """Hold the run directory again after ``finish(close=False)`` let it go."""
        if not self.run_lock.held:
            self.run_lock = RunLock(self.run_dir)

    def step(self) -> dict[str, float]:
        """One step of every env, its transitions into the replay, the updates due, an
        evaluation and a checkpoint if one is due.

        Returns what is worth showing: ``episode_return`` when an episode ended,
        ``eval_return_mean`` when an evaluation ran.
        """
        if self.step_unfinished:  # the run resumed from a stop in the middle of a step
            return self.finish_step()
        with resume.rewound_on_env_failure(self):  # then a checkpoint of the last step holds
            transition, ended = self.acting.step(self.env_steps)
        check_finite(self.env_steps + self.config.num_envs, observation=transition.next_obs,
                     reward=transition.reward)
        self.replay.add(*transition)
        self.agent.obs_norm.update(transition.obs)  # with normalize_obs: the states acted on
        self.env_steps += self.config.num_envs
        self.episode_ends_left = [episode for _, episode in ended]
        return self.finish_step()

    def finish_step(self) -> dict[str, float]:
        """The rest of a step once its transitions are stored: each ended episode's row and
        the updates the agent asks for at its end (TD7: a training burst), the updates due per
        step, then the evaluation and checkpoint due. A stop signal ends a burst between two
        updates; what is left of the step is then checkpointed and done first on resume."""
        events = {}
        while self.step_unfinished:
            if self.burst_left == 0:
                episode = self.episode_ends_left.pop(0)
                events["episode_return"] = self.record_episode(episode)
                burst = self.agent.on_episode_end(episode.length, episode.total_reward,
                                                  self.env_steps)
                for key, value in self.agent.episode_scalars().items():
                    self.writer.scalar(key, value, self.env_steps)
                self.burst_left = burst if len(self.replay) >= self.config.batch_size else 0
            elif self.stop_signal is not None:
                return events
            else:
                self.update_once()
                self.burst_left -= 1
        self.learn(self.config.num_envs)
        return {**events, **self.periodic(self.env_steps - self.config.num_envs)}

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

        if crossed(config.eval_every_steps) or self.budget_reached:
            events["eval_return_mean"] = self.evaluate()
        if crossed(config.checkpoint_every_steps) and not self.budget_reached:
            self.save_checkpoint()
        return events

    def learn(self, new_transitions: int) -> int:
        """The updates due after ``new_transitions`` more transitions: ``updates_per_step`` per
        transition once warm-up is over (or at once, with ``update_during_warmup``) and the
        replay holds a batch. Returns how many updates ran."""
        config = self.config
        learning = self.agent.learns_every_step(self.env_steps)  # TD7: never, with checkpoints
        if not learning or len(self.replay) < config.batch_size:
            return 0
        self.update_credit += new_transitions * config.updates_per_step
        updates_made = 0
        while self.update_credit >= 1.0:
            self.update_once()
            self.update_credit -= 1.0
            updates_made += 1
        return updates_made

    def update_once(self) -> dict[str, float]:
        """Sample a batch, make one agent update, check and record its losses."""
        config, replay = self.config, self.replay
        if isinstance(replay, PrioritizedReplayBuffer):  # beta rises linearly over the run
            replay.beta = config.priority_beta + (config.priority_beta_end - config.priority_beta) \
                * min(self.env_steps / config.total_env_steps, 1.0)
        batch = replay.sample(config.batch_size, self.replay_rng)
        losses = self.agent.update(self.agent.obs_norm.normalize_batch(batch))  # raw obs stored
        check_finite(self.env_steps, **losses)
        self.update_stats.add(losses)
        if isinstance(replay, PrioritizedReplayBuffer):
            replay.update_priorities(batch.indices, self.agent.td_error.numpy())
        return losses

    def evaluate(self) -> float:
        """Run the evaluation episodes (no noise, fixed start seeds) and record them. Until they
        are recorded, ``eval_pending`` says so (a stop signal may end them early)."""
        self.eval_pending = True
        states, actions = [], []  # every evaluation state, and the deployed mu(s) in [-1, 1]

        def act(obs: np.ndarray) -> np.ndarray:
            states.append(obs)
            actions.append(self.agent.deployed_act(obs))
            return actions[-1]

        self.last_eval = evaluate(act, self.eval_env, self.scaler,
                                  eval_seeds(self.config.seed, self.config.eval_episodes))
        if not self.warned_saturated:  # once a run
            self.warned_saturated = warn_if_saturated(
                trained_actions(self.agent, states, actions), self.env_steps)
        self.writer.row(self.env_steps, updates=self.agent.updates,
                        eval_return_mean=self.last_eval.mean(),
                        eval_return_std=self.last_eval.std())
        self.eval_pending = False
        self.writer.scalar("steps_per_second", self.steps_per_second(), self.env_steps)
        target = self.config.target_return
        if target is not None and self.target_reached is None and self.last_eval.mean() >= target:
            self.target_reached = {"env_steps": self.env_steps, "seconds": self.wall_seconds()}
        return float(self.last_eval.mean())

    def save_checkpoint(self) -> Path:
        """The run's periodic checkpoint: ``checkpoints/step-<env_steps>``, keeping the newest
        ``keep_checkpoints``."""
        checkpoints = rundir.checkpoints_dir(self.run_dir)
        path = self.write_state(step_checkpoint_dir(checkpoints, self.env_steps))
        prune_checkpoints(checkpoints, self.config.keep_checkpoints)
        return path

    def write_state(self, directory: Path) -> Path:
        """Write the whole run as a checkpoint at ``directory``; refuse non-finite parameters."""
        check_parameters_finite(self.agent.modules(), self.env_steps)
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
        plot_curve(self.run_dir / rundir.METRICS, self.run_dir / rundir.CURVE,
                   f"{config.algorithm.upper()} ({config.preset}) on {config.env_id}, "
                   f"seed {config.seed}")
        counts = {"env_steps": self.env_steps, "updates": self.agent.updates,
                  "episodes": self.episodes_done}
        summary = run_summary(config, self.last_eval, counts, wall_seconds, self.target_reached)
        rundir.write_summary(self.run_dir, summary)
        if close:
            self.close()
        else:  # held again by the next step: an idle run is anyone's to resume
            self.run_lock.release()
        return summary

    def close(self) -> None:
        self.writer.close()
        self.envs.close()
        self.eval_env.close()
        self.run_lock.release()
