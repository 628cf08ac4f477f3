"""LAP replay: stored priorities, proportional independent draws, the running maximum and its
reset, no importance weights, and a state round trip."""

import numpy as np
import pytest

from dpgkit.equations import lap_priority
from dpgkit.lap import LAPReplayBuffer

OBS_DIM, ACTION_DIM = 2, 1


def add_steps(buffer: LAPReplayBuffer, n: int, start: int = 0, episode_length: int = 0) -> None:
    for t in range(start, start + n):
        buffer.add(obs=np.array([t, 0.0]), action=np.array([0.0]), reward=float(t),
                   next_obs=np.array([t + 1, 0.0]),
                   terminated=episode_length > 0 and t % episode_length == episode_length - 1,
                   truncated=False)


def stored_rows(buffer: LAPReplayBuffer) -> np.ndarray:
    return np.flatnonzero(buffer.valid)


def test_stored_priorities_are_lap_priorities_of_the_td_errors():
    buffer = LAPReplayBuffer(10, OBS_DIM, ACTION_DIM, alpha=0.5, min_priority=1.0)
    add_steps(buffer, 4)
    rows = stored_rows(buffer)
    np.testing.assert_array_equal(buffer.tree.get(rows), [1.0] * 4)  # max priority 1 at first
    td_error = np.array([[0.5, -0.2],   # both below the floor: 1^0.5 = 1
                         [-4.0, 1.0],   # the larger critic's error: 4^0.5 = 2
                         [3.0, 9.0],    # 3
                         [16.0, -2.0]])  # 4
    buffer.update_priorities(rows, td_error)
    np.testing.assert_array_equal(buffer.tree.get(rows), [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(buffer.tree.get(rows), lap_priority(td_error, 0.5, 1.0))
    assert buffer.max_priority == 4.0  # in sampling units: no second exponent


def test_new_transitions_get_the_running_max_priority():
    buffer = LAPReplayBuffer(10, OBS_DIM, ACTION_DIM, alpha=1.0)
    add_steps(buffer, 3)
    buffer.update_priorities(stored_rows(buffer), np.array([[2.0, 5.0], [1.0, 1.0], [0.0, 0.0]]))
    add_steps(buffer, 1, start=3)
    assert buffer.tree.get(stored_rows(buffer)[-1:])[0] == 5.0
    # the running maximum only grows with updates: a lower priority leaves it
    buffer.update_priorities(stored_rows(buffer)[:1], np.array([[0.0, 0.0]]))
    assert buffer.max_priority == 5.0


def test_reset_max_priority_takes_the_largest_stored_priority():
    buffer = LAPReplayBuffer(10, OBS_DIM, ACTION_DIM, alpha=1.0)
    buffer.reset_max_priority()  # empty: kept as it is
    assert buffer.max_priority == 1.0
    add_steps(buffer, 4)
    rows = stored_rows(buffer)
    buffer.update_priorities(rows, np.array([[2.0], [7.0], [3.0], [1.5]]))
    buffer.update_priorities(rows[1:2], np.array([[0.5]]))  # the outlier is learned: p = 1
    assert buffer.max_priority == 7.0
    buffer.reset_max_priority()
    assert buffer.max_priority == 3.0
    add_steps(buffer, 1, start=4)  # a new transition now gets 3, not 7
    assert buffer.tree.get(stored_rows(buffer)[-1:])[0] == 3.0
    # a stored, not yet sampled transition counts too (as in the authors' buffer)
    buffer.update_priorities(rows, np.array([[1.0], [1.0], [1.0], [1.0]]))
    buffer.reset_max_priority()
    assert buffer.max_priority == 3.0


def test_sampling_frequency_follows_the_stored_priorities():
    buffer = LAPReplayBuffer(10, OBS_DIM, ACTION_DIM, alpha=0.5)
    add_steps(buffer, 4)
    buffer.update_priorities(stored_rows(buffer), np.array([[1.0], [4.0], [9.0], [16.0]]))
    add_steps(buffer, 1, start=4)  # p = 1, 2, 3, 4 and the new one at the maximum, 4
    n = 70_000
    drawn = buffer.sample_indices(n, np.random.default_rng(0))
    counts = np.bincount(drawn, minlength=len(buffer.valid))[stored_rows(buffer)]
    expected = n * np.array([1, 2, 3, 4, 4]) / 14
    chi_square = ((counts - expected) ** 2 / expected).sum()
    # 4 degrees of freedom: P(chi2 > 25) ~ 5e-5 for any seed. Sampling by p^alpha instead (a
    # second exponent) would give about 3,800 here, uniform sampling about 21,000
    assert chi_square < 25.0, counts


def test_draws_are_independent_and_follow_the_authors_cumulative_sum_rule():
    """For the same uniforms u, row = the first i with cumsum(p)_i > u * sum(p), B times
    independently (the authors' buffer.LAP.sample), not one draw per slice of the mass."""
    buffer = LAPReplayBuffer(12, OBS_DIM, ACTION_DIM, alpha=1.0)
    add_steps(buffer, 8, episode_length=3)  # rows without a transition lie between
    rows = stored_rows(buffer)
    priority = np.array([1.0, 3.0, 2.0, 5.0, 1.0, 4.0, 2.0, 1.0])  # sums exact in floating point
    buffer.update_priorities(rows, priority[:, None])
    drawn = buffer.sample_indices(4_000, np.random.default_rng(5))
    u = np.random.default_rng(5).random(4_000)
    expected = rows[np.searchsorted(np.cumsum(priority), u * priority.sum(), side="right")]
    np.testing.assert_array_equal(drawn, expected)
    # independent draws: a batch of 4 from 4 equal priorities repeats a row now and then
    uniform = LAPReplayBuffer(8, OBS_DIM, ACTION_DIM)
    add_steps(uniform, 4)
    rng = np.random.default_rng(0)
    assert any(len(set(uniform.sample_indices(4, rng))) < 4 for _ in range(20))


def test_batches_carry_no_importance_weights():
    buffer = LAPReplayBuffer(10, OBS_DIM, ACTION_DIM)
    add_steps(buffer, 5)
    buffer.update_priorities(stored_rows(buffer), np.array([[3.0], [0.0], [8.0], [1.0], [2.0]]))
    batch = buffer.sample(16, np.random.default_rng(0))
    assert batch.weights is None
    assert batch.indices.shape == (16,) and buffer.valid[batch.indices].all()
    np.testing.assert_array_equal(batch.reward.numpy(), buffer.reward[batch.indices])


def test_overwritten_and_obs_only_rows_are_never_drawn():
    buffer = LAPReplayBuffer(4, OBS_DIM, ACTION_DIM)
    add_steps(buffer, 9, episode_length=3)  # an obs-only row after each episode, wrap-around
    leaves = buffer.tree.get(np.arange(len(buffer.valid)))
    np.testing.assert_array_equal(leaves > 0, buffer.valid)
    drawn = buffer.sample_indices(5_000, np.random.default_rng(1))
    assert buffer.valid[drawn].all()
    stale = np.flatnonzero(~buffer.valid)[:1]  # overwritten since drawn: its update is dropped
    buffer.update_priorities(stale, np.array([[100.0]]))
    assert buffer.tree.get(stale)[0] == 0.0


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="empty"):
        LAPReplayBuffer(4, OBS_DIM, ACTION_DIM).sample_indices(2, np.random.default_rng(0))


def test_state_round_trip_keeps_priorities_max_and_the_next_draws():
    buffer = LAPReplayBuffer(6, OBS_DIM, ACTION_DIM, alpha=0.4, num_streams=2)
    for t in range(7):  # two streams, one wrapped
        buffer.add(obs=np.array([[t, 0.0], [t, 1.0]]), action=np.zeros((2, 1)),
                   reward=np.array([t, -t]), next_obs=np.array([[t + 1, 0.0], [t + 1, 1.0]]),
                   terminated=np.array([False, t == 2]), truncated=np.array([False, False]))
    rows = stored_rows(buffer)
    buffer.update_priorities(rows, np.linspace(0.0, 9.0, 2 * len(rows)).reshape(-1, 2))
    buffer.reset_max_priority()
    arrays, counters = buffer.state()
    copy = LAPReplayBuffer(6, OBS_DIM, ACTION_DIM, alpha=0.4, num_streams=2)
    copy.load_state(arrays, counters)
    np.testing.assert_array_equal(copy.tree.sums, buffer.tree.sums)
    np.testing.assert_array_equal(copy.tree.mins, buffer.tree.mins)
    assert copy.max_priority == buffer.max_priority == 9.0 ** 0.4
    np.testing.assert_array_equal(copy.sample_indices(64, np.random.default_rng(7)),
                                  buffer.sample_indices(64, np.random.default_rng(7)))
