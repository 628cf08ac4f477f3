"""`dpgkit eval --video`: mp4 files without a display, and a clear error where rendering fails."""

import ctypes.util
import os
from pathlib import Path

import pytest

from dpgkit.cli import main

FAST = ["--steps", "200", "--warmup_steps", "50", "--batch_size", "16", "--actor_hidden", "16",
        "--critic_hidden", "16", "--eval_every_steps", "200", "--eval_episodes", "1",
        "--no-progress"]


def trained(tmp_path: Path, env: str) -> Path:
    run = tmp_path / "run"
    assert main(["train", "--env", env, "--out", str(run), *FAST]) == 0
    return run


def test_pendulum_video(tmp_path, capsys):
    pytest.importorskip("pygame", reason="classic-control rendering needs pygame")
    before = set(os.environ)
    run = trained(tmp_path, "Pendulum-v1")
    assert main(["eval", str(run), "--episodes", "2", "--video", str(tmp_path / "v")]) == 0
    videos = sorted((tmp_path / "v").glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 10_000 for v in videos)
    assert "videos: " in capsys.readouterr().out
    # the renderer's settings do not outlive the video (dm_control or PyOpenGL imported later in
    # this process would be bound to OSMesa, which this machine may not have)
    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "SDL_VIDEODRIVER"):
        assert name not in os.environ or name in before


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is None,
                    reason="MuJoCo video needs Debian's libosmesa6 (apt-get install libosmesa6)")
def test_mujoco_video(tmp_path):
    run = trained(tmp_path, "InvertedPendulum-v5")
    assert main(["eval", str(run), "--episodes", "1", "--video", str(tmp_path / "v")]) == 0
    assert [v.stat().st_size > 1_000 for v in (tmp_path / "v").glob("*.mp4")] == [True]


def test_an_env_that_cannot_render_is_a_clear_error(tmp_path, capsys):
    run = trained(tmp_path, "dpgkit-test/Counting-v0")
    assert main(["eval", str(run), "--video", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "cannot render dpgkit-test/Counting-v0" in err or "does not render" in err
    assert err.count("\n") == 1
