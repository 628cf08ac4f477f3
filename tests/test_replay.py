"""The replay ring buffer: storage, wrap-around, uniform sampling over the stored slots only."""

import numpy as np
import pytest
import torch

from dpgkit.replay import Batch, ReplayBuffer

OBS_DIM, ACTION_DIM = 3, 2


def transition(k: int) -> dict:
    """Transition number k, every field derived from k so it can be recognised anywhere."""
    return dict(obs=np.array([k, k + 0.5, -k], dtype=np.float64),
                action=np.array([k / 10, -k / 10], dtype=np.float64),
                reward=float(k) + 0.25,
                next_obs=np.array([k + 1, k + 1.5, -k - 1], dtype=np.float64),
                terminated=k % 2 == 1,
                truncated=k % 3 == 2)


def filled(capacity: int, n: int) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity, OBS_DIM, ACTION_DIM)
    for k in range(n):
        buffer.add(**transition(k))
    return buffer


def assert_batch_is(batch: Batch, ks: list[int]) -> None:
    expected = [transition(k) for k in ks]
    for name in ("obs", "action", "next_obs"):
        tensor = getattr(batch, name)
        assert tensor.dtype == torch.float32
        np.testing.assert_array_equal(
            tensor.numpy(), np.array([e[name] for e in expected], dtype=np.float32))
    assert batch.reward.dtype == torch.float32 and batch.terminated.dtype == torch.float32
    np.testing.assert_array_equal(batch.reward.numpy(),
                                  np.array([e["reward"] for e in expected], dtype=np.float32))
    np.testing.assert_array_equal(batch.terminated.numpy(),
                                  np.array([float(e["terminated"]) for e in expected]))


def test_add_then_gather_returns_stored_transitions():
    buffer = filled(10, 4)
    assert len(buffer) == 4
    batch = buffer.gather(np.array([0, 1, 2, 3]))
    assert_batch_is(batch, [0, 1, 2, 3])
    assert batch.obs.shape == (4, OBS_DIM) and batch.action.shape == (4, ACTION_DIM)
    assert batch.reward.shape == (4,) and batch.terminated.shape == (4,)
    # gathering in any order, with repeats
    assert_batch_is(buffer.gather(np.array([3, 0, 3])), [3, 0, 3])
    # hand check of one transition: k = 3
    b = buffer.gather(np.array([3]))
    assert b.obs.tolist() == [[3.0, 3.5, -3.0]]
    assert b.reward.tolist() == [3.25]
    assert b.terminated.tolist() == [1.0]


def test_ring_wraps_and_overwrites_oldest():
    buffer = filled(3, 5)
    assert len(buffer) == 3
    # transitions 0, 1, 2 went to slots 0, 1, 2; then 3 -> slot 0 and 4 -> slot 1
    assert_batch_is(buffer.gather(np.array([0, 1, 2])), [3, 4, 2])
    assert buffer.next_index == 2
    np.testing.assert_array_equal(buffer.reward, np.array([3.25, 4.25, 2.25], dtype=np.float32))


def test_len_counts_up_to_capacity():
    buffer = ReplayBuffer(4, OBS_DIM, ACTION_DIM)
    lengths = []
    for k in range(7):
        buffer.add(**transition(k))
        lengths.append(len(buffer))
    assert lengths == [1, 2, 3, 4, 4, 4, 4]


def test_add_many_at_once_wraps_like_one_by_one():
    one_by_one = filled(5, 8)
    at_once = ReplayBuffer(5, OBS_DIM, ACTION_DIM)
    for chunk in ([0, 1, 2], [3, 4, 5, 6], [7]):  # the second chunk crosses the end of the ring
        ts = [transition(k) for k in chunk]
        at_once.add(**{name: np.array([t[name] for t in ts]) for name in ts[0]})
    assert len(at_once) == len(one_by_one) == 5
    assert at_once.next_index == one_by_one.next_index == 3
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(at_once, name), getattr(one_by_one, name))
    with pytest.raises(ValueError):
        at_once.add(**{name: np.array([transition(0)[name]] * 6) for name in transition(0)})


def test_sample_only_from_stored_slots():
    buffer = filled(10, 2)
    rng = np.random.default_rng(0)
    indices = np.concatenate([buffer.sample_indices(64, rng) for _ in range(50)])
    assert set(indices.tolist()) == {0, 1}
    batch = buffer.sample(256, np.random.default_rng(1))
    # every sampled reward is one of the two stored ones, never an empty slot's zero
    assert set(batch.reward.tolist()) == {0.25, 1.25}


def test_sample_is_uniform_over_stored_transitions():
    buffer = filled(10, 5)
    n = 50_000
    indices = buffer.sample_indices(n, np.random.default_rng(2))
    counts = np.bincount(indices, minlength=10)
    assert counts[5:].sum() == 0
    expected = n / 5
    chi_square = ((counts[:5] - expected) ** 2 / expected).sum()
    assert chi_square < 25.0, counts  # 4 degrees of freedom: P(chi2 > 25) ~ 5e-5

    # a full, wrapped buffer samples all its slots
    full = filled(10, 23)
    counts = np.bincount(full.sample_indices(n, np.random.default_rng(3)), minlength=10)
    chi_square = ((counts - n / 10) ** 2 / (n / 10)).sum()
    assert counts.min() > 0 and chi_square < 40.0, counts  # 9 dof: P(chi2 > 40) ~ 7e-6


def test_sampling_reproducible_with_same_seed():
    buffer = filled(20, 15)
    a = buffer.sample(32, np.random.default_rng(42))
    b = buffer.sample(32, np.random.default_rng(42))
    c = buffer.sample(32, np.random.default_rng(43))
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.obs, c.obs)
    # the sample is the gather at the Generator's indices
    idx = np.random.default_rng(42).integers(0, 15, size=32)
    assert torch.equal(a.obs, buffer.gather(idx).obs)


def test_sample_from_empty_buffer_refused():
    with pytest.raises(ValueError):
        ReplayBuffer(4, OBS_DIM, ACTION_DIM).sample(2, np.random.default_rng(0))


def test_terminated_and_truncated_stored_apart():
    buffer = ReplayBuffer(4, OBS_DIM, ACTION_DIM)
    base = transition(0)
    for terminated, truncated in [(False, False), (True, False), (False, True), (True, True)]:
        buffer.add(**{**base, "terminated": terminated, "truncated": truncated})
    np.testing.assert_array_equal(buffer.terminated, [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(buffer.truncated, [False, False, True, True])
    batch = buffer.gather(np.arange(4))
    # only terminated reaches the batch (it cuts the bootstrap); a truncation does not
    assert batch.terminated.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert not hasattr(batch, "truncated")
