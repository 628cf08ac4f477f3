"""Structured observations: Dict/Tuple spaces of Boxes flattened at the env's edge, their layout
recorded for eval and export, and a DeepMind Control Suite task trained from the command line."""

import importlib.util
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import dpgkit
from dpgkit.checkpoint import find_checkpoint, read_checkpoint
from dpgkit.cli import main
from dpgkit.envs import check_fits, env_info, make_env
from dpgkit.errors import DpgkitError, EnvError

SHORT = ["--steps", "300", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden",
         "16", "--critic_hidden", "16", "--eval_every_steps", "300", "--eval_episodes", "1",
         "--no-progress"]
NESTED_LAYOUT = [{"key": "count", "shape": [2], "start": 0, "end": 2},
                 {"key": "extra/0", "shape": [1], "start": 2, "end": 3},
                 {"key": "extra/1", "shape": [2, 2], "start": 3, "end": 7}]


def test_nested_dict_and_tuple_of_boxes_are_flattened_in_gymnasiums_order():
    env = make_env("dpgkit-test/NestedObs-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (7,)
    obs, *_ = env.step(np.array([0.0, 1.0], np.float32))
    # count = [episode 0, step 1], extra = ([1], [[1, 2], [3, 4]] * 1) flattened row by row
    np.testing.assert_array_equal(obs, [0, 1, 1, 1, 2, 3, 4])
    assert env_info(env, "dpgkit-test/NestedObs-v0")["obs_layout"] == NESTED_LAYOUT
    assert "obs_layout" not in env_info(make_env("Pendulum-v1"), "Pendulum-v1")  # flat: as before


def test_a_part_that_is_not_a_box_is_refused():
    with pytest.raises(EnvError, match=r"mode: Discrete"):
        make_env("toy_envs:DiscretePartObsEnv", max_episode_steps=5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_a_structured_run_trains_evaluates_and_exports(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--env", "dpgkit-test/NestedObs-v0", "--out", str(run), *SHORT]) == 0
    _, meta = read_checkpoint(find_checkpoint(run))
    assert meta["env"]["obs_layout"] == NESTED_LAYOUT and meta["env"]["obs_dim"] == 7
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert main(["export", str(run), "--format", "torchscript"]) == 0
    out = capsys.readouterr().out
    assert "flat vector of the env's Dict/Tuple: count [0:2], extra/0 [2:3], extra/1 [3:7]" in out
    extra = {"dpgkit.json": ""}  # and the file says so itself
    torch.jit.load(str(run / "policy.pt"), _extra_files=extra)
    assert json.loads(json.loads(extra["dpgkit.json"])["obs_layout"]) == NESTED_LAYOUT
    # the Python API predicts from the Dict as the env gives it, or from the flat vector
    model = dpgkit.load(run)
    env = gym.make("dpgkit-test/NestedObs-v0")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(env.action_space.sample())
    np.testing.assert_array_equal(model.predict(obs)[0],
                                  model.predict(np.array([0, 1, 1, 1, 2, 3, 4], np.float32))[0])
    # an env with the same size but another structure does not fit the policy
    other = make_env("dpgkit-test/Counting-v0")
    with pytest.raises(EnvError, match="the policy was made for"):
        check_fits(other, "dpgkit-test/Counting-v0", meta["env"])


@pytest.mark.skipif(importlib.util.find_spec("shimmy") is None
                    or importlib.util.find_spec("dm_control") is None,
                    reason="needs the dmc extra: pip install 'dpgkit[dmc]'")
def test_a_deepmind_control_task_trains_from_the_command_line(tmp_path, capsys):
    """dm_control/cartpole-swingup-v0 observes a Dict (position, velocity): no wrapper, no
    import of shimmy by the user; episodes cut at 100 steps to keep it short."""
    run = tmp_path / "dmc"
    assert main(["train", "--env", "dm_control/cartpole-swingup-v0", "--out", str(run),
                 "--max_episode_steps", "100", *SHORT]) == 0
    _, meta = read_checkpoint(find_checkpoint(run))
    assert meta["env"]["obs_layout"] == [
        {"key": "position", "shape": [3], "start": 0, "end": 3},
        {"key": "velocity", "shape": [2], "start": 3, "end": 5}]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["episodes"] == 3 and np.isfinite(summary["eval_return_mean"])
    # resumed mid-episode: dm_control's own generator replays the episode exactly
    assert main(["train", "--resume", str(run), "--steps", "350", "--no-progress"]) == 0
    assert main(["eval", str(run), "--episodes", "1"]) == 0
    assert json.loads((run / "eval.json").read_text())["return_mean"] >= 0  # rewards in [0, 1]


def test_the_python_api_takes_an_env_object_that_observes_a_dict(tmp_path):
    """DDPG(env) with a Dict-observing env object: recorded as its id, flattened as the CLI
    flattens it, and predict takes the env's own Dict."""
    env = gym.make("dpgkit-test/NestedObs-v0")
    model = dpgkit.DDPG(env, run_dir=tmp_path / "run", warmup_steps=50, batch_size=16,
                        actor_hidden=(16,), critic_hidden=(16,), eval_every_steps=100,
                        eval_episodes=1).learn(100)
    assert (model.config.env_id, model.config.env_kwargs) == ("dpgkit-test/NestedObs-v0", {})
    obs, _ = env.reset(seed=0)
    assert model.predict(obs)[0].shape == (2,)
    assert model.evaluate(episodes=1).shape == (1,)


def test_predict_takes_a_tuple_and_a_vector_envs_batch_as_the_env_gives_them(tmp_path):
    """A Tuple at the top of the space, and a vector env's batch of a nested Dict (every part
    with a leading axis): each flattened as the env's layout says, row by row."""
    small = dict(warmup_steps=50, batch_size=16, actor_hidden=(16,), critic_hidden=(16,),
                 eval_every_steps=100, eval_episodes=1)
    model = dpgkit.DDPG("dpgkit-test/TupleObs-v0", run_dir=tmp_path / "tuple", **small).learn(100)
    obs = (np.array([4.0, 2.0], np.float32), np.array([[2.0]], np.float32))
    np.testing.assert_array_equal(model.predict(obs)[0],
                                  model.predict(np.array([4, 2, 2], np.float32))[0])
    with pytest.raises(DpgkitError, match=r"a pair \(obs, info\)"):
        model.predict(gym.make("dpgkit-test/TupleObs-v0").reset(seed=0))
    with pytest.raises(DpgkitError, match=r"part '1' has shape \(2,\): expected \(1, 1\)"):
        model.predict((np.zeros(2), np.zeros(2)))

    nested = dpgkit.DDPG("dpgkit-test/NestedObs-v0", run_dir=tmp_path / "nested",
                         **small).learn(100)
    envs = gym.make_vec("dpgkit-test/NestedObs-v0", num_envs=3, vectorization_mode="sync")
    batch, _ = envs.reset(seed=0)
    batch, *_ = envs.step(envs.action_space.sample())
    actions = nested.predict(batch)[0]
    assert actions.shape == (3, 2)
    for i in range(3):
        one = {"count": batch["count"][i], "extra": (batch["extra"][0][i], batch["extra"][1][i])}
        np.testing.assert_allclose(nested.predict(one)[0], actions[i], atol=1e-6)
    with pytest.raises(DpgkitError, match=r"count \[0:2\].*part 'extra/1' has shape \(3, 4\)"):
        nested.predict({"count": batch["count"], "extra": (batch["extra"][0], np.zeros((3, 4)))})
