"""The command line's small ones (issue 17, items 5, 8 and 9), --env_kwargs and
`dpgkit eval --render`: each behaviour with the exact line a user sees."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from dpgkit import envs, rendering
from dpgkit.checkpoint import find_checkpoint
from dpgkit.cli import main

FAST = ["--steps", "200", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden", "16",
        "--critic_hidden", "16", "--eval_every_steps", "100", "--eval_episodes", "1",
        "--checkpoint_every_steps", "100", "--no-progress"]


def status_and_output(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exit_:  # argparse's own errors
        status = int(exit_.code)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("small") / "done"
    assert main(["train", "--out", str(run_dir), *FAST]) == 0
    return run_dir


@pytest.mark.parametrize("env_id, instead", [("Hopper-v3", "Hopper-v5"),
                                             ("HalfCheetah-v2", "HalfCheetah-v5")])
def test_old_mujoco_ids_are_one_line_naming_the_current_version(tmp_path, env_id, instead):
    """Item 5: --env Hopper-v3 (papers' ids) ended in an ImportError traceback, exit 1; now one
    line, exit 2, naming the version to use (and no deprecation warning before it)."""
    result = subprocess.run([sys.executable, "-m", "dpgkit", "train", "--env", env_id, "--out",
                             str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"dpgkit: error: cannot make environment '{env_id}' (The "
                                     "mujoco v2 and v3 based environments have been moved")
    assert f"use {instead}, the same task on the maintained mujoco bindings" in result.stderr


def test_mujoco_settotalmass_line_is_dropped_and_other_warnings_kept(capfd):
    """Item 8: making HalfCheetah printed MuJoCo's settotalmass deprecation (twice per run);
    make_env drops that line and passes any other MuJoCo warning on."""
    import ctypes

    import mujoco

    def address(handler: object) -> int | None:  # None, or where the C callback lies
        return None if handler is None else ctypes.cast(handler, ctypes.c_void_p).value

    envs.make_env("HalfCheetah-v5").close()
    assert "settotalmass" not in capfd.readouterr().err
    before = address(mujoco.get_mju_user_warning())  # None, or dm_control's once it is imported
    with envs.quiet_mujoco("HalfCheetah-v5"):
        handler = mujoco.get_mju_user_warning()
        handler("compiler attribute 'settotalmass' is deprecated")
        handler("something else went wrong")
    assert capfd.readouterr().err == "WARNING: something else went wrong\n"
    assert address(mujoco.get_mju_user_warning()) == before  # the previous handler is back


def test_a_classic_control_video_prints_no_sdl_line(tmp_path):
    """Item 8: every classic-control video printed SDL's 'error: XDG_RUNTIME_DIR is invalid'
    (pygame starting a real video driver); the video env renders on SDL's dummy driver."""
    pytest.importorskip("pygame")
    code = ("from pathlib import Path; from dpgkit.rendering import make_video_env; "
            f"env = make_video_env('Pendulum-v1', Path({str(tmp_path / 'v')!r})); "
            "env.reset(seed=0); env.step(env.action_space.sample()); env.close()")
    environ = {k: v for k, v in os.environ.items()
               if k not in ("XDG_RUNTIME_DIR", "SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=environ)
    assert result.returncode == 0, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr


def test_an_out_that_holds_a_run_names_resume_and_overwrite(finished_run, capsys):
    """Item 9: the --out collision message names --resume and --overwrite."""
    status, _, err = status_and_output(capsys, "train", "--out", str(finished_run), *FAST)
    assert status == 2
    assert err == (f"dpgkit: error: --out {finished_run} already exists and holds a run: "
                   f"continue it with dpgkit train --resume {finished_run}, replace it with "
                   "--overwrite, or choose another --out\n")


def test_a_td3_run_s_config_json_repeats_it_without_preset(tmp_path, capsys):
    """Item 9: a TD3 run's own config.json passed to --config was refused without --preset td3;
    its "preset" now starts the settings (a --preset given still wins)."""
    first = tmp_path / "first"
    assert main(["train", "--preset", "td3", "--out", str(first), *FAST]) == 0
    again = tmp_path / "again"
    assert main(["train", "--config", str(first / "config.json"), "--out", str(again),
                 "--seed", "1", "--no-progress"]) == 0
    config = json.loads((again / "config.json").read_text())
    assert config["algorithm"] == "td3" and config["preset"] == "td3" and config["seed"] == 1
    status, _, err = status_and_output(capsys, "train", "--config", str(first / "config.json"),
                                       "--preset", "ddpg", "--out", str(tmp_path / "x"))
    assert status == 2 and "that is a TD3 setting" in err


def test_checkpoint_files_are_readable_by_the_group(tmp_path):
    """Item 9: safetensors wrote the tensor files 0600, so others of a shared project folder
    could not evaluate them; they get the umask's mode, as every other file."""
    previous = os.umask(0o022)
    try:
        assert main(["train", "--out", str(tmp_path / "r"), *FAST]) == 0
    finally:
        os.umask(previous)
    checkpoint = find_checkpoint(tmp_path / "r")
    for name in ("agent.safetensors", "replay.safetensors", "checkpoint.json"):
        assert stat.S_IMODE((checkpoint / name).stat().st_mode) == 0o644, name


def test_after_a_resume_the_last_line_tells_this_session_from_the_run(tmp_path, finished_run,
                                                                       capsys):
    """Item 9: after a resume the final line gave the whole run's time and rate as this
    process's; it now gives this session's steps, time and rate, and the run's beside them."""
    run = shutil.copytree(finished_run, tmp_path / "run")
    status, out, _ = status_and_output(capsys, "train", "--resume", str(run), "--steps", "300",
                                       "--no-progress")
    assert status == 0
    final = next(line for line in out.splitlines() if line.startswith("final evaluation"))
    assert "(this session: 100 env steps in " in final
    assert "; the whole run: 300 env steps in " in final and final.endswith(" s of training)")


@pytest.mark.parametrize("command", [["eval"], ["export"], ["train", "--resume"]])
def test_a_seeds_parent_points_to_its_seed_runs(tmp_path, finished_run, capsys, command):
    """Item 9: eval, export and --resume on a --seeds directory point to its seed<N>/ runs."""
    parent = tmp_path / "five"
    for seed in (0, 1):
        shutil.copytree(finished_run, parent / f"seed{seed}")
    *verb, = command
    status, _, err = status_and_output(capsys, *verb, str(parent))
    assert status == 2
    assert err == (f"dpgkit: error: {parent} holds the runs of --seeds (seed0, seed1), not one "
                   f"run: name one of them, as in {parent / 'seed0'}\n")


@pytest.mark.parametrize("given, recorded", [
    (["g=5.0", "max_episode_steps=40"], {"g": 5.0, "max_episode_steps": 40}),
    (["g:5.0,max_episode_steps:40"], {"g": 5.0, "max_episode_steps": 40}),
    (['{"g": 5.0, "max_episode_steps": 40}'], {"g": 5.0, "max_episode_steps": 40}),
])
def test_env_kwargs_are_recorded_and_make_the_env(tmp_path, given, recorded):
    """--env_kwargs as key=value pairs (or rl-zoo's key:value) or JSON: recorded in config.json,
    and the env is made with them (episodes of max_episode_steps), in training and in eval."""
    run = tmp_path / "r"
    assert main(["train", "--env_kwargs", *given, "--out", str(run), *FAST]) == 0
    assert json.loads((run / "config.json").read_text())["env_kwargs"] == recorded
    lengths = {line.split(",")[4] for line in (run / "metrics.csv").read_text().splitlines()[1:]
               if line.split(",")[4]}
    assert lengths == {"40"}
    assert main(["eval", str(run), "--episodes", "1"]) == 0


@pytest.mark.parametrize("given, message", [
    (["{not json"], "argument --env_kwargs/--env-kwargs: not a valid JSON object"),
    (["[1, 2]"], "expected a JSON object or key=value pairs"),
    (["g"], "expected a JSON object or key=value pairs such as g=9.81,max_episode_steps=100"),
    (["render_mode=human"], "env_kwargs may not set render_mode"),
    (["no_such_argument=1"], "cannot make Pendulum-v1 with the env_kwargs no_such_argument "
                             "(PendulumEnv.__init__() got an unexpected keyword argument "
                             "'no_such_argument'): give only arguments the env takes"),
])
def test_bad_env_kwargs_are_one_line(tmp_path, capsys, given, message):
    """A malformed --env_kwargs, render_mode, or an argument the env does not take: exit 2."""
    status, _, err = status_and_output(capsys, "train", "--env_kwargs", *given, "--out",
                                       str(tmp_path / "r"), *FAST)
    assert status == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_render_without_a_display_says_so_in_one_line(finished_run, capsys, monkeypatch):
    """`dpgkit eval RUN --render` where no display exists: one line, exit 2, pointing to
    --video; with --video as well: refused."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    status, _, err = status_and_output(capsys, "eval", str(finished_run), "--render")
    assert status == 2
    assert err == ("dpgkit: error: --render opens a window, and there is no display here "
                   "(DISPLAY and WAYLAND_DISPLAY are unset): record the episodes instead with "
                   "--video DIR\n")
    status, _, err = status_and_output(capsys, "eval", str(finished_run), "--render", "--video",
                                       "v")
    assert status == 2 and "not both" in err


def test_render_with_a_display_makes_a_human_window_env(finished_run, capsys, monkeypatch):
    """Where a display exists, --render makes the env with render_mode="human" (here a
    stand-in that opens no window) and plays the episodes on it."""
    made = []

    def fake_make_env(env_id, **kwargs):
        made.append(kwargs)
        return gym.make(env_id)

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(rendering, "make_env", fake_make_env)
    status, out, _ = status_and_output(capsys, "eval", str(finished_run), "--render",
                                       "--episodes", "1")
    assert status == 0 and made == [{"render_mode": "human"}] and "mean" in out
