"""A training run as a checkpoint and back: everything needed to continue it bit for bit.

:func:`read_run` reads a run directory's newest checkpoint and the config to rebuild the run
with; the rebuilt :class:`~dpgkit.loop.Trainer` hands the checkpoint to :func:`restore`, which
puts it into the captured state; :func:`capture` turns a running Trainer into tensor files and
JSON. Besides the networks and optimisers this covers the replay buffer, the noise processes,
every random generator (numpy's, torch's, TD3's smoothing noise, and each env's through its
episode record), the counters (with TD7's: warm-up end, checkpoint statistics, value range),
the running update statistics, when the target return was first reached, what is left of a
step that a stop signal cut in its training burst (TD7), and the length of
``metrics.csv`` at the time. The observation statistics of ``normalize_obs`` are a module of the
agent's (``obs_norm``), saved with its networks. Resume touches a Trainer only through the
attributes of :class:`Run`.
"""

import contextlib
import dataclasses
import random
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from dpgkit import rundir
from dpgkit.acting import Acting, Episode
from dpgkit.agent import DDPGAgent
from dpgkit.checkpoint import (
    agent_tensors,
    is_checkpoint_dir,
    list_checkpoints,
    load_agent_tensors,
    run_of,
    usable_checkpoint,
)
from dpgkit.checkpoint_checks import NO_UNFINISHED_STEP
from dpgkit.checkpoint_recovery import is_complete, recover
from dpgkit.config import DDPGConfig
from dpgkit.config_dict import config_from_dict, config_to_dict
from dpgkit.envs import describe_env
from dpgkit.episode_replay import restore_episodes
from dpgkit.errors import CheckpointError, DpgkitError, EnvFailed
from dpgkit.metrics import MetricsWriter, RunningMeans
from dpgkit.noise import OrnsteinUhlenbeckNoise
from dpgkit.param_noise import ParameterNoise
from dpgkit.replay import ReplayBuffer
from dpgkit.td3 import TD3Agent
from dpgkit.td7 import TD7Agent

Checkpoint = tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]
"""A checkpoint as read: {tensor file: {name: tensor}} and the JSON metadata."""


class Run(Protocol):
    """What resume reads and writes of a run (a :class:`~dpgkit.loop.Trainer`), and nothing
    else: the run's settings and place, the agent, the replay and its generator, the acting
    (envs, observations, noise, running episodes, warm-up generator), the counters, the update
    statistics, the last evaluation, the metrics writer and the start time."""

    config: DDPGConfig
    run_dir: Path
    env_info: dict[str, Any]
    agent: DDPGAgent
    replay: ReplayBuffer
    replay_rng: np.random.Generator
    acting: Acting
    env_steps: int
    episodes_done: int
    update_credit: float
    update_stats: RunningMeans
    last_eval: np.ndarray
    target_reached: dict[str, float] | None
    eval_pending: bool
    burst_left: int
    episode_ends_left: list[Episode]
    writer: MetricsWriter
    started: float


def read_run(path: Path, total_env_steps: int | None = None, torch_threads: int | None = None
             ) -> tuple[DDPGConfig, Checkpoint]:
    """The checkpoint to continue a run from, and the config to continue it with (its own, or
    with a new step budget ``total_env_steps``, or a new thread count ``torch_threads``: this
    machine's share, not the method's; later checkpoints keep it). ``path`` is the run
    directory (its newest usable checkpoint: :func:`~dpgkit.checkpoint.usable_checkpoint`) or
    one checkpoint of it, which must then be the newest complete one: resuming an older one
    would replace the newer ones. A kill's leftovers are put in order first
    (:func:`~dpgkit.checkpoint_recovery.recover`)."""
    run_dir = run_of(path)
    recover(rundir.checkpoints_dir(run_dir), run_dir)
    if is_checkpoint_dir(path) and path.parent.name == rundir.CHECKPOINTS:
        newer = [p for p in list_checkpoints(path.parent) if p.name > path.name
                 and is_complete(p, run_dir)]
        if newer:
            raise CheckpointError(f"{path} is not the newest checkpoint of {run_dir} ({newer[-1]}"
                                  " is newer): resuming from it would replace the newer ones; "
                                  f"copy the run (cp -r {run_dir} NEW_RUN) and resume "
                                  "NEW_RUN's copy of it")
    _, files, meta = usable_checkpoint(path)
    config = config_from_dict(meta["config"])
    if total_env_steps is not None:
        steps_so_far = meta["counters"].get("env_steps")
        if isinstance(steps_so_far, int) and total_env_steps < steps_so_far:
            raise DpgkitError(f"--steps {total_env_steps} is less than the {steps_so_far} env "
                              "steps this run has already done: give --steps of at least "
                              f"{steps_so_far} (or leave it out to keep the run's own budget)")
        config = dataclasses.replace(config, total_env_steps=total_env_steps)
    if torch_threads is not None:
        config = dataclasses.replace(config, torch_threads=torch_threads)
    return config, (files, meta)


def capture(run: Run) -> Checkpoint:
    """The run's state: {tensor file: {name: tensor}} and the JSON metadata."""
    agent, replay, acting = run.agent, run.replay, run.acting
    tensors, agent_meta = agent_tensors(agent)
    tensors["rng.torch"] = torch.get_rng_state()
    if isinstance(agent, TD3Agent):
        tensors["rng.td3_smoothing"] = agent.generator.get_state()
    if isinstance(acting.noise, OrnsteinUhlenbeckNoise):
        tensors["noise.x"] = torch.from_numpy(acting.noise.x.copy())
    tensors["obs"] = torch.from_numpy(np.asarray(acting.obs).copy())
    param_noise = None
    if isinstance(acting.noise, ParameterNoise):  # the perturbed copies, sigma, recent states
        noise_tensors, param_noise = acting.noise.state()
        tensors.update(noise_tensors)
    replay_arrays, replay_counters = replay.state()
    replay_tensors = {name: torch.from_numpy(value) for name, value in replay_arrays.items()}
    meta = {
        "config": config_to_dict(run.config), "env": run.env_info, **agent_meta,
        "td7": agent.counters() if isinstance(agent, TD7Agent) else None,
        "param_noise": param_noise,
        "counters": {"env_steps": run.env_steps, "updates": agent.updates,
                     "episodes": run.episodes_done, "update_credit": run.update_credit,
                     "replay": replay_counters},
        "episodes": [asdict(e) for e in acting.episodes],
        "episode_records": list(acting.envs.call("episode_record")),
        "rng": {"python": random.getstate(), "warmup": acting.warmup_rng.bit_generator.state,
                "noise": acting.noise.rng.bit_generator.state,
                "replay": run.replay_rng.bit_generator.state},
        "update_stats": {"sums": run.update_stats.sums, "count": run.update_stats.count},
        "last_eval": run.last_eval.tolist(),
        "target_reached": run.target_reached,
        "eval_pending": bool(run.eval_pending),
        "unfinished_step": {"burst_left": run.burst_left,  # a stop during a training burst
                            "episode_ends": [asdict(e) for e in run.episode_ends_left]},
        "metrics_bytes": run.writer.bytes_written(),
        "wall_seconds": time.perf_counter() - run.started,
    }
    return {"agent.safetensors": tensors, "replay.safetensors": replay_tensors}, meta


def restore(run: Run, checkpoint: Checkpoint) -> None:
    """Put ``run`` (built from the checkpoint's config, with fresh envs) into the captured
    state, then reopen its ``metrics.csv`` cut back to the checkpoint. Everything is checked
    and restored before the run's files are touched: a refused resume leaves metrics.csv,
    config.json and the TensorBoard events as they were."""
    files, meta = checkpoint
    if meta["env"] != run.env_info:
        raise CheckpointError(f"the checkpoint was made for {describe_env(meta['env'])}, but "
                              f"the environment now is {describe_env(run.env_info)}: resume "
                              "with the environment the checkpoint was made for")
    try:
        _restore(run, files, meta)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise CheckpointError(f"the checkpoint's run state is incomplete or does not fit "
                              f"({type(error).__name__}: {error})") from None
    try:
        metrics_bytes = int(meta["metrics_bytes"])
        run.started -= float(meta["wall_seconds"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"the checkpoint's run state is incomplete ({error!r})") from None
    metrics = run.run_dir / rundir.METRICS
    if not metrics.is_file() or not 0 <= metrics_bytes <= metrics.stat().st_size:
        raise CheckpointError(
            f"{metrics} is missing or shorter than the checkpoint recorded "
            f"({metrics_bytes} bytes): resume needs the run directory the checkpoint "
            f"belongs to, with its {rundir.METRICS}")
    run.writer = MetricsWriter(run.run_dir, resume_at=(metrics_bytes, run.env_steps))
    if (run.run_dir / rundir.CONFIG).is_file():
        rundir.write_config(run.run_dir, run.config)  # the step budget may have changed


def _restore(run: Run, files: dict[str, dict[str, torch.Tensor]], meta: dict[str, Any]) -> None:
    tensors, replay_tensors = files["agent.safetensors"], files["replay.safetensors"]
    agent, acting, counters = run.agent, run.acting, meta["counters"]
    load_agent_tensors(agent, tensors, meta)
    agent.updates = int(counters["updates"])
    torch.set_rng_state(tensors["rng.torch"])
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    if isinstance(agent, TD3Agent):
        agent.generator.set_state(tensors["rng.td3_smoothing"])
    if isinstance(agent, TD7Agent):  # its warm-up, checkpoint statistics and value range
        agent.load_counters(meta["td7"])
    if isinstance(acting.noise, OrnsteinUhlenbeckNoise):
        acting.noise.x = tensors["noise.x"].numpy().copy()
    if isinstance(acting.noise, ParameterNoise):
        acting.noise.load_state(tensors, meta["param_noise"], agent.actor)

    run.replay.load_state({name: value.numpy() for name, value in replay_tensors.items()},
                          counters["replay"])

    for generator, state in ((acting.warmup_rng, meta["rng"]["warmup"]),
                             (acting.noise.rng, meta["rng"]["noise"]),
                             (run.replay_rng, meta["rng"]["replay"])):
        generator.bit_generator.state = state
    run.env_steps = int(counters["env_steps"])
    run.episodes_done = int(counters["episodes"])
    run.update_credit = float(counters["update_credit"])
    for episode, saved in zip(acting.episodes, meta["episodes"], strict=True):
        episode.total_reward, episode.length = float(saved["total_reward"]), int(saved["length"])
    run.update_stats.sums = {k: float(v) for k, v in meta["update_stats"]["sums"].items()}
    run.update_stats.count = int(meta["update_stats"]["count"])
    run.last_eval = np.asarray(meta["last_eval"], dtype=np.float64)
    run.target_reached = meta.get("target_reached")  # absent in checkpoints from before it
    run.eval_pending = bool(meta.get("eval_pending", False))  # older checkpoints lack it
    unfinished = meta.get("unfinished_step", NO_UNFINISHED_STEP)  # older checkpoints lack it
    run.burst_left = int(unfinished["burst_left"])
    run.episode_ends_left = [Episode(float(e["total_reward"]), int(e["length"]))
                             for e in unfinished["episode_ends"]]

    acting.obs = restore_episodes(acting.envs, meta["episode_records"])
    if not np.array_equal(acting.obs, tensors["obs"].numpy()):
        raise ValueError("replaying the running episodes did not reproduce the observations: "
                         "this environment is not deterministic given its seed and actions")


@contextlib.contextmanager
def rewound_on_env_failure(run: Run) -> Iterator[None]:
    """Around one step of the run's envs: if the env fails (EnvFailed), put back what acting
    drew before the failed call (the warm-up and noise generators, the OU state), so that the
    run is again at its last completed step and a checkpoint of it continues exactly. With
    several envs, those stepped before the failing one cannot be put back: the error then says
    ``consistent = False``."""
    acting = run.acting
    states = (acting.warmup_rng.bit_generator.state, acting.noise.rng.bit_generator.state)
    noise_x = getattr(acting.noise, "x", None)
    noise_x = noise_x.copy() if isinstance(noise_x, np.ndarray) else None
    try:
        yield
    except EnvFailed as error:
        acting.warmup_rng.bit_generator.state, acting.noise.rng.bit_generator.state = states
        if noise_x is not None:
            acting.noise.x = noise_x
        error.consistent = acting.envs.num_envs == 1  # type: ignore[attr-defined]
        raise
