"""`matcher bench` as an analyst runs it: a study file through the CLI (a subprocess), the CSV
outputs read back with pandas and csv, the columns checked against docs/bench.md, and the
report page opened in Chromium (Playwright)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from matcher.render.report import _signed_bars
from matcher.tools.bench import (
    COHORT_COLUMNS,
    COMPARISON_COLUMNS,
    GROUP_COLUMNS,
    RUN_COLUMNS,
)
from matcher.tools.generate import generate_instance
from tests.conftest import MAY2016, REPO

pd = pytest.importorskip("pandas")


def run_cli(*args: object, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "matcher", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """Two dated generated intakes x three variants (total; stable; interests weighted up,
    re-scored under each intake's own weights) x one seed, through the CLI."""
    folder = tmp_path_factory.mktemp("study")
    for name, n, seed in (("spring", 36, 1), ("autumn", 40, 2)):
        (folder / f"{name}.json").write_text(json.dumps(generate_instance(n, seed=seed)))
    (folder / "study.toml").write_text(
        """
seeds = 1
rescore_with = "default"

[[intakes]]
path = "spring.json"
date = 2025-03-01

[[intakes]]
path = "autumn.json"
date = "2025-09-01"

[[variants]]
name = "default"

[[variants]]
name = "stable"
objective = "stable"

[[variants]]
name = "interests"
weights = { interests = 3, project = 0.1 }
time_limit = 60
"""
    )
    out = {
        "runs": folder / "runs.csv",
        "groups": folder / "groups.csv",
        "compare": folder / "compare.csv",
        "cohorts": folder / "cohorts.json",
        "report": folder / "study.html",
    }
    done = run_cli(
        "bench",
        "--study",
        folder / "study.toml",
        "--jobs",
        "2",
        "--group-by",
        "applied",
        "--min-group",
        "6",
        "-o",
        out["runs"],
        "--groups-output",
        out["groups"],
        "--comparisons-output",
        out["compare"],
        "--cohorts-output",
        out["cohorts"],
        "--report",
        out["report"],
    )
    assert done.returncode == 0, done.stderr
    assert "Against the baseline (default, total)" in done.stdout
    assert "Groups placed least" in done.stdout
    return folder, out


def test_study_rows_labelled_by_variant(study: tuple[Path, dict[str, Path]]) -> None:
    _, out = study
    runs = pd.read_csv(out["runs"])
    assert list(runs.columns) == list(RUN_COLUMNS)
    assert (
        list(zip(runs["variant"], runs["objective"], strict=True))
        == [
            ("default", "total"),
            ("stable", "stable"),
            ("interests", "total"),
        ]
        * 2
    )
    assert list(runs["intake_date"].unique()) == ["2025-03-01", "2025-09-01"]
    assert (runs["status"].isin(["optimal", "feasible"])).all() and runs["verified"].all()
    assert (runs["score_weights"] == "default").all()
    assert (runs["placed"] <= runs["bound"]).all()
    assert (runs["left_out"] == runs["unmatched"] + 2 * runs["waitlisted"]).all()
    assert runs.loc[runs["variant"] == "interests", "time_limit"].eq(60).all()
    base = runs[runs["variant"] == "default"].set_index("file")
    for _, r in runs[runs["variant"] != "default"].iterrows():
        b = base.loc[r["file"]]
        assert r["placed_vs_baseline"] == r["placed"] - b["placed"]
        assert r["left_out_vs_baseline"] == r["left_out"] - b["left_out"]
    stable = runs[runs["objective"] == "stable"]
    assert stable["price_of_stability_pct"].notna().all()
    # the same plan, re-scored under the intake's own weights, on the baseline's row
    assert runs.loc[runs["variant"] == "default", "score_total_vs_baseline_pct"].isna().all()


def test_study_groups_tidy_and_suppressed_empty(study: tuple[Path, dict[str, Path]]) -> None:
    _, out = study
    text = out["groups"].read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(GROUP_COLUMNS)
    assert {r["field"] for r in rows} == {"role", "organisation_type", "system", "applied"}
    for r in rows:
        figures = [r[c] for c in GROUP_COLUMNS[GROUP_COLUMNS.index("people") :]]
        if r["suppressed"] == "true":
            assert figures == [""] * len(figures)  # empty, never text in a number column
        else:
            assert int(r["people"]) >= 6
            assert 0 <= float(r["placed_share"]) <= 1
    frame = pd.read_csv(out["groups"])
    assert frame["people"].dtype.kind == "f"  # numeric, NaN where suppressed
    assert frame.loc[frame["suppressed"], "people"].isna().all()
    per_run = frame.groupby(["file", "variant", "field"])["people"].sum()
    runs = pd.read_csv(out["runs"]).set_index(["file", "variant"])
    role = per_run.xs("role", level="field")
    for key, people in role.items():
        assert people <= runs.loc[key, "participants"]


def test_study_comparisons_count_people(study: tuple[Path, dict[str, Path]]) -> None:
    _, out = study
    c = pd.read_csv(out["compare"])
    assert list(c.columns) == list(COMPARISON_COLUMNS)
    assert set(c["measure"]) == {
        "pairs placed",
        "people left out",
        "total score",
        "mean score",
        "worst new pair",
        "blocking pairs",
    }
    assert set(c["variant"]) == {"stable", "interests"}
    assert ((c["value"] - c["baseline_value"]) - c["difference"]).abs().max() < 1e-6
    units = dict(zip(c["measure"], c["unit"], strict=False))
    assert units["pairs placed"] == "pairs" and units["people left out"] == "people"
    cohorts = json.loads(out["cohorts"].read_text())
    assert cohorts and set(cohorts[0]) == set(COHORT_COLUMNS)


def test_every_column_is_documented() -> None:
    doc = (REPO / "docs" / "bench.md").read_text(encoding="utf-8")
    cells = set(re.findall(r"^\| `([^`]+)`", doc, flags=re.M))
    cells |= {
        name
        for line in re.findall(r"^\| ((?:`[a-z_]+`, )+`[a-z_]+`) \|", doc, flags=re.M)
        for name in re.findall(r"`([a-z_]+)`", line)
    }
    for columns in (RUN_COLUMNS, GROUP_COLUMNS, COMPARISON_COLUMNS, COHORT_COLUMNS):
        missing = [c for c in columns if c not in cells]
        assert not missing, f"columns not in docs/bench.md: {missing}"


def test_bad_study_file_exits_3_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "study.toml"
    bad.write_text(f'[[intakes]]\npath = "{MAY2016}"\n[[variants]]\nname = "x"\nproposer = "me"\n')
    done = run_cli("bench", "--study", bad)
    assert done.returncode == 3 and "variants[0].proposer" in done.stderr
    assert "Traceback" not in done.stderr
    bad.write_text(
        f'[[intakes]]\npath = "{MAY2016}"\n[[variants]]\nname = "x"\nrules = {{ colour = 1 }}\n'
    )
    done = run_cli("bench", "--study", bad, "--jobs", "1")
    assert done.returncode == 3 and "colour" in done.stderr
    assert run_cli("bench").returncode == 2
    assert run_cli("bench", MAY2016, "--study", bad).returncode == 2


def test_signed_chart_axis_shows_negative_values() -> None:
    chart = _signed_bars(
        "t", "alt", ["a", "b"], {"score": [-2.5, 1.0]}, "change (% of the baseline's total)"
    )
    low, high = (float(x) for x in chart.note.split(" to "))
    assert low < -2.5 and high > 1.0


def test_report_page_in_chromium(study: tuple[Path, dict[str, Path]]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    _, out = study
    page_url = out["report"].resolve().as_uri()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(page_url)
            headings = page.locator("h2").all_text_contents()
            charts = page.locator(".chart svg").count()
            baseline_rows = page.locator("#baseline tbody tr").count()
            time_rows = page.locator("#time tbody tr").count()
            suppressed = page.locator("#groups td:nth-child(4)", has_text="yes").count()
            summary = page.locator("#summary tbody tr").first.text_content() or ""
        finally:
            browser.close()
    assert requests == [page_url] and errors == []
    assert headings[:4] == ["Runs", "Against the baseline (default / total)", "Groups",
                            "Quality over time"]  # fmt: skip
    assert baseline_rows == 4  # 2 intakes x (stable, interests)
    assert time_rows == 6  # 2 dates x 3 variants
    assert suppressed > 0
    assert "default / total" in summary
    # per intake: cohorts; against the baseline: people and score; groups: 4 fields; over
    # time: 2
    assert charts >= 2 + 2 + 4 + 2
