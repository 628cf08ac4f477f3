"""Observation normalisation: the merged moments by hand, raw replay and sample-time
normalisation, frozen statistics in evaluation, TD7, policy files, distributed actors' copies,
and (slow) a 1e3-scaled Pendulum that learns with it and not without."""

import dataclasses
import json

import numpy as np
import pytest
import torch

import dpgkit
from dpgkit.agents import make_agent
from dpgkit.cli import main
from dpgkit.collector import Collector
from dpgkit.equations import merged_moments, normalized_obs
from dpgkit.loop import Trainer
from dpgkit.obs_norm import ObsNormalizer, Unnormalized
from dpgkit.presets import preset_config
from dpgkit.train import train


def test_merged_moments_by_hand():
    # {1, 2, 3}: n 3, mean 2, var 2/3; {4, 5}: n 2, mean 4.5, var 1/4; together {1..5}: mean 3,
    # var (4 + 1 + 0 + 1 + 4) / 5 = 2. delta = 2.5: mean = 2 + 2.5 * 2 / 5 = 3;
    # var = (2/3 * 3 + 1/4 * 2 + 2.5^2 * 3 * 2 / 5) / 5 = (2 + 0.5 + 7.5) / 5 = 2.
    count, mean, var = merged_moments(3.0, np.array([2.0]), np.array([2 / 3]), 2.0,
                                      np.array([4.5]), np.array([0.25]))
    assert count == 5.0 and mean == pytest.approx([3.0]) and var == pytest.approx([2.0])
    # a first set of count 0 (the initial mean 0, var 1) gives the batch's own moments exactly
    count, mean, var = merged_moments(0.0, np.zeros(1), np.ones(1), 2.0, np.array([4.5]),
                                      np.array([0.25]))
    assert (count, mean[0], var[0]) == (2.0, 4.5, 0.25)


def test_merged_moments_stay_exact_far_from_zero():
    """1e9 + small noise, merged batch by batch, where sum(x^2)/n - mean^2 would lose it all."""
    rng = np.random.default_rng(0)
    data = 1e9 + rng.standard_normal((4_000, 2)) * [1e-2, 3.0]
    norm = ObsNormalizer(2)
    for batch in np.array_split(data, 37):
        norm.update(batch)
    assert float(norm.count) == 4_000
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(norm.var.numpy(), data.var(axis=0), rtol=1e-4)
    naive = (data ** 2).mean(axis=0) - data.mean(axis=0) ** 2
    assert abs(naive[0] - data.var(axis=0)[0]) > 100 * data.var(axis=0)[0]  # the pitfall


def test_normalized_obs_by_hand_and_clipped():
    obs = torch.tensor([[3.0, 100.0, -7.0]], dtype=torch.float64)
    mean = torch.tensor([1.0, 0.0, -7.0], dtype=torch.float64)
    var = torch.tensor([4.0, 0.0, 0.0], dtype=torch.float64)
    # (3 - 1) / 2 = 1; 100 / sqrt(1e-8) = 1e6, clipped to 10; a constant dimension: 0
    result = normalized_obs(obs, mean, var, clip=10.0)
    torch.testing.assert_close(result, torch.tensor([[1.0, 10.0, 0.0]], dtype=torch.float64),
                               rtol=0, atol=1e-6)
    assert torch.equal(Unnormalized()(obs), obs)


@pytest.fixture
def normalized_trainer(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, normalize_obs=True)
    trainer = Trainer(config, tmp_path / "run")
    yield trainer
    trainer.close()


def test_replay_keeps_raw_obs_and_batches_are_normalised_when_drawn(normalized_trainer):
    trainer, seen, batches = normalized_trainer, [], []
    update = trainer.agent.update
    trainer.agent.update = lambda batch: batches.append(batch) or update(batch)
    while trainer.env_steps < 150:
        seen.append(trainer.acting.obs.copy())
        trainer.step()
    acted = np.concatenate(seen)
    norm = trainer.agent.obs_norm
    assert float(norm.count) == 150
    np.testing.assert_allclose(norm.mean.numpy(), acted.astype(np.float64).mean(axis=0),
                               rtol=1e-9)
    stored = trainer.replay.transitions()
    np.testing.assert_array_equal(stored["obs"], acted)  # raw, as the env gave them
    batch = batches[-1]  # drawn after step 150 (warm-up 100): normalised by the statistics then
    raw = trainer.replay.gather(batch.indices)
    torch.testing.assert_close(batch.obs, norm(raw.obs))
    torch.testing.assert_close(batch.next_obs, norm(raw.next_obs))
    assert batch.obs.abs().max() <= trainer.config.obs_clip


def test_statistics_are_frozen_during_evaluation_and_acting_uses_them(normalized_trainer):
    trainer = normalized_trainer
    while trainer.env_steps < 120:
        trainer.step()
    state = {k: v.clone() for k, v in trainer.agent.obs_norm.state_dict().items()}
    trainer.evaluate()
    for key, value in trainer.agent.obs_norm.state_dict().items():
        assert torch.equal(value, state[key]), key
    obs = np.array([[0.5, -0.5, 3.0]], np.float32)
    normed = trainer.agent.obs_norm(torch.from_numpy(obs))
    expected = trainer.agent.actor(normed).detach().numpy()
    np.testing.assert_allclose(trainer.agent.act(obs), expected, rtol=1e-5, atol=1e-6)


def test_td7_encoder_and_actor_read_normalised_obs(tiny_config):
    config = preset_config("td7", actor_hidden=(16,), critic_hidden=(16,), zs_dim=8,
                           encoder_hidden=16, normalize_obs=True)
    agent = make_agent(3, 1, config)
    agent.obs_norm.update(np.random.default_rng(0).normal(5.0, 2.0, (64, 3)))
    obs = np.array([[5.0, 7.0, 1.0]], np.float32)
    with torch.no_grad():
        normed = agent.obs_norm(torch.from_numpy(obs))
        expected = agent.actor(normed, agent.fixed_encoder.zs(normed)).numpy()
    np.testing.assert_allclose(agent.act(obs), expected, rtol=1e-6)
    assert "obs_norm.mean" in {f"{n}.{k}" for n, m in agent.modules().items()
                               for k in m.state_dict()}


def test_distributed_actors_get_the_statistics_with_the_weights(tiny_config):
    config = dataclasses.replace(tiny_config, normalize_obs=True, actors=1)
    learner = make_agent(3, 1, config)
    learner.obs_norm.update(np.random.default_rng(1).normal(3.0, 4.0, (50, 3)))
    collector = Collector(config, index=0)
    collector.set_weights(learner.acting_weights(), version=7)
    obs = np.random.default_rng(2).normal(3.0, 4.0, (5, 3)).astype(np.float32)
    np.testing.assert_array_equal(collector.agent.act(obs), learner.act(obs))
    collector.close()


def test_policy_file_and_eval_use_the_statistics(tmp_path, capsys):
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "run", normalize_obs=True,
                        warmup_steps=100, batch_size=16, actor_hidden=(16,),
                        critic_hidden=(16,), eval_every_steps=300, eval_episodes=1).learn(300)
    obs = np.random.default_rng(3).uniform(-1, 1, (4, 3)).astype(np.float32)
    loaded = dpgkit.load(model.save(tmp_path / "policy"))
    np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
    assert float(loaded._loaded.agent.obs_norm.count) == 300
    assert main(["eval", str(tmp_path / "run"), "--episodes", "1"]) == 0
    evaluated = json.loads((tmp_path / "run" / "eval.json").read_text())["return_mean"]
    assert evaluated == pytest.approx(float(model.evaluate(episodes=1, seed=0)[0]))


@pytest.mark.slow
@pytest.mark.parametrize("normalize_obs, learns", [(True, True), (False, False)])
def test_pendulum_observed_at_1e3_scale_learns_only_with_normalisation(tmp_path, normalize_obs,
                                                                       learns):
    """Pendulum's observations times 1000 (up to 8000): with normalisation DDPG solves it as
    it solves Pendulum (docs/cli.md gives the figures); without, the saturated networks stay
    far from it."""
    config = preset_config("ddpg", env_id="dpgkit-test/ScaledPendulum-v0",
                           total_env_steps=10_000, normalize_obs=normalize_obs)
    summary = train(config, tmp_path / "run", progress=False)
    assert (summary["eval_return_mean"] > -400) == learns, summary["eval_return_mean"]


def test_vector_envs_merge_every_envs_observations(tiny_config, tmp_path):
    config = dataclasses.replace(tiny_config, normalize_obs=True, num_envs=3)
    trainer = Trainer(config, tmp_path / "run")
    acted = []
    while trainer.env_steps < 150:
        acted.append(trainer.acting.obs.copy())
        trainer.step()
    trainer.close()
    acted = np.concatenate(acted).astype(np.float64)
    assert float(trainer.agent.obs_norm.count) == 150
    np.testing.assert_allclose(trainer.agent.obs_norm.var.numpy(), acted.var(axis=0), rtol=1e-9)
