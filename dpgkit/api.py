"""The Python API, on the same configs and run directories as the command line (docs/api.md).

    import dpgkit
    model = dpgkit.DDPG("Pendulum-v1", seed=0, tau=0.005)   # any config field as a keyword
    model.learn(20_000)                       # until the run has 20,000 env steps in all
    model.learn(additional_steps=5_000)       # 5,000 more
    action, _ = model.predict(obs)            # mu(s) in the env's bounds: (action, None)
    model.save("pendulum")                    # pendulum.zip: the policy alone
    same = dpgkit.DDPG.load("pendulum")

Stable-Baselines3's names work where dpgkit does the same thing (``learn(total_timesteps=N)``,
``predict(obs, deterministic=True)``, ``DDPG.load``); the others get a message saying what to
write instead (:mod:`dpgkit.sb3`).
"""

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dpgkit import instances, sb3
from dpgkit.agent import DDPGAgent
from dpgkit.api_input import budget_target, checked_observation, learn_budget, made_env
from dpgkit.config import DDPGConfig
from dpgkit.envs import ActionScaler, check_fits
from dpgkit.errors import DpgkitError
from dpgkit.evaluation import evaluate
from dpgkit.loop import Trainer
from dpgkit.presets import preset_config
from dpgkit.rundir import default_run_dir
from dpgkit.saved import Loaded, copy_run, read_model, save_policy, saved_config
from dpgkit.sb3 import Prediction
from dpgkit.train import resume_trainer


class DDPG:
    """DDPG on an environment (an id, ``module:Class``, or an env object), with a config built
    from the preset ``preset`` and the keyword ``settings`` (any :class:`DDPGConfig` field)."""

    default_preset = "ddpg"

    def __init__(self, env: str | gym.Env | None = None, /, preset: str | None = None,
                 run_dir: str | Path | None = None, **settings: Any) -> None:
        sb3.check_settings(type(self).__name__, env, preset, settings)
        if "env" in settings:  # DDPG(env=...)
            env = settings.pop("env")
        if env is None:
            raise DpgkitError(f"dpgkit.{type(self).__name__}() needs an environment: an id such "
                              "as 'Pendulum-v1', module:Class, or an env object")
        if not isinstance(env, str):
            if "env_kwargs" in settings:
                raise DpgkitError("env_kwargs= goes with an env id; an env object is recorded "
                                  "with the arguments it was made with")
            env, env_kwargs = instances.record(env)
            settings = {**settings, "env_kwargs": env_kwargs}
        self.config: DDPGConfig = preset_config(preset or self.default_preset, env_id=env,
                                                **settings)
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(self.config)
        self._named_run_dir = run_dir is not None
        self.trainer: Trainer | None = None
        self._loaded: Loaded | None = None
        self._env: gym.Env | str | None = None

    @classmethod
    def resume(cls, run_dir: str | Path, env: gym.Env | str | None = None,
               torch_threads: int | None = None) -> "DDPG":
        """The run in ``run_dir``, continued from its newest checkpoint by ``learn``. ``env``:
        the env object (or id) a run trained on an object that could not be recorded needs;
        ``torch_threads``: this machine's share of cores, if not the run's own."""
        run_dir = Path(run_dir)
        saved = saved_config(run_dir)  # checked before the resume touches the run's files
        model_class = _model_class(cls, saved.algorithm, run_dir, "resume")
        if env is not None:
            instances.attach(saved.env_id, saved.env_kwargs, env)
        trainer = resume_trainer(run_dir, torch_threads=torch_threads)
        self = model_class.__new__(model_class)
        self.config, self.run_dir, self._named_run_dir = trainer.config, run_dir, True
        self.trainer, self._loaded, self._env = trainer, None, None
        return self

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | str | None = None, **sb3_settings: Any
             ) -> "DDPG":
        """A model to predict and evaluate with, from a policy file written by ``save`` (``.zip``
        may be left out), a run directory (its newest checkpoint) or a checkpoint directory.
        ``env``: the env ``evaluate`` uses by default (it must fit the policy's spaces)."""
        sb3.check_load(sb3_settings)
        loaded, run = read_model(Path(path))
        model_class = _model_class(cls, loaded.agent.config.algorithm, Path(path))
        model = model_class.__new__(model_class)
        model.config, model.trainer, model._loaded = loaded.agent.config, None, loaded
        model.run_dir, model._named_run_dir = run, True
        model._env = None
        if env is not None:
            with made_env(env, model.config) as made:
                model._check_env(made)
            model._env = env
        return model

    # --- training ---------------------------------------------------------------------------

    def steps(self, total_env_steps: int | None = None, *, additional_steps: int | None = None
              ) -> Iterator[dict[str, Any]]:
        """Train as ``learn`` does, yielding the events dict after every env step."""
        return self._steps(self._target("steps", total_env_steps, additional_steps))

    def learn(self, total_env_steps: int | None = None,
              callback: Callable[[dict[str, Any]], bool | None] | None = None, *,
              additional_steps: int | None = None, total_timesteps: int | None = None,
              reset_num_timesteps: bool = True, **sb3_settings: Any) -> "DDPG":
        """Train until the run has ``total_env_steps`` env steps in all (default: the config's
        ``total_env_steps``), or for ``additional_steps`` more; ``total_timesteps`` is
        Stable-Baselines3's name for the latter (``reset_num_timesteps`` either way: dpgkit never
        resets a run's step counter). ``callback(events)`` after every env step; False stops."""
        sb3.check_learn(sb3_settings)
        additional_steps, clash = learn_budget(additional_steps, total_timesteps,
                                               reset_num_timesteps, callback)
        target = self._target("learn", total_env_steps, additional_steps, clash)
        for events in self._steps(target):
            if callback is not None and callback(events) is False:
                self.trainer.finish(close=False)  # _steps finishes only a run it completes
                break
        return self

    def _target(self, call: str, total_env_steps: int | None, additional_steps: int | None,
                clash: bool = False) -> int:
        """The env step ``call`` trains until, checked: a budget the run already has is an
        error that says how to train more."""
        if self.trainer is None and self._loaded is not None:
            where = f"dpgkit.DDPG.resume({str(self.run_dir)!r})" if self.run_dir else \
                "dpgkit.DDPG.resume(RUN_DIR)"
            raise DpgkitError(f"a model loaded with load() cannot train further: it holds the "
                              f"policy, not the run; continue the run with {where}")
        return budget_target(call, self.env_steps, self.config.total_env_steps,
                             total_env_steps, additional_steps, clash)

    def _steps(self, target: int) -> Iterator[dict[str, Any]]:
        self.config = dataclasses.replace(self.config, total_env_steps=target)
        if self.trainer is None:
            if not self._named_run_dir:  # a default name taken (two models in one second): -2...
                base, n = self.run_dir, 1
                while self.run_dir.exists():
                    n += 1
                    self.run_dir = base.with_name(f"{base.name}-{n}")
            self.trainer = Trainer(self.config, self.run_dir)
        trainer = self.trainer
        trainer.config = self.config
        trainer.hold()
        while not trainer.budget_reached:
            events = trainer.step()
            yield {"env_steps": trainer.env_steps, **events}
        trainer.finish(close=False)  # checkpoint, curve.png and summary.json, as the CLI writes

    # --- using the policy -------------------------------------------------------------------

    @property
    def agent(self) -> DDPGAgent:
        """The agent (networks, optimisers, update); a policy file holds only its actor."""
        if self.trainer is not None:
            return self.trainer.agent
        if self._loaded is None:
            raise DpgkitError("this model has not been trained or loaded yet: call learn()")
        if not self._loaded.whole_agent:
            raise DpgkitError("this model was loaded from a policy file, which holds the actor "
                              "alone (model.predict uses it); load the run directory for the "
                              "whole agent")
        return self._loaded.agent

    @property
    def env_steps(self) -> int:
        """Env steps the run has trained (for a loaded model: when it was saved)."""
        if self.trainer is not None:
            return self.trainer.env_steps
        return self._loaded.env_steps if self._loaded is not None else 0

    def _policy(self, policy: str = "deployed"
                ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
        """mu(s) in [-1, 1] of ``policy`` (``deployed``, TD7's checkpointed one; ``current``),
        and the env record (id, sizes, bounds) it was trained for."""
        if self.trainer is not None:
            return self.trainer.agent.chosen_policy(policy)[1], self.trainer.env_info
        if self._loaded is None:
            raise DpgkitError("this model has not been trained or loaded yet: call learn()")
        return self._loaded.act(policy, f"policy={policy!r}"), self._loaded.env

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True, *, policy: str = "deployed") -> Prediction:
        """``(action, None)``: the action mu(s) scaled to the env's bounds, with no exploration
        noise, for one observation of shape (obs_dim,) -> (action_dim,) or a batch
        (B, obs_dim) -> (B, action_dim). ``deterministic`` is accepted and changes nothing (the
        policy is deterministic, as in Stable-Baselines3's DDPG and TD3); ``state`` must be None
        and ``episode_start`` is ignored (no recurrent policies). ``policy``: ``deployed`` or
        ``current``, as ``dpgkit eval --policy`` (TD7: its checkpointed policy or the one being
        trained)."""
        act, env = self._policy(policy)
        if state is not None:
            raise DpgkitError("dpgkit's policies keep no recurrent state: leave state out (it "
                              "is always None)")
        obs = checked_observation(observation, env)
        scaler = ActionScaler(env["action_low"], env["action_high"])
        return Prediction(scaler.to_env(act(obs)), None)

    def evaluate(self, episodes: int = 10, seed: int = 0, env: gym.Env | str | None = None,
                 policy: str = "deployed") -> np.ndarray:
        """Returns of ``episodes`` episodes without noise, episode k from
        ``env.reset(seed=seed + k)``, on ``env`` (an env object or id; default: the one given to
        ``load``, else the run's own), played by ``policy`` (as :meth:`predict`'s)."""
        act, _ = self._policy(policy)
        with made_env(env if env is not None else self._env, self.config) as made:
            self._check_env(made)
            return evaluate(act, made, ActionScaler.for_space(made.action_space),
                            [seed + k for k in range(episodes)])

    def _check_env(self, env: gym.Env) -> None:
        check_fits(env, getattr(env.spec, "id", None) or type(env.unwrapped).__name__,
                   self._policy()[1])

    # --- saving -------------------------------------------------------------------------------

    def save(self, path: str | Path, whole_run: bool = False) -> Path:
        """Write the policy alone (the default): one small file, ``path`` with ``.zip`` added
        when it has no suffix, that ``load`` reads (the deployed policy: the actor; TD7's
        checkpointed actor with its state encoder). With ``whole_run=True``, a copy of the run
        directory at ``path`` with a checkpoint of now, which ``DDPG.resume(path)`` and
        ``dpgkit train --resume path`` continue. Returns what was written."""
        if whole_run:
            return self._save_run(Path(path))
        _, env = self._policy()
        agent = self.trainer.agent if self.trainer is not None else self._loaded.agent
        return save_policy(Path(path), agent, self.config, env, self.env_steps, self.run_dir)

    def _save_run(self, path: Path) -> Path:
        if self.trainer is None:
            raise DpgkitError("save(path, whole_run=True) needs a model that trains (made with "
                              "DDPG(env) and learn, or DDPG.resume): a loaded model is a policy")
        return copy_run(self.trainer, self.run_dir, path)

    def __getattr__(self, name: str) -> Any:
        raise sb3.attribute_error(type(self).__name__, name)


class TD3(DDPG):
    """TD3 (Fujimoto et al. 2018): DDPG plus twin critics, target smoothing, delayed updates."""

    default_preset = "td3"


class TD7(DDPG):
    """TD7 (Fujimoto et al. 2023): TD3 plus SALE, LAP, target clipping, policy checkpoints."""

    default_preset = "td7"


def load(path: str | Path, env: gym.Env | str | None = None) -> DDPG:
    """``DDPG.load``, ``TD3.load`` or ``TD7.load``, whichever the file holds: a model to predict
    with."""
    return DDPG.load(path, env)


def _model_class(cls: type[DDPG], algorithm: str, path: Path, verb: str = "load"
                 ) -> type[DDPG]:
    found = {"td3": TD3, "td7": TD7}.get(algorithm, DDPG)
    if not issubclass(found, cls):
        either = " (or dpgkit.load)" if verb == "load" else ""
        raise DpgkitError(f"{path} holds a {found.__name__} model: {verb} it with "
                          f"dpgkit.{found.__name__}.{verb}{either}")
    return found
