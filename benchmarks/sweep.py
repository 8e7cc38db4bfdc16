"""Size sweep: generated intakes of 50 to 20,000 participants, seeds 0-4, and the shapes of
``shapes.py``, each solved end to end in a fresh process.

Per run: wall and CPU time (the child's user + system time: on a shared machine CPU time is the
steadier figure), the stage times from the ``-v`` log (pairing, placement, sets; the rest is
start-up, reading, checking, metrics, verifying and writing), peak memory (the child's maximum
RSS), pairs placed against the bound, the lone pairs' total score, and the sets' mean and least
diversity. Writes a Markdown table, a CSV and a log-log plot of wall time against size (one
line per seed) into the output folder.

Usage:
  python benchmarks/sweep.py -o benchmarks/results               # everything (long)
  python benchmarks/sweep.py --sizes 150 300 --seeds 2 3 --no-shapes -o /tmp/sweep
  python benchmarks/sweep.py --root /path/to/other/checkout ...   # time another checkout
  python benchmarks/sweep.py --compare OLD.csv ...                # add before/after columns
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

SIZES = [50, 100, 150, 200, 300, 500, 1000, 2000, 5000, 20000]
SEEDS = [0, 1, 2, 3, 4]
#: Seconds before a run is stopped (reported as "timeout").
TIMEOUT = 300
FIELDS = [
    "name",
    "participants",
    "seed",
    "exit",
    "status",
    "wall_s",
    "cpu_s",
    "warm_s",
    "pairing_s",
    "placement_s",
    "sets_s",
    "peak_mb",
    "formed",
    "placed",
    "bound",
    "lone_pairs",
    "lone_total",
    "sets",
    "mean_diversity",
    "least_diversity",
]


#: What ``--warm`` times in one process, the second time round: the library reads the intake,
#: solves it, verifies the plan and writes its JSON, as a web app or an admin tool that has
#: already solved once does.
WARM_SCRIPT = """
import sys, time
from pathlib import Path
from matcher.engine.solve import solve
from matcher.intake.spreadsheet import load_any
from matcher.render.output import solution_json
from matcher.verification.verify import verify
path, out = Path(sys.argv[1]), Path(sys.argv[2])
def once():
    instance = load_any(path)
    plan = solve(instance, seed=0)
    assert verify(instance, plan).ok
    out.write_text(solution_json(plan))
once()
t = time.perf_counter()
once()
print(f"WARM_S {time.perf_counter() - t:.3f}")
"""


def run_warm(path: Path, out: Path, root: Path, timeout: float = TIMEOUT) -> float | None:
    """Seconds of the second read-solve-verify-write of ``path`` in one process (None: failed)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        res = subprocess.run(
            [sys.executable, "-c", WARM_SCRIPT, str(path), str(out)],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=2 * timeout,
        )
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"WARM_S ([\d.]+)", res.stdout)
    return float(m.group(1)) if m and res.returncode == 0 else None


def run_one(path: Path, out: Path, root: Path, timeout: float = TIMEOUT) -> dict[str, Any]:
    """``python -m matcher -v solve`` in a fresh process, under GNU time for peak RSS and CPU."""
    cmd = [
        *("/usr/bin/time", "-f", "PEAK_KB %M CPU %U %S"),
        *(sys.executable, "-m", "matcher", "-v", "solve", str(path)),
        *("--format", "json", "-o", str(out)),
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}
    t0 = time.perf_counter()
    try:
        res = subprocess.run(
            cmd, env=env, cwd=root, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"exit": "timeout", "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    row: dict[str, Any] = {"exit": res.returncode, "wall_s": round(wall, 2)}
    m = re.search(r"PEAK_KB (\d+) CPU ([\d.]+) ([\d.]+)", res.stderr)
    if m:
        row["peak_mb"] = round(int(m.group(1)) / 1024)
        row["cpu_s"] = round(float(m.group(2)) + float(m.group(3)), 2)
    for stage, secs in re.findall(
        r"matcher: (pairing|placement|sets): .* in ([\d.]+) s", res.stderr
    ):
        row[f"{stage}_s"] = float(secs)
    if res.returncode == 0:
        plan = json.loads(out.read_text())
        lone = plan["metrics"]["scores"]["lone_pairs"]
        sets = plan["metrics"].get("sets") or {}
        row.update(
            status=plan["status"],
            formed=len(plan["pairs"]),
            placed=sum(1 for p in plan["pairs"] if p["cohort"]),
            bound=plan["run"].get("bound"),
            lone_pairs=lone.get("count"),
            lone_total=lone.get("total"),
            sets=sets.get("count"),
            mean_diversity=sets.get("mean_diversity"),
            least_diversity=sets.get("least_diversity"),
        )
    else:
        row["status"] = (res.stderr.strip().splitlines() or ["?"])[-1][:80]
    return row


def instances(args: argparse.Namespace, folder: Path) -> list[tuple[str, int, int | None, Path]]:
    from matcher.tools.generate import generate_instance

    out = []
    for n in args.sizes:
        for seed in args.seeds:
            path = folder / f"generated-{n}-s{seed}.json"
            path.write_text(json.dumps(generate_instance(n, seed=seed)))
            out.append((f"generated-{n}", n, seed, path))
    if args.shapes:
        from shapes import SHAPES

        for name in args.shapes:
            if name.startswith("generated-"):
                continue  # in the sweep already
            data = SHAPES[name]()
            path = folder / f"{name}.json"
            path.write_text(json.dumps(data))
            out.append((name, len(data["participants"]), None, path))
    if args.mentor_match:
        from mentor_match import convert

        data = convert(args.mentor_match)
        path = folder / "mentor-match.json"
        path.write_text(json.dumps(data))
        out.append(("mentor-match", len(data["participants"]), None, path))
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    seeds = sorted({r["seed"] for r in rows if r["seed"] not in (None, "")})
    for seed in seeds:
        pts = sorted(
            (int(r["participants"]), float(r["wall_s"]))
            for r in rows
            if r["seed"] == seed and r["name"].startswith("generated-") and r.get("exit") == 0
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"seed {seed}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("participants")
    ax.set_ylabel("wall time, end to end (s)")
    ax.set_title("matcher solve: time against size (fresh process each)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(x: Any) -> str:
    if x is None or x == "":
        return "–"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


#: The machine-speed probe: small numpy operations in a Python loop, the kind of work most of a
#: solve's seconds are made of. Timed in a fresh process before and after the runs, so that a
#: table recorded while the machine ran slow (a shared host) says so.
PROBE = """
import time, numpy as np
a = np.random.default_rng(0).random((25, 25)); idx = np.arange(25)
t = time.perf_counter()
s = 0.0
for i in range(20000):
    b = a.take(idx); s += float(b.sum()); np.argmax(b)
print(time.perf_counter() - t)
"""


def machine_probe(runs: int = 3) -> float:
    """Seconds the probe takes, the best of ``runs`` fresh processes."""
    return min(
        float(
            subprocess.run(
                [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    ap.add_argument("--seeds", type=int, nargs="*", default=SEEDS)
    ap.add_argument(
        "--big-seeds",
        type=int,
        nargs="*",
        default=[0],
        help="seeds for sizes above 2,000 (default: 0 only)",
    )
    ap.add_argument("--shapes", nargs="*", default=None, help="shapes of shapes.py (default: all)")
    ap.add_argument("--no-shapes", action="store_true")
    ap.add_argument(
        "--mentor-match", type=Path, help="folder with mentors.csv and mentees.csv (500 + 500)"
    )
    ap.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per run")
    ap.add_argument(
        "--warm",
        action="store_true",
        help="also time a second read-solve-verify-write in one process (generated intakes "
        "up to 2,000 participants)",
    )
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to run (default: this one)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="folder for the results")
    ap.add_argument("--name", default="sweep", help="file stem of the results (default: sweep)")
    args = ap.parse_args()
    if args.no_shapes:
        args.shapes = []
    elif args.shapes is None:
        from shapes import SHAPES

        args.shapes = list(SHAPES)
    args.output.mkdir(parents=True, exist_ok=True)
    probe_before = machine_probe()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        folder = Path(tmp_name)
        todo = [
            t
            for t in instances(args, folder)
            if t[2] is None or t[1] <= 2000 or t[2] in args.big_seeds
        ]
        # warm the numba cache first (the cold start is measured in cold_start.py)
        from matcher.tools.generate import generate_instance

        warm = folder / "warm.json"
        warm.write_text(json.dumps(generate_instance(200, seed=0)))
        run_one(warm, folder / "warm.plan.json", args.root)
        for name, n, seed, path in todo:
            row = {"name": name, "participants": n, "seed": seed}
            row.update(run_one(path, folder / f"{path.stem}.plan.json", args.root, args.timeout))
            if args.warm and seed is not None and n <= 2000:
                warm_s = run_warm(path, folder / f"{path.stem}.warm.json", args.root, args.timeout)
                row["warm_s"] = None if warm_s is None else round(warm_s, 2)
            rows.append(row)
            print(" ".join(f"{k}={fmt(row.get(k))}" for k in FIELDS), flush=True)
    probe_after = machine_probe()
    csv_path = args.output / f"{args.name}.csv"
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    plot(rows, args.output / f"{args.name}.png")
    head = (
        "| intake | n | seed | exit | status | wall (s) | CPU (s) | warm (s) "
        "| pairing / placement / sets (s) "
        "| peak (MB) | placed / bound | formed | lone pairs | lone total | sets | diversity "
        "mean / least |"
    )
    lines = [head, "|" + " --- |" * 16]
    for r in rows:
        stages = " / ".join(fmt(r.get(f"{s}_s")) for s in ("pairing", "placement", "sets"))
        lines.append(
            f"| {r['name']} | {r['participants']} | {fmt(r['seed'])} | {fmt(r.get('exit'))} "
            f"| {fmt(r.get('status'))} | {fmt(r.get('wall_s'))} | {fmt(r.get('cpu_s'))} "
            f"| {fmt(r.get('warm_s'))} | {stages} | {fmt(r.get('peak_mb'))} "
            f"| {fmt(r.get('placed'))} / "
            f"{fmt(r.get('bound'))} | {fmt(r.get('formed'))} | {fmt(r.get('lone_pairs'))} "
            f"| {fmt(r.get('lone_total'))} | {fmt(r.get('sets'))} "
            f"| {fmt(r.get('mean_diversity'))} / {fmt(r.get('least_diversity'))} |"
        )
    cmd = "python benchmarks/sweep.py " + " ".join(sys.argv[1:])
    (args.output / f"{args.name}.md").write_text(
        f"# Size sweep\n\nCommand: `{cmd}`\n\n"
        f"Machine-speed probe (`PROBE` in `benchmarks/sweep.py`, best of 3 fresh processes): "
        f"{probe_before:.3f} s before the runs, {probe_after:.3f} s after. Wall times move with "
        "it: compare tables recorded at similar probes.\n\n"
        + "\n".join(lines)
        + f"\n\nPlot: `{args.name}.png` (wall time against participants, log-log).\n"
        + (
            "\n*wall*: `matcher -v solve` end to end in a fresh process (start-up, reading, "
            "checking, solving, verifying, writing). *warm*: the second read-solve-verify-write "
            "of the same file in one process (the library, as the web app or an admin tool "
            "after its first solve).\n"
            if args.warm
            else ""
        )
    )
    print(f"wrote {csv_path}, {args.name}.md, {args.name}.png in {args.output}")


if __name__ == "__main__":
    main()
