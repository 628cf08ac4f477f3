"""The acting half of distributed training, without Ray: envs, a CPU copy of the policy, noise.

A :class:`Collector` steps its own ``num_envs`` envs with the learner's latest published actor
weights and returns ``actor_batch_steps`` steps of them as one batch, tagged with the policy
version that chose the actions. :mod:`dpgkit.distributed` runs one inside each Ray actor. Per
step it does what the single-process loop does, with the same :class:`~dpgkit.acting.Acting`:
uniform actions while the learner is in warm-up, else clip(mu(s) + noise, -1, 1) with the noise
scaled for this actor; SAME_STEP autoreset, the true final obs at an episode end.

It never computes a gradient; the learner never steps an env.
"""

import time
from typing import Any

import numpy as np
import torch

from dpgkit.acting import Acting, Transition
from dpgkit.agents import make_agent
from dpgkit.config import DDPGConfig
from dpgkit.envs import make_vector_env
from dpgkit.noise import make_noise
from dpgkit.threads import use_threads


def actor_noise_factor(index: int, actors: int, spread: float) -> float:
    """spread ** (i / (N - 1)) for actor i of N: actor 0 explores at the configured noise scale,
    the last at ``spread`` times it, the others geometrically in between (Ape-X spreads its
    epsilons the same way). 1 for a single actor."""
    return 1.0 if actors == 1 else spread ** (index / (actors - 1))


class Collector:
    """One actor's envs, policy copy and exploration noise.

    Args:
        config: the run's settings (env, num_envs, noise, actor_batch_steps, ...).
        index: this actor's number in [0, config.actors); it picks the noise scale and seeds.
        start: the learner's env_steps when the actor was made (a resumed run's actors draw
            other episodes than the first run's).
    """

    def __init__(self, config: DDPGConfig, index: int, start: int = 0) -> None:
        self.config, self.index = config, index
        use_threads(config.torch_threads)
        torch.set_flush_denormal(config.flush_denormal)
        # [seed, 1 + index, start] never equals the learner's SeedSequence(seed).
        seeds = np.random.SeedSequence([config.seed, 1 + index, start])
        warmup_seeds, noise_seeds, env_seeds = seeds.spawn(3)
        envs = make_vector_env(config.env_id, config.num_envs, "sync",
                               config.env_arguments())
        obs_dim = int(envs.single_observation_space.shape[0])
        action_dim = int(envs.single_action_space.shape[0])
        self.agent = make_agent(obs_dim, action_dim, config)  # only its actor is used
        noise = make_noise(config, action_dim, np.random.default_rng(noise_seeds),
                           config.num_envs)
        initial_sigma = noise.sigma * actor_noise_factor(index, max(config.actors, 1),
                                                         config.actor_noise_spread)
        obs, _ = envs.reset(seed=int(env_seeds.generate_state(1)[0] >> 1))
        noise.reset()
        self.acting = Acting(config, envs, obs, self.agent, noise, initial_sigma,
                             np.random.default_rng(warmup_seeds))
        self.version = -1  # no weights yet: the learner sends them with the first request

    def set_weights(self, weights: dict[str, dict[str, np.ndarray]], version: int) -> None:
        """Load the learner's actor weights and observation statistics (its
        ``acting_weights``) published at ``version``."""
        self.agent.load_acting_weights(weights)
        self.version = version

    def collect(self, env_steps: int) -> dict[str, Any]:
        """Step every env ``actor_batch_steps`` times, acting as the learner's loop would at
        ``env_steps`` (warm-up, noise schedule).

        Returns the batch: each field of :class:`~dpgkit.acting.Transition` with shape
        (T, num_envs, ...), time first (``next_obs`` is the true final obs where an episode
        ended); ``actor`` (this index), ``version`` (of the policy that acted), ``episodes``
        (env, return, length of each episode that ended) and ``seconds`` (the time it took).
        """
        config, started = self.config, time.perf_counter()
        rows: list[Transition] = []
        ended: list[tuple[int, float, int]] = []
        for t in range(config.actor_batch_steps):
            transition, episodes = self.acting.step(env_steps + t * config.num_envs)
            rows.append(transition)
            ended += [(i, episode.total_reward, episode.length) for i, episode in episodes]
        columns = zip(Transition._fields, zip(*rows, strict=True), strict=True)
        batch: dict[str, Any] = {
            name: np.stack(column).astype(np.float32 if name != "truncated" else bool)
            for name, column in columns}
        return {**batch, "actor": self.index, "version": self.version, "episodes": ended,
                "seconds": time.perf_counter() - started}

    def close(self) -> None:
        self.acting.envs.close()
