"""Spreadsheets in: an XLSX workbook, or participants and cohorts CSV files, to an instance.

The layout (the sheets, their columns and what each cell may hold) is defined once here, in
:data:`PARTICIPANT_COLUMNS`, :data:`COHORT_COLUMNS`, :data:`LOCK_COLUMNS`,
:data:`FORBIDDEN_COLUMNS` and :data:`RULE_KEYS`; the template workbook
(:mod:`matcher.intake.template`) and ``docs/spreadsheets.md`` follow it.

Cells are read as people type them: headers without regard to case, spaces or punctuation (or
through a ``--mapping`` TOML file for a form export's question texts), roles and modes as words
("Patient leader", "In person"), yes/no, dates as real Excel dates, ISO ``2016-05-12`` or UK
``12/05/2016``, lists split on ``;``, ``,`` or line breaks, CSV in UTF-8 (with or without a
byte-order mark) or Windows-1252. Every problem is collected and reported at once, each with
its sheet, row number as the spreadsheet shows it (header = row 1) and column header; the
normal instance checks then run on the result and their problems are reported at the same
place. Messages never repeat a cell's text (a name typed in the wrong column must not end up in
a log): only IDs, headers and row numbers.

Reading is done by openpyxl and the standard :mod:`csv` module.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import logging
import re
import tomllib
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process

from matcher.contract.instance import SCHEMA_VERSION, Instance
from matcher.contract.plan_file import PLAN_SHEET
from matcher.errors import InvalidInstance, Problem
from matcher.intake import dates
from matcher.intake.json_file import check_instance_data, load_instance_bytes, parse_instance
from matcher.intake.source import Source, as_path, name_of
from matcher.intake.source import read_bytes as read_stream
from matcher.jsonio import parse_json, read_bytes
from matcher.text import visible

log = logging.getLogger("matcher")

XLSX_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls format
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")

# Limits, checked before any parsing (docs/spreadsheets.md, "Limits"). A 20,000-participant
# workbook is about 2 MB on disk and 15 MB unpacked, with 16 columns.
#: Largest spreadsheet file read (bytes), as for JSON instances.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Largest total size of a workbook's parts once unpacked (bytes).
MAX_UNPACKED = 128 * 1024 * 1024
#: Highest compression ratio of a part over 1 MB (deflate itself stops near 1,030 to 1; other
#: methods a zip may use go far beyond).
MAX_RATIO = 1_000
#: Most parts (files) inside a workbook.
MAX_PARTS = 2_000
#: Most rows read from one sheet (data beyond it is refused, never dropped).
MAX_ROWS = 100_000
#: Most columns read (a value beyond it is refused; empty formatted cells there are ignored).
MAX_COLUMNS = 1_000
#: Most cells (and shared strings) in the file's sheets.
MAX_CELLS = 2_000_000
#: Most cells walked once rows are padded to their last cell.
MAX_WALK = 50_000_000
#: Longest CSV cell (characters): the csv module's own field limit.
MAX_CSV_CELL = 131_072
#: Largest --mapping file (bytes) and its deepest nesting.
MAX_MAPPING_BYTES = 1024 * 1024
MAX_MAPPING_DEPTH = 4
#: Warnings about unknown columns listed one by one; the rest are counted.
MAX_WARNED_COLUMNS = 20


#: The Name of the template's example rows (Participants and Cohorts): reserved, so that an
#: example row left in place is refused with its row number instead of planned as real.
EXAMPLE_NAME = "EXAMPLE: delete this row"


@dataclass(frozen=True)
class Column:
    """One spreadsheet column: the instance field it fills and how its cells are read."""

    field: str  # record key; "a.b" for a nested one (set_size.min_pairs)
    header: str  # as the template writes it
    kind: str  # a key of _PARSERS
    required: bool = False
    aliases: tuple[str, ...] = ()
    note: str = ""
    example: str = ""


PARTICIPANT_COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "id", True, ("participant id", "applicant id"),
           "Unique reference for this person (letters and digits, e.g. pl01). Used everywhere "
           "else in the workbook to name them.", "pl01"),
    Column("name", "Name", "text", False, ("full name",),
           "Optional. Shown in the plan workbook and report for colleagues; never in logs, "
           "error messages or the JSON plan; dropped by --redact.", EXAMPLE_NAME),
    Column("email", "Email", "email", False, ("email address", "e-mail"),
           "Optional, like Name.", "alex@example.org"),
    Column("role", "Role", "role", True, ("participant role",),
           "Patient leader, Clinician or Manager. A pair is one patient leader with one "
           "clinician or manager.", "Patient leader"),
    Column("organisation", "Organisation", "text", True, ("organization", "employer"),
           "The organisation they belong to. Two pairs from one organisation never share an "
           "action-learning set. Spelling variants are compared ignoring case, spaces and "
           "punctuation; near misses are reported.", "hw-surrey"),
    Column("organisation_type", "Organisation type", "text", True, ("organization type",),
           "Kind of organisation (e.g. healthwatch, ccg, acute_ft): mixed within a set.",
           "healthwatch"),
    Column("system", "Local system", "text", True, ("system", "ics", "stp"),
           "Local system (ICS; STP footprint in 2016). Same-system pairs score higher.",
           "surrey-heartlands"),
    Column("interests", "Interests", "list", False, ("areas of interest",),
           "Topics they care about, separated by ; or , or line breaks.",
           "mental health; carers"),
    Column("project_topics", "Project topics", "list", False, ("project topic", "topics"),
           "Topics of the local project they bring (same separators).", "carers"),
    Column("project_description", "Project description", "description", False,
           ("project", "describe your project", "project summary", "your project",
            "local project", "project idea"),
           "Optional: the local project in their own words, a sentence or two. Projects alike "
           "in meaning score higher on project fit (a model on this computer; nothing is sent "
           "anywhere). Free text, treated like Name.",
           "Helping older people with dementia get home from hospital safely"),
    Column("available_cohorts", "Available cohorts", "ids_or_all", False,
           ("cohorts available", "available"),
           "Cohort IDs they can attend in full (every date). Empty means all cohorts.",
           "c1"),
    Column("unavailable_dates", "Dates I cannot attend", "date_spans", False,
           ("dates you cannot attend", "dates cannot attend", "unavailable dates",
            "dates unavailable", "dates not available", "cannot attend"),
           "Optional: dates they cannot make, as people type them (9 June; 9/6/2016; 9-12 June; "
           "9 June and 16 June). Cohorts with a session on one of them are ruled out; with no "
           "Available cohorts, the import works them out from these dates.",
           ""),
    Column("attendance", "Attendance", "modes", False, ("can attend", "modes"),
           "In person, Online, or both (In person; Online). Empty means both.",
           "In person; Online"),
    Column("partner", "Partner", "id_or_none", False, ("partner id", "pre-formed partner"),
           "ID of the partner they applied with (both rows must name each other). Empty if "
           "they applied alone.", ""),
    Column("avoid", "Avoid", "ids", False, ("do not pair with", "conflicts"),
           "IDs of people they must never be paired or grouped with.", ""),
    Column("preferred_cohorts", "Preferred cohorts", "ids", False, ("cohort preference",),
           "Cohort IDs they would prefer (a soft wish among the available ones).", "c1"),
    Column("status", "Status", "status", False, ("withdrawn",),
           "Active (default when empty) or Withdrawn. A withdrawn person takes no part.",
           "Active"),
)  # fmt: skip

COHORT_COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", "id", True, ("cohort id",),
           "Unique reference for the cohort (e.g. c1), used in Available cohorts.", "c1"),
    Column("name", "Name", "text", False, ("cohort name", "cohort"),
           "A name people recognise.", EXAMPLE_NAME),
    Column("sessions", "Sessions", "dates", True, ("session dates", "dates", "workshop dates"),
           "Every workshop date (dd/mm/yyyy or yyyy-mm-dd), separated by ; or line breaks. "
           "Attending a cohort means every date.", "12/05/2016; 16/06/2016"),
    Column("capacity_pairs", "Capacity (pairs)", "int", True, ("capacity",),
           "Most pairs the cohort can take (0 closes it).", "12"),
    Column("mode", "Mode", "cohort_mode", True, ("delivery", "format"),
           "In person, Online or Blended (blended needs people who can attend both ways).",
           "In person"),
    Column("set_size.min_pairs", "Min pairs per set", "int", False, ("min pairs",),
           "Fewest pairs in an action-learning set (default 3).", "3"),
    Column("set_size.max_pairs", "Max pairs per set", "int", False, ("max pairs",),
           "Most pairs in an action-learning set (default 4).", "4"),
    Column("venue", "Venue", "text", False, ("location",),
           "Where it meets (or 'online').", "Central London"),
)  # fmt: skip

LOCK_COLUMNS: tuple[Column, ...] = (
    Column("patient_leader", "Patient leader", "id", True, ("patient leader id",),
           "ID of the patient leader of a pair already agreed.", "pl19"),
    Column("partner", "Partner", "id", True, ("partner id", "professional"),
           "ID of their clinician or manager.", "pr20"),
    Column("cohort", "Cohort", "id_or_none", False, ("cohort id",),
           "Cohort the pair is kept in (empty: any).", "c1"),
)  # fmt: skip

FORBIDDEN_COLUMNS: tuple[Column, ...] = (
    Column("0", "Patient leader", "id", True, ("person", "first"),
           "One person of a pair never to be formed.", "pl20"),
    Column("1", "Partner", "id", True, ("other person", "second"),
           "The other person (they may still share a set).", "pr19"),
)  # fmt: skip


@dataclass(frozen=True)
class RuleKey:
    """One row of the Rules sheet: a key in column A, its value in column B."""

    field: str  # "name", "description", or "<block>.<name>"
    label: str
    kind: str
    note: str
    example: str


RULE_KEYS: tuple[RuleKey, ...] = (
    RuleKey("name", "Intake name", "text",
            "Name of the intake, shown on every plan (empty: the file's name, e.g. intake for "
            "intake.xlsx). A plan remembers it: a re-plan refuses a previous plan of another "
            "intake.", ""),
    RuleKey("description", "Description", "text", "Free text about the intake.", ""),
    RuleKey("rules.same_organisation", "Same organisation", "choice",
            "Pairing two people of one organisation: Allow, Avoid (default: scores 0 on that "
            "criterion) or Forbid.", "Avoid"),
    RuleKey("rules.local_system", "Local system", "choice",
            "Require (same system only), Prefer (default) or Ignore.", "Prefer"),
    RuleKey("rules.one_organisation_per_set", "One organisation per set", "choice",
            "Hard (default: never two pairs of one organisation in a set; also Yes) or Soft "
            "(allowed at a cost; also No).", "Hard"),
    RuleKey("rules.set_diversity", "Set diversity", "choice",
            "Total (default) or Least first (lift the least diverse set first).", "Total"),
    RuleKey("rules.min_score", "Minimum score", "number",
            "Lone applicants are paired only at or above this score (0 to 1, default 0).", "0"),
    RuleKey("rules.project_meaning", "Project meaning", "number",
            "Share of project fit taken by how alike two project descriptions are, when both "
            "people wrote one (0 to 1, default 0.5; the rest is shared project topics).", "0.5"),
    *(
        RuleKey(f"weights.{k}", f"Weight {label}", "number",
                f"Weight of the {label} criterion in the score (default {d}).", str(d))
        for k, label, d in (
            ("interests", "interests", 0.30),
            ("project", "project", 0.25),
            ("organisation", "organisation", 0.10),
            ("system", "system", 0.20),
            ("availability", "availability", 0.15),
        )
    ),
    *(
        RuleKey(f"diversity.{k}", f"Diversity {label}", "number",
                f"Weight of {label} in set diversity (default {d}).", str(d))
        for k, label, d in (
            ("organisation_type", "organisation type", 1.0),
            ("system", "system", 1.0),
            ("role_mix", "role mix", 0.5),
            ("interests", "interests", 1.0),
        )
    ),
)  # fmt: skip

#: Sheets: name -> (instance key, columns, required).
SHEETS: dict[str, tuple[str, tuple[Column, ...], bool]] = {
    "Participants": ("participants", PARTICIPANT_COLUMNS, True),
    "Cohorts": ("cohorts", COHORT_COLUMNS, True),
    "Locks": ("locks", LOCK_COLUMNS, False),
    "Forbidden pairs": ("forbidden_pairs", FORBIDDEN_COLUMNS, False),
}

ROLE_WORDS = {
    "patientleader": "patient_leader",
    "patient": "patient_leader",
    "pl": "patient_leader",
    "clinician": "clinician",
    "manager": "manager",
}
MODE_WORDS = {
    "inperson": "in_person",
    "facetoface": "in_person",
    "f2f": "in_person",
    "online": "online",
    "virtual": "online",
    "remote": "online",
    "blended": "blended",
    "hybrid": "blended",
}
BOTH_WORDS = {"both", "either", "any", "inpersonandonline", "inpersonoronline"}
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}
CHOICES = {
    "rules.same_organisation": ("allow", "avoid", "forbid"),
    "rules.local_system": ("require", "prefer", "ignore"),
    "rules.one_organisation_per_set": ("hard", "soft"),
    "rules.set_diversity": ("total", "least_first"),
}
_SPLIT = re.compile(r"[;,\r\n]+")
_UK_DATE = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})")


def header_key(text: str) -> str:
    """Headers and words compare without regard to case, spaces or punctuation."""
    return re.sub(r"[\W_]+", "", str(text).casefold())


class _CellError(ValueError):
    """A cell cannot be read; the message never holds the cell's text."""


# --------------------------------------------------------------------------- cell readers


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # an ID typed as 7 comes back from Excel as 7.0
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    return " ".join(str(v).split()) if "\n" not in str(v) else str(v).strip()


def _items(v: Any) -> list[str]:
    if isinstance(v, str):
        return [" ".join(s.split()) for s in _SPLIT.split(v) if s.strip()]
    return [_text(v)]


_NOT_IN_ID = re.compile(r"[;,\s]")


def _id(v: Any) -> str:
    text = _text(v)
    if _NOT_IN_ID.search(text) is None:  # the usual case, checked once
        return text
    if any(c in text for c in ";,\n"):
        raise _CellError("holds several values; one ID expected")
    if any(c.isspace() for c in text):
        # Most likely a name typed where an ID belongs: say so without repeating it.
        raise _CellError("not an ID (IDs have no spaces): write the ID, not a name")
    return text


def _id_list(v: Any) -> list[str]:
    return [_id(item) for item in _items(v)]


def _role(v: Any) -> str:
    role = ROLE_WORDS.get(header_key(_text(v)))
    if role is None:
        raise _CellError("not a role: write Patient leader, Clinician or Manager")
    return role


def _mode(v: Any, allowed: tuple[str, ...]) -> str:
    mode = MODE_WORDS.get(header_key(v))
    if mode not in allowed:
        words = {"in_person": "In person", "online": "Online", "blended": "Blended"}
        raise _CellError(f"not a mode: write {' or '.join(words[m] for m in allowed)}")
    return mode


def _modes(v: Any) -> list[str]:
    if header_key(_text(v)) in BOTH_WORDS:
        return ["in_person", "online"]
    parts = re.split(r"[;,\r\n]+|\s+(?:and|or|&)\s+", _text(v))
    out: list[str] = []
    for part in (p for p in parts if p.strip()):
        if header_key(part) in BOTH_WORDS:
            return ["in_person", "online"]
        mode = _mode(part, ("in_person", "online"))
        if mode not in out:
            out.append(mode)
    return out


def _status(v: Any) -> str:
    word = header_key(_text(v))
    if word in ("active", "") or word in NO:
        return "active"
    if word in ("withdrawn", "withdrew", "withdraw") or word in YES:
        return "withdrawn"
    raise _CellError("write Active or Withdrawn")


def _date(v: Any) -> str:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, int | float) and not isinstance(v, bool) and 20_000 < v < 80_000:
        from openpyxl.utils.datetime import from_excel  # lazy: openpyxl; a date stored as a number

        day = from_excel(v)
        if isinstance(day, dt.datetime):
            return day.date().isoformat()
    text = _text(v).strip()
    uk = _UK_DATE.fullmatch(text)
    try:
        if uk:
            day_, month, year = (int(x) for x in uk.groups())
            return dt.date(year, month, day_).isoformat()
        return dt.datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        raise _CellError(
            "not a date: write dd/mm/yyyy (12/05/2016) or yyyy-mm-dd (2016-05-12)"
        ) from None


_DATE_LIKE = re.compile(r"[0-9/.\- ]{1,12}")


def _dates(v: Any) -> list[str]:
    if not isinstance(v, str):
        return [_date(v)]
    parts = [part for part in _SPLIT.split(v) if part.strip()]
    out = []
    for n, part in enumerate(parts, start=1):
        try:
            out.append(_date(part))
        except _CellError as exc:
            if len(parts) == 1:
                raise
            # Point at the date inside the cell: its position, and its text when it is only
            # digits and separators (nothing personal or unsafe to print).
            shown = f" {part.strip()!r}" if _DATE_LIKE.fullmatch(part.strip()) else ""
            raise _CellError(f"date {n} of {len(parts)}{shown}: {exc}") from None
    return out


def _date_spans(v: Any) -> list[dates.Span]:
    """Dates someone cannot attend, as typed; resolved against the cohorts' sessions once the
    Cohorts sheet is read (:func:`_availability`)."""
    try:
        return dates.parse_dates(v)
    except dates.DateError as exc:
        raise _CellError(str(exc)) from None


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise _CellError("expected a whole number")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    text = _text(v).strip()
    if re.fullmatch(r"[+-]?\d{1,9}", text):
        return int(text)
    raise _CellError("expected a whole number")


def _number(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    try:
        return float(_text(v).strip())
    except ValueError:
        raise _CellError("expected a number") from None


def _email(v: Any) -> str:
    text = _text(v).strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        raise _CellError("not an email address")
    return text


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "id": _id,
    "id_or_none": _id,
    "text": _text,
    "email": _email,
    "role": _role,
    "status": _status,
    "list": _items,
    "ids": _id_list,
    "ids_or_all": _id_list,
    "modes": _modes,
    "cohort_mode": lambda v: _mode(_text(v), ("in_person", "online", "blended")),
    "dates": _dates,
    "date_spans": _date_spans,
    "description": _text,
    "int": _int,
    "number": _number,
}

#: Value for an empty cell (absent key = field left to its default).
_EMPTY: dict[str, Any] = {
    "id_or_none": None,
    "list": [],
    "ids": [],
    "ids_or_all": None,
    "description": None,  # the column is there, the cell empty: said in a warning
}


# --------------------------------------------------------------------------- mapping file


@dataclass(frozen=True)
class Mapping:
    """A ``--mapping`` TOML file: other header texts per sheet, and other sheet names::

    [sheets]
    participants = "Form responses 1"

    [participants]
    "What is your role on the programme?" = "Role"
    "Your organisation" = "Organisation"
    """

    sheets: dict[str, str] = field(default_factory=dict)  # our sheet -> their sheet name
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # our sheet -> theirs->ours


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping file; raises :class:`InvalidInstance` naming each bad entry."""
    path = Path(path)
    raw = read_bytes(path, limit=MAX_MAPPING_BYTES, what="a mapping file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInstance(
            str(path), [Problem("$", f"not UTF-8 text (byte {exc.start}); save it as UTF-8")]
        ) from None
    # A mapping is two levels deep; brackets nested deeper are refused before parsing (the
    # TOML parser recurses and a deeply nested array would exhaust the stack).
    if _toml_depth(text) > MAX_MAPPING_DEPTH:
        raise InvalidInstance(
            str(path),
            [Problem("$", f"nested more than {MAX_MAPPING_DEPTH} levels deep; a mapping is "
                          "tables of \"their header\" = \"our header\" lines")],
        )  # fmt: skip
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInstance(
            str(path), [Problem("$", f"not valid TOML: {visible(str(exc), 120)}")]
        ) from None
    except RecursionError:
        raise InvalidInstance(str(path), [Problem("$", "nested too deeply")]) from None
    problems: list[Problem] = []
    sheet_keys = {header_key(s): s for s in SHEETS}
    sheets: dict[str, str] = {}
    headers: dict[str, dict[str, str]] = {}
    for key, value in doc.items():
        if key == "sheets" and isinstance(value, dict):
            for ours, theirs in value.items():
                name = sheet_keys.get(header_key(ours))
                if name is None or not isinstance(theirs, str):
                    problems.append(Problem(f"sheets.{ours}", "unknown sheet or not a string"))
                else:
                    sheets[name] = theirs
            continue
        name = sheet_keys.get(header_key(key))
        if name is None or not isinstance(value, dict):
            problems.append(
                Problem(key, f"unknown table; use [sheets] or one of: {', '.join(SHEETS)}")
            )
            continue
        known = {header_key(c.header): c.header for c in SHEETS[name][1]}
        known.update({header_key(c.field): c.header for c in SHEETS[name][1]})
        table: dict[str, str] = {}
        for theirs, ours in value.items():
            target = known.get(header_key(ours)) if isinstance(ours, str) else None
            if target is None:
                problems.append(
                    Problem(
                        f"{key}.{theirs!r}",
                        f"maps onto no column of {name} (columns: "
                        f"{', '.join(c.header for c in SHEETS[name][1])})",
                    )
                )
            else:
                table[header_key(theirs)] = target
        headers[name] = table
    if problems:
        raise InvalidInstance(str(path), problems)
    return Mapping(sheets, headers)


def _toml_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` in ``text`` outside quoted strings, stopping once
    past the limit (one pass, no recursion)."""
    depth = deepest = 0
    quote = ""
    for ch in re.sub(r"[^\[\]{}\"'\n\\]+", "", text):
        if quote:
            if ch == quote or ch == "\n":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_MAPPING_DEPTH:
                break
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return deepest


# --------------------------------------------------------------------------- reading rows


@dataclass
class _Reader:
    """Collects records, their spreadsheet coordinates and every problem of one import."""

    source: str
    mapping: Mapping
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: (instance key, record index) -> (sheet, row); (sheet, field) -> header as written
    rows: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    headers: dict[tuple[str, str], str] = field(default_factory=dict)
    #: A sheet or file was not read to its end (damaged, or past a limit).
    cut: bool = False

    def problem(self, where: str, message: str, ids: tuple[str, ...] = ()) -> None:
        self.problems.append(Problem(where, message, ids))

    def records(
        self, sheet: str, label: str, table: Iterator[tuple[Any, ...]]
    ) -> list[dict[str, Any]]:
        """Records of one sheet (``label``: its name in the file, for messages)."""
        key, columns, required = SHEETS[sheet]
        header_row = next(table, None)
        if header_row is None or all(_blank(v) for v in header_row):
            if required:
                self.problem(f"{label}!row 1", "the sheet is empty: row 1 must hold the headers")
            return []
        index = self._columns(sheet, label, columns, header_row)
        if index is None:
            return []
        out: list[dict[str, Any]] = []
        for row_no, row in enumerate(table, start=2):
            if all(_blank(v) for v in row):
                continue
            record: dict[str, Any] = {}
            rid = ""
            for col, pos in index:
                value = row[pos] if pos < len(row) else None
                if _blank(value):
                    if col.required:
                        self.problem(
                            self._cell(sheet, label, row_no, col),
                            "empty; this column is required",
                            _ids(rid),
                        )
                    elif col.kind in _EMPTY:
                        _put(record, col.field, _EMPTY[col.kind])
                    continue
                try:
                    parsed = _PARSERS[col.kind](value)
                except _CellError as exc:
                    self.problem(self._cell(sheet, label, row_no, col), str(exc), _ids(rid))
                    continue
                if col.field == "id":
                    rid = parsed
                _put(record, col.field, parsed)
            if header_key(str(record.get("name", ""))) == header_key(EXAMPLE_NAME):
                what = "person" if key == "participants" else "cohort"
                self.problem(
                    f"{label}!row {row_no}",
                    f"this is the template's example row (Name {EXAMPLE_NAME!r}): delete the "
                    f"row, or overwrite every cell with a real {what}, Name included",
                    _ids(rid),
                )
            self.rows[(key, len(out))] = (label, row_no)
            out.append(record)
        return out

    def _cell(self, sheet: str, label: str, row_no: int, col: Column) -> str:
        return f"{label}!row {row_no}, column {self.headers[(sheet, col.field)]!r}"

    def _columns(
        self, sheet: str, label: str, columns: tuple[Column, ...], header_row: tuple[Any, ...]
    ) -> list[tuple[Column, int]] | None:
        names: dict[str, Column] = {}
        for col in columns:
            for text in (col.header, col.field, *col.aliases):
                names.setdefault(header_key(text), col)
        for theirs, ours in self.mapping.headers.get(sheet, {}).items():
            names[theirs] = next(c for c in columns if c.header == ours)
        found: dict[str, int] = {}
        unknown: list[str] = []
        for pos, cell in enumerate(header_row):
            if _blank(cell):
                continue
            text = _text(cell)
            match = names.get(header_key(text))
            if match is None:
                unknown.append(text)
            elif match.field in found:
                self.problem(
                    f"{label}!row 1, column {visible(text, 60)!r}",
                    f"a second column for {match.header!r}; keep one",
                )
            else:
                found[match.field] = pos
                self.headers[(sheet, match.field)] = visible(text, 60)
        unused: list[str] = []
        for text in unknown:
            near = process.extractOne(
                header_key(text)[:200], list(names), scorer=fuzz.ratio, score_cutoff=85
            )
            if near is not None and names[near[0]].field not in found:
                self.problem(
                    f"{label}!row 1, column {visible(text, 60)!r}",
                    f"unknown column; did you mean {names[near[0]].header!r}?",
                )
            else:
                unused.append(text)
        if unused:
            # One warning per sheet, its columns cut and counted like problems.
            shown = ", ".join(repr(visible(t, 40)) for t in unused[:MAX_WARNED_COLUMNS])
            more = len(unused) - MAX_WARNED_COLUMNS
            self.warnings.append(
                f"{label}: {len(unused):,} column{'s' if len(unused) != 1 else ''} not used "
                f"(unknown header{'s' if len(unused) != 1 else ''}): {shown}"
                + (f" and {more:,} more" if more > 0 else "")
            )
        ok = True
        for col in columns:
            self.headers.setdefault((sheet, col.field), col.header)
            if col.required and col.field not in found:
                self.problem(
                    f"{label}!row 1",
                    f"no column {col.header!r} (headers are matched ignoring case, spaces and "
                    "punctuation; use --mapping for other header texts)",
                )
                ok = False
        return [(c, found[c.field]) for c in columns if c.field in found] if ok else None

    def rules(self, label: str, table: Iterator[tuple[Any, ...]], data: dict[str, Any]) -> None:
        """The Rules sheet: key/value rows (a header row ``Rule | Value`` is allowed)."""
        keys = {header_key(r.label): r for r in RULE_KEYS}
        keys.update({header_key(r.field): r for r in RULE_KEYS})
        for row_no, row in enumerate(table, start=1):
            if all(_blank(v) for v in row):
                continue
            name = _text(row[0]) if row and not _blank(row[0]) else ""
            value = row[1] if len(row) > 1 else None
            if row_no == 1 and header_key(name) in ("rule", "setting", "key"):
                continue
            where = f"{label}!row {row_no}, column 'B'"
            rule = keys.get(header_key(name))
            if rule is None:
                self.problem(
                    f"{label}!row {row_no}, column 'A'",
                    f"unknown rule; the Rules sheet knows: {', '.join(r.label for r in RULE_KEYS)}",
                )
                continue
            if _blank(value):
                continue
            try:
                parsed = self._rule_value(rule, value)
            except _CellError as exc:
                self.problem(where, f"{rule.label}: {exc}")
                continue
            _put(data, rule.field, parsed)
            self.rows[(rule.field, 0)] = (label, row_no)

    @staticmethod
    def _rule_value(rule: RuleKey, value: Any) -> Any:
        if rule.kind == "text":
            return _text(value)
        if rule.kind == "number":
            return _number(value)
        word = header_key(_text(value))
        if rule.field == "rules.one_organisation_per_set":
            word = "hard" if word in YES else "soft" if word in NO else word
        for choice in CHOICES[rule.field]:
            if header_key(choice) == word:
                return choice
        raise _CellError(f"write one of: {', '.join(CHOICES[rule.field])}")

    def rows_in(self, message: str) -> str:
        """``message`` with the records it names ("also at participants[15]") as the
        spreadsheet shows them ("also at Participants!row 17"): never an internal index."""

        def row(m: re.Match[str]) -> str:
            origin = self.rows.get((m.group(1), int(m.group(2))))
            return f"{origin[0]}!row {origin[1]}" if origin else m.group(0)

        return re.sub(r"\b(participants|cohorts|locks|forbidden_pairs)\[(\d+)\]", row, message)

    def where(self, path: str) -> str:
        """Translate a JSON path of the instance checks into sheet, row and column."""
        m = re.match(r"^(participants|cohorts|locks|forbidden_pairs)\[(\d+)\](?:\(id [^)]*\))?"
                     r"(?:\.([a-z_]+(?:\.[a-z_]+)?))?", path)  # fmt: skip
        if m:
            key, index, fld = m.group(1), int(m.group(2)), m.group(3)
            origin = self.rows.get((key, index))
            if origin is not None:
                sheet = next(s for s, spec in SHEETS.items() if spec[0] == key)
                out = f"{origin[0]}!row {origin[1]}"
                if fld:
                    column = self.headers.get((sheet, fld))
                    column = column or self.headers.get((sheet, fld.split(".")[0]), fld)
                    out += f", column {column!r}"
                return out
        for (fld, _), origin in self.rows.items():
            if path == fld:
                return f"{origin[0]}!row {origin[1]}, column 'B'"
        return path


def _ids(rid: str) -> tuple[str, ...]:
    return (rid,) if rid else ()


def _put(record: dict[str, Any], dotted: str, value: Any) -> None:
    head, _, tail = dotted.partition(".")
    if tail:
        record.setdefault(head, {})[tail] = value
    else:
        record[head] = value


def _finish(reader: _Reader, data: dict[str, Any]) -> dict[str, Any]:
    """Instance checks on the records, problems placed back in the sheets; raises if any."""
    if "forbidden_pairs" in data:
        data["forbidden_pairs"] = [[r.get("0"), r.get("1")] for r in data["forbidden_pairs"]]
    _availability(reader, data)
    _descriptions(reader, data)
    # A missing sheet or column leaves nothing sound to check; otherwise the instance checks
    # run too, each problem placed in its sheet, row and column (once per place).
    if not reader.cut and not any(
        p.path.endswith("!row 1") or p.path.startswith("sheet") for p in reader.problems
    ):
        seen = {p.path for p in reader.problems}
        for p in check_instance_data(data):
            where = reader.where(p.path)
            if where not in seen:
                reader.problem(where, reader.rows_in(p.message), p.ids)
    if reader.problems:
        raise InvalidInstance(reader.source, reader.problems)
    return data


def _availability(reader: _Reader, data: dict[str, Any]) -> None:
    """Dates people cannot attend, against the cohorts' sessions: the dates resolved (a missing
    year from the sessions), ``available_cohorts`` worked out where the row gives none (a
    cohort means all its sessions), and warnings for a date that is no session of any cohort,
    an explicit cohort the dates rule out, and anyone left with no cohort at all."""
    cohorts = [c for c in data.get("cohorts", []) if isinstance(c.get("id"), str)]
    sessions = {c["id"]: [dt.date.fromisoformat(d) for d in c.get("sessions", [])] for c in cohorts}
    every_session = {d for days in sessions.values() for d in days}
    for i, person in enumerate(data.get("participants", [])):
        spans = person.get("unavailable_dates")
        if spans is None:
            continue
        pid = person.get("id", "?")
        where = reader.where(f"participants[{i}].unavailable_dates")
        try:
            off = dates.resolve(spans, every_session)
        except dates.DateError as exc:
            reader.problem(where, str(exc), _ids(pid))
            del person["unavailable_dates"]
            continue
        if not off:  # "none", "n/a": no date, as if the cell were empty
            del person["unavailable_dates"]
            continue
        person["unavailable_dates"] = [d.isoformat() for d in off]
        if every_session:
            stray = [d for d in off if d not in every_session]
            # A range ("9-12 June") covers days between sessions on purpose: only the days
            # typed alone are near misses.
            typed = {s.first for s in spans if s.first == s.last}
            stray_typed = [d for d in stray if any(_same_day(t, d) for t in typed)]
            if stray_typed:
                reader.warnings.append(
                    f"{where} ({pid}): {_days(stray_typed)} "
                    f"{'is' if len(stray_typed) == 1 else 'are'} not a session date of any "
                    "cohort (check the date: it rules nothing out)"
                )
        clash = {cid: [d for d in days if d in set(off)] for cid, days in sessions.items()}
        listed = person.get("available_cohorts")
        if listed is None:
            person["available_cohorts"] = [c["id"] for c in cohorts if not clash[c["id"]]]
        else:
            for cid in listed:
                if clash.get(cid):
                    reader.warnings.append(
                        f"{where} ({pid}): {cid} is listed in Available cohorts but its "
                        f"session on {_days(clash[cid])} is a date they cannot attend: "
                        f"{cid} is ruled out"
                    )
        modes = set(person.get("attendance") or ("in_person", "online"))
        why: list[str] = []
        for c in cohorts:
            cid = c["id"]
            if clash[cid]:
                why.append(f"{cid} ({_days(clash[cid])})")
            elif listed is not None and cid not in listed:
                why.append(f"{cid} (not in Available cohorts)")
            elif c.get("mode") == "blended" and modes != {"in_person", "online"}:
                why.append(f"{cid} (blended; they attend one way only)")
            elif c.get("mode") in ("in_person", "online") and c["mode"] not in modes:
                why.append(f"{cid} ({c['mode'].replace('_', ' ')}; they cannot attend so)")
        if cohorts and len(why) == len(cohorts):
            reader.warnings.append(
                f"{where} ({pid}): can attend no cohort: {pid} cannot attend " + "; ".join(why)
            )


def _same_day(typed: dates.Day, day: dt.date) -> bool:
    return typed.day == day.day and typed.month == day.month


def _days(days: list[dt.date]) -> str:
    return ", ".join(f"{d.day} {d:%B %Y}" for d in days)


def _descriptions(reader: _Reader, data: dict[str, Any]) -> None:
    """Warnings (never errors) for project descriptions that cannot say much: empty, or one
    word. The text itself is never repeated."""
    people = data.get("participants", [])
    if not any("project_description" in p for p in people):
        return  # no such column
    empty: list[str] = []
    for i, person in enumerate(people):
        text = person.get("project_description")
        pid = person.get("id", "?")
        if text is None or not str(text).strip():
            person.pop("project_description", None)
            if person.get("status") != "withdrawn":
                empty.append(pid)
        elif len(str(text).split()) == 1:
            reader.warnings.append(
                f"{reader.where(f'participants[{i}].project_description')} ({pid}): the "
                "project description is one word; a sentence about the project matches better"
            )
    if empty:
        shown = ", ".join(empty[:10]) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        reader.warnings.append(
            f"Participants: no project description for {len(empty)} "
            f"{'person' if len(empty) == 1 else 'people'} ({shown}): their project fit uses "
            "their project topics only"
        )


def _skeleton(name: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "name": name}


# --------------------------------------------------------------------------- workbooks


_DTD = (b"<!DOCTYPE", b"<!ENTITY", "<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))
_ROW_OR_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)[\s/>]")


#: What to do with a workbook that cannot be read.
_SAVE_AGAIN = ": open it in Excel or LibreOffice and save it as an Excel workbook (.xlsx)"


def _refuse(source: str, message: str) -> InvalidInstance:
    return InvalidInstance(source, [Problem("$", message)])


def _inspect_zip(raw: bytes, source: str) -> dict[str, str]:
    """Check a workbook's zip container before any XML is parsed: the number of parts, their
    unpacked size and compression ratio, no DTD (entity expansion, external entities) in any
    XML part, and at most MAX_COLUMNS cells in a row and MAX_CELLS cells in all in the sheet
    parts. Raises :class:`InvalidInstance` for the container; returns {part: problem} for
    sheet parts (reported with the sheet's name once it is known)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise _refuse(
            source, "not a readable XLSX workbook (a damaged zip archive)" + _SAVE_AGAIN
        ) from None
    sheets: dict[str, str] = {}
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_PARTS:
            raise _refuse(
                source, f"a workbook of {len(infos):,} parts; at most {MAX_PARTS:,} are read"
            )
        unpacked = sum(i.file_size for i in infos)
        if unpacked > MAX_UNPACKED:
            raise _refuse(
                source,
                f"unpacks to {unpacked / 2**20:,.0f} MB; at most {MAX_UNPACKED // 2**20} MB "
                "are read (is it an intake workbook?)",
            )
        for info in infos:
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 2**20 and ratio > MAX_RATIO:
                raise _refuse(
                    source,
                    f"part {visible(info.filename, 80)} is compressed {ratio:,.0f} to 1 (at most "
                    f"{MAX_RATIO} to 1 is read): not a workbook a spreadsheet program wrote",
                )
        cells = 0
        for info in infos:
            name = info.filename
            if not name.lower().endswith((".xml", ".rels", ".vml")) or info.is_dir():
                continue
            try:
                body = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError):
                raise _refuse(
                    source, f"part {visible(name, 80)} is damaged (cannot be unpacked)"
                ) from None
            if any(mark in body for mark in _DTD):
                raise _refuse(
                    source,
                    f"part {visible(name, 80)} declares a DTD or entities (<!DOCTYPE/<!ENTITY), "
                    "which no spreadsheet program writes; refused",
                )
            if name.endswith("sharedStrings.xml") and body.count(b"si>") > 2 * MAX_CELLS:
                raise _refuse(source, f"more than {MAX_CELLS:,} shared strings; refused")
            if name.startswith("xl/worksheets/"):
                problem = _count_cells(body, cells)
                if isinstance(problem, str):
                    sheets[name] = problem
                else:
                    cells = problem
                if cells > MAX_CELLS:
                    raise _refuse(source, f"more than {MAX_CELLS:,} cells in its sheets; refused")
    return sheets


def _count_cells(body: bytes, cells: int) -> int | str:
    """``cells`` plus the cells of one sheet part, or the problem that stops it: more than
    MAX_ROWS row elements, or a row of more than four times MAX_COLUMNS cells."""
    in_row = rows = 0
    for m in _ROW_OR_CELL.finditer(body):
        if m.group(1) == b"row":
            in_row = 0
            rows += 1
            if rows > MAX_ROWS + 1:
                return f"more than {MAX_ROWS:,} rows; at most {MAX_ROWS:,} are read"
            continue
        in_row += 1
        cells += 1
        if in_row > MAX_COLUMNS * 4:
            return (
                f"a row holds more than {MAX_COLUMNS * 4:,} cells; at most {MAX_COLUMNS:,} "
                "columns are read"
            )
        if cells > MAX_CELLS:
            break
    return cells


@dataclass
class _Budget:
    """Cells walked so far across a workbook's sheets (padding included)."""

    cells: int = 0


def _sheet_rows(ws: Any, label: str, reader: _Reader, budget: _Budget) -> Iterator[tuple[Any, ...]]:
    """The rows of a read-only sheet, every one of them whatever its declared ``<dimension>``
    says (openpyxl trusts it and would drop rows and columns outside it), at most MAX_COLUMNS
    wide. A value beyond MAX_ROWS or MAX_COLUMNS, more than MAX_CELLS cells, or a damaged part
    (bad XML, a shared-string index out of range, text in a number cell) records a problem
    naming the sheet and ends the sheet: nothing is silently dropped."""
    ws.reset_dimensions()
    rows = ws.iter_rows(values_only=True)
    row_no = 0
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception:  # openpyxl and the XML parser raise many kinds
            reader.problem(
                f"{label}!row {row_no + 1}",
                "the sheet is damaged and cannot be read; open the "
                "workbook in Excel, save it again and retry",
            )
            reader.cut = True
            return
        row_no += 1
        budget.cells += len(row)
        if budget.cells > MAX_WALK:
            reader.problem(
                f"{label}!row {row_no}", f"more than {MAX_WALK:,} cells read in the workbook"
            )
            reader.cut = True
            return
        if len(row) > MAX_COLUMNS:
            extra = row[MAX_COLUMNS:]
            if any(not _blank(v) for v in extra):
                first = MAX_COLUMNS + next(i for i, v in enumerate(extra) if not _blank(v)) + 1
                reader.problem(
                    f"{label}!row {row_no}",
                    f"a value in column {first:,}; at most {MAX_COLUMNS:,} columns are read "
                    "(delete the stray cells)",
                )
                reader.cut = True
                return
            row = row[:MAX_COLUMNS]
        if row_no > MAX_ROWS and any(not _blank(v) for v in row):
            reader.problem(
                f"{label}!row {row_no}",
                f"data beyond row {MAX_ROWS:,}; at most {MAX_ROWS:,} rows are read",
            )
            reader.cut = True
            return
        yield row


def _pick_sheet(book: Any, wanted: str, reader: _Reader) -> Any | None:
    """The sheet named ``wanted`` (ignoring case, spaces and punctuation), or None. Two sheets
    with such names ("Participants" and "participants "), or a hidden or very hidden one, are
    refused: what is read must be what a person sees."""
    matches = [ws for ws in book.worksheets if header_key(ws.title) == header_key(wanted)]
    if len(matches) > 1:
        reader.problem(
            f"sheet {visible(wanted, 60)!r}",
            "several sheets have this name once case, spaces and punctuation are ignored ("
            + ", ".join(repr(visible(ws.title, 40)) for ws in matches)
            + "); keep one",
        )
        return None
    if not matches:
        return None
    ws = matches[0]
    state = getattr(ws, "sheet_state", "visible")
    if state != "visible":
        how = "very hidden (only a macro can show it)" if state == "veryHidden" else "hidden"
        reader.problem(
            f"sheet {visible(ws.title, 60)!r}",
            f"the sheet is {how}; unhide it (Format > Sheet > Unhide) or delete it, so that "
            "what is read is what you see",
        )
        return None
    return ws


def read_workbook(
    path: Source,
    *,
    mapping: Mapping | None = None,
    warnings: list[str] | None = None,
    raw: bytes | None = None,
    origins: dict[str, str] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The instance data of an XLSX workbook (sheets Participants, Cohorts; optional Rules,
    Locks, Forbidden pairs). ``raw``: the file's bytes when already read (a pipe is read once).
    The limits (MAX_FILE_BYTES, MAX_UNPACKED, MAX_RATIO, MAX_ROWS, MAX_COLUMNS, MAX_CELLS) are
    checked before any parsing. Raises :class:`InvalidInstance` with every problem. ``origins``
    receives where each record came from (``"locks[0]"`` -> ``"Locks!row 2"``), for messages
    about the instance written later (an infeasible lock is named by its row). ``path`` may
    be a binary stream (an upload), named ``name`` in messages (else its own name)."""
    from openpyxl import load_workbook  # lazy: openpyxl (~0.4 s), for workbooks only

    source = name_of(path, name)
    reader = _Reader(source, mapping or Mapping())
    if raw is None:
        raw = _read(path, what="an intake workbook")
    if len(raw) > MAX_FILE_BYTES:
        raise _refuse(source, f"file larger than {MAX_FILE_BYTES // 2**20} MB")
    damaged_parts = _inspect_zip(raw, source)
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file
        raise _refuse(
            source, "not a readable XLSX workbook (damaged, or another kind of file)" + _SAVE_AGAIN
        ) from None
    try:
        budget = _Budget()
        if PLAN_SHEET in book.sheetnames and not any(
            header_key(n) == "participants" for n in book.sheetnames
        ):
            raise InvalidInstance(
                source,
                [
                    Problem(
                        "$",
                        "this is a plan workbook written by matcher, not an intake: give the "
                        "intake (the workbook with Participants and Cohorts sheets, or its JSON) "
                        "here",
                    )
                ],
            )
        data = _skeleton(Path(source).stem)
        for sheet, (key, _, required) in SHEETS.items():
            wanted = reader.mapping.sheets.get(sheet, sheet)
            before = len(reader.problems)
            ws = _pick_sheet(book, wanted, reader)
            if ws is None:
                if required and len(reader.problems) == before:
                    reader.problem(
                        f"sheet {visible(wanted, 60)!r}",
                        f"missing (the workbook has: "
                        f"{', '.join(visible(n, 40) for n in book.sheetnames[:20])}); "
                        "`matcher template` writes a workbook with every sheet",
                    )
                continue
            label = visible(ws.title, 60)
            part = getattr(ws, "_worksheet_path", "")
            if part in damaged_parts:
                reader.problem(f"{label}!row 1", damaged_parts[part])
                continue
            data[key] = reader.records(sheet, label, _sheet_rows(ws, label, reader, budget))
        rules = _pick_sheet(book, "Rules", reader)
        if rules is not None:
            label = visible(rules.title, 60)
            if getattr(rules, "_worksheet_path", "") in damaged_parts:
                reader.problem(f"{label}!row 1", damaged_parts[rules._worksheet_path])
            else:
                reader.rules(label, _sheet_rows(rules, label, reader, budget), data)
    finally:
        book.close()
    out = _finish(reader, data)
    if warnings is not None:
        warnings.extend(reader.warnings)
    if origins is not None:
        origins.update(
            {f"{key}[{i}]": f"{sheet}!row {row}" for (key, i), (sheet, row) in reader.rows.items()}
        )
    return out


# --------------------------------------------------------------------------- CSV files


def _text_encoding(raw: bytes) -> str | None:
    """UTF-16 or UTF-32 recognised by a byte-order mark or by the zero bytes of ASCII text in
    them (Excel's "Unicode Text" is UTF-16 with a BOM); None for a byte-oriented encoding."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = raw[:4096]
    if len(head) >= 4 and head.count(0) > len(head) // 4:
        if head[0] == 0 and head[1] == 0:
            return "utf-32-be"
        if head[2] == 0 and head[3] == 0 and head[1] == 0:
            return "utf-32-le"
        return "utf-16-be" if head[0] == 0 else "utf-16-le"
    return None


def _read(path: Source, *, limit: int = MAX_FILE_BYTES, what: str = "an instance") -> bytes:
    """The bytes of a file (read once, at most ``limit``) or of a binary stream (an upload)."""
    file = as_path(path)
    if file is not None:
        return read_bytes(file, limit=limit, what=what)
    source = name_of(path)
    raw = read_stream(path, limit, source)
    if len(raw) > limit:
        raise _refuse(source, f"file larger than {limit // 2**20} MB; is it {what}?")
    return raw


def _decode(path: Source, reader: _Reader) -> str | None:
    label = visible(Path(name_of(path)).name, 80)
    try:
        raw = _read(path, limit=MAX_FILE_BYTES, what="a CSV file")
    except InvalidInstance as exc:
        reader.problems.extend(Problem(label, p.message) for p in exc.problems)
        return None
    if raw.startswith((XLSX_MAGIC, OLE2_MAGIC)):
        reader.problem(label, "this is a workbook, not a CSV file; give it as the main file")
        return None
    wide = _text_encoding(raw)
    if wide is not None:
        try:
            text = raw.decode(wide)
        except UnicodeDecodeError as exc:
            reader.problem(
                label,
                f"looks like {wide.upper()} text but is not valid (byte {exc.start}); save it "
                "as CSV UTF-8",
            )
            return None
        return text.removeprefix("\ufeff")
    if b"\x00" in raw:
        reader.problem(label, "holds NUL bytes: not a text file; save it as CSV UTF-8")
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    reader.problem(label, "not text in UTF-8 or Windows-1252; save it as CSV UTF-8")
    return None


def _csv_rows(text: str, label: str, reader: _Reader) -> Iterator[tuple[Any, ...]]:
    """The rows of a CSV text, read strictly: a quote that never closes, text after a closing
    quote or a cell over MAX_CSV_CELL characters records a problem naming the row (as a
    spreadsheet numbers it) and ends the file."""
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text, newline=""), dialect, strict=True)
    row_no = 0
    while True:
        line = rows.line_num
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            what = str(exc)
            if "field larger" in what:
                why = f"a cell of more than {MAX_CSV_CELL:,} characters"
            elif "end of data" in what:
                why = 'a quote (") opens a cell that never closes'
            else:
                why = f"not valid CSV ({visible(what, 80)})"
            reader.problem(
                f"{label}!row {row_no + 1} (line {line + 1})",
                f"{why}; check the quotes in this row",
            )
            reader.cut = True
            return
        row_no += 1
        yield tuple(row)


def read_csv_files(
    participants: Source,
    cohorts: Source,
    *,
    mapping: Mapping | None = None,
    rules: Source | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The instance data of a participants CSV and a cohorts CSV (and an optional rules CSV of
    key,value rows), each a path or a binary stream (named by its ``name`` attribute, else
    ``<upload>``). Raises :class:`InvalidInstance` with every problem."""
    reader = _Reader(name_of(participants), mapping or Mapping())
    data = _skeleton(Path(name_of(participants)).stem)
    for path, sheet in ((participants, "Participants"), (cohorts, "Cohorts")):
        text = _decode(path, reader)
        if text is not None:
            label = visible(Path(name_of(path)).name, 80)
            data[SHEETS[sheet][0]] = reader.records(sheet, label, _csv_rows(text, label, reader))
    if rules is not None:
        text = _decode(rules, reader)
        if text is not None:
            label = visible(Path(name_of(rules)).name, 80)
            reader.rules(label, _csv_rows(text, label, reader), data)
    out = _finish(reader, data)
    if warnings is not None:
        warnings.extend(reader.warnings)
    return out


# --------------------------------------------------------------------------- one loader


_CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def is_workbook(path: Source, raw: bytes | None = None) -> bool:
    """An XLSX workbook, by suffix or (whatever the name) by its zip signature (``raw``: the
    file's bytes when already read, so a pipe is never read twice; a stream is never read
    here)."""
    if Path(name_of(path)).suffix.lower() in WORKBOOK_SUFFIXES:
        return True
    if raw is not None:
        return raw.startswith(XLSX_MAGIC)
    file = as_path(path)
    if file is None:
        return False  # a stream is read by its reader, not here
    path = file
    if not path.is_file():  # a pipe or device: never read a byte here
        return False
    try:
        with path.open("rb") as fh:
            return fh.read(4) == XLSX_MAGIC
    except OSError:
        return False


def read_any(
    path: Source,
    *,
    cohorts: Source | None = None,
    mapping: str | Path | None = None,
    warnings: list[str] | None = None,
    origins: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Instance data from a JSON file, an XLSX workbook, or a participants CSV with ``cohorts``
    (dispatch on the suffix, then on the file's first bytes). The file is read once, so a pipe
    (`<(...)`, /dev/stdin) works like a file; so does a binary stream (an upload, its ``name``
    attribute giving the suffix)."""
    source = name_of(path)
    maps = load_mapping(mapping) if mapping is not None else None
    suffix = Path(source).suffix.lower()
    if suffix in _CSV_SUFFIXES:
        if cohorts is None:
            raise InvalidInstance(
                source,
                [Problem("$", "a participants CSV needs its cohorts: run `matcher import "
                              f"{visible(Path(source).name, 80)} --cohorts COHORTS.csv -o "
                              "intake.json` (or use a workbook: `matcher template`)")],
            )  # fmt: skip
        return read_csv_files(path, cohorts, mapping=maps, warnings=warnings)
    raw = _read(path)
    if is_workbook(path, raw):
        return read_workbook(path, mapping=maps, warnings=warnings, raw=raw, origins=origins)
    if suffix in (".xls", ".ods") or raw.startswith(OLE2_MAGIC):
        raise InvalidInstance(
            source,
            [Problem("$", "old .xls/.ods workbooks are not read; save it as .xlsx (Excel "
                          "Workbook) and try again")],
        )  # fmt: skip
    data = parse_json(raw, source)

    return parse_instance(data, source=source).model_dump(mode="json", exclude_unset=True)


def load_any(
    path: Source,
    *,
    cohorts: Source | None = None,
    mapping: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
    origins: dict[str, str] | None = None,
) -> Instance:
    """An :class:`Instance` from a JSON file, an XLSX workbook or a participants CSV (with
    ``cohorts``), each read once (a pipe works). Warnings (unused columns) go to ``warn``, else
    to the ``matcher`` logger. Raises :class:`~matcher.errors.InvalidInstance` listing every
    problem. ``path`` may be a binary stream (an upload; its ``name`` attribute, if any, gives
    the suffix)."""
    source = name_of(path)
    suffix = Path(source).suffix.lower()
    notes: list[str] = []
    if suffix in _CSV_SUFFIXES:
        data = read_any(path, cohorts=cohorts, mapping=mapping, warnings=notes, origins=origins)
    else:
        raw = _read(path)
        if not (is_workbook(path, raw) or suffix in (".xls", ".ods") or raw.startswith(OLE2_MAGIC)):
            return load_instance_bytes(raw, source)
        if is_workbook(path, raw):
            maps = load_mapping(mapping) if mapping is not None else None
            data = read_workbook(path, mapping=maps, warnings=notes, raw=raw, origins=origins)
        else:
            raise InvalidInstance(
                source,
                [Problem("$", "old .xls/.ods workbooks are not read; save it as .xlsx (Excel "
                              "Workbook) and try again")],
            )  # fmt: skip
    for note in notes:
        (warn or log.warning)(note)
    return Instance.model_validate(data)


def rows_of(records: Iterable[dict[str, Any]], columns: tuple[Column, ...]) -> list[list[Any]]:
    """Records (instance JSON) as spreadsheet rows in ``columns`` order: the inverse of the
    reader, used by the template's ``--from`` export."""
    out = []
    for r in records:
        row: list[Any] = []
        for col in columns:
            head, _, tail = col.field.partition(".")
            value = r.get(head)
            if tail:
                value = value.get(tail) if isinstance(value, dict) else None
            row.append(_cell(col, value))
        out.append(row)
    return out


def _cell(col: Column, value: Any) -> Any:
    words = {
        "patient_leader": "Patient leader",
        "clinician": "Clinician",
        "manager": "Manager",
        "in_person": "In person",
        "online": "Online",
        "blended": "Blended",
        "active": "Active",
        "withdrawn": "Withdrawn",
    }
    if value is None:
        return None
    if col.kind in ("dates", "date_spans"):
        return "; ".join(dt.date.fromisoformat(str(d)).strftime("%d/%m/%Y") for d in value)
    if isinstance(value, list):
        return "; ".join(words.get(str(v), str(v)) for v in value)
    if col.kind in ("role", "cohort_mode", "status"):
        return words.get(str(value), value)
    return value
