"""The Python API: learn, predict, save/load, callbacks, env instances, TD3."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import dpgkit
from dpgkit.errors import DpgkitError
from dpgkit.td3 import TD3Agent

TINY = dict(warmup_steps=100, batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16),
            eval_every_steps=200, eval_episodes=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dpgkit.DDPG:
    run_dir = tmp_path_factory.mktemp("api") / "run"
    return dpgkit.DDPG("Pendulum-v1", seed=0, tau=0.01, run_dir=run_dir, **TINY).learn(300)


def test_learn_writes_a_run_like_the_cli(trained):
    assert trained.config.tau == 0.01 and trained.trainer.env_steps == 300
    for name in ("config.json", "metrics.csv", "summary.json", "curve.png"):
        assert (trained.run_dir / name).is_file()


def test_predict_one_or_a_batch_in_env_bounds(trained):
    obs = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    batch, _ = trained.predict(obs)
    assert batch.shape == (64, 1) and np.all(np.abs(batch) <= 2.0)
    assert trained.predict(obs[0])[0].shape == (1,)
    np.testing.assert_allclose(trained.predict(obs[0])[0], batch[0], atol=1e-6)


def test_save_then_load_predicts_identically(trained, tmp_path):
    trained.save(tmp_path / "policy")
    loaded = dpgkit.load(tmp_path / "policy")
    obs = np.random.default_rng(1).normal(size=(256, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs)[0], trained.predict(obs)[0])
    with pytest.raises(DpgkitError, match="cannot train further"):
        loaded.learn(1000)


def test_save_replaces_a_policy_file_but_nothing_else(trained, tmp_path):
    folder = tmp_path / "mymodels.zip"
    folder.mkdir()
    (folder / "notes.txt").write_text("precious")
    with pytest.raises(DpgkitError, match="it is a directory; give a file name"):
        trained.save(folder)
    with pytest.raises(DpgkitError, match="exists and is not empty"):
        trained.save(folder, whole_run=True)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "precious"
    trained.save(tmp_path / "policy")
    trained.save(tmp_path / "policy")  # a policy file is replaced
    assert (tmp_path / "policy.zip").is_file()


def test_predict_before_learn_says_what_to_do():
    with pytest.raises(DpgkitError, match="has not been trained or loaded yet: call learn"):
        dpgkit.DDPG("Pendulum-v1").predict(np.zeros(3))


def test_agents_made_in_the_same_second_get_their_own_run_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(dpgkit.rundir.time, "strftime", lambda fmt: "20261124-040000")
    first, second = (dpgkit.DDPG("Pendulum-v1", **TINY).learn(150) for _ in range(2))
    assert first.run_dir.name == "Pendulum-v1-ddpg-seed0-20261124-040000"
    assert second.run_dir.name == "Pendulum-v1-ddpg-seed0-20261124-040000-2"
    assert (second.run_dir / "metrics.csv").is_file()


def test_callback_stops_early_and_steps_iterates(tmp_path):
    agent = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "a", **TINY)
    seen = []
    agent.learn(10_000, callback=lambda events: seen.append(events["env_steps"]) or
                events["env_steps"] < 150)
    assert seen[-1] == 150 and agent.trainer.env_steps == 150
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["env_steps"] == 150
    evals = [e["eval_return_mean"] for e in agent.steps(400) if "eval_return_mean" in e]
    assert len(evals) == 2 and agent.trainer.env_steps == 400  # at 200 and at 400


def test_an_env_instance_and_td3(tmp_path):
    agent = dpgkit.TD3(gym.make("Pendulum-v1"), run_dir=tmp_path / "t", **TINY).learn(200)
    assert isinstance(agent.agent, TD3Agent)
    assert agent.evaluate(episodes=2).shape == (2,)


def test_resume_continues_a_run(tmp_path):
    dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY).learn(200)
    resumed = dpgkit.DDPG.resume(tmp_path / "r").learn(300)
    assert resumed.trainer.env_steps == 300
    threads = torch.get_num_threads()
    try:  # this machine's share of cores may differ from the run's
        assert dpgkit.DDPG.resume(tmp_path / "r", torch_threads=2).config.torch_threads == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
