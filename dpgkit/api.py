"""The Python API, familiar to Stable-Baselines3 users, on the same config objects as the CLI.

    import dpgkit
    agent = dpgkit.DDPG("Pendulum-v1", seed=0, tau=0.005)   # any config field as a keyword
    agent.learn(total_env_steps=20_000)
    action = agent.predict(obs)                             # env-scaled, no exploration noise
    agent.save("pendulum-policy")
    same = dpgkit.load("pendulum-policy")

``learn`` takes a callback, called after every env step with the step's events; returning
False stops early. ``steps`` is the same as an iterator.
"""

import copy
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit.agent import DDPGAgent
from dpgkit.checkpoint import load_agent
from dpgkit.config import DDPGConfig
from dpgkit.envs import ActionScaler
from dpgkit.errors import DpgkitError
from dpgkit.loop import Trainer
from dpgkit.presets import preset_config
from dpgkit.rundir import default_run_dir
from dpgkit.train import resume_trainer

_instances = itertools.count()


def _env_id(env: str | gym.Env) -> str:
    """An id for ``env``: itself if a string; for an instance, a registered id whose envs are
    deep copies of it (training and evaluation each get their own)."""
    if isinstance(env, str):
        return env
    env_id = f"dpgkit-instance/{type(env.unwrapped).__name__}{next(_instances)}-v0"
    gym.register(env_id, entry_point=lambda: copy.deepcopy(env))
    return env_id


class DDPG:
    """DDPG on an environment (an id, ``module:Class``, or an instance), with a config built from
    the preset ``preset`` and the keyword ``settings`` (any :class:`DDPGConfig` field)."""

    default_preset = "ddpg"

    def __init__(self, env: str | gym.Env, preset: str | None = None,
                 run_dir: str | Path | None = None, **settings: Any) -> None:
        self.config: DDPGConfig = preset_config(preset or self.default_preset,
                                                env_id=_env_id(env), **settings)
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(self.config)
        self._named_run_dir = run_dir is not None
        self.trainer: Trainer | None = None
        self._policy: tuple[DDPGAgent, ActionScaler] | None = None

    @classmethod
    def resume(cls, run_dir: str | Path) -> "DDPG":
        """Continue the run in ``run_dir`` (from its newest checkpoint) with ``learn``."""
        self = cls.__new__(cls)
        self.trainer = resume_trainer(Path(run_dir))
        self.config, self.run_dir, self._policy = self.trainer.config, Path(run_dir), None
        self._named_run_dir = True
        return self

    def steps(self, total_env_steps: int) -> Iterator[dict[str, Any]]:
        """Train until the run has ``total_env_steps`` env steps, yielding after each step a dict
        with ``env_steps`` and, when they happen, ``episode_return`` and ``eval_return_mean``."""
        if self.trainer is None and self._policy is not None:
            raise DpgkitError("a policy loaded with dpgkit.load cannot train further; continue "
                              "its run with dpgkit.DDPG.resume(RUN_DIR)")
        if self.trainer is None:
            if not self._named_run_dir:  # a default name taken (two agents in one second): -2...
                base, n = self.run_dir, 1
                while self.run_dir.exists():
                    n += 1
                    self.run_dir = base.with_name(f"{base.name}-{n}")
            self.trainer = Trainer(self.config, self.run_dir)
        trainer = self.trainer
        trainer.config = self.config = dataclasses.replace(self.config,
                                                           total_env_steps=total_env_steps)
        while not trainer.budget_reached:
            events = trainer.step()
            yield {"env_steps": trainer.env_steps, **events}
        trainer.finish(close=False)  # checkpoint, curve.png and summary.json, as the CLI writes

    def learn(self, total_env_steps: int,
              callback: Callable[[dict[str, Any]], bool | None] | None = None) -> "DDPG":
        """Train until the run has ``total_env_steps`` env steps (SB3's ``learn``); stop early
        when ``callback(events)`` returns False. Writes the run directory as the CLI does."""
        for events in self.steps(total_env_steps):
            if callback is not None and callback(events) is False:
                self.trainer.finish(close=False)  # steps() finishes only a run it completes
                break
        return self

    @property
    def agent(self) -> DDPGAgent:
        if self.trainer is not None:
            return self.trainer.agent
        if self._policy is None:
            raise DpgkitError("this agent has not been trained or loaded yet: call learn()")
        return self._policy[0]

    def predict(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action mu(s), scaled to the env's bounds, for one observation
        (obs_dim,) or a batch (B, obs_dim): what dpgkit would send to ``env.step``."""
        agent = self.agent  # a clear error before learn() or load()
        scaler = self.trainer.scaler if self.trainer is not None else self._policy[1]
        return scaler.to_env(agent.deployed_act(np.asarray(obs, dtype=np.float32)))

    def save(self, path: str | Path) -> Path:
        """Write the whole run (networks, optimisers, replay, RNGs) as a checkpoint directory."""
        if self.trainer is None:
            raise DpgkitError("nothing to save: call learn() first")
        return self.trainer.write_state(Path(path))

    def evaluate(self, episodes: int = 10, seed: int = 0) -> np.ndarray:
        """Returns of ``episodes`` episodes without noise, from env.reset(seed=seed + k)."""
        from dpgkit.envs import evaluate, make_env

        env = make_env(self.config.env_id)
        try:
            return evaluate(self.agent.deployed_act, env, ActionScaler.for_space(env.action_space),
                            [seed + k for k in range(episodes)])
        finally:
            env.close()


class TD3(DDPG):
    """TD3 (Fujimoto et al. 2018): DDPG plus twin critics, target smoothing, delayed updates."""

    default_preset = "td3"


class TD7(DDPG):
    """TD7 (Fujimoto et al. 2023): TD3 plus SALE, LAP, target clipping, policy checkpoints."""

    default_preset = "td7"


def load(path: str | Path) -> DDPG:
    """A policy saved with ``save`` (or a run directory's newest checkpoint), ready to predict."""
    agent, meta = load_agent(Path(path))
    cls = {"td3": TD3, "td7": TD7}.get(agent.config.algorithm, DDPG)
    model = cls.__new__(cls)
    model.config, model.run_dir, model.trainer = agent.config, Path(path), None
    model._named_run_dir = True
    bounds = meta["env"]["action_low"], meta["env"]["action_high"]
    model._policy = (agent, ActionScaler(*bounds))
    return model
