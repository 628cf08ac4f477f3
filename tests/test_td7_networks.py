"""TD7's networks: shapes, AvgL1Norm, where the embeddings enter, which loss moves which network,
and same seed, same bits."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dpgkit.equations import (
    actor_loss,
    avg_l1_norm,
    embedding_loss,
    lap_huber_loss,
    value_clipped_td_target,
)
from dpgkit.td7_networks import SALEEncoder, TD7Actor, TD7Critic

OBS_DIM, ACTION_DIM, ZS_DIM, HIDDEN, B = 5, 2, 8, 16, 32


def small_nets(seed: int = 0) -> tuple[SALEEncoder, TD7Actor, TD7Critic]:
    torch.manual_seed(seed)
    return (SALEEncoder(OBS_DIM, ACTION_DIM, ZS_DIM, HIDDEN),
            TD7Actor(OBS_DIM, ACTION_DIM, ZS_DIM, HIDDEN),
            TD7Critic(OBS_DIM, ACTION_DIM, ZS_DIM, HIDDEN))


def batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    obs = torch.randn(B, OBS_DIM, generator=generator)
    action = torch.rand(B, ACTION_DIM, generator=generator) * 2 - 1
    next_obs = torch.randn(B, OBS_DIM, generator=generator)
    return obs, action, next_obs


def gradients(module: nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def test_shapes():
    encoder, actor, critic = small_nets()
    obs, action, _ = batch()
    zs = encoder.zs(obs)
    zsa = encoder.zsa(zs, action)
    assert zs.shape == zsa.shape == encoder(obs, action).shape == (B, ZS_DIM)
    assert actor(obs, zs).shape == (B, ACTION_DIM)
    assert critic(obs, action, zsa, zs).shape == (B,)


def test_the_authors_sizes_and_activations_are_the_defaults():
    encoder = SALEEncoder(OBS_DIM, ACTION_DIM)
    actor, critic = TD7Actor(OBS_DIM, ACTION_DIM), TD7Critic(OBS_DIM, ACTION_DIM)
    assert [layer.out_features for layer in encoder.state_layers] == [256, 256, 256]
    assert [layer.out_features for layer in encoder.state_action_layers] == [256, 256, 256]
    assert encoder.state_action_layers[0].in_features == 256 + ACTION_DIM
    assert actor.hidden_layers[0].in_features == 256 + 256  # AvgL1Norm(Linear(s)) and zs
    assert critic.hidden_layers[0].in_features == 256 + 2 * 256  # ... and zsa, zs
    assert encoder.activation is F.elu and critic.activation is F.elu
    assert actor.activation is F.relu


def test_every_layer_keeps_the_default_fan_in_initialisation():
    for net in small_nets():
        for layer in net.modules():
            if isinstance(layer, nn.Linear):  # U(+-1/sqrt(fan_in)), the last layers too
                bound = 1 / math.sqrt(layer.in_features)
                assert layer.weight.abs().max() <= bound
                assert layer.weight.abs().max() > 0.7 * bound


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation"):
        TD7Critic(OBS_DIM, ACTION_DIM, activation="gelu")


def test_the_activation_argument_takes_effect():
    torch.manual_seed(0)
    elu = TD7Critic(OBS_DIM, ACTION_DIM, ZS_DIM, HIDDEN, activation="elu")
    torch.manual_seed(0)
    relu = TD7Critic(OBS_DIM, ACTION_DIM, ZS_DIM, HIDDEN, activation="relu")
    obs, action, _ = batch()
    zs = torch.randn(B, ZS_DIM)
    assert not torch.allclose(elu(obs, action, zs, zs), relu(obs, action, zs, zs))


def test_state_embedding_has_mean_absolute_value_one_per_row():
    encoder, _, _ = small_nets()
    obs = torch.randn(B, OBS_DIM) * torch.logspace(-3, 3, B).unsqueeze(1)  # any input scale
    zs = encoder.zs(obs)
    torch.testing.assert_close(zs.abs().mean(dim=1), torch.ones(B))


def test_first_layers_are_scale_free_through_avg_l1_norm():
    """AvgL1Norm after the actor's Linear(s), the critic's Linear(s, a) and f's last layer:
    scaling any of those layers by c > 0 changes nothing downstream."""
    encoder, actor, critic = small_nets()
    obs, action, _ = batch()
    zs = encoder.zs(obs)
    zsa = encoder.zsa(zs, action)
    before = (zs, actor(obs, zs), critic(obs, action, zsa, zs))
    with torch.no_grad():
        for layer in (encoder.state_layers[2], actor.obs_layer, critic.obs_action_layer):
            layer.weight.mul_(37.0)
            layer.bias.mul_(37.0)
    after = (encoder.zs(obs), actor(obs, zs), critic(obs, action, zsa, zs))
    for old, new in zip(before, after, strict=True):
        torch.testing.assert_close(new, old)


def test_actor_output_is_bounded_for_huge_inputs():
    _, actor, _ = small_nets()
    action = actor(torch.randn(B, OBS_DIM) * 1e6, torch.randn(B, ZS_DIM) * 1e6)
    assert action.abs().max() <= 1.0 and torch.isfinite(action).all()


def test_actor_and_critic_read_the_embeddings():
    """The actor sees zs; the critic sees zsa and zs (and s, a through their own first layer)."""
    encoder, actor, critic = small_nets()
    obs, action, _ = batch()
    with torch.no_grad():
        zs = encoder.zs(obs)
        zsa = encoder.zsa(zs, action)
        other_zs, other_zsa = zs.roll(1, dims=0), zsa.roll(1, dims=0)  # another row's embedding
        q = critic(obs, action, zsa, zs)
        assert (actor(obs, other_zs) - actor(obs, zs)).abs().min() > 0
        assert (critic(obs, action, zsa, other_zs) - q).abs().min() > 0
        assert (critic(obs, action, other_zsa, zs) - q).abs().min() > 0
        assert (critic(obs.roll(1, dims=0), action, zsa, zs) - q).abs().min() > 0
    # zsa carries the action too: the actor's gradient flows through Q's input a and g(zs, a)
    a = action.clone().requires_grad_()
    (grad_both,) = torch.autograd.grad(critic(obs, a, encoder.zsa(zs, a), zs).sum(), a)
    (grad_direct,) = torch.autograd.grad(critic(obs, a, zsa, zs).sum(), a)
    assert not torch.allclose(grad_both, grad_direct)


def test_encoder_loss_moves_the_encoder_and_nothing_else():
    """SALE's loss as the agent builds it: zs' from the encoder under no_grad, a fixed target."""
    encoder, actor, critic = small_nets()
    obs, action, next_obs = batch()
    with torch.no_grad():
        next_zs = encoder.zs(next_obs)
    loss = embedding_loss(encoder(obs, action), next_zs)
    loss.backward()
    for grad in gradients(encoder):  # both f (through zs = f(s)) and g
        assert grad is not None and grad.abs().sum() > 0
    assert all(grad is None for grad in gradients(actor) + gradients(critic))
    # zs' is a constant even where a caller forgets no_grad: f(s') adds no gradient
    copied = copy.deepcopy(encoder)
    copied.zero_grad()
    embedding_loss(copied(obs, action), copied.zs(next_obs)).backward()
    for ours, theirs in zip(gradients(encoder), gradients(copied), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_critic_and_actor_losses_leave_the_encoders_untouched():
    """The critic learns on a fixed encoder's embeddings (computed without gradient) and the
    actor ascends Q through the action (the critic and the fixed encoder frozen): neither loss
    gives an encoder a gradient, the actor's gives the critic none."""
    encoder, actor, critic = small_nets()
    fixed_encoder, actor_target, critic_target = (copy.deepcopy(net) for net in
                                                  (encoder, actor, critic))
    obs, action, next_obs = batch()
    with torch.no_grad():
        next_zs = fixed_encoder.zs(next_obs)
        next_action = actor_target(next_obs, next_zs)
        next_q = critic_target(next_obs, next_action, fixed_encoder.zsa(next_zs, next_action),
                               next_zs)
        y = value_clipped_td_target(torch.ones(B), torch.zeros(B), next_q, 0.99, -10.0, 10.0)
        zs = fixed_encoder.zs(obs)
        zsa = fixed_encoder.zsa(zs, action)
    q = critic(obs, action, zsa, zs)
    lap_huber_loss((y - q).unsqueeze(1), 1.0).backward()
    assert all(grad is not None for grad in gradients(critic))
    for net in (encoder, fixed_encoder, actor, actor_target, critic_target):
        assert all(grad is None for grad in gradients(net))

    critic.zero_grad(set_to_none=True)
    critic.requires_grad_(False)
    fixed_encoder.requires_grad_(False)
    mu = actor(obs, zs)
    actor_loss(critic(obs, mu, fixed_encoder.zsa(zs, mu), zs)).backward()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in gradients(actor))
    for net in (encoder, fixed_encoder, critic):
        assert all(grad is None for grad in gradients(net))


def test_same_seed_same_bits_other_seed_other_weights():
    first, second, other = small_nets(3), small_nets(3), small_nets(4)
    obs, action, _ = batch()
    for a, b, c in zip(first, second, other, strict=True):
        for p, q, r in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
            assert torch.equal(p, q) and not torch.equal(p, r)
    outputs = []
    for encoder, actor, critic in (first, second):
        zs = encoder.zs(obs)
        outputs.append((actor(obs, zs), critic(obs, action, encoder.zsa(zs, action), zs)))
    for x, y in zip(*outputs, strict=True):
        assert torch.equal(x, y)


def test_avg_l1_norm_is_the_equation_the_networks_use():
    encoder, _, _ = small_nets()
    obs, _, _ = batch()
    first, second, out = encoder.state_layers
    expected = avg_l1_norm(out(F.elu(second(F.elu(first(obs))))))
    assert torch.equal(encoder.zs(obs), expected)
