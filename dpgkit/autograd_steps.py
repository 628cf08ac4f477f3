"""The gradient steps of the update, differentiated by autograd: the autograd path, the one to read.

:class:`~dpgkit.agent.DDPGAgent` picks its gradient steps once, when it is built: these, or the
same steps with the chain rule written out by hand (:class:`dpgkit.fastpath.HandWrittenSteps`,
the default where it supports the networks). Both offer the same calls, so the agent's update
reads the same whichever it got:

    critic_step(s, a, y, w)   one optimizer step on sum_k critic_loss(Q_k(s, a), y), every critic
    actor_step(s)             one optimizer step on actor_loss(Q_1(s, mu(s))), the critics fixed
    soft_update(tau)          theta' <- tau theta + (1 - tau) theta' for every target network

and the forward passes the agent needs without gradient: ``act`` mu(s), ``target_action``
mu'(s') and ``target_q`` Q'_k(s', a') of every target critic.
"""

import torch
from torch import Tensor

from dpgkit.equations import actor_loss, critic_loss, soft_update
from dpgkit.networks import Actor, Critic


def gradient_step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One optimizer step down the gradient of ``loss``."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class AutogradSteps:
    """The update's gradient steps through autograd.

    Args:
        actor, critics: the online networks (one critic for DDPG, two for TD3).
        actor_target, critic_targets: their target copies, in the same order.
        actor_optimizer, critic_optimizer: the optimisers of the actor and of all critics.
    """

    def __init__(self, actor: Actor, critics: list[Critic], actor_target: Actor,
                 critic_targets: list[Critic], actor_optimizer: torch.optim.Optimizer,
                 critic_optimizer: torch.optim.Optimizer) -> None:
        self.actor, self.critics = actor, critics
        self.actor_target, self.critic_targets = actor_target, critic_targets
        self.actor_optimizer, self.critic_optimizer = actor_optimizer, critic_optimizer

    def act(self, obs: Tensor) -> Tensor:
        """mu(s), (B, obs_dim) -> (B, action_dim)."""
        self.actor.eval()  # batch norm, if any, uses its running statistics when acting
        return self.actor(obs)

    def target_action(self, next_obs: Tensor) -> Tensor:
        """mu'(s'), (B, action_dim)."""
        return self.actor_target(next_obs)

    def target_q(self, next_obs: Tensor, next_action: Tensor) -> list[Tensor]:
        """Q'_k(s', a') of every target critic, each (B,)."""
        return [target(next_obs, next_action) for target in self.critic_targets]

    def critic_step(self, obs: Tensor, action: Tensor, y: Tensor, weights: Tensor | None
                    ) -> tuple[list[Tensor], Tensor]:
        """One optimizer step on sum_k critic_loss(Q_k(s, a), y); returns each critic's
        Q(s, a) (B,) and the summed loss."""
        for critic in self.critics:
            critic.train()
        qs = [critic(obs, action) for critic in self.critics]
        losses = [critic_loss(q, y, weights) for q in qs]
        loss = sum(losses[1:], losses[0])
        gradient_step(self.critic_optimizer, loss)
        return qs, loss

    def actor_step(self, obs: Tensor) -> Tensor:
        """One optimizer step on actor_loss(Q_1(s, mu(s))); returns the loss.

        The critic's parameters are frozen for this step: the gradient flows through Q only to
        its action input, grad_a Q(s, a) at a = mu(s), and on into the actor (the DPG theorem).
        """
        critic = self.critics[0]
        self.actor.train()
        critic.requires_grad_(False)
        try:
            loss = actor_loss(critic(obs, self.actor(obs)))
            gradient_step(self.actor_optimizer, loss)
        finally:
            critic.requires_grad_(True)
        return loss

    def soft_update(self, tau: float) -> None:
        """theta' <- tau theta + (1 - tau) theta' for the actor's target and every critic's."""
        pairs = zip([self.actor_target, *self.critic_targets], [self.actor, *self.critics],
                    strict=True)
        for target, online in pairs:
            soft_update(target, online, tau)
