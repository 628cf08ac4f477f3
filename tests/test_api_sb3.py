"""The Python API as a Stable-Baselines3 user meets it (issue 17, items 1, 3 and 4): learn's
budgets, DDPG.load / TD3.load, predict's pair and its shape checks, what save writes, and a
message saying what to write for each SB3 name dpgkit does not take."""

import json
import os
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

import dpgkit
from dpgkit.checkpoint import find_checkpoint
from dpgkit.cli import main
from dpgkit.errors import DpgkitError

TINY = dict(warmup_steps=100, batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16),
            eval_every_steps=200, eval_episodes=1)


@pytest.fixture(scope="module")
def pendulum(tmp_path_factory) -> dpgkit.DDPG:
    """A DDPG model trained for 300 env steps (not changed by the tests that use it)."""
    run_dir = tmp_path_factory.mktemp("sb3") / "run"
    return dpgkit.DDPG("Pendulum-v1", run_dir=run_dir, **TINY).learn(300)


@pytest.fixture(scope="module")
def counting(tmp_path_factory) -> dpgkit.DDPG:
    """A model of the toy env with 2-D actions in asymmetric bounds [-1, 3] x [0, 2]."""
    run_dir = tmp_path_factory.mktemp("sb3") / "counting"
    return dpgkit.DDPG("dpgkit-test/Counting-v0", run_dir=run_dir, **TINY).learn(150)


def test_learn_to_a_total_the_run_has_is_refused_with_how_to_train_more(tmp_path):
    """Issue 17's reproduction: learn(1200) twice, and learn(1000) after 1500 steps. Both are
    refused with one error naming the form that trains more, and the run is left as it was (no
    checkpoint whose budget is below its env steps)."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY).learn(300)
    with pytest.raises(DpgkitError) as error:
        model.learn(300)
    assert str(error.value) == (
        "learn(300) trains until the run has 300 env steps in all, and it has 300: to train 300 "
        "more, write learn(additional_steps=300) (Stable-Baselines3's "
        "learn(total_timesteps=300) does the same)")
    with pytest.raises(DpgkitError, match=r"learn\(200\) trains until the run has 200 env "
                                          r"steps in all, and it has 300"):
        model.learn(200)
    assert model.env_steps == 300 and model.config.total_env_steps == 300
    meta = json.loads((find_checkpoint(tmp_path / "r") / "checkpoint.json").read_text())
    assert meta["config"]["total_env_steps"] == meta["counters"]["env_steps"] == 300
    with pytest.raises(DpgkitError, match=r"steps\(300\) trains until .* write "
                                          r"steps\(additional_steps=300\)$"):
        model.steps(300)


def test_additional_steps_and_sb3_total_timesteps_train_that_many_more(tmp_path):
    """learn(additional_steps=N) and SB3's learn(total_timesteps=N) each train N more steps,
    whatever reset_num_timesteps says; the SB3 loop of chunks trains every chunk."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY)
    for _ in range(2):
        model.learn(total_timesteps=100)
    assert model.env_steps == 200
    model.learn(total_timesteps=100, reset_num_timesteps=False)
    model.learn(additional_steps=50)
    assert model.env_steps == 350
    events = list(model.steps(additional_steps=50))
    assert [e["env_steps"] for e in events] == list(range(351, 401))
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["env_steps"] == 400


def test_learn_without_a_budget_trains_to_the_config_s(tmp_path):
    """learn() trains to the config's total_env_steps, as `dpgkit train` does; again, it says
    how to train more."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", total_env_steps=150, **TINY)
    assert model.learn().env_steps == 150
    with pytest.raises(DpgkitError, match=r"learn\(\), with the config's total_env_steps, trains "
                                          r"until the run has 150 env steps in all, and it has "
                                          r"150: to train N more, write "
                                          r"learn\(additional_steps=N\)"):
        model.learn()


@pytest.mark.parametrize("kwargs, message", [
    (dict(total_env_steps=300, additional_steps=10), "takes one budget"),
    (dict(total_timesteps=10, additional_steps=10), "takes one budget"),
    (dict(total_env_steps=300, total_timesteps=10), "takes one budget"),
    (dict(additional_steps=0), "additional_steps must be a whole number of env steps >= 1"),
    (dict(total_timesteps=1e4), "total_timesteps must be a whole number of env steps >= 1, "
                                "got 10000.0: write 10_000"),
    (dict(total_env_steps=True), "total_env_steps must be a whole number"),
    (dict(total_timesteps=10, reset_num_timesteps="no"), "reset_num_timesteps must be True or"),
    (dict(total_timesteps=10, log_interval=10), "learn() takes no log_interval (a "
                                                "Stable-Baselines3 keyword)"),
    (dict(total_timesteps=10, progress_bar=True), "learn() takes no progress_bar"),
    (dict(total_timesteps=10, callback=object()), "callback must be a function"),
    (dict(total_timesteps=10, total_steps=5), "learn() takes no total_steps"),
])
def test_a_budget_learn_cannot_honour_is_refused_before_training(tmp_path, kwargs, message):
    """Two budgets, a non-positive or non-integer one, and SB3 keywords dpgkit has not: one
    error each, and no run directory."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY)
    with pytest.raises(DpgkitError) as error:
        model.learn(**kwargs)
    assert message in str(error.value)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("make, message", [
    (lambda env: dpgkit.DDPG("MlpPolicy", env),
     "dpgkit.DDPG takes the environment first and no policy name: write dpgkit.DDPG(env) "
     "instead of DDPG('MlpPolicy', env); its actor and critic are MLPs, sized with "
     "actor_hidden=(400, 300), critic_hidden=(400, 300)"),
    (lambda env: dpgkit.TD3("MlpPolicy", env=env), "write dpgkit.TD3(env)"),
    (lambda env: dpgkit.DDPG(), "needs an environment"),
    (lambda env: dpgkit.DDPG(env, env=env), "got the environment twice"),
    (lambda env: dpgkit.DDPG(env, "MlpPolicy"), "unknown preset 'MlpPolicy'"),
    (lambda env: dpgkit.DDPG(env, policy_kwargs=dict(net_arch=[400, 300])),
     "takes no policy_kwargs (a Stable-Baselines3 keyword): give the network sizes as "
     "settings: actor_hidden=(400, 300), critic_hidden=(400, 300)"),
    (lambda env: dpgkit.DDPG(env, learning_rate=1e-3), "actor_lr= and critic_lr="),
    (lambda env: dpgkit.DDPG(env, buffer_size=10_000), "replay_size="),
    (lambda env: dpgkit.DDPG(env, learning_starts=100), "warmup_steps="),
    (lambda env: dpgkit.DDPG(env, action_noise=None), "exploration_noise='gaussian'"),
    (lambda env: dpgkit.TD3(env, target_policy_noise=0.2), "target_noise="),
    (lambda env: dpgkit.DDPG(env, verbose=1), "takes no verbose"),
    (lambda env: dpgkit.DDPG(env, device="cuda"), "dpgkit runs on the CPU"),
    (lambda env: dpgkit.DDPG(env, tua=0.1), "there is no setting tua (did you mean tau?)"),
])
def test_sb3_constructor_habits_say_what_to_write(make, message):
    """A policy name first, and SB3's constructor keywords, each get one line saying what dpgkit
    takes instead; SB3's names that dpgkit shares (seed, gamma, tau, batch_size, policy_delay,
    target_noise_clip) are simply taken."""
    with pytest.raises(DpgkitError) as error:
        make(gym.make("Pendulum-v1"))
    assert message in str(error.value)
    model = dpgkit.TD3("Pendulum-v1", seed=3, gamma=0.9, tau=0.01, batch_size=64,
                       policy_delay=3, target_noise_clip=0.3)
    assert (model.config.seed, model.config.policy_delay) == (3, 3)
    assert dpgkit.DDPG(env="Pendulum-v1").config.env_id == "Pendulum-v1"


@pytest.mark.parametrize("name, hint", [
    ("get_env", "make one with gym.make"), ("save_replay_buffer", "whole_run=True"),
    ("num_timesteps", "model.env_steps"), ("policy", "model.agent"),
])
def test_sb3_attributes_say_what_to_use(pendulum, name, hint):
    """model.get_env() and other SB3 attributes: an AttributeError saying what to use."""
    with pytest.raises(AttributeError, match=f"has no {name} \\(a Stable-Baselines3 name\\): "
                                             f".*{hint}"):
        getattr(pendulum, name)
    assert not hasattr(pendulum, "no_such_thing")


def test_predict_returns_sb3_s_pair_and_unpacking_gives_the_whole_action(counting):
    """On a 2-D action (the issue's case), action, _ = model.predict(obs) is the whole action in
    the env's bounds, for one observation and for a batch; deterministic= is accepted (the
    policy is deterministic either way) and episode_start ignored."""
    obs = np.array([0.0, 1.0], np.float32)
    action, state = counting.predict(obs)
    assert action.shape == (2,) and state is None
    assert np.all(action >= [-1, 0]) and np.all(action <= [3, 2])
    batch, _ = counting.predict(np.stack([obs, obs + 1, obs + 2]), deterministic=True)
    assert batch.shape == (3, 2)
    np.testing.assert_array_equal(batch[0], action)
    again, _ = counting.predict(obs, None, np.array([True]), False)
    np.testing.assert_array_equal(again, action)
    assert isinstance(counting.predict(obs), tuple) and counting.predict(obs).action is not None


# gymnasium's env checker says it casts the action before the cast raises; ours is the error
@pytest.mark.filterwarnings("ignore:.*Casting input x to numpy array:UserWarning")
def test_the_pair_used_as_an_action_is_an_error_never_a_wrong_action(counting):
    """The README's earlier form, action = model.predict(obs), then env.step(action): the pair
    refuses to be an array, with the line that says how to unpack it."""
    env = gym.make("dpgkit-test/Counting-v0")
    obs, _ = env.reset(seed=0)
    prediction = counting.predict(obs)
    for use in (lambda: env.step(prediction), lambda: np.asarray(prediction),
                lambda: np.clip(prediction, -1, 1)):
        with pytest.raises(DpgkitError, match=r"write action, _ = model.predict\(obs\)"):
            use()
    with pytest.raises(AttributeError, match=r"action, _ = model.predict\(obs\) \(.shape is"):
        _ = prediction.shape
    with pytest.raises(DpgkitError, match="keep no recurrent state"):
        counting.predict(obs, state=np.zeros(2))


@pytest.mark.parametrize("observation, got", [
    (np.zeros(4), "got (4,)"),
    (np.zeros((5, 4)), "got (5, 4)"),
    (np.zeros((2, 2, 3)), "got (2, 2, 3)"),
    (np.zeros((0, 3)), "got (0, 3)"),
    (np.float32(1.0), "got ()"),
    ((np.zeros(3), {}), "got a pair (obs, info), what env.reset() returns: write obs, info = "
                        "env.reset()"),
    (["a", "b", "c"], "got list of dtype <U1"),
    ([[0.0, 1.0], [2.0]], "got list ("),
])
def test_observations_are_checked_in_the_env_s_terms(pendulum, tmp_path, observation, got):
    """Issue 17's reproduction, dpgkit.load(run).predict(np.zeros(4)) on a 3-dim env: a message
    in the env's terms instead of torch's matrix-shape error, from a trained or a loaded model."""
    expected = "expected an observation of shape (3,) for Pendulum-v1 or a batch (B, 3), "
    for model in (pendulum, dpgkit.load(pendulum.run_dir)):
        with pytest.raises(DpgkitError) as error:
            model.predict(observation)
        assert str(error.value).startswith(expected) and got in str(error.value)


def test_save_writes_the_policy_alone_as_a_small_zip_that_load_reads(pendulum, tmp_path):
    """save("model") writes model.zip, as SB3 does: a zip of policy.json and the actor's
    safetensors (no critic, optimiser or replay), readable by others of a shared folder;
    DDPG.load("model") and dpgkit.load find it, and predict the same actions; dpgkit eval
    reads it too."""
    previous = os.umask(0o022)
    try:
        path = pendulum.save(tmp_path / "model")
    finally:
        os.umask(previous)
    assert path == tmp_path / "model.zip" and path.stat().st_mode & 0o777 == 0o644
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["actor.safetensors", "policy.json"]
        meta = json.loads(archive.read("policy.json"))
    assert meta["env"]["env_id"] == "Pendulum-v1" and meta["env_steps"] == 300
    assert meta["run_dir"] == str(pendulum.run_dir.resolve())
    checkpoint = find_checkpoint(pendulum.run_dir)
    assert path.stat().st_size * 3 < (checkpoint / "agent.safetensors").stat().st_size
    obs = np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32)
    for loaded in (dpgkit.DDPG.load(tmp_path / "model"), dpgkit.load(path),
                   dpgkit.DDPG.load(str(path))):
        assert type(loaded) is dpgkit.DDPG and loaded.env_steps == 300
        np.testing.assert_array_equal(loaded.predict(obs)[0], pendulum.predict(obs)[0])
    with pytest.raises(DpgkitError, match="holds the actor alone"):
        _ = loaded.agent
    with pytest.raises(DpgkitError, match=f"cannot train further: .*"
                                          f"dpgkit.DDPG.resume\\('{pendulum.run_dir.resolve()}'"):
        loaded.learn(additional_steps=10)
    with pytest.raises(DpgkitError, match="load\\(\\) takes no device"):
        dpgkit.DDPG.load(path, device="cpu")
    assert main(["eval", str(path), "--episodes", "1"]) == 0  # dpgkit eval reads it too


def test_load_gives_the_algorithm_the_file_holds(pendulum, tmp_path):
    """DDPG.load of a TD3 policy is a TD3 (a DDPG too); TD3.load (or TD3.resume) of a DDPG
    one says which class to use, before touching the run; a run directory loads its newest
    checkpoint, the whole agent."""
    td3 = dpgkit.TD3("Pendulum-v1", run_dir=tmp_path / "t", **TINY).learn(150)
    td3.save(tmp_path / "td3")
    assert type(dpgkit.DDPG.load(tmp_path / "td3")) is dpgkit.TD3
    pendulum.save(tmp_path / "ddpg")
    with pytest.raises(DpgkitError, match="holds a DDPG model: load it with dpgkit.DDPG.load"):
        dpgkit.TD3.load(tmp_path / "ddpg")
    before = (pendulum.run_dir / "metrics.csv").read_bytes()
    with pytest.raises(DpgkitError, match="holds a DDPG model: resume it with "
                                          "dpgkit.DDPG.resume$"):
        dpgkit.TD3.resume(pendulum.run_dir)
    assert (pendulum.run_dir / "metrics.csv").read_bytes() == before
    whole = dpgkit.TD3.load(tmp_path / "t")
    assert whole.agent.critic is not None and whole.env_steps == 150
    with pytest.raises(DpgkitError, match="no policy file or run directory"):
        dpgkit.load(tmp_path / "nothing")


def test_save_whole_run_is_a_run_directory_that_resumes_exactly(tmp_path):
    """save(path, whole_run=True) writes a run directory with a checkpoint of now: resumed, it
    continues exactly as the model it was saved from does."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "a", **TINY).learn(250)
    model.save(tmp_path / "copy", whole_run=True)
    model.learn(additional_steps=150)
    resumed = dpgkit.DDPG.resume(tmp_path / "copy").learn(additional_steps=150)
    assert resumed.env_steps == model.env_steps == 400
    for key, value in model.agent.actor.state_dict().items():
        assert torch.equal(value, resumed.agent.actor.state_dict()[key]), key
    assert (tmp_path / "copy" / "metrics.csv").read_bytes() == \
        (tmp_path / "a" / "metrics.csv").read_bytes()
