"""Instance shapes that used to fall off cliffs, solved end to end with time, memory and outcome.

Shapes (all seeded, fictional; built from `matcher generate` and then reshaped):

  generated-N     `matcher generate -n N --seed 0` as is, N = 200, 500, 2,000, 20,000
  generated-N-sS  `matcher generate -n N --seed S`: mid-size intakes whose optimal matching
                  cannot all be placed, so the joint CP-SAT model runs (150 seed 3, 300 seed 2)

  few-orgs-231    231 pre-formed pairs, one cohort; patient leaders from three organisations
                  (one of them in 120 pairs), professionals from three others
  few-orgs-1000   1,000 pre-formed pairs, one cohort, three organisations per side (skewed)
  one-cohort      2,000 participants, every one available for a single cohort
  many-cohorts    2,000 participants over 50 small cohorts
  tight-capacity  2,000 participants, cohort capacities halved
  many-conflicts  500 participants, one in five declares a conflict with someone in their system
  mentor-match    the peer's 500 + 500 sign-ups (needs --mentor-match DIR, see mentor_match.py)

Each row runs `python -m matcher -v solve FILE --format json -o OUT` in a fresh process (so
import and compile time count), measures wall time and peak memory (the child's maximum RSS),
reads the stage times from the log (pairing, placement, sets; the rest is start-up, reading,
checking, metrics, verifying and writing),
and reads the plan: status, pairs placed against the ceiling (pairs formed; for the few-orgs
shapes also the set-rule bound from the wait-list reasons), pairs wait-listed, and the
set-rule outcome.

Usage:
  python benchmarks/shapes.py                       # every shape but mentor-match
  python benchmarks/shapes.py --shapes few-orgs-231 --mentor-match PATH/TO/large
  python benchmarks/shapes.py --write DIR           # only write the instance files
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Seconds before a row is stopped (reported as "timeout").
TIMEOUT = 600
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def few_orgs(pairs: int, weights: list[float], *, seed: int = 0) -> dict[str, Any]:
    """``pairs`` pre-formed pairs in one cohort; patient leaders' organisations drawn from
    ``weights`` (three organisations, ``pl-org-a..``), professionals' from three others with the
    same weights (``pro-org-a..``)."""
    from matcher.tools.generate import generate_instance

    data = generate_instance(2 * pairs, cohorts=1, seed=seed, preformed_share=1.0)
    rng = np.random.default_rng(seed)
    p = np.asarray(weights, dtype=float) / sum(weights)
    names = "abcdefghij"
    for person in data["participants"]:
        side = "pl" if person["role"] == "patient_leader" else "pro"
        person["organisation"] = f"{side}-org-{names[int(rng.choice(len(p), p=p))]}"
        person.pop("available_cohorts", None)
        person.pop("attendance", None)
        person["avoid"] = []
    cohort = data["cohorts"][0]
    cohort["capacity_pairs"] = pairs
    cohort["mode"] = "online"
    data["name"] = f"few-orgs-{pairs}"
    return data


def few_orgs_231(seed: int = 0) -> dict[str, Any]:
    """231 pairs; the busiest organisation holds about 120 of them (52%)."""
    return few_orgs(231, [0.52, 0.24, 0.24], seed=seed)


def few_orgs_1000(seed: int = 0) -> dict[str, Any]:
    return few_orgs(1000, [0.4, 0.33, 0.27], seed=seed)


def one_cohort(seed: int = 0) -> dict[str, Any]:
    from matcher.tools.generate import generate_instance

    data = generate_instance(2000, cohorts=1, seed=seed)
    for person in data["participants"]:
        person.pop("available_cohorts", None)
        person.pop("attendance", None)
    data["cohorts"][0]["mode"] = "blended"
    data["cohorts"][0]["capacity_pairs"] = 1000
    data["name"] = "one-cohort-2000"
    return data


def many_cohorts(seed: int = 0) -> dict[str, Any]:
    from matcher.tools.generate import generate_instance

    data = generate_instance(2000, cohorts=50, seed=seed)
    data["name"] = "many-cohorts-2000"
    return data


def tight_capacity(seed: int = 0) -> dict[str, Any]:
    from matcher.tools.generate import generate_instance

    data = generate_instance(2000, seed=seed)
    for cohort in data["cohorts"]:
        cohort["capacity_pairs"] = max(3, cohort["capacity_pairs"] // 2)
    data["name"] = "tight-capacity-2000"
    return data


def many_conflicts(seed: int = 0) -> dict[str, Any]:
    from matcher.tools.generate import generate_instance

    data = generate_instance(500, seed=seed)
    rng = np.random.default_rng(seed + 1)
    people = data["participants"]
    by_system: dict[str, list[str]] = {}
    for person in people:
        by_system.setdefault(person["system"], []).append(person["id"])
    for person in people:
        if rng.random() < 0.2:
            pool = [x for x in by_system[person["system"]] if x not in (person["id"],)]
            pool = [x for x in pool if x != person.get("partner")]
            if pool:
                person["avoid"] = sorted({*person["avoid"], str(rng.choice(pool))})
    data["name"] = "many-conflicts-500"
    return data


def generated(n: int, fixed_seed: int | None = None) -> Any:
    def make(seed: int = 0) -> dict[str, Any]:
        from matcher.tools.generate import generate_instance

        return generate_instance(n, seed=seed if fixed_seed is None else fixed_seed)

    return make


SHAPES = {
    "generated-150-s3": generated(150, 3),
    "generated-200": generated(200),
    "generated-300-s2": generated(300, 2),
    "generated-500": generated(500),
    "generated-2000": generated(2000),
    "generated-20000": generated(20000),
    "few-orgs-231": few_orgs_231,
    "few-orgs-1000": few_orgs_1000,
    "one-cohort": one_cohort,
    "many-cohorts": many_cohorts,
    "tight-capacity": tight_capacity,
    "many-conflicts": many_conflicts,
}


def run_solve(path: Path, out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`python -m matcher solve` in a fresh process: wall time, peak RSS (GNU time's %M), exit
    code, the plan."""
    cmd = [
        *(sys.executable, "-m", "matcher", "-v", "solve", str(path)),
        *("--format", "json", "-o", str(out)),
    ]
    if Path("/usr/bin/time").exists():
        cmd = ["/usr/bin/time", "-f", "PEAK_KB %M", *cmd]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return {
            "time_s": time.perf_counter() - t0,
            "peak_mb": None,
            "exit": "timeout",
            "stderr": [f"stopped after {TIMEOUT} s"],
        }
    wall = time.perf_counter() - t0
    peak = re.findall(r"PEAK_KB (\d+)", res.stderr)
    stages = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"matcher: (pairing|placement|sets): .* in ([\d.]+) s", res.stderr)
    }
    stderr = [
        line
        for line in res.stderr.strip().splitlines()
        if not line.startswith("PEAK_KB") and "matcher: " not in line
    ]
    row: dict[str, Any] = {
        "time_s": wall,
        "peak_mb": int(peak[-1]) / 1024 if peak else None,
        "exit": res.returncode,
        "stderr": stderr[-1:] if res.returncode else [],
        "stages": stages,
    }
    if res.returncode == 0:
        plan = json.loads(out.read_text())
        row.update(summarise(plan))
    return row


def summarise(plan: dict[str, Any]) -> dict[str, Any]:
    pairs = plan["pairs"]
    placed = sum(1 for p in pairs if p["cohort"])
    in_sets = sum(1 for p in pairs if p.get("learning_set"))
    bounds = [
        int(m.group(1))
        for w in plan["waitlist"]
        for m in [re.search(r"at most (\d+) of the \d+ pairs can be grouped", w["reason"])]
        if m
    ]
    set_rule = "every placed pair in a set" if placed == in_sets else "BROKEN"
    if bounds:
        left = sum(1 for w in plan["waitlist"] if "can be grouped" in w["reason"])
        set_rule = f"{left} left out of sets (set-rule bound {max(bounds)} per cohort)"
    return {
        "status": plan["status"],
        "bound": plan["run"].get("bound"),
        "gap": plan["run"].get("gap"),
        "formed": len(pairs),
        "placed": placed,
        "waitlisted": len(plan["waitlist"]),
        "unmatched": len(plan["unmatched"]),
        "sets": len(plan.get("learning_sets") or []),
        "set_rule": set_rule,
        "notes": plan["run"].get("notes", []),
    }


def _stages(stages: dict[str, float]) -> str:
    return " / ".join(
        "–" if k not in stages else f"{stages[k]:.1f}" for k in ("pairing", "placement", "sets")
    )


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--shapes", nargs="*", default=list(SHAPES))
    ap.add_argument("--mentor-match", type=Path, help="folder with mentors.csv and mentees.csv")
    ap.add_argument("--write", type=Path, help="only write the instances into this folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        folder = args.write or Path(tmp_name)
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        for name in args.shapes:
            path = folder / f"{name}.json"
            path.write_text(json.dumps(SHAPES[name]()))
            files[name] = path
        if args.mentor_match:
            sys.path.insert(0, str(HERE))
            from mentor_match import convert

            path = folder / "mentor-match.json"
            path.write_text(json.dumps(convert(args.mentor_match)))
            files["mentor-match"] = path
        if args.write:
            print("\n".join(str(p) for p in files.values()))
            return
        # Warm the numba cache first (the cold start is measured in cold_start.py).
        warm = folder / "warm-up.json"
        warm.write_text(json.dumps(generated(200)()))
        run_solve(warm, Path(tmp_name) / "warm-up.plan.json")
        print(
            "| shape | participants | exit | status | time (s) | pairing / placement / sets (s) "
            "| peak (MB) | formed | placed | bound | gap | wait-listed | sets | set-rule outcome |"
        )
        print(
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: | --- |"
        )
        for name, path in files.items():
            n = len(json.loads(path.read_text())["participants"])
            row = run_solve(path, Path(tmp_name) / f"{name}.plan.json")
            peak = "–" if row["peak_mb"] is None else f"{row['peak_mb']:.0f}"
            print(
                f"| {name} | {n} | {row['exit']} | {row.get('status', '–')} | "
                f"{row['time_s']:.1f} | {_stages(row['stages'])} | {peak} | "
                f"{row.get('formed', '–')} | "
                f"{row.get('placed', '–')} | {_num(row.get('bound'))} | {_num(row.get('gap'))} | "
                f"{row.get('waitlisted', '–')} | "
                f"{row.get('sets', '–')} | {row.get('set_rule', row['stderr'])} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
