"""TD7's equations (Fujimoto et al. 2023) against numbers computed by hand."""

import numpy as np
import pytest
import torch

from dpgkit.equations import (
    avg_l1_norm,
    embedding_loss,
    lap_huber_loss,
    lap_priority,
    reset_best_min_return,
    should_checkpoint,
    should_end_assessment,
    value_clipped_td_target,
    widened_value_range,
)

F64 = torch.float64


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# --- avg_l1_norm: x / max(mean_i |x_i|, eps) ----------------------------------------------------


def test_avg_l1_norm_by_hand():
    x = t([[1.0, -2.0, 3.0, -6.0],    # mean |x| = 12 / 4 = 3
           [0.5, -0.5, 0.5, -0.5],    # mean |x| = 0.5
           [0.0, 0.0, 0.0, 0.0]])     # all zero: eps keeps it zero, not NaN
    expected = t([[1 / 3, -2 / 3, 1.0, -2.0], [1.0, -1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(avg_l1_norm(x), expected, rtol=0, atol=1e-15)


def test_avg_l1_norm_gives_mean_abs_one_over_the_last_dimension_only():
    x = torch.randn(3, 5, 7, dtype=F64, generator=torch.Generator().manual_seed(0)) * 40.0
    out = avg_l1_norm(x)
    torch.testing.assert_close(out.abs().mean(dim=-1), torch.ones(3, 5, dtype=F64))
    # the direction of each row is kept: a positive multiple of the input
    torch.testing.assert_close(out / x, (out / x)[..., :1].expand_as(x))


def test_avg_l1_norm_eps_floors_the_divisor():
    # mean |x| = 1e-3 is below eps = 0.1: x is divided by 0.1
    torch.testing.assert_close(avg_l1_norm(t([1e-3, -1e-3]), eps=0.1), t([1e-2, -1e-2]))


# --- embedding_loss: 1/(B D) sum || g(f(s), a) - f(s') ||^2 -------------------------------------


def test_embedding_loss_by_hand_and_target_fixed():
    predicted = t([[1.0, 2.0], [3.0, 4.0]]).requires_grad_()
    target = t([[0.0, 2.0], [5.0, 1.0]]).requires_grad_()
    # differences 1, 0, -2, 3 -> squares 1, 0, 4, 9 -> 14 / 4
    loss = embedding_loss(predicted, target)
    torch.testing.assert_close(loss, t(3.5), rtol=0, atol=1e-15)
    loss.backward()
    torch.testing.assert_close(predicted.grad, t([[0.5, 0.0], [-1.0, 1.5]]))  # 2 (p - z) / 4
    assert target.grad is None  # zs' is a constant


def test_embedding_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        embedding_loss(torch.zeros(4, 3), torch.zeros(4, 1))


# --- lap_huber_loss: 1/B sum_i sum_k (0.5 x^2 if x < kappa else kappa x) ------------------------


def test_lap_huber_loss_by_hand():
    td_error = t([[0.5, -2.0],     # 0.125 + 2.0 = 2.125
                  [-0.2, 1.0]])    # 0.02 + 1.0 (x = kappa is on the linear side) = 1.02
    torch.testing.assert_close(lap_huber_loss(td_error, 1.0), t(1.5725), rtol=0, atol=1e-12)
    # kappa 2: 3 -> 2 * 3 = 6, 1 -> 0.5; summed over the two critics of the one transition
    torch.testing.assert_close(lap_huber_loss(t([[3.0, 1.0]]), 2.0), t(6.5), rtol=0, atol=0)


def test_lap_huber_loss_gradient_is_delta_inside_and_kappa_sign_outside():
    td_error = t([[0.5, -2.0], [-0.2, 1.0]]).requires_grad_()
    lap_huber_loss(td_error, 1.0).backward()
    # d/d delta = delta / B where |delta| < 1, sign(delta) / B beyond, B = 2
    torch.testing.assert_close(td_error.grad, t([[0.25, -0.5], [-0.1, 0.5]]))


def test_lap_huber_loss_needs_a_critic_dimension():
    with pytest.raises(ValueError, match="critics"):
        lap_huber_loss(torch.zeros(8), 1.0)


# --- lap_priority: max(max_k |delta_ik|, min_priority)^alpha --------------------------------------


def test_lap_priority_by_hand():
    td_error = np.array([[0.5, -2.0],    # max |delta| 2 -> 2^0.5
                         [-0.2, 0.3],    # 0.3, floored at 1 -> 1
                         [4.0, -9.0]])   # 9 -> 3
    np.testing.assert_allclose(lap_priority(td_error, 0.5, 1.0), [np.sqrt(2.0), 1.0, 3.0],
                               rtol=1e-15)
    # one critic, TD7's settings alpha 0.4, min_priority 1: 4^0.4 = 1.7411011...
    np.testing.assert_allclose(lap_priority(np.array([-4.0, 0.25]), 0.4, 1.0),
                               [1.7411011265922482, 1.0], rtol=1e-15)


# --- value_clipped_td_target: r + gamma (1 - terminated) clip(Q', value_min, value_max) ----------


def test_value_clipped_td_target_by_hand():
    reward, terminated = t([1.0, 2.0, -1.0, 100.0]), t([0.0, 1.0, 0.0, 0.0])
    next_q = t([10.0, 10.0, -50.0, 5.0])
    y = value_clipped_td_target(reward, terminated, next_q, 0.5, -20.0, 6.0)
    # 1 + 0.5 * 6 (10 clipped), 2 (terminal), -1 + 0.5 * -20 (-50 clipped), 100 + 0.5 * 5: the
    # clip is on Q', not on y, which may leave the range
    torch.testing.assert_close(y, t([4.0, 2.0, -11.0, 102.5]), rtol=0, atol=0)


def test_value_clipped_td_target_before_the_first_hard_update_is_the_reward():
    reward = t([0.3, -7.0])  # the authors' initial range [0, 0]: Q' is clipped to 0
    y = value_clipped_td_target(reward, t([0.0, 0.0]), t([55.0, -3.0]), 0.99, 0.0, 0.0)
    torch.testing.assert_close(y, reward, rtol=0, atol=0)


def test_widened_value_range_grows_and_never_shrinks():
    value_range = widened_value_range(1e8, -1e8, t([3.0, -2.0, 7.0]))  # the empty start
    assert value_range == (-2.0, 7.0)
    value_range = widened_value_range(*value_range, t([0.0, 1.0]))
    assert value_range == (-2.0, 7.0)
    assert widened_value_range(*value_range, t([-5.0, 10.0])) == (-5.0, 10.0)


# --- policy checkpoints: the rule on a scripted sequence of episode returns ----------------------


def checkpoint_decisions(returns: list[float], best_min_return: float, max_episodes: int,
                         length: int = 1000, min_steps: int = 0) -> tuple[list[str], float]:
    """Play the episode returns (each ``length`` env steps) through TD7's rule (the authors'
    maybe_train_and_checkpoint, with dpgkit's minimum of env steps): per episode 'end'
    (assessment ended early), 'checkpoint', or '' (assessment goes on)."""
    decisions, episodes, min_return = [], 0, float("inf")
    for episode_return in returns:
        episodes += 1
        min_return = min(min_return, episode_return)
        if should_end_assessment(min_return, best_min_return):
            decisions.append("end")
        elif should_checkpoint(min_return, best_min_return, episodes, max_episodes,
                               episodes * length, min_steps):
            decisions.append("checkpoint")
            best_min_return = min_return
        else:
            decisions.append("")
            continue
        episodes, min_return = 0, float("inf")  # a training burst, then a fresh assessment
    return decisions, best_min_return


def test_checkpoint_rule_on_a_scripted_sequence_of_returns():
    # early training: one episode per assessment; the first always beats the empty start -1e8
    decisions, best = checkpoint_decisions([-100.0, -150.0, -80.0, -80.0, -90.0], -1e8, 1)
    assert decisions == ["checkpoint", "end", "checkpoint", "checkpoint", "end"]  # a tie keeps up
    assert best == -80.0
    # after steps_before_checkpointing: the score drops by 10% of its size (-80 -> -88) and a
    # policy plays up to 3 episodes here (20 in TD7)
    best = reset_best_min_return(best, 0.9)
    assert best == pytest.approx(-88.0)
    decisions, best = checkpoint_decisions(
        [-70.0, -60.0, -87.0,   # worst -87 >= -88 after 3 episodes: checkpoint, score -87
         -50.0, -95.0,          # -95 < -87: ends after 2 episodes
         -60.0, -65.0, -70.0,   # worst -70: checkpoint
         -10.0, -20.0],         # still being assessed
        best, 3)
    assert decisions == ["", "", "checkpoint", "", "end", "", "", "checkpoint", "", ""]
    assert best == -70.0


def test_a_lucky_short_episode_sets_no_bar_with_a_minimum_of_env_steps():
    """Pendulum-like returns, 200-step episodes whose return depends on the start state. Counting
    episodes only (the authors), the lucky -2 of an upright start becomes the bar and no later
    policy is checkpointed; with at least 1,000 env steps per assessment (5 such episodes), the
    bar is a policy's worst of 5 and better policies keep replacing it."""
    returns = [-1400.0, -2.0, -900.0, -300.0, -250.0, -400.0, -120.0, -350.0, -200.0, -180.0,
               -150.0, -300.0, -250.0, -220.0, -260.0]
    decisions, best = checkpoint_decisions(returns, -1e8, 1, length=200)
    assert best == -2.0 and decisions[2:].count("checkpoint") == 0
    decisions, best = checkpoint_decisions(returns, -1e8, 1, length=200, min_steps=1000)
    assert decisions == [""] * 4 + ["checkpoint"] + [""] * 4 + ["checkpoint"] + [""] * 4 + [
        "checkpoint"]
    assert best == -300.0


def test_reset_best_min_return_by_hand():
    assert reset_best_min_return(200.0, 0.9) == pytest.approx(180.0)  # a lower bar
    assert reset_best_min_return(-200.0, 0.9) == pytest.approx(-220.0)  # lower too (authors: -180)
    assert reset_best_min_return(0.0, 0.9) == 0.0
