"""The replay buffer: each field stored once, exactly the stored transitions sampled back (across
episode ends, truncations and wrap-around), uniform sampling, n-step returns by hand."""

import numpy as np
import pytest
import torch

from dpgkit.replay import FIELDS, ReplayBuffer

OBS_DIM, ACTION_DIM = 3, 2


def episodes(lengths: list[int], ends: str = "alternate", first: int = 0) -> list[dict]:
    """The transitions of consecutive episodes of the given lengths. Observation
    (episode, t, -t); episode e's last step terminates if e is even, else it is truncated
    (``ends="alternate"``); reward 10 e + t; action (t / 10, e / 10)."""
    out = []
    for e, length in enumerate(lengths, start=first):
        for t in range(length):
            last = t == length - 1
            out.append(dict(obs=np.array([e, t, -t], dtype=np.float32),
                            action=np.array([t / 10, e / 10], dtype=np.float32),
                            reward=10.0 * e + t,
                            next_obs=np.array([e, t + 1, -t - 1], dtype=np.float32),
                            terminated=last and (ends == "terminate" or
                                                 (ends == "alternate" and e % 2 == 0)),
                            truncated=last and (ends == "truncate" or
                                                (ends == "alternate" and e % 2 == 1))))
    return out


def stack(transitions: list[dict]) -> dict[str, np.ndarray]:
    return {name: np.array([t[name] for t in transitions]) for name in transitions[0]}


def assert_same(stored: dict[str, np.ndarray], expected: list[dict]) -> None:
    assert len(stored["reward"]) == len(expected)
    if expected:
        for name, value in stack(expected).items():
            np.testing.assert_array_equal(stored[name], value.astype(stored[name].dtype), name)


def test_one_episode_shares_observations_between_rows():
    buffer = ReplayBuffer(10, OBS_DIM, ACTION_DIM)
    ts = episodes([6])[:4]  # 4 steps of an unfinished episode
    for t in ts:
        buffer.add(**t)
    assert len(buffer) == 4
    # rows 0..4 hold s0..s4 once each: s_{t+1} is both the next_obs of t and the obs of t + 1
    np.testing.assert_array_equal(buffer.obs[:5, 1], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(buffer.valid[:6], [1, 1, 1, 1, 0, 0])
    assert_same(buffer.transitions(), ts)
    batch = buffer.gather(np.array([3, 0]))
    assert batch.obs.tolist() == [[0, 3, -3], [0, 0, 0]]
    assert batch.next_obs.tolist() == [[0, 4, -4], [0, 1, -1]]
    assert batch.reward.tolist() == [3.0, 0.0] and batch.terminated.tolist() == [0.0, 0.0]
    assert batch.obs.dtype == batch.next_obs.dtype == batch.terminated.dtype == torch.float32


def test_an_episode_end_keeps_the_final_obs_in_a_row_of_its_own():
    buffer = ReplayBuffer(20, OBS_DIM, ACTION_DIM)
    ts = episodes([3, 2, 2])  # ends: terminated, truncated, terminated
    for t in ts:
        buffer.add(**t)
    # rows: s0 s1 s2 s3* | s0 s1 s2* | s0 s1 s2*   (* = final obs only, no transition)
    np.testing.assert_array_equal(buffer.valid[:11], [1, 1, 1, 0, 1, 1, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(buffer.obs[:10, :2], [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0],
                                                        [1, 1], [1, 2], [2, 0], [2, 1], [2, 2]])
    assert len(buffer) == 7
    assert_same(buffer.transitions(), ts)
    batch = buffer.gather(np.array([2, 5, 8]))  # the last step of each episode
    assert batch.next_obs[:, 1].tolist() == [3, 2, 2]  # the true final obs, never a reset obs
    # terminated cuts the bootstrap; the truncated episode 1 keeps terminated = 0
    assert batch.terminated.tolist() == [1.0, 0.0, 1.0]
    np.testing.assert_array_equal(buffer.truncated[[2, 5, 8]], [False, True, False])


def test_a_reset_obs_equal_to_the_final_obs_shares_its_row_without_merging_episodes():
    buffer = ReplayBuffer(10, OBS_DIM, ACTION_DIM)
    first = dict(obs=np.zeros(3), action=np.zeros(2), reward=1.0, next_obs=np.ones(3),
                 terminated=True, truncated=False)
    second = dict(first, obs=np.ones(3), next_obs=np.full(3, 2.0), reward=2.0, terminated=False)
    buffer.add(**first)
    buffer.add(**second)
    assert_same(buffer.transitions(), [first, second])
    np.testing.assert_array_equal(buffer.valid[:3], [1, 1, 0])
    # an n-step return never runs across the episode end, even with the shared row
    assert ReplayBuffer(10, OBS_DIM, ACTION_DIM, n_step=3).n_step_rows(np.array([0]))[0] == [0]


def test_a_stream_that_jumps_is_cut_without_an_episode_end():
    """A transition whose s is not the stream's newest s' (an actor restarted mid-episode)
    starts a new run of rows: nothing, n-step returns included, reaches across the jump."""
    buffer = ReplayBuffer(20, OBS_DIM, ACTION_DIM, n_step=3, gamma=0.5)
    before, after = episodes([6])[:2], episodes([4], first=7)[:2]  # episode 0 never ends
    for t in before + after:
        buffer.add(**t)
    assert_same(buffer.transitions(), before + after)
    np.testing.assert_array_equal(buffer.valid[:6], [1, 1, 0, 1, 1, 0])
    batch = buffer.gather(np.array([0, 1]))
    assert batch.steps.tolist() == [2, 1]  # stops at the cut, bootstraps from s_2
    assert batch.next_obs[:, :2].tolist() == [[0, 2], [0, 2]]
    assert batch.terminated.tolist() == [0, 0]


@pytest.mark.parametrize("capacity", [1, 2, 5, 16])
def test_wrap_around_keeps_exactly_the_newest_transitions(capacity):
    rng = np.random.default_rng(capacity)
    ts = episodes(rng.integers(1, 7, size=30).tolist())
    buffer = ReplayBuffer(capacity, OBS_DIM, ACTION_DIM)
    for i, t in enumerate(ts):
        buffer.add(**t)
        assert 1 <= len(buffer) <= capacity
        # whatever is stored is the newest len(buffer) transitions, in order, every field exact
        assert_same(buffer.transitions(), ts[i + 1 - len(buffer):i + 1])
        batch = buffer.sample(8, rng)
        stored = {tuple(t["obs"]) + (t["reward"],): t for t in ts[i + 1 - len(buffer):i + 1]}
        for k in range(8):
            t = stored[tuple(batch.obs[k].tolist()) + (batch.reward[k].item(),)]
            np.testing.assert_array_equal(batch.next_obs[k].numpy(), t["next_obs"])
            np.testing.assert_array_equal(batch.action[k].numpy(), t["action"])
            assert batch.terminated[k].item() == float(t["terminated"])
    # holds capacity transitions minus one row per episode end it spans (at most)
    assert len(buffer) >= capacity - sum(t["terminated"] or t["truncated"]
                                         for t in ts[-capacity:])


def test_streams_keep_their_own_episodes_and_wrap_apart():
    lengths = {0: [2, 3, 1, 4, 2, 3], 1: [5, 5, 5], 2: [1] * 15}
    per_stream = {s: episodes(ls, first=10 * s) for s, ls in lengths.items()}
    buffer = ReplayBuffer(18, OBS_DIM, ACTION_DIM, num_streams=3)  # 6 per stream, + 1 row
    for step in range(15):
        rows = [per_stream[s][step] for s in range(3)]
        buffer.add(**stack(rows))  # row i is stream i: one vector-env step
    stored = buffer.transitions()
    for s in range(3):
        mine = {name: value[stored["stream"] == s] for name, value in stored.items()}
        n = len(mine["reward"])
        assert 1 <= n <= 6
        assert_same({k: v for k, v in mine.items() if k != "stream"}, per_stream[s][15 - n:15])


def test_rows_of_one_stream_in_one_call_go_in_order():
    ts = episodes([3, 4])
    one_by_one, at_once = (ReplayBuffer(5, OBS_DIM, ACTION_DIM, num_streams=2) for _ in "ab")
    for t in ts:
        one_by_one.add(**stack([t]), streams=np.array([1]))
    at_once.add(**stack(ts), streams=np.ones(len(ts), dtype=int))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(one_by_one, name), getattr(at_once, name))
    with pytest.raises(ValueError, match="streams"):
        at_once.add(**stack(ts[:1]), streams=np.array([2]))


def test_sampling_is_uniform_over_transitions_and_never_draws_a_row_without_one():
    buffer = ReplayBuffer(40, OBS_DIM, ACTION_DIM, num_streams=2)
    for t in zip(episodes([3, 4, 2, 5]), episodes([7, 2, 5], first=5), strict=False):
        buffer.add(**stack(list(t)))
    n = 60_000
    rows = buffer.sample_indices(n, np.random.default_rng(2))
    assert buffer.valid[rows].all()
    counts = np.bincount(rows, minlength=len(buffer.valid))[buffer.valid]
    assert len(counts) == len(buffer) == 28
    expected = n / len(counts)
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 70.0, counts  # 27 degrees of freedom: P(chi2 > 70) ~ 1e-5


def test_sampling_reproducible_with_same_seed():
    buffer = ReplayBuffer(20, OBS_DIM, ACTION_DIM)
    for t in episodes([4, 6, 5]):
        buffer.add(**t)
    a, b, c = (buffer.sample(32, np.random.default_rng(seed)) for seed in (42, 42, 43))
    for name in ("obs", "action", "reward", "next_obs", "terminated"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.obs, c.obs)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, OBS_DIM, ACTION_DIM).sample(2, np.random.default_rng(0))


def test_one_million_halfcheetah_transitions_take_within_5_percent_of_their_raw_bytes():
    obs_dim, action_dim, n = 17, 6, 1_000_000
    buffer = ReplayBuffer(n, obs_dim, action_dim)  # numpy zeros: the pages are not touched
    stored = sum(getattr(buffer, name).nbytes for name in FIELDS)
    # each field once: obs, action, reward (float32), terminated and truncated (one byte each)
    raw = n * (4 * obs_dim + 4 * action_dim + 4 + 1 + 1)
    assert stored <= 1.05 * raw, stored / raw
    assert stored / raw < 1.011  # the valid flags and one spare row


def test_state_round_trip_restores_every_row_and_counter():
    buffer = ReplayBuffer(8, OBS_DIM, ACTION_DIM, num_streams=2)
    for t in zip(episodes([3, 5, 2]), episodes([4, 4, 2], first=3), strict=False):
        buffer.add(**stack(list(t)))
    arrays, counters = buffer.state()
    copy = ReplayBuffer(8, OBS_DIM, ACTION_DIM, num_streams=2)
    copy.load_state(arrays, counters)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(copy, name), getattr(buffer, name))
    assert len(copy) == len(buffer)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert torch.equal(copy.sample(16, rng_a).obs, buffer.sample(16, rng_b).obs)
    with pytest.raises(ValueError):
        ReplayBuffer(8, OBS_DIM, ACTION_DIM, num_streams=1).load_state(arrays, counters)


def test_n_step_returns_by_hand():
    gamma = 0.5
    buffer = ReplayBuffer(20, OBS_DIM, ACTION_DIM, n_step=3, gamma=gamma)
    # episode 0: rewards 0, 1, 2, 3 then terminated; episode 1: 10, 11, 12 then truncated;
    # episode 2: 20, 21 (running)
    ts = episodes([4, 3, 2])
    ts[-1] = {**ts[-1], "terminated": False}
    for t in ts:
        buffer.add(**t)
    rows = {(int(o[0]), int(o[1])): r for r, o in enumerate(buffer.obs) if buffer.valid[r]}
    at = [rows[key] for key in [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (2, 0), (2, 1)]]
    batch = buffer.gather(np.array(at))
    expected_return = [0 + 0.5 * 1 + 0.25 * 2,  # three rewards, then bootstrap from s_3
                       1 + 0.5 * 2 + 0.25 * 3,  # three rewards reaching the terminal step
                       2 + 0.5 * 3,  # cut by the termination: two rewards
                       3,  # the terminal step itself
                       11 + 0.5 * 12,  # cut by the truncation: two rewards
                       12,
                       20 + 0.5 * 21,  # cut by the newest stored step
                       21]
    np.testing.assert_allclose(batch.reward.numpy(), expected_return)
    assert batch.steps.tolist() == [3, 3, 2, 1, 2, 1, 2, 1]
    assert batch.next_obs[:, :2].tolist() == [[0, 3], [0, 4], [0, 4], [0, 4], [1, 3], [1, 3],
                                              [2, 2], [2, 2]]
    # terminated where the n steps reach episode 0's end; the truncation still bootstraps
    assert batch.terminated.tolist() == [0, 1, 1, 1, 0, 0, 0, 0]


def test_n_step_one_is_the_one_step_transition():
    one, three = (ReplayBuffer(10, OBS_DIM, ACTION_DIM, n_step=n) for n in (1, 3))
    for t in episodes([4, 3]):
        one.add(**t)
        three.add(**t)
    rows = np.flatnonzero(one.valid)
    single = one.gather(rows)
    last, rewards = three.n_step_rows(rows)
    assert single.steps is None
    np.testing.assert_array_equal(rewards[:, 0], single.reward.numpy())


def test_a_transition_goes_into_add_in_its_own_order():
    """acting.Transition names the fields of a transition once; replay.add(*transition) takes
    them in that order."""
    import inspect

    from dpgkit.acting import Transition

    fields = list(inspect.signature(ReplayBuffer.add).parameters)[1:1 + len(Transition._fields)]
    assert fields == list(Transition._fields)
