"""The deterministic policy gradient theorem (Silver et al. 2014) through dpgkit's actor_loss.

Minimising ``actor_loss(Q(s, mu_theta(s)))`` by autograd must follow the deterministic policy
gradient  grad_theta J = E_{s ~ rho^mu}[ grad_theta mu_theta(s) * grad_a Q(s, a) at a = mu(s) ]
(Theorem 1), which is the sigma -> 0 limit of the stochastic policy gradient of a Gaussian policy
N(mu_theta(s), sigma^2) (Theorem 2). Problems are chosen so that every gradient has a closed form.
Everything runs in float64.
"""

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from dpgkit.equations import actor_loss

F64 = torch.float64


class LinearActor(nn.Module):
    """mu_theta(s) = th0 + th1 * s (scalar state and action)."""

    def __init__(self, th0: float, th1: float) -> None:
        super().__init__()
        self.th0 = nn.Parameter(torch.tensor(th0, dtype=F64))
        self.th1 = nn.Parameter(torch.tensor(th1, dtype=F64))

    def forward(self, s: Tensor) -> Tensor:
        return self.th0 + self.th1 * s


class CosCritic(nn.Module):
    """A frozen critic Q(s, a) = scale * cos(a - s) + shift, equal to the one-step reward
    r(s, a) = cos(a - s) with scale = 1, shift = 0 (parameters that take no gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0, dtype=F64), requires_grad=False)
        self.shift = nn.Parameter(torch.tensor(0.0, dtype=F64), requires_grad=False)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        return self.scale * torch.cos(a - s) + self.shift


def states(n: int, seed: int) -> Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n))


def loss_gradient(actor: LinearActor, critic: nn.Module, s: Tensor) -> np.ndarray:
    """d actor_loss / d (th0, th1) by autograd."""
    loss = actor_loss(critic(s, actor(s)))
    grads = torch.autograd.grad(loss, [actor.th0, actor.th1])
    return np.array([g.item() for g in grads])


def dpg_closed_form(th0: float, th1: float) -> np.ndarray:
    """grad J for s ~ N(0, 1), Q = r = cos(a - s), mu = th0 + th1 s, with u = th0 + (th1 - 1) s:
    grad J = E[(1, s) * (-sin u)] = (-sin(th0) e, -(th1 - 1) cos(th0) e), e = exp(-(th1-1)^2/2)
    (E[sin u] by the Gaussian characteristic function, E[s sin u] by Stein's lemma)."""
    k = th1 - 1.0
    e = math.exp(-k * k / 2.0)
    return np.array([-math.sin(th0) * e, -k * math.cos(th0) * e])


# --- Theorem 1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("th0, th1", [(0.3, 0.5), (-1.2, 2.0), (0.0, 1.0)])
def test_actor_loss_gradient_is_the_deterministic_policy_gradient(th0, th1):
    s = states(4096, seed=0)
    actor, critic = LinearActor(th0, th1), CosCritic()
    grad = loss_gradient(actor, critic, s)

    mu = (th0 + th1 * s).numpy()
    dq_da = -np.sin(mu - s.numpy())  # d/da cos(a - s) at a = mu(s)
    grad_mu = np.stack([np.ones_like(mu), s.numpy()])  # d mu / d (th0, th1) = (1, s)
    dpg = (grad_mu * dq_da).mean(axis=1)  # grad J: ascent direction
    np.testing.assert_allclose(grad, -dpg, rtol=0, atol=1e-10)  # the loss is -J

    # the critic, frozen, took no gradient
    assert all(p.grad is None for p in critic.parameters())
    if (th0, th1) == (0.0, 1.0):  # mu(s) = s maximises cos(a - s) everywhere: zero gradient
        np.testing.assert_allclose(grad, [0.0, 0.0], rtol=0, atol=1e-15)


def test_dpg_closed_form_matches_quadrature():
    # E over s ~ N(0, 1) by 80-point Gauss-Hermite quadrature: an independent check of the algebra
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / math.sqrt(2.0 * math.pi)
    for th0, th1 in [(0.3, 0.5), (-1.2, 2.0), (2.0, -0.5)]:
        u = th0 + (th1 - 1.0) * x
        quad = np.array([np.sum(w * -np.sin(u)), np.sum(w * x * -np.sin(u))])
        np.testing.assert_allclose(dpg_closed_form(th0, th1), quad, rtol=0, atol=1e-12)


def test_monte_carlo_dpg_matches_exact_expectation():
    th0, th1 = 0.3, 0.5
    exact = dpg_closed_form(th0, th1)  # e = exp(-0.125): (-0.26080, 0.42158)
    np.testing.assert_allclose(exact, [-math.sin(0.3) * math.exp(-0.125),
                                       0.5 * math.cos(0.3) * math.exp(-0.125)], rtol=1e-15)

    n = 200_000
    s = states(n, seed=1)
    grad_j = -loss_gradient(LinearActor(th0, th1), CosCritic(), s)

    u = (th0 + (th1 - 1.0) * s).numpy()
    per_sample = np.stack([-np.sin(u), s.numpy() * -np.sin(u)])
    standard_error = per_sample.std(axis=1, ddof=1) / math.sqrt(n)
    assert np.all(standard_error < 2e-3)
    assert np.all(np.abs(grad_j - exact) < 4.0 * standard_error), (grad_j, exact, standard_error)


# --- Theorem 2: the stochastic policy gradient tends to the deterministic one as sigma -> 0 ------


def score_function_gradient(actor: LinearActor, s: Tensor, eps: Tensor, weights: Tensor,
                            sigma: float) -> np.ndarray:
    """grad_theta E_{a ~ N(mu(s), sigma^2)}[r(s, a)] = E[grad_theta log pi(a | s) r(s, a)] by
    autograd of the score-function surrogate, with a = mu(s) + sigma * eps_k held fixed and the
    expectation over a replaced by sum_k weights_k (quadrature nodes, or Monte Carlo samples)."""
    mu = actor(s)[:, None]
    a = mu.detach() + sigma * eps  # the sampled actions: no path-wise gradient
    log_pi = -((a - mu) ** 2) / (2.0 * sigma**2) - math.log(sigma * math.sqrt(2.0 * math.pi))
    reward = torch.cos(a - s[:, None])
    objective = ((log_pi * reward) * weights).sum(dim=1).mean()
    grads = torch.autograd.grad(objective, [actor.th0, actor.th1])
    return np.array([g.item() for g in grads])


SIGMAS = [1.0, 0.5, 0.25, 0.1]


def test_stochastic_gradient_is_damped_deterministic_gradient_quadrature():
    """With the action integral done by 40-point Gauss-Hermite quadrature, the score-function
    gradient equals exp(-sigma^2 / 2) * DPG on the same states, for every sigma."""
    th0, th1 = 0.3, 0.5
    s = states(4096, seed=2)
    dpg = -loss_gradient(LinearActor(th0, th1), CosCritic(), s)
    x, w = np.polynomial.hermite_e.hermegauss(40)
    nodes = torch.from_numpy(x)[None, :]
    weights = torch.from_numpy(w / math.sqrt(2.0 * math.pi))[None, :]

    gaps = []
    for sigma in SIGMAS:
        spg = score_function_gradient(LinearActor(th0, th1), s, nodes, weights, sigma)
        np.testing.assert_allclose(spg, math.exp(-sigma**2 / 2.0) * dpg, rtol=0, atol=1e-10)
        gaps.append(np.linalg.norm(spg - dpg))

    # the gap shrinks monotonically as sigma -> 0 ...
    assert all(g_big > g_small for g_big, g_small in zip(gaps[:-1], gaps[1:], strict=True))
    # ... like sigma^2: gap / sigma^2 -> |DPG| / 2 (exactly (1 - exp(-sigma^2/2)) / sigma^2 |DPG|)
    ratios = np.array(gaps) / np.array(SIGMAS) ** 2 / (0.5 * np.linalg.norm(dpg))
    assert np.all((ratios > 0.75) & (ratios <= 1.0)), ratios
    assert abs(ratios[-1] - 1.0) < 0.01, ratios  # sigma = 0.1: 0.9975
    assert np.all(np.diff(ratios) > 0), ratios  # approaching 1 from below
    np.testing.assert_allclose(gaps[-1] / gaps[-2], (0.1 / 0.25) ** 2, rtol=0.02)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_stochastic_gradient_monte_carlo(sigma):
    """Monte Carlo over states and actions (one antithetic pair a = mu +- sigma * eps per state,
    an unbiased, baseline-free score-function estimator) agrees with exp(-sigma^2/2) * DPG
    within 5 standard errors, and at large sigma it is clearly *not* the DPG."""
    th0, th1, n = 0.3, 0.5, 200_000
    rng = np.random.default_rng(3)
    s = torch.from_numpy(rng.standard_normal(n))
    eps1 = rng.standard_normal(n)
    eps = torch.from_numpy(np.stack([eps1, -eps1], axis=1))
    weights = torch.tensor([[0.5, 0.5]], dtype=F64)
    spg = score_function_gradient(LinearActor(th0, th1), s, eps, weights, sigma)

    # the same estimator per state, by hand: (a - mu) / sigma^2 * cos(a - s) * (1, s)
    mu = (th0 + th1 * s).numpy()[:, None]
    a = mu + sigma * eps.numpy()
    score_r = ((a - mu) / sigma**2 * np.cos(a - s.numpy()[:, None])).mean(axis=1)
    per_state = np.stack([score_r, score_r * s.numpy()])
    np.testing.assert_allclose(spg, per_state.mean(axis=1), rtol=0, atol=1e-12)
    standard_error = per_state.std(axis=1, ddof=1) / math.sqrt(n)

    expected = math.exp(-sigma**2 / 2.0) * dpg_closed_form(th0, th1)
    assert np.all(np.abs(spg - expected) < 5.0 * standard_error), (spg, expected, standard_error)
    if sigma >= 0.5:  # the damping is resolved: the stochastic gradient is not the DPG
        gap = np.abs(spg - dpg_closed_form(th0, th1))
        assert np.all(gap > 10.0 * standard_error), (gap, standard_error)


# --- Multi-step: a linear-quadratic problem with discounted state distribution --------------------

A, B, Q_S, R_A, GAMMA, TH = 1.0, 0.5, 1.0, 0.1, 0.95, -1.0
EXPECTED_DJ = -0.63638807  # dJ/dth at th = -1 with E[s0^2] = 1


def lq_constants(th: float) -> tuple[float, float]:
    """c = A + B th (closed-loop gain), P = (q + R th^2) / (1 - gamma c^2) (J = -P E[s0^2])."""
    c = A + B * th
    assert GAMMA * c * c < 1
    return c, (Q_S + R_A * th * th) / (1.0 - GAMMA * c * c)


def lq_dj_closed_form(th: float) -> float:
    c, p = lq_constants(th)
    return -2.0 * (R_A * th + GAMMA * p * B * c) * 1.0 / (1.0 - GAMMA * c * c)


class LQCritic(nn.Module):
    """The true Q^mu of the current policy, frozen:
    Q(s, a) = -(q s^2 + R a^2) - gamma P (A s + B a)^2."""

    def __init__(self, th: float) -> None:
        super().__init__()
        self.register_buffer("p", torch.tensor(lq_constants(th)[1], dtype=F64))

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        return -(Q_S * s**2 + R_A * a**2) - GAMMA * self.p * (A * s + B * a) ** 2


class GainActor(nn.Module):
    def __init__(self, th: float) -> None:
        super().__init__()
        self.th = nn.Parameter(torch.tensor(th, dtype=F64))

    def forward(self, s: Tensor) -> Tensor:
        return self.th * s


def test_lq_closed_form_value():
    assert abs(lq_dj_closed_form(TH) - EXPECTED_DJ) < 1e-7
    # and it is the derivative of J(th) = -P(th) E[s0^2] (central difference)
    h = 1e-5
    fd = (-lq_constants(TH + h)[1] + lq_constants(TH - h)[1]) / (2 * h)
    assert abs(fd - EXPECTED_DJ) < 1e-8


def test_lq_closed_form_matches_rollout_gradient():
    # J = sum_t gamma^t r_t along s_{t+1} = A s_t + B th s_t from s0 = 1 (J is -P s0^2, so
    # s0 = 1 stands for any start distribution with E[s0^2] = 1); autograd through 400 steps
    th = torch.tensor(TH, dtype=F64, requires_grad=True)
    s, j = torch.tensor(1.0, dtype=F64), torch.tensor(0.0, dtype=F64)
    for t in range(400):
        a = th * s
        j = j + GAMMA**t * -(Q_S * s**2 + R_A * a**2)
        s = A * s + B * a
    np.testing.assert_allclose(j.item(), -lq_constants(TH)[1], rtol=1e-13)
    (dj,) = torch.autograd.grad(j, th)
    assert abs(dj.item() - EXPECTED_DJ) < 1e-7


def test_lq_dpg_with_discounted_state_distribution_single_state():
    # E_{s ~ rho^mu}[s^2] = sum_t gamma^t c^{2t} E[s0^2] = 1 / (1 - gamma c^2): one state s = 1
    # with that weight carries the whole discounted state distribution (the integrand is
    # s^2 * const)
    c, _ = lq_constants(TH)
    actor, critic = GainActor(TH), LQCritic(TH)
    s = torch.ones(1, dtype=F64)
    loss = actor_loss(critic(s, actor(s)))
    (grad_loss,) = torch.autograd.grad(loss, actor.th)
    dj = -grad_loss.item() / (1.0 - GAMMA * c * c)  # -grad(actor_loss) is the ascent direction
    assert abs(dj - EXPECTED_DJ) < 1e-6
    assert abs(dj - lq_dj_closed_form(TH)) < 1e-12


def test_lq_dpg_with_discounted_state_distribution_trajectory():
    # the same, with the states of the trajectory s_t = c^t s0 weighted by gamma^t:
    # dJ/dth = sum_t gamma^t dmu/dth(s_t) dQ/da(s_t, mu(s_t))
    c, _ = lq_constants(TH)
    n_steps = 300
    t = torch.arange(n_steps, dtype=F64)
    s = c**t  # s0 = 1
    weights = GAMMA**t * n_steps  # actor_loss takes a mean over the batch
    actor, critic = GainActor(TH), LQCritic(TH)
    loss = actor_loss(weights * critic(s, actor(s)))
    (grad_loss,) = torch.autograd.grad(loss, actor.th)
    assert abs(-grad_loss.item() - EXPECTED_DJ) < 1e-7
    # the unweighted, undiscounted mean would be wrong: the state distribution matters
    loss_plain = actor_loss(critic(s[:1], actor(s[:1])))
    (g_plain,) = torch.autograd.grad(loss_plain, actor.th)
    assert abs(-g_plain.item() - EXPECTED_DJ) > 0.1
