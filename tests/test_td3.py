"""TD3's three changes, each checked on its own; everything else is DDPG's (tests/test_agent.py)."""

import dataclasses
from typing import ClassVar

import numpy as np
import pytest
import torch

import dpgkit.config as config_module
import dpgkit.td3 as td3_module
from dpgkit.agents import make_agent
from dpgkit.config import TD3Config
from dpgkit.equations import clipped_double_q, smoothed_target_action
from dpgkit.presets import preset_config
from dpgkit.replay import Batch
from dpgkit.td3 import TD3Agent
from dpgkit.td7 import TD7Agent

OBS_DIM, ACTION_DIM, B = 3, 2, 16


def make_td3(**overrides) -> TD3Agent:
    config = preset_config("td3", actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=B,
                           **overrides)
    return TD3Agent(OBS_DIM, ACTION_DIM, config)


def make_batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(B, OBS_DIM, generator=g),
                 action=torch.rand(B, ACTION_DIM, generator=g) * 2 - 1,
                 reward=torch.randn(B, generator=g),
                 next_obs=torch.randn(B, OBS_DIM, generator=g),
                 terminated=torch.zeros(B))


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_clipped_double_q_is_the_elementwise_minimum():
    q1, q2 = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.5, -1.0, 3.0])
    assert torch.equal(clipped_double_q(q1, q2), torch.tensor([0.5, -2.0, 3.0]))


def test_smoothed_target_action_clips_noise_then_action():
    action = torch.tensor([[0.0, 0.9, -0.9]])
    noise = torch.tensor([[0.7, 0.3, -0.2]])
    # noise clipped to 0.5: [0.5, 0.3, -0.2]; plus the action: [0.5, 1.2, -1.1]; clipped to [-1, 1]
    expected = torch.tensor([[0.5, 1.0, -1.0]])
    assert torch.equal(smoothed_target_action(action, noise, 0.5), expected)


def test_target_uses_minimum_of_the_twin_target_critics_at_the_smoothed_action():
    agent = make_td3(target_noise=0.0)  # no smoothing: the target action is mu'(s')
    next_obs = make_batch().next_obs
    with torch.no_grad():
        a = agent.actor_target(next_obs)
        expected = torch.minimum(agent.critic_target(next_obs, a),
                                 agent.critic2_target(next_obs, a))
        assert torch.equal(agent.next_q(next_obs), expected)
        q1, q2 = agent.critic_target(next_obs, a), agent.critic2_target(next_obs, a)
        assert not torch.equal(q1, q2), "the two critics must start differently"


def test_smoothing_noise_is_drawn_per_element_and_clipped(monkeypatch):
    agent = make_td3(target_noise=10.0, target_noise_clip=0.3)
    draws = []

    def record(next_action, noise, noise_clip):
        draws.append((next_action.clone(), noise.clone(), noise_clip))
        return smoothed_target_action(next_action, noise, noise_clip)

    monkeypatch.setattr(td3_module, "smoothed_target_action", record)
    agent.next_q(torch.zeros(4096, OBS_DIM))
    next_action, noise, noise_clip = draws[0]
    assert noise.shape == next_action.shape == (4096, ACTION_DIM)
    assert noise_clip == 0.3
    assert noise.std().item() == pytest.approx(10.0, rel=0.05)  # sigma applied per element
    assert len(torch.unique(noise)) == noise.numel()  # independent draws, no shared noise
    smoothed = smoothed_target_action(next_action, noise, noise_clip)
    assert torch.all(smoothed.abs() <= 1.0)
    assert torch.all((smoothed - next_action.clamp(-1, 1)).abs() <= 0.3 + 1e-6)


@pytest.mark.parametrize("policy_delay", [1, 2, 3])
def test_actor_and_targets_update_once_every_policy_delay_critic_updates(policy_delay):
    agent = make_td3(policy_delay=policy_delay)
    tracked = {"actor": agent.actor, "actor_target": agent.actor_target,
               "critic_target": agent.critic_target, "critic2_target": agent.critic2_target}
    changed_at = {name: [] for name in tracked}
    critic_changes = 0
    for update in range(1, 7):
        before = {name: flat(m) for name, m in tracked.items()}
        critic_before = flat(agent.critic2)
        agent.update(make_batch(update))
        critic_changes += not torch.equal(critic_before, flat(agent.critic2))
        for name, module in tracked.items():
            if not torch.equal(before[name], flat(module)):
                changed_at[name].append(update)
    assert critic_changes == 6, "both critics update at every step"
    expected = [u for u in range(1, 7) if u % policy_delay == 0]
    assert all(at == expected for at in changed_at.values()), changed_at


@pytest.mark.parametrize("fast_update", [False, True])
def test_actor_is_trained_on_the_first_critic_only(fast_update):
    agent = make_td3(policy_delay=1, fast_update=fast_update)
    critic2_before = flat(agent.critic2)
    agent.update_actor(make_batch())
    assert torch.equal(flat(agent.critic2), critic2_before)
    # no gradient at all (autograd path) or the fast path's gradient buffers untouched
    assert all(p.grad is None or not p.grad.any() for p in agent.critic2.parameters())


def test_make_agent_picks_the_algorithm_of_the_config(monkeypatch):
    assert type(make_agent(OBS_DIM, ACTION_DIM, preset_config("td3"))) is TD3Agent
    assert type(make_agent(OBS_DIM, ACTION_DIM, preset_config("our-ddpg"))).__name__ == "DDPGAgent"
    assert type(make_agent(OBS_DIM, ACTION_DIM, preset_config("td7"))) is TD7Agent
    monkeypatch.setattr(config_module, "CONFIG_CLASSES", dict(config_module.CONFIG_CLASSES))

    @dataclasses.dataclass(frozen=True)
    class MyTD3Config(TD3Config):  # a user's algorithm, with no agent of its own: TD3's
        algorithm: ClassVar[str] = "my-td3-variant"

    assert type(make_agent(OBS_DIM, ACTION_DIM, MyTD3Config())) is TD3Agent
    assert isinstance(preset_config("td3"), TD3Config)


def test_same_seed_same_td3_updates():
    a, b = make_td3(seed=7), make_td3(seed=7)
    for agent in (a, b):
        for step in range(3):
            agent.update(make_batch(step))
    assert torch.equal(flat(a.critic2), flat(b.critic2)) and torch.equal(flat(a.actor),
                                                                         flat(b.actor))
    np.testing.assert_array_equal(a.act(np.ones(OBS_DIM, np.float32)),
                                  b.act(np.ones(OBS_DIM, np.float32)))
