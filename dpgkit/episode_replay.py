"""Rebuilding a running episode in a fresh env, for an exact resume: the env records how its
episode began and the actions it took; a checkpoint stores that record; resume replays it.

Exact for every env whose dynamics depend only on its actions and its ``np_random`` (all of
Gymnasium's classic-control and MuJoCo tasks). :func:`dpgkit.envs.make_vector_env` wraps every
env it makes in an :class:`EpisodeRecorder`.
"""

import gymnasium as gym
import numpy as np


class EpisodeRecorder(gym.Wrapper):
    """Remembers how the running episode began and the actions it took since, so that a
    checkpoint can rebuild the env's exact state by replaying them.

    Exact for every env whose dynamics depend only on its actions and its ``np_random`` (all of
    Gymnasium's classic-control and MuJoCo tasks, and the DeepMind Control Suite's, whose
    ``np_random`` is a legacy ``RandomState``). The record is JSON: the reset seed, or the state
    of ``np_random`` just before an unseeded reset, and the actions as float lists.
    """

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        rng = self.env.unwrapped.np_random
        if seed is not None:
            self.start: dict = {"seed": seed}
        elif isinstance(rng, np.random.RandomState):  # dm_control's tasks (through shimmy)
            name, keys, position, has_gauss, gauss = rng.get_state()
            self.start = {"legacy_rng": [name, keys.tolist(), position, has_gauss, gauss]}
        else:
            self.start = {"rng": rng.bit_generator.state}
        self.actions: list[list[float]] = []
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray):
        self.actions.append(np.asarray(action).tolist())
        try:
            return self.env.step(action)
        except BaseException:  # the step did not happen: a checkpoint must not replay it
            self.actions.pop()
            raise

    def episode_record(self) -> dict:
        """How to rebuild the current state: {"start": ..., "actions": [...]}."""
        return {"start": self.start, "actions": list(self.actions)}

    def replay_episode(self) -> np.ndarray:
        """Rebuild the state that the attribute ``record`` (set before, e.g. by a vector env's
        ``set_attr``) describes; return the current observation."""
        record = self.record
        if "seed" in record["start"]:
            obs, _ = self.reset(seed=record["start"]["seed"])
        elif "legacy_rng" in record["start"]:  # set in place: the task holds the same object
            name, keys, position, has_gauss, gauss = record["start"]["legacy_rng"]
            self.env.unwrapped.np_random.set_state(
                (name, np.asarray(keys, dtype=np.uint32), position, has_gauss, gauss))
            obs, _ = self.reset()
        else:
            generator = np.random.Generator(np.random.PCG64())
            generator.bit_generator.state = record["start"]["rng"]
            self.env.unwrapped.np_random = generator
            obs, _ = self.reset()
        for action in record["actions"]:
            obs = self.step(np.asarray(action, dtype=self.action_space.dtype))[0]
        return obs


def restore_episodes(envs: gym.vector.VectorEnv, records: list[dict]) -> np.ndarray:
    """Put every env of ``envs`` back into the state of its episode record; return the stacked
    current observations."""
    envs.set_attr("record", records)
    return np.stack(envs.call("replay_episode"))
