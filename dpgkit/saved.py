"""What the Python API reads from disk and writes beside a run: a model from a policy file, a
run directory or a checkpoint; a run's saved config; a copy of a whole run.

``save(path)`` writes a policy file (:mod:`dpgkit.policy_file`); ``save(path, whole_run=True)``
writes :func:`copy_run`'s run directory; ``load`` reads either, or any run directory.
"""

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dpgkit import rundir
from dpgkit.agent import DDPGAgent
from dpgkit.agents import make_agent
from dpgkit.checkpoint import find_checkpoint, load_agent, resume_meta, step_checkpoint_dir
from dpgkit.config import DDPGConfig
from dpgkit.config_dict import config_from_dict, config_to_dict
from dpgkit.errors import CheckpointError, DpgkitError
from dpgkit.policy_file import is_policy_file, policy_path, read_policy, write_policy

if TYPE_CHECKING:
    from dpgkit.loop import Trainer


@dataclasses.dataclass
class Loaded:
    """A model read from disk: its agent (of which a policy file holds only the deployed
    policy: the actor; TD7's checkpointed actor and state encoder), the env record it was
    trained for, and the env steps it had trained."""

    agent: DDPGAgent
    env: dict[str, Any]
    env_steps: int
    whole_agent: bool

    def act(self, policy: str, named: str) -> Callable[[np.ndarray], np.ndarray]:
        """The action function of ``policy`` (:meth:`DDPGAgent.chosen_policy`). A policy file
        holds the deployed policy alone and refuses ``current``; ``named`` is how the caller's
        user asked for it (``--policy current``, ``policy='current'``)."""
        if policy == "current" and not self.whole_agent:
            raise DpgkitError(f"{named} needs a run or checkpoint directory: a policy file holds "
                              "only the deployed policy")
        return self.agent.chosen_policy(policy)[1]


def read_model(path: Path) -> tuple[Loaded, Path | None]:
    """The model at ``path`` (a policy file, ``.zip`` optional; a run directory; a checkpoint
    directory) and the run directory it comes from (None if unknown)."""
    if not path.exists() and policy_path(path).exists():
        path = policy_path(path)
    if path.is_file():
        if not is_policy_file(path):
            raise CheckpointError(f"{path} is not a dpgkit policy file (a zip archive written "
                                  "by save) or run directory")
        tensors, meta = read_policy(path)
        run = meta.get("run_dir")
        return _from_policy(tensors, meta, path), Path(run) if run else None
    if path.is_dir():
        agent, meta = load_agent(path)
        loaded = Loaded(agent, meta["env"], int(meta["counters"]["env_steps"]), True)
        return loaded, find_checkpoint(path).parent.parent
    raise DpgkitError(f"no policy file or run directory at {path}")


def saved_config(run_dir: Path) -> DDPGConfig:
    """The config of the checkpoint a resume of ``run_dir`` starts from (read before the resume
    rebuilds the run; a newest checkpoint that fails its checks is passed over, as the resume
    will)."""
    meta = resume_meta(run_dir)
    if meta is None:
        find_checkpoint(run_dir)  # no checkpoint at all, or a --seeds directory: say so
        raise CheckpointError(f"no checkpoint of {run_dir} can be read: every checkpoint.json "
                              "is missing, corrupt or fails its integrity check")
    return config_from_dict(meta["config"])


def copy_run(trainer: "Trainer", run_dir: Path, path: Path) -> Path:
    """Write the run of ``trainer`` (in ``run_dir``) as a new run directory ``path``: its files
    (config.json, metrics.csv, TensorBoard events, ...) and one checkpoint of now, which
    ``DDPG.resume(path)`` and ``dpgkit train --resume path`` continue."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DpgkitError(f"save(path, whole_run=True) writes a new run directory, and {path} "
                          "exists and is not empty: choose another path")
    trainer.writer.file.flush()  # metrics.csv then has the length the checkpoint records
    trainer.writer.tensorboard.flush()
    path.mkdir(parents=True, exist_ok=True)
    for entry in run_dir.iterdir():
        if entry.is_file():
            shutil.copy2(entry, path / entry.name)
    trainer.write_state(step_checkpoint_dir(rundir.checkpoints_dir(path), trainer.env_steps))
    return path


def save_policy(path: Path, agent: DDPGAgent, config: DDPGConfig, env: dict[str, Any],
                env_steps: int, run_dir: Path | None) -> Path:
    """Write ``agent``'s policy file at ``path`` (:mod:`dpgkit.policy_file`): the deployed
    policy's tensors (the actor; TD7's checkpointed actor with its state encoder) and
    normalize_obs' statistics, with the run's ``config`` (its latest budget), the env record
    and the env steps trained."""
    meta = {"algorithm": config.algorithm, "config": config_to_dict(config),
            "env": env, "env_steps": env_steps,
            "run_dir": str(run_dir.resolve()) if run_dir else None}
    tensors = {**agent.deployed_policy().state_dict(),
               **{f"obs_norm.{k}": v for k, v in agent.obs_norm.state_dict().items()}}
    return write_policy(path, tensors, meta)


def _from_policy(tensors: dict[str, Any], meta: dict[str, Any], path: Path) -> Loaded:
    try:
        config = config_from_dict(meta["config"])
        env = meta["env"]
        agent = make_agent(int(env["obs_dim"]), int(env["action_dim"]), config)
        norm = {k: v for k, v in tensors.items() if k.startswith("obs_norm.")}
        agent.obs_norm.load_state_dict({k[len("obs_norm."):]: v for k, v in norm.items()},
                                       strict=True)
        agent.deployed_policy().load_state_dict(  # into the agent's own modules
            {k: v for k, v in tensors.items() if k not in norm}, strict=True)
    except (DpgkitError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} holds a config, env or actor that do not fit "
                              f"({str(error).strip().splitlines()[0]})") from None
    return Loaded(agent, env, int(meta.get("env_steps", 0)), False)
