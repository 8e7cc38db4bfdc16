"""Re-planning benchmark: changes with ``--previous`` against changes of a fresh solve.

For each intake (the bundled may2016 and generated intakes) and each perturbation (one
withdrawal of a placed professional, one shrunk cohort, one late applicant), it solves the
intake, perturbs it, then solves again (a) from scratch and (b) with the first plan as
``previous``, and records, for both: pairs dissolved, moved cohort, moved set (against the first
plan), pairs placed, total score, and wall time. The reference run (the fresh solve) is in the
same process, so the time column is a ratio.

    python benchmarks/replan.py [--sizes 50 500 2000] [-o benchmarks/results/replan.md]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from matcher import parse_instance, solve
from matcher.compare.diff import plan_changes
from matcher.contract.solution import Solution
from matcher.tools.generate import generate_instance

REPO = Path(__file__).resolve().parents[1]


def perturb(data: dict[str, Any], plan: Solution, kind: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    if kind == "withdrawal":
        placed = [p for p in plan.pairs if p.cohort is not None and not p.preformed]
        placed = placed or [p for p in plan.pairs if p.cohort is not None]
        victim = placed[len(placed) // 2].partner
        for p in out["participants"]:
            if p["id"] == victim:
                p["status"] = "withdrawn"
    elif kind == "shrunk cohort":
        fill: dict[str, int] = {}
        for p in plan.pairs:
            if p.cohort:
                fill[p.cohort] = fill.get(p.cohort, 0) + 1
        cid = max(fill, key=lambda c: (fill[c], c))
        for c in out["cohorts"]:
            if c["id"] == cid:
                c["capacity_pairs"] = max(0, fill[cid] - 4)
    elif kind == "late applicant":
        source = next(p for p in out["participants"] if p["role"] != "patient_leader")
        late = dict(source, id="late-applicant", partner=None, avoid=[])
        out["participants"].append(late)
    return out


def measure(name: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    first = solve(parse_instance(data))
    rows = []
    for kind in ("withdrawal", "shrunk cohort", "late applicant"):
        inst = parse_instance(perturb(data, first, kind))
        t0 = time.perf_counter()
        fresh = solve(inst)
        t_fresh = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = solve(inst, previous=first)
        t_replan = time.perf_counter() - t0
        row: dict[str, Any] = {"intake": name, "change": kind}
        for label, sol in (("fresh", fresh), ("replan", again)):
            c = plan_changes(first, sol).counts
            row[label] = {
                "dissolved": c.dissolved,
                "moved_cohort": c.moved_cohort,
                "moved_set": c.moved_set,
                "placed": sum(p.cohort is not None for p in sol.pairs),
                "total": round(sum(p.score for p in sol.pairs), 3),
                "status": sol.status,
            }
        row["minimal"] = again.changes.minimal if again.changes else None
        row["time_fresh_s"] = round(t_fresh, 2)
        row["time_replan_s"] = round(t_replan, 2)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="*", default=[50, 500, 2000])
    ap.add_argument("-o", "--output", type=Path, default=None)
    args = ap.parse_args()
    rows = measure("may2016", json.loads((REPO / "instances" / "may2016.json").read_text()))
    for n in args.sizes:
        rows += measure(f"generated n={n}", generate_instance(n, seed=0))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    lines = [
        "# Re-planning: changes with --previous against a fresh solve",
        "",
        f"Commit {commit}; command: `python benchmarks/replan.py --sizes "
        f"{' '.join(map(str, args.sizes))}`. Changes are counted against the first plan "
        "(dissolved / moved cohort / moved set); 'placed' and 'total' (sum of pair scores) show "
        "what the re-plan gives up against the fresh optimum. Times are wall seconds on a "
        "shared 2-core machine; compare the two columns, not absolute values.",
        "",
        "| intake | change | fresh: dissolved/cohort/set | re-plan: dissolved/cohort/set "
        "| placed fresh / re-plan | total fresh / re-plan | minimal proven | time fresh / "
        "re-plan (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, g = r["fresh"], r["replan"]
        lines.append(
            f"| {r['intake']} | {r['change']} | {f['dissolved']}/{f['moved_cohort']}/"
            f"{f['moved_set']} | {g['dissolved']}/{g['moved_cohort']}/{g['moved_set']} | "
            f"{f['placed']} / {g['placed']} | {f['total']} / {g['total']} | {r['minimal']} | "
            f"{r['time_fresh_s']} / {r['time_replan_s']} |"
        )
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
