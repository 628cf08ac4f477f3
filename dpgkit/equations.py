"""The equations of DDPG, one small pure function each.

Each docstring opens with the formula the function computes, in the notation of the tutorial deck
and of Lillicrap et al. (2016), "Continuous control with deep reinforcement learning". The agent's
update (``dpgkit.agent``) only calls these functions, so it reads like Algorithm 1 of the paper.
``docs/equations.md`` maps every equation to its function and to the test that checks it.

Only torch and numpy are imported here: no environment, no network, no training loop.
"""

import math

import numpy as np
import torch
from torch import Tensor, nn

from dpgkit import torchops


def td_target(reward: Tensor, terminated: Tensor, next_q: Tensor, gamma: float | Tensor
              ) -> Tensor:
    """y = r + gamma * (1 - terminated) * Q'(s', mu'(s')).

    The critic's regression target (the deck's "DDPG target"). ``next_q`` is the *target* critic at
    the *target* actor's action, Q'(s', mu'(s')), and must be computed without gradient. Only a true
    terminal state (``terminated = 1``) cuts the bootstrap: a time-limit truncation is not an end of
    the task, so a truncated transition is stored with ``terminated = 0`` and still bootstraps.

    With n-step returns, ``reward`` is the m-step return R (:func:`n_step_return`), s' the
    state m steps on, and ``gamma`` the tensor gamma^m: y = R + gamma^m (1 - terminated) Q'(s', .).

    Shapes: all (B,) except ``gamma``, a float in [0, 1] (or a (B,) tensor of them).
    """
    return reward + gamma * (1.0 - terminated) * next_q


def n_step_return(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_{k=0}^{m-1} gamma^k * r_{t+k}, with m <= n.

    The n-step return (Sutton & Barto, section 7.1) of each row of ``rewards`` (B, n), whose
    entries past the episode's end (or past the newest stored step) are NaN, so m is the number
    of leading non-NaN entries. Bootstrapped with gamma^m in :func:`td_target`.
    """
    discounts = gamma ** np.arange(rewards.shape[1], dtype=np.float64)
    return np.nansum(rewards * discounts, axis=1)


def sampling_priority(td_error: np.ndarray, epsilon: float) -> np.ndarray:
    """p_i = |delta_i| + epsilon, with delta_i = y_i - Q_w(s_i, a_i).

    A transition's priority in prioritized replay (Schaul et al. 2016, proportional variant); it
    is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha. ``epsilon`` > 0 keeps every
    stored transition drawable.
    """
    return np.abs(td_error) + epsilon


def importance_weights(probability: np.ndarray, min_probability: float, beta: float
                       ) -> np.ndarray:
    """w_i = (N P(i))^-beta / max_j (N P(j))^-beta = (P(i) / min_j P(j))^-beta.

    The importance weights that undo, in expectation, the bias of drawing transition i with
    probability P(i) instead of 1/N (fully at beta = 1); normalised by the largest weight in the
    buffer so that they only ever scale the update down. Shapes: ``probability`` (B,).
    """
    return (probability / min_probability) ** -beta


def critic_loss(q: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """L(w) = 1/B * sum_i w_i * (Q_w(s_i, a_i) - y_i)^2, with w_i = 1 unless prioritized.

    Mean squared TD error of the critic on a batch (weighted by the importance weights of
    prioritized replay, :func:`importance_weights`, when given). ``y`` is a fixed target: no
    gradient flows into it (it is detached here as well, in case a caller forgot
    ``torch.no_grad``).

    Shapes: ``q`` and ``y`` both (B,); a (B, 1) against (B,) mix-up would broadcast to (B, B)
    silently, so it is refused.
    """
    if q.shape != y.shape:
        raise ValueError(f"critic_loss: Q has shape {tuple(q.shape)} but y has {tuple(y.shape)}")
    if weights is None:
        return (q - y.detach()).pow(2).mean()
    return (weights * (q - y.detach()).pow(2)).mean()


def critic_loss_grad(q: Tensor, y: Tensor, weights: Tensor | None = None) -> Tensor:
    """dL/dq_i = 2/B * w_i * (q_i - y_i), with w_i = 1 unless prioritized.

    The gradient of :func:`critic_loss` with respect to its input ``q``, which the hand-written
    update (:mod:`dpgkit.fastpath`) carries back through the critic's layers. Change the loss and
    this changes with it: ``tests/test_equations.py`` checks each against autograd.

    Shapes: ``q``, ``y`` and ``weights`` (B,) -> (B,).
    """
    scale = 2.0 / q.shape[0] if weights is None else weights * (2.0 / q.shape[0])
    return (q - y) * scale


def actor_loss(q_of_mu: Tensor) -> Tensor:
    """L(theta) = -1/B * sum_i Q_w(s_i, mu_theta(s_i)).

    Minimising it ascends the deterministic policy gradient (Silver et al. 2014, Theorem 1):
    grad_theta J = E_s[ grad_theta mu_theta(s) * grad_a Q_w(s, a) at a = mu_theta(s) ].
    Autograd applies the chain rule through a = mu_theta(s); the critic's own parameters must be
    frozen by the caller so that this loss moves the actor only.

    Shapes: ``q_of_mu`` (B,), the critic evaluated at the actor's actions.
    """
    return -q_of_mu.mean()


def actor_loss_grad(q_of_mu: Tensor) -> Tensor:
    """dL/dQ_i = -1/B for every i.

    The gradient of :func:`actor_loss` with respect to its input Q_w(s_i, mu_theta(s_i)); the
    hand-written update carries it back through the critic to its action input, then through the
    actor (the chain rule of the DPG theorem). Checked against autograd.

    Shapes: ``q_of_mu`` (B,) -> (B,), or the critic's raw (B, 1) -> (B, 1) (same layout).
    """
    return torch.full_like(q_of_mu, -1.0 / q_of_mu.shape[0])


def clipped_double_q(next_q1: Tensor, next_q2: Tensor) -> Tensor:
    """Q'(s', a~) = min(Q'_1(s', a~), Q'_2(s', a~)).

    TD3's first change (Fujimoto et al. 2018, "clipped double Q-learning"): the target uses the
    smaller of two independently trained target critics, which counters Q's overestimation.

    Shapes: (B,) and (B,) -> (B,).
    """
    return torch.minimum(next_q1, next_q2)


def smoothed_target_action(next_action: Tensor, noise: Tensor, noise_clip: float) -> Tensor:
    """a~ = clip(mu'(s') + clip(epsilon, -c, c), -1, 1), with epsilon ~ N(0, sigma^2).

    TD3's second change ("target policy smoothing"): the target action is perturbed by clipped
    noise, drawn independently per element, so Q' is fitted over a small neighbourhood of mu'(s')
    and sharp peaks of the critic cannot be exploited. ``noise`` is the draw epsilon (already
    scaled by sigma); the result stays in dpgkit's action range [-1, 1].

    Shapes: (B, action_dim) for both tensors.
    """
    return (next_action + noise.clamp(-noise_clip, noise_clip)).clamp(-1.0, 1.0)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """theta' <- tau * theta + (1 - tau) * theta'.

    Polyak averaging of the target network toward the online network, in place. ``tau`` is the
    weight on the *online* network: tau << 1 makes the target move slowly; tau = 1 is a hard copy.
    Floating-point buffers (batch-norm running statistics) follow the same rule; integer buffers
    (batch-norm's step counter) are copied.
    """
    with torch.no_grad():
        target_floats, source_floats = [], []
        for t, s in zip(_tensors(target), _tensors(source), strict=True):
            if t.is_floating_point():
                target_floats.append(t)
                source_floats.append(s)
            else:
                t.copy_(s)
        torchops.lerp_(target_floats, source_floats, tau)


def _tensors(module: nn.Module) -> list[Tensor]:
    return [*module.parameters(), *module.buffers()]


def ou_step(
    x: np.ndarray, theta: float, mu: float, sigma: float, dt: float, noise: np.ndarray
) -> np.ndarray:
    """x_{t+dt} = x_t + theta * (mu - x_t) * dt + sigma * sqrt(dt) * N(0, 1).

    One Euler-Maruyama step of the Ornstein-Uhlenbeck process dx = theta (mu - x) dt + sigma dW.
    ``noise`` is the standard normal draw N(0, 1), passed in so the step is a pure function. The
    process reverts to ``mu`` at rate ``theta``; its stationary variance is sigma^2 / (2 theta)
    (for small dt), and successive values are correlated over about 1 / (theta * dt) steps.
    """
    return x + theta * (mu - x) * dt + sigma * math.sqrt(dt) * noise


def action_distance(action: Tensor, perturbed_action: Tensor) -> float:
    """d(pi, pi~) = sqrt(1/(B D) * sum_i sum_k (mu(s_i)_k - mu~(s_i)_k)^2).

    The root-mean-square distance between the actions of the actor mu and of its parameter-space
    perturbation mu~ on a batch of B states (D action dimensions): Plappert et al. (2018),
    "Parameter Space Noise for Exploration", section 3 (DDPG). Both (B, D), in [-1, 1].
    """
    return math.sqrt(torch.mean((action - perturbed_action) ** 2).item())


def adapt_param_noise_scale(sigma: float, distance: float, delta: float, alpha: float) -> float:
    """sigma_{k+1} = alpha * sigma_k if d(pi, pi~) <= delta, else sigma_k / alpha.

    The adaptive scale of parameter-space noise (Plappert et al. 2018, section 3): the
    perturbation grows while the perturbed actor acts closer to the actor than the target
    distance delta, and shrinks while it acts farther (alpha = 1.01 in the paper).
    """
    return sigma * alpha if distance <= delta else sigma / alpha


def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """a_env = low + (a + 1) * (high - low) / 2.

    Maps dpgkit's internal action in [-1, 1] (the range of the actor's tanh) to the environment's
    Box bounds, per dimension, so asymmetric bounds work. Used only at the environment's edge.
    """
    return low + (action + 1.0) * (high - low) / 2.0


def unscale_action(env_action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """a = 2 * (a_env - low) / (high - low) - 1.

    The inverse of :func:`scale_action`: an environment action back to [-1, 1].
    """
    return 2.0 * (env_action - low) / (high - low) - 1.0


# --- TD7 (Fujimoto et al. 2023) ---
# "For SALE: State-Action Representation Learning for Deep Reinforcement Learning" (NeurIPS 2023):
# TD3 plus SALE embeddings, LAP replay, target clipping and policy checkpoints. Each function
# below is one rule of that method, with the settings of the authors' code (sfujim/TD7, TD7.py).


def merged_moments(count: float, mean: np.ndarray, var: np.ndarray, batch_count: float,
                   batch_mean: np.ndarray, batch_var: np.ndarray
                   ) -> tuple[float, np.ndarray, np.ndarray]:
    """n = n_a + n_b;  delta = mean_b - mean_a;  mean = mean_a + delta n_b / n;
    var = (var_a n_a + var_b n_b + delta^2 n_a n_b / n) / n.

    The mean and (population) variance of two sets of observations merged, from each set's
    count, mean and variance (Chan, Golub & LeVeque 1979, the parallel form of Welford's
    update): numerically stable where sum(x^2) / n - mean^2 cancels catastrophically, and exact
    for a first set of count 0. The running statistics of observation normalisation
    (:class:`dpgkit.obs_norm.ObsNormalizer`). Per dimension; counts are scalars.
    """
    total = count + batch_count
    delta = batch_mean - mean
    merged_mean = mean + delta * (batch_count / total)
    sum_of_squares = var * count + batch_var * batch_count + delta ** 2 * (count * batch_count
                                                                         / total)
    return total, merged_mean, sum_of_squares / total


def normalized_obs(obs: Tensor, mean: Tensor, var: Tensor, clip: float, eps: float = 1e-8
                   ) -> Tensor:
    """s_norm = clip((s - mean) / sqrt(var + eps), -c, c).

    An observation in the units of its running statistics (:func:`merged_moments`), clipped to
    [-c, c] so that one outlier cannot blow up the networks' inputs (c = ``obs_clip``, 10 by
    default, as Stable-Baselines3's VecNormalize). ``eps`` keeps a constant dimension (var 0)
    finite: it maps to 0.
    """
    return torch.clamp((obs - mean) / torch.sqrt(var + eps), -clip, clip)


def avg_l1_norm(x: Tensor, eps: float = 1e-8) -> Tensor:
    """AvgL1Norm(x) = x / max(1/D * sum_i |x_i|, eps), over the last dimension (size D).

    Scales each row to a mean absolute value of 1 (the authors' ``AvgL1Norm``), so an embedding
    or a first layer's features keep one scale however the weights before it grow or shrink.
    ``eps`` guards an all-zero row (which stays zero).

    Shapes: (..., D) -> (..., D).
    """
    return x / x.abs().mean(dim=-1, keepdim=True).clamp(min=eps)


def embedding_loss(predicted_next_zs: Tensor, next_zs: Tensor) -> Tensor:
    """L(f, g) = 1/(B D) * sum_i || g(f(s_i), a_i) - f(s'_i) ||^2, with f(s') held fixed.

    SALE's encoder loss (TD7's Eq. 2): the state-action embedding zsa = g(zs, a) is trained to
    predict the next state's embedding zs' = f(s'). The target zs' is a constant (in the authors'
    code the online encoder's f(s') under ``torch.no_grad``); it is detached here as well.

    Shapes: both (B, zs_dim); a mismatch is refused rather than broadcast.
    """
    if predicted_next_zs.shape != next_zs.shape:
        raise ValueError(f"embedding_loss: prediction has shape {tuple(predicted_next_zs.shape)}"
                         f" but the target has {tuple(next_zs.shape)}")
    return (predicted_next_zs - next_zs.detach()).pow(2).mean()


def lap_huber_loss(td_error: Tensor, min_priority: float) -> Tensor:
    """L = 1/B * sum_i sum_k h(|delta_ik|), h(x) = 0.5 x^2 if x < kappa else kappa x, kappa =
    min_priority.

    The critic loss that LAP pairs with (Fujimoto, Meger & Precup 2020): a squared error for
    small TD errors and an absolute one for large. With kappa = 1 and sampling by priority
    max(|delta|, 1)^alpha (:func:`lap_priority`) at alpha = 1, its expected gradient is
    proportional to the mean squared error's under uniform sampling (p_i h'(delta_i) = delta_i);
    TD7's alpha = 0.4 lies between that and the Huber loss under uniform sampling (alpha = 0).
    As in the authors' ``LAP_huber`` it is summed over the critics k and averaged over the batch,
    and it has no constant -0.5 kappa^2 in its linear part (the value jumps at |delta| = kappa,
    the gradient does not).

    Shapes: ``td_error`` (B, K), delta_ik = y_i - Q_k(s_i, a_i) for each of K critics.
    """
    if td_error.ndim != 2:
        raise ValueError(f"lap_huber_loss: need TD errors of shape (B, critics), got "
                         f"{tuple(td_error.shape)}")
    x = td_error.abs()
    return torch.where(x < min_priority, 0.5 * x.pow(2), min_priority * x).sum(dim=1).mean()


def lap_priority(td_error: np.ndarray, alpha: float, min_priority: float) -> np.ndarray:
    """p_i = max(max_k |delta_ik|, min_priority)^alpha.

    A transition's priority in LAP (loss-adjusted prioritized replay): the larger of its critics'
    absolute TD errors, floored at ``min_priority`` (1 in TD7, so the floor is also the priority
    of a well-fitted transition), to the power alpha. Transition i is then drawn with probability
    p_i / sum_j p_j (no further exponent, no importance weights: :func:`lap_huber_loss` corrects).

    Shapes: ``td_error`` (B, K) -> (B,); a (B,) array counts as one critic.
    """
    largest = np.abs(np.asarray(td_error, dtype=np.float64).reshape(len(td_error), -1)).max(axis=1)
    return np.maximum(largest, min_priority) ** alpha


def value_clipped_td_target(reward: Tensor, terminated: Tensor, next_q: Tensor,
                            gamma: float | Tensor, value_min: float, value_max: float) -> Tensor:
    """y = r + gamma * (1 - terminated) * clip(min_k Q'_k(s', a~), value_min, value_max).

    TD7's target clipping (in the authors' ``Agent.train``): the bootstrapped value is clipped
    to the range of targets seen so far, [value_min, value_max] (:func:`widened_value_range`,
    copied in at each hard target update), which stops an extrapolating critic from feeding its
    own overestimates back. ``next_q`` is already the minimum over the target critics
    (:func:`clipped_double_q`).

    Shapes: as :func:`td_target`; ``value_min`` <= ``value_max`` floats.
    """
    return td_target(reward, terminated, next_q.clamp(value_min, value_max), gamma)


def widened_value_range(value_min: float, value_max: float, y: Tensor) -> tuple[float, float]:
    """(value_min, value_max) <- (min(value_min, min_i y_i), max(value_max, max_i y_i)).

    The range of TD targets seen over the run, grown with each batch's targets ``y`` (B,). It
    starts empty (the authors' code: value_min = 1e8, value_max = -1e8) and never shrinks;
    :func:`value_clipped_td_target` uses the copy taken at the last hard target update (0, 0
    before the first one).
    """
    return min(value_min, float(y.min())), max(value_max, float(y.max()))


def should_end_assessment(min_return: float, best_min_return: float) -> bool:
    """end <=> min_{episodes so far} G < best_min_return.

    TD7's policy checkpoints (the authors' ``Agent.maybe_train_and_checkpoint``): the current
    policy is assessed over up to N episodes by its worst return; as soon as one episode falls
    below the checkpoint's score, the current policy cannot beat it and its assessment ends early
    (training resumes, no checkpoint).
    """
    return min_return < best_min_return


def should_checkpoint(min_return: float, best_min_return: float, assessed_episodes: int,
                      max_assessed_episodes: int, assessed_env_steps: int = 0,
                      min_assessed_env_steps: int = 0) -> bool:
    """checkpoint <=> min G >= best_min_return, assessed_episodes >= max_assessed_episodes
    and assessed_env_steps >= min_assessed_env_steps.

    The current policy replaces the checkpoint once it has played its full assessment (1 episode
    early in training, 20 later, and at least ``min_assessed_env_steps`` env steps: more
    episodes where episodes are short) without an episode below the checkpoint's score; then
    best_min_return <- min_return. The authors count episodes only (``min_assessed_env_steps``
    0); an assessment of one short episode lets a lucky start state set a bar no policy meets
    (``docs/deviations.md``).
    """
    return (not should_end_assessment(min_return, best_min_return)
            and assessed_episodes >= max_assessed_episodes
            and assessed_env_steps >= min_assessed_env_steps)


def reset_best_min_return(best_min_return: float, reset_weight: float) -> float:
    """best_min_return <- best_min_return - (1 - reset_weight) |best_min_return|.

    Applied once, when training reaches ``steps_before_checkpointing`` updates (where the
    assessment grows from 1 to 20 episodes), so a checkpoint scored on one lucky episode can be
    replaced: the bar drops by a fraction 1 - reset_weight of its size, whatever its sign. The
    authors' code multiplies, reset_weight * best_min_return, the same for a positive score but
    a *raised* bar for a negative one (-100 becomes -90, not -110: ``docs/deviations.md``).
    """
    return best_min_return - (1.0 - reset_weight) * abs(best_min_return)
