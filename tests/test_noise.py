"""Exploration noise: the Ornstein-Uhlenbeck process's dynamics and statistics, Gaussian noise,
reproducibility from a Generator, and make_noise's choice from the config."""

import numpy as np
import pytest

from dpgkit.equations import ou_step
from dpgkit.noise import GaussianNoise, OrnsteinUhlenbeckNoise, make_noise
from dpgkit.presets import preset_config

THETA, SIGMA, DT = 0.15, 0.2, 0.01


def ou(seed: int = 0, num_envs: int = 1, action_dim: int = 1, theta: float = THETA,
       mu: float = 0.0, sigma: float = SIGMA, dt: float = DT) -> OrnsteinUhlenbeckNoise:
    return OrnsteinUhlenbeckNoise(action_dim, theta, mu, sigma, dt, np.random.default_rng(seed),
                                  num_envs)


def euler_stationary_variance(theta: float, sigma: float, dt: float) -> float:
    """The exact stationary variance of x' = (1 - theta dt) x + sigma sqrt(dt) N(0, 1):
    v = (1 - theta dt)^2 v + sigma^2 dt  =>  v = sigma^2 dt / (1 - (1 - theta dt)^2)."""
    return sigma**2 * dt / (1.0 - (1.0 - theta * dt) ** 2)


# --- Ornstein-Uhlenbeck ------------------------------------------------------------------------


def test_ou_starts_at_mu_with_one_process_per_env():
    noise = ou(num_envs=3, action_dim=2, mu=0.25)
    assert noise.x.shape == (3, 2)
    np.testing.assert_array_equal(noise.x, np.full((3, 2), 0.25))
    assert noise.sample().shape == (3, 2)


@pytest.mark.parametrize("mu", [0.0, 0.3])
def test_ou_mean_reversion_without_diffusion(mu):
    # sigma = 0: x_n - mu = (x_0 - mu) (1 - theta dt)^n exactly
    noise = ou(num_envs=2, mu=mu, sigma=0.0)
    noise.x = np.array([[2.0], [-1.0]])
    x0 = noise.x.copy()
    for n in range(1, 1001):
        x = noise.sample()
        if n in (1, 10, 100, 1000):
            np.testing.assert_allclose(x - mu, (x0 - mu) * (1.0 - THETA * DT) ** n, rtol=1e-11,
                                       atol=1e-15)
    # after 1000 steps only (0.9985)^1000 = 22.3% of the distance to mu is left
    np.testing.assert_allclose((x - mu) / (x0 - mu), 0.9985**1000, rtol=1e-11)
    assert 0.22 < 0.9985**1000 < 0.23


def test_euler_stationary_variance_close_to_continuous_for_small_dt():
    continuous = SIGMA**2 / (2 * THETA)  # 0.1333...
    assert abs(continuous - 0.04 / 0.3) < 1e-15
    exact = euler_stationary_variance(THETA, SIGMA, DT)  # sigma^2 / (theta (2 - theta dt))
    assert abs(exact / continuous - 1.0) < 0.02
    np.testing.assert_allclose(exact, SIGMA**2 / (THETA * (2.0 - THETA * DT)), rtol=1e-12)


def test_ou_stationary_variance_and_mean_from_many_processes():
    # 4096 independent processes started at mu = 0, run 6000 steps (1 / (theta dt) = 667: the
    # start is forgotten to (1 - theta dt)^6000 = 1e-4); statistics over the last 3000 steps
    noise = ou(seed=1, num_envs=4096)
    values = []
    for n in range(6000):
        x = noise.sample()
        if n >= 3000 and n % 50 == 0:
            values.append(x[:, 0])
    values = np.array(values)
    continuous = SIGMA**2 / (2 * THETA)
    variance = values.var()
    assert abs(variance / continuous - 1.0) < 0.05, variance
    assert abs(variance / euler_stationary_variance(THETA, SIGMA, DT) - 1.0) < 0.05, variance
    assert abs(values.mean()) < 0.02  # stationary std 0.365, ~20k effective samples


def test_ou_stationary_variance_large_dt_follows_euler_formula():
    # the paper preset's dt = 1: the Euler chain's variance, 0.04 / (1 - 0.85^2) = 0.1441, is 8%
    # above the continuous-time sigma^2 / (2 theta) = 0.1333
    theta, sigma, dt = 0.15, 0.2, 1.0
    noise = ou(seed=2, num_envs=4096, theta=theta, sigma=sigma, dt=dt)
    values = []
    for n in range(600):
        x = noise.sample()
        if n >= 100 and n % 5 == 0:
            values.append(x[:, 0])
    variance = np.array(values).var()
    exact = euler_stationary_variance(theta, sigma, dt)
    assert abs(exact - 0.04 / 0.2775) < 1e-12
    assert abs(variance / exact - 1.0) < 0.02, variance
    assert variance / (sigma**2 / (2 * theta)) - 1.0 > 0.05, variance


def test_ou_autocorrelation():
    # start every process in the stationary distribution, then correlate x_0 with x_k
    noise = ou(seed=3, num_envs=8192)
    start = np.random.default_rng(4).standard_normal((8192, 1))
    noise.x = start * np.sqrt(euler_stationary_variance(THETA, SIGMA, DT))
    x0 = noise.x[:, 0].copy()
    lags = {10: None, 100: None, 500: None}
    for k in range(1, 501):
        x = noise.sample()
        if k in lags:
            lags[k] = np.corrcoef(x0, x[:, 0])[0, 1]
    for k, corr in lags.items():
        assert abs(corr - (1.0 - THETA * DT) ** k) < 0.03, (k, corr)  # 0.985, 0.861, 0.472
    assert lags[500] < 0.55  # it does decorrelate


def test_ou_reset_all_and_one():
    noise = ou(seed=5, num_envs=4, action_dim=2, mu=0.25)
    for _ in range(20):
        noise.sample()
    assert np.all(noise.x != 0.25)
    before = noise.x.copy()
    noise.reset(2)
    np.testing.assert_array_equal(noise.x[2], [0.25, 0.25])
    np.testing.assert_array_equal(noise.x[[0, 1, 3]], before[[0, 1, 3]])
    noise.sample()
    noise.reset()
    np.testing.assert_array_equal(noise.x, np.full((4, 2), 0.25))


def test_ou_same_seed_same_sequence_and_exact_steps():
    a, b, c = ou(seed=7, num_envs=3, action_dim=2), ou(seed=7, num_envs=3, action_dim=2), \
        ou(seed=8, num_envs=3, action_dim=2)
    seq_a = [a.sample() for _ in range(50)]
    seq_b = [b.sample() for _ in range(50)]
    seq_c = [c.sample() for _ in range(50)]
    np.testing.assert_array_equal(np.array(seq_a), np.array(seq_b))
    assert not np.allclose(np.array(seq_a), np.array(seq_c))
    # each step is ou_step with the next standard normals of the noise's own Generator
    rng = np.random.default_rng(7)
    x = np.zeros((3, 2))
    for step in seq_a[:5]:
        x = ou_step(x, THETA, 0.0, SIGMA, DT, rng.standard_normal((3, 2)))
        np.testing.assert_array_equal(step, x)


def test_ou_sample_returns_a_copy():
    noise = ou(seed=0, num_envs=2)
    x = noise.sample()
    x[:] = 100.0
    assert np.all(np.abs(noise.x) < 1.0)


def test_noises_leave_global_numpy_rng_alone():
    before = np.random.get_state()
    ou(seed=0, num_envs=16).sample()
    GaussianNoise(2, 0.1, np.random.default_rng(0), num_envs=16).sample()
    after = np.random.get_state()
    np.testing.assert_array_equal(after[1], before[1])  # the Mersenne Twister key
    assert after[2:] == before[2:]  # position, cached Gaussian


# --- Gaussian ----------------------------------------------------------------------------------


def test_gaussian_noise_statistics_and_shape():
    sigma = 0.3
    noise = GaussianNoise(3, sigma, np.random.default_rng(11), num_envs=64)
    draws = np.array([noise.sample() for _ in range(2000)])  # (2000, 64, 3): 384k values
    assert draws.shape == (2000, 64, 3)
    assert abs(draws.std() / sigma - 1.0) < 0.01
    assert abs(draws.mean()) < 0.003  # SE 0.3 / sqrt(384000) = 0.0005
    # no memory from one step to the next
    lag1 = np.corrcoef(draws[:-1].ravel(), draws[1:].ravel())[0, 1]
    assert abs(lag1) < 0.01


def test_gaussian_noise_reproducible_from_its_generator():
    noise = GaussianNoise(2, 0.5, np.random.default_rng(12), num_envs=4)
    rng = np.random.default_rng(12)
    for _ in range(3):
        np.testing.assert_array_equal(noise.sample(), 0.5 * rng.standard_normal((4, 2)))
    noise.reset()  # stateless: nothing changes the stream
    np.testing.assert_array_equal(noise.sample(), 0.5 * rng.standard_normal((4, 2)))


# --- make_noise ----------------------------------------------------------------------------------


def test_make_noise_ou_uses_config_values():
    config = preset_config("ddpg", exploration_noise="ou", ou_theta=0.5, ou_sigma=0.3,
                           ou_mu=0.1, ou_dt=0.2)
    noise = make_noise(config, action_dim=2, rng=np.random.default_rng(0), num_envs=3)
    assert isinstance(noise, OrnsteinUhlenbeckNoise)
    assert (noise.theta, noise.mu, noise.sigma, noise.dt) == (0.5, 0.1, 0.3, 0.2)
    np.testing.assert_array_equal(noise.x, np.full((3, 2), 0.1))
    expected = ou_step(np.full((3, 2), 0.1), 0.5, 0.1, 0.3, 0.2,
                       np.random.default_rng(0).standard_normal((3, 2)))
    np.testing.assert_array_equal(noise.sample(), expected)


def test_make_noise_ou_preset_defaults():
    noise = make_noise(preset_config("ddpg", exploration_noise="ou"), 1, np.random.default_rng(0))
    assert isinstance(noise, OrnsteinUhlenbeckNoise)
    assert (noise.theta, noise.mu, noise.sigma, noise.dt) == (0.15, 0.0, 0.2, 0.01)
    assert noise.x.shape == (1, 1)


def test_make_noise_gaussian():
    config = preset_config("ddpg", exploration_noise="gaussian", gaussian_sigma=0.25)
    noise = make_noise(config, action_dim=2, rng=np.random.default_rng(1), num_envs=5)
    assert isinstance(noise, GaussianNoise)
    np.testing.assert_array_equal(noise.sample(),
                                  0.25 * np.random.default_rng(1).standard_normal((5, 2)))


def test_make_noise_none_gives_zeros():
    noise = make_noise(preset_config("ddpg", exploration_noise="none"), action_dim=3,
                       rng=np.random.default_rng(2), num_envs=4)
    for _ in range(3):
        sample = noise.sample()
        assert sample.shape == (4, 3)
        np.testing.assert_array_equal(sample, np.zeros((4, 3)))
