"""The plan as an XLSX workbook for a programme team (``matcher solve -o plan.xlsx``).

Sheets: Summary (the plan in words, what changed when it is a re-plan, then one row per cohort
with the name of its sheet), Changes (a re-plan's change list: kind, pair, people with names,
from, to, reason), Pairs (both people with names, roles, organisations, the score and the
strongest reasons), one sheet per cohort listing its sets and their members, Unmatched and
Wait-list with reasons, and Scores (each pair's breakdown by criterion). Every table has a
frozen header row, a filter and set column widths; an empty table says so above its header.
Every value goes through :func:`matcher.text.sheet_cell`: text is always written as text, never
as a formula, with control characters shown escaped.

The JSON plan travels inside the workbook, on a very hidden sheet (:data:`PLAN_SHEET`, which
Excel and LibreOffice keep when they save the file), so one file serves people and matcher:
``--previous plan.xlsx``, ``matcher report INTAKE plan.xlsx``, ``matcher diff`` and
``matcher explain`` read it back (:func:`matcher.contract.plan_file.embedded_plan`).

The workbook is byte-identical for the same plan: the save time and zip timestamps are fixed.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from matcher.contract.instance import CRITERIA
from matcher.contract.plan_file import PLAN_CHUNK, PLAN_MARK, PLAN_SHEET
from matcher.contract.solution import Solution
from matcher.render.output import solution_json
from matcher.render.view import CRITERION_LABELS, PlanView
from matcher.text import sheet_cell, sheet_text, visible
from matcher.words import count

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
FIXED_TIME = dt.datetime(2000, 1, 1)
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _person_cols(view: PlanView, prefix: str) -> list[str]:
    cols = [f"{prefix} ID"]
    if view.has_names:
        cols.append(f"{prefix} name")
    if view.has_emails:
        cols.append(f"{prefix} email")
    cols = [*cols, f"{prefix} role", f"{prefix} organisation", f"{prefix} organisation type",
            f"{prefix} local system"]  # fmt: skip
    return [*cols, f"{prefix} project description"] if view.has_descriptions else cols


def _person_cells(view: PlanView, pid: str) -> list[Any]:
    p = view.person(pid)
    cells: list[Any] = [p.id]
    if view.has_names:
        cells.append(p.name or "")
    if view.has_emails:
        cells.append(p.email or "")
    cells = [*cells, p.role, p.organisation, p.organisation_type, p.system]
    return [*cells, p.project_description or ""] if view.has_descriptions else cells


def plan_workbook(view: PlanView) -> bytes:
    """The workbook's bytes."""
    book = Workbook(write_only=True)
    s = view.solution
    used: set[str] = {"Summary", "Changes", "Pairs", "Unmatched", "Wait-list", "Scores"}
    used.add(PLAN_SHEET)
    # Cohort sheets are named "<id> <name>" cut to Excel's 31 characters: the Summary says
    # which sheet is which cohort.
    sheet_of = {
        plan.id: _sheet_name(f"{plan.id} {view.cohorts[plan.id].name}", used)
        for plan in s.cohorts or []
    }
    cohort_rows = []
    for cid, c in view.cohorts.items():
        plan = next((x for x in s.cohorts or [] if x.id == cid), None)
        placed = len(plan.pairs) if plan else 0
        cohort_rows.append(
            [cid, c.name, c.dates, c.venue or "", c.mode, placed, c.capacity,
             len(view.sets_by_cohort.get(cid, [])), sheet_of.get(cid, "")]
        )  # fmt: skip
    changed = view.change_sentences()
    _table(
        book,
        "Summary",
        ["Cohort", "Name", "Dates", "Venue", "Mode", "Pairs placed", "Capacity (pairs)", "Sets",
         "Sheet"],
        cohort_rows,
        preamble=[[line] for line in [*changed, *view.summary_sentences()]],
    )  # fmt: skip
    if s.changes is not None:
        change_rows = view.change_rows()
        _table(
            book,
            "Changes",
            ["Change", "Pair", "People", "From", "To", "Reason"],
            [
                [r.kind, r.pair, "; ".join(p.label for p in r.people), r.before, r.after,
                 r.reason]
                for r in change_rows
            ],
            preamble=[[line] for line in changed]
            + ([] if change_rows else [["Nothing changed against the previous plan."]]),
        )  # fmt: skip

    pair_cols = [
        "Pair",
        *_person_cols(view, "Patient leader"),
        *_person_cols(view, "Partner"),
        "Applied together",
        "Score",
        "Cohort",
        "Cohort name",
        "Cohort dates",
        "Set",
        "Wait-listed",
        "Strongest reasons",
    ]
    pair_rows = []
    for p in s.pairs:
        about = view.cohort(p.cohort)
        pair_rows.append(
            [
                p.id,
                *_person_cells(view, p.patient_leader),
                *_person_cells(view, p.partner),
                "yes" if p.preformed else "no",
                round(p.score, 4),
                p.cohort or "",
                about.name if about else "",
                about.dates if about else "",
                p.learning_set or "",
                view.waitlisted.get(p.id, ""),
                "; ".join(p.reasons[:3]),
            ]
        )
    _table(book, "Pairs", pair_cols, pair_rows, number_format={"Score": "0.00"})

    member_cols = ["Set", "Pair", "Score", *_person_cols(view, "Person")]
    for plan in s.cohorts or []:
        c = view.cohorts[plan.id]
        rows = []
        by_set: dict[str, list[str]] = {}
        for pid in plan.pairs:
            by_set.setdefault(view.pairs[pid].learning_set or "(no set)", []).append(pid)
        for set_id, pids in sorted(by_set.items()):
            for pid in pids:
                pair = view.pairs[pid]
                for person in (pair.patient_leader, pair.partner):
                    rows.append([set_id, pid, round(pair.score, 4),
                                 *_person_cells(view, person)])  # fmt: skip
        _table(
            book,
            sheet_of[plan.id],
            member_cols,
            rows,
            preamble=[[c.label], [c.when + ": " + c.dates], [f"{len(plan.pairs)} of "
                      f"{c.capacity} pairs, {count(len(by_set), 'set')}"]],
            number_format={"Score": "0.00"},
        )  # fmt: skip

    _table(
        book,
        "Unmatched",
        [*_person_cols(view, "Person"), "Reason"],
        [[*_person_cells(view, u.participant), u.reason] for u in s.unmatched],
        preamble=None if s.unmatched else [["Everybody is in a pair."]],
    )
    _table(
        book,
        "Wait-list",
        ["Pair", *_person_cols(view, "Patient leader"), *_person_cols(view, "Partner"), "Reason"],
        [
            [w.pair, *_person_cells(view, view.pairs[w.pair].patient_leader),
             *_person_cells(view, view.pairs[w.pair].partner), w.reason]
            for w in s.waitlist
        ],
        preamble=None if s.waitlist else [["No pair is wait-listed: every pair has a cohort."]],
    )  # fmt: skip
    _table(
        book,
        "Scores",
        ["Pair", "Patient leader", "Partner", "Score", *(CRITERION_LABELS[k] for k in CRITERIA)],
        [
            [p.id, p.patient_leader, p.partner, round(p.score, 4),
             *(round(p.breakdown.get(k, 0.0), 4) for k in CRITERIA)]
            for p in s.pairs
        ],
        number_format={"Score": "0.00"},
    )  # fmt: skip
    _plan_sheet(book, s)
    book.properties.created = FIXED_TIME
    book.properties.modified = FIXED_TIME
    buf = io.BytesIO()
    book.save(buf)
    return fixed_zip(buf.getvalue())


def _plan_sheet(book: Workbook, solution: Solution) -> None:
    """The JSON plan on a very hidden sheet: the mark in A1, then the base64 text in column A,
    :data:`PLAN_CHUNK` characters a cell. Each cell is written as text (never a formula)."""
    ws = book.create_sheet(PLAN_SHEET)
    ws.sheet_state = "veryHidden"
    raw = solution_json(solution).encode("utf-8")
    text = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    for value in [PLAN_MARK, *(text[i : i + PLAN_CHUNK] for i in range(0, len(text), PLAN_CHUNK))]:
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        ws.append([cell])


def _sheet_name(text: str, used: set[str]) -> str:
    """A valid, unique sheet name (at most 31 characters, none of []:*?/\\)."""
    base = _SHEET_BAD.sub(" ", visible(text, None)).strip()[:31].strip("'") or "Cohort"
    name, n = base, 2
    while name.casefold() in {u.casefold() for u in used}:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name)
    return name


def _table(
    book: Workbook,
    title: str,
    headers: Sequence[str],
    rows: list[list[Any]],
    *,
    preamble: list[list[Any]] | None = None,
    number_format: dict[str, str] | None = None,
) -> None:
    """One sheet: optional lines of text, then a header row (frozen, filtered) and the rows."""
    ws = book.create_sheet(title)
    for i, head in enumerate(headers, start=1):
        longest = max([len(head), *(len(str(r[i - 1])) for r in rows[:500])])
        ws.column_dimensions[get_column_letter(i)].width = min(max(longest + 2, 8), 60)
    top = len(preamble or [])
    for line in preamble or []:
        ws.append([sheet_cell(ws, v) for v in line])
    if preamble:
        ws.append([])
        top += 1
    header_row = top + 1
    ws.freeze_panes = f"A{header_row + 1}"
    last = get_column_letter(len(headers))
    ws.auto_filter.ref = f"A{header_row}:{last}{header_row + max(len(rows), 1)}"
    cells = []
    for head in headers:
        cell = WriteOnlyCell(ws, value=sheet_text(head))
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cells.append(cell)
    ws.append(cells)
    formats = [(number_format or {}).get(h) for h in headers]
    wrap = Alignment(wrap_text=True, vertical="top")
    for row in rows:
        out: list[Any] = []
        for value, fmt in zip(row, formats, strict=True):
            # Every value through the one safe-cell rule: text is text, never a formula.
            safe = sheet_cell(ws, value)
            if fmt is None and not (isinstance(value, str) and len(value) > 60):
                out.append(safe)
                continue
            cell = safe if isinstance(safe, Cell) else WriteOnlyCell(ws, value=safe)
            if fmt:
                cell.number_format = fmt
            else:
                cell.alignment = wrap
            out.append(cell)
        ws.append(out)


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def fixed_zip(data: bytes) -> bytes:
    """Rewrite the zip with fixed entry timestamps and a fixed save time (openpyxl stamps the
    current time into docProps/core.xml) so that equal plans give equal bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _MODIFIED.sub(rb"\g<1>2000-01-01T00:00:00Z\g<2>", body)
            dst.writestr(fixed, body)
    return out.getvalue()
