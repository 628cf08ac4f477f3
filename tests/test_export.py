"""Exported policies (ONNX, TorchScript) give the env actions dpgkit itself would send."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dpgkit.checkpoint import find_checkpoint, load_agent
from dpgkit.cli import main
from dpgkit.envs import ActionScaler
from dpgkit.errors import DpgkitError
from dpgkit.export import ONNX_OPSET, ExportedPolicy, build_policy, export_policy, predict

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

TOLERANCE = 1e-5
SHORT = ["--steps", "300", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden", "16,16",
         "--critic_hidden", "16,16", "--eval_every_steps", "300", "--eval_episodes", "1",
         "--no-progress"]
RUNS = {
    "pendulum": ["--env", "Pendulum-v1"],
    "counting": ["--env", "dpgkit-test/Counting-v0"],  # asymmetric bounds [-1, 0] .. [3, 2]
    "batch-norm": ["--env", "Pendulum-v1", "--batch_norm", "true"],
    "td7": ["--env", "Pendulum-v1", "--preset", "td7", "--steps", "800", "--actor_hidden", "16",
            "--critic_hidden", "16", "--zs_dim", "8", "--encoder_hidden", "16",
            "--checkpoint_min_steps", "200"],  # with f(s); a checkpoint, then bursts after it
    "normalized": ["--env", "Pendulum-v1", "--normalize_obs", "true"],  # the statistics inside
    "td7-normalized": ["--env", "Pendulum-v1", "--preset", "td7", "--steps", "500",
                       "--actor_hidden", "16", "--critic_hidden", "16", "--zs_dim", "8",
                       "--encoder_hidden", "16", "--normalize_obs", "true"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One short training run per case of RUNS, made once for the module."""
    root = tmp_path_factory.mktemp("export-runs")
    made = {}
    for name, args in RUNS.items():
        assert main(["train", "--out", str(root / name), *SHORT, *args]) == 0
        made[name] = root / name
    return made


def observations(obs_dim: int, n: int = 1000) -> np.ndarray:
    """Raw float32 observations, wide enough to saturate tanh and reach the action bounds."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, obs_dim)) * 5.0).astype(np.float32)


def run_onnx(path: Path, obs: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["action"], {"obs": obs})[0]


def run_torchscript(path: Path, obs: np.ndarray) -> np.ndarray:
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(torch.from_numpy(obs)).numpy()


RUNNERS = {"onnx": run_onnx, "torchscript": run_torchscript}


@pytest.mark.parametrize("fmt", list(RUNNERS))
@pytest.mark.parametrize("case", list(RUNS))
def test_exported_policy_matches_dpgkit(runs, case, fmt, tmp_path):
    agent, meta = load_agent(runs[case])
    path = export_policy(runs[case], fmt, tmp_path / f"policy-{fmt}")
    obs = observations(agent.obs_dim)
    expected = predict(agent, meta, obs)

    actions = RUNNERS[fmt](path, obs)
    assert actions.shape == (1000, agent.action_dim) and actions.dtype == np.float32
    assert np.abs(actions - expected).max() < TOLERANCE
    single = RUNNERS[fmt](path, obs[:1])  # batch 1: the batch axis is not fixed at export
    assert single.shape == (1, agent.action_dim)
    assert np.abs(single - expected[:1]).max() < TOLERANCE

    low, high = (np.asarray(meta["env"][key], np.float32) for key in ("action_low", "action_high"))
    assert np.all(actions >= low) and np.all(actions <= high)


def test_predict_handles_one_observation_and_asymmetric_bounds(runs):
    agent, meta = load_agent(runs["counting"])
    obs = observations(agent.obs_dim, 5)
    batch = predict(agent, meta, obs)
    assert predict(agent, meta, obs[0]).shape == (2,)
    np.testing.assert_array_equal(predict(agent, meta, obs[0]), batch[0])
    unit = agent.act(obs).astype(np.float64)
    expected = np.array([-1.0, 0.0]) + (unit + 1.0) * np.array([4.0, 2.0]) / 2.0
    np.testing.assert_allclose(batch, expected, atol=1e-6)


def test_onnx_model_declares_its_interface(runs):
    path = export_policy(runs["counting"], "onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == ONNX_OPSET
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "obs" and out.name == "action"
    in_dims = inp.type.tensor_type.shape.dim
    assert in_dims[0].dim_param and not in_dims[0].dim_value, "batch axis must be dynamic"
    assert in_dims[1].dim_value == 2
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_each_file_says_what_policy_it_holds(runs, tmp_path):
    """The same strings in an ONNX model's metadata and a TorchScript file's dpgkit.json: a
    deployment reads the env, the bounds and the observation's layout from the file alone."""
    onnx_path = export_policy(runs["counting"], "onnx", tmp_path / "p.onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    from_onnx = session.get_modelmeta().custom_metadata_map
    extra = {"dpgkit.json": ""}
    torch.jit.load(str(export_policy(runs["counting"], "torchscript", tmp_path / "p.pt")),
                   _extra_files=extra)
    assert from_onnx == json.loads(extra["dpgkit.json"])
    assert from_onnx["env_id"] == "dpgkit-test/Counting-v0" and from_onnx["algorithm"] == "ddpg"
    assert from_onnx["policy"] == "deployed"
    assert (from_onnx["obs_dim"], from_onnx["action_dim"], from_onnx["env_steps"]) == (
        "2", "2", "300")
    assert json.loads(from_onnx["action_low"]) == [-1.0, 0.0]
    assert json.loads(from_onnx["action_high"]) == [3.0, 2.0]
    assert json.loads(from_onnx["obs_layout"]) == [] and from_onnx["dpgkit_version"]
    td7 = export_policy(runs["td7"], "onnx", tmp_path / "td7.onnx")
    assert ort.InferenceSession(str(td7), providers=["CPUExecutionProvider"]).get_modelmeta(
        ).custom_metadata_map["algorithm"] == "td7"


@pytest.mark.parametrize("fmt, name", [("onnx", "policy.onnx"), ("torchscript", "policy.pt")])
def test_default_output_is_in_the_run_directory(runs, fmt, name):
    path = export_policy(runs["pendulum"], fmt)
    assert path == runs["pendulum"] / name and path.is_file()
    assert not list(runs["pendulum"].glob(".*.tmp")), "no temporary file left behind"
    load_agent(runs["pendulum"])  # the run still loads


def test_bad_format_is_a_clear_error(runs, tmp_path):
    with pytest.raises(DpgkitError, match="unknown export format 'tflite'.*onnx, torchscript"):
        export_policy(runs["pendulum"], "tflite", tmp_path / "policy")
    assert not (tmp_path / "policy").exists()


def test_missing_onnx_package_names_it_and_how_to_install(runs, tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real_find_spec(name, *a))
    with pytest.raises(DpgkitError, match=r"needs the package\(s\) onnx.*pip install onnx"):
        export_policy(runs["pendulum"], "onnx", tmp_path / "policy.onnx")


def test_output_inside_a_checkpoint_is_refused(runs):
    checkpoint = find_checkpoint(runs["pendulum"])
    with pytest.raises(DpgkitError, match="checkpoint directory"):
        export_policy(checkpoint, "torchscript", checkpoint / "policy.pt")
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "agent.safetensors", "checkpoint.json", "replay.safetensors"]
    # by default, a checkpoint's export goes beside its run's own files
    written = export_policy(checkpoint, "torchscript")
    assert written == runs["pendulum"] / f"policy-{checkpoint.name}.pt" and written.is_file()


def test_scaling_maps_the_tanh_range_onto_the_bounds_exactly(runs):
    agent, meta = load_agent(runs["counting"])
    policy = build_policy(agent, meta)
    unit = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [1.5, -1.5]])
    expected = torch.tensor([[-1.0, 0.0], [3.0, 2.0], [1.0, 1.0], [3.0, 0.0]])
    assert torch.equal(policy.to_env(unit), expected)


def test_exported_policy_stays_in_eval_mode_and_leaves_the_agent_alone(runs):
    agent, meta = load_agent(runs["batch-norm"])
    policy = build_policy(agent, meta)
    policy.train()
    assert not policy.training and not any(m.training for m in policy.modules())
    assert policy.actor is not agent.actor
    with pytest.raises(DpgkitError, match="low < high"):
        ExportedPolicy(agent.actor, [1.0], [-1.0])


@pytest.mark.parametrize("case", ["normalized", "td7-normalized"])
def test_the_observation_statistics_are_inside_the_exported_policy(runs, case):
    """Raw observation in: the exported module normalises with the run's statistics, so the
    actor alone, fed raw observations, gives other actions."""
    agent, meta = load_agent(runs[case])
    assert float(agent.obs_norm.count) == (300 if case == "normalized" else 500)
    policy = build_policy(agent, meta)
    obs = torch.from_numpy(observations(agent.obs_dim, 50))
    with torch.no_grad():
        np.testing.assert_allclose(policy(obs).numpy(), predict(agent, meta, obs.numpy()),
                                   atol=TOLERANCE)
        assert not torch.allclose(policy.obs_norm(obs), obs)


@pytest.mark.parametrize("fmt", list(RUNNERS))
def test_td7_exports_its_current_policy_on_request(runs, fmt):
    """``--policy current``: the policy being trained, not the checkpointed one (they differ
    after the run's last burst), by default beside the deployed one's file (policy-current.onnx);
    the file says which it holds."""
    agent, meta = load_agent(runs["td7"])
    obs = observations(agent.obs_dim)
    assert main(["export", str(runs["td7"]), "--format", fmt, "--policy", "current"]) == 0
    path = runs["td7"] / ("policy-current.onnx" if fmt == "onnx" else "policy-current.pt")
    actions, current = RUNNERS[fmt](path, obs), predict(agent, meta, obs, "current")
    assert np.abs(actions - current).max() < TOLERANCE
    np.testing.assert_array_equal(current, ActionScaler(
        meta["env"]["action_low"], meta["env"]["action_high"]).to_env(agent.act(obs)))
    assert np.abs(current - predict(agent, meta, obs)).max() > 1e-3, "the same as deployed"
    if fmt == "onnx":
        held = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]
                                    ).get_modelmeta().custom_metadata_map
        assert held["policy"] == "current"
