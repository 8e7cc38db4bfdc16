"""`matcher bench` on generated intakes: the three objectives compared at a few sizes.

Generates ``matcher generate -n N --seed 0`` for each size into a temporary folder, runs every
objective on seeds ``0..S-1`` (:func:`matcher.tools.bench.run_bench`), writes the run rows as
CSV (``-o``; the intake files are named ``synthetic-nN.json``, so the ``file`` column does not
depend on the temporary folder) and prints the bench tables (runs judged, each objective
against ``total`` counting people and score, groups placed least).

    python benchmarks/generated_bench.py --sizes 300 2000 --seeds 1 \
        -o benchmarks/results/bench_generated.csv
    python benchmarks/generated_bench.py --sizes 30 --seeds 1 -o /tmp/tiny.csv   # tiny
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from rich.console import Console

    from matcher.tools.bench import RUN_COLUMNS, bench_tables, rows_csv, run_bench
    from matcher.tools.generate import generate_instance

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[300, 2000])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "-o", "--output", type=Path, default=ROOT / "benchmarks/results/bench_generated.csv"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n in args.sizes:
            path = Path(tmp) / f"synthetic-n{n}.json"
            path.write_text(json.dumps(generate_instance(n, seed=0)), encoding="utf-8")
            paths.append(path)
        here = os.getcwd()
        os.chdir(tmp)  # relative file names in the rows
        try:
            result = run_bench([p.name for p in paths], seeds=args.seeds, jobs=args.jobs)
        finally:
            os.chdir(here)
    args.output.write_text(rows_csv(result.runs, RUN_COLUMNS), encoding="utf-8")
    console = Console(width=220, no_color=True, highlight=False)
    for table in bench_tables(result):
        console.print(table)
    if not result.all_verified or result.failed:
        raise SystemExit("a run failed or failed verification: see the tables")


if __name__ == "__main__":
    main()
