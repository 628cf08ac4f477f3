"""Acting: one step of a batch of envs with the behaviour policy, for the loop and the collector.

Both the single-process loop (:mod:`dpgkit.loop`) and a distributed actor
(:mod:`dpgkit.collector`) act with an :class:`Acting`. One call of :meth:`Acting.step` does:

    sigma = initial sigma * noise_scale(env_steps)   # the noise schedule
    a  = uniform(-1, 1)                              for the first warmup_steps
    a  = clip(mu(s) + noise, -1, 1)                  after (noise: OU or Gaussian)
    a  = mu~(s), a perturbed copy of the actor        after, with parameter noise
    s', r, terminated, truncated = env.step(scale_action(a))
    if an episode ended: count it, restart its noise process

and returns the step as a :class:`Transition` (s' is the true final observation where an episode
ended) and the episodes that ended. Acting never computes a gradient.
"""

import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from dpgkit.agent import DDPGAgent
from dpgkit.config import DDPGConfig
from dpgkit.envs import ActionScaler
from dpgkit.errors import DpgkitWarning
from dpgkit.noise import Noise, noise_scale
from dpgkit.param_noise import ParameterNoise


class Transition(NamedTuple):
    """One env step of each of N envs, each field with a leading dimension N: obs (N, obs_dim),
    action (N, action_dim) in [-1, 1], reward (N,), next_obs (N, obs_dim), terminated (N,),
    truncated (N,). ``next_obs`` is the state the step reached: at an episode end, the final
    observation, not the first one of the next episode. :meth:`ReplayBuffer.add` takes the
    fields in this order (``replay.add(*transition)``)."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray


@dataclass
class Episode:
    """A running training episode of one env: its return and length."""

    total_reward: float = 0.0
    length: int = 0


def warn_if_all_warmup(config: DDPGConfig) -> bool:
    """Warn, and return True, when the whole budget is warm-up without updates: the run would
    act at random throughout and end with its untrained policy (the ``td7`` preset's 25,000
    warm-up steps on the default budget of 20,000, for one). :func:`dpgkit.train.train` calls
    it; the Python API does not, since a model's budget grows with each ``learn`` (SB3's loop
    of ``learn`` chunks)."""
    if config.update_during_warmup or config.warmup_steps < config.total_env_steps:
        return False
    warnings.warn(f"warmup_steps ({config.warmup_steps}) is not below total_env_steps "
                  f"({config.total_env_steps}): the whole run acts at random and makes no "
                  "update, so it ends with its untrained policy; give it more env steps "
                  "(--steps) or a shorter warm-up (e.g. --warmup_steps 1000)", DpgkitWarning,
                  stacklevel=2)
    return True


def explore_actions(agent: DDPGAgent, obs: np.ndarray, noise: Noise, env_steps: int,
                    warmup_rng: np.random.Generator) -> np.ndarray:
    """The behaviour policy for a batch of envs, shape (num_envs, action_dim): uniform in
    [-1, 1] during warm-up (the agent says when it ends), else clip(mu(s) + noise, -1, 1)."""
    if agent.warming_up(env_steps):
        return warmup_rng.uniform(-1.0, 1.0, (len(obs), agent.action_dim))
    if isinstance(noise, ParameterNoise):  # a perturbed copy of the actor acts, no action noise
        with torch.no_grad():  # it reads what the actor reads: normalised with normalize_obs
            seen = agent.obs_norm(torch.as_tensor(obs, dtype=torch.float32)).numpy()
        return noise.act(agent.actor, seen)
    return np.clip(agent.act(obs) + noise.sample(), -1.0, 1.0)


def step_envs(envs: Any, scaler: ActionScaler, obs: np.ndarray, action: np.ndarray
              ) -> tuple[np.ndarray, Transition]:
    """Step every env of ``envs`` with ``action`` (in [-1, 1]); return the next observations
    (where an episode ended, the first of the next one) and the transitions to store.

    Where an episode ended, the vector env (SAME_STEP autoreset) has already reset that env, and
    the true final observation, the transition's ``next_obs``, is in ``info["final_obs"]``.
    """
    next_obs, reward, terminated, truncated, info = envs.step(scaler.to_env(action))
    reached = next_obs.copy()
    for i in np.flatnonzero(info.get("_final_obs", [])):
        reached[i] = info["final_obs"][i]
    return next_obs, Transition(obs, action, reward, reached, terminated, truncated)


def end_episodes(episodes: list[Episode], reward: np.ndarray, terminated: np.ndarray,
                 truncated: np.ndarray) -> list[tuple[int, Episode]]:
    """Add one step's rewards to each env's running episode; return the episodes that ended,
    as (env index, episode), and start new ones in their place."""
    ended = []
    for i, episode in enumerate(episodes):
        episode.total_reward += float(reward[i])
        episode.length += 1
        if terminated[i] or truncated[i]:
            ended.append((i, episode))
            episodes[i] = Episode()
    return ended


class Acting:
    """A batch of envs, the agent that acts in them, its exploration noise and warm-up
    generator, the current observations and the running episodes.

    Args:
        config: the run's settings (warm-up, noise schedule).
        envs: a vector env (:func:`dpgkit.envs.make_vector_env`), reset by the caller.
        obs: its current observations, (num_envs, obs_dim).
        agent: the policy mu(s) (only ``act`` is used).
        noise: one exploration-noise process per env.
        initial_sigma: the noise scale before any decay.
        warmup_rng: draws the uniform warm-up actions.
    """

    def __init__(self, config: DDPGConfig, envs: Any, obs: np.ndarray, agent: DDPGAgent,
                 noise: Noise, initial_sigma: float, warmup_rng: np.random.Generator) -> None:
        self.config, self.envs, self.obs, self.agent = config, envs, obs, agent
        self.noise, self.initial_sigma, self.warmup_rng = noise, initial_sigma, warmup_rng
        self.scaler = ActionScaler.for_space(envs.single_action_space)
        self.episodes = [Episode() for _ in range(envs.num_envs)]

    def step(self, env_steps: int) -> tuple[Transition, list[tuple[int, Episode]]]:
        """Step every env once, acting as the run does after ``env_steps`` transitions (warm-up,
        noise schedule); return the transitions and the episodes that ended (env, episode)."""
        config = self.config
        self.noise.sigma = self.initial_sigma * noise_scale(
            env_steps, config.noise_decay, config.noise_decay_start, config.noise_decay_end,
            config.noise_final_scale)
        action = explore_actions(self.agent, self.obs, self.noise, env_steps, self.warmup_rng)
        self.obs, transition = step_envs(self.envs, self.scaler, self.obs, action)
        ended = end_episodes(self.episodes, transition.reward, transition.terminated,
                             transition.truncated)
        for i, _ in ended:
            self.noise.reset(i)
        return transition, ended
