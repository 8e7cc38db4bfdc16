"""The fast tier of the benchmarks: every benchmark script runs in a tiny mode and its output
parses, and every file in ``benchmarks/results/`` is listed in ``benchmarks/record.py`` with
the one command that regenerates it, so that a recorded table cannot silently drift from the
code (a script that no longer runs, or prints another shape, fails here first).

Each script runs as a subprocess from the repository root, as ``benchmarks/README.md`` says.
Timings are not checked (the machine may be shared): only that the output is well formed.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

BENCH = REPO / "benchmarks"


def _record() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_record", BENCH / "record.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_record"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def run(*args: str, timeout: float = 300) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table in ``text``: rows of cells (the separator row dropped); a table
    whose rows do not all have the header's number of cells fails the test."""
    tables: list[list[list[str]]] = []
    lines = text.splitlines()
    k = 0
    while k < len(lines) - 1:
        head, sep = lines[k].strip(), lines[k + 1].strip()
        if head.startswith("|") and re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", sep):
            width = head.count("|") - 1
            rows = [[c.strip() for c in head.strip("|").split("|")]]
            k += 2
            while k < len(lines) and lines[k].strip().startswith("|"):
                cells = [c.strip() for c in lines[k].strip().strip("|").split("|")]
                assert len(cells) == width, f"row with {len(cells)} cells, header {width}"
                rows.append(cells)
                k += 1
            tables.append(rows)
        else:
            k += 1
    return tables


def one_table_at_least(text: str) -> list[list[str]]:
    tables = markdown_tables(text)
    assert tables and len(tables[0]) >= 2, f"no Markdown table with a data row in:\n{text[:800]}"
    return tables[0]


def test_every_results_file_is_listed_with_its_command() -> None:
    record = _record()
    problems = [p for p in record.check() if "not listed" in p or "missing" in p]
    assert problems == []
    for name, entry in record.RECORDS.items():
        script = next((a for a in entry.command if a.startswith("benchmarks/")), None)
        if script is not None:
            assert (REPO / script).is_file(), f"{name}: {script} does not exist"
        assert entry.tier in ("cheap", "heavy") and entry.owner


def test_record_list_prints_the_table() -> None:
    table = one_table_at_least(run("benchmarks/record.py", "--list"))
    assert table[0] == ["file", "tier", "owner", "command"]
    assert len(table) - 1 == len(_record().RECORDS)


def test_stamped_files_name_a_commit_of_this_repository() -> None:
    record = _record()
    for name in record.RECORDS:
        path = record.RESULTS / name
        if path.suffix != ".md" or not path.exists():
            continue
        match = record.STAMP.match(path.read_text(encoding="utf-8").splitlines()[0])
        if match is None:
            continue  # not re-recorded yet: `record.py --check` lists it for its owner
        known = subprocess.run(
            ["git", "cat-file", "-e", f"{match['commit']}^{{commit}}"],
            cwd=REPO,
            capture_output=True,
        )
        if known.returncode != 0 and (REPO / ".git").exists():
            shallow = subprocess.run(
                ["git", "rev-parse", "--is-shallow-repository"],
                cwd=REPO,
                capture_output=True,
                text=True,
            ).stdout.strip()
            if shallow != "true":
                pytest.fail(f"{name}: stamped with {match['commit']}, not a commit here")


def test_bench_intakes_command_tiny(tmp_path: Path) -> None:
    out = tmp_path / "runs.csv"
    stdout = run(
        "-m", "matcher", "bench", "instances/may2016.json", "--seeds", "1", "--jobs", "1",
        "--objective", "total", "--objective", "stable", "-o", str(out),
    )  # fmt: skip
    assert "Benchmark: mean across seeds" in stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["objective"] for r in rows] == ["total", "stable"]
    assert all(r["verified"] == "true" and r["bound"] for r in rows)


def test_generated_bench_tiny(tmp_path: Path) -> None:
    out = tmp_path / "generated.csv"
    stdout = run("benchmarks/generated_bench.py", "--sizes", "24", "--seeds", "1", "-o", str(out))
    assert "Against the baseline" in stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["objective"] for r in rows] == ["total", "fair", "stable"]
    assert {r["file"] for r in rows} == {"synthetic-n24.json"}


def test_solve_time_tiny() -> None:
    table = one_table_at_least(run("benchmarks/solve_time.py", "--runs", "1"))
    assert any("matcher solve" in row[0] for row in table[1:])


def test_replan_tiny() -> None:
    table = one_table_at_least(run("benchmarks/replan.py", "--sizes", "50"))
    assert any(row[0].startswith("generated n=50") for row in table[1:])


def test_web_tiny() -> None:
    text = run("benchmarks/web.py", "--sizes", "50", "--solve-size", "50")
    table = one_table_at_least(text)
    assert table[0][:2] == ["Page", "Participants"] and table[1][1] == "50"
    assert "Re-plan to change list" in text


def test_time_limits_tiny() -> None:
    out = run(
        "benchmarks/time_limits.py",
        *("--sizes", "200", "--runs", "1", "--none-runs", "1", "--limits", "1", "none"),
        *("--command", "1"),
    )
    table = one_table_at_least(out)
    # the command's row: one fresh `matcher solve --time-limit 1`, its check and solve timed
    command = markdown_tables(out)[1]
    row = dict(zip(command[0], command[1], strict=True))
    assert row["intake"] == "generated n=200" and row["limit (s)"] == "1" and row["runs"] == "1"
    check, solve = (float(row[k].split("-")[0]) for k in ("check (s)", "solve (s)"))
    assert check >= 0 and solve > 0 and row["within +0.5 s"] in ("0 of 1", "1 of 1")
    rows = [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    mine = [r for r in rows if r["intake"] == "generated n=200"]
    assert [r["limit (s)"] for r in mine] == ["1", "none"]
    for r in mine:
        # the largest progress gaps, each with the event it followed ("stage: message")
        assert float(r["max progress gap (s)"]) <= float(r["max wall (s)"])
        assert float(r["max gap between the solve's own checks (s)"]) >= float(
            r["max progress gap (s)"]
        )
        for after in (r["after event"], r["after check"]):
            assert after.split(":")[0] in ("start", "pairing", "placement", "learning_sets")
    assert mine[1]["max overrun (s)"] == ""  # no limit, no overrun


def test_scaling_tiny() -> None:
    table = one_table_at_least(run("benchmarks/scaling.py", "--sizes", "20"))
    assert table[1][0] == "20" and table[1][7] == "True"  # verified


def test_shapes_tiny() -> None:
    table = one_table_at_least(run("benchmarks/shapes.py", "--shapes", "generated-200"))
    row = dict(zip(table[0], table[1], strict=True))
    assert row["shape"] == "generated-200" and row["exit"] == "0"
    assert int(row["placed"]) <= int(row["bound"])


def test_spreadsheets_tiny() -> None:
    one_table_at_least(run("benchmarks/spreadsheets.py", "--sizes", "50"))


def test_cold_start_tiny() -> None:
    table = one_table_at_least(run("benchmarks/cold_start.py", "--repeat", "1"))
    assert table[1][0] == "python -c pass"


def test_assignment_one_case() -> None:
    out = run(
        "benchmarks/assignment.py", "--case", "dense-1000", "--method", "ours", "--repeat", "1"
    )
    got = json.loads(out.strip().splitlines()[-1])
    assert got["case"] == "dense-1000" and got["pairs"] == 1000


def test_assignment_steady_one_case() -> None:
    """The recorded table's mode: ours against scipy in one process, totals checked."""
    table = one_table_at_least(
        run("benchmarks/assignment.py", "--steady", "--cases", "dense-1000", "--repeat", "1")
    )
    assert table[0][:2] == ["case", "reference"]
    assert table[1][0] == "dense-1000" and float(table[1][4].strip("*")) > 0
    ours, ref = (float(x) for x in table[1][7].split(" / "))
    assert abs(ours - ref) < 1e-6


def test_stable_one_case() -> None:
    out = run("benchmarks/stable.py", "--case", "complete-40", "--method", "ours", "--repeat", "1")
    got = json.loads(out.strip().splitlines()[-1])
    assert got["matched"] == 40


def test_mdgp_quick() -> None:
    spec = importlib.util.spec_from_file_location("bench_mdgp", BENCH / "mdgp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_mdgp"] = module
    spec.loader.exec_module(module)
    if not Path(module.DEFAULT_DATA).is_dir():
        pytest.skip("the MDGP data set is not where benchmarks/mdgp.py looks (--data)")
    one_table_at_least(run("benchmarks/mdgp.py", "--quick"))
    # the exact method as it runs against CP-SAT's model; it raises unless both reach the optima
    exact = run("benchmarks/mdgp.py", "--exact-methods")
    one_table_at_least(exact)
    assert exact.count("one range") >= 1 and exact.count("per group") >= 1


def test_project_fit_quality_only() -> None:
    one_table_at_least(run("benchmarks/project_fit.py", "--quality-only"))


def test_sweep_tiny(tmp_path: Path) -> None:
    run(
        "benchmarks/sweep.py", "--sizes", "50", "--seeds", "0", "--no-shapes",
        "-o", str(tmp_path),
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    assert rows and rows[0]["participants"] == "50"
    table = (tmp_path / "sweep.md").read_text()
    one_table_at_least(table)
    # the machine's speed while it ran, timed before and after, is part of the record
    probe = re.search(r"probe .*?: (\d+\.\d+) s before the runs, (\d+\.\d+) s after", table)
    assert probe and 0 < float(probe[1]) < 60 and 0 < float(probe[2]) < 60
