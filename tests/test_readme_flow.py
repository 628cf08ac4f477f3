"""A new user's path through the README, end to end with the real command: train two seeds,
evaluate one with a video, plot both seeds together, export to ONNX and run the export."""

import json
import subprocess
import sys

import numpy as np
import pytest

SHORT = ["--steps", "300", "--warmup_steps", "100", "--batch_size", "32", "--actor_hidden",
         "32,32", "--critic_hidden", "32,32", "--eval_every_steps", "150", "--eval_episodes", "2",
         "--no-progress"]


def dpgkit(*args: str, cwd) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "dpgkit.cli", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def test_train_eval_video_plot_export(tmp_path):
    pytest.importorskip("pygame", reason="classic-control video needs pygame")
    onnxruntime = pytest.importorskip("onnxruntime")
    dpgkit("train", "--seeds", "0-1", "--out", "runs/two", *SHORT, cwd=tmp_path)
    run = tmp_path / "runs" / "two" / "seed0"

    shown = dpgkit("eval", "runs/two/seed0", "--episodes", "2", "--video", "videos",
                   cwd=tmp_path).stdout
    assert "mean" in shown and "max" in shown
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 2
    assert json.loads((run / "eval.json").read_text())["episodes"] == 2

    dpgkit("plot", "runs/two", "-o", "two-seeds.png", cwd=tmp_path)
    assert (tmp_path / "two-seeds.png").stat().st_size > 10_000
    assert (tmp_path / "two-seeds.svg").is_file()

    dpgkit("export", "runs/two/seed0", "--format", "onnx", cwd=tmp_path)
    session = onnxruntime.InferenceSession(str(run / "policy.onnx"))
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    action = session.run(["action"], {"obs": obs})[0]
    assert action.shape == (5, 1) and np.all(np.abs(action) <= 2.0)
