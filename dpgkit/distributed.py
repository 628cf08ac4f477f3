"""Ape-X-style distributed training on Ray Core: many actors collect, one learner learns.

Each Ray actor runs a :class:`~dpgkit.collector.Collector` (its own envs, a CPU copy of the
policy, its own noise scale) and answers ``collect`` requests with a batch of transitions tagged
with the policy version that chose them. The learner is a :class:`~dpgkit.loop.Trainer`: it
keeps the replay, the agent, the counters, evaluations, checkpoints and ``--resume``; only its
``step`` differs. One learner step:

    wait for any actor's batch; store it (rows of each env's stream in time order)
    make the updates due (updates_per_step per new transition: the replay ratio is fixed, so
        actors faster than the learner wait: that is the backpressure)
    every publish_every_updates updates: publish the actor weights with one ray.put
    send that actor its next request (never more than max_in_flight per actor)

An actor that dies is restarted by Ray (``max_restarts=-1``), and Ray sends its unfinished
requests again to the new process (``max_task_retries=-1``); the learner counts a restart when a
batch comes from a new incarnation of the actor.

Deviations from a single-process run: batches arrive in no fixed order (a run is not
bit-reproducible); warm-up and the noise schedule follow the learner's env_steps when a request
was sent; an episode's row in ``metrics.csv`` is written when its batch is stored; a restarted
actor starts new episodes, and its unfinished one just stops (the replay sees that the next
transition does not start at the stream's last s', so none reaches across the cut).
"""

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from dpgkit import resume, rundir
from dpgkit.acting import Episode, Transition
from dpgkit.collector import Collector
from dpgkit.config import DDPGConfig
from dpgkit.errors import DpgkitError, Interrupted
from dpgkit.finite import check_finite
from dpgkit.loop import Trainer
from dpgkit.metrics import RunningMeans
from dpgkit.ray_cluster import import_ray, start_ray
from dpgkit.runlock import RunLock

# An actor that fails this many requests in a row, with no batch in between, stops the run.
MAX_FAILURES_IN_A_ROW = 5


class CollectorActor:
    """What runs in a Ray actor: a Collector that fetches the learner's weights only when their
    version changed (they come as a reference inside a list, so Ray does not fetch them for
    every request)."""

    def __init__(self, config: DDPGConfig, index: int, start: int) -> None:
        self.collector = Collector(config, index, start)
        self.incarnation = uuid.uuid4().hex  # new in each process Ray (re)starts

    def collect(self, version: int, weights: list[Any], env_steps: int) -> dict[str, Any]:
        """A batch (see Collector.collect), tagged with this actor's incarnation."""
        if version != self.collector.version:
            import ray

            self.collector.set_weights(ray.get(weights[0]), version)
        return {**self.collector.collect(env_steps), "incarnation": self.incarnation}

    def act(self, obs: np.ndarray) -> np.ndarray:
        """mu(s) of the actor's current policy copy (no noise)."""
        return self.collector.agent.act(np.array(obs))  # Ray's arrays are read-only

    def where(self) -> dict[str, Any]:
        """This actor's process id and Ray node id."""
        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}


class DistributedTrainer(Trainer):
    """The learner of a distributed run, fed by ``config.actors`` Ray actors (see the module).

    Its own envs (the Trainer's) are not stepped; they only keep the checkpoint format.
    """

    def __init__(self, config: DDPGConfig, run_dir: Path,
                 checkpoint: resume.Checkpoint | None = None,
                 run_lock: RunLock | None = None) -> None:
        self.ray = import_ray(local=not config.ray_address)  # fails before the run dir is made
        self.ray_temp_dir = start_ray(config)
        try:
            super().__init__(config, run_dir, checkpoint, run_lock)
        except BaseException:
            self.stop_ray()
            raise
        remote = self.ray.remote(CollectorActor).options(
            num_cpus=config.actor_cpus, max_restarts=-1, max_task_retries=-1)
        self.actors = [remote.remote(config, i, self.env_steps) for i in range(config.actors)]
        self.pending: dict[Any, int] = {}  # request -> actor
        self.in_flight = [0] * config.actors
        self.actor_env_steps = [0] * config.actors
        self.actor_restarts = [0] * config.actors
        self.incarnations: list[str | None] = [None] * config.actors
        self.failures_in_a_row = [0] * config.actors
        self.staleness, self.run_staleness = RunningMeans(), RunningMeans()
        self.window = (time.perf_counter(), self.env_steps, list(self.actor_env_steps))
        self.distributed_started = self.window[0]
        self.publish()
        for index in range(config.actors):
            self.fill(index)

    def publish(self) -> None:
        """Put the actor's weights (and the observation statistics of normalize_obs) in the
        object store; requests from now on carry them. Their version is the learner's update
        count."""
        self.weights = self.ray.put(self.agent.acting_weights())
        self.version = self.agent.updates

    def fill(self, index: int) -> None:
        """Send actor ``index`` requests until it has ``max_in_flight`` of them."""
        while self.in_flight[index] < self.config.max_in_flight:
            request = self.actors[index].collect.remote(self.version, [self.weights],
                                                        self.env_steps)
            self.pending[request] = index
            self.in_flight[index] += 1

    def step(self) -> dict[str, float]:
        """Store the next batch to arrive, make the updates due, publish weights when due, ask
        that actor for more; evaluate and checkpoint when due."""
        ray = self.ray
        (request,), _ = ray.wait(list(self.pending), num_returns=1)
        index = self.pending.pop(request)
        self.in_flight[index] -= 1
        try:
            batch = ray.get(request)
        except ray.exceptions.RayActorError as error:
            self.actor_died(index, error)
            return {}
        except ray.exceptions.RayTaskError as error:  # collect raised: say what, not where
            if isinstance(error.cause, DpgkitError) and type(error.cause) is not Interrupted:
                raise type(error.cause)(f"actor {index}: {error.cause}") from None
            raise
        self.failures_in_a_row[index] = 0
        if self.incarnations[index] not in (None, batch["incarnation"]):
            self.actor_restarts[index] += 1
        self.incarnations[index] = batch["incarnation"]
        steps_before = self.env_steps
        events = self.store(batch)
        self.learn(self.env_steps - steps_before)
        if self.agent.updates - self.version >= self.config.publish_every_updates:
            self.publish()
        self.fill(index)
        return {**events, **self.periodic(steps_before)}

    def store(self, batch: dict[str, Any]) -> dict[str, float]:
        """Add a batch to the replay in one call: rows in time order, each env of each actor
        its own stream (actor i's env j is stream i * num_envs + j)."""
        steps, num_envs = batch["reward"].shape
        index, rows = int(batch["actor"]), steps * num_envs
        check_finite(self.env_steps + rows, observation=batch["next_obs"], reward=batch["reward"])
        streams = np.tile(index * num_envs + np.arange(num_envs), steps)  # time-major rows
        self.replay.add(*(batch[name].reshape(rows, *batch[name].shape[2:])
                          for name in Transition._fields), streams=streams)
        self.agent.obs_norm.update(batch["obs"])  # with normalize_obs: the states acted on
        self.env_steps += rows
        self.actor_env_steps[index] += rows
        lag = {"policy_staleness": float(self.agent.updates - batch["version"])}
        self.staleness.add(lag)
        self.run_staleness.add(lag)
        events = {}
        for _, total_reward, length in batch["episodes"]:
            events["episode_return"] = self.record_episode(Episode(total_reward, length))
        return events

    def actor_died(self, index: int, error: Exception) -> None:
        """A request failed for good (Ray retries those of a restarting actor, so this is an
        actor that cannot be restarted, or a lost node): drop the actor's other requests and
        send it new ones, unless it keeps failing."""
        self.failures_in_a_row[index] += 1
        if self.failures_in_a_row[index] >= MAX_FAILURES_IN_A_ROW:
            raise DpgkitError(f"actor {index} died {MAX_FAILURES_IN_A_ROW} times in a row without "
                              f"returning a batch (last: {str(error).strip()[:300]}); see the "
                              "Ray logs (session_latest/logs in Ray's temp dir)")
        for request, owner in list(self.pending.items()):
            if owner == index:
                del self.pending[request]
        self.in_flight[index] = 0
        self.fill(index)

    def rates(self) -> dict[str, float]:
        """Transitions/s in total and per actor since the last call, the mean policy
        staleness (learner updates between the policy that acted and the update that stored
        it), the replay ratio (transitions sampled per transition stored) and the restarts."""
        now, steps, per_actor = self.window
        seconds = max(time.perf_counter() - now, 1e-9)
        rates = {"transitions_per_second": (self.env_steps - steps) / seconds,
                 "replay_ratio": self.agent.updates * self.config.batch_size
                 / max(self.env_steps, 1),
                 "actor_restarts": float(sum(self.actor_restarts)),
                 **self.staleness.pop()}
        for i, (new, old) in enumerate(zip(self.actor_env_steps, per_actor, strict=True)):
            rates[f"transitions_per_second/actor_{i}"] = (new - old) / seconds
        self.window = (time.perf_counter(), self.env_steps, list(self.actor_env_steps))
        return rates

    def evaluate(self) -> float:
        """The Trainer's evaluation, plus the distributed rates (TensorBoard only: they are
        timings, and metrics.csv holds no timings)."""
        result = super().evaluate()
        for key, value in self.rates().items():
            self.writer.scalar(key, value, self.env_steps)
        return result

    def finish(self, close: bool = True) -> dict[str, Any]:
        """The Trainer's finish; ``summary.json`` also gets a ``distributed`` section."""
        seconds = time.perf_counter() - self.distributed_started
        distributed = {
            "actors": self.config.actors,
            "transitions_per_second": sum(self.actor_env_steps) / seconds,
            "transitions_per_second_per_actor": [n / seconds for n in self.actor_env_steps],
            "policy_staleness_mean": self.run_staleness.pop().get("policy_staleness", 0.0),
            "replay_ratio": self.agent.updates * self.config.batch_size / max(self.env_steps, 1),
            "actor_restarts": list(self.actor_restarts),
        }
        summary = {**super().finish(close), "distributed": distributed}
        rundir.write_summary(self.run_dir, summary)
        return summary

    def close(self) -> None:
        """Stop the actors, and the local Ray this run started (deleting its temp files)."""
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors, self.pending = [], {}
        self.stop_ray()
        super().close()

    def stop_ray(self) -> None:
        """Shut down the local Ray this run started, and delete its temporary files."""
        if self.ray_temp_dir is not None:
            self.ray.shutdown()
            shutil.rmtree(self.ray_temp_dir, ignore_errors=True)
            self.ray_temp_dir = None
