"""Export a trained deterministic policy as a standalone model: raw observation -> env action.

The exported model computes, for a float32 batch of raw observations ``obs`` of shape
(B, obs_dim), the action dpgkit would send to ``env.step``:

    a_env = clip(low + (mu_theta(n(obs)) + 1) * (high - low) / 2, low, high)      # per dimension

where n is the run's observation normalisation with its statistics at the checkpoint
(``normalize_obs``: clip((obs - mean) / sqrt(var + 1e-8), -obs_clip, obs_clip), computed in
float64; without it, n(obs) = obs), mu_theta the actor in eval mode (batch norm, if any, uses
its running statistics; for TD7 the checkpointed policy, or with ``--policy current`` the one
being trained, its state encoder included: mu(s, f(s))), followed by
:func:`dpgkit.equations.scale_action` with the env's Box bounds, clipped against rounding as
:class:`dpgkit.envs.ActionScaler` does. For an env that observes a Dict or Tuple, ``obs`` is the
flat vector of :mod:`dpgkit.obs_layout` (``dpgkit export`` prints where each part lies).
Asymmetric bounds work. Nothing else is needed to run it: no dpgkit, no Gymnasium, and for ONNX
not even torch.

Each file also says what it holds, as :func:`model_metadata` strings (dpgkit's version, the
algorithm, the policy (``deployed`` or ``current``), env id, obs_dim, action_dim, the action
bounds, the Dict/Tuple layout of the flat observation, the env steps trained): ONNX in the
model's ``metadata_props``
(``onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map``), TorchScript in the
extra file ``dpgkit.json`` (``torch.jit.load(path, _extra_files={"dpgkit.json": ""})``).

Formats:

- ``onnx``: written by the torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``,
  the default and maintained one since torch 2.9; it needs the ``onnx`` and ``onnxscript``
  packages). The input is named ``obs`` and the output ``action``; the batch axis is dynamic.
  Opset 18 (:data:`ONNX_OPSET`) is chosen on purpose: it is the opset the exporter's operator
  library is written in, so no version conversion (which may fail) runs, and it is old enough
  for every onnxruntime from 1.14 on.
- ``torchscript``: ``torch.jit.trace`` of the same module, saved with ``torch.jit.save`` and
  loaded with ``torch.jit.load``. Tracing freezes eval mode into the graph. torch deprecates
  TorchScript, but its files still load; ONNX is the format to prefer.

:func:`predict` is dpgkit's own reference prediction, the parity check for both formats.
"""

import contextlib
import copy
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dpgkit.agent import DDPGAgent
from dpgkit.checkpoint import META_FILE, load_agent
from dpgkit.envs import ActionScaler
from dpgkit.errors import DpgkitError, writable_file
from dpgkit.rundir import CHECKPOINTS, POLICY_FILES

FORMATS = POLICY_FILES
"""Export formats and the file name each is written to by default (in the run directory)."""

ONNX_OPSET = 18
"""The ONNX opset of exported models (see the module docstring for why 18)."""

ONNX_PACKAGES = ("onnx", "onnxscript")
"""The packages torch's ONNX exporter needs besides torch."""


class ExportedPolicy(nn.Module):
    """Raw observation (B, obs_dim) -> env action (B, action_dim), both float32.

    Holds a frozen copy of the actor and the env's action bounds as buffers, so the module is
    self-contained and the training agent is left untouched. It is always in eval mode (batch
    norm uses its running statistics): ``train()`` does not change that.

    Args:
        actor: the trained policy, raw obs -> action in [-1, 1] (``agent.chosen_policy``).
        low, high: the env's action bounds, one value per action dimension, low < high.
        obs_norm: the run's observation normaliser (``agent.obs_norm``), applied to the raw
            observation first; None: none.
    """

    def __init__(self, actor: nn.Module, low: Sequence[float], high: Sequence[float],
                 obs_norm: nn.Module | None = None) -> None:
        super().__init__()
        low_t = torch.as_tensor(low, dtype=torch.float32)
        high_t = torch.as_tensor(high, dtype=torch.float32)
        if low_t.ndim != 1 or low_t.shape != high_t.shape or not bool((low_t < high_t).all()):
            raise DpgkitError(f"bad action bounds low={list(low)}, high={list(high)}: they must "
                              "be two equally long lists with low < high in every dimension")
        self.actor = copy.deepcopy(actor).requires_grad_(False)
        self.obs_norm = copy.deepcopy(obs_norm) if obs_norm is not None else nn.Identity()
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)
        self.eval()

    def train(self, mode: bool = True) -> "ExportedPolicy":
        """Stays in eval mode whatever ``mode`` asks: the module is for inference only."""
        return super().train(False)

    def forward(self, obs: Tensor) -> Tensor:
        """(B, obs_dim) raw observations -> (B, action_dim) actions within [low, high]."""
        unit_action = self.actor(self.obs_norm(obs))  # normalize_obs: the run's statistics
        return self.to_env(unit_action)

    def to_env(self, unit_action: Tensor) -> Tensor:
        """a_env = clip(low + (a + 1) * (high - low) / 2, low, high): [-1, 1] -> [low, high]."""
        env_action = self.low + (unit_action + 1.0) * (self.high - self.low) / 2.0
        return torch.minimum(torch.maximum(env_action, self.low), self.high)


def build_policy(agent: DDPGAgent, meta: dict[str, Any], policy: str = "deployed"
                 ) -> ExportedPolicy:
    """The :class:`ExportedPolicy` of a loaded agent's ``policy`` (``deployed`` or ``current``:
    :meth:`dpgkit.agent.DDPGAgent.chosen_policy`) and its checkpoint metadata."""
    low, high = _bounds(meta)
    if len(low) != agent.action_dim:
        raise DpgkitError(f"the checkpoint's action bounds have {len(low)} dimensions but its "
                          f"actor has {agent.action_dim}: the checkpoint is corrupt")
    return ExportedPolicy(agent.chosen_policy(policy)[0], low, high, agent.obs_norm)


def predict(agent: DDPGAgent, meta: dict[str, Any], obs: np.ndarray, policy: str = "deployed"
            ) -> np.ndarray:
    """dpgkit's own env action for ``obs``, (obs_dim,) -> (action_dim,) or (B, obs_dim) ->
    (B, action_dim), float32: the action of ``agent.chosen_policy(policy)``, then
    :class:`dpgkit.envs.ActionScaler` with the checkpoint's bounds in float64, clipped to them and
    cast to float32, as sent to ``env.step`` for a float32 Box. The reference an exported model
    must reproduce."""
    return ActionScaler(*_bounds(meta)).to_env(agent.chosen_policy(policy)[1](obs))


def model_metadata(meta: dict[str, Any], policy: str = "deployed") -> dict[str, str]:
    """What an exported file records about its policy (which one: ``policy``), from the
    checkpoint's metadata: strings (lists as JSON), as ONNX's ``metadata_props`` require."""
    env = meta["env"]
    return {"dpgkit_version": str(meta.get("versions", {}).get("dpgkit", "")),
            "algorithm": str(meta.get("config", {}).get("algorithm", "")), "policy": policy,
            "env_id": str(env.get("env_id", "")),
            "obs_dim": str(env["obs_dim"]), "action_dim": str(env["action_dim"]),
            "action_low": json.dumps(env["action_low"]),
            "action_high": json.dumps(env["action_high"]),
            "obs_layout": json.dumps(env.get("obs_layout") or []),
            "env_steps": str(meta.get("counters", {}).get("env_steps", ""))}


def export_policy(run_dir: Path, fmt: str, output: Path | None = None,
                  policy: str = "deployed") -> Path:
    """Write ``policy`` (``deployed`` or ``current``) of the run (or checkpoint) at ``run_dir``
    in format ``fmt`` (``onnx`` or ``torchscript``) to ``output``, by default
    ``run_dir / "policy.onnx"`` or ``"policy.pt"`` (``policy-current.onnx``, ...); return the
    path written. The file is written under a temporary name and renamed into place, so it is
    complete or absent. Raises DpgkitError for an unknown format or policy, a missing ONNX
    package, an output inside a checkpoint directory, or a checkpoint that cannot be loaded.
    """
    run_dir = Path(run_dir)
    output = _output_path(run_dir, _check_format(fmt), output, policy)
    if fmt == "onnx":
        _require_onnx_packages()
    agent, meta = load_agent(run_dir)
    exported = build_policy(agent, meta, policy)
    example = torch.zeros(2, agent.obs_dim)  # batch 2: a batch of 1 would be specialised
    writer = _write_onnx if fmt == "onnx" else _write_torchscript
    temporary = output.with_name(f".{output.name}.tmp")
    try:
        writer(exported, example, temporary, model_metadata(meta, policy))
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output


# --- helpers -----------------------------------------------------------------------------------

def _bounds(meta: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The env's action bounds (low, high) recorded in a checkpoint's metadata."""
    try:
        return ([float(x) for x in meta["env"]["action_low"]],
                [float(x) for x in meta["env"]["action_high"]])
    except (KeyError, TypeError, ValueError) as error:
        raise DpgkitError(f"the checkpoint lacks valid action bounds ({error!r}): it was not "
                          "written by `dpgkit train`, or is corrupt") from None


def _check_format(fmt: str) -> str:
    """``fmt`` if it is a known export format; DpgkitError otherwise."""
    if fmt not in FORMATS:
        raise DpgkitError(f"unknown export format {fmt!r}: choose one of "
                          f"{', '.join(FORMATS)}")
    return fmt


def _output_path(run_dir: Path, fmt: str, output: Path | None, policy: str) -> Path:
    """Where to write: ``output``, or the format's default file in ``run_dir`` (``-current``
    added to its name for the current policy). A file inside a checkpoint directory is refused:
    the checkpoint would then fail its integrity check."""
    stem, extension = FORMATS[fmt].split(".")
    stem += "-current" if policy == "current" else ""
    if output is None and (run_dir / META_FILE).is_file():  # a checkpoint: beside its run's files
        home = run_dir.parent.parent if run_dir.parent.name == CHECKPOINTS else run_dir.parent
        output = home / f"{stem}-{run_dir.name}.{extension}"
    path = Path(output) if output is not None else run_dir / f"{stem}.{extension}"
    if (path.parent / META_FILE).is_file():
        raise DpgkitError(f"{path.parent} is a checkpoint directory, and an extra file in it "
                          "would make the checkpoint fail to load: give the run directory or "
                          "an output path outside the checkpoint")
    return writable_file(path, "-o")


def _require_onnx_packages() -> None:
    """DpgkitError naming the install command if a package the ONNX exporter needs is missing."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise DpgkitError(f"ONNX export needs the package(s) {', '.join(missing)}, which are not "
                          f"installed: run `pip install {' '.join(missing)}` (or reinstall "
                          "dpgkit, which depends on them) and try again")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter: notices of optional packages, torch's own deprecations."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _write_onnx(policy: ExportedPolicy, example: Tensor, path: Path,
                metadata: dict[str, str]) -> None:
    """``policy`` as one ONNX file (weights inside), input "obs", output "action", batch axis
    dynamic, opset :data:`ONNX_OPSET`, ``metadata`` in its ``metadata_props``."""
    import onnx

    batch = torch.export.Dim("batch")
    with _quiet_exporter():
        torch.onnx.export(policy, (example,), str(path), input_names=["obs"],
                          output_names=["action"], opset_version=ONNX_OPSET, dynamo=True,
                          dynamic_shapes={"obs": {0: batch}}, external_data=False,
                          verbose=False)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, metadata)
    onnx.save(model, str(path))


def _write_torchscript(policy: ExportedPolicy, example: Tensor, path: Path,
                       metadata: dict[str, str]) -> None:
    """``policy`` traced to TorchScript and saved with ``torch.jit.save``, ``metadata`` as the
    JSON extra file ``dpgkit.json``."""
    with _quiet_exporter(), torch.no_grad():
        torch.jit.save(torch.jit.trace(policy, example), str(path),
                       _extra_files={"dpgkit.json": json.dumps(metadata)})
