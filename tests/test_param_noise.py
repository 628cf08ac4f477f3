"""Parameter-space noise (Plappert et al. 2018): the distance and the adaptive rule by hand, the
scale rising and falling as the rule says, perturbed copies that differ from the actor and are
resampled per episode (per env), layer norm as torch computes it, a bitwise resume, actors."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from test_resume import QUIET, SMALL, assert_same_run

from dpgkit.agent import DDPGAgent
from dpgkit.autograd_steps import AutogradSteps
from dpgkit.checkpoint import find_checkpoint, read_checkpoint
from dpgkit.collector import Collector
from dpgkit.config import DDPGConfig
from dpgkit.config_dict import config_from_dict, config_to_dict
from dpgkit.equations import action_distance, adapt_param_noise_scale
from dpgkit.errors import ConfigError
from dpgkit.fastpath import supports
from dpgkit.networks import Actor
from dpgkit.noise import make_noise
from dpgkit.param_noise import ParameterNoise
from dpgkit.presets import preset_config
from dpgkit.train import Trainer, train

OBS = np.random.default_rng(7).standard_normal((64, 3)).astype(np.float32)


def test_action_distance_by_hand():
    a = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 0.5]])
    # (0 + 1 + 1 + 0.25) / 4 = 0.5625, sqrt = 0.75
    assert action_distance(a, b) == pytest.approx(0.75, abs=1e-7)
    assert action_distance(a, a) == 0.0


def test_adaptive_rule_by_hand():
    assert adapt_param_noise_scale(0.1, 0.05, 0.1, 1.01) == pytest.approx(0.101)
    assert adapt_param_noise_scale(0.1, 0.1, 0.1, 1.01) == pytest.approx(0.101)  # d <= delta
    assert adapt_param_noise_scale(0.1, 0.2, 0.1, 1.01) == pytest.approx(0.1 / 1.01)
    assert adapt_param_noise_scale(0.2, 3.0, 1.0, 2.0) == pytest.approx(0.1)


def noise_for(actor, delta, num_envs=1, **overrides):
    settings = {"param_noise_adapt_every_steps": 1, "param_noise_states": 64, **overrides}
    config = DDPGConfig(exploration_noise="param", gaussian_sigma=delta, **settings)
    noise = make_noise(config, 1, np.random.default_rng(0), num_envs)
    assert isinstance(noise, ParameterNoise)
    return noise


@pytest.mark.parametrize("delta, step", [(10.0, 1.01), (1e-9, 1 / 1.01)])
def test_the_scale_rises_below_the_target_distance_and_falls_above_it(delta, step):
    actor = Actor(3, 1, (16, 16))
    noise = noise_for(actor, delta)
    expected = noise.param_sigma
    for row in OBS[:40]:
        noise.act(actor, row[None])  # one adaptation per step
        expected *= step
        assert noise.param_sigma == pytest.approx(expected, rel=1e-12)


def test_the_distance_settles_near_its_target():
    actor = Actor(3, 1, (32, 32), layer_norm=True)
    noise, distances = noise_for(actor, 0.2, param_noise_alpha=1.05), []
    for k in range(300):
        noise.act(actor, OBS[k % 64][None])
        distances.append(noise.last_distance)
    assert np.mean(distances[-150:]) == pytest.approx(0.2, rel=0.25)
    late = np.array(distances[-150:])
    assert (late > 0.2).any() and (late <= 0.2).any()  # it goes on crossing the target


def parameters(module):
    return [p.detach().clone() for p in module.parameters()]


def test_the_perturbed_copies_differ_and_are_resampled_per_episode_of_their_env():
    actor = Actor(3, 1, (16, 16), layer_norm=True)
    noise = noise_for(actor, 0.1, num_envs=2, param_noise_adapt_every_steps=10**6)
    first = noise.act(actor, OBS[:2])
    copies = [parameters(c) for c in noise.actors]
    for (name, source), perturbed in zip(actor.named_parameters(), copies[0], strict=True):
        difference = perturbed - source.detach()
        if name.startswith(("net.0.1.", "net.1.1.")):  # the LayerNorms: not perturbed
            assert torch.equal(difference, torch.zeros_like(difference))
        else:
            assert difference.abs().max() > 0
            if difference.numel() > 200:
                assert difference.std().item() == pytest.approx(noise.param_sigma, rel=0.1)
    assert not np.allclose(first, actor(torch.from_numpy(OBS[:2])).detach().numpy())
    assert np.array_equal(noise.act(actor, OBS[:2]), first)  # same episode: same copies
    noise.reset(1)  # env 1 starts an episode: only its copy is drawn again
    third = noise.act(actor, OBS[:2])
    assert third[0] == first[0] and third[1] != first[1]
    assert all(torch.equal(a, b) for a, b in zip(parameters(noise.actors[0]), copies[0],
                                                   strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(parameters(noise.actors[1]), copies[1],
                                                       strict=True))


def test_layer_norm_forward_is_torch_s_and_takes_the_autograd_path():
    actor = Actor(3, 2, (8, 8), layer_norm=True)
    x = torch.from_numpy(OBS[:5])
    h = x
    for block in actor.net[:2]:
        linear, norm = block[0], block[1]
        z = h @ linear.weight.T + linear.bias
        mean, var = z.mean(-1, keepdim=True), z.var(-1, unbiased=False, keepdim=True)
        h = torch.relu((z - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias)
    expected = torch.tanh(h @ actor.net[2].weight.T + actor.net[2].bias)
    torch.testing.assert_close(actor(x), expected, rtol=1e-6, atol=1e-6)
    agent = DDPGAgent(3, 2, DDPGConfig(actor_layer_norm=True, actor_hidden=(8, 8)))
    assert not supports(agent.actor, agent.critic)
    assert isinstance(agent.gradient_steps, AutogradSteps)


def test_settings_refused_and_old_configs_still_load():
    with pytest.raises(ConfigError, match="batch norm"):
        DDPGConfig(exploration_noise="param", batch_norm=True)
    with pytest.raises(ConfigError, match="TD7"):
        preset_config("td7", exploration_noise="param")
    old = {k: v for k, v in config_to_dict(DDPGConfig()).items()
           if not k.startswith("param_noise") and k != "actor_layer_norm"}
    assert config_from_dict(old) == DDPGConfig()


PARAM = {**SMALL, "exploration_noise": "param", "actor_layer_norm": True,
         "param_noise_adapt_every_steps": 7, "param_noise_states": 50}


def test_resume_with_parameter_noise_is_bit_identical(tmp_path):
    config, stop_at = preset_config("ddpg", **PARAM, num_envs=2), 400  # a copy per env
    train(config, tmp_path / "whole", QUIET, progress=False)
    crashed = Trainer(config, tmp_path / "resumed")
    while crashed.env_steps < stop_at + 70:  # mid-episode: a perturbed copy is acting
        crashed.step()
    crashed.close()
    assert find_checkpoint(tmp_path / "resumed").name.endswith(f"{stop_at:012d}")
    train(None, tmp_path / "resumed", QUIET, progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "resumed")
    files, meta = read_checkpoint(find_checkpoint(tmp_path / "whole"))
    assert math.isfinite(meta["param_noise"]["param_sigma"])
    assert any(k.startswith("param_noise.actor0.") for k in files["agent.safetensors"])


def test_a_distributed_actor_perturbs_its_own_copy_of_the_policy(tiny_config):
    config = dataclasses.replace(tiny_config, exploration_noise="param", actors=2,
                                 actor_batch_steps=30, warmup_steps=0, num_envs=2)
    collector = Collector(config, index=1)
    batch = collector.collect(env_steps=1_000)
    noise = collector.acting.noise
    assert isinstance(noise, ParameterNoise) and len(noise.actors) == 2
    assert noise.sigma == pytest.approx(config.gaussian_sigma * config.actor_noise_spread)
    plain = collector.agent.act(batch["obs"][0])
    assert not np.allclose(batch["action"][0], plain)  # the perturbed copies acted


def test_with_normalize_obs_the_perturbed_copy_reads_normalised_observations():
    """The perturbed actor sees what the actor sees: observations through the run's statistics
    (here Pendulum's, about 1 in scale, put at mean 100 and variance 1e4), never raw ones."""
    from dpgkit.acting import explore_actions

    config = preset_config("ddpg", **PARAM, normalize_obs=True)
    agent = DDPGAgent(3, 1, config)
    agent.obs_norm.update(np.array([[0.0] * 3, [200.0] * 3]))  # mean 100, std 100
    noise = make_noise(config, 1, np.random.default_rng(0), 1)
    raw = np.full((1, 3), 100.0, np.float32)
    explore_actions(agent, raw, noise, env_steps=10**9, warmup_rng=np.random.default_rng(0))
    assert torch.allclose(noise.recent[0], torch.zeros(3), atol=1e-6)  # (100 - 100) / 100
