"""Distributed scaling: transitions/s with 1, 2, 4, 8 actors on a latency-bound env, and the
learner's updates/s alone and with actors running.

    PYTHONPATH=. python benchmarks/scaling.py [--seconds 10] [--actors 1,2,4,8]

The env is Pendulum-v1 that sleeps 2 ms per step (an env waiting on a simulator or a robot), so
actors scale without free cores. Efficiency is tps(N) / (N tps(1)). Throughput is measured with
a learner that makes almost no updates (updates_per_step 1e-6), so it never holds actors back;
the learner's updates/s is measured learner-bound (updates_per_step 1, 4 actors), against the
same learner updating from a full replay with no actors at all.
"""

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.pendulum import PendulumEnv

SLEEP_SECONDS = 0.002
ENV_ID = "scaling:dpgkit-bench/SleepyPendulum-v1"


class SleepyPendulum(PendulumEnv):
    """Pendulum-v1 whose every step waits 2 ms, as if on a slow simulator."""

    def step(self, action: np.ndarray):
        time.sleep(SLEEP_SECONDS)
        return super().step(action)


gym.register("dpgkit-bench/SleepyPendulum-v1", entry_point=SleepyPendulum, max_episode_steps=200)


class TimedWait:
    """The ray module, with the seconds spent in ray.wait (the learner idle) added up."""

    def __init__(self, ray) -> None:
        self.ray, self.seconds = ray, 0.0

    def __getattr__(self, name: str):
        return getattr(self.ray, name)

    def wait(self, *args, **kwargs):
        started = time.perf_counter()
        result = self.ray.wait(*args, **kwargs)
        self.seconds += time.perf_counter() - started
        return result


def measure(trainer, seconds: float) -> dict[str, float]:
    """Transitions/s, updates/s and the learner's busy time per batch (everything but waiting:
    ray.get, storing, updating, sending the next request) of a running DistributedTrainer over
    ``seconds``, after every actor has delivered a batch (process start excluded)."""
    while 0 in trainer.actor_env_steps:
        trainer.step()
    if not isinstance(trainer.ray, TimedWait):
        trainer.ray = TimedWait(trainer.ray)
    timed, waited = trainer.ray, trainer.ray.seconds
    steps, updates, started = trainer.env_steps, trainer.agent.updates, time.perf_counter()
    while time.perf_counter() - started < seconds:
        trainer.step()
    elapsed = time.perf_counter() - started
    idle = timed.seconds - waited
    batches = (trainer.env_steps - steps) / (trainer.config.actor_batch_steps
                                             * trainer.config.num_envs)
    return {"tps": (trainer.env_steps - steps) / elapsed,
            "ups": (trainer.agent.updates - updates) / elapsed,
            "busy_per_batch": (elapsed - idle) / batches}


def updates_per_second(trainer, seconds: float) -> float:
    """Updates/s of ``trainer.update_once`` alone (no env, no batches) over ``seconds``."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        trainer.update_once()
        count += 1
    return count / (time.perf_counter() - started)


def learner_with_and_without_actors(trainer, seconds: float, rounds: int = 5
                                    ) -> tuple[float, float, float]:
    """Median updates/s of the learner alone (its actors idle: nothing asked of them) and with
    its actors running, measured in alternating windows of ``seconds`` so that the background
    load hits both alike; and the actors' transitions/s meanwhile."""
    alone, running, delivered = [], [], []
    measure(trainer, 1.0)
    for _ in range(rounds):
        alone.append(updates_per_second(trainer, seconds))
        got = measure(trainer, seconds)
        running.append(got["ups"])
        delivered.append(got["tps"])
    return float(np.median(alone)), float(np.median(running)), float(np.median(delivered))


def learner_alone(config, seconds: float, run_dir: Path) -> float:
    """Updates/s of the plain Trainer from a replay of random transitions (no env, no actors)."""
    from dpgkit.train import Trainer

    trainer = Trainer(dataclasses.replace(config, actors=0), run_dir)
    rng = np.random.default_rng(0)
    n = 20_000
    trainer.replay.add(rng.normal(size=(n, 3)), rng.uniform(-1, 1, (n, 1)), rng.normal(size=n),
                       rng.normal(size=(n, 3)), np.zeros(n), np.zeros(n))
    updates_per_second(trainer, 1.0)
    rate = updates_per_second(trainer, seconds)
    trainer.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--actors", default="1,2,4,8")
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(  # the actors import this module for the env
        [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    sys.path.insert(0, here)

    from dpgkit.distributed import DistributedTrainer, import_ray
    from dpgkit.presets import preset_config

    base = preset_config("ddpg", env_id=ENV_ID, total_env_steps=10**9, eval_every=10**9,
                         checkpoint_every=0, warmup_steps=0, actor_cpus=0.25,
                         updates_per_step=1e-6, actors=1)
    learner = dataclasses.replace(base, updates_per_step=1.0, actors=4)
    runs = Path(tempfile.mkdtemp(prefix="dpgkit-scaling-"))  # run directories, deleted at the end
    no_ray = learner_alone(learner, args.seconds, runs / "alone")  # before Ray starts
    ray = import_ray()
    temp_dir = tempfile.mkdtemp(prefix="dpgkit-ray-")
    ray.init(num_cpus=8, include_dashboard=False, _temp_dir=temp_dir, logging_level="warning")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, Ray {ray.__version__}, "
          f"env sleeps {SLEEP_SECONDS * 1000:.0f} ms per step, {args.seconds:.0f} s per point")
    print("| actors | transitions/s | per actor | efficiency | learner busy per batch |")
    print("|---:|---:|---:|---:|---:|")
    single = None
    for actors in [int(a) for a in args.actors.split(",")]:
        trainer = DistributedTrainer(dataclasses.replace(base, actors=actors),
                                     runs / f"actors{actors}")
        got = measure(trainer, args.seconds)
        trainer.close()
        tps = got["tps"]
        single = single or tps / actors
        print(f"| {actors} | {tps:.0f} | {tps / actors:.0f} | {tps / (actors * single):.2f} | "
              f"{got['busy_per_batch'] * 1000:.2f} ms |", flush=True)

    trainer = DistributedTrainer(learner, runs / "learner")
    window = args.seconds / 2
    alone, running, tps = learner_with_and_without_actors(trainer, window)
    trainer.close()
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    shutil.rmtree(runs, ignore_errors=True)
    print(f"\nlearner updates/s (batch {learner.batch_size}, nets {learner.actor_hidden}), "
          f"medians of 5 alternating {window:.0f} s windows: alone {alone:.0f}, with 4 actors "
          f"running {running:.0f}: {running / alone:.2f} of alone (the actors deliver {tps:.0f} "
          f"transitions/s, held back by the learner). The plain Trainer without Ray: "
          f"{no_ray:.0f} updates/s.")


if __name__ == "__main__":
    main()
