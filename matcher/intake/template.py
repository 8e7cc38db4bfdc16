"""The intake workbook: a blank template to fill in, or an existing instance written as one.

``matcher template -o intake.xlsx`` writes the sheets and headers :mod:`matcher.intake.spreadsheet`
reads (Participants, Cohorts, Rules, Locks, Forbidden pairs), one example row on Participants and
Cohorts (named :data:`EXAMPLE_NAME`, greyed and italic: `validate` refuses it left in place),
drop-down lists (data validation) for role, attendance, mode, organisation type, status and
cohort IDs that offer values but only warn on others (the reader accepts other spellings:
"Both", "PL"), required columns with dark headers and optional ones with light headers, and a
Notes sheet saying what every column means. The intake name is left empty: it defaults to the
file's name. ``--from INSTANCE`` fills the sheets from an instance instead of the example row
(how an intake kept as JSON moves back to a spreadsheet), with Notes that fit a filled workbook.
Every value is written through :func:`matcher.text.sheet_cell`: text stays text (a name starting
with ``=`` is never a formula) and control characters are shown escaped.
"""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from matcher.intake.spreadsheet import (
    COHORT_COLUMNS,
    EXAMPLE_NAME,
    FORBIDDEN_COLUMNS,
    LOCK_COLUMNS,
    PARTICIPANT_COLUMNS,
    RULE_KEYS,
    Column,
    rows_of,
)
from matcher.text import sheet_cell

#: Organisation types offered in the drop-down (other values may still be typed).
ORGANISATION_TYPES = (
    "healthwatch",
    "patient_participation_group",
    "lay_member",
    "third_sector",
    "ccg",
    "acute_ft",
    "mental_health_ft",
    "community_ft",
    "primary_care",
    "clinical_research_network",
    "local_authority",
)
#: Optional columns: dark text on light blue. Required columns: white bold text on dark blue.
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
REQUIRED_FILL = PatternFill("solid", fgColor="1F4E78")
REQUIRED_FONT = Font(bold=True, color="FFFFFF")
OPTIONAL_FONT = Font(bold=False, color="000000")
#: The example rows: grey italic, so that they read as an example.
EXAMPLE_FONT = Font(italic=True, color="808080")
MAX_ROWS = 5000  # rows covered by the drop-downs in a blank template

EXAMPLE_PARTICIPANTS: tuple[dict[str, Any], ...] = (
    {c.field: c.example for c in PARTICIPANT_COLUMNS},
)
EXAMPLE_COHORTS: tuple[dict[str, Any], ...] = ({c.field: c.example for c in COHORT_COLUMNS},)


def build_workbook(instance: dict[str, Any] | None = None) -> Workbook:
    """The intake workbook: blank with an example row, or holding ``instance`` (JSON data)."""
    book = Workbook()
    book.remove(book.active)
    if instance is None:
        people = [list(r.values()) for r in EXAMPLE_PARTICIPANTS]
        cohorts = [list(r.values()) for r in EXAMPLE_COHORTS]
        locks: list[list[Any]] = []
        forbidden: list[list[Any]] = []
        n_rows = MAX_ROWS
    else:
        people = rows_of(instance.get("participants", []), PARTICIPANT_COLUMNS)
        cohorts = rows_of(_flat_cohorts(instance.get("cohorts", [])), COHORT_COLUMNS)
        locks = rows_of(instance.get("locks", []), LOCK_COLUMNS)
        forbidden = [list(p) for p in instance.get("forbidden_pairs", [])]
        n_rows = max(len(people), MAX_ROWS) + 1
    example = instance is None
    sheet_p = _sheet(book, "Participants", PARTICIPANT_COLUMNS, people, example=example)
    sheet_c = _sheet(book, "Cohorts", COHORT_COLUMNS, cohorts, example=example)
    _rules_sheet(book, instance)
    _sheet(book, "Locks", LOCK_COLUMNS, locks)
    _sheet(book, "Forbidden pairs", FORBIDDEN_COLUMNS, forbidden)
    _notes_sheet(book, filled=not example)

    cohort_ids = f"Cohorts!$A$2:$A${max(len(cohorts), 50) + 1}"
    # Every drop-down offers the usual values and warns on others without refusing them: the
    # reader accepts more spellings than a list can show ("PL", "Both", "Face to face").
    _dropdown(sheet_p, PARTICIPANT_COLUMNS, "role", '"Patient leader,Clinician,Manager"', n_rows)
    _dropdown(
        sheet_p,
        PARTICIPANT_COLUMNS,
        "attendance",
        '"In person,Online,In person; Online"',
        n_rows,
    )
    _dropdown(
        sheet_p,
        PARTICIPANT_COLUMNS,
        "organisation_type",
        '"' + ",".join(ORGANISATION_TYPES) + '"',
        n_rows,
        strict=False,
    )
    _dropdown(sheet_p, PARTICIPANT_COLUMNS, "status", '"Active,Withdrawn"', n_rows)
    # Cohort lists may hold several IDs ("c1; c2"): the drop-down offers one, never refuses.
    for fld in ("available_cohorts", "preferred_cohorts"):
        _dropdown(sheet_p, PARTICIPANT_COLUMNS, fld, cohort_ids, n_rows, strict=False)
    _dropdown(sheet_c, COHORT_COLUMNS, "mode", '"In person,Online,Blended"', 200)
    return book


def _flat_cohorts(cohorts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(c, set_size=c.get("set_size") or {}) for c in cohorts]


def _sheet(
    book: Workbook,
    title: str,
    columns: tuple[Column, ...],
    rows: list[list[Any]],
    *,
    example: bool = False,
) -> Any:
    ws = book.create_sheet(title)
    ws.append([c.header for c in columns])
    for row in rows:
        ws.append([sheet_cell(ws, v) for v in row])
    _style_header(ws, [c.header for c in columns], rows)
    for i, col in enumerate(columns, start=1):
        head = ws.cell(row=1, column=i)
        if col.required:
            head.fill, head.font = REQUIRED_FILL, REQUIRED_FONT
        else:
            head.fill, head.font = HEADER_FILL, OPTIONAL_FONT
        head.comment = None
    if example:
        for row_cells in ws.iter_rows(min_row=2, max_row=len(rows) + 1):
            for cell in row_cells:
                cell.font = EXAMPLE_FONT
    return ws


def _style_header(ws: Worksheet, headers: list[str], rows: list[list[Any]]) -> None:
    for i, text in enumerate(headers, start=1):
        cell = ws.cell(row=1, column=i)
        cell.fill = HEADER_FILL
        cell.font = Font(bold=True)
        width = max([len(text), *(len(str(r[i - 1] or "")) for r in rows[:200])]) + 2
        ws.column_dimensions[get_column_letter(i)].width = min(max(width, 10), 50)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{max(len(rows) + 1, 2)}"


def _dropdown(
    ws: Worksheet,
    columns: tuple[Column, ...],
    fld: str,
    formula: str,
    n_rows: int,
    *,
    strict: bool = True,
) -> None:
    """A drop-down list on one column. It never refuses a value: ``strict`` warns (Excel's
    "warning" style: keep it or change it), otherwise it only informs."""
    letter = get_column_letter(next(i for i, c in enumerate(columns, 1) if c.field == fld))
    dv = DataValidation(
        type="list",
        formula1=formula,
        allow_blank=True,
        showErrorMessage=True,
        errorStyle="warning" if strict else "information",
        errorTitle="Value not in the list",
        error=(
            "Not one of the listed values. matcher also reads other spellings (see the Notes "
            "sheet); choose Yes to keep it, No to change it."
        ),
    )
    ws.add_data_validation(dv)
    dv.add(f"{letter}2:{letter}{n_rows}")


def _rules_sheet(book: Workbook, instance: dict[str, Any] | None) -> None:
    ws = book.create_sheet("Rules")
    ws.append(["Rule", "Value"])
    rows: list[list[Any]] = []
    for rule in RULE_KEYS:
        value: Any = rule.example if instance is None else None
        if instance is not None:
            head, _, tail = rule.field.partition(".")
            node = instance.get(head)
            value = node.get(tail) if tail and isinstance(node, dict) else node
            if isinstance(value, str) and rule.kind == "choice":
                value = value.replace("_", " ").capitalize()
        rows.append([rule.label, value])
    for row in rows:
        ws.append([sheet_cell(ws, v) for v in row])
    _style_header(ws, ["Rule", "Value"], rows)


def _notes_sheet(book: Workbook, *, filled: bool = False) -> None:
    ws = book.create_sheet("Notes")
    headers = ["Sheet", "Column", "Required", "What it means", "Example"]
    example = (
        "The sheets hold the intake as it was written out; edit the rows in place (set Status "
        "to Withdrawn rather than deleting a person, so that plans can say who withdrew)."
        if filled
        else f"Row 2 of Participants and Cohorts is an example, in grey (Name {EXAMPLE_NAME!r}): "
        "overwrite every cell of it or delete it; `matcher validate` refuses it left in place."
    )
    rows: list[list[Any]] = [
        ["All", "", "", "Row 1 holds the headers (any case, spaces or punctuation). "
         f"{example} Empty rows are skipped. Lists: separate items with ; or , or line breaks. "
         "Dates: dd/mm/yyyy, yyyy-mm-dd or real Excel dates. Headers in dark blue with white "
         "text are required columns; light blue ones are optional. Drop-down lists offer the "
         "usual values and only warn on others.", ""],
        ["Rules", "Intake name", "", "Leave it empty to name the intake after the file "
         "(intake.xlsx is intake). Plans carry the name and a fingerprint of the intake: "
         "`matcher report`, `explain` and `diff` refuse a plan made from another intake or an "
         "older version of this one.", ""],
    ]  # fmt: skip
    for sheet, columns in (
        ("Participants", PARTICIPANT_COLUMNS),
        ("Cohorts", COHORT_COLUMNS),
        ("Locks", LOCK_COLUMNS),
        ("Forbidden pairs", FORBIDDEN_COLUMNS),
    ):
        for c in columns:
            rows.append([sheet, c.header, "yes" if c.required else "no", c.note, c.example])
    for rule in RULE_KEYS:
        rows.append(["Rules", rule.label, "no", rule.note, rule.example])
    ws.append(headers)
    for row in rows:
        ws.append([sheet_cell(ws, v) for v in row])
    _style_header(ws, headers, [])
    for letter, width in zip("ABCDE", (16, 24, 10, 90, 26), strict=True):
        ws.column_dimensions[letter].width = width
    for row in ws.iter_rows(min_row=2):
        row[3].alignment = Alignment(wrap_text=True, vertical="top")
