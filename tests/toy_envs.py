"""Small environments whose episodes, observations and rewards are known exactly."""

import gymnasium as gym
import numpy as np


class CountingEnv(gym.Env):
    """obs = [episode index, step within the episode]; reward = the step reached.

    Terminates after ``terminate_after`` steps in odd episodes (a true terminal state); in even
    episodes it runs until the TimeLimit wrapper truncates it. The action space has asymmetric
    bounds, low = [-1, 0], high = [3, 2], to check action rescaling.
    """

    def __init__(self, terminate_after: int = 3) -> None:
        self.terminate_after = terminate_after
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32),
                                           np.array([3.0, 2.0], np.float32))
        self.episode = -1
        self.t = 0
        self.actions: list[np.ndarray] = []

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray):
        assert self.action_space.contains(action), action
        self.actions.append(np.array(action))
        self.t += 1
        terminated = self.episode % 2 == 1 and self.t >= self.terminate_after
        return self._obs(), float(self.t), terminated, False, {}


gym.register("dpgkit-test/Counting-v0", entry_point=CountingEnv, max_episode_steps=5)


class StaggeredEnv(gym.Env):
    """Each instance k (in order of creation) has episodes of 2 + k steps: even episodes end
    terminated, odd ones truncated. obs = [k, episode, step]. Loaded as
    ``toy_envs:StaggeredEnv`` to check module:Class loading and vector-env autoreset."""

    instances = 0

    def __init__(self) -> None:
        self.k = StaggeredEnv.instances
        StaggeredEnv.instances += 1
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.episode, self.t = -1, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.k, self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action: np.ndarray):
        self.t += 1
        ended = self.t >= 2 + self.k
        terminated = ended and self.episode % 2 == 0
        truncated = ended and self.episode % 2 == 1
        return self._obs(), 1.0, terminated, truncated, {}


class NaNEnv(gym.Env):
    """Pendulum-sized toy env whose observation becomes NaN at step ``nan_at`` of the run."""

    nan_at = 250

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.steps = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action: np.ndarray):
        self.steps += 1
        self.t += 1
        obs = np.full(3, np.nan if self.steps >= self.nan_at else 0.1, np.float32)
        return obs, -float(np.square(action).sum()), False, self.t >= 50, {}


class DictActionEnv(CountingEnv):
    """A Dict action space, which DDPG cannot act in."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Dict({"a": gym.spaces.Box(-1.0, 1.0, shape=(1,))})


class ImageObsEnv(CountingEnv):
    """An image observation space (3-D Box), which dpgkit does not flatten by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Box(0, 255, shape=(8, 8, 3), dtype=np.uint8)


class NeedsArgumentEnv(CountingEnv):
    """A class that cannot be made without an argument (dpgkit makes ``module:Class`` with none)."""

    def __init__(self, size: int) -> None:
        super().__init__()


class NoSpacesEnv(gym.Env):
    """An env that forgot to set its spaces."""


class EndlessEnv(CountingEnv):
    """CountingEnv with no time limit (made by class, not by id): its even episodes never end
    by themselves; its odd ones terminate at step 3, as CountingEnv's do."""


class NestedObsEnv(CountingEnv):
    """CountingEnv observing a nested Dict/Tuple of Boxes: {"count": [episode, step],
    "extra": ([step], [[1, 2], [3, 4]] * step)}, flattened by dpgkit in that order."""

    def __init__(self) -> None:
        super().__init__()
        box = gym.spaces.Box
        self.observation_space = gym.spaces.Dict({
            "count": box(-np.inf, np.inf, shape=(2,), dtype=np.float32),
            "extra": gym.spaces.Tuple((box(-np.inf, np.inf, shape=(1,), dtype=np.float32),
                                       box(-np.inf, np.inf, shape=(2, 2), dtype=np.float32)))})

    def _obs(self) -> dict:
        grid = np.array([[1, 2], [3, 4]], np.float32) * self.t
        return {"count": super()._obs(), "extra": (np.array([self.t], np.float32), grid)}


gym.register("dpgkit-test/NestedObs-v0", entry_point=NestedObsEnv, max_episode_steps=5)


class TupleObsEnv(CountingEnv):
    """CountingEnv observing a Tuple at the top: ([episode, step], [[step]]), flattened by
    dpgkit to [episode, step, step]."""

    def __init__(self) -> None:
        super().__init__()
        box = gym.spaces.Box
        self.observation_space = gym.spaces.Tuple((
            box(-np.inf, np.inf, shape=(2,), dtype=np.float32),
            box(-np.inf, np.inf, shape=(1, 1), dtype=np.float32)))

    def _obs(self) -> tuple:
        return super()._obs(), np.array([[self.t]], np.float32)


gym.register("dpgkit-test/TupleObs-v0", entry_point=TupleObsEnv, max_episode_steps=5)


class DiscretePartObsEnv(CountingEnv):
    """A Dict observation with a Discrete part, which dpgkit does not flatten."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(-1, 1, shape=(1,)),
                                                  "mode": gym.spaces.Discrete(3)})


class ScaledObservation(gym.ObservationWrapper):
    """An env's observations times ``scale`` (Pendulum's reach 8e3 with 1e3)."""

    def __init__(self, env: gym.Env, scale: float) -> None:
        super().__init__(env)
        self.scale = scale
        space = env.observation_space
        self.observation_space = gym.spaces.Box(space.low * scale, space.high * scale,
                                                dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return (observation * self.scale).astype(np.float32)


gym.register("dpgkit-test/ScaledPendulum-v0", max_episode_steps=200,
             entry_point=lambda scale=1e3, **kwargs: ScaledObservation(
                 gym.make("Pendulum-v1", max_episode_steps=None, **kwargs).unwrapped, scale))


class BrokenInitEnv(CountingEnv):
    """An env whose constructor fails (a missing asset, say)."""

    def __init__(self) -> None:
        raise RuntimeError("cannot open assets/robot.xml")


class WrongResetShapeEnv(CountingEnv):
    """reset() returns an observation of shape (3,) for a (2,) observation space."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}


class OldGymEnv(CountingEnv):
    """Written to the old Gym API: reset returns the obs only, step a 4-tuple."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        return super().reset(seed=seed)[0]

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


class OldGymStepEnv(OldGymEnv):
    """Half ported: reset follows Gymnasium, step still returns the old 4-tuple."""

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        return CountingEnv.reset(self, seed=seed)


class FlakyEnv(gym.Env):
    """A deterministic, Pendulum-sized env (episodes of 20 steps) whose step fails as set by the
    class attributes: at its ``fail_at``-th step (counted per instance; the training env is
    the second instance made, after the evaluation env) it raises, or with ``bad_shape`` returns
    an observation of the wrong shape. ``signal_in_eval``: it sends SIGINT to its own process at
    the 5th step of an evaluation episode (reset with a seed of 1,000,000 or more), once."""

    fail_at: int | None = None
    bad_shape = False
    signal_in_eval = False

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)
        self.steps, self.t, self.x, self.evaluating = 0, 0, np.zeros(3), False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.evaluating = 0, seed is not None and seed >= 1_000_000
        self.x = self.np_random.uniform(-1.0, 1.0, 3)
        return self.x.astype(np.float32), {}

    def step(self, action: np.ndarray):
        self.steps += 1
        self.t += 1
        if self.steps == FlakyEnv.fail_at and not FlakyEnv.bad_shape:
            raise ConnectionError("the simulator closed the connection")
        if FlakyEnv.signal_in_eval and self.evaluating and self.t == 5:
            import os
            import signal

            FlakyEnv.signal_in_eval = False
            os.kill(os.getpid(), signal.SIGINT)
        self.x = np.tanh(0.9 * self.x + 0.3 * float(action[0]) * np.array([1.0, -0.5, 0.2]))
        obs = self.x.astype(np.float32)
        if self.steps == FlakyEnv.fail_at and FlakyEnv.bad_shape:
            obs = obs[:2]
        return obs, -float(np.square(self.x).sum()), False, self.t >= 20, {}
