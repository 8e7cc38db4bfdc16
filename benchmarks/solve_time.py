"""Wall time of `matcher solve instances/may2016.json` beyond Python start-up.

Runs, in one session and interleaved so that machine load hits both alike:
  - `python -c pass`                       (bare interpreter start-up, the reference)
  - `python -c "import matcher.cli"`       (start-up plus imports)
  - `matcher solve INSTANCE --format json` (the whole job: validate, pair, place, group, verify)
and reports the median of each and the differences.

Usage: python benchmarks/solve_time.py [INSTANCE] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("instance", nargs="?", default=str(REPO / "instances" / "may2016.json"))
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    py = sys.executable
    cases = {
        "python -c pass": [py, "-c", "pass"],
        "import matcher.cli": [py, "-c", "import matcher.cli"],
        "matcher solve (table)": [py, "-m", "matcher", "solve", args.instance],
        "matcher solve --format json": [
            py,
            "-m",
            "matcher",
            "solve",
            args.instance,
            "--format",
            "json",
        ],
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    timed(cases["matcher solve (table)"])  # warm the numba cache and the OS file cache
    for _ in range(args.runs):
        for name, cmd in cases.items():
            times[name].append(timed(cmd))
    base = statistics.median(times["python -c pass"])
    shown = Path(args.instance).resolve()
    if shown.is_relative_to(REPO):  # a path in the repository, never this machine's folders
        shown = shown.relative_to(REPO)
    print(f"instance: {shown}; {args.runs} runs each, interleaved; medians")
    print("| command | median (s) | beyond start-up (s) |")
    print("| --- | ---: | ---: |")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} | {med - base:.3f} |")


if __name__ == "__main__":
    main()
