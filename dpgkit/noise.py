"""Exploration noise added to the deterministic action: Ornstein-Uhlenbeck or Gaussian (or, in
:mod:`dpgkit.param_noise`, noise in the actor's parameters instead).

Both draw from their own ``numpy.random.Generator`` (never the global numpy RNG), so a run is
reproducible from its seed. Each holds one independent process per environment: shape
(num_envs, action_dim).
"""

import numpy as np

from dpgkit.config import DDPGConfig
from dpgkit.equations import ou_step
from dpgkit.param_noise import ParameterNoise


class OrnsteinUhlenbeckNoise:
    """Temporally correlated noise: dx = theta (mu - x) dt + sigma dW, one step per env step.

    The process starts at ``mu`` and is reset there at every episode start (``reset``), as in the
    paper. Its stationary standard deviation is sigma / sqrt(2 theta) for small dt (the Euler
    step's own is sigma sqrt(dt / (1 - (1 - theta dt)^2)), e.g. 0.380 rather than 0.365 at dt = 1).
    """

    def __init__(
        self,
        action_dim: int,
        theta: float,
        mu: float,
        sigma: float,
        dt: float,
        rng: np.random.Generator,
        num_envs: int = DDPGConfig.num_envs,
    ) -> None:
        self.theta, self.mu, self.sigma, self.dt = theta, mu, sigma, dt
        self.rng = rng
        self.x = np.full((num_envs, action_dim), mu, dtype=np.float64)

    def reset(self, env_index: int | None = None) -> None:
        """Restart the process at mu, for one env or (``None``) for all."""
        if env_index is None:
            self.x[:] = self.mu
        else:
            self.x[env_index] = self.mu

    def sample(self) -> np.ndarray:
        """Advance every process one step and return x, shape (num_envs, action_dim)."""
        noise = self.rng.standard_normal(self.x.shape)
        self.x = ou_step(self.x, self.theta, self.mu, self.sigma, self.dt, noise)
        return self.x.copy()


class GaussianNoise:
    """Uncorrelated noise: epsilon ~ N(0, sigma^2), drawn afresh at every step."""

    def __init__(self, action_dim: int, sigma: float, rng: np.random.Generator,
                 num_envs: int = DDPGConfig.num_envs) -> None:
        self.sigma = sigma
        self.rng = rng
        self.shape = (num_envs, action_dim)

    def reset(self, env_index: int | None = None) -> None:
        """Nothing to reset: Gaussian noise has no state."""

    def sample(self) -> np.ndarray:
        """epsilon, shape (num_envs, action_dim)."""
        return self.sigma * self.rng.standard_normal(self.shape)


Noise = OrnsteinUhlenbeckNoise | GaussianNoise | ParameterNoise


def make_noise(config: DDPGConfig, action_dim: int, rng: np.random.Generator,
               num_envs: int = DDPGConfig.num_envs) -> Noise:
    """The exploration noise that ``config.exploration_noise`` names ('none': sigma = 0;
    'param': parameter-space noise, :mod:`dpgkit.param_noise`)."""
    if config.exploration_noise == "param":
        return ParameterNoise(config.gaussian_sigma, config.param_noise_initial_sigma,
                              config.param_noise_alpha, config.param_noise_adapt_every_steps,
                              config.param_noise_states, rng, num_envs)
    if config.exploration_noise == "ou":
        return OrnsteinUhlenbeckNoise(action_dim, config.ou_theta, config.ou_mu, config.ou_sigma,
                                      config.ou_dt, rng, num_envs)
    sigma = config.gaussian_sigma if config.exploration_noise == "gaussian" else 0.0
    return GaussianNoise(action_dim, sigma, rng, num_envs)


def noise_scale(env_steps: int, kind: str, start: int, end: int, final_scale: float) -> float:
    """The factor on the initial noise scale at ``env_steps``: 1 before ``start``,
    ``final_scale`` after ``end``, and in between, with f = (env_steps - start) / (end - start),
    linear: 1 + (final_scale - 1) f;  exponential: final_scale ** f."""
    if kind == "none" or env_steps <= start:
        return 1.0
    fraction = 1.0 if env_steps >= end else (env_steps - start) / (end - start)
    if kind == "linear":
        return 1.0 + (final_scale - 1.0) * fraction
    return final_scale**fraction
