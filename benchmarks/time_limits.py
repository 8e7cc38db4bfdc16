"""Do time limits hold? Wall time of ``solve(instance, time_limit=T)`` against T.

For each intake (generated, 200 / 2,000 / 5,000 participants, and one cohort of about 1,000
pairs) and each limit, runs the library call ``runs`` times in this process and records the
largest overrun (wall - T), the largest gap between two progress events (the call's start and
end count as events) and the event it followed, the largest gap between two events other than
the progress heartbeat's (:meth:`matcher.engine.progress.Reporter.heartbeat`: how long a
cancel may wait before the solve acts on it) and the event it followed, the stage times of
the slowest run, the most CPU time of a run (this process's: on a shared machine the steadier
figure), how many runs paired lone applicants over shortlists because the exact
matching would not fit, and the import time of ``matcher`` and of ``from matcher import solve``
(fresh interpreters).

A limit given as ``none`` is a solve without a time limit, in deterministic mode (the
default, what the web app and ``matcher solve`` run), ``--none-runs`` times.

``--command N``: also ``matcher solve INTAKE --time-limit T -o plan.json`` N times for each size
and limit, each in a fresh process as a user runs it, timing inside that process the part the
limit covers: the intake's near-miss spelling check and the solve (start-up, reading, verifying
and writing come on top, as the README says).

    python benchmarks/time_limits.py [--limits 1 5 none] [--runs 10] [--none-runs 3] \\
        [-o benchmarks/results/time_limits.md]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from matcher import NoPlanInTime, ProgressEvent, parse_instance, solve
from matcher.tools.generate import generate_instance

try:
    from matcher.engine.progress import HEARTBEAT_THREAD
except ImportError:  # a commit before the heartbeat: every event is the solve's own
    HEARTBEAT_THREAD = "matcher-progress-heartbeat"

REPO = Path(__file__).resolve().parents[1]
#: Stages whose times (``run.stages``) are shown for the slowest run of each row.
STAGES = ("pairing", "placement", "learning_sets", "metrics")


def one_big_cohort(pairs: int) -> dict[str, Any]:
    """About ``pairs`` pre-formed pairs, every one able to attend a single large cohort."""
    data = generate_instance(2 * pairs, cohorts=1, seed=0, preformed_share=1.0)
    data["cohorts"][0]["capacity_pairs"] = pairs
    for p in data["participants"]:
        p["available_cohorts"] = None
        p["attendance"] = None
    return data


def import_time(statement: str) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, cwd=REPO)
        best = min(best, time.perf_counter() - t0)
    return best


#: One progress event as the benchmark saw it: when, from the heartbeat or not, and what.
Stamp = tuple[float, bool, str]


def largest_gap(stamps: list[Stamp]) -> tuple[float, str]:
    """The largest gap between consecutive stamps and the event it followed ("stage: message",
    digits kept, cut to 70 characters)."""
    gap, after = max(((b[0] - a[0], a[2]) for a, b in itertools.pairwise(stamps)), default=(0, ""))
    return gap, after[:70]


def measure(name: str, data: dict[str, Any], limit: float | None, runs: int) -> dict[str, Any]:
    inst = parse_instance(data)
    walls: list[float] = []
    cpus: list[float] = []
    gaps: list[tuple[float, str]] = []
    acting: list[tuple[float, str]] = []
    outcomes: list[str] = []
    slowest: dict[str, float] = {}
    hurried = 0
    for _ in range(runs):
        stamps: list[Stamp] = []

        def note(event: ProgressEvent, stamps: list[Stamp] = stamps) -> None:
            beat = threading.current_thread().name == HEARTBEAT_THREAD
            said = event.message
            what = said if said.startswith(f"{event.stage}:") else f"{event.stage}: {said}"
            stamps.append((time.perf_counter(), beat, what))

        t0 = time.perf_counter()
        c0 = time.process_time()
        try:
            sol = solve(
                inst,
                time_limit=limit,
                deterministic=limit is None,
                progress=note,
            )
            outcomes.append(sol.status)
            stages = dict(sol.run.stages or {})
            hurried += any(n.startswith("time limit: the exact matching") for n in sol.run.notes)
        except NoPlanInTime:
            outcomes.append("no plan in time")
            stages = {}
        end = time.perf_counter()
        cpus.append(time.process_time() - c0)
        if not walls or end - t0 > max(walls):
            slowest = stages
        walls.append(end - t0)
        marks = [(t0, False, "start"), *stamps, (end, False, "end")]
        gaps.append(largest_gap(marks))
        acting.append(largest_gap([m for m in marks if not m[1]]))
    return {
        "intake": name,
        "participants": len(inst.participants),
        "limit": limit,
        "runs": runs,
        "max_wall": max(walls),
        "max_overrun": None if limit is None else max(walls) - limit,
        "max_cpu": max(cpus),
        "max_gap": max(gaps),
        "max_acting_gap": max(acting),
        "outcomes": ", ".join(sorted(set(outcomes))),
        "slowest": " / ".join(f"{slowest.get(k, 0.0):.2f}" for k in STAGES),
        "hurried": hurried,
    }


def limit_arg(text: str) -> float | None:
    """A time limit on the command line: seconds, or ``none``."""
    return None if text.strip().lower() == "none" else float(text)


def show_limit(limit: float | None) -> str:
    return "none" if limit is None else f"{limit:g}"


#: Runs ``matcher solve`` in a fresh process with the spelling check and the solve timed
#: (argv after ``-c``: the command's arguments); prints "check S solve S".
COMMAND_DRIVER = """
import os, sys, time
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # as the command sets it, before numpy loads
import matcher.engine.solve as engine_solve
import matcher.intake.spelling as spelling
spent = {"check": 0.0, "solve": 0.0}
def timed(name, function):
    def run(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t0
    return run
engine_solve.solve = timed("solve", engine_solve.solve)
spelling.check_spellings = timed("check", spelling.check_spellings)
from matcher.__main__ import run
sys.argv = ["matcher", *sys.argv[1:]]
try:
    run()  # the command's own entry point: signal handlers, one BLAS thread, click
except SystemExit as end:
    if end.code:
        raise
print("check %.3f solve %.3f" % (spent["check"], spent["solve"]), file=sys.stderr)
"""


def measure_command(path: Path, limit: float, runs: int, out: Path) -> list[tuple[float, float]]:
    """(spelling check, solve) seconds of ``runs`` runs of ``matcher solve`` in fresh processes."""
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                COMMAND_DRIVER,
                "solve",
                str(path),
                "--time-limit",
                str(limit),
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        )
        last = done.stderr.strip().splitlines()[-1].split()
        times.append((float(last[1]), float(last[3])))
    return times


def command_rows(sizes: list[int], limits: list[float | None], runs: int) -> list[str]:
    import tempfile  # lazy: only with --command

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"generated-{n}.json"
            path.write_text(json.dumps(generate_instance(n, seed=0)))
            for limit in (x for x in limits if x is not None):
                times = measure_command(path, limit, runs, Path(tmp) / "plan.json")
                total = [c + s for c, s in times]
                within = sum(t <= limit + 0.5 for t in total)
                rows.append(
                    f"| generated n={n} | {limit:g} | {runs} | {min(total):.2f}-{max(total):.2f} | "
                    f"{max(total) - limit:+.2f} | {within} of {runs} | "
                    f"{min(c for c, _ in times):.2f}-{max(c for c, _ in times):.2f} | "
                    f"{min(s for _, s in times):.2f}-{max(s for _, s in times):.2f} |"
                )
    return [
        "",
        f"`matcher solve INTAKE --time-limit T -o plan.json`, {runs} fresh processes each "
        "(deterministic, as without `--timings`); timed inside each: the spelling check and the "
        "solve, which the limit covers (start-up, reading, verifying and writing on top).",
        "",
        "| intake | limit (s) | runs | check + solve (s) | max overrun (s) | within +0.5 s | "
        "check (s) | solve (s) |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--limits", type=limit_arg, nargs="*", default=[1.0, 5.0, None], help="seconds, or none"
    )
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--none-runs", type=int, default=3, help="runs without a time limit")
    ap.add_argument("--sizes", type=int, nargs="*", default=[200, 2000, 5000])
    ap.add_argument("-o", "--output", type=Path, default=None)
    ap.add_argument(
        "--command",
        type=int,
        default=0,
        metavar="N",
        help="also time `matcher solve --time-limit T` N times per size and limit, each in a "
        "fresh process (the spelling check and the solve, timed inside it)",
    )
    args = ap.parse_args()
    intakes = [(f"generated n={n}", generate_instance(n, seed=0)) for n in args.sizes]
    intakes.append(("one cohort, ~1,000 pairs", one_big_cohort(1000)))
    solve(parse_instance(generate_instance(60, seed=1)))  # compile/caches outside the timing
    rows = [
        measure(name, data, limit, args.runs if limit is not None else args.none_runs)
        for name, data in intakes
        for limit in args.limits
    ]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    lines = [
        "# Time limits: wall time of solve(..., time_limit=T)",
        "",
        f"Commit {commit}; command: `python benchmarks/time_limits.py --limits "
        f"{' '.join(show_limit(x) for x in args.limits)} --runs {args.runs} --none-runs "
        f"{args.none_runs} --sizes {' '.join(map(str, args.sizes))}`. Library calls in one "
        "process (the CLI adds reading the file and writing the plan), non-deterministic mode "
        "under a limit, deterministic without one (`none`), 2-core machine.",
        "",
        f"Import time (best of 3 fresh interpreters): `import matcher` "
        f"{import_time('import matcher'):.2f} s, `from matcher import solve` "
        f"{import_time('from matcher import solve'):.2f} s (interpreter start included).",
        "",
        "| intake | participants | limit (s) | runs | max wall (s) | max overrun (s) | "
        "max CPU (s) | max progress gap (s) | after event | max gap between the solve's own "
        "checks (s) | after check | slowest run: pairing / placement / sets / metrics (s) | "
        "runs with shortlist pairing | outcomes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        overrun = "" if r["max_overrun"] is None else f"{r['max_overrun']:+.2f}"
        gap, after = r["max_gap"]
        own, own_after = r["max_acting_gap"]
        lines.append(
            f"| {r['intake']} | {r['participants']} | {show_limit(r['limit'])} | {r['runs']} | "
            f"{r['max_wall']:.2f} | {overrun} | {r['max_cpu']:.2f} | "
            f"{gap:.2f} | {after} | {own:.2f} | {own_after} | "
            f"{r['slowest']} | {r['hurried']} | {r['outcomes']} |"
        )
    if args.command:
        lines += command_rows(args.sizes, args.limits, args.command)
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
