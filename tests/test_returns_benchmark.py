"""The returns benchmark's bookkeeping (benchmarks/returns.py): which command takes each run one
step nearer done (start, restart, resume or nothing), and the table and figure it writes from
run directories. It trains nothing here: run directories are written by hand."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest


def fake_run(run_dir: Path, evals: list[tuple[int, float]], finished_at: int | None = None,
             checkpoint: bool = False, clock: list[float] | None = None) -> None:
    """A run directory as dpgkit leaves it: metrics.csv, and a summary or a checkpoint; with
    ``clock`` (seconds at each evaluation) the steps_per_second TensorBoard scalar too."""
    run_dir.mkdir(parents=True)
    rows = ["env_steps,updates,eval_return_mean,eval_return_std"]
    rows += [f"{step},{step},{value},1.0" for step, value in evals]
    (run_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
    if clock is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(run_dir)) as writer:
            for (step, _), seconds in zip(evals, clock, strict=True):
                writer.add_scalar("steps_per_second", step / seconds, step)
    if finished_at is not None:
        (run_dir / "summary.json").write_text(json.dumps(
            {"env_steps": finished_at, "wall_seconds": 100.0, "steps_per_second": 50.0}))
    if checkpoint:
        step = run_dir / "checkpoints" / "step-000000005000"
        step.mkdir(parents=True)
        (step / "checkpoint.json").write_text("{}")


def test_each_run_gets_the_command_that_continues_it(returns_jobs, tmp_path):
    jobs = [returns_jobs.Job("td3", "td3", "Hopper-v5", seed, 10_000) for seed in range(4)]
    fake_run(jobs[0].run_dir(tmp_path), [(5000, 1.0), (10_000, 2.0)], finished_at=10_000)
    fake_run(jobs[1].run_dir(tmp_path), [(5000, 1.0)], checkpoint=True)
    jobs[2].run_dir(tmp_path).mkdir(parents=True)  # killed before its first checkpoint
    assert [returns_jobs.state(j, tmp_path) for j in jobs] == ["done", "resume", "restart", "new"]
    resume = returns_jobs.command(jobs[1], tmp_path, threads=2)  # this benchmark's share of cores,
    assert resume[-8:] == ["train", "--resume", str(jobs[1].run_dir(tmp_path)), "--steps",
                           "10000", "--torch_threads", "2", "--no-progress"]  # whatever it had
    assert returns_jobs.command(jobs[1], tmp_path)[-3:] == ["--torch_threads", "1", "--no-progress"]
    assert "--overwrite" in returns_jobs.command(jobs[2], tmp_path)
    start = returns_jobs.command(jobs[3], tmp_path)
    assert "--overwrite" not in start and start[start.index("--warmup_steps") + 1] == "1000"
    assert returns_jobs.Job("td3", "td3", "Ant-v5", 0, 1).train_args(tmp_path)[10] == "10000"
    assert "--warmup_steps" not in returns_jobs.Job("td7", "td7", "Ant-v5", 0, 1).train_args(
        tmp_path)


def test_a_longer_budget_reopens_a_finished_run(returns_jobs, tmp_path):
    job = returns_jobs.Job("td3", "td3", "Hopper-v5", 0, 20_000)
    fake_run(job.run_dir(tmp_path), [(10_000, 2.0)], finished_at=10_000, checkpoint=True)
    assert returns_jobs.state(job, tmp_path) == "resume"


def test_the_table_holds_each_row_beside_the_published_curve(
        returns_jobs, returns_report, tmp_path):
    jobs = [returns_jobs.Job("td3", "td3", "HalfCheetah-v5", seed, 300_000) for seed in range(3)]
    for seed, final in enumerate((7000.0, 8000.0)):
        fake_run(jobs[seed].run_dir(tmp_path), [(150_000, 3000.0), (300_000, final)],
                 finished_at=300_000)
    fake_run(jobs[2].run_dir(tmp_path), [(150_000, 100.0)], checkpoint=True)  # unfinished
    text = returns_report.write_results(jobs, tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| td3 | HalfCheetah-v5"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3] == "2/3 started"
    assert cells[4] == "7500 +- 500" and cells[5] == "7000, 8000"
    assert cells[6] == "7697 +- 727"  # sfujim/TD3's curve at 300k: mean +- seed std
    assert cells[7] == "0.97" and cells[8] == "yes"
    assert (tmp_path / "results.png").stat().st_size > 0
    curves = json.loads((tmp_path / "curves.json").read_text())["runs"]
    assert [len(r["steps"]) for r in curves] == [2, 2, 1]


def test_a_run_extended_to_a_longer_budget_is_one_curve_of_the_figure(returns_report):
    """td7's HalfCheetah seed 0 has a 100k record and a 300k one (the run extended by a resume):
    the figure draws its 300k curve, once, not a mean of the two cut at 100k."""
    short = {"seed": 0, "budget": 100_000, "steps": [50_000, 100_000]}
    long = {"seed": 0, "budget": 300_000, "steps": [50_000, 100_000, 300_000]}
    other = {"seed": 1, "budget": 300_000, "steps": [50_000]}
    assert returns_report.one_per_seed([short, long, other]) == [long, other]
    assert returns_report.one_per_seed([long, short]) == [long]


def test_each_label_has_one_colour_in_every_panel(returns_report, tmp_path, monkeypatch):
    """td7 drawn second beside td3 on Hopper and alone on Walker2d keeps its colour."""
    import matplotlib.axes

    drawn, plot = [], matplotlib.axes.Axes.plot

    def recording_plot(self, *args, **kwargs):
        drawn.append((kwargs.get("label"), kwargs.get("color")))
        return plot(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recording_plot)

    def run(label: str, env_id: str) -> dict:
        return {"label": label, "env_id": env_id, "seed": 0, "budget": 100_000, "done": True,
                "steps": [50_000, 100_000], "eval_return": [1.0, 2.0]}

    returns_report.figure([run("td3", "Hopper-v5"), run("td7", "Hopper-v5"),
                           run("td7", "Walker2d-v5")], tmp_path / "figure.png")
    colours = [(label, colour) for label, colour in drawn if label and "(n=" in label]
    assert colours == [("td3 (n=1)", "C0"), ("td7 (n=1)", "C1"), ("td7 (n=1)", "C1")]
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_the_time_to_the_published_return_is_the_first_evaluation_at_or_above_it(
        returns_jobs, returns_report, tmp_path):
    """Each finished run's first evaluation at or above TD3's published mean at its task's
    longest budget here (a 100k run of a task also run to 300k is held to the 300k mean), in env
    steps and in wall seconds at the run's mean rate."""
    jobs = [returns_jobs.Job("td3", "td3", "HalfCheetah-v5", seed, 300_000) for seed in range(2)]
    jobs.append(returns_jobs.Job("td7", "td7", "HalfCheetah-v5", 0, 100_000))
    fake_run(jobs[0].run_dir(tmp_path), [(150_000, 7700.0), (300_000, 8000.0)],
             finished_at=300_000)  # the published 7697 (7697.3) at 300k: at 150k, 50 of 100 s
    fake_run(jobs[1].run_dir(tmp_path), [(150_000, 3000.0), (300_000, 7000.0)],
             finished_at=300_000)
    fake_run(jobs[2].run_dir(tmp_path), [(50_000, 7000.0), (100_000, 9000.0)],
             finished_at=100_000, clock=[30.0, 80.0])  # its clock: 80 s at 100k, not 100
    text = returns_report.write_results(jobs, tmp_path).split(returns_report.REACH_HEADING)[1]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
            if line.startswith("| td")]
    assert rows == [["td3", "HalfCheetah-v5", "300,000", "7697 at 300,000",
                     "150,000, not reached", "150,000 (1/2)", "~50, -"],  # ~: at the mean rate
                    ["td7", "HalfCheetah-v5", "100,000", "7697 at 300,000", "100,000",
                     "100,000 (1/1)", "80"]]
    assert returns_report.first_reached([5, 10], [1.0, 2.0], 3.0) is None


def test_a_record_written_before_the_clock_gets_it_from_its_run_directory(
        returns_jobs, returns_records, tmp_path):
    job = returns_jobs.Job("td3", "td3", "Hopper-v5", 0, 10_000)
    fake_run(job.run_dir(tmp_path), [(5000, 1.0), (10_000, 2.0)], finished_at=10_000,
             clock=[40.0, 90.0])
    record = tmp_path / "record"
    returns_records.keep_record(job, tmp_path, record)
    path = returns_jobs.record_path(job, record)
    kept = json.loads(path.read_text())
    np.testing.assert_allclose(kept["eval_seconds"], [40.0, 90.0], rtol=1e-6)
    del kept["eval_seconds"]  # as records were before
    path.write_text(json.dumps(kept))
    assert returns_records.add_eval_seconds(job, tmp_path, record)
    np.testing.assert_allclose(json.loads(path.read_text())["eval_seconds"], [40.0, 90.0],
                               rtol=1e-6)
    assert not returns_records.add_eval_seconds(job, tmp_path, record)  # it has it now


def test_a_finished_runs_record_outlives_its_machine(
        returns_jobs, returns_records, returns_report, tmp_path):
    """The record kept in the repository marks the run done on a machine that never had its run
    directory, and the table reads its figures and machine from it."""
    job = returns_jobs.Job("td3", "td3", "Reacher-v5", 0, 10_000)
    first, second, record = tmp_path / "first", tmp_path / "second", tmp_path / "record"
    fake_run(job.run_dir(first), [(5000, -9.0), (10_000, -4.0)], finished_at=10_000)
    returns_records.keep_record(job, first, record)
    kept = json.loads(returns_jobs.record_path(job, record).read_text())
    assert kept["eval_return"] == [-9.0, -4.0] and kept["done"] and kept["machine"]
    assert (returns_jobs.state(job, second) == "new"
            and returns_jobs.state(job, second, record) == "done")
    longer = returns_jobs.Job("td3", "td3", "Reacher-v5", 0, 20_000)  # another budget: not done
    assert returns_jobs.state(longer, second, record) == "new"
    text = returns_report.write_results([job], second, record)
    row = next(line for line in text.splitlines() if line.startswith("| td3 | Reacher-v5"))
    assert row.split("|")[6].strip() == "-4.0" and (record / "results.png").is_file()
    assert not (second / "results.md").exists()


def test_a_row_trained_on_two_machines_names_each_once(
        returns_jobs, returns_records, returns_report, tmp_path):
    """Seeds trained on different machines: the machine cell names each machine once, in the
    seeds' order, set apart by ';' (a machine's short name holds a comma of its own)."""
    jobs = [returns_jobs.Job("td3", "td3", "Reacher-v5", seed, 10_000) for seed in range(3)]
    record = tmp_path / "record"
    names = ["AMD EPYC 7B13 64-Core Processor, 2 cores, AVX2",
             "Intel(R) Xeon(R) Platinum 8480C, 2 cores, AMX",
             "AMD EPYC 7B13 64-Core Processor, 2 cores, AVX2"]
    for job, name in zip(jobs, names, strict=True):
        fake_run(job.run_dir(tmp_path / "runs"), [(10_000, -4.0)], finished_at=10_000)
        returns_records.keep_record(job, tmp_path / "runs", record)
        path = returns_jobs.record_path(job, record)
        path.write_text(json.dumps({**json.loads(path.read_text()), "machine": name}))
    text = returns_report.write_results(jobs, tmp_path / "elsewhere", record)
    row = next(line for line in text.splitlines() if line.startswith("| td3 | Reacher-v5"))
    assert row.split("|")[-2].strip() == "AMD EPYC, AVX2; Intel Xeon, AMX"


def test_an_unfinished_run_leaves_no_record(returns_jobs, returns_records, tmp_path):
    job = returns_jobs.Job("td3", "td3", "Reacher-v5", 0, 10_000)
    fake_run(job.run_dir(tmp_path), [(5000, -9.0)], checkpoint=True)
    returns_records.keep_record(job, tmp_path, tmp_path / "record")
    assert not returns_jobs.record_path(job, tmp_path / "record").exists()


def test_the_suites_records_are_not_ignored_by_git(returns_jobs):
    """A record is only worth its name once committed: the repository's .gitignore ignores run
    directories (``runs/``) everywhere but in the suite's record folder."""
    root = Path(__file__).parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    job = returns_jobs.Job("td3", "td3", "Hopper-v5", 0, 300_000)
    path = returns_jobs.record_path(job, root / "bench" / "returns").relative_to(root)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=root, check=False)
    assert ignored.returncode == 1, f"{path} is ignored by .gitignore: records would not land"


def test_a_record_names_the_commits_that_ran_it_and_threads_reach_new_runs(
        returns_jobs, returns_records, tmp_path):
    job = returns_jobs.Job("td7", "td7", "Hopper-v5", 0, 10_000)
    fake_run(job.run_dir(tmp_path), [(5000, 1.0), (10_000, 2.0)], finished_at=10_000)
    job.run_dir(tmp_path).with_suffix(".log").write_text(
        "\n# 2026-12-03 08:00:00 new at abc1234: python -m dpgkit train\nstep 5000\n"
        "\n# 2026-12-03 09:00:00 resume at def5678: python -m dpgkit train --resume R\n")
    record = returns_records.collect([job], tmp_path)[0]
    assert record["commit"] == "abc1234, def5678" and record["resumed"]
    log = job.run_dir(tmp_path).with_suffix(".log")
    log.write_text("\n# 2026-12-03 08:00:00 new at abc1234: python -m dpgkit train\n")
    assert not returns_records.collect([job], tmp_path)[0]["resumed"]
    log.write_text("\n# 2026-12-02 08:00:00 resume: python -m dpgkit train --resume R\n")
    # the log's form before it named commits
    assert returns_records.collect([job], tmp_path)[0]["resumed"]
    fresh = returns_jobs.Job("td7", "td7", "Hopper-v5", 1, 10_000)
    cmd = returns_jobs.command(fresh, tmp_path, threads=2)
    assert cmd[cmd.index("--torch_threads") + 1] == "2"
    assert "--torch_threads" not in returns_jobs.command(fresh, tmp_path)


def test_a_failed_run_is_reported_with_its_log_and_the_error(returns_jobs, tmp_path):
    """The driver said only "exit 1" when a resume failed (HalfCheetah-v5 seed 2 at 175,000);
    the error was in the run's log. It now names the log and gives its last line."""
    job = returns_jobs.Job("td7", "td7", "HalfCheetah-v5", 2, 300_000)
    assert returns_jobs.outcome(job, tmp_path, 0) == "exit 0"
    log = job.run_dir(tmp_path).with_suffix(".log")
    assert returns_jobs.outcome(job, tmp_path, 1) == f"exit 1, {log}: (empty)"
    log.parent.mkdir(parents=True)
    log.write_text("# 2026-12-05 05:50:12 resume at 64902eb: python -m dpgkit train --resume R\n"
                   "Traceback (most recent call last):\n  ...\n"
                   "ZeroDivisionError: float division by zero\n\n")
    assert returns_jobs.outcome(job, tmp_path, 1) == (
        f"exit 1, {log}: ZeroDivisionError: float division by zero")


def test_docs_results_md_holds_the_tables_rows_as_the_benchmark_wrote_them(
        returns_report, tmp_path):
    """The committed docs/results.md carries bench/returns/results.md's table rows verbatim
    (the benchmark writes them between its markers), and the writing replaces only that block."""
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs/results.md").read_text()
    written = (root / "bench/returns/results.md").read_text().split(returns_report.REACH_HEADING)
    for text, (start, end) in zip(written, [(returns_report.TABLE_START, returns_report.TABLE_END),
                                            returns_report.REACH_MARKERS], strict=True):
        rows = [line for line in text.splitlines() if line.startswith("|")]
        block = doc.split(start, 1)[1].split(end, 1)[0]
        assert block.strip().splitlines() == rows and len(rows) > 2
    copy = tmp_path / "results.md"
    copy.write_text(f"before\n{returns_report.TABLE_START}\nold\n{returns_report.TABLE_END}\nafter\n")
    assert returns_report.embed_table("| a |\n|---|\n| 1 |\ntext\n", copy)
    assert copy.read_text() == (f"before\n{returns_report.TABLE_START}\n| a |\n|---|\n| 1 |\n"
                                f"{returns_report.TABLE_END}\nafter\n")
    assert not returns_report.embed_table("| a |", tmp_path / "none.md")
