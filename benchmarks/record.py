"""Re-record benchmark results: one command per file in ``benchmarks/results/``, stamped with
the commit it ran at.

Every results file is listed in :data:`RECORDS` with the one command that regenerates it, its
tier (``cheap``: minutes on a laptop; ``heavy``: long runs, re-recorded by the owner named) and
what it holds. ``python benchmarks/record.py FILE...`` runs those commands from the repository
root and writes each file with a stamp line first: the commit (``-dirty`` when the working
tree has uncommitted changes), the date, the command, and a note on the machine's load.

    python benchmarks/record.py --list              # the table: file, tier, owner, command
    python benchmarks/record.py bench_intakes.md    # re-record one file (and its companions)
    python benchmarks/record.py --tier cheap        # re-record every cheap file
    python benchmarks/record.py --check             # which files carry no stamp, or are unknown

``tests/test_benchmarks_fast.py`` runs every benchmark script in a tiny mode and parses its
output, and checks that every results file is listed here, so that a recorded table cannot
silently drift from the code that makes it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PY = "python"

#: The stamp line's pattern (first line of a recorded Markdown file).
STAMP = re.compile(r"^> Recorded at commit `(?P<commit>[0-9a-f]{7,40})(?P<dirty>-dirty)?` on ")


@dataclass(frozen=True)
class Record:
    """How one results file is made.

    ``command``: argv from the repository root (``python`` is this interpreter);
    ``output``: ``stdout`` (the command prints the Markdown), ``fenced`` (it prints terminal
    tables, kept in a code block) or ``self`` (the command writes the file; a Markdown file
    gets the stamp put in front); ``also``: other files the same command writes (CSV
    companions, no stamp: the Markdown file's stamp covers them)."""

    command: tuple[str, ...]
    tier: str
    owner: str
    about: str
    output: str = "stdout"
    also: tuple[str, ...] = field(default_factory=tuple)


_INTAKES = ("instances/may2016.json", "instances/nov2016.json", "instances/may2017.json")

RECORDS: dict[str, Record] = {
    "bench_intakes.md": Record(
        (
            PY,
            "-m",
            "matcher",
            "bench",
            *_INTAKES,
            "--seeds",
            "3",
            "--jobs",
            "2",
            "-o",
            "benchmarks/results/bench_intakes.csv",
            "--comparisons-output",
            "benchmarks/results/bench_intakes_compare.csv",
            "--groups-output",
            "benchmarks/results/bench_intakes_groups.csv",
        ),
        "cheap",
        "21",
        "The three bundled intakes x total, fair, stable x seeds 0-2: every run judged "
        "(placed, bound, gap, left out), each objective against total, and groups.",
        output="fenced",
        also=("bench_intakes.csv", "bench_intakes_compare.csv", "bench_intakes_groups.csv"),
    ),
    "bench_generated.md": Record(
        (PY, "benchmarks/generated_bench.py", "--sizes", "300", "2000", "--seeds", "1"),
        "cheap",
        "21",
        "Generated intakes of 300 and 2,000 participants x total, fair, stable: placed against "
        "the bound, people left out, prices in percent.",
        output="fenced",
        also=("bench_generated.csv",),
    ),
    "solve_time.md": Record(
        (PY, "benchmarks/solve_time.py", "--runs", "7"),
        "cheap",
        "21",
        "`matcher solve` on may2016 against bare interpreter start-up.",
    ),
    "web.md": Record(
        (PY, "benchmarks/web.py"),
        "heavy",
        "15",
        "The web app: plan pages at 50, 2,000 and 20,000 participants, Re-plan to change list, "
        "server memory.",
    ),
    "replan.md": Record(
        (PY, "benchmarks/replan.py", "--sizes", "50", "500", "2000"),
        "heavy",
        "17",
        "Re-planning with --previous against a fresh solve.",
    ),
    "cold_start.md": Record(
        (PY, "benchmarks/cold_start.py"),
        "heavy",
        "17",
        "CLI start-up, first solve, and numba's place.",
    ),
    "assignment.md": Record(
        (PY, "benchmarks/assignment.py", "--steady", "--repeat", "7"),
        "heavy",
        "17",
        "solvers.assignment's kernels against scipy and raw OR-Tools, one process, steady "
        "state, every total checked against the reference.",
    ),
    "mentor-match.md": Record(
        (
            PY,
            "benchmarks/sweep.py",
            "--sizes",
            "--no-shapes",
            "-o",
            "benchmarks/results",
            "--name",
            "mentor-match",
        ),
        "heavy",
        "17",
        "The mentor-match peer data end to end (given with --mentor-match DIR): time by stage, "
        "placed against the bound, the lone pairs' total.",
        output="self",
    ),
    "stable.md": Record(
        (PY, "benchmarks/stable.py", "--repeat", "3"),
        "heavy",
        "17",
        "solvers.stable against plain Python and the matching package.",
    ),
    "scaling.md": Record(
        (PY, "benchmarks/scaling.py"),
        "heavy",
        "17",
        "The whole pipeline from 20 to 20,000 participants.",
    ),
    "shapes.md": Record(
        (PY, "benchmarks/shapes.py"),
        "heavy",
        "17",
        "Instance shapes end to end: time, memory, placed against the bound.",
    ),
    "time_limits.md": Record(
        (PY, "benchmarks/time_limits.py"),
        "heavy",
        "17",
        "Overruns of --time-limit.",
    ),
    "mdgp.md": Record(
        (PY, "benchmarks/mdgp.py"),
        "heavy",
        "17",
        "solvers.grouping on MDGPLIB (needs the MDGP data set, see the script).",
    ),
    "spreadsheets.md": Record(
        (PY, "benchmarks/spreadsheets.py"),
        "heavy",
        "20",
        "Workbooks in and out at 2,000 and 20,000 participants.",
    ),
    "hostile.md": Record(
        (PY, "-m", "tests.hostile", "--count", "1200", "--summary", "100"),
        "heavy",
        "20",
        "The hostile-input corpus.",
    ),
    "sweep.md": Record(
        (
            PY,
            "benchmarks/sweep.py",
            "--timeout",
            "1500",
            "--sizes",
            "50",
            "100",
            "150",
            "200",
            "300",
            "500",
            "1000",
            "2000",
            "--no-shapes",
            "--warm",
            "-o",
            "benchmarks/results",
            "--name",
            "sweep",
        ),
        "heavy",
        "17",
        "Size sweep: generated intakes of 50-2,000 participants, seeds 0-4, time by stage (fresh "
        "process, and warm: a second solve in one process), memory, placed against the bound, "
        "quality; log-log plot.",
        output="self",
        also=("sweep.csv", "sweep.png", "sweep-before-0115539.csv"),
    ),
    "sweep-large.md": Record(
        (
            PY,
            "benchmarks/sweep.py",
            "--timeout",
            "1500",
            "--sizes",
            "5000",
            "20000",
            "--seeds",
            "0",
            "--no-shapes",
            "-o",
            "benchmarks/results",
            "--name",
            "sweep-large",
        ),
        "heavy",
        "17",
        "Size sweep at 5,000 and 20,000 participants (seed 0).",
        output="self",
        also=("sweep-large.csv", "sweep-large.png"),
    ),
    "sweep-shapes.md": Record(
        (
            PY,
            "benchmarks/sweep.py",
            "--timeout",
            "1500",
            "--sizes",
            "-o",
            "benchmarks/results",
            "--name",
            "sweep-shapes",
        ),
        "heavy",
        "17",
        "The shapes of shapes.py and the mentor-match peer data (given with --mentor-match DIR).",
        output="self",
        also=("sweep-shapes.csv", "sweep-shapes.png"),
    ),
    "project_fit.md": Record(
        (PY, "benchmarks/project_fit.py"),
        "heavy",
        "18",
        "Project fit by meaning: the labelled set (tags only, meaning only, combined, a "
        "word-overlap reference), embedding time and memory at 2,000 and 20,000, install size.",
    ),
    "report-may2016.png": Record(
        (PY, "-m", "pytest", "tests/test_report.py", "-q", "-k", "renders_in_chromium"),
        "cheap",
        "16",
        "Screenshot of the may2016 report page (written where MATCHER_TEST_ARTEFACTS points: "
        "run with MATCHER_TEST_ARTEFACTS=benchmarks/results).",
        output="self",
    ),
}


def commit() -> str:
    """HEAD's short hash, with ``-dirty`` when tracked files have uncommitted changes."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("-dirty" if dirty else "") if head else "unknown"


def stamp(name: str, record: Record, at: str, load: str) -> str:
    """The first lines of a recorded file."""
    command = shlex.join(record.command)
    return (
        f"> Recorded at commit `{at}` on {dt.date.today().isoformat()} by "
        f"`python benchmarks/record.py {name}`, which runs `{command}` from the repository "
        f"root. Machine: {load}\n\n"
        f"{record.about}\n\n"
    )


def run(name: str, *, load: str) -> None:
    """Re-record ``name`` (a key of :data:`RECORDS`)."""
    record = RECORDS[name]
    argv = [sys.executable if a == PY else a for a in record.command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if name.endswith(".png"):
        env["MATCHER_TEST_ARTEFACTS"] = str(RESULTS)
    env.setdefault("COLUMNS", "260")  # terminal tables written to a file: no folding
    at = commit()  # before the command rewrites tracked results files
    print(f"recording {name}: {shlex.join(record.command)}", file=sys.stderr)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{name}: the command failed (exit {done.returncode}); nothing written")
    target = RESULTS / name
    if record.output == "self":
        if target.suffix == ".md":  # the command wrote it: the stamp goes in front
            body = target.read_text(encoding="utf-8")
            target.write_text(stamp(name, record, at, load) + body, encoding="utf-8")
        return
    body = done.stdout.rstrip() + "\n"
    if record.output == "fenced":
        body = "```\n" + body + "```\n"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(stamp(name, record, at, load) + body, encoding="utf-8")
    tmp.replace(target)


def check() -> list[str]:
    """Problems: results files not listed in :data:`RECORDS`, listed files that are missing,
    and Markdown files without a stamp (recorded before this script, or by hand)."""
    problems = []
    listed = set(RECORDS) | {a for r in RECORDS.values() for a in r.also}
    for path in sorted(RESULTS.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name not in listed:
            problems.append(
                f"{path.name}: not listed in benchmarks/record.py (add it or remove it)"
            )
    for name, record in RECORDS.items():
        path = RESULTS / name
        if not path.exists():
            problems.append(f"{name}: missing; run python benchmarks/record.py {name}")
            continue
        if path.suffix == ".md":
            first = path.read_text(encoding="utf-8").splitlines()[:1]
            if not first or not STAMP.match(first[0]):
                problems.append(
                    f"{name}: no stamp (recorded by hand or before benchmarks/record.py); "
                    f"owner {record.owner}: python benchmarks/record.py {name}"
                )
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="results files to re-record (names in --list)")
    ap.add_argument("--tier", choices=["cheap", "heavy"], help="re-record every file of a tier")
    ap.add_argument("--list", action="store_true", help="print file, tier, owner and command")
    ap.add_argument("--check", action="store_true", help="list unstamped or unknown files")
    ap.add_argument(
        "--load",
        default="the project's 2-core machine, shared with other engineers' work while this "
        "ran: timings are indicative; compare ratios within this file.",
        help="the machine note written in the stamp",
    )
    args = ap.parse_args()
    if args.list:
        print("| file | tier | owner | command |\n| --- | --- | --- | --- |")
        for name, r in RECORDS.items():
            print(f"| `{name}` | {r.tier} | {r.owner} | `{shlex.join(r.command)}` |")
        return
    if args.check:
        problems = check()
        print("\n".join(problems) if problems else "every results file is listed and stamped")
        raise SystemExit(1 if problems else 0)
    names = list(args.files) + [n for n, r in RECORDS.items() if r.tier == args.tier]
    unknown = [n for n in names if n not in RECORDS]
    if unknown or not names:
        raise SystemExit(
            f"unknown file(s) {unknown}; see --list" if unknown else "name files or a --tier"
        )
    for name in dict.fromkeys(names):
        run(name, load=args.load)


if __name__ == "__main__":
    main()
