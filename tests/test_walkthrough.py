"""docs/walkthrough.md runs as written: from a blank template to a second plan colleagues can
read without the JSON.

The page is read as an administrator follows it: the ``bash`` blocks are typed in order in an
empty folder (each must succeed), the rows of its Cohorts and Participants tables are typed
into the template after its example rows are deleted, pr05's Status is set to Withdrawn where
the page says so, and each ``console`` block is run and its output compared line by line.
Then the second plan is opened as colleagues would: the workbook with openpyxl, the page's
text.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook

from tests.conftest import REPO

PAGE = REPO / "docs" / "walkthrough.md"
WITHDRAWAL = "**Max Hill (pr05) withdraws**"


def run(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    words = shlex.split(line)
    assert words[0] == "matcher", line
    env = dict(os.environ, PYTHONPATH=str(REPO), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "matcher", *words[1:]],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=170,
    )


def table(text: str, heading: str) -> list[dict[str, str]]:
    """The markdown table under ``heading``, as one dict per row (header -> cell)."""
    lines = text.split(heading, 1)[1].lstrip("\n").splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    head, data = rows[0], rows[2:]
    return [dict(zip(head, row, strict=True)) for row in data]


def type_rows(book_path: Path, sheet: str, rows: list[dict[str, str]]) -> None:
    """Delete the example row, then type ``rows`` under the template's headers."""
    book = load_workbook(book_path)
    ws = book[sheet]
    ws.delete_rows(2)
    headers = [c.value for c in ws[1]]
    for n, row in enumerate(rows, start=2):
        for header, value in row.items():
            if value:
                ws.cell(n, headers.index(header) + 1).value = (
                    int(value) if value.isdigit() else value
                )
    book.save(book_path)


def withdraw(book_path: Path, pid: str) -> None:
    book = load_workbook(book_path)
    ws = book["Participants"]
    headers = [c.value for c in ws[1]]
    col_id, col_status = headers.index("ID") + 1, headers.index("Status") + 1
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, col_id).value == pid:
            ws.cell(row, col_status).value = "Withdrawn"
    book.save(book_path)


def squash(text: str) -> str:
    return " ".join(text.split())


def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    cohorts = table(text, "### Cohorts sheet")
    people = table(text, "### Participants sheet")
    assert len(cohorts) == 2 and len(people) == 15
    events: list[tuple[int, str, str]] = [
        (m.start(), m.group(1), m.group(2))
        for m in re.finditer(r"```(bash|console)\n(.*?)```", text, flags=re.S)
    ]
    events.append((text.index(WITHDRAWAL), "withdraw", "pr05"))
    filled = False
    ran = 0
    for _, kind, body in sorted(events):
        if kind == "withdraw":
            withdraw(tmp_path / "spring2026.xlsx", body)
            continue
        if kind == "bash":
            for line in body.strip().splitlines():
                done = run(line, tmp_path)
                assert done.returncode == 0, (line, done.stderr)
                ran += 1
                if line.startswith("matcher template") and not filled:
                    # the example rows are refused before they are deleted
                    refused = run("matcher validate spring2026.xlsx", tmp_path)
                    assert refused.returncode == 3 and "example row" in refused.stderr
                    type_rows(tmp_path / "spring2026.xlsx", "Cohorts", cohorts)
                    type_rows(tmp_path / "spring2026.xlsx", "Participants", people)
                    filled = True
            continue
        lines = body.strip().splitlines()
        command, expected = lines[0].removeprefix("$ "), lines[1:]
        done = run(command, tmp_path)
        said = squash(done.stdout + done.stderr)
        if expected and expected[0].startswith("error:"):
            assert done.returncode == 3, (command, said)
        else:
            assert done.returncode == 0, (command, said)
        for want in expected:
            assert squash(want) in said, (command, want, said)
        ran += 1
    assert filled and ran >= 8

    # The second plan, as colleagues read it: no JSON anywhere.
    book = load_workbook(tmp_path / "plan-v2.xlsx", read_only=True)
    assert book.sheetnames[:2] == ["Summary", "Changes"]
    changes = [r for r in book["Changes"].iter_rows(values_only=True)]
    book.close()
    flat = [" | ".join(str(c) for c in r if c is not None) for r in changes]
    assert any("Pair ended" in r and "pr05 Max Hill" in r and "pr05 withdrew" in r for r in flat)
    page = (tmp_path / "plan-v2.html").read_text(encoding="utf-8")
    assert page.index("What changed") < page.index('id="summary"')
    assert "Max Hill" in page and "pr05 withdrew" in page
    assert not (tmp_path / "stale.html").exists()
