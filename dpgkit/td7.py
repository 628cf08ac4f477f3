"""TD7 (Fujimoto et al. 2023, "For SALE"): TD3 plus four named changes, and a hard target update.

1. SALE: encoders zs = f(s), zsa = g(zs, a) learn to predict the next zs
   (:func:`~dpgkit.equations.embedding_loss`), in :meth:`TD7Agent.update_encoder`; the actor and
   the critics read the embeddings of a *fixed* copy of the encoders (the one of the last hard
   update), the targets those of the copy before it.
2. LAP: transitions drawn with probability proportional to max(|delta|, 1)^alpha
   (:class:`~dpgkit.lap.LAPReplayBuffer`, :func:`~dpgkit.equations.lap_priority`), the critics
   trained on :func:`~dpgkit.equations.lap_huber_loss`, in :meth:`TD7Agent.update_critic`.
3. Target clipping: Q' clipped to the range of targets seen
   (:func:`~dpgkit.equations.value_clipped_td_target`, :func:`~dpgkit.equations.
   widened_value_range`), in :meth:`TD7Agent.td_target`.
4. Policy checkpoints: training in bursts at episode ends; the policy that is evaluated and
   deployed is the last one whose worst return over its assessment beat the checkpoint's
   (:func:`~dpgkit.equations.should_checkpoint`), in :meth:`TD7Agent.on_episode_end`.

Instead of TD3's soft update, every target (and the fixed encoders, the value range and LAP's
running maximum) is copied every ``target_update_every_updates`` updates
(:meth:`TD7Agent.update_targets`). One update, in the authors' order (sfujim/TD7, ``TD7.py``):
encoder step, target, critic step and priorities, actor step (every ``policy_delay``-th), hard
update (every ``target_update_every_updates``-th).

TD7's networks are not plain ReLU MLPs (AvgL1Norm, ELU, embeddings as inputs): the hand-written
fast path does not cover them, and TD7 runs on autograd (``fast_update`` does not apply). Measured
(benchmarks/speed_td7.py, docs/speed.md): on autograd its update already reaches 64% of its
matrix products' rate on one thread; a hand-written path doing what DDPG's does would gain ~1.2x.
"""

import numpy as np
import torch
from torch import Tensor, nn

from dpgkit.agent import _optimizer, frozen_copy
from dpgkit.autograd_steps import gradient_step
from dpgkit.batch import Batch
from dpgkit.equations import (
    actor_loss,
    clipped_double_q,
    embedding_loss,
    lap_huber_loss,
    reset_best_min_return,
    should_checkpoint,
    should_end_assessment,
    smoothed_target_action,
    value_clipped_td_target,
    widened_value_range,
)
from dpgkit.lap import LAPReplayBuffer
from dpgkit.obs_norm import make_obs_norm
from dpgkit.replay import ReplayBuffer
from dpgkit.td3 import TD3Agent
from dpgkit.td7_config import TD7Config
from dpgkit.td7_networks import SALEEncoder, TD7Actor, TD7Critic, TD7Policy

COUNTERS = ("warmup_end_env_steps", "assessed_episodes", "assessed_env_steps", "min_return",
            "best_min_return", "max_assessed_episodes", "value_min", "value_max",
            "value_min_target", "value_max_target")
"""TD7's state beside its networks and optimisers (checkpointed by :mod:`dpgkit.resume`)."""


class TD7Agent(TD3Agent):
    """TD3 with SALE, LAP, target clipping and policy checkpoints (see the module).

    TD3's constructor builds MLP critics; this one builds TD7's networks instead (so it does not
    call it), and everything TD3 names keeps its name: ``critic2``, the targets, ``generator``
    (the target-smoothing noise), ``updates`` (the authors' ``training_steps``).
    """

    config: TD7Config

    def __init__(self, obs_dim: int, action_dim: int, config: TD7Config) -> None:
        self.config, self.obs_dim, self.action_dim = config, obs_dim, action_dim
        c, z = config, config.zs_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            self.actor = TD7Actor(obs_dim, action_dim, z, c.actor_hidden[0], c.actor_activation)
            self.critic, self.critic2 = (
                TD7Critic(obs_dim, action_dim, z, c.critic_hidden[0], c.critic_activation)
                for _ in range(2))
            self.encoder = SALEEncoder(obs_dim, action_dim, z, c.encoder_hidden,
                                       c.encoder_activation)
        self.actor_target, self.critic_target, self.critic2_target = (
            frozen_copy(net) for net in (self.actor, self.critic, self.critic2))
        self.fixed_encoder, self.fixed_encoder_target, self.checkpoint_encoder = (
            frozen_copy(self.encoder) for _ in range(3))
        self.checkpoint_actor = frozen_copy(self.actor)
        self.obs_norm = make_obs_norm(obs_dim, config)  # the encoders read normalised obs too
        self.actor_optimizer = _optimizer(list(self.actor.parameters()), c.optimizer,
                                          c.actor_lr, 0.0)
        self.critic_optimizer = _optimizer(
            [*self.critic.parameters(), *self.critic2.parameters()], c.optimizer, c.critic_lr,
            c.critic_weight_decay)
        self.encoder_optimizer = _optimizer(list(self.encoder.parameters()), c.optimizer,
                                            c.encoder_lr, 0.0)
        self.generator = torch.Generator().manual_seed(c.seed)
        self.replay: LAPReplayBuffer | None = None  # set by make_replay; priorities go there
        self.updates = 0
        self.td_error = torch.zeros(0)  # (B, 2): y - Q_k(s, a) of the last critic update
        self.warmup_end_env_steps: int | None = None  # when random acting stopped
        self.assessed_episodes, self.assessed_env_steps = 0, 0
        self.min_return, self.best_min_return = 1e8, -1e8
        self.max_assessed_episodes = c.checkpoint_early_episodes
        self.value_min, self.value_max = 1e8, -1e8  # the range of targets seen (empty)
        self.value_min_target, self.value_max_target = 0.0, 0.0  # its copy at the hard update

    def make_replay(self, num_streams: int) -> ReplayBuffer:
        """TD7's replay is LAP's (change 2); the agent keeps it to update its priorities."""
        c = self.config
        self.replay = LAPReplayBuffer(c.replay_size, self.obs_dim, self.action_dim, num_streams,
                                      1, c.gamma, c.lap_alpha, c.lap_min_priority)
        return self.replay

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """mu(s, f(s)) of the current actor and the fixed encoder (the behaviour policy)."""
        return _act(self.current_policy(), self.obs_norm, obs)

    def current_policy(self) -> nn.Module:
        """The current actor with the fixed encoder it acts with: the one being trained."""
        return TD7Policy(self.fixed_encoder, self.actor)

    def deployed_policy(self) -> nn.Module:
        """The checkpointed policy (change 4), or with checkpoints off the current one."""
        if self.config.policy_checkpoints:
            return TD7Policy(self.checkpoint_encoder, self.checkpoint_actor)
        return TD7Policy(self.fixed_encoder, self.actor)

    @torch.no_grad()
    def deployed_act(self, obs: np.ndarray) -> np.ndarray:
        return _act(self.deployed_policy(), self.obs_norm, obs)

    def update(self, batch: Batch) -> dict[str, float]:
        """One TD7 update, in the authors' order (see the module)."""
        c = self.config
        if self.updates == c.checkpoint_late_after_updates:  # change 4: longer assessments
            self.best_min_return = reset_best_min_return(self.best_min_return,
                                                         c.checkpoint_reset_weight)
            self.max_assessed_episodes = c.checkpoint_late_episodes
        self.updates += 1
        self.update_encoder(batch)
        info = self.update_critic(batch)
        if self.updates % c.policy_delay == 0:
            info |= self.update_actor(batch)
        if self.updates % c.target_update_every_updates == 0:
            self.update_targets()
        return info

    # change 1: SALE
    def update_encoder(self, batch: Batch) -> Tensor:
        """One step on embedding_loss(g(f(s), a), f(s')), f(s') of the online encoder held
        fixed; the gradient reaches the encoders only. Returns the loss (not a metrics.csv
        column: the columns are DDPG's)."""
        with torch.no_grad():
            next_zs = self.encoder.zs(batch.next_obs)
        loss = embedding_loss(self.encoder(batch.obs, batch.action), next_zs)
        gradient_step(self.encoder_optimizer, loss)
        return loss.detach()

    # change 3: target clipping (and the target reads the fixed target encoder)
    @torch.no_grad()
    def td_target(self, batch: Batch) -> Tensor:
        """y = r + gamma (1 - terminated) clip(min_k Q'_k(s', a~, zsa', zs'), range), with
        zs' = f_target(s'), a~ the smoothed mu'(s', zs'); the range seen widens with y."""
        zs = self.fixed_encoder_target.zs(batch.next_obs)
        action = self.actor_target(batch.next_obs, zs)
        epsilon = self.config.target_noise * torch.randn(
            action.shape, generator=self.generator, dtype=action.dtype)
        action = smoothed_target_action(action, epsilon, self.config.target_noise_clip)
        zsa = self.fixed_encoder_target.zsa(zs, action)
        next_q = clipped_double_q(self.critic_target(batch.next_obs, action, zsa, zs),
                                  self.critic2_target(batch.next_obs, action, zsa, zs))
        y = value_clipped_td_target(batch.reward, batch.terminated, next_q,
                                    self.discount(batch), self.value_min_target,
                                    self.value_max_target)
        self.value_min, self.value_max = widened_value_range(self.value_min, self.value_max, y)
        return y

    # change 2: LAP
    def update_critic(self, batch: Batch) -> dict[str, float]:
        """One step on lap_huber_loss(y - Q_k(s, a, zsa, zs)) for both critics, the embeddings
        from the fixed encoder; then LAP's priorities from these (pre-step) TD errors."""
        y = self.td_target(batch)
        with torch.no_grad():
            zs = self.fixed_encoder.zs(batch.obs)
            zsa = self.fixed_encoder.zsa(zs, batch.action)
        q = torch.stack([critic(batch.obs, batch.action, zsa, zs)
                         for critic in (self.critic, self.critic2)], dim=1)
        td_error = y.unsqueeze(1) - q
        loss = lap_huber_loss(td_error, self.config.lap_min_priority)
        gradient_step(self.critic_optimizer, loss)
        self.td_error = td_error.detach()
        if self.replay is not None and batch.indices is not None:
            self.replay.update_priorities(batch.indices, self.td_error.numpy())
        return {"critic_loss": loss.item(), "q_mean": q.mean().item()}

    def update_actor(self, batch: Batch) -> dict[str, float]:
        """One step on -mean over the batch and both critics of Q_k(s, mu, g(zs, mu), zs),
        zs from the fixed encoder; the critics are frozen, the gradient reaches mu through the
        fixed encoder's g."""
        with torch.no_grad():
            zs = self.fixed_encoder.zs(batch.obs)
        critics = (self.critic, self.critic2)
        for critic in critics:
            critic.requires_grad_(False)
        try:
            mu = self.actor(batch.obs, zs)
            zsa = self.fixed_encoder.zsa(zs, mu)
            q = torch.stack([critic(batch.obs, mu, zsa, zs) for critic in critics], dim=1)
            loss = actor_loss(q.mean(dim=1))
            gradient_step(self.actor_optimizer, loss)
        finally:
            for critic in critics:
                critic.requires_grad_(True)
        return {"actor_loss": loss.item()}

    def update_targets(self) -> None:
        """The hard update, in order: mu' <- mu, Q'_k <- Q_k, f_target <- f_fixed, f_fixed <- f
        (the online encoder), LAP's maximum priority reset, value range target <- range seen."""
        for target, online in ((self.actor_target, self.actor),
                               (self.critic_target, self.critic),
                               (self.critic2_target, self.critic2),
                               (self.fixed_encoder_target, self.fixed_encoder),
                               (self.fixed_encoder, self.encoder)):
            target.load_state_dict(online.state_dict())
        if self.replay is not None:
            self.replay.reset_max_priority()
        self.value_min_target, self.value_max_target = self.value_min, self.value_max

    # change 4: policy checkpoints (and TD7's warm-up)
    def warming_up(self, env_steps: int) -> bool:
        """Random actions until the first episode that ends past ``warmup_steps``."""
        return self.warmup_end_env_steps is None

    def learns_every_step(self, env_steps: int) -> bool:
        """With policy checkpoints, never (bursts instead); else after the warm-up."""
        return (not self.config.policy_checkpoints and self.warmup_end_env_steps is not None
                and env_steps > self.warmup_end_env_steps)

    def on_episode_end(self, length: int, episode_return: float, env_steps: int) -> int:
        """The checkpoint rule: count the episode into the current policy's assessment; if its
        worst return fell below the checkpoint's, end the assessment; if it played all its
        episodes and env steps, checkpoint it. Either way return a burst, one update per env
        step since the last; else 0. The warm-up's episodes are not counted."""
        if self.warmup_end_env_steps is None:
            if env_steps > self.config.warmup_steps:
                self.warmup_end_env_steps = env_steps
            return 0
        if not self.config.policy_checkpoints:
            return 0
        self.assessed_episodes += 1
        self.assessed_env_steps += length
        self.min_return = min(self.min_return, episode_return)
        if should_checkpoint(self.min_return, self.best_min_return, self.assessed_episodes,
                             self.max_assessed_episodes, self.assessed_env_steps,
                             self.config.checkpoint_min_steps):
            self.best_min_return = self.min_return
            self.checkpoint_policy()
        elif not should_end_assessment(self.min_return, self.best_min_return):
            return 0  # the assessment goes on
        burst = self.assessed_env_steps
        self.assessed_episodes, self.assessed_env_steps, self.min_return = 0, 0, 1e8
        return burst

    def episode_scalars(self) -> dict[str, float]:
        """``checkpoint_bar``: the worst assessed return of the deployed (checkpointed) policy,
        the return a new policy must match to replace it; a rise marks a new deployed policy.
        None until the first checkpoint."""
        if not self.config.policy_checkpoints or self.best_min_return <= -1e8:
            return {}
        return {"checkpoint_bar": self.best_min_return}

    def checkpoint_policy(self) -> None:
        """checkpoint actor <- mu, checkpoint encoder <- the fixed encoder (the one mu acted
        with)."""
        self.checkpoint_actor.load_state_dict(self.actor.state_dict())
        self.checkpoint_encoder.load_state_dict(self.fixed_encoder.state_dict())

    def counters(self) -> dict[str, float | int | None]:
        """The state of :data:`COUNTERS`, JSON-ready."""
        return {name: getattr(self, name) for name in COUNTERS}

    def load_counters(self, saved: dict[str, float | int | None]) -> None:
        for name in COUNTERS:
            setattr(self, name, saved[name])

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**super().optimizers(), "encoder": self.encoder_optimizer}

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "encoder": self.encoder, "fixed_encoder": self.fixed_encoder,
                "fixed_encoder_target": self.fixed_encoder_target,
                "checkpoint_actor": self.checkpoint_actor,
                "checkpoint_encoder": self.checkpoint_encoder}


def _act(policy: nn.Module, obs_norm: nn.Module, obs: np.ndarray) -> np.ndarray:
    """(obs_dim,) -> (action_dim,) or (B, obs_dim) -> (B, action_dim), of raw observations."""
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    action = policy(obs_norm(obs_t.reshape(-1, obs_t.shape[-1])))
    return action[0].numpy() if obs_t.ndim == 1 else action.numpy()
