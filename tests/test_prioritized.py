"""Prioritized replay: the sum-tree, P(i) = p_i^alpha / sum p^alpha, the importance weights and
priority updates, each against numbers computed by hand."""

import numpy as np
import pytest
import torch

from dpgkit.equations import importance_weights, sampling_priority
from dpgkit.prioritized import PrioritizedReplayBuffer, SumTree

OBS_DIM, ACTION_DIM = 2, 1


def one_episode(buffer: PrioritizedReplayBuffer, n: int, start: int = 0) -> None:
    for t in range(start, start + n):
        buffer.add(obs=np.array([t, 0.0]), action=np.array([0.0]), reward=float(t),
                   next_obs=np.array([t + 1, 0.0]), terminated=False, truncated=False)


def test_sum_tree_sums_mins_and_finds_by_prefix_sum():
    tree = SumTree(5)  # 8 leaves
    tree.set(np.array([0, 1, 2, 3, 4]), np.array([1.0, 0.0, 2.0, 3.0, 4.0]))
    assert tree.total == 10.0 and tree.min == 1.0  # the zero leaf is not the minimum
    # prefix sums: leaf 0 covers [0, 1), leaf 2 [1, 3), leaf 3 [3, 6), leaf 4 [6, 10)
    np.testing.assert_array_equal(tree.find(np.array([0.0, 0.99, 1.0, 2.5, 3.0, 5.9, 6.0, 9.99])),
                                  [0, 0, 2, 2, 3, 3, 4, 4])
    tree.set(np.array([0]), np.array([0.0]))
    assert tree.total == 9.0 and tree.min == 2.0
    np.testing.assert_array_equal(tree.get(np.array([2, 4])), [2.0, 4.0])


def test_priority_and_importance_weight_formulas_by_hand():
    np.testing.assert_allclose(sampling_priority(np.array([-2.0, 0.5, 0.0]), 0.01),
                               [2.01, 0.51, 0.01])
    # P = (0.1, 0.2, 0.7): w_i = (P_i / P_min)^-beta, so the rarest transition gets weight 1
    np.testing.assert_allclose(importance_weights(np.array([0.1, 0.2, 0.7]), 0.1, 0.5),
                               [1.0, 2 ** -0.5, 7 ** -0.5])
    np.testing.assert_allclose(importance_weights(np.array([0.1, 0.7]), 0.1, 0.0), [1.0, 1.0])


def test_new_transitions_get_the_largest_priority_and_sampling_follows_p_alpha():
    buffer = PrioritizedReplayBuffer(10, OBS_DIM, ACTION_DIM, alpha=0.5, beta=1.0, epsilon=0.0)
    one_episode(buffer, 4)
    rows = np.flatnonzero(buffer.valid)
    np.testing.assert_array_equal(buffer.tree.get(rows), [1.0] * 4)  # max priority 1 at first
    buffer.update_priorities(rows, np.array([1.0, -4.0, 9.0, 16.0]))
    # p^alpha = 1, 2, 3, 4 of a total 10
    np.testing.assert_allclose(buffer.tree.get(rows), [1.0, 2.0, 3.0, 4.0])
    assert buffer.max_priority == 16.0
    one_episode(buffer, 1, start=4)  # a new transition: priority 16, 16^0.5 = 4
    new_row = np.flatnonzero(buffer.valid)[-1]
    assert buffer.tree.get(np.array([new_row]))[0] == 4.0

    n = 70_000
    drawn = buffer.sample_indices(n, np.random.default_rng(0))
    counts = np.bincount(drawn, minlength=len(buffer.valid))[np.flatnonzero(buffer.valid)]
    expected = n * np.array([1, 2, 3, 4, 4]) / 14
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 25.0, counts  # 4 degrees of freedom: P(chi2 > 25) ~ 5e-5

    batch = buffer.gather(np.flatnonzero(buffer.valid))
    # beta 1: w_i = (P_i / P_min)^-1 = 1 / p_i^alpha with P_min at p^alpha = 1
    np.testing.assert_allclose(batch.weights.numpy(), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 4])
    assert batch.weights.dtype == torch.float32


def test_overwritten_and_obs_only_rows_are_never_drawn():
    buffer = PrioritizedReplayBuffer(4, OBS_DIM, ACTION_DIM)
    for t in range(9):  # episodes of 3 steps: an obs-only row after each, and wrap-around
        buffer.add(obs=np.array([t, 0.0]), action=np.array([0.0]), reward=float(t),
                   next_obs=np.array([t + 1, 0.0]), terminated=t % 3 == 2, truncated=False)
    leaves = buffer.tree.get(np.arange(len(buffer.valid)))
    np.testing.assert_array_equal(leaves > 0, buffer.valid)
    assert buffer.tree.total == pytest.approx(len(buffer))
    drawn = buffer.sample_indices(5_000, np.random.default_rng(1))
    assert buffer.valid[drawn].all()
    # a priority update for a row that was overwritten since it was drawn is dropped
    stale = np.flatnonzero(~buffer.valid)[:1]
    buffer.update_priorities(stale, np.array([100.0]))
    assert buffer.tree.get(stale)[0] == 0.0


def test_sampling_is_stratified_one_draw_per_slice_of_the_mass():
    buffer = PrioritizedReplayBuffer(8, OBS_DIM, ACTION_DIM, alpha=1.0, epsilon=0.0)
    one_episode(buffer, 4)
    rows = np.flatnonzero(buffer.valid)
    buffer.update_priorities(rows, np.array([1.0, 1.0, 1.0, 1.0]))
    # 4 equal slices of a mass of 4: each draw falls in its own transition
    drawn = buffer.sample_indices(4, np.random.default_rng(3))
    np.testing.assert_array_equal(drawn, rows)


def test_state_round_trip_keeps_the_priorities():
    buffer = PrioritizedReplayBuffer(6, OBS_DIM, ACTION_DIM)
    one_episode(buffer, 5)
    buffer.update_priorities(np.flatnonzero(buffer.valid), np.array([0.5, 2.0, 1.0, 3.0, 0.1]))
    arrays, counters = buffer.state()
    copy = PrioritizedReplayBuffer(6, OBS_DIM, ACTION_DIM)
    copy.load_state(arrays, counters)
    np.testing.assert_array_equal(copy.tree.sums, buffer.tree.sums)
    np.testing.assert_array_equal(copy.tree.mins, buffer.tree.mins)
    assert copy.max_priority == buffer.max_priority == 3.0 + 1e-6  # |delta| + epsilon
