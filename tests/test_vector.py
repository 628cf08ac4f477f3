"""Collection from several envs at once: every stored transition is a real step of one env."""

import numpy as np
import pytest
from toy_envs import StaggeredEnv

from dpgkit.envs import make_env
from dpgkit.noise import noise_scale
from dpgkit.presets import preset_config
from dpgkit.train import Trainer


def staggered_trainer(tmp_path, num_envs: int, mode: str = "sync") -> Trainer:
    StaggeredEnv.instances = 0  # the eval env is instance 0, the vector envs 1 .. num_envs
    config = preset_config("ddpg", env_id="toy_envs:StaggeredEnv", num_envs=num_envs,
                           vector_mode=mode, actor_hidden=(8,), critic_hidden=(8,), batch_size=4,
                           warmup_steps=10, total_env_steps=10_000, eval_every_steps=10_000)
    return Trainer(config, tmp_path / "run")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_no_transition_spans_two_episodes(tmp_path, mode):
    num_envs, steps = 3, 12
    trainer = staggered_trainer(tmp_path, num_envs, mode)
    for _ in range(steps):
        trainer.step()
    assert trainer.env_steps == len(trainer.replay) == num_envs * steps
    stored = trainer.replay.transitions()
    obs, next_obs = stored["obs"], stored["next_obs"]
    terminated, truncated = stored["terminated"], stored["truncated"]
    # same env, same episode, one step later: never the first obs of the next episode
    np.testing.assert_array_equal(next_obs[:, :2], obs[:, :2])
    np.testing.assert_array_equal(next_obs[:, 2], obs[:, 2] + 1)
    length = 2 + obs[:, 0]  # env k's episodes last 2 + k steps
    ended = next_obs[:, 2] == length
    np.testing.assert_array_equal(terminated, ended & (obs[:, 1] % 2 == 0))
    np.testing.assert_array_equal(truncated, ended & (obs[:, 1] % 2 == 1))
    if mode == "async":  # the async envs are built in their own processes, all as instance 1
        return
    # each env's transitions come in order and cover its episodes without gaps
    for k in range(1, num_envs + 1):
        rows = obs[obs[:, 0] == k]
        assert len(rows) == steps
        expected_t = [t for _ in range(steps) for t in range(2 + k)][:steps]
        np.testing.assert_array_equal(rows[:, 2], expected_t)
    episodes = sum(steps // (2 + k) for k in range(1, num_envs + 1))
    assert trainer.episodes_done == episodes


def test_updates_follow_the_ratio_to_transitions(tmp_path):
    trainer = staggered_trainer(tmp_path, num_envs=4)
    for _ in range(10):  # 40 transitions, the first 10 of them warm-up
        trainer.step()
    # updates start with the step that passes warm-up (env_steps 12), then 4 per step of 4 envs
    assert trainer.agent.updates == 4 * (10 - 2)


def test_module_class_env_loads_and_unknown_module_is_clear():
    env = make_env("toy_envs:StaggeredEnv")
    assert isinstance(env.unwrapped, StaggeredEnv)  # inside its (default) time limit
    from dpgkit.errors import EnvError

    with pytest.raises(EnvError, match="cannot import 'no_such_module'"):
        make_env("no_such_module:Env")


@pytest.mark.parametrize("kind, at, expected", [
    ("none", 500, 1.0), ("linear", 100, 1.0), ("linear", 300, 0.55), ("linear", 900, 0.1),
    ("exponential", 300, 0.1 ** 0.5), ("exponential", 500, 0.1),
])
def test_noise_scale_schedules(kind, at, expected):
    assert noise_scale(at, kind, start=100, end=500, final_scale=0.1) == pytest.approx(expected)


def test_noise_schedule_changes_the_noise_in_training(tmp_path):
    config = preset_config("ddpg", env_id="toy_envs:StaggeredEnv", actor_hidden=(8,),
                           critic_hidden=(8,), batch_size=4, warmup_steps=0, noise_decay="linear",
                           noise_decay_start=0, noise_decay_end=10, noise_final_scale=0.5,
                           total_env_steps=100, eval_every_steps=100)
    trainer = Trainer(config, tmp_path / "run")
    for _ in range(20):
        trainer.step()
    assert trainer.acting.noise.sigma == pytest.approx(0.5 * config.gaussian_sigma)
