"""TD3 (Fujimoto et al. 2018): DDPG plus three named changes, and nothing else.

1. Clipped double Q-learning: two critics Q_1, Q_2 learn from one target that uses the smaller
   of their target copies, y = r + gamma (1 - terminated) min_i Q'_i(s', a~).
2. Target policy smoothing: a~ = clip(mu'(s') + clip(epsilon, -c, c), -1, 1), with
   epsilon ~ N(0, sigma^2) per action element.
3. Delayed policy updates: the actor and all targets are updated once every ``policy_delay``
   critic updates. The actor ascends Q_1 only.

Each change is one overridden method below; everything else is :class:`~dpgkit.agent.DDPGAgent`.
"""

import torch
from torch import Tensor, nn

from dpgkit.agent import DDPGAgent, frozen_copy
from dpgkit.batch import Batch
from dpgkit.config import TD3Config
from dpgkit.equations import clipped_double_q, smoothed_target_action
from dpgkit.networks import Critic


class TD3Agent(DDPGAgent):
    """DDPG with twin critics, target policy smoothing and delayed actor/target updates."""

    config: TD3Config

    def __init__(self, obs_dim: int, action_dim: int, config: TD3Config) -> None:
        # the second critic first: DDPGAgent builds the critic optimiser over critic_pairs()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 1)  # the second critic starts elsewhere than the first
            self.critic2 = Critic(obs_dim, action_dim, config.critic_hidden,
                                  config.critic_action_layer, config.batch_norm, config.final_init)
        self.critic2_target = frozen_copy(self.critic2)
        super().__init__(obs_dim, action_dim, config)
        # the target-smoothing noise has its own generator, so a run is reproducible from its seed
        self.generator = torch.Generator().manual_seed(config.seed)

    # change 1 and 2: the target uses min(Q'_1, Q'_2) at a smoothed target action; both critics
    # regress on that one target (the critic step covers every critic of critic_pairs)
    def next_q(self, next_obs: Tensor) -> Tensor:
        """min_i Q'_i(s', a~) with a~ = clip(mu'(s') + clip(epsilon, -c, c), -1, 1)."""
        next_action = self.gradient_steps.target_action(next_obs)
        epsilon = self.config.target_noise * torch.randn(
            next_action.shape, generator=self.generator, dtype=next_action.dtype)
        next_action = smoothed_target_action(next_action, epsilon, self.config.target_noise_clip)
        return clipped_double_q(*self.gradient_steps.target_q(next_obs, next_action))

    # change 3: the actor and the targets move once every policy_delay critic updates
    def update(self, batch: Batch) -> dict[str, float]:
        """A critic update; every ``policy_delay``-th time also an actor and a target update."""
        info = self.update_critic(batch)
        self.updates += 1
        if self.updates % self.config.policy_delay == 0:
            info |= self.update_actor(batch)
            self.update_targets()
        return info

    def critic_pairs(self) -> list[tuple[Critic, Critic]]:
        """(Q_1, Q'_1) and (Q_2, Q'_2)."""
        return [*super().critic_pairs(), (self.critic2, self.critic2_target)]

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "critic2": self.critic2,
                "critic2_target": self.critic2_target}
