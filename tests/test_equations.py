"""Each function of dpgkit.equations against numbers computed by hand."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dpgkit.equations import (
    actor_loss,
    actor_loss_grad,
    critic_loss,
    critic_loss_grad,
    n_step_return,
    ou_step,
    scale_action,
    soft_update,
    td_target,
    unscale_action,
)

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# --- td_target: y = r + gamma * (1 - terminated) * Q'(s', mu'(s')) ---------------------------


def test_td_target_hand_computed():
    # [1 + 0.9*10, 2 (terminal: no bootstrap), -1 + 0.9*5]
    y = td_target(t([1.0, 2.0, -1.0]), t([0.0, 1.0, 0.0]), t([10.0, 10.0, 5.0]), 0.9)
    torch.testing.assert_close(y, t([10.0, 2.0, 3.5]), rtol=0, atol=1e-12)


def test_td_target_gamma_zero_is_the_reward():
    reward = t([1.5, -2.0, 0.25])
    y = td_target(reward, t([0.0, 1.0, 0.0]), t([100.0, -7.0, 3.0]), 0.0)
    torch.testing.assert_close(y, reward, rtol=0, atol=0)


def test_td_target_terminated_ignores_next_q():
    reward, terminated = t([0.5, -1.0]), t([1.0, 1.0])
    y_a = td_target(reward, terminated, t([1e6, -3.0]), 0.99)
    y_b = td_target(reward, terminated, t([-42.0, 17.0]), 0.99)
    torch.testing.assert_close(y_a, reward, rtol=0, atol=0)
    torch.testing.assert_close(y_b, reward, rtol=0, atol=0)
    # and a non-terminal one does depend on next_q: 0.5 + 0.99 * 2 = 2.48
    y_c = td_target(t([0.5]), t([0.0]), t([2.0]), 0.99)
    torch.testing.assert_close(y_c, t([2.48]), rtol=0, atol=1e-12)


# --- critic_loss: 1/B sum (Q - y)^2, y fixed --------------------------------------------------


def test_critic_loss_is_mean_squared_error_by_hand():
    q, y = t([1.0, 2.0, 3.0, 4.0]), t([0.0, 4.0, 3.0, 1.0])
    # errors 1, -2, 0, 3 -> squares 1, 4, 0, 9 -> mean 14 / 4 = 3.5
    torch.testing.assert_close(critic_loss(q, y), t(3.5), rtol=0, atol=1e-12)


def test_critic_loss_refuses_column_against_row():
    q = torch.zeros(4, 1, dtype=F64)
    y = torch.zeros(4, dtype=F64)
    with pytest.raises(ValueError):
        critic_loss(q, y)
    with pytest.raises(ValueError):
        critic_loss(y, q)


def test_critic_loss_no_gradient_into_target():
    q = t([1.0, 2.0, 3.0, 4.0]).requires_grad_(True)
    y = t([0.0, 4.0, 3.0, 1.0]).requires_grad_(True)  # a leaf that *would* take a gradient
    critic_loss(q, y).backward()
    assert y.grad is None
    # dL/dq_i = 2 (q_i - y_i) / B = [0.5, -1, 0, 1.5]
    torch.testing.assert_close(q.grad, t([0.5, -1.0, 0.0, 1.5]), rtol=0, atol=1e-12)


# --- actor_loss: -1/B sum Q(s, mu(s)) -----------------------------------------------------------


def test_actor_loss_is_negative_mean_by_hand():
    q = t([1.0, 2.0, 3.0, -2.0]).requires_grad_(True)
    loss = actor_loss(q)
    torch.testing.assert_close(loss, t(-1.0), rtol=0, atol=1e-12)  # -(4 / 4)
    loss.backward()
    torch.testing.assert_close(q.grad, t([-0.25] * 4), rtol=0, atol=0)


# --- each loss's gradient, beside the loss: the hand-written update starts from these ---------


def assert_grad_is_the_derivative(loss, loss_grad, x, *rest) -> None:
    """``loss_grad(x, *rest)`` is autograd's d loss(x, *rest) / dx."""
    x = x.detach().clone().requires_grad_(True)
    loss(x, *rest).backward()
    torch.testing.assert_close(loss_grad(x.detach(), *rest), x.grad, rtol=1e-12, atol=1e-15)


def random_q_y_w(batch: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    q, y = (torch.randn(batch, generator=g, dtype=F64) * 3 for _ in "qy")
    return q, y, torch.rand(batch, generator=g, dtype=F64)


@pytest.mark.parametrize("weighted", [False, True])
def test_critic_loss_grad_is_the_derivative_of_critic_loss(weighted):
    q, y, w = random_q_y_w()
    assert_grad_is_the_derivative(critic_loss, critic_loss_grad, q, y, w if weighted else None)
    # by hand: 2/B w (q - y) with B = 2
    torch.testing.assert_close(critic_loss_grad(t([1.0, 4.0]), t([0.0, 1.0]), t([1.0, 0.5])),
                               t([1.0, 1.5]), rtol=0, atol=0)


def test_actor_loss_grad_is_the_derivative_of_actor_loss():
    q, _, _ = random_q_y_w()
    assert_grad_is_the_derivative(actor_loss, actor_loss_grad, q)
    assert actor_loss_grad(t([[3.0], [-1.0]])).tolist() == [[-0.5], [-0.5]]  # the critic's (B, 1)


def huber_critic_loss(q, y, weights=None, delta: float = 0.5):
    """1/B sum_i w_i h(q_i - y_i), h(d) = d^2 for |d| <= delta, else 2 delta |d| - delta^2:
    a loss someone might put in place of critic_loss (its derivative: huber_critic_loss_grad)."""
    d = q - y.detach()
    h = torch.where(d.abs() <= delta, d.pow(2), 2 * delta * d.abs() - delta**2)
    return (h if weights is None else weights * h).mean()


def huber_critic_loss_grad(q, y, weights=None, delta: float = 0.5):
    """dL/dq_i = 2/B w_i clip(q_i - y_i, -delta, delta)."""
    d = (q - y).clamp(-delta, delta) * (2.0 / q.shape[0])
    return d if weights is None else weights * d


@pytest.mark.parametrize("weighted", [False, True])
def test_a_loss_changed_without_its_gradient_fails(weighted):
    """Replace critic_loss by a Huber loss but keep critic_loss_grad: the check fails. With the
    gradient changed beside it, the check passes (tests/test_fastpath.py shows the two update
    paths then disagree, and agree again)."""
    q, y, w = random_q_y_w()
    w = w if weighted else None
    with pytest.raises(AssertionError):
        assert_grad_is_the_derivative(huber_critic_loss, critic_loss_grad, q, y, w)
    assert_grad_is_the_derivative(huber_critic_loss, huber_critic_loss_grad, q, y, w)


# --- soft_update: theta' <- tau theta + (1 - tau) theta' ---------------------------------------


def _bn_net(seed: int) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
        # give the batch-norm buffers distinct values (running stats and the step counter)
        net.train()
        for _ in range(seed + 1):
            net(torch.randn(8, 3, generator=g, dtype=F64))
    return net


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("tau", [0.005, 0.3, 1.0])
def test_soft_update_matches_naive_formula(tau):
    target, source = _bn_net(0), _bn_net(3)
    before_target, before_source = _snapshot(target), _snapshot(source)
    assert before_target["1.num_batches_tracked"].item() == 1
    assert before_source["1.num_batches_tracked"].item() == 4
    # every tensor differs at the start, so the test sees each one move
    for k in before_target:
        assert not torch.equal(before_target[k], before_source[k]), k

    soft_update(target, source, tau)
    after = _snapshot(target)

    assert set(after) == set(before_target)
    for k, theta_target in before_target.items():
        theta = before_source[k]
        if theta.is_floating_point():
            expected = tau * theta + (1.0 - tau) * theta_target
            if tau == 1.0:
                assert torch.equal(after[k], theta), k  # a hard copy, bit for bit
            else:
                torch.testing.assert_close(after[k], expected, rtol=1e-12, atol=1e-14, msg=k)
        else:  # integer buffer (num_batches_tracked): copied
            assert k.endswith("num_batches_tracked")
            assert after[k].dtype == torch.int64
            assert torch.equal(after[k], theta), k
    # the source is left untouched
    for k, v in _snapshot(source).items():
        assert torch.equal(v, before_source[k]), k


def test_soft_update_takes_no_gradient_and_keeps_parameters():
    target, source = _bn_net(0), _bn_net(1)
    ids = [id(p) for p in target.parameters()]
    soft_update(target, source, 0.5)
    assert [id(p) for p in target.parameters()] == ids  # updated in place
    assert all(p.grad is None for p in target.parameters())
    assert all(p.grad is None for p in source.parameters())


# --- ou_step: x + theta (mu - x) dt + sigma sqrt(dt) N(0, 1) ------------------------------------


def test_ou_step_by_hand():
    x = ou_step(np.array([0.5]), 0.15, 0.0, 0.2, 0.01, np.array([1.0]))
    expected = 0.5 - 0.15 * 0.5 * 0.01 + 0.2 * 0.1 * 1.0  # = 0.51925
    np.testing.assert_allclose(x, [expected], rtol=0, atol=1e-15)
    np.testing.assert_allclose(x, [0.51925], rtol=0, atol=1e-15)


def test_ou_step_elementwise_with_nonzero_mu():
    x = np.array([[0.0, 2.0], [-1.0, 0.3]])
    noise = np.array([[0.0, -1.0], [2.0, 0.5]])
    mu, theta, sigma, dt = 0.3, 0.5, 0.4, 0.25
    out = ou_step(x, theta, mu, sigma, dt, noise)
    # sqrt(0.25) = 0.5, theta * dt = 0.125
    expected = np.array([
        [0.0 + 0.125 * 0.3 + 0.0, 2.0 + 0.125 * (0.3 - 2.0) + 0.4 * 0.5 * -1.0],
        [-1.0 + 0.125 * 1.3 + 0.4 * 0.5 * 2.0, 0.3 + 0.0 + 0.4 * 0.5 * 0.5],
    ])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out, [[0.0375, 1.5875], [-0.4375, 0.4]], rtol=0, atol=1e-15)


# --- scale_action / unscale_action ---------------------------------------------------------------

LOW, HIGH = np.array([-1.0, 0.0]), np.array([3.0, 2.0])


def test_scale_action_asymmetric_bounds():
    np.testing.assert_allclose(scale_action(np.array([-1.0, -1.0]), LOW, HIGH), LOW, atol=0)
    np.testing.assert_allclose(scale_action(np.array([1.0, 1.0]), LOW, HIGH), HIGH, atol=0)
    np.testing.assert_allclose(scale_action(np.array([0.0, 0.0]), LOW, HIGH), [1.0, 1.0], atol=0)
    # per dimension: -1 in the first, +1 in the second; 0.5 -> 3/4 of the way
    np.testing.assert_allclose(scale_action(np.array([-1.0, 1.0]), LOW, HIGH), [-1.0, 2.0], atol=0)
    np.testing.assert_allclose(scale_action(np.array([0.5, -0.5]), LOW, HIGH), [2.0, 0.5], atol=0)


def test_unscale_action_inverts_scale_action():
    np.testing.assert_allclose(unscale_action(LOW, LOW, HIGH), [-1.0, -1.0], atol=0)
    np.testing.assert_allclose(unscale_action(HIGH, LOW, HIGH), [1.0, 1.0], atol=0)
    np.testing.assert_allclose(unscale_action(np.array([1.0, 1.0]), LOW, HIGH), [0.0, 0.0], atol=0)
    a = np.random.default_rng(7).uniform(-1.0, 1.0, size=(100, 2))
    env_a = scale_action(a, LOW, HIGH)
    assert np.all(env_a >= LOW) and np.all(env_a <= HIGH)
    np.testing.assert_allclose(unscale_action(env_a, LOW, HIGH), a, rtol=0, atol=1e-14)
    # and the other way round
    np.testing.assert_allclose(scale_action(unscale_action(env_a, LOW, HIGH), LOW, HIGH), env_a,
                               rtol=0, atol=1e-14)


def test_ou_step_uses_sqrt_dt():
    # sigma sqrt(dt) scaling of the noise term: dt = 4 multiplies it by 2 (drift off: x = mu)
    out = ou_step(np.array([1.0]), 0.1, 1.0, 0.5, 4.0, np.array([1.0]))
    np.testing.assert_allclose(out, [1.0 + 0.5 * math.sqrt(4.0)], rtol=0, atol=1e-15)


def test_weighted_critic_loss_and_n_step_discount_by_hand():
    q, y = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 0.0, 0.0])
    # (1 * 1 + 0.5 * 4 + 0 * 16) / 3
    assert critic_loss(q, y, torch.tensor([1.0, 0.5, 0.0])).item() == pytest.approx(1.0)
    assert critic_loss(q, y).item() == pytest.approx(7.0)
    # y = R + gamma^m (1 - terminated) Q' with m = 3, 1
    y = td_target(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0]), torch.tensor([8.0, 8.0]),
                  0.5 ** torch.tensor([3.0, 1.0]))
    assert y.tolist() == [2.0, 6.0]
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, np.nan, np.nan]])
    np.testing.assert_allclose(n_step_return(rewards, 0.5), [1 + 1 + 1, 1.0])
