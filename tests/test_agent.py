"""The DDPG update: what it changes, what it leaves alone, and that config values take effect."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from dpgkit.agent import DDPGAgent
from dpgkit.presets import preset_config
from dpgkit.replay import Batch

OBS_DIM, ACTION_DIM, B = 3, 2, 16


def make_agent(**overrides) -> DDPGAgent:
    config = preset_config("ddpg", actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=B,
                           **overrides)
    return DDPGAgent(OBS_DIM, ACTION_DIM, config)


def make_batch(seed: int = 0, terminated: torch.Tensor | None = None) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(obs=torch.randn(B, OBS_DIM, generator=g),
                 action=torch.rand(B, ACTION_DIM, generator=g) * 2 - 1,
                 reward=torch.randn(B, generator=g),
                 next_obs=torch.randn(B, OBS_DIM, generator=g),
                 terminated=terminated if terminated is not None else torch.zeros(B))


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_act_is_deterministic_bounded_and_shaped():
    agent = make_agent()
    obs = np.random.default_rng(0).normal(size=(5, OBS_DIM)).astype(np.float32) * 100
    batch_action = agent.act(obs)
    assert batch_action.shape == (5, ACTION_DIM)
    assert np.all(np.abs(batch_action) <= 1)
    single = agent.act(obs[0])
    assert single.shape == (ACTION_DIM,)
    np.testing.assert_array_equal(single, agent.act(obs[0]))
    np.testing.assert_allclose(single, batch_action[0], rtol=0, atol=1e-6)


def no_gradient(module: torch.nn.Module) -> bool:
    """No gradient reached the module: none at all (autograd path) or the fast path's buffers
    still all zero."""
    return all(p.grad is None or not p.grad.any() for p in module.parameters())


@pytest.mark.parametrize("fast_update", [False, True])
def test_actor_update_leaves_critic_untouched_and_gives_it_no_gradient(fast_update):
    agent = make_agent(fast_update=fast_update)
    critic_before, actor_before = params(agent.critic), params(agent.actor)
    agent.update_actor(make_batch())
    assert same(params(agent.critic), critic_before)
    assert no_gradient(agent.critic)
    assert not same(params(agent.actor), actor_before)
    assert all(p.requires_grad for p in agent.critic.parameters()), "critic must be unfrozen after"


@pytest.mark.parametrize("fast_update", [False, True])
def test_critic_update_leaves_actor_untouched(fast_update):
    agent = make_agent(fast_update=fast_update)
    actor_before, critic_before = params(agent.actor), params(agent.critic)
    agent.update_critic(make_batch())
    assert same(params(agent.actor), actor_before)
    assert no_gradient(agent.actor)
    assert not same(params(agent.critic), critic_before)


def test_targets_never_receive_gradients():
    agent = make_agent()
    for _ in range(3):
        agent.update(make_batch())
    for target in (agent.actor_target, agent.critic_target):
        assert all(not p.requires_grad and p.grad is None for p in target.parameters())


def test_critic_regresses_on_the_td_target_from_the_target_networks():
    agent = make_agent(gamma=0.9)
    terminated = torch.tensor([0.0, 1.0] * (B // 2))
    batch = make_batch(terminated=terminated)
    with torch.no_grad():  # the loss the update must see, computed here from first principles
        next_q = agent.critic_target(batch.next_obs, agent.actor_target(batch.next_obs))
        y = batch.reward + 0.9 * (1 - terminated) * next_q
        expected = ((agent.critic(batch.obs, batch.action) - y) ** 2).mean()
    info = agent.update_critic(batch)
    assert info["critic_loss"] == pytest.approx(expected.item(), rel=1e-6)


def test_update_moves_targets_by_exactly_tau():
    tau = 0.1
    agent = make_agent(tau=tau)
    targets_before = params(agent.actor_target) + params(agent.critic_target)
    agent.update(make_batch())
    online_after = params(agent.actor) + params(agent.critic)
    targets_after = params(agent.actor_target) + params(agent.critic_target)
    for before, online, after in zip(targets_before, online_after, targets_after, strict=True):
        torch.testing.assert_close(after, tau * online + (1 - tau) * before)


@pytest.mark.parametrize("tau", [1.0, 0.005])
def test_tau_takes_effect(tau):
    agent = make_agent(tau=tau)
    agent.update(make_batch())
    copies = same(params(agent.actor), params(agent.actor_target))
    assert copies == (tau == 1.0)


def test_learning_rates_and_optimizer_take_effect():
    sgd = make_agent(optimizer="sgd", actor_lr=0.5, critic_lr=0.25)
    assert isinstance(sgd.actor_optimizer, torch.optim.SGD)
    assert sgd.actor_optimizer.param_groups[0]["lr"] == 0.5
    assert sgd.critic_optimizer.param_groups[0]["lr"] == 0.25
    adam = make_agent(critic_weight_decay=1e-2)
    assert isinstance(adam.critic_optimizer, torch.optim.Adam)
    assert adam.critic_optimizer.param_groups[0]["weight_decay"] == 1e-2
    assert adam.actor_optimizer.param_groups[0]["weight_decay"] == 0.0


def test_same_seed_same_networks_other_seed_other_networks():
    a, b, c = make_agent(seed=3), make_agent(seed=3), make_agent(seed=4)
    assert same(params(a.actor), params(b.actor)) and same(params(a.critic), params(b.critic))
    assert not same(params(a.actor), params(c.actor))
    state = torch.random.get_rng_state()
    make_agent(seed=5)
    assert torch.equal(state, torch.random.get_rng_state()), "agent init must not touch global RNG"


def test_paper_architecture_with_batch_norm_updates_and_acts():
    config = dataclasses.replace(preset_config("ddpg-paper"), batch_size=B)
    agent = DDPGAgent(OBS_DIM, ACTION_DIM, config)
    for _ in range(2):
        info = agent.update(make_batch())
    assert all(np.isfinite(v) for v in info.values())
    assert agent.act(np.zeros(OBS_DIM, np.float32)).shape == (ACTION_DIM,)


def test_importance_weights_and_n_step_discount_reach_the_critic_update():
    """y = R + gamma^steps Q'(s', mu'(s')); a zero importance weight removes a transition from
    the critic's gradient; td_error is y - Q(s, a)."""
    config = preset_config("ddpg", actor_hidden=(8,), critic_hidden=(8,), gamma=0.5)
    obs, action = torch.randn(2, 3), torch.rand(2, 1) * 2 - 1
    batch = Batch(obs=obs, action=action, reward=torch.tensor([1.0, 2.0]), next_obs=obs,
                  terminated=torch.zeros(2), steps=torch.tensor([3.0, 1.0]),
                  weights=torch.tensor([1.0, 0.0]))
    agent = DDPGAgent(3, 1, config)
    with torch.no_grad():
        y = batch.reward + torch.tensor([0.5 ** 3, 0.5]) * agent.next_q(obs)
        q_before = agent.critic(obs, action)
    expected = copy.deepcopy(agent.critic)
    # mean over B = 2 of w_i (Q_i - y_i)^2 with w = (1, 0): transition 0 alone, halved
    (0.5 * (expected(obs[:1], action[:1]) - y[:1]).pow(2).sum()).backward()
    agent.update_critic(batch)
    for got, want in zip(agent.critic.parameters(), expected.parameters(), strict=True):
        torch.testing.assert_close(got.grad, want.grad)
    torch.testing.assert_close(agent.td_error, y - q_before)
