"""Issue 16: the administrator's loop without traps, replayed as a new administrator meets it.

Each test follows one friction of the issue: the CLI run as a subprocess, workbooks read back
with openpyxl, the report page opened in Chromium (Playwright), the library called as an admin
tool would. The scenario: may2016 written out as a workbook (``template --from``), names
typed in, a plan made, then a withdrawal re-planned with ``--previous``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from matcher.contract.identity import instance_hash
from matcher.contract.instance import Instance
from matcher.contract.plan_file import PLAN_SHEET
from matcher.engine.solve import solve
from matcher.errors import Infeasible, InvalidParameter
from matcher.explain import why, why_not
from matcher.intake.json_file import parse_instance
from matcher.intake.spreadsheet import EXAMPLE_NAME
from matcher.words import count, listing, plural
from tests.conftest import MAY2016, REPO, person

NOV2016 = REPO / "instances" / "nov2016.json"


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "matcher", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=170,
    )


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, done.stderr
    return done


def sheet_rows(path: Path, sheet: str) -> list[tuple[Any, ...]]:
    book = load_workbook(path, read_only=True)
    try:
        return [tuple(r) for r in book[sheet].iter_rows(values_only=True)]
    finally:
        book.close()


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """may2016 as an intake workbook with names typed in; plan.xlsx + plan.json from one solve;
    then pr05 withdrawn in the workbook (the file edited in place, as an administrator does)
    and a re-plan against plan.xlsx written to three files at once."""
    tmp = tmp_path_factory.mktemp("loop")
    intake = tmp / "may2016.xlsx"
    ok(run_cli("template", "--from", MAY2016, "-o", intake))
    book = load_workbook(intake)
    ws = book["Participants"]
    heads = [c.value for c in ws[1]]
    col_id, col_name, col_status = (heads.index(h) + 1 for h in ("ID", "Name", "Status"))
    for row in range(2, ws.max_row + 1):
        pid = ws.cell(row, col_id).value
        ws.cell(row, col_name).value = f"Person {pid}"
    book.save(intake)
    old_intake = tmp / "may2016-before.xlsx"
    old_intake.write_bytes(intake.read_bytes())
    plan_xlsx, plan_json = tmp / "plan.xlsx", tmp / "plan.json"
    done = ok(run_cli("solve", intake, "-o", plan_xlsx, "-o", plan_json))
    assert "wrote" in done.stderr
    book = load_workbook(intake)
    ws = book["Participants"]
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, col_id).value == "pr05":
            ws.cell(row, col_status).value = "Withdrawn"
    book.save(intake)
    new = {k: tmp / f"plan2.{k}" for k in ("xlsx", "html", "json")}
    ok(
        run_cli(
            "solve", intake, "--previous", plan_xlsx,
            "-o", new["xlsx"], "-o", new["html"], "-o", new["json"],
        )
    )  # fmt: skip
    return {
        "tmp": tmp,
        "intake": intake,
        "old_intake": old_intake,
        "plan_xlsx": plan_xlsx,
        "plan_json": plan_json,
        "new_xlsx": new["xlsx"],
        "new_html": new["html"],
        "new_json": new["json"],
    }


# --------------------------------------------------------------- 1. changes travel with the plan


def test_repeated_o_writes_every_file_and_they_hold_one_plan(loop: dict[str, Path]) -> None:
    """`-o plan.xlsx -o plan.json` wrote both; the workbook carries the same JSON plan."""
    from matcher.contract.plan_file import embedded_plan

    for key in ("plan_xlsx", "plan_json", "new_xlsx", "new_html", "new_json"):
        assert loop[key].stat().st_size > 0
    assert embedded_plan(loop["plan_xlsx"].read_bytes()) == loop["plan_json"].read_text("utf-8")
    book = load_workbook(loop["plan_xlsx"])
    assert book[PLAN_SHEET].sheet_state == "veryHidden"


def test_workbook_of_a_replan_has_a_changes_sheet_with_names_and_reasons(
    loop: dict[str, Path],
) -> None:
    path = loop["new_xlsx"]
    book = load_workbook(path, read_only=True)
    assert book.sheetnames[:2] == ["Summary", "Changes"]
    book.close()
    summary = sheet_rows(path, "Summary")
    assert str(summary[0][0]).startswith("Re-planned against the previous plan of may2016: ")
    assert "1 pair ended" in str(summary[0][0]) and "1 person newly unmatched" in str(summary[0][0])
    rows = sheet_rows(path, "Changes")
    header = rows.index(("Change", "Pair", "People", "From", "To", "Reason"))
    changes = rows[header + 1 :]
    ended = [r for r in changes if r[0] == "Pair ended"]
    assert ended and ended[0][2] == "pl05 Person pl05; pr05 Person pr05"
    assert ended[0][3].startswith("c1") and ended[0][5] == "pr05 withdrew"
    alone = next(r for r in changes if r[0] == "Now unmatched")
    assert alone[2] == "pl05 Person pl05"
    assert alone[5].startswith("partner pr05 withdrew; no compatible partner was free")
    unmatched = sheet_rows(path, "Unmatched")
    assert any(r[0] == "pl05" and str(r[-1]).startswith("partner pr05 withdrew") for r in unmatched)


def test_empty_tables_say_so(loop: dict[str, Path]) -> None:
    """An empty Wait-list sheet says nobody is wait-listed (not headers alone)."""
    rows = sheet_rows(loop["new_xlsx"], "Wait-list")
    assert rows[0] == ("No pair is wait-listed: every pair has a cohort.",)


def test_report_page_leads_with_what_changed_in_chromium(loop: dict[str, Path]) -> None:
    """The page made by the re-plan opens on "What changed", with the people and reasons."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(loop["new_html"].as_uri())
            headings = page.get_by_role("heading", level=2).all_inner_texts()
            assert headings[0] == "What changed"
            section = page.locator("#changes")
            assert "Re-planned against the previous plan of may2016" in section.inner_text()
            row = section.get_by_role("row").filter(has_text="Pair ended")
            assert "pr05 Person pr05" in row.inner_text()
            assert "pr05 withdrew" in row.inner_text()
            nav = page.get_by_role("navigation", name="Contents")
            nav.get_by_role("link", name="What changed").click()
            assert page.url.endswith("#changes")
        finally:
            browser.close()


def test_terminal_table_shows_what_changed(loop: dict[str, Path]) -> None:
    done = ok(run_cli("solve", loop["intake"], "--previous", loop["plan_json"]))
    head = done.stdout.split("Pairs", 1)[0]
    assert "What changed" in head and "pr05 withdrew" in head
    assert "Pair ended pair-05: pl05 Person pl05, pr05 Person pr05" in " ".join(head.split())


def quality_trade_data() -> dict[str, Any]:
    """a1-b1 (0.40) and a2-b2 (0.75) are the best first plan; b3 is left alone. When b2
    withdraws, the re-plan keeps a1-b1 and pairs a2 with b3 (0.25), where a2-b1 (0.60) with
    a1-b3 (0.25) would score more: the change list must say so, with the figures."""
    cohort = {"id": "c1", "sessions": ["2016-05-12"], "capacity_pairs": 5, "mode": "in_person",
              "set_size": {"min_pairs": 1, "max_pairs": 4}}  # fmt: skip
    return {
        "schema_version": "1",
        "name": "trade",
        "cohorts": [cohort],
        "participants": [
            person("a1", "patient_leader", "o1", interests=["x"], system="s1"),
            person("a2", "patient_leader", "o2", interests=["y"], system="s2"),
            person("b1", "clinician", "o3", interests=["x", "y"], system="s2"),
            person("b2", "clinician", "o4", interests=["y"], system="s2"),
            person("b3", "clinician", "o5", interests=[], system="s3"),
        ],
    }


def test_replan_that_gives_up_quality_to_avoid_a_move_says_so_with_figures() -> None:
    data = quality_trade_data()
    first = solve(parse_instance(data))
    assert {(p.patient_leader, p.partner) for p in first.pairs} == {("a1", "b1"), ("a2", "b2")}
    data["participants"][3]["status"] = "withdrawn"
    again = solve(parse_instance(data), previous=first)
    assert again.changes is not None
    formed = next(c for c in again.changes.items if c.kind == "formed")
    assert formed.participants == ["a2", "b3"]
    assert "a2's partner b2 withdrew" in formed.reason
    assert (
        "pair quality given up to avoid a move: a2 would score 0.60 with b1 (score 0.25 as "
        "paired now), but b1 stays with a1" in formed.reason
    )
    assert "from 0.65 to 0.85" in formed.reason


# ------------------------------------------------------------------ 2. one plan file serves both


def test_report_and_diff_and_explain_read_the_plan_workbook(loop: dict[str, Path]) -> None:
    page = loop["tmp"] / "again.html"
    ok(run_cli("report", loop["intake"], loop["new_xlsx"], "-o", page))
    assert "What changed" in page.read_text("utf-8")
    done = ok(run_cli("diff", loop["plan_xlsx"], loop["new_xlsx"], "--instance", loop["intake"]))
    assert "dissolved 1" in done.stdout and "pr05 withdrew" in done.stdout
    done = ok(run_cli("explain", loop["intake"], loop["new_xlsx"], "--why", "pl05"))
    assert "partner pr05 withdrew" in done.stdout


def test_a_plan_from_an_older_version_of_the_intake_is_refused(loop: dict[str, Path]) -> None:
    """The old plan against the edited workbook (pr05 withdrawn since): exit 3 naming both
    files, never a clean page with someone missing; --force reads it anyway."""
    page = loop["tmp"] / "stale.html"
    for args in (
        ("report", loop["intake"], loop["plan_xlsx"], "-o", page),
        ("explain", loop["intake"], loop["plan_json"], "--why", "pl05"),
        ("diff", loop["plan_json"], loop["plan_xlsx"], "--instance", loop["intake"]),
    ):
        done = run_cli(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert "another version of" in done.stderr
        assert str(loop["intake"]) in done.stderr
        assert "plan.json" in done.stderr or "plan.xlsx" in done.stderr
        assert "Traceback" not in done.stderr
    assert not page.exists()
    ok(run_cli("report", loop["intake"], loop["plan_xlsx"], "-o", page, "--force"))
    # the old plan with the intake it was made from is fine
    ok(run_cli("report", loop["old_intake"], loop["plan_xlsx"], "-o", page))


def test_previous_plan_of_another_intake_is_refused(loop: dict[str, Path]) -> None:
    done = run_cli("solve", NOV2016, "--previous", loop["plan_xlsx"])
    assert done.returncode == 3
    assert "plan of intake 'may2016'" in done.stderr and "is intake 'nov2016'" in done.stderr
    assert str(NOV2016) in done.stderr and str(loop["plan_xlsx"]) in done.stderr
    ok(run_cli("solve", NOV2016, "--previous", loop["plan_xlsx"], "--force", "--format", "json"))


def test_swapped_arguments_get_the_right_order(loop: dict[str, Path]) -> None:
    done = run_cli("report", loop["plan_xlsx"], loop["old_intake"])
    assert done.returncode == 2
    assert "takes the INTAKE first, then the PLAN" in done.stderr
    assert f"matcher report {loop['old_intake']} {loop['plan_xlsx']}" in " ".join(
        done.stderr.split()
    )
    done = run_cli("explain", loop["plan_json"], loop["intake"], "--why", "pl05")
    assert done.returncode == 2 and "takes the INTAKE first" in done.stderr
    done = run_cli("solve", loop["plan_xlsx"])
    assert done.returncode == 2 and "is a plan, not an intake" in done.stderr
    done = run_cli("diff", loop["plan_json"], loop["intake"])
    assert done.returncode == 2 and "takes two plans" in done.stderr


def test_every_destination_is_checked_before_the_solve(tmp_path: Path) -> None:
    first = tmp_path / "plan.json"
    done = run_cli("solve", MAY2016, "-o", first, "-o", tmp_path / "missing" / "plan.xlsx")
    assert done.returncode == 2 and not first.exists()
    done = run_cli("solve", MAY2016, "-o", first, "-o", first)
    assert done.returncode == 2 and "named twice" in done.stderr and not first.exists()


def test_library_refuses_a_plan_of_another_intake() -> None:
    may = Instance.model_validate(json.loads(MAY2016.read_text("utf-8")))
    nov = Instance.model_validate(json.loads(NOV2016.read_text("utf-8")))
    nov_plan = solve(nov)
    assert nov_plan.instance_sha256 == instance_hash(nov)
    with pytest.raises(InvalidParameter, match=r"'nov2016'.*'may2016'"):
        solve(may, previous=nov_plan)
    with pytest.raises(InvalidParameter, match=r"'nov2016'.*'may2016'"):
        why(may, "pl01", nov_plan)
    with pytest.raises(InvalidParameter, match=r"'nov2016'.*'may2016'"):
        why_not(may, "pl01", "pr02", nov_plan)
    from matcher.compare.diff import plan_changes

    may_plan = solve(may)
    with pytest.raises(InvalidParameter):
        plan_changes(nov_plan, may_plan, may)
    data = may.model_dump(mode="json")
    data["participants"][1]["status"] = "withdrawn"
    edited = parse_instance(data)
    with pytest.raises(InvalidParameter, match="another version"):
        why(edited, "pl05", may_plan)
    assert why(edited, "pl05", may_plan, force=True).participant == "pl05"
    assert solve(may, previous=nov_plan, force=True).changes is not None


# ---------------------------------------------------------------------- 3. template without traps


def test_blank_template_example_rows_are_refused_with_their_rows(tmp_path: Path) -> None:
    blank = tmp_path / "spring2026.xlsx"
    ok(run_cli("template", "-o", blank))
    done = run_cli("validate", blank)
    assert done.returncode == 3
    assert "Participants!row 2: this is the template's example row" in done.stderr
    assert "Cohorts!row 2: this is the template's example row" in done.stderr
    book = load_workbook(blank)
    rules = {r[0]: r[1] for r in book["Rules"].iter_rows(min_row=2, values_only=True)}
    assert rules["Intake name"] is None  # the name defaults to the file's name
    ws = book["Participants"]
    assert ws["B2"].value == EXAMPLE_NAME and ws["B2"].font.i
    heads = {c.value: c for c in ws[1]}
    required, optional = heads["ID"], heads["Name"]
    assert required.fill.fgColor.rgb != optional.fill.fgColor.rgb
    assert required.font.color.rgb != optional.font.color.rgb
    styles = {dv.errorStyle for dv in ws.data_validations.dataValidation}
    assert "stop" not in styles  # "Both" and "PL" are accepted by the reader: warn, not stop
    notes = " ".join(str(r[3]) for r in book["Notes"].iter_rows(min_row=2, values_only=True))
    assert "dark blue" in notes and "example" in notes
    # filled in: the example rows overwritten, the intake is named after the file
    ws["A2"], ws["B2"], ws["D2"] = "pl1", "Ann", "Patient leader"
    ws.append(["pr1", "Bob", None, "Clinician", "Trust", "acute_ft", "x"])
    cohorts = book["Cohorts"]
    cohorts["B2"], cohorts["F2"] = "London", 1  # one pair: sets of one pair

    book.save(blank)
    done = ok(run_cli("solve", blank, "--format", "json"))
    assert json.loads(done.stdout)["instance"] == "spring2026"


def test_template_from_an_intake_has_notes_for_a_filled_workbook(tmp_path: Path) -> None:
    out = tmp_path / "may.xlsx"
    ok(run_cli("template", "--from", MAY2016, "-o", out))
    notes = " ".join(str(r[3]) for r in sheet_rows(out, "Notes")[1:])
    assert "is an example" not in notes and "delete it" not in notes
    assert "Withdrawn" in notes
    ok(run_cli("validate", out))


def test_long_cohort_names_get_a_lookup_on_the_summary(tmp_path: Path) -> None:
    data = json.loads(MAY2016.read_text("utf-8"))
    data["cohorts"][0]["name"] = "London, in person, May to September 2016, Central venue"
    src = tmp_path / "long.json"
    src.write_text(json.dumps(data), "utf-8")
    out = tmp_path / "plan.xlsx"
    ok(run_cli("solve", src, "-o", out))
    rows = sheet_rows(out, "Summary")
    header = next(i for i, r in enumerate(rows) if r and r[0] == "Cohort")
    assert rows[header][-1] == "Sheet"
    c1 = next(r for r in rows[header + 1 :] if r[0] == "c1")
    book = load_workbook(out, read_only=True)
    assert c1[-1] in book.sheetnames and len(c1[-1]) <= 31 and c1[1] != c1[-1]
    book.close()


# ------------------------------------------------------------------ 4. explanations that are true


def test_why_not_never_shows_the_what_if_lock(tmp_path: Path) -> None:
    data = json.loads(MAY2016.read_text("utf-8"))
    data["forbidden_pairs"] = [["pl20", "pr19"]]
    src = tmp_path / "forbid.json"
    src.write_text(json.dumps(data), "utf-8")
    done = ok(run_cli("explain", src, "--why-not", "pl20", "pr19"))
    assert "forbidden pair" in done.stdout and "lock" not in done.stdout
    done = ok(run_cli("explain", MAY2016, "--why-not", "pl01", "pr02"))
    assert "lock" not in done.stdout
    assert "pl01 applied with pr01 (pre-formed pairs are kept)" in done.stdout


def test_why_lists_compatible_people_who_went_elsewhere_with_the_price() -> None:
    may = Instance.model_validate(json.loads(MAY2016.read_text("utf-8")))
    answer = why(may, "pl23")
    assert answer.standing.startswith("unmatched")
    assert answer.alternatives, "pl23 has compatible clinicians or managers"
    for alt in answer.alternatives:
        assert alt.why_not.startswith("compatible; went to ")
        assert f"score {alt.score:.2f} with pl23" in alt.why_not
    assert answer.incompatible > 0


def capacity_five(tmp_path: Path) -> Path:
    data = json.loads(MAY2016.read_text("utf-8"))
    for c in data["cohorts"]:
        c["capacity_pairs"] = {"c1": 5, "c2": 8, "c3": 0}[c["id"]]
    src = tmp_path / "five.json"
    src.write_text(json.dumps(data), "utf-8")
    return src


def test_validate_warns_about_capacity_not_splittable_and_closed_cohorts(tmp_path: Path) -> None:
    done = ok(run_cli("validate", capacity_five(tmp_path)))
    assert (
        "cohort c1: 5 pairs cannot be split into action-learning sets of 3-4 pairs, so it "
        "holds at most 4 pairs; set its capacity to 4 or 6" in done.stdout
    )
    assert "cohort c3 is closed (capacity 0)" in done.stdout


def test_waitlist_reason_names_the_binding_rule_with_figures(tmp_path: Path) -> None:
    done = ok(run_cli("solve", capacity_five(tmp_path), "--format", "json"))
    plan = json.loads(done.stdout)
    reasons = [w["reason"] for w in plan["waitlist"]]
    assert reasons
    assert any("c1 holds at most 4 pairs: 5 pairs cannot be split into sets of 3-4" in r
               for r in reasons)  # fmt: skip
    assert any("c3, which is closed (capacity 0)" in r for r in reasons)
    assert not any("(0 of 0)" in r for r in reasons)


def test_validate_acknowledges_withdrawals_locks_and_forbidden_pairs(tmp_path: Path) -> None:
    data = json.loads(MAY2016.read_text("utf-8"))
    data["participants"][1]["status"] = "withdrawn"
    data["locks"] = [{"patient_leader": "pl19", "partner": "pr20"},
                     {"patient_leader": "pl20", "partner": "pr19"}]  # fmt: skip
    data["forbidden_pairs"] = [["pl21", "pr21"]]
    src = tmp_path / "decided.json"
    src.write_text(json.dumps(data), "utf-8")
    done = ok(run_cli("validate", src))
    assert "52 participants (1 withdrawn)" in done.stdout
    assert "2 locked pairs, 1 forbidden pair, 3 cohorts" in done.stdout


def test_exit_4_names_the_rule_and_the_locks_rows(tmp_path: Path) -> None:
    """Two locked pairs of one organisation in a one-set cohort: the message names one
    organisation per set and the Locks sheet rows."""
    data = json.loads(MAY2016.read_text("utf-8"))
    data["cohorts"][0]["capacity_pairs"] = 4
    for p in data["participants"]:
        if p["id"] in ("pl06", "pr06"):
            p["available_cohorts"] = None
    data["locks"] = [{"patient_leader": "pl06", "partner": "pr06", "cohort": "c1"},
                     {"patient_leader": "pl07", "partner": "pr07", "cohort": "c1"}]  # fmt: skip
    src = tmp_path / "locks.json"
    src.write_text(json.dumps(data), "utf-8")
    book = tmp_path / "locks.xlsx"
    ok(run_cli("template", "--from", src, "-o", book))
    done = run_cli("solve", book)
    assert done.returncode == 4
    text = " ".join(done.stderr.split())
    assert "one organisation per set" in text
    assert "lock pl06+pr06 (Locks!row 2) and lock pl07+pr07 (Locks!row 3)" in text
    assert "c1 holds at most 1 set (capacity 4, sets of 3-4 pairs)" in text
    assert "locks[" not in text
    with pytest.raises(Infeasible, match=r"locks\[0\]"):
        solve(parse_instance(data))


# -------------------------------------------------------------------- 5. messages for people


def test_duplicate_ids_and_bad_dates_are_shown_by_spreadsheet_row(tmp_path: Path) -> None:
    book_path = tmp_path / "intake.xlsx"
    ok(run_cli("template", "--from", MAY2016, "-o", book_path))
    book = load_workbook(book_path)
    ws = book["Participants"]
    ws["A17"] = ws["A14"].value
    book["Cohorts"]["C2"] = "12/05/2016; 31/02/2016; 16/06/2016"
    book.save(book_path)
    done = run_cli("validate", book_path)
    assert done.returncode == 3
    assert f"duplicate ID {ws['A14'].value!r} (also at Participants!row 17)" in done.stderr
    assert "records [" not in done.stderr
    assert "Cohorts!row 2, column 'Sessions': date 2 of 3 '31/02/2016': not a date" in (done.stderr)
    assert "Fix the listed fields" in done.stderr


def test_no_internal_notation_and_footers_that_fit(tmp_path: Path) -> None:
    missing = run_cli("validate", tmp_path / "nowhere.xlsx")
    assert missing.returncode == 3 and "file not found" in missing.stderr
    assert "$:" not in missing.stderr and "Fix the listed fields" not in missing.stderr
    assert "Check the file's name" in missing.stderr
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    done = run_cli("validate", broken)
    assert done.returncode == 3 and "BadZipFile" not in done.stderr and "$:" not in done.stderr
    assert "save it as an Excel workbook" in done.stderr
    not_plan = tmp_path / "notes.json"
    not_plan.write_text("[1, 2]", "utf-8")
    done = run_cli("solve", MAY2016, "--previous", not_plan)
    assert done.returncode == 3 and "$:" not in done.stderr and "not a plan" in done.stderr
    assert "Solution" not in done.stderr and "dictionary" not in done.stderr
    assert "matcher validate" not in done.stderr


def test_every_command_has_a_help_summary_line() -> None:
    done = ok(run_cli("--help"))
    commands = done.stdout.split("Commands:", 1)[1].strip().splitlines()
    assert len(commands) >= 11
    for line in commands:
        _name, summary = line.split(None, 1)
        assert not summary.endswith("..."), line
        assert summary.strip(), line
    assert "INTAKE first, then the PLAN" in done.stdout


@pytest.mark.parametrize(
    ("n", "word", "expected"),
    [
        (0, "pair", "0 pairs"),
        (1, "pair", "1 pair"),
        (2, "pair", "2 pairs"),
        (1, "person", "1 person"),
        (3, "person", "3 people"),
        (1, "change", "1 change"),
        (2, "change", "2 changes"),
        (2, "locked pair", "2 locked pairs"),
        (1, "locked pair", "1 locked pair"),
        (2, "set", "2 sets"),
        (2, "patient leader", "2 patient leaders"),
        (2, "facility", "2 facilities"),
        (2, "box", "2 boxes"),
        (1200, "person", "1,200 people"),
    ],
)
def test_count_uses_the_right_plural(n: int, word: str, expected: str) -> None:
    assert count(n, word) == expected


def test_plural_and_listing() -> None:
    assert plural("is", 1) == "is" and plural("is", 2) == "are"
    assert count(2, "lone clinician/manager", "lone clinicians/managers") == (
        "2 lone clinicians/managers"
    )
    assert listing(["a"]) == "a" and listing(["a", "b", "c"]) == "a, b and c"
    assert listing([str(i) for i in range(12)], limit=3) == "0, 1, 2 and 9 more"


def test_reasons_in_plans_never_read_one_in_the_plural() -> None:
    """nov2016 has people whose only compatible partner went elsewhere: "the only", never
    "all 1 compatible ... were"."""
    nov = Instance.model_validate(json.loads(NOV2016.read_text("utf-8")))
    plan = solve(nov)
    texts = [u.reason for u in plan.unmatched] + [w.reason for w in plan.waitlist]
    assert any("the only compatible lone clinician or manager was paired" in t for t in texts)
    for t in texts:
        assert "all 1 " not in t and " 1 lone patient leaders" not in t


def test_json_errors_never_read_at_at(tmp_path: Path) -> None:
    bad = tmp_path / "intake.json"
    bad.write_text('{"schema_version": "1", "name": "x', "utf-8")
    done = run_cli("validate", bad)
    assert done.returncode == 3
    assert "Unterminated string starting at line 1, column 33" in done.stderr
    assert "at at" not in done.stderr
