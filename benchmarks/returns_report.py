"""What the returns benchmark (benchmarks/returns.py) writes from the runs' records: the table
beside TD3's published returns, the time to reach them, the figure, curves.json, and the
tables embedded into docs/results.md between their markers."""

import json
from pathlib import Path

import numpy as np
import returns_jobs
from returns_jobs import Job
from returns_records import collect
from speed_common import table_start

from dpgkit.reference import TD3_CURVE_STDS, TD3_CURVES, published_at, task_name


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def _short(machine_name: str) -> str:
    """'Intel(R) Xeon(R) Processor, 2 cores, AMX' -> 'Intel Xeon, AMX'."""
    model, _, rest = machine_name.partition(",")
    model = " ".join(model.replace("(R)", "").replace("(TM)", "").split()[:2])
    return f"{model}, {rest.rsplit(',', 1)[-1].strip()}" if rest else model


def _groups(runs: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """The runs by (label, env, budget), in the order they come."""
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["label"], r["env_id"], r["budget"]), []).append(r)
    return groups


def table(runs: list[dict], commit: str) -> str:
    """The markdown table: a row per (label, env, budget) with the finished seeds' final
    evaluations."""
    groups = _groups(runs)
    lines = table_start("| preset (label) | task | env steps | seeds done | dpgkit final eval, "
                        "mean +- std | per seed | TD3 published at that step (mean +- seed std) "
                        "| ratio | at or above published mean - std | wall s per run | steps/s "
                        "per run | machine |")
    for (label, env_id, budget), group in groups.items():
        done = [r for r in group if r["done"]]
        finals = [r["eval_return"][-1] for r in done if r["eval_return"]]
        pub = published_at(task_name(env_id), budget)
        mean = float(np.mean(finals)) if finals else None
        lines.append(
            f"| {label} | {env_id} | {budget:,} | {len(done)}/{len(group)} started | "
            + (f"{_fmt(mean)} +- {_fmt(float(np.std(finals)))}" if finals else "-") + " | "
            + (", ".join(_fmt(v) for v in finals) or "-") + " | "
            + (f"{_fmt(pub[0])} +- {_fmt(pub[1])}" if pub else "-") + " | "
            + (f"{mean / pub[0]:.2f}" if pub and finals and pub[0] > 0 else "-") + " | "
            + (("yes" if mean >= pub[0] - pub[1] else "**no**") if pub and finals else "-") + " | "
            + (", ".join(f"{r['wall_seconds']:.0f}" for r in done) or "-") + " | "
            + (", ".join(f"{r['steps_per_second']:.0f}" for r in done) or "-") + " | "
            + ("; ".join(dict.fromkeys(_short(r.get("machine", "?")) for r in done)) or "-")
            + " |")
    lines.append("")
    lines.append(f"Tabled at commit {commit}. Ratio: dpgkit's mean over TD3's published mean. "
                 "Wall time is training time summed over a run's processes (resumes included); "
                 "steps/s depend on the machine each run had (its last column, each machine once, "
                 "set apart by ';'; the runs' records name the CPU and the commit that trained "
                 "them).")
    lines.append("")
    lines.append("Each row's command (OUT is the benchmark's output folder):")
    lines.append("")
    seen = set()
    for r in runs:
        key = (r["label"], r["env_id"])
        if key not in seen:
            seen.add(key)
            lines.append(f"- {r['label']} / {r['env_id']}: `"
                         + r["command"].replace(f"--seed {r['seed']}", "--seed S")
                         .replace(f"seed{r['seed']}", "seedS") + "`")
    return "\n".join(lines) + "\n"


REACH_HEADING = "## Time to TD3's published return"


def first_reached(steps: list[int], values: list[float], target: float) -> int | None:
    """The env step of the first evaluation at or above ``target``, or None."""
    return next((step for step, value in zip(steps, values, strict=True) if value >= target),
                None)


def reach_table(runs: list[dict]) -> str:
    """When each finished run's evaluation first reached TD3's published mean at the longest
    budget its task has here (300k on the locomotion tasks): the env steps, and the wall
    seconds of the run's clock at that evaluation (estimated at the run's mean rate, marked
    '~', for a record that has no clock)."""
    longest: dict[str, int] = {}
    for r in runs:
        longest[r["env_id"]] = max(longest.get(r["env_id"], 0), r["budget"])
    lines = [REACH_HEADING, ""] + table_start(
        "| preset (label) | task | run's env steps | target: TD3 published mean at | env steps to "
        "reach it, per seed | mean over seeds that reached | wall s to reach it, per seed (~: at "
        "the run's mean rate) |")
    for (label, env_id, budget), group in _groups(runs).items():
        done = [r for r in group if r["done"] and r["eval_return"]]
        pub = published_at(task_name(env_id), longest[env_id])
        if not done or pub is None:
            continue
        reached = [first_reached(r["steps"], r["eval_return"], pub[0]) for r in done]
        hits = [step for step in reached if step is not None]
        lines.append(
            f"| {label} | {env_id} | {budget:,} | {_fmt(pub[0])} at {longest[env_id]:,} | "
            + ", ".join("not reached" if step is None else f"{step:,}" for step in reached)
            + " | " + (f"{np.mean(hits):,.0f} ({len(hits)}/{len(done)})" if hits else "-")
            + " | " + ", ".join(_seconds_at(r, step) for r, step in zip(done, reached,
                                                                        strict=True)) + " |")
    return "\n".join(lines) + "\n"


def _seconds_at(run: dict, step: int | None) -> str:
    """The run's clock at its evaluation at ``step``; '~' before an estimate at the run's mean
    rate (a record without the clock); '-' if not reached."""
    if step is None:
        return "-"
    clock = run.get("eval_seconds") or [None] * len(run["steps"])
    seconds = clock[run["steps"].index(step)]
    if seconds is not None:
        return f"{seconds:,.0f}"
    return f"~{step / run['budget'] * run['wall_seconds']:,.0f}" if run["wall_seconds"] else "-"


def one_per_seed(runs: list[dict]) -> list[dict]:
    """Each seed's longest record: a run trained to one budget and extended to a longer one
    (the same run directory, a record per budget) is one curve, not two."""
    longest: dict[int, dict] = {}
    for r in runs:
        if r["seed"] not in longest or max(r["steps"]) > max(longest[r["seed"]]["steps"]):
            longest[r["seed"]] = r
    return list(longest.values())


def figure(runs: list[dict], path: Path) -> None:
    """A panel per task: each label's mean +- std over seeds, in the label's one colour in
    every panel, and TD3's published curve dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r["env_id"] for r in runs))
    colors = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(r["label"]
                                                                          for r in runs))}
    if not envs:
        return
    cols = min(4, len(envs))
    rows = (len(envs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), dpi=110,
                             squeeze=False)
    for ax, env_id in zip(axes.flat, envs, strict=False):
        group = [r for r in runs if r["env_id"] == env_id and r["steps"]]
        budget = max(r["budget"] for r in runs if r["env_id"] == env_id)
        for label in dict.fromkeys(r["label"] for r in group):
            started = one_per_seed([r for r in group if r["label"] == label])
            curves = [r for r in started if r["done"]] or started  # unfinished ones only alone
            end = min(max(r["steps"]) for r in curves)
            x = np.array([s for s in curves[0]["steps"] if s <= end]) if len(curves) > 1 else \
                np.array(curves[0]["steps"])
            ys = np.array([np.interp(x, r["steps"], r["eval_return"]) for r in curves])
            (line,) = ax.plot(x, ys.mean(0), lw=1.6, color=colors[label],  # one per label
                              label=f"{label} (n={len(curves)})")
            if len(curves) > 1:
                ax.fill_between(x, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0),
                                color=line.get_color(), alpha=0.2)
        task = task_name(env_id)
        if task in TD3_CURVES:
            steps = [s for s in TD3_CURVES[task] if s <= budget]
            mean = np.array([TD3_CURVES[task][s] for s in steps])
            std = np.array([TD3_CURVE_STDS[task][s] for s in steps])
            ax.plot(steps, mean, "k--", lw=1, label="TD3 published (v1, 10 seeds)")
            ax.fill_between(steps, mean - std, mean + std, color="k", alpha=0.07)
        ax.set_title(env_id, fontsize=10)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[len(envs):]:
        ax.axis("off")
    fig.suptitle("evaluation return (10 episodes, no noise): mean +- std over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_results(jobs: list[Job], out: Path, record: Path | None = None) -> str:
    """The table, the figure and every curve, from the records and the run directories, into
    ``record`` (the committed copy) if given, else into ``out``."""
    commit = returns_jobs.head_commit()
    runs = collect(jobs, out, record)
    returns, reach = table(runs, commit), reach_table(runs)
    into = out if record is None else record
    into.mkdir(parents=True, exist_ok=True)
    (into / "results.md").write_text(f"{returns}\n{reach}")
    (into / "curves.json").write_text(json.dumps({"commit": commit, "runs": runs}) + "\n")
    figure(runs, into / "results.png")
    doc = into.parent.parent / "docs" / "results.md"
    embed_table(returns, doc)
    embed_table(reach, doc, REACH_MARKERS)
    return f"{returns}\n{reach}"


TABLE_START, TABLE_END = "<!-- returns table: start -->", "<!-- returns table: end -->"
"""The markers between which docs/results.md holds the benchmark's table."""
REACH_MARKERS = ("<!-- time to target: start -->", "<!-- time to target: end -->")
"""The markers of the time-to-published-return table (:func:`reach_table`)."""


def embed_table(text: str, doc: Path, markers: tuple[str, str] = (TABLE_START, TABLE_END)
                ) -> bool:
    """Put the table rows of ``text`` (its lines that start with '|') between ``markers`` in
    ``doc`` (docs/results.md, for a record folder in this repository); a document without both
    markers is left alone. Returns whether it wrote."""
    start, end = markers
    if not doc.is_file():
        return False
    current = doc.read_text()
    if start not in current or end not in current:
        return False
    rows = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    head, rest = current.split(start, 1)
    doc.write_text(f"{head}{start}\n{rows}\n{end}{rest.split(end, 1)[1]}")
    return True
