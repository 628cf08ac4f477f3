"""`dpgkit plot` draws figures a researcher keeps (issue 17, item 6): markers, labels that tell
runs apart, env and preset in the title, the band said to be one std over N seeds, and the
published curve at full resolution for any task and case, with a warning where it cannot be
beside the runs. The runs here are written by hand: metrics.csv and config.json only."""

import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from dpgkit import plotting
from dpgkit.cli import main
from dpgkit.errors import DpgkitError, DpgkitWarning
from dpgkit.metrics import COLUMNS


def fake_run(run_dir: Path, evals: dict[int, float], env_id: str = "Pendulum-v1",
             preset: str = "ddpg", seed: int = 0) -> Path:
    """A run directory whose metrics.csv holds evaluations {env step: return}."""
    run_dir.mkdir(parents=True)
    rows = [",".join(COLUMNS)] + [
        ",".join({"env_steps": str(step), "eval_return_mean": str(value),
                  "eval_return_std": "1.0"}.get(c, "") for c in COLUMNS)
        for step, value in evals.items()]
    (run_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
    (run_dir / "config.json").write_text(json.dumps({"env_id": env_id, "preset": preset,
                                                     "seed": seed}))
    return run_dir


def legend_of(fig: plt.Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]


def test_two_groups_named_alike_get_labels_that_tell_them_apart(tmp_path):
    """runs/a/seed0 and runs/b/seed0 were both 'seed0': now the shortest path ends that
    differ; --labels names them instead, one per run."""
    a = fake_run(tmp_path / "a" / "seed0", {1000: -900.0, 2000: -400.0})
    b = fake_run(tmp_path / "b" / "seed0", {1000: -800.0, 2000: -300.0}, seed=1)
    assert plotting.unique_labels([a, b]) == ["a/seed0", "b/seed0"]
    assert plotting.unique_labels([a]) == ["seed0"]
    fig = plotting.draw_runs([a, b])
    assert legend_of(fig) == ["a/seed0 (seed 0)", "b/seed0 (seed 1)"]
    plt.close(fig)
    fig = plotting.draw_runs([a, b], labels=["DDPG", "mine"])
    assert legend_of(fig) == ["DDPG (seed 0)", "mine (seed 1)"]
    plt.close(fig)
    with pytest.raises(DpgkitError, match="--labels gave 1 labels for 2 run directories"):
        plotting.draw_runs([a, b], labels=["one"])


def test_title_names_env_and_presets_and_the_band_its_seeds(tmp_path):
    """The title names the env and the presets; a --seeds directory's legend entry says
    'mean +- std over N seeds'; a curve of one evaluation is drawn with a marker."""
    group = tmp_path / "five"
    for seed in range(3):
        fake_run(group / f"seed{seed}", {1000: -500.0 + seed, 2000: -200.0 - seed},
                 preset="td3", seed=seed)
    single = fake_run(tmp_path / "one", {2000: -350.0})
    fig = plotting.draw_runs([group, single])
    ax = fig.axes[0]
    assert ax.get_title() == "eval return mean: Pendulum-v1, td3 vs ddpg"
    assert legend_of(fig)[0] == "five: mean +- std over 3 seeds"
    one_point = ax.get_lines()[1]
    assert len(one_point.get_xdata()) == 1 and one_point.get_marker() == "o"
    plt.close(fig)


def test_the_reference_takes_any_case_and_every_published_point(tmp_path):
    """--reference halfcheetah (or an env id) draws the published mean every 5,000 steps up to
    the first point at or past the runs' end: a 20k run shows it, not only in the legend."""
    run = fake_run(tmp_path / "hc", {10_000: 1000.0, 20_000: 2500.0}, env_id="HalfCheetah-v5",
                   preset="td3")
    for name in ("halfcheetah", "HALFCHEETAH", "HalfCheetah-v5"):
        fig = plotting.draw_runs([run], reference=name)
        reference = fig.axes[0].get_lines()[-1]
        assert list(reference.get_xdata()) == [0, 5000, 10_000, 15_000, 20_000]
        assert "mean +- std over 10 seeds" in legend_of(fig)[-1]
        plt.close(fig)
    with pytest.raises(DpgkitError, match="no published curve for 'Pendulum'"):
        plotting.draw_runs([run], reference="Pendulum")


def test_a_reference_that_starts_after_the_runs_end_is_warned_about(tmp_path, monkeypatch):
    """A published curve whose first point lies past the runs' last step draws apart from them:
    one warning says so."""
    late = {50_000: 100.0, 55_000: 200.0}
    monkeypatch.setitem(plotting.TD3_CURVES, "Late", late)
    monkeypatch.setitem(plotting.TD3_CURVE_STDS, "Late", {s: 1.0 for s in late})
    run = fake_run(tmp_path / "short", {1000: 10.0, 2000: 20.0})
    with pytest.warns(DpgkitWarning, match="the published Late curve starts at env step 50000, "
                                           "after the runs end \\(2000\\)"):
        plt.close(plotting.draw_runs([run], reference="late"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plt.close(plotting.draw_runs([run], reference="HalfCheetah"))


def test_a_metric_that_is_no_column_lists_the_columns(tmp_path, capsys):
    """--metric foo: one line that lists the metrics there are (exit 2)."""
    run = fake_run(tmp_path / "r", {1000: 1.0})
    assert main(["plot", str(run), "--metric", "foo", "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--metric foo is no column of" in err
    assert "one of updates, episode, episode_return, episode_length, critic_loss" in err


def test_labels_flag_reaches_the_figure(tmp_path):
    """`dpgkit plot A B --labels x y` writes the PNG and SVG with those labels."""
    a = fake_run(tmp_path / "a", {1000: 1.0, 2000: 2.0})
    b = fake_run(tmp_path / "b", {1000: 3.0, 2000: 4.0})
    assert main(["plot", str(a), str(b), "--labels", "first", "second", "-o",
                 str(tmp_path / "out.png")]) == 0
    svg = (tmp_path / "out.svg").read_text()
    assert "first (seed 0)" in svg and "second (seed 0)" in svg
