"""Actor and critic: output ranges and shapes, where the action enters the critic, where batch
normalisation goes, and the paper's initialisation."""

import math

import pytest
import torch
from torch import nn

from dpgkit.networks import Actor, Critic, fan_in_uniform_

OBS_DIM, ACTION_DIM = 5, 3


@pytest.fixture(autouse=True)
def seeded_torch():
    """Network initialisation draws from torch's global RNG: seed it, and restore it afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        yield


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def batch_norms(module: nn.Module) -> list[nn.BatchNorm1d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm1d)]


def flat_sequence(module: nn.Module) -> list[nn.Module]:
    """The leaf modules in forward order (the networks are nested nn.Sequential)."""
    return [m for m in module.modules() if not isinstance(m, nn.Sequential)
            and not isinstance(m, (Actor, Critic))]


def huge_obs(batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, OBS_DIM, generator=g) * 1e6


# --- outputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True])
def test_actor_output_bounded_and_shaped_even_for_huge_inputs(batch_norm):
    actor = Actor(OBS_DIM, ACTION_DIM, (32, 32), batch_norm=batch_norm, final_init=0.0)
    obs = huge_obs(16)
    for mode in (actor.train, actor.eval):
        mode()
        action = actor(obs)
        assert action.shape == (16, ACTION_DIM)
        assert torch.all(action.abs() <= 1.0)
        assert torch.isfinite(action).all()
    if not batch_norm:  # huge inputs saturate the tanh: the bound is reached, not exceeded
        assert action.abs().max().item() > 0.99


def test_actor_output_is_tanh_of_last_linear():
    actor = Actor(OBS_DIM, ACTION_DIM, (8,))
    obs = huge_obs(4) / 1e6
    first, last = linears(actor)
    expected = torch.tanh(last(torch.relu(first(obs))))
    torch.testing.assert_close(actor(obs), expected, rtol=0, atol=0)


@pytest.mark.parametrize("action_layer", [0, 1])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_critic_output_shape(action_layer, batch_norm):
    critic = Critic(OBS_DIM, ACTION_DIM, (32, 16), action_layer=action_layer,
                    batch_norm=batch_norm)
    g = torch.Generator().manual_seed(1)
    q = critic(torch.randn(7, OBS_DIM, generator=g), torch.rand(7, ACTION_DIM, generator=g))
    assert q.shape == (7,)


# --- where the action enters -------------------------------------------------------------------


def test_critic_action_at_input_by_default():
    critic = Critic(OBS_DIM, ACTION_DIM, (32, 16))
    assert len(critic.state_net) == 0  # no layer sees the state alone
    first = linears(critic.joint_net)[0]
    assert first.in_features == OBS_DIM + ACTION_DIM
    assert [(m.in_features, m.out_features) for m in linears(critic)] == [
        (OBS_DIM + ACTION_DIM, 32), (32, 16), (16, 1)]


def test_critic_action_enters_second_layer_paper():
    hidden = (40, 30)
    critic = Critic(OBS_DIM, ACTION_DIM, hidden, action_layer=1)
    state_linears, joint_linears = linears(critic.state_net), linears(critic.joint_net)
    assert [(m.in_features, m.out_features) for m in state_linears] == [(OBS_DIM, 40)]
    assert joint_linears[0].in_features == hidden[0] + ACTION_DIM
    assert [(m.in_features, m.out_features) for m in joint_linears] == [(43, 30), (30, 1)]

    # the forward pass really is joint_net(concat(state_net(s), a)), and the first layer never
    # sees the action: the gradient of Q w.r.t. a only flows through joint_net's first layer
    g = torch.Generator().manual_seed(2)
    obs = torch.randn(6, OBS_DIM, generator=g)
    action = torch.rand(6, ACTION_DIM, generator=g, requires_grad=True)
    q = critic(obs, action)
    manual = critic.joint_net(torch.cat([critic.state_net(obs), action], dim=-1)).squeeze(-1)
    torch.testing.assert_close(q, manual, rtol=0, atol=0)
    q.sum().backward()
    w = joint_linears[0].weight  # (30, 43): columns 40.. multiply the action
    relu_mask = (joint_linears[0](torch.cat([critic.state_net(obs), action], -1)) > 0).double()
    dq_da = (relu_mask * joint_linears[1].weight.double()) @ w[:, 40:].double()
    torch.testing.assert_close(action.grad.double(), dq_da, rtol=1e-5, atol=1e-7)


def test_critic_action_layer_out_of_range():
    with pytest.raises(ValueError):
        Critic(OBS_DIM, ACTION_DIM, (32, 16), action_layer=2)
    with pytest.raises(ValueError):
        Critic(OBS_DIM, ACTION_DIM, (32, 16), action_layer=-1)


# --- batch normalisation --------------------------------------------------------------------------


def test_actor_batch_norm_on_input_and_every_hidden_layer():
    actor = Actor(OBS_DIM, ACTION_DIM, (32, 16), batch_norm=True)
    kinds = [type(m).__name__ for m in flat_sequence(actor)]
    assert kinds == ["BatchNorm1d", "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d",
                     "ReLU", "Linear", "Tanh"]
    assert [bn.num_features for bn in batch_norms(actor)] == [OBS_DIM, 32, 16]
    assert batch_norms(Actor(OBS_DIM, ACTION_DIM, (32, 16), batch_norm=False)) == []


def test_critic_batch_norm_only_before_the_action():
    paper = Critic(OBS_DIM, ACTION_DIM, (40, 30), action_layer=1, batch_norm=True)
    assert [bn.num_features for bn in batch_norms(paper.state_net)] == [OBS_DIM, 40]
    assert batch_norms(paper.joint_net) == []
    kinds = [type(m).__name__ for m in flat_sequence(paper.state_net)]
    assert kinds == ["BatchNorm1d", "Linear", "BatchNorm1d", "ReLU"]

    deeper = Critic(OBS_DIM, ACTION_DIM, (40, 30, 20), action_layer=2, batch_norm=True)
    assert [bn.num_features for bn in batch_norms(deeper.state_net)] == [OBS_DIM, 40, 30]
    assert batch_norms(deeper.joint_net) == []

    at_input = Critic(OBS_DIM, ACTION_DIM, (40, 30), action_layer=0, batch_norm=True)
    assert [bn.num_features for bn in batch_norms(at_input.state_net)] == [OBS_DIM]
    assert batch_norms(at_input.joint_net) == []

    assert batch_norms(Critic(OBS_DIM, ACTION_DIM, (40, 30), action_layer=1)) == []


# --- initialisation -------------------------------------------------------------------------------


def _check_bounds(layer: nn.Linear, bound: float) -> None:
    for p in (layer.weight, layer.bias):
        assert p.abs().max().item() <= bound
    # uniform over the whole range: the weights come close to the bound (>= 64 draws here)
    assert layer.weight.abs().max().item() > 0.9 * bound


@pytest.mark.parametrize("batch_norm", [False, True])
def test_paper_initialisation(batch_norm):
    actor = Actor(OBS_DIM, ACTION_DIM, (64, 48), batch_norm=batch_norm)
    critic = Critic(OBS_DIM, ACTION_DIM, (64, 48), action_layer=1, batch_norm=batch_norm)
    for net in (actor, critic):
        layers = linears(net)
        for layer in layers[:-1]:
            _check_bounds(layer, 1.0 / math.sqrt(layer.in_features))
        final = layers[-1]
        _check_bounds(final, 3e-3)
    # fan-in bounds of the hidden layers: 1/sqrt(5), 1/sqrt(64); critic joint layer 1/sqrt(64 + 3)
    assert [round(1 / math.sqrt(m.in_features), 4) for m in linears(critic)[:-1]] == [
        round(1 / math.sqrt(5), 4), round(1 / math.sqrt(67), 4)]


def test_final_init_zero_uses_fan_in_bound():
    actor = Actor(OBS_DIM, ACTION_DIM, (64, 64), final_init=0.0)
    critic = Critic(OBS_DIM, ACTION_DIM, (64, 64), final_init=0.0)
    for net in (actor, critic):
        final = linears(net)[-1]
        bound = 1.0 / math.sqrt(64)  # 0.125
        assert final.weight.abs().max().item() <= bound
        assert final.weight.abs().max().item() > 3e-3 * 10  # clearly not the 3e-3 rule


def test_final_init_custom_value():
    actor = Actor(OBS_DIM, ACTION_DIM, (64,), final_init=0.05)
    _check_bounds(linears(actor)[-1], 0.05)


def test_fan_in_uniform_explicit_and_default_bound():
    layer = nn.Linear(100, 50)
    fan_in_uniform_(layer)
    _check_bounds(layer, 0.1)
    fan_in_uniform_(layer, 2.0)
    _check_bounds(layer, 2.0)
    assert layer.bias.abs().max().item() > 1.0  # biases use the same bound
