"""Spreadsheets in: the template, `matcher import`, workbooks given to solve/validate, the
typo check on category values, and the one normalisation rule behind it."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

from matcher.contract.instance import Instance
from matcher.contract.keys import category_key
from matcher.engine.scoring import pair_scores
from matcher.errors import InvalidInstance
from matcher.intake.spelling import near_duplicates
from matcher.intake.spreadsheet import (
    COHORT_COLUMNS,
    PARTICIPANT_COLUMNS,
    load_any,
    read_csv_files,
    read_workbook,
)
from matcher.intake.template import build_workbook
from matcher.verification.verify import recompute_score
from tests.conftest import MAY2016, REPO, person, tiny_data

P_HEAD = ["ID", "Name", "Role", "Organisation", "Organisation type", "Local system", "Interests",
          "Available cohorts", "Attendance", "Partner"]  # fmt: skip
C_HEAD = ["ID", "Name", "Sessions", "Capacity (pairs)", "Mode", "Min pairs per set"]


def workbook(
    tmp_path: Path,
    people: list[list[Any]],
    cohorts: list[list[Any]],
    *,
    p_head: list[str] = P_HEAD,
    c_head: list[str] = C_HEAD,
    rules: list[list[Any]] | None = None,
    name: str = "intake.xlsx",
) -> Path:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.title = "Participants"
    for row in [p_head, *people]:
        ws.append(row)
    wc = book.create_sheet("Cohorts")
    for row in [c_head, *cohorts]:
        wc.append(row)
    if rules is not None:
        wr = book.create_sheet("Rules")
        for row in rules:
            wr.append(row)
    path = tmp_path / name
    book.save(path)
    return path


COHORTS = [
    ["c1", "London", "12/05/2016; 16/06/2016", 4, "In person", 1],
    ["c2", "Online", dt.datetime(2016, 5, 19), "4", "online", 1],
]
PEOPLE = [
    ["pl1", "Ann One", "Patient leader", "HW Surrey", "healthwatch", "Surrey Heartlands",
     "carers; dementia", "c1, c2", "Both", None],
    ["pr1", "Bob Two", "clinician", "Trust A", "acute_ft", "surrey-heartlands",
     "Carers\nfrailty", "c1", "In person", None],
    ["pl2", None, "PATIENT-LEADER", "PPG B", "ppg", "frimley", "", None, "online", "pr2"],
    ["pr2", None, "Manager", "CCG C", "ccg", "frimley", None, None, "In person; Online", "pl2"],
]  # fmt: skip


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "matcher", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


# --------------------------------------------------------------------------- reading


def test_values_as_people_type_them(tmp_path: Path) -> None:
    """Role words in any case, modes as words or 'Both', UK/ISO/real Excel dates, numbers
    typed as text, lists split on ; , and line breaks, empty cells to the defaults."""
    data = read_workbook(workbook(tmp_path, PEOPLE, COHORTS))
    inst = Instance.model_validate(data)
    people = inst.participants_by_id()
    assert [people[x].role for x in ("pl1", "pr1", "pl2", "pr2")] == [
        "patient_leader",
        "clinician",
        "patient_leader",
        "manager",
    ]
    assert people["pl1"].attendance == ["in_person", "online"]
    assert people["pr2"].attendance == ["in_person", "online"]
    assert people["pl1"].interests == ["carers", "dementia"]
    assert people["pr1"].interests == ["Carers", "frailty"]
    assert people["pl1"].available_cohorts == ["c1", "c2"]
    assert people["pl2"].available_cohorts is None  # empty: every cohort
    assert people["pl2"].interests == []
    assert people["pl1"].name == "Ann One"
    c1, c2 = inst.cohorts
    assert c1.sessions == [dt.date(2016, 5, 12), dt.date(2016, 6, 16)]
    assert c2.sessions == [dt.date(2016, 5, 19)] and c2.capacity_pairs == 4
    assert c2.mode == "online" and c1.set_size.min_pairs == 1
    assert data["name"] == "intake"


def test_headers_matched_loosely(tmp_path: Path) -> None:
    """Headers differ in case, spaces and punctuation, or use a documented alias."""
    head = ["participant id", "NAME", "role", "Organization", "organisation_type", "ICS",
            "Interests", "available-cohorts", "Attendance", "Partner ID"]  # fmt: skip
    chead = ["Cohort ID", "cohort name", "Session dates", "capacity", "MODE", "min pairs"]
    data = read_workbook(workbook(tmp_path, PEOPLE, COHORTS, p_head=head, c_head=chead))
    assert Instance.model_validate(data).participants_by_id()["pl2"].partner == "pr2"


def test_every_problem_with_sheet_row_and_column(tmp_path: Path) -> None:
    """One run lists every problem, each at 'Sheet!row N, column 'Header'' as the spreadsheet
    shows it (header = row 1): unreadable cells and the instance checks' problems together;
    the cell text (here a name typed as a role) is never echoed."""
    people = [row[:] for row in PEOPLE]
    people[1][2] = "Jane Secret"  # row 3: a name in the Role column
    people[2][7] = "c1; c9"  # row 4: unknown cohort (found by the instance checks)
    people[3][3] = None  # row 5: required organisation missing
    people[3][9] = "pl1"  # row 5: partner not mutual
    cohorts = [row[:] for row in COHORTS]
    cohorts[0][2] = "12th of May"  # Cohorts row 2: not a date
    with pytest.raises(InvalidInstance) as caught:
        read_workbook(workbook(tmp_path, people, cohorts))
    paths = {p.path: p.message for p in caught.value.problems}
    assert paths.keys() == {
        "Participants!row 3, column 'Role'",
        "Participants!row 4, column 'Available cohorts'",
        "Participants!row 4, column 'Partner'",
        "Participants!row 5, column 'Organisation'",
        "Participants!row 5, column 'Partner'",
        "Cohorts!row 2, column 'Sessions'",
    }
    assert "not mutual" in paths["Participants!row 5, column 'Partner'"]
    assert "not a role" in paths["Participants!row 3, column 'Role'"]
    assert "Secret" not in str(caught.value) and "12th" not in str(caught.value)


def test_instance_checks_are_placed_in_the_sheet(tmp_path: Path) -> None:
    """With every cell readable, the instance checks run and their problems are translated
    from JSON paths to sheet, row and column."""
    people = [row[:] for row in PEOPLE]
    people[2][7] = "c1; c9"
    people[3][9] = "pl1"
    with pytest.raises(InvalidInstance) as caught:
        read_workbook(workbook(tmp_path, people, COHORTS))
    paths = {p.path: p.message for p in caught.value.problems}
    assert "unknown cohort 'c9'" in paths["Participants!row 4, column 'Available cohorts'"]
    assert "not mutual" in paths["Participants!row 5, column 'Partner'"]


def test_missing_column_and_header_typo(tmp_path: Path) -> None:
    """A required column missing is named; a misspelt header gets a suggestion."""
    head = [("Intrests" if h == "Interests" else h) for h in P_HEAD if h != "Role"]
    rows = [[v for h, v in zip(P_HEAD, r, strict=True) if h != "Role"] for r in PEOPLE]
    with pytest.raises(InvalidInstance) as caught:
        read_workbook(workbook(tmp_path, rows, COHORTS, p_head=head))
    messages = {p.path: p.message for p in caught.value.problems}
    assert "no column 'Role'" in messages["Participants!row 1"]
    assert "did you mean 'Interests'?" in messages["Participants!row 1, column 'Intrests'"]


def test_unknown_columns_are_reported_not_fatal(tmp_path: Path) -> None:
    """A form export's extra column (a timestamp) is ignored with a warning."""
    head = [*P_HEAD, "Timestamp"]
    rows = [[*r, "2016-01-01 10:00"] for r in PEOPLE]
    notes: list[str] = []
    read_workbook(workbook(tmp_path, rows, COHORTS, p_head=head), warnings=notes)
    assert notes == ["Participants: 1 column not used (unknown header): 'Timestamp'"]


def test_rules_sheet(tmp_path: Path) -> None:
    """Key/value rows with words as typed: yes/no, 'Least first', numbers."""
    rules = [["Rule", "Value"], ["Intake name", "spring"], ["One organisation per set", "no"],
             ["Set diversity", "Least first"], ["Weight interests", "0.5"],
             ["Same organisation", "Forbid"]]  # fmt: skip
    inst = Instance.model_validate(read_workbook(workbook(tmp_path, PEOPLE, COHORTS, rules=rules)))
    assert inst.name == "spring"
    assert inst.rules.one_organisation_per_set == "soft"
    assert inst.rules.set_diversity == "least_first"
    assert inst.rules.same_organisation == "forbid"
    assert inst.weights.interests == 0.5
    with pytest.raises(InvalidInstance) as caught:
        read_workbook(workbook(tmp_path, PEOPLE, COHORTS, rules=[["Local system", "maybe"]]))
    assert [p.path for p in caught.value.problems] == ["Rules!row 1, column 'B'"]


def _csv(rows: list[list[Any]], sep: str = ",") -> str:
    import csv

    buf = io.StringIO()
    csv.writer(buf, delimiter=sep, lineterminator="\r\n").writerows(
        [["" if v is None else str(v) for v in r] for r in rows]
    )
    return buf.getvalue()


@pytest.mark.parametrize(("encoding", "sep"), [("utf-8-sig", ","), ("utf-8", ";"), ("cp1252", ",")])
def test_csv_encodings_and_separators(tmp_path: Path, encoding: str, sep: str) -> None:
    """Participants and cohorts CSV in UTF-8 with or without BOM or Windows-1252, CRLF line
    ends, comma or semicolon separated; a quoted cell holds a line break."""
    people = [row[:] for row in PEOPLE]
    people[0][3] = "Café Trust"
    cohorts = [["c1", "London", "12/05/2016\n16/06/2016", "4", "In person", "1"],
               ["c2", "Online", "2016-05-19", "4", "Online", "1"]]  # fmt: skip
    p_csv, c_csv = tmp_path / "people.csv", tmp_path / "cohorts.csv"
    p_csv.write_bytes(_csv([P_HEAD, *people], sep).encode(encoding))
    c_csv.write_bytes(_csv([C_HEAD, *cohorts], sep).encode(encoding))
    inst = Instance.model_validate(read_csv_files(p_csv, c_csv))
    assert inst.participants_by_id()["pl1"].organisation == "Café Trust"
    assert inst.cohorts[0].sessions == [dt.date(2016, 5, 12), dt.date(2016, 6, 16)]
    assert inst.name == "people"


def test_mapping_file_for_a_form_export(tmp_path: Path) -> None:
    """--mapping maps a form's question texts and sheet name onto the template's."""
    questions = {"Role": "What is your role on the programme?", "Organisation": "Your employer"}
    head = [questions.get(h, h) for h in P_HEAD]
    book_path = workbook(tmp_path, PEOPLE, COHORTS, p_head=head)
    book = load_workbook(book_path)
    book["Participants"].title = "Form responses 1"
    book.save(book_path)
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[sheets]\nparticipants = "Form responses 1"\n\n[participants]\n'
        '"What is your role on the programme?" = "Role"\n"Your employer" = "organisation"\n',
        encoding="utf-8",
    )
    inst = load_any(book_path, mapping=mapping)
    assert inst.participants_by_id()["pr1"].organisation == "Trust A"
    mapping.write_text('[participants]\n"Q1" = "Favourite colour"\n', encoding="utf-8")
    with pytest.raises(InvalidInstance, match="maps onto no column"):
        load_any(book_path, mapping=mapping)


# --------------------------------------------------------------------------- template


def test_template_round_trip_of_may2016(tmp_path: Path) -> None:
    """template --from writes may2016 as a workbook; importing it gives the same instance."""
    original = Instance.model_validate(json.loads(MAY2016.read_text(encoding="utf-8")))
    path = tmp_path / "may.xlsx"
    build_workbook(original.model_dump(mode="json", exclude_unset=True)).save(path)
    assert load_any(path).model_dump() == original.model_dump()


def test_blank_template_layout(tmp_path: Path) -> None:
    """Headers in order, one example row that imports cleanly, drop-downs on role, attendance,
    organisation type, status, cohort IDs and cohort mode, and a note for every column."""
    path = tmp_path / "blank.xlsx"
    build_workbook().save(path)
    book = load_workbook(path)
    assert book.sheetnames == ["Participants", "Cohorts", "Rules", "Locks", "Forbidden pairs",
                               "Notes"]  # fmt: skip
    ws = book["Participants"]
    assert [c.value for c in ws[1]] == [c.header for c in PARTICIPANT_COLUMNS]
    assert [c.value for c in book["Cohorts"][1]] == [c.header for c in COHORT_COLUMNS]
    assert ws.freeze_panes == "A2"
    letters = {c.header: chr(ord("A") + i) for i, c in enumerate(PARTICIPANT_COLUMNS)}
    validated = {
        str(dv.sqref).split(":")[0]: dv.formula1 for dv in ws.data_validations.dataValidation
    }
    assert "Patient leader,Clinician,Manager" in validated[letters["Role"] + "2"]
    assert "healthwatch" in validated[letters["Organisation type"] + "2"]
    assert validated[letters["Available cohorts"] + "2"].startswith("Cohorts!$A$2")
    assert "Withdrawn" in validated[letters["Status"] + "2"]
    assert "Attendance" in letters and letters["Attendance"] + "2" in validated
    mode = book["Cohorts"].data_validations.dataValidation[0]
    assert "Blended" in mode.formula1
    notes = {(r[0], r[1]) for r in book["Notes"].iter_rows(min_row=2, values_only=True)}
    for c in PARTICIPANT_COLUMNS:
        assert ("Participants", c.header) in notes
    for c in COHORT_COLUMNS:
        assert ("Cohorts", c.header) in notes
    # The example rows are refused left in place, each by its row (issue 16)
    with pytest.raises(InvalidInstance) as caught:
        load_any(path)
    assert {p.path for p in caught.value.problems} == {"Participants!row 2", "Cohorts!row 2"}
    assert all("example row" in p.message for p in caught.value.problems)


# --------------------------------------------------------------------------- CLI


def test_import_cli_writes_nothing_on_error_and_exit_3(tmp_path: Path) -> None:
    """Exit 3 with the sheet/row/column list; the output file is not created; no name."""
    people = [row[:] for row in PEOPLE]
    people[0][2] = "Ann One"
    out = tmp_path / "intake.json"
    done = run_cli("import", workbook(tmp_path, people, COHORTS), "-o", out)
    assert done.returncode == 3, done.stderr
    assert "Participants!row 2, column 'Role'" in done.stderr
    assert "Ann" not in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_import_then_solve_a_workbook_directly(tmp_path: Path) -> None:
    """import writes valid instance JSON; solve, validate and scores take the workbook."""
    book = workbook(tmp_path, PEOPLE, COHORTS)
    out = tmp_path / "intake.json"
    done = run_cli("import", book, "-o", out)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["participants"][0]["name"] == "Ann One"
    assert run_cli("validate", book).returncode == 0
    assert run_cli("scores", book).stdout.startswith("patient_leader,professional")
    done = run_cli("solve", book, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "Ann One" not in done.stdout  # names never in the JSON plan
    assert {p["patient_leader"] for p in json.loads(done.stdout)["pairs"]} == {"pl1", "pl2"}


def test_solve_refuses_csv_without_cohorts_and_old_xls(tmp_path: Path) -> None:
    """A participants CSV alone, or an old .xls, is exit 3 with what to do instead (not 'not
    valid JSON' or a codec error)."""
    csv_path = tmp_path / "people.csv"
    csv_path.write_text(_csv([P_HEAD, *PEOPLE]), encoding="utf-8")
    done = run_cli("solve", csv_path)
    assert done.returncode == 3 and "--cohorts" in done.stderr
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    done = run_cli("validate", xls)
    assert done.returncode == 3 and "save it as .xlsx" in done.stderr
    renamed = tmp_path / "book.json"  # a workbook under a .json name is still read as one
    renamed.write_bytes(workbook(tmp_path, PEOPLE, COHORTS).read_bytes())
    assert run_cli("validate", renamed).returncode == 0


# --------------------------------------------------------------------------- categories


def test_category_key() -> None:
    assert category_key("Surrey Heartlands") == category_key("surrey-heartlands")
    assert category_key("  SURREY_heartlands ") == "surrey heartlands"
    assert category_key("Co-production") == category_key("co production")
    assert category_key("---") == "---"  # never the empty key


def _system_case(systems: list[str]) -> Instance:
    data = tiny_data()
    data["participants"] = [
        person(f"pl{i}", "patient_leader", f"hw-{i}", system=s) for i, s in enumerate(systems)
    ] + [person("pr0", "clinician", "trust", system="surrey-heartlands")]
    return Instance.model_validate(data)


def test_spelling_variants_are_one_system_in_scoring_and_verify() -> None:
    """Regression: "Surrey Heartlands" vs surrey-heartlands cut a 0.90 match to 0.55. Now the
    system criterion is 1 in the scoring and in the independent verifier."""
    inst = _system_case(["Surrey Heartlands", "Frimley"])
    people = inst.participants_by_id()
    scores, breakdown = pair_scores(inst, [("pl0", "pr0"), ("pl1", "pr0")])
    assert list(breakdown["system"]) == [1.0, 0.0]
    for i, pl in enumerate(("pl0", "pl1")):
        assert recompute_score(inst, people[pl], people["pr0"])["score"] == pytest.approx(scores[i])


def test_near_misses_warned_with_ids_not_merged() -> None:
    """'Surrey Heartland' (pl1) looks like surrey-heartlands (3 people): reported with the
    IDs; numbered names (trust-1/trust-2) are different on purpose and not reported."""
    inst = _system_case(["Surrey Heartlands", "Surrey Heartland", "surrey-heartlands"])
    found = near_duplicates(inst)
    assert [(d.field, d.spelling, d.ids, d.others) for d in found] == [
        ("local system", "Surrey Heartland", ("pl1",), 3)
    ]
    assert str(found[0]).startswith(
        "local system 'Surrey Heartland' (pl1) looks like 'surrey-heartlands' (3 others)"
    )
    numbered = _system_case(["system-001", "system-002"])
    assert near_duplicates(numbered) == []


def test_validate_warns_on_stderr(tmp_path: Path) -> None:
    """validate exits 0 and prints the near-miss warning on stderr, IDs only."""
    data = tiny_data()
    data["participants"][2]["system"] = "Surrey Heartland"
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    done = run_cli("validate", path)
    assert done.returncode == 0
    assert "warning: local system 'Surrey Heartland' (pl1) looks like" in done.stderr


def test_name_typed_as_partner_is_not_echoed(tmp_path: Path) -> None:
    """Regression guard: a name typed in the Partner or Avoid column is reported as 'not an
    ID' at its cell; the instance checks never get to print it as an unknown participant."""
    people = [row[:] for row in PEOPLE]
    people[0][9] = "Bob Two"
    with pytest.raises(InvalidInstance) as caught:
        read_workbook(workbook(tmp_path, people, COHORTS))
    assert [p.path for p in caught.value.problems] == ["Participants!row 2, column 'Partner'"]
    assert "not an ID" in str(caught.value) and "Bob" not in str(caught.value)


def test_one_organisation_per_set_sees_spelling_variants() -> None:
    """'Trust A' and 'trust-a' are one organisation: the two pairs holding them never share a
    set (learning sets and placement), and the verifier flags a plan that puts them together."""
    from matcher.engine.solve import solve
    from matcher.verification.verify import verify

    data = tiny_data()
    data["cohorts"] = [data["cohorts"][0]]
    data["participants"] = [
        person("pl0", "patient_leader", "hw-a", partner="pr0"),
        person("pr0", "clinician", "Trust A", partner="pl0"),
        person("pl1", "patient_leader", "hw-b", partner="pr1"),
        person("pr1", "clinician", "trust-a", partner="pl1"),
        person("pl2", "patient_leader", "hw-c", partner="pr2"),
        person("pr2", "clinician", "ccg-c", partner="pl2"),
    ]
    inst = Instance.model_validate(data)
    plan = solve(inst, seed=0)
    assert verify(inst, plan).ok
    set_of = {p.patient_leader: p.learning_set for p in plan.pairs}
    assert set_of["pl0"] is not None and set_of["pl0"] != set_of["pl1"]
    target = set_of["pl0"]
    merged = plan.model_copy(
        update={
            "learning_sets": [
                x.model_copy(update={"pairs": [p.id for p in plan.pairs] if x.id == target else []})
                for x in plan.learning_sets or []
            ],
            "pairs": [p.model_copy(update={"learning_set": target}) for p in plan.pairs],
        }
    )
    report = verify(inst, merged)
    assert "one_organisation_per_set" in report.rules()
    assert any("pairs from one organisation (trust a)" in v for v in report.violations)
