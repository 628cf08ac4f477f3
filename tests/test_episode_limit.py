"""Episode limits: --max_episode_steps cuts any env's episodes by truncation (an env class of
the user's too); an env with no limit at all gets the documented default, with a warning, and
never hangs an evaluation."""

import csv

import numpy as np
import pytest

from dpgkit.cli import main
from dpgkit.envs import ActionScaler, make_env
from dpgkit.episode_limit import DEFAULT_EPISODE_STEPS
from dpgkit.errors import ConfigError, DpgkitWarning
from dpgkit.evaluation import evaluate
from dpgkit.presets import preset_config


def episode_length(env, seed=0):
    env.reset(seed=seed)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
    return steps, terminated, truncated


def test_a_class_of_the_users_is_cut_by_truncation():
    env = make_env("toy_envs:EndlessEnv", max_episode_steps=7)
    assert episode_length(env) == (7, False, True)


def test_an_ids_registered_limit_is_replaced():
    env = make_env("Pendulum-v1", max_episode_steps=30)
    assert episode_length(env) == (30, False, True)


def test_an_env_without_a_limit_gets_the_default_with_a_warning_when_it_cuts(recwarn):
    env = make_env("toy_envs:StaggeredEnv")  # ends its episodes itself: never warned
    assert episode_length(env)[0] < DEFAULT_EPISODE_STEPS and not recwarn.list
    env = make_env("toy_envs:EndlessEnv")
    with pytest.warns(DpgkitWarning, match="has no time limit of its own.*--max_episode_steps"):
        assert episode_length(env) == (DEFAULT_EPISODE_STEPS, False, True)
    returns = evaluate(lambda obs: np.zeros(2), env, ActionScaler.for_space(env.action_space),
                       [0])  # ends
    assert returns.shape == (1,)


def test_the_setting_reaches_training_and_evaluation(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--env", "toy_envs:EndlessEnv", "--max_episode_steps", "10",
                 "--out", str(run), "--steps", "60", "--warmup_steps", "20", "--batch_size", "8",
                 "--actor_hidden", "8", "--critic_hidden", "8", "--eval_every_steps", "60",
                 "--eval_episodes", "1", "--no-progress"]) == 0
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    lengths = {int(row["episode_length"]) for row in rows if row["episode_length"]}
    assert max(lengths) == 10  # (CountingEnv's odd episodes terminate at step 3)
    assert main(["eval", str(run), "--episodes", "1", "--env", "toy_envs:EndlessEnv"]) == 0


def test_given_twice_is_refused():
    with pytest.raises(ConfigError, match="max_episode_steps is given twice"):
        preset_config("ddpg", max_episode_steps=10, env_kwargs={"max_episode_steps": 20})
