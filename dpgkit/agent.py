"""The DDPG agent: networks, targets, optimisers and the update of Algorithm 1.

The agent never sees an environment: it acts on observation arrays and learns from
:class:`~dpgkit.replay.Batch` objects, so it can be driven by any data source. The update calls the
named equations of :mod:`dpgkit.equations` and nothing else clever:

    y      = td_target(r, terminated, Q'(s', mu'(s')), gamma)      # no gradient
    w     <- w - lr * grad_w critic_loss(Q_w(s, a), y)
    theta <- theta - lr * grad_theta actor_loss(Q_w(s, mu_theta(s)))  # critic frozen
    theta' <- soft_update(theta', theta, tau);  w' <- soft_update(w', w, tau)

The two gradient steps and the soft update are the three calls of the agent's
``gradient_steps``, chosen once, when the agent is built: autograd's
(:mod:`dpgkit.autograd_steps`, the one to read) or, by default (``fast_update``), the same steps
with the chain rule written out by hand for these MLPs (:mod:`dpgkit.fastpath`);
``tests/test_fastpath.py`` checks both give one update.
"""

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from dpgkit import torchops
from dpgkit.autograd_steps import AutogradSteps
from dpgkit.batch import Batch
from dpgkit.config import DDPGConfig
from dpgkit.equations import td_target
from dpgkit.errors import DpgkitError
from dpgkit.fastpath import HandWrittenSteps, supports
from dpgkit.networks import Actor, Critic
from dpgkit.obs_norm import make_obs_norm
from dpgkit.prioritized import make_replay
from dpgkit.replay import ReplayBuffer

POLICIES = ("deployed", "current")
"""The policies of a trained agent to evaluate or export (``--policy``, the API's ``policy=``)."""


def frozen_copy(module: nn.Module) -> nn.Module:
    """A target network: a copy that never takes gradients and always runs in eval mode."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target.eval()


def _optimizer(params: list[nn.Parameter], name: str, lr: float, weight_decay: float
               ) -> torch.optim.Optimizer:
    if name == "adam":  # fused: one kernel for all parameters (same update as the for-loop one)
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay,
                                fused=torchops.has("fused_adam"))
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True)


class DDPGAgent:
    """Actor mu_theta, critic Q_w, their targets mu', Q', and the DDPG update.

    Args:
        obs_dim: size of a flat observation.
        action_dim: size of an action; actions are in [-1, 1] (rescaled at the env's edge).
        config: the settings; networks are initialised from ``config.seed``.
    """

    def __init__(self, obs_dim: int, action_dim: int, config: DDPGConfig) -> None:
        self.config = config
        self.obs_dim, self.action_dim = obs_dim, action_dim
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG state
            torch.manual_seed(config.seed)
            self.actor = Actor(obs_dim, action_dim, config.actor_hidden, config.batch_norm,
                               config.final_init, config.actor_layer_norm)
            self.critic = Critic(obs_dim, action_dim, config.critic_hidden,
                                 config.critic_action_layer, config.batch_norm, config.final_init)
        self.actor_target = frozen_copy(self.actor)
        self.critic_target = frozen_copy(self.critic)
        self.obs_norm = make_obs_norm(obs_dim, config)  # every network input passes through it
        self.actor_optimizer = _optimizer(list(self.actor.parameters()), config.optimizer,
                                          config.actor_lr, 0.0)
        critics, critic_targets = (list(nets) for nets in zip(*self.critic_pairs(), strict=True))
        self.critic_optimizer = _optimizer([p for c in critics for p in c.parameters()],
                                           config.optimizer, config.critic_lr,
                                           config.critic_weight_decay)
        self.updates = 0
        self.td_error = torch.zeros(0)  # y - Q_w(s, a) of the last critic update
        self.gradient_steps = self._gradient_steps(critics, critic_targets)

    def _gradient_steps(self, critics: list[Critic], critic_targets: list[Critic]
                        ) -> AutogradSteps | HandWrittenSteps:
        """The gradient steps, chosen once: by hand (:mod:`dpgkit.fastpath`) with
        ``fast_update`` where they know every layer of the networks, else autograd's."""
        networks = (self.actor, critics, self.actor_target, critic_targets,
                    self.actor_optimizer, self.critic_optimizer)
        if self.config.fast_update and supports(self.actor, *critics):
            return HandWrittenSteps(*networks, bf16=self.config.bf16)
        return AutogradSteps(*networks)

    def critic_pairs(self) -> list[tuple[Critic, Critic]]:
        """(online, target) for every critic: Q_w and Q' here (TD3 adds its second pair)."""
        return [(self.critic, self.critic_target)]

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """mu_theta(s) in [-1, 1]: (obs_dim,) -> (action_dim,), or (B, obs_dim) -> (B, action_dim).

        Deterministic: exploration noise is added by the caller. ``obs`` is raw: with
        ``normalize_obs`` it is normalised here (:mod:`dpgkit.obs_norm`).
        """
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        single = obs_t.ndim == 1
        action = self.gradient_steps.act(self.obs_norm(obs_t.unsqueeze(0) if single else obs_t))
        return action[0].numpy() if single else action.numpy()

    def update(self, batch: Batch) -> dict[str, float]:
        """One DDPG update on a batch: critic, then actor, then both targets."""
        critic_info = self.update_critic(batch)
        actor_info = self.update_actor(batch)
        self.update_targets()
        self.updates += 1
        return {**critic_info, **actor_info}

    def update_critic(self, batch: Batch) -> dict[str, float]:
        """One gradient step on critic_loss(Q_w(s, a), y), for every critic; keeps
        delta = y - Q_w(s, a) in ``td_error`` (for prioritized replay)."""
        with torch.no_grad():
            y = td_target(batch.reward, batch.terminated, self.next_q(batch.next_obs),
                          self.discount(batch))
        (q, *_), loss = self.gradient_steps.critic_step(batch.obs, batch.action, y,
                                                        batch.weights)
        self.td_error = (y - q).detach()
        return {"critic_loss": loss.item(), "q_mean": q.mean().item()}

    def update_actor(self, batch: Batch) -> dict[str, float]:
        """One gradient step on actor_loss(Q_w(s, mu_theta(s))), the critic held fixed."""
        return {"actor_loss": self.gradient_steps.actor_step(batch.obs).item()}

    def update_targets(self) -> None:
        """theta' <- tau theta + (1 - tau) theta' and w' <- tau w + (1 - tau) w'."""
        self.gradient_steps.soft_update(self.config.tau)

    def next_q(self, next_obs: Tensor) -> Tensor:
        """Q'(s', mu'(s')): the target critic at the target actor's action, shape (B,)."""
        (next_q,) = self.gradient_steps.target_q(
            next_obs, self.gradient_steps.target_action(next_obs))
        return next_q

    def discount(self, batch: Batch) -> float | Tensor:
        """gamma, or gamma^m per transition where the batch holds m-step returns."""
        return self.config.gamma if batch.steps is None else self.config.gamma ** batch.steps

    # --- what the loop asks the agent (TD7 answers differently; see dpgkit/td7.py) ---
    def make_replay(self, num_streams: int) -> ReplayBuffer:
        """The replay this agent learns from: uniform or prioritized, one- or n-step."""
        return make_replay(self.config, self.obs_dim, self.action_dim, num_streams)

    def warming_up(self, env_steps: int) -> bool:
        """Whether the behaviour policy still acts uniformly at random: the first
        ``warmup_steps`` env steps."""
        return env_steps < self.config.warmup_steps

    def learns_every_step(self, env_steps: int) -> bool:
        """Whether the loop updates after each env step now: after warm-up (or during it, with
        ``update_during_warmup``), unless updates come in bursts at episode ends."""
        return not self.config.update_at_episode_end and self.past_warmup(env_steps)

    def past_warmup(self, env_steps: int) -> bool:
        """Whether updates are due at ``env_steps``: after warm-up, or always with
        ``update_during_warmup``."""
        return self.config.update_during_warmup or env_steps > self.config.warmup_steps

    def on_episode_end(self, length: int, episode_return: float, env_steps: int) -> int:
        """The updates to run now that a training episode of ``length`` steps ended: with
        ``update_at_episode_end``, ``updates_per_step`` per step of it (the TD3 authors' 2018
        schedule); else none (an update after every env step instead)."""
        if not (self.config.update_at_episode_end and self.past_warmup(env_steps)):
            return 0
        return math.floor(length * self.config.updates_per_step)

    def episode_scalars(self) -> dict[str, float]:
        """TensorBoard scalars the agent reports at each training episode's end (TD7: its
        checkpoint bar); none for DDPG and TD3."""
        return {}

    def deployed_policy(self) -> nn.Module:
        """The network that is evaluated, exported and deployed, obs -> action in [-1, 1]."""
        return self.actor

    def deployed_act(self, obs: np.ndarray) -> np.ndarray:
        """The deployed policy's action, as :meth:`act` (the same for DDPG and TD3)."""
        return self.act(obs)

    def current_policy(self) -> nn.Module:
        """The policy being trained, the one :meth:`act` computes (before exploration noise):
        for DDPG and TD3 the deployed one; TD7 deploys a checkpointed policy instead."""
        return self.actor

    def chosen_policy(self, which: str) -> tuple[nn.Module, Callable[[np.ndarray], np.ndarray]]:
        """The network and the action function (raw obs -> action in [-1, 1]) of the policy
        named ``which``, one of :data:`POLICIES`: ``deployed`` (what evaluation and export use
        by default) or ``current`` (the one being trained)."""
        if which == "deployed":
            return self.deployed_policy(), self.deployed_act
        if which == "current":
            return self.current_policy(), self.act
        raise DpgkitError(f"policy must be one of {', '.join(POLICIES)}, got {which!r}")

    def acting_weights(self) -> dict[str, dict[str, np.ndarray]]:
        """What a copy of this agent elsewhere (a distributed actor) needs to act as it does:
        the actor's and the observation normaliser's tensors, as arrays."""
        return {name: {k: v.detach().numpy() for k, v in module.state_dict().items()}
                for name, module in (("actor", self.actor), ("obs_norm", self.obs_norm))}

    def load_acting_weights(self, weights: dict[str, dict[str, np.ndarray]]) -> None:
        """Load what :meth:`acting_weights` gave."""
        for name, module in (("actor", self.actor), ("obs_norm", self.obs_norm)):
            module.load_state_dict({k: torch.from_numpy(np.array(v))
                                    for k, v in weights[name].items()})

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by name (the keys used in checkpoints)."""
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer}

    def modules(self) -> dict[str, nn.Module]:
        """The four networks, and the observation normaliser, by name (the keys used in
        checkpoints; without ``normalize_obs`` the normaliser holds no tensor)."""
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "obs_norm": self.obs_norm}
