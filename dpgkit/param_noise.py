"""Parameter-space noise (Plappert et al. 2018, "Parameter Space Noise for Exploration"): a
perturbed copy of the actor acts, instead of noise added to its action.

    at each episode start of env i:   theta~_i = theta + N(0, sigma^2 I)   (every weight and bias)
    each step:                        a_i = mu_{theta~_i}(s_i)             (no action noise)
    every adapt_every_steps steps:    d = action_distance(mu_theta(S), mu_{theta~}(S))
                                      sigma = adapt_param_noise_scale(sigma, d, delta, alpha)

S is a batch of the most recent states acted on (``param_noise_states`` of them) and theta~ a
fresh perturbation of the current actor drawn for the measurement (the paper's "adaptive" copy).
The target distance delta is ``gaussian_sigma``: for DDPG the paper sets delta to the standard
deviation of the Gaussian action noise the perturbation stands in for, so ``--gaussian_sigma
0.2`` explores about as widely in action space with either kind. The noise schedule
(``noise_decay``) and distributed actors' ``actor_noise_spread`` scale delta, as they scale
the other kinds' noise scale (``sigma`` of this class, set by :class:`~dpgkit.acting.Acting`).

Deviations, written down: layer-norm gains and biases are not perturbed (as in the paper's code,
OpenAI baselines); sigma adapts every ``adapt_every_steps`` acting steps on the recent states
rather than once per training cycle on a replay batch; with ``num_envs`` envs each env has its
own perturbed copy, resampled at its own episode starts, and one sigma is shared by all.

Draws come from the noise generator (numpy), so a run is reproducible from its seed; the copies,
sigma and the recent states are in the checkpoint (:meth:`state`, :meth:`load_state`).
"""

import copy

import numpy as np
import torch
from torch import Tensor, nn

from dpgkit.equations import action_distance, adapt_param_noise_scale


class ParameterNoise:
    """Per-env perturbed copies of the actor and the adaptive scale of their perturbation.

    Args:
        delta: the target RMS action distance (``gaussian_sigma``).
        initial_sigma: the perturbation's std before any adaptation.
        alpha: the adaptation factor (> 1).
        adapt_every_steps: acting steps between two adaptations.
        states: the recent states kept for measuring the distance.
        rng: draws every perturbation.
        num_envs: envs acting together, one perturbed copy each.
    """

    def __init__(self, delta: float, initial_sigma: float, alpha: float, adapt_every_steps: int,
                 states: int, rng: np.random.Generator, num_envs: int) -> None:
        self.sigma = delta  # the target distance: the scale that schedules and spreads set
        self.param_sigma = initial_sigma
        self.alpha, self.adapt_every_steps, self.rng = alpha, adapt_every_steps, rng
        self.capacity, self.num_envs = states, num_envs
        self.last_distance = float("nan")
        self.acting_steps = 0
        self.stale = np.ones(num_envs, dtype=bool)  # envs whose copy is due a new perturbation
        self.actors: list[nn.Module] = []  # the perturbed copies, made at the first act
        self.recent = torch.zeros(0)
        self.recent_count = 0

    def reset(self, env_index: int | None = None) -> None:
        """A new episode of env ``env_index`` (or all): its copy is perturbed afresh before it
        next acts."""
        self.stale[slice(None) if env_index is None else env_index] = True

    def act(self, actor: nn.Module, obs: np.ndarray) -> np.ndarray:
        """The perturbed copies' actions for a batch of envs, (num_envs, action_dim) in [-1, 1];
        adapts sigma when due, then perturbs the copies of envs that started an episode."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32)
        if not self.actors:
            self._make_copies(actor, obs_t.shape[1])
        self._remember(obs_t)
        self.acting_steps += 1
        with torch.no_grad():
            if self.acting_steps % self.adapt_every_steps == 0:
                self.adapt(actor)
            for i in np.flatnonzero(self.stale):
                self.perturb(actor, self.actors[i])
                self.stale[i] = False
            return torch.cat([copy_(obs_t[i:i + 1]) for i, copy_ in enumerate(self.actors)]
                             ).numpy()

    def perturb(self, actor: nn.Module, perturbed: nn.Module) -> None:
        """theta~ = theta + N(0, param_sigma^2) into ``perturbed``, for every weight and bias
        outside layer norms (theirs are copied)."""
        draws = torch.from_numpy(self.rng.standard_normal(self.perturbed_size, np.float32))
        offset = 0
        for source, target, perturbable in zip(actor.parameters(), perturbed.parameters(),
                                               self.perturbable, strict=True):
            target.copy_(source)
            if perturbable:
                draw = draws[offset:offset + source.numel()].view_as(source)
                target.add_(draw, alpha=self.param_sigma)
                offset += source.numel()

    def adapt(self, actor: nn.Module) -> None:
        """sigma <- adapt_param_noise_scale(sigma, d, delta, alpha), with d the distance between
        the actor and a fresh perturbation of it on the recent states."""
        states = self.recent[: min(self.recent_count, self.capacity)]
        self.perturb(actor, self.probe)
        self.last_distance = action_distance(actor(states), self.probe(states))
        self.param_sigma = adapt_param_noise_scale(self.param_sigma, self.last_distance,
                                                   self.sigma, self.alpha)

    def _make_copies(self, actor: nn.Module, obs_dim: int) -> None:
        self.perturbable = [_perturbable(actor, name) for name, _ in actor.named_parameters()]
        self.perturbed_size = sum(p.numel() for p, keep in zip(
            actor.parameters(), self.perturbable, strict=True) if keep)
        self.actors = [_detached_copy(actor) for _ in range(self.num_envs)]
        self.probe = _detached_copy(actor)
        self.recent = torch.zeros(self.capacity, obs_dim)

    def _remember(self, obs: Tensor) -> None:
        rows = torch.arange(self.recent_count, self.recent_count + len(obs)) % self.capacity
        self.recent[rows] = obs
        self.recent_count += len(obs)

    # --- checkpoint ---
    def state(self) -> tuple[dict[str, Tensor], dict[str, object]]:
        """Tensors (the copies' parameters, the recent states) and JSON (sigma, counters)."""
        tensors = {f"param_noise.actor{i}.{name}": value.detach().clone()
                   for i, copy_ in enumerate(self.actors)
                   for name, value in copy_.state_dict().items()}
        if self.actors:
            tensors["param_noise.recent"] = self.recent.clone()
        meta = {"param_sigma": self.param_sigma, "acting_steps": self.acting_steps,
                "recent_count": self.recent_count, "stale": self.stale.tolist(),
                "last_distance": self.last_distance, "copies": len(self.actors)}
        return tensors, meta

    def load_state(self, tensors: dict[str, Tensor], meta: dict[str, object],
                   actor: nn.Module) -> None:
        """The inverse of :meth:`state`; ``actor`` is the run's (restored) actor."""
        self.param_sigma = float(meta["param_sigma"])
        self.acting_steps, self.recent_count = int(meta["acting_steps"]), int(
            meta["recent_count"])
        self.stale = np.array(meta["stale"], dtype=bool)
        self.last_distance = float(meta["last_distance"])
        if int(meta["copies"]):
            recent = tensors["param_noise.recent"]
            self._make_copies(actor, recent.shape[1])
            self.recent = recent.clone()
            for i, copy_ in enumerate(self.actors):
                prefix = f"param_noise.actor{i}."
                copy_.load_state_dict({k[len(prefix):]: v for k, v in tensors.items()
                                       if k.startswith(prefix)})


def _perturbable(actor: nn.Module, name: str) -> bool:
    """Whether parameter ``name`` of ``actor`` is perturbed: all but layer norms'."""
    owner = actor.get_submodule(name.rsplit(".", 1)[0]) if "." in name else actor
    return not isinstance(owner, nn.LayerNorm)


def _detached_copy(actor: nn.Module) -> nn.Module:
    """A copy of ``actor`` with parameters of its own (never views of the actor's flat tensor,
    dpgkit.fastpath) that take no gradient."""
    duplicate = copy.deepcopy(actor)
    for parameter in duplicate.parameters():
        parameter.data = parameter.data.clone()
    return duplicate.requires_grad_(False)
