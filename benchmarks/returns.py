"""Returns benchmark: train presets on tasks for several seeds, resumably, then table dpgkit's
evaluation returns beside TD3's published curve at the same step, and draw them in one figure.

    python benchmarks/returns.py --suite mujoco --workers 2 --out /work/bench-returns
    python benchmarks/returns.py --suite mujoco --out /work/bench-returns --table-only
    python benchmarks/returns.py --presets td3 --envs Hopper-v5 --seeds 0-2 --steps 100000 \\
        --out /tmp/hopper --workers 2     # any other set of runs

Every run is one ``dpgkit train`` process into ``OUT/runs/<label>/<env>/seed<N>``. Run again
with the same arguments, the benchmark skips finished runs, continues each unfinished one from
its newest checkpoint with ``dpgkit train --resume`` (an interruption loses at most
``--checkpoint_every`` env steps) and starts the rest, ``--workers`` processes at a time. After
every run and at the end it writes ``OUT/results.md`` (the table, with each row's command,
and when each run first reached TD3's published return),
``OUT/results.png`` (a panel per task: mean +- std over seeds, TD3's published curve) and
``OUT/curves.json`` (every run's evaluation curve, enough to redraw the figure).

A finished run also leaves a record, ``RECORD/runs/<label>/<env>/seed<N>-<steps>steps.json``
(its curve, wall time, steps/s, the commit that trained it and the machine): a few kilobytes,
committed to the repository (``--record``: with ``--suite``, ``bench/returns`` of this
checkout, else OUT). The table, figure and curves are written beside the records. A run with
a record counts as done on any machine, so a suite spread over sittings on machines that come
and go loses only the unfinished runs of the machine that went, never a finished one.
"""

import argparse
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import returns_jobs
import returns_records
import returns_report
from returns_jobs import SUITES, Job, parse_seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default=None,
                        help="a named set of runs (else --presets, --envs, --seeds, --steps)")
    parser.add_argument("--presets", default="td3")
    parser.add_argument("--envs", default="HalfCheetah-v5")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each run it starts (workers x threads <= cores)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the working folder: run directories with their checkpoints")
    parser.add_argument("--record", type=Path, default=None,
                        help="where finished runs' records, the table and the figure go "
                        "(default: bench/returns with --suite, else OUT)")
    parser.add_argument("--only", default=None,
                        help="run only jobs whose label/env contains this text")
    parser.add_argument("--table-only", action="store_true", help="only table the runs there")
    args = parser.parse_args()
    if args.suite:
        jobs = SUITES[args.suite]()
    else:
        jobs = [Job(p, p, e, s, args.steps) for e in args.envs.split(",")
                for p in args.presets.split(",") for s in parse_seeds(args.seeds)]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.record is None:
        args.record = Path(__file__).parent.parent / "bench" / "returns" if args.suite else args.out
    for job in jobs:  # runs finished by an earlier driver, or by hand, get their records too
        if (returns_jobs.recorded(job, args.record) is None
                and returns_jobs.state(job, args.out) == "done"):
            returns_records.keep_record(job, args.out, args.record)
        returns_records.add_eval_seconds(job, args.out, args.record)
    if not args.table_only:
        finished = [returns_jobs.state(j, args.out, args.record) == "done" for j in jobs]
        todo = [j for j, over in zip(jobs, finished, strict=True) if not over
                and (args.only is None or args.only in f"{j.label}/{j.env_id}")]
        done = sum(finished)
        only = f" (those matching --only {args.only})" if args.only else ""
        print(f"{done} of {len(jobs)} runs done; running {len(todo)}{only} with "
              f"{args.workers} worker(s)", flush=True)
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [pool.submit(returns_jobs.run, job, args.out, args.threads) for job in todo]
            for future in as_completed(futures):
                job, code, how = future.result()
                print(f"{time.strftime('%H:%M:%S')} {job.label} {job.env_id} seed {job.seed} "
                      f"({how}): {returns_jobs.outcome(job, args.out, code)}", flush=True)
                returns_records.keep_record(job, args.out, args.record)
                returns_report.write_results(jobs, args.out, args.record)
    print(returns_report.write_results(jobs, args.out, args.record))


if __name__ == "__main__":
    main()
