"""Spreadsheets in and out at 2,000 and 20,000 participants: time and peak memory per stage.

For each size, in a fresh process: a seeded synthetic intake (`matcher generate`, seed 0) with
a name and an email for everyone is written as an intake workbook with matcher's own exporter
(`matcher template --from`), then

  - reference: reading the same intake from JSON (`load_instance`), the time every ratio
    below is taken against (same process, same data),
  - export: the intake workbook (template --from),
  - import: the workbook read back and validated (`read_workbook` + instance checks),
  - spelling check: near-miss category values (rapidfuzz on distinct values),
  - solve: the whole pipeline, deterministic mode (for the end-to-end goal only; its scaling
    is measured in benchmarks/scaling.py),
  - plan XLSX and HTML report, with their sizes.

Wall times are measured first without tracing; peak memory per stage is then measured in a
second pass under tracemalloc (Python and numpy allocations), and the process's peak RSS is
reported at the end.

Goal (issue 8): import + solve + XLSX + HTML under 15 s and the page under 2 MB at 2,000.

Usage:
  python benchmarks/spreadsheets.py                       # 2,000 and 20,000 (a few minutes)
  python benchmarks/spreadsheets.py --sizes 2000 -o benchmarks/results/spreadsheets.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _peak(fn: Callable[[], Any]) -> float:
    """Peak traced memory of ``fn`` in MB."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def one(n: int) -> dict[str, Any]:
    """Child process: every stage for one size."""
    from matcher.contract.instance import Instance
    from matcher.engine.solve import solve
    from matcher.intake.json_file import load_instance
    from matcher.intake.spelling import near_duplicates
    from matcher.intake.spreadsheet import read_workbook
    from matcher.intake.template import build_workbook
    from matcher.render.report import plan_report
    from matcher.render.view import PlanView
    from matcher.render.workbook import plan_workbook
    from matcher.tools.generate import generate_instance

    data = generate_instance(n, seed=0)
    for p in data["participants"]:
        p["name"] = f"Person {p['id']}"
        p["email"] = f"{p['id']}@example.org"
    tmp = Path(tempfile.mkdtemp(prefix="matcher-bench-"))
    json_path, xlsx_path = tmp / "intake.json", tmp / "intake.xlsx"
    json_path.write_text(json.dumps(data), encoding="utf-8")

    out: dict[str, Any] = {"n": n}
    times: dict[str, float] = {}
    _, times["reference: load JSON"] = _timed(lambda: load_instance(json_path))
    _, times["export: intake workbook"] = _timed(lambda: build_workbook(data).save(xlsx_path))
    imported, times["import: read + validate"] = _timed(
        lambda: Instance.model_validate(read_workbook(xlsx_path))
    )
    near, times["spelling check"] = _timed(lambda: near_duplicates(imported))
    solution, times["solve"] = _timed(lambda: solve(imported, seed=0))
    view = PlanView(imported, solution)
    book, times["plan XLSX"] = _timed(lambda: plan_workbook(view))
    page, times["HTML report"] = _timed(lambda: plan_report(view))
    out["times"] = times
    out["sizes"] = {
        "intake workbook": xlsx_path.stat().st_size,
        "plan XLSX": len(book),
        "HTML report": len(page.encode("utf-8")),
    }
    out["near_duplicates"] = len(near)
    out["pairs"] = len(solution.pairs)
    out["peak_mb"] = {
        "reference: load JSON": _peak(lambda: load_instance(json_path)),
        "export: intake workbook": _peak(lambda: build_workbook(data).save(tmp / "x.xlsx")),
        "import: read + validate": _peak(lambda: Instance.model_validate(read_workbook(xlsx_path))),
        "spelling check": _peak(lambda: near_duplicates(imported)),
        "plan XLSX": _peak(lambda: plan_workbook(view)),
        "HTML report": _peak(lambda: plan_report(view)),
    }
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def table(results: list[dict[str, Any]]) -> str:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    lines = [
        "# Spreadsheets in and out: time and memory",
        "",
        f"Command: `python benchmarks/spreadsheets.py --sizes "
        f"{' '.join(str(r['n']) for r in results)} -o benchmarks/results/spreadsheets.md` "
        f"at commit {commit or '(unknown)'}, on this project's shared 2-core machine, one size "
        "per fresh process. Intakes: `matcher generate -n N --seed 0` with a name and email "
        "added for everyone, written as an intake workbook by `matcher template --from`.",
        "",
        "Time in seconds (and as a multiple of reading the same intake from JSON in the same "
        "process); peak memory of the stage under tracemalloc (MB).",
        "",
    ]
    stages = list(results[0]["times"])
    head = "| stage | " + " | ".join(f"{r['n']:,} time (x JSON) | peak MB" for r in results)
    lines += [head + " |", "|---" * (1 + 2 * len(results)) + "|"]
    for s in stages:
        row = [s]
        for r in results:
            t = r["times"][s]
            ref = r["times"]["reference: load JSON"]
            row.append(f"{t:.2f} ({t / ref:.1f}x)")
            peak = r["peak_mb"].get(s)
            row.append(f"{peak:.0f}" if peak is not None else "-")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for r in results:
        t = r["times"]
        total = sum(t[k] for k in ("import: read + validate", "solve", "plan XLSX", "HTML report"))
        sizes = r["sizes"]
        lines.append(
            f"- {r['n']:,} participants ({r['pairs']:,} pairs): import + solve + XLSX + HTML "
            f"= {total:.1f} s; intake workbook {sizes['intake workbook'] / 1e6:.2f} MB, plan "
            f"XLSX {sizes['plan XLSX'] / 1e6:.2f} MB, HTML report "
            f"{sizes['HTML report'] / 1e6:.2f} MB; near-miss spellings found: "
            f"{r['near_duplicates']}; process peak RSS {r['max_rss_mb']:.0f} MB."
        )
    lines += [
        "",
        "Goal (issue 8): import + solve + XLSX + HTML under 15 s and the HTML page under 2 MB "
        "at 2,000 participants.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("-o", "--output", type=Path, default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child)))
        return
    results = []
    for n in args.sizes:
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{n}: {results[-1]['times']}", file=sys.stderr)
    text = table(results)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
