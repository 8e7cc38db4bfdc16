"""Do time limits hold? Wall time of ``solve(instance, time_limit=T)`` against T.

For each intake (generated, 200 / 2,000 / 5,000 participants, and one cohort of about 1,000
pairs) and each limit, runs the library call ``runs`` times in this process and records the
largest overrun (wall - T), the largest gap between two progress events, the stage times of
the slowest run, the most CPU time of a run (this process's: on a shared machine the steadier
figure), how many runs paired lone applicants over shortlists because the exact
matching would not fit, and the import time of ``matcher`` and of ``from matcher import solve``
(fresh interpreters).

    python benchmarks/time_limits.py [--limits 1 5] [--runs 10] \\
        [-o benchmarks/results/time_limits.md]
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from matcher import NoPlanInTime, ProgressEvent, parse_instance, solve
from matcher.tools.generate import generate_instance

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


def measure(name: str, data: dict[str, Any], limit: float, runs: int) -> dict[str, Any]:
    inst = parse_instance(data)
    walls: list[float] = []
    cpus: list[float] = []
    gaps: list[float] = []
    outcomes: list[str] = []
    slowest: dict[str, float] = {}
    hurried = 0
    for _ in range(runs):
        stamps: list[float] = []

        def note(event: ProgressEvent, stamps: list[float] = stamps) -> None:
            stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        c0 = time.process_time()
        try:
            sol = solve(
                inst,
                time_limit=limit,
                deterministic=False,
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
        marks = [t0, *stamps, end]
        gaps.append(max(b - a for a, b in itertools.pairwise(marks)))
    return {
        "intake": name,
        "participants": len(inst.participants),
        "limit": limit,
        "runs": runs,
        "max_wall": max(walls),
        "max_overrun": max(walls) - limit,
        "max_cpu": max(cpus),
        "max_gap": max(gaps),
        "outcomes": ", ".join(sorted(set(outcomes))),
        "slowest": " / ".join(f"{slowest.get(k, 0.0):.2f}" for k in STAGES),
        "hurried": hurried,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limits", type=float, nargs="*", default=[1.0, 5.0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--sizes", type=int, nargs="*", default=[200, 2000, 5000])
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args()
    intakes = [(f"generated n={n}", generate_instance(n, seed=0)) for n in args.sizes]
    intakes.append(("one cohort, ~1,000 pairs", one_big_cohort(1000)))
    solve(parse_instance(generate_instance(60, seed=1)))  # compile/caches outside the timing
    rows = [
        measure(name, data, limit, args.runs) for name, data in intakes for limit in args.limits
    ]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    lines = [
        "# Time limits: wall time of solve(..., time_limit=T)",
        "",
        f"Commit {commit}; command: `python benchmarks/time_limits.py --limits "
        f"{' '.join(f'{x:g}' for x in args.limits)} --runs {args.runs} --sizes "
        f"{' '.join(map(str, args.sizes))}`. Library calls in one process (the CLI adds reading "
        "the file and writing the plan), non-deterministic mode, 2-core machine.",
        "",
        f"Import time (best of 3 fresh interpreters): `import matcher` "
        f"{import_time('import matcher'):.2f} s, `from matcher import solve` "
        f"{import_time('from matcher import solve'):.2f} s (interpreter start included).",
        "",
        "| intake | participants | limit (s) | runs | max wall (s) | max overrun (s) | "
        "max CPU (s) | "
        "max progress gap (s) | slowest run: pairing / placement / sets / metrics (s) | "
        "runs with shortlist pairing | outcomes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['intake']} | {r['participants']} | {r['limit']:g} | {r['runs']} | "
            f"{r['max_wall']:.2f} | {r['max_overrun']:+.2f} | {r['max_cpu']:.2f} | "
            f"{r['max_gap']:.2f} | "
            f"{r['slowest']} | {r['hurried']} | {r['outcomes']} |"
        )
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
