"""Runs trained on env objects stay usable (issue 17, item 2): the run records a form another
process can make, checked against the object; where there is none, every later use says to pass
the env, and evaluate(env=), load(run, env=) and DDPG.resume(run, env=) take it."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.pendulum import PendulumEnv
from gymnasium.wrappers import NormalizeObservation, TimeLimit
from toy_envs import CountingEnv

import dpgkit
from dpgkit.errors import DpgkitError
from dpgkit.instances import record

TINY = dict(warmup_steps=100, batch_size=32, actor_hidden=(16, 16), critic_hidden=(16, 16),
            eval_every_steps=200, eval_episodes=1)
TESTS = Path(__file__).parent


def changed_gravity() -> gym.Env:
    env = gym.make("Pendulum-v1")
    env.unwrapped.g = 3.0  # set after gym.make: no record of it in env.spec
    return env


class ScriptEnv(CountingEnv):
    """A class as a script defines it: another process cannot import it by name."""


ScriptEnv.__module__ = "__main__"


@pytest.mark.parametrize("make, recorded", [
    (lambda: gym.make("Pendulum-v1"), ("Pendulum-v1", {})),
    (lambda: gym.make("Pendulum-v1", g=5.0, render_mode="rgb_array"), ("Pendulum-v1", {"g": 5.0})),
    (lambda: gym.make("Pendulum-v1", max_episode_steps=50),
     ("Pendulum-v1", {"max_episode_steps": 50})),
    (lambda: TimeLimit(gym.make("Pendulum-v1").unwrapped, 50),
     ("Pendulum-v1", {"max_episode_steps": 50})),
    (lambda: gym.make("Pendulum-v1").unwrapped,
     ("gymnasium.envs.classic_control.pendulum:PendulumEnv", {})),
    (lambda: CountingEnv(), ("toy_envs:CountingEnv", {})),
    (lambda: gym.make("dpgkit-test/Counting-v0"), ("dpgkit-test/Counting-v0", {})),
])
def test_an_env_object_is_recorded_as_what_makes_it(make, recorded):
    """gym.make's id and arguments, or module:Class: whichever makes an env with the object's
    wrappers, spaces and first steps."""
    assert record(make()) == recorded


@pytest.mark.parametrize("make", [
    changed_gravity,                                        # an attribute set after gym.make
    lambda: NormalizeObservation(gym.make("Pendulum-v1")),  # a wrapper added by hand
    lambda: ScriptEnv(),                                    # a class of a script
    lambda: PendulumEnv(g=3.0),                             # a class made with an argument
    lambda: CountingEnv(terminate_after=2),                 # one the first steps do not show
])
def test_an_object_nothing_remakes_gets_an_id_of_this_process(make):
    """Where no record makes the same env, the id is one this process registered (copies of the
    object); the object itself is not stepped by the comparison."""
    env = make()
    before = env.unwrapped.__dict__.copy() if isinstance(env.unwrapped, CountingEnv) else None
    env_id, kwargs = record(env)
    assert env_id.startswith("dpgkit-instance/") and kwargs == {}
    made = gym.make(env_id)
    assert type(made.unwrapped) is type(env.unwrapped)
    if before is not None:
        assert env.unwrapped.episode == before["episode"] and env.unwrapped.actions == []


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """``code`` in a new Python process (tests/ on its path, as for toy_envs)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, text=True,
                          capture_output=True, timeout=300,
                          env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"})


def test_a_run_on_a_recorded_object_works_in_a_new_process(tmp_path):
    """Issue 17's reproduction: dpgkit.TD3(env object), then in a new process
    dpgkit.load(run).evaluate(2) and `dpgkit train --resume run` work."""
    run = tmp_path / "run"
    dpgkit.TD3(gym.make("Pendulum-v1", g=9.0), run_dir=run, **TINY).learn(200)
    config = json.loads((run / "config.json").read_text())
    assert config["env_id"] == "Pendulum-v1" and config["env_kwargs"] == {"g": 9.0}
    result = run_python(f"""
        import dpgkit
        print(dpgkit.load({str(run)!r}).evaluate(2).shape)
        """, tmp_path)
    assert result.returncode == 0 and "(2,)" in result.stdout, result.stderr
    resumed = subprocess.run([sys.executable, "-m", "dpgkit", "train", "--resume", str(run),
                              "--steps", "300", "--no-progress"], capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 300


def test_a_run_on_an_object_nothing_remakes_asks_for_the_env_and_takes_it(tmp_path):
    """In a new process, load(run).evaluate(), DDPG.resume(run) and `dpgkit train --resume` say
    to pass the env; load(run, env=...) and DDPG.resume(run, env=...) then work."""
    run = tmp_path / "run"
    dpgkit.DDPG(changed_gravity(), run_dir=run, **TINY).learn(200)
    result = run_python(f"""
        import gymnasium as gym
        import dpgkit
        for attempt in (lambda: dpgkit.load({str(run)!r}).evaluate(1),
                        lambda: dpgkit.DDPG.resume({str(run)!r})):
            try:
                attempt()
            except dpgkit.errors.DpgkitError as error:
                print("refused:", error)
        env = gym.make("Pendulum-v1")
        env.unwrapped.g = 3.0
        print("evaluated", dpgkit.load({str(run)!r}, env=env).evaluate(1).shape)
        print("resumed", dpgkit.DDPG.resume({str(run)!r}, env=env).learn(300).env_steps)
        """, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["refused", "refused"]
    assert "stands for an env object given to dpgkit's Python API" in lines[0]
    assert "dpgkit.DDPG.resume(RUN, env=my_env).learn()" in lines[1]
    assert lines[2:] == ["evaluated (1,)", "resumed 300"]
    cli = subprocess.run([sys.executable, "-m", "dpgkit", "train", "--resume", str(run)],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 2 and "pass that env again in Python" in cli.stderr


def test_evaluate_takes_an_env_and_refuses_one_the_policy_does_not_fit(tmp_path):
    """evaluate(env=...) plays on an env object or id of the same spaces (another gravity is
    fine); one with other spaces is refused, in evaluate and in load(run, env=)."""
    model = dpgkit.DDPG("Pendulum-v1", run_dir=tmp_path / "r", **TINY).learn(150)
    assert model.evaluate(2, env=gym.make("Pendulum-v1", g=2.0)).shape == (2,)
    assert model.evaluate(1, env="Pendulum-v1").shape == (1,)
    for use in (lambda: model.evaluate(1, env="MountainCarContinuous-v0"),
                lambda: dpgkit.load(tmp_path / "r", env=gym.make("MountainCarContinuous-v0"))):
        with pytest.raises(DpgkitError, match="the policy was made for Pendulum-v1 .* but "
                                              "MountainCarContinuous-v0 is"):
            use()


def test_resume_on_another_env_than_the_recorded_one_is_refused(tmp_path):
    """A run whose env any process makes continues on that env: env= naming another is
    refused rather than silently ignored."""
    dpgkit.DDPG(gym.make("Pendulum-v1", g=9.0), run_dir=tmp_path / "r", **TINY).learn(150)
    with pytest.raises(DpgkitError, match=r"this run trained on Pendulum-v1 with env_kwargs "
                                          r"\{'g': 9.0\}.*leave out env="):
        dpgkit.DDPG.resume(tmp_path / "r", env=gym.make("Pendulum-v1"))
    resumed = dpgkit.DDPG.resume(tmp_path / "r", env=gym.make("Pendulum-v1", g=9.0))
    assert resumed.learn(200).env_steps == 200
    assert np.isfinite(resumed.evaluate(1)).all()
