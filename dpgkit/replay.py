"""Experience replay: a preallocated ring of transitions in which each field is stored once.

A transition is (s, a, r, s', terminated, truncated) (:class:`dpgkit.acting.Transition`). Along one
env's experience the s' of a transition is the s of the next one, so storing both would keep every
observation twice. Here each env, a *stream*, owns a ring of rows, and row j holds an observation
and, if a transition starts there, its a, r, terminated and truncated; its s' is the observation
of row j + 1. Where s' is not the next transition's s (at an episode end: the final observation
against the reset one), row j + 1 keeps s' alone and the next transition starts at row j + 2: one
extra row per episode end. A buffer of ``capacity`` holds up to ``capacity`` transitions, less one
per episode end it spans.

    rows of a stream:  s0 a0 r0 | s1 a1 r1 | s2(final) | s0' a0' r0' | s1' (newest s')
    transitions:       (s0, a0, r0, s1), (s1, a1, r1, s2), (s0', a0', r0', s1')

A batch is drawn uniformly, with replacement, over the stored transitions (a row where none
starts is drawn again). ``terminated`` and ``truncated`` are stored apart: only ``terminated``
cuts the bootstrap; a truncated transition still bootstraps from its true final observation.

With ``n_step`` > 1 a sampled transition carries the n-step return instead of r: the discounted
rewards of up to n transitions of the same episode, and the observation after the last of them
(see :func:`dpgkit.equations.n_step_return`). Prioritized sampling is
:class:`dpgkit.prioritized.PrioritizedReplayBuffer`.
"""

import numpy as np
import torch

from dpgkit.batch import Batch
from dpgkit.config import DDPGConfig
from dpgkit.equations import n_step_return
from dpgkit.errors import memory_for

FIELDS = ("obs", "action", "reward", "terminated", "truncated", "valid")


class ReplayBuffer:
    """A ring buffer of the last ``capacity`` transitions, each field stored once.

    Args:
        capacity: the most transitions kept.
        obs_dim: size of a flat observation.
        action_dim: size of an action (stored in dpgkit's [-1, 1] scale).
        num_streams: how many envs add to the buffer (each gets ``capacity / num_streams``).
        n_step: rewards summed per sampled transition (1: the one-step transition).
        gamma: discount of the n-step return (unused when ``n_step`` is 1; by default the
            config's).
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, num_streams: int = 1,
                 n_step: int = DDPGConfig.n_step, gamma: float = DDPGConfig.gamma) -> None:
        if capacity < 1 or num_streams < 1 or n_step < 1:
            raise ValueError(f"need capacity, num_streams and n_step >= 1, got {capacity}, "
                             f"{num_streams} and {n_step}")
        self.capacity, self.num_streams, self.n_step, self.gamma = (capacity, num_streams,
                                                                     n_step, gamma)
        # one row more per stream than its share: the newest transition's s'
        self.stream_rows = -(-capacity // num_streams) + 1
        rows = self.stream_rows * num_streams
        with memory_for(f"a replay of {capacity:,} transitions",
                        rows * (4 * (obs_dim + action_dim + 1) + 3), "lower --replay_size"):
            self.obs = np.zeros((rows, obs_dim), dtype=np.float32)
            self.action = np.zeros((rows, action_dim), dtype=np.float32)
            self.reward = np.zeros(rows, dtype=np.float32)
            self.terminated = np.zeros(rows, dtype=bool)
            self.truncated = np.zeros(rows, dtype=bool)
            self.valid = np.zeros(rows, dtype=bool)  # a transition starts at this row
        self.cursor = np.full(num_streams, -1, dtype=np.int64)  # row of each stream's newest s'
        self.written = np.zeros(num_streams, dtype=np.int64)  # rows of each stream ever written
        self.size = 0  # transitions stored

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float | np.ndarray,
        next_obs: np.ndarray,
        terminated: bool | np.ndarray,
        truncated: bool | np.ndarray,
        streams: np.ndarray | None = None,
    ) -> None:
        """Store one transition, or n at once (each argument with a leading dimension n),
        overwriting the oldest of their streams when full.

        ``next_obs`` must be the observation the step actually reached (for the last step of an
        episode: the final observation, not the first one of the next episode). ``streams``
        names the experience stream (env) of each row, in ``[0, num_streams)``; by default row i
        is stream i. A stream's transitions must be added in the order they happened.
        """
        reward = np.asarray(reward, dtype=np.float32).reshape(-1)
        n = reward.size
        rows = [np.asarray(obs, dtype=np.float32).reshape(n, -1),
                np.asarray(action, dtype=np.float32).reshape(n, -1), reward,
                np.asarray(next_obs, dtype=np.float32).reshape(n, -1),
                np.reshape(terminated, n), np.reshape(truncated, n)]
        streams = np.arange(n) if streams is None else np.asarray(streams, dtype=np.int64)
        if streams.shape != (n,) or streams.min() < 0 or streams.max() >= self.num_streams:
            raise ValueError(f"streams must give one stream in [0, {self.num_streams}) per row, "
                             f"got {streams.tolist()}")
        # consecutive runs of rows with no stream twice go in together; each stream's rows stay
        # in order (a time-major batch of many envs goes in one time step at a time)
        start, seen = 0, set()
        for i, stream in enumerate(streams.tolist() + [None]):
            if stream in seen or stream is None:
                self._add_rows(streams[start:i], *(field[start:i] for field in rows))
                start, seen = i, set()
            seen.add(stream)

    def _add_rows(self, streams: np.ndarray, obs: np.ndarray, action: np.ndarray,
                  reward: np.ndarray, next_obs: np.ndarray, terminated: np.ndarray,
                  truncated: np.ndarray) -> None:
        """Add one transition to each of ``streams`` (all different)."""
        base, cursor = streams * self.stream_rows, self.cursor[streams]
        newest = base + np.maximum(cursor, 0)
        # the transition continues the stream where its s is the stream's newest s' (same bytes)
        same = self.obs[newest].view(np.uint32) == np.ascontiguousarray(obs).view(np.uint32)
        continues = (cursor >= 0) & np.all(same, axis=1)
        start_local = np.where(continues, cursor, (cursor + 1) % self.stream_rows)
        next_local = (start_local + 1) % self.stream_rows
        start, after = base + start_local, base + next_local
        self._set_valid(start[self.valid[start]], False)  # overwritten: the oldest transitions
        self._set_valid(after[self.valid[after]], False)  # their s changes: no longer stored
        self.obs[start], self.action[start], self.reward[start] = obs, action, reward
        self.terminated[start], self.truncated[start] = terminated, truncated
        self.obs[after] = next_obs
        self._set_valid(start, True)
        self.cursor[streams] = next_local
        self.written[streams] = np.maximum(self.written[streams], next_local + 1)
        self.written[streams[next_local == 0]] = self.stream_rows  # wrapped

    def _set_valid(self, rows: np.ndarray, value: bool) -> None:
        """Mark a transition as starting (or no longer starting) at each of ``rows``."""
        self.size += len(rows) if value else -len(rows)
        self.valid[rows] = value

    def next_row(self, rows: np.ndarray) -> np.ndarray:
        """The row after each of ``rows`` in its stream's ring (where its s' is)."""
        return rows - rows % self.stream_rows + (rows + 1) % self.stream_rows

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """B rows drawn uniformly, with replacement, among the stored transitions."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        ends = np.cumsum(self.written)
        rows = np.empty(batch_size, dtype=np.int64)
        todo = np.arange(batch_size)
        while len(todo):  # uniform over written rows, drawn again where no transition starts
            flat = rng.integers(0, ends[-1], size=len(todo))
            stream = np.searchsorted(ends, flat, side="right")
            rows[todo] = stream * self.stream_rows + flat - (ends[stream] - self.written[stream])
            todo = todo[~self.valid[rows[todo]]]
        return rows

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """A uniformly sampled batch of ``batch_size`` transitions (one gather per field)."""
        return self.gather(self.sample_indices(batch_size, rng))

    def gather(self, indices: np.ndarray) -> Batch:
        """The transitions starting at rows ``indices`` as a :class:`Batch`: one-step, or with
        the n-step return and the state after the last of its steps."""
        last, reward, steps = indices, self.reward[indices], None
        if self.n_step > 1:
            last, rewards = self.n_step_rows(indices)
            reward = n_step_return(rewards, self.gamma).astype(np.float32)
            steps = torch.from_numpy(np.count_nonzero(~np.isnan(rewards), axis=1)
                                     .astype(np.float32))
        return Batch(
            obs=torch.from_numpy(self.obs[indices]),
            action=torch.from_numpy(self.action[indices]),
            reward=torch.from_numpy(reward),
            next_obs=torch.from_numpy(self.obs[self.next_row(last)]),
            terminated=torch.from_numpy(self.terminated[last].astype(np.float32)),
            steps=steps,
            indices=indices,
        )

    def n_step_rows(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the transitions at ``indices``: the row of the last of up to ``n_step``
        transitions of the same episode that follow on from each, and their rewards, (B, n),
        NaN after the episode's end or the newest stored transition."""
        rewards = np.full((len(indices), self.n_step), np.nan, dtype=np.float32)
        rewards[:, 0] = self.reward[indices]
        last = indices.copy()
        going = ~(self.terminated[indices] | self.truncated[indices])
        for k in range(1, self.n_step):
            row = self.next_row(last)
            going &= self.valid[row]
            rewards[going, k] = self.reward[row[going]]
            last = np.where(going, row, last)
            going &= ~(self.terminated[row] | self.truncated[row])
        return last, rewards

    def transitions(self) -> dict[str, np.ndarray]:
        """Every stored one-step transition, stream by stream, oldest first: the fields (and
        ``stream``) as arrays with one row per transition. For analysis and tests."""
        order = []
        for stream in range(self.num_streams):
            local = (np.arange(1, self.stream_rows + 1) + max(self.cursor[stream], 0)) \
                % self.stream_rows
            order.append(stream * self.stream_rows + local)
        rows = np.concatenate(order)
        rows = rows[self.valid[rows]]
        return {"obs": self.obs[rows], "action": self.action[rows], "reward": self.reward[rows],
                "next_obs": self.obs[self.next_row(rows)], "terminated": self.terminated[rows],
                "truncated": self.truncated[rows], "stream": rows // self.stream_rows}

    def state(self) -> tuple[dict[str, np.ndarray], dict[str, int | list[int]]]:
        """The stored rows (each stream's written part) as arrays, and the counters, for a
        checkpoint; :meth:`load_state` puts them back."""
        rows = self._written_rows()
        arrays = {name: getattr(self, name)[rows] for name in FIELDS}
        return arrays, {"size": self.size, "cursor": self.cursor.tolist(),
                        "written": self.written.tolist()}

    def load_state(self, arrays: dict[str, np.ndarray], counters: dict) -> None:
        """Restore what :meth:`state` captured (from a buffer of the same shape)."""
        cursor = np.asarray(counters["cursor"], dtype=np.int64)
        written = np.asarray(counters["written"], dtype=np.int64)
        if cursor.shape != self.cursor.shape or written.shape != self.written.shape or \
                written.max() > self.stream_rows:
            raise ValueError(f"the replay's streams ({len(cursor)}, up to {written.max()} rows) "
                             f"do not fit this buffer ({self.num_streams}, {self.stream_rows})")
        self.written, self.cursor = written, cursor
        rows = self._written_rows()
        for name in FIELDS:
            stored, value = getattr(self, name), arrays[name]
            if value.shape != (len(rows), *stored.shape[1:]) or value.dtype != stored.dtype:
                raise ValueError(f"replay field {name} has shape {value.shape} ({value.dtype})")
            stored[rows] = value
        self.size = int(np.count_nonzero(self.valid))
        if self.size != int(counters["size"]):
            raise ValueError(f"the replay holds {self.size} transitions, its counter says "
                             f"{counters['size']}")

    def _written_rows(self) -> np.ndarray:
        return np.concatenate([s * self.stream_rows + np.arange(w)
                               for s, w in enumerate(self.written)])
