"""The evaluation protocol: whole episodes without exploration noise, one per start-state seed.

A run's periodic evaluations (:meth:`dpgkit.loop.Trainer.evaluate`) play one episode per seed
of :func:`eval_seeds`, the same start states every time, acting with the deployed policy, as the
TD3 paper evaluates; ``dpgkit eval`` and :meth:`dpgkit.DDPG.evaluate` call :func:`evaluate` with
the seeds they are given.
"""

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from dpgkit.envs import ActionScaler


def evaluate(policy: Callable[[np.ndarray], np.ndarray], env: gym.Env, scaler: ActionScaler,
             seeds: list[int]) -> np.ndarray:
    """Returns of one episode per seed, acting with ``policy`` (no noise), each episode's start
    state drawn by ``env.reset(seed=seed)``."""
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        total, episode_over = 0.0, False
        while not episode_over:
            obs, reward, terminated, truncated, _ = env.step(scaler.to_env(policy(obs)))
            total += float(reward)
            episode_over = terminated or truncated
        returns.append(total)
    return np.asarray(returns)


def eval_seeds(seed: int, episodes: int) -> list[int]:
    """Start-state seeds of the evaluation episodes of a run with ``seed``.

    Every evaluation of a run uses the same start states (so evaluations are comparable over
    time), and none of them is a training episode's seed.
    """
    return [1_000_000 + 1_000 * seed + k for k in range(episodes)]
