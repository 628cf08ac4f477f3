"""What training shows while it runs (issue 17, item 7): the time left, "evaluating k/N"
while an evaluation's episodes play, and with --seeds one line per seed and per evaluation."""

import io
import re
import subprocess
import sys

import pytest
from rich.console import Console

from dpgkit.presets import preset_config
from dpgkit.progress import Pace, PrefixedLines, time_left
from dpgkit.train import train

SMALL = dict(total_env_steps=300, warmup_steps=100, batch_size=32, actor_hidden=(16, 16),
             critic_hidden=(16, 16), eval_every_steps=150, eval_episodes=2)


def test_time_left_reads_as_a_person_would():
    assert [time_left(s) for s in (0.2, 45.2, 192.0, 4000.0, -3.0)] == [
        "0s", "45s", "3m12s", "1h06m", "0s"]


def test_the_pace_is_the_rate_since_the_previous_reading():
    """TD7 on Hopper: 25,000 warm-up steps in 18 s, then 5,000 steps with updates in 310 s. The
    time left for the other 270,000 steps is 4h39m at the pace of now; the mean since the
    start (91 steps/s) would have said 49 minutes."""
    pace = Pace(0, 0.0)
    assert pace.rate(25_000, 18.0) == pytest.approx(1388.9, abs=0.1)
    now = pace.rate(30_000, 328.0)
    assert now == pytest.approx(16.13, abs=0.01)
    assert time_left(270_000 / now) == "4h39m"
    assert time_left(270_000 / (30_000 / 328.0)) == "49m12s"
    assert Pace(100, 5.0).rate(101, 5.0) > 0  # no time passed: no division by zero
    resumed = Pace(175_000, 5.0)  # a resume that first finishes the stopped step, evaluating
    assert resumed.rate(175_000, 9.0) is None  # no step to time: no pace, and no new reading
    assert resumed.rate(175_100, 15.0) == pytest.approx(10.0)


def test_each_evaluation_line_says_the_time_left(tmp_path):
    """Without a terminal (or with --no-progress), every evaluation line but the last ends with
    the time left at the run's pace since the previous line."""
    out = io.StringIO()
    train(preset_config("ddpg", **SMALL), tmp_path / "r", Console(file=out, width=200),
          progress=False)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("step")]
    assert len(lines) == 2
    assert re.search(r"\(\d+ steps/s, \d+s left\)$", lines[0]), lines[0]
    assert re.search(r"\(\d+ steps/s\)$", lines[1]), lines[1]


def test_the_bar_says_evaluating_k_of_n_and_the_time_remaining(tmp_path):
    """On a terminal the bar shows the time remaining, and 'evaluating k/N' as each evaluation
    episode starts; the run is the same as one without a bar."""
    out = io.StringIO()
    train(preset_config("ddpg", **SMALL), tmp_path / "live",
          Console(file=out, force_terminal=True, width=200), progress=True)
    shown = out.getvalue()
    assert {"evaluating 1/2", "evaluating 2/2"} <= set(re.findall(r"evaluating \d/\d", shown))
    assert re.search(r"\d:\d\d:\d\d", shown)  # elapsed and remaining time columns
    assert re.search(r"\b[1-9]\d* steps/s", shown)  # rich's pace over its last 30 seconds
    train(preset_config("ddpg", **SMALL), tmp_path / "quiet", Console(quiet=True),
          progress=False)
    assert (tmp_path / "live" / "metrics.csv").read_bytes() == \
        (tmp_path / "quiet" / "metrics.csv").read_bytes()


def test_prefixed_lines_name_each_whole_line():
    """Lines written in pieces come out whole, each with the prefix."""
    out = io.StringIO()
    stream = PrefixedLines(out, "seed 3: ")
    for piece in ("step 1", "50 ok\nstep 300", " done\n"):
        stream.write(piece)
    assert out.getvalue() == "seed 3: step 150 ok\nseed 3: step 300 done\n"


def test_seeds_print_one_line_per_seed_and_evaluation(tmp_path):
    """With --seeds, each seed's evaluation lines appear as they happen, named by seed."""
    args = ["--steps", "300", "--warmup_steps", "100", "--batch_size", "32", "--actor_hidden",
            "16", "--critic_hidden", "16", "--eval_every_steps", "150", "--eval_episodes", "1"]
    result = subprocess.run([sys.executable, "-m", "dpgkit", "train", "--seeds", "0-1",
                             "--workers", "1", "--out", str(tmp_path / "two"), *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for seed in (0, 1):
        evals = re.findall(rf"^seed {seed}: step +(\d+)  eval return", result.stdout, re.M)
        assert evals == ["150", "300"], result.stdout
