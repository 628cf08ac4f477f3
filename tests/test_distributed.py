"""Distributed mode: batch format, weights, backpressure, a dying actor, resume, two nodes.

All tests share one local Ray instance (two CPUs, actors take a quarter each); the two-node
cluster and the learning check are marked slow.
"""

import dataclasses
import json
import os
import shutil
import signal
import sys
import time

import numpy as np
import pytest

from dpgkit.cli import main
from dpgkit.collector import Collector, actor_noise_factor
from dpgkit.distributed import DistributedTrainer
from dpgkit.presets import preset_config
from dpgkit.ray_cluster import import_ray, start_ray
from dpgkit.train import train

ray = import_ray()


@pytest.fixture(scope="session")
def local_ray():
    """One local Ray for the whole session, started as a run starts it (two CPUs here)."""
    temp_dir = start_ray(preset_config("ddpg", actors=2, actor_cpus=1.0))
    yield temp_dir
    if ray.is_initialized():
        ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)


def test_local_ray_listens_on_loopback_with_its_files_in_a_short_temp_dir(local_ray):
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    assert all(node["NodeManagerAddress"] == "127.0.0.1" for node in ray.nodes())
    assert (local_ray / "session_latest" / "sockets").is_dir()  # Ray's files are in our dir
    assert len(str(local_ray)) < 40  # Unix socket paths must stay under 108 characters


@pytest.fixture
def config(tiny_config):
    return dataclasses.replace(tiny_config, total_env_steps=1_500, warmup_steps=200,
                               eval_every_steps=750, actors=2, actor_cpus=0.25,
                               actor_batch_steps=25, publish_every_updates=20)


def test_batch_is_time_major_with_true_final_obs_and_a_version_tag(config):
    collector = Collector(dataclasses.replace(config, num_envs=2, actor_batch_steps=205,
                                              warmup_steps=0), index=1)
    weights = {k: v.numpy() + 0.01 for k, v in collector.agent.actor.state_dict().items()}
    collector.set_weights({"actor": weights, "obs_norm": {}}, version=12)
    batch = collector.collect(env_steps=1_000)
    assert batch["obs"].shape == batch["next_obs"].shape == (205, 2, 3)
    assert batch["action"].shape == (205, 2, 1) and batch["reward"].shape == (205, 2)
    assert batch["actor"] == 1 and batch["version"] == 12
    assert np.all(np.abs(batch["action"]) <= 1.0)
    # Pendulum truncates at 200 steps: the stored next_obs is the true final obs, and the next
    # row starts the new episode; elsewhere next_obs is the following row's obs.
    assert batch["truncated"][199].all() and not batch["truncated"][:199].any()
    assert not np.array_equal(batch["next_obs"][199], batch["obs"][200])
    np.testing.assert_array_equal(batch["next_obs"][:199], batch["obs"][1:200])
    assert [(env, length) for env, _, length in batch["episodes"]] == [(0, 200), (1, 200)]
    for key, value in collector.agent.actor.state_dict().items():  # the policy it was sent
        np.testing.assert_array_equal(value.numpy(), weights[key])


def test_exploration_spreads_geometrically_across_actors(config):
    factors = [actor_noise_factor(i, 4, 0.1) for i in range(4)]
    np.testing.assert_allclose(factors, [1.0, 0.1 ** (1 / 3), 0.1 ** (2 / 3), 0.1])
    assert actor_noise_factor(0, 1, 0.1) == 1.0
    spread = dataclasses.replace(config, actors=4, actor_noise_spread=0.1, gaussian_sigma=0.3)
    assert Collector(spread, index=3).acting.initial_sigma == pytest.approx(0.03)


def test_weights_reach_actors_and_requests_stay_within_the_limit(local_ray, config, tmp_path):
    config = dataclasses.replace(config, num_envs=2, normalize_obs=True)  # statistics travel too
    trainer = DistributedTrainer(config, tmp_path / "run")
    stored, add = [], trainer.replay.add
    trainer.replay.add = lambda *fields, streams: (stored.append((fields, streams)),
                                                   add(*fields, streams=streams))
    try:
        while trainer.agent.updates < 3 * config.publish_every_updates:
            trainer.step()
            for index in range(config.actors):
                mine = [r for r, owner in trainer.pending.items() if owner == index]
                assert len(mine) == trainer.in_flight[index] == config.max_in_flight
        assert trainer.version >= 2 * config.publish_every_updates  # published several times
        trainer.publish()
        obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
        for actor in trainer.actors:  # a request with the new weights, after the queued ones
            batch = ray.get(actor.collect.remote(trainer.version, [trainer.weights], 0))
            assert batch["version"] == trainer.version
            np.testing.assert_allclose(ray.get(actor.act.remote(obs)), trainer.agent.act(obs),
                                       rtol=1e-6)
        while not trainer.budget_reached:
            trainer.step()
        summary = trainer.finish()
    finally:
        trainer.close()
    # Each batch went in as one add: time-major rows, actor i's env j as stream 2 i + j, so
    # every stream's rows are in time order (next_obs of row t is obs of row t + 1 of its env).
    for (obs, _, _, next_obs, _, truncated), streams in stored:
        assert set(streams[:2]) in ({0, 1}, {2, 3})
        np.testing.assert_array_equal(streams, np.tile(streams[:2], len(streams) // 2))
        same_episode = ~truncated[:-2]
        np.testing.assert_array_equal(next_obs[:-2][same_episode], obs[2:][same_episode])
    stats = summary["distributed"]
    assert summary["env_steps"] >= config.total_env_steps
    assert len(stats["transitions_per_second_per_actor"]) == 2
    assert all(rate > 0 for rate in stats["transitions_per_second_per_actor"])
    assert stats["policy_staleness_mean"] >= 0 and stats["actor_restarts"] == [0, 0]
    assert stats["replay_ratio"] == pytest.approx(
        summary["updates"] * config.batch_size / summary["env_steps"])


@pytest.mark.slow  # about 40 s: the default run keeps the distributed CLI and resume tests
def test_an_actor_killed_mid_run_is_restarted_and_the_run_completes(local_ray, config,
                                                                    tmp_path):
    trainer = DistributedTrainer(dataclasses.replace(config, total_env_steps=100_000),
                                 tmp_path / "run")
    try:
        while trainer.env_steps < 500:
            trainer.step()
        pid = ray.get(trainer.actors[0].where.remote())["pid"]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.perf_counter()
        while trainer.actor_restarts[0] == 0:  # until a batch comes from the new process
            trainer.step()
            # a restart is a new process importing torch and gymnasium: about 5-20 s on an idle
            # 2-core machine; it took over 60 s once with two trainings running beside the suite
            assert time.perf_counter() - killed_at < 120, "the actor was not restarted"
        print(f"actor 0 killed at {trainer.env_steps} env steps; its new process delivered a "
              f"batch {time.perf_counter() - killed_at:.1f} s later")
        assert trainer.actor_restarts == [1, 0]
        assert ray.get(trainer.actors[0].where.remote())["pid"] != pid
        trainer.config = dataclasses.replace(config, total_env_steps=trainer.env_steps + 300)
        while not trainer.budget_reached:
            trainer.step()
        summary = trainer.finish()
    finally:
        trainer.close()
    assert summary["distributed"]["actor_restarts"][0] >= 1
    assert np.isfinite(summary["eval_return_mean"])


def test_cli_trains_and_resumes_a_distributed_run(local_ray, tmp_path, capsys):
    run = tmp_path / "run"
    flags = ["--steps", "800", "--warmup_steps", "100", "--batch_size", "32",
             "--actor_hidden", "32,32", "--critic_hidden", "32,32", "--eval_every_steps", "400",
             "--eval_episodes", "1", "--checkpoint_every_steps", "400", "--actors", "2",
             "--actor_cpus", "0.25", "--actor_batch_steps", "20", "--no-progress",
             "--prioritized", "true", "--n_step", "3"]  # the replay options work here too
    assert main(["train", "--out", str(run), *flags]) == 0
    first = json.loads((run / "summary.json").read_text())
    assert main(["train", "--resume", str(run), "--steps", "1200", "--no-progress"]) == 0
    resumed = json.loads((run / "summary.json").read_text())
    assert first["env_steps"] >= 800 and resumed["env_steps"] >= 1200
    assert resumed["updates"] > first["updates"] and "distributed" in resumed
    assert "resuming at env step" in capsys.readouterr().out


def test_actors_without_ray_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    status = main(["train", "--actors", "2", "--out", str(tmp_path / "run")])
    assert status == 2
    assert "pip install 'dpgkit[distributed]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_distributed_td3_solves_pendulum(local_ray, tmp_path):
    config = preset_config("td3", total_env_steps=15_000, actors=2, actor_cpus=0.5)
    summary = train(config, tmp_path / "run", progress=False)
    print(f"distributed TD3 on Pendulum: eval return {summary['eval_return_mean']:.1f}, "
          f"{summary['distributed']}")
    assert summary["eval_return_mean"] >= -200.0, summary


@pytest.mark.slow
def test_actors_are_placed_on_both_nodes_of_a_two_node_cluster(tmp_path):
    """Last in the file: it replaces the shared local Ray with a cluster of its own."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    config = preset_config("ddpg", total_env_steps=400, warmup_steps=100, batch_size=32,
                           actor_hidden=(32, 32), critic_hidden=(32, 32), eval_every_steps=400,
                           eval_episodes=1, actors=2, actor_cpus=1.0,
                           ray_address=cluster.address)
    try:
        trainer = DistributedTrainer(config, tmp_path / "run")
        nodes = {ray.get(actor.where.remote())["node_id"] for actor in trainer.actors}
        assert len(nodes) == 2
        while not trainer.budget_reached:
            trainer.step()
        trainer.finish()
    finally:
        ray.shutdown()
        cluster.shutdown()
