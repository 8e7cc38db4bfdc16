"""People-facing outputs: the XLSX plan workbook, the HTML report (opened in headless Chromium)
and the terminal table, with names where people read and nowhere else."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from rich.console import Console

from matcher.contract.instance import Instance
from matcher.contract.solution import Solution
from matcher.engine.solve import solve
from matcher.render.output import print_table, solution_json
from matcher.render.report import plan_report
from matcher.render.view import PlanView
from matcher.render.workbook import plan_workbook
from tests.conftest import MAY2016, REPO

#: Headless Chromium, the system's own (never a downloaded browser).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


#: A name that would run script or fetch an image if the page did not escape it.
HOSTILE_NAME = '<img src="https://example.invalid/x.png" onerror="console.error(1)">Ann'


def _named(data: dict[str, Any]) -> dict[str, Any]:
    """may2016 with a name and an email for everyone; pl01's name is hostile HTML."""
    for p in data["participants"]:
        p["name"] = f"Name-{p['id']}"
        p["email"] = f"{p['id']}@example.org"
    data["participants"][0]["name"] = HOSTILE_NAME
    return data


@pytest.fixture(scope="module")
def planned() -> tuple[Instance, Solution]:
    instance = Instance.model_validate(_named(json.loads(MAY2016.read_text(encoding="utf-8"))))
    return instance, solve(instance, seed=0)


def artefact_dir(tmp_path: Path) -> Path:
    """Where screenshots go: $MATCHER_TEST_ARTEFACTS if set (CI keeps it), else tmp."""
    out = Path(os.environ.get("MATCHER_TEST_ARTEFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


# --------------------------------------------------------------------------- XLSX


def test_plan_workbook_sheets_names_and_layout(planned: tuple[Instance, Solution]) -> None:
    """Read back with openpyxl: the sheets the issue lists, one row per pair with both names,
    roles and organisations, a sheet per cohort with its members, frozen headers and filters."""
    instance, solution = planned
    book = load_workbook(io.BytesIO(plan_workbook(PlanView(instance, solution))))
    cohort_sheets = [n for n in book.sheetnames if n[:2] in ("c1", "c2", "c3")]
    assert book.sheetnames[:2] == ["Summary", "Pairs"]
    assert {"Unmatched", "Wait-list", "Scores"} <= set(book.sheetnames)
    assert len(cohort_sheets) == len(solution.cohorts or [])

    pairs = book["Pairs"]
    header = [c.value for c in pairs[1]]
    assert header[:4] == [
        "Pair",
        "Patient leader ID",
        "Patient leader name",
        "Patient leader email",
    ]
    assert {"Partner role", "Score", "Cohort name", "Strongest reasons"} <= set(header)
    assert pairs.freeze_panes == "A2"
    assert pairs.auto_filter.ref and pairs.auto_filter.ref.startswith("A1:")
    assert pairs.column_dimensions["A"].width and pairs.column_dimensions["A"].width >= 8
    rows = {r[0]: r for r in pairs.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {p.id for p in solution.pairs}
    first = solution.pairs[0]
    row = dict(zip(header, rows[first.id], strict=True))
    assert row["Patient leader name"] == (
        HOSTILE_NAME if first.patient_leader == "pl01" else f"Name-{first.patient_leader}"
    )
    assert row["Partner role"] in ("Clinician", "Manager")
    assert row["Score"] == pytest.approx(first.score, abs=1e-4)

    c1 = book[cohort_sheets[0]]
    members = [r for r in c1.iter_rows(values_only=True) if r and str(r[0]).startswith("c1-s")]
    placed = [p for p in solution.pairs if p.cohort == "c1"]
    assert len(members) == 2 * len(placed)  # both members of every pair in the cohort
    assert "12 May 2016" in str(c1["A2"].value)  # the cohort's dates above the table

    scores = book["Scores"]
    assert [c.value for c in scores[1]][4:] == [
        "Shared interests",
        "Project fit",
        "Organisation",
        "Local system",
        "Availability",
    ]


def test_plan_workbook_redacted_holds_no_name_or_email(planned: tuple[Instance, Solution]) -> None:
    """--redact: no cell of any sheet holds a name or an email."""
    instance, solution = planned
    book = load_workbook(io.BytesIO(plan_workbook(PlanView(instance, solution, redact=True))))
    text = " ".join(
        str(v) for ws in book.worksheets for r in ws.iter_rows(values_only=True) for v in r
    )
    assert "Name-" not in text and "@example.org" not in text and "Ann" not in text
    assert "Patient leader name" not in text


def test_plan_workbook_is_byte_identical(
    planned: tuple[Instance, Solution], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (flaky when a save crossed a second): same plan, same bytes, whatever the
    clock says (openpyxl's save time and the zip timestamps are fixed)."""
    import datetime as dt

    import openpyxl.writer.excel as excel

    instance, solution = planned
    first = plan_workbook(PlanView(instance, solution))

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Later:
            return cls(2031, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(excel.datetime, "datetime", Later)
    assert plan_workbook(PlanView(instance, solution)) == first
    core = zipfile.ZipFile(io.BytesIO(first)).read("docProps/core.xml")
    assert b"2000-01-01T00:00:00Z</dcterms:modified>" in core


# --------------------------------------------------------------------------- HTML


def test_report_is_self_contained_and_escaped(planned: tuple[Instance, Solution]) -> None:
    """No external resource (no src/href to another origin, no @import or url()), the hostile
    name escaped, every chart with a text alternative, and deterministic."""
    instance, solution = planned
    page = plan_report(PlanView(instance, solution))
    assert page == plan_report(PlanView(instance, solution))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)  # url(#id): in-page
    assert "<img" not in page and "&lt;img" in page
    assert page.count('role="img" aria-label="') >= 5
    assert "Name-pr01" in page and "pr01@example.org" in page
    redacted = plan_report(PlanView(instance, solution, redact=True))
    assert "Name-" not in redacted and "@example.org" not in redacted and "&lt;img" not in redacted


def test_small_groups_are_not_charted() -> None:
    """A local system with fewer than 5 people in pairs gets no bar (it could identify them)."""
    from matcher.render.report import MIN_GROUP, _bars

    chart = _bars("t", {"big": [0.5] * MIN_GROUP, "tiny": [0.9] * (MIN_GROUP - 1)}, "system")
    assert chart is not None
    assert "1 groups with fewer than 5 people are not shown" in chart.note
    assert "tiny" not in chart.alt and "big" in chart.alt


@pytest.mark.skipif(
    chromium_binary() is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium; .ci/run does this)",
)
def test_report_renders_in_chromium(planned: tuple[Instance, Solution], tmp_path: Path) -> None:
    """Open the page in headless Chromium (Playwright, the system's browser): no console error,
    no request but the page itself, every pair in the pairs table, every cohort card and chart
    drawn; screenshot kept."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    instance, solution = planned
    page_file = tmp_path / "plan.html"
    page_file.write_text(plan_report(PlanView(instance, solution)), encoding="utf-8")
    binary = chromium_binary()
    assert binary is not None
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=list(CHROMIUM_ARGS))
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.resolve().as_uri())
        pairs = page.locator("table.pairs tbody tr").evaluate_all("rows => rows.map(r => r.id)")
        cards = page.locator("article.card").count()
        charts = page.locator(".chart svg").evaluate_all(
            "svgs => svgs.filter(s => s.getBoundingClientRect().width > 100).length"
        )
        images = page.evaluate("document.images.length")
        headings = page.locator("h2").all_text_contents()
        shot = page.screenshot(full_page=True)
        browser.close()
    (artefact_dir(tmp_path) / "report-may2016.png").write_bytes(shot)
    assert errors == []
    assert requests == [page_file.resolve().as_uri()]
    assert sorted(pairs) == sorted(p.id for p in solution.pairs)
    assert cards == len(solution.cohorts or [])
    assert charts >= 5
    assert images == 0  # the hostile name stayed text
    assert headings[:3] == ["Summary", "Cohorts and action-learning sets", "Pairs"]
    assert shot.startswith(b"\x89PNG")


# --------------------------------------------------------------------------- table


@pytest.mark.parametrize("width", [40, 80, 200])
def test_table_folds_long_cells_instead_of_cutting(
    planned: tuple[Instance, Solution], width: int
) -> None:
    """Regression (words lost at 80 columns: "project fit: frail…"): every reason word and
    every cohort name is in the printed table, with no ellipsis, at any width."""
    instance, solution = planned
    buf = io.StringIO()
    print_table(solution, Console(file=buf, width=width), PlanView(instance, solution))
    text = buf.getvalue()
    assert "…" not in text
    words = set(re.findall(r"[\w-]+", text))
    for p in solution.pairs:
        for reason in p.reasons[:2]:
            assert set(re.findall(r"[\w-]+", reason)) <= words, (p.id, reason)
    assert {"London", "May-September"} <= words


def test_names_stay_out_of_the_json_plan(planned: tuple[Instance, Solution]) -> None:
    """The JSON plan carries IDs only: no name, no email."""
    _, solution = planned
    text = solution_json(solution)
    assert "Name-" not in text and "@example.org" not in text


# --------------------------------------------------------------------------- CLI


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "matcher", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def test_solve_picks_the_format_from_the_suffix(tmp_path: Path) -> None:
    """Regression (plan.csv got a text table): -o plan.xlsx writes a workbook, -o plan.html a
    page, -o plan.csv CSV; -o plan.pdf is a usage error
    (exit 2) and writes nothing; --format table with -o plan.xlsx is refused too."""
    xlsx, html = tmp_path / "plan.xlsx", tmp_path / "plan.html"
    done = run_cli("solve", MAY2016, "-o", xlsx)
    assert done.returncode == 0, done.stderr
    assert "Pairs" in load_workbook(xlsx, read_only=True).sheetnames
    done = run_cli("solve", MAY2016, "-o", html)
    assert done.returncode == 0, done.stderr
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    done = run_cli("solve", MAY2016, "-o", tmp_path / "plan.csv")  # was: a text table
    assert done.returncode == 0
    assert (tmp_path / "plan.csv").read_text(encoding="utf-8").startswith("pair,patient_leader")
    for args in (["-o", tmp_path / "plan.pdf"], ["--format", "table", "-o", tmp_path / "p.xlsx"]):
        done = run_cli("solve", MAY2016, *args)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "plan.pdf").exists() and not (tmp_path / "p.xlsx").exists()


def test_report_command_matches_solve_html(tmp_path: Path) -> None:
    """`matcher report INTAKE PLAN.json` gives the page `solve -o plan.html` gives."""
    plan, page = tmp_path / "plan.json", tmp_path / "plan.html"
    assert run_cli("solve", MAY2016, "-o", plan).returncode == 0
    assert run_cli("solve", MAY2016, "-o", page).returncode == 0
    done = run_cli("report", MAY2016, plan, "-o", tmp_path / "report.html")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.html").read_bytes() == page.read_bytes()
    nov2016 = REPO / "instances" / "nov2016.json"
    wrong = run_cli("report", nov2016, plan)
    assert wrong.returncode == 3 and "is intake 'nov2016'" in wrong.stderr
    assert str(plan) in wrong.stderr and str(nov2016) in wrong.stderr


def test_bench_report_page(tmp_path: Path) -> None:
    """`matcher bench --report` writes one self-contained page with every run judged, each
    objective against total counting people and score, groups and quality per cohort; a
    non-.html name is exit 2."""
    page = tmp_path / "bench.html"
    args = ["bench", MAY2016, "--seeds", "1", "--jobs", "1", "--objective", "total"]
    done = run_cli(*args, "--objective", "fair", "--report", page)
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    for heading in ("Runs", "Against the baseline (default / total)", "Groups",
                    "Quality per cohort"):  # fmt: skip
        assert f">{heading}</h2>" in html
    assert html.count("<tr><td>may2016</td><td>c") == 6  # 3 cohorts x 2 objectives
    # fair against total: 24 pairs placed by both, no one more left out
    assert "24.0 → 24.0 (+0.0)" in html and "4.0 → 4.0 (+0.0)" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert run_cli(*args, "--report", tmp_path / "bench.pdf").returncode == 2
