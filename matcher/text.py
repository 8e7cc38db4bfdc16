"""Showing untrusted text safely: on a terminal, in a CSV cell, in a JSON document.

Everything the input file holds (IDs, names, interests, paths given on the command line) is
untrusted: it may carry terminal escape sequences (ESC ... retitles the window, clears the
screen), carriage returns and bidi overrides that make a line read differently from its bytes,
rich markup (``[/]``) that would crash or restyle the table, spreadsheet formulas
(``=HYPERLINK(...)``), or simply 10 MB of text. This module is the one place that neutralises
each class:

- :func:`visible` — control characters (C0, DEL, C1, bidi and other format characters, line
  and paragraph separators, lone surrogates) become visible escapes such as ``\\x1b`` and
  ``\\u202e``; long values are cut with their length (``…(10,000,000 chars)``).
- :func:`cell` — a rich ``Text`` of :func:`visible`, so rich never reads markup in it.
- :func:`csv_cell` — a CSV value with a formula prefix (``=``, ``+``, ``-``, ``@``, tab, CR)
  neutralised by a leading single quote, as OWASP recommends for CSV injection.
- :func:`json_visible` — JSON text with the characters JSON leaves raw (DEL, C1, bidi, line
  separators) written as ``\\uXXXX`` escapes: the same data, safe to show on a terminal.
- :func:`sheet_text` and :func:`sheet_cell` — a workbook cell that is always text, never a
  formula (``=HYPERLINK(...)`` is stored as the string it is), with control characters shown
  escaped (an XLSX file cannot hold them) and cut at Excel's 32,767-character cell limit. Every
  workbook matcher writes (the plan, the intake template) puts its values through them.
- :func:`html_text` — text for an HTML page: control, bidi and other invisible format
  characters (NUL, U+202E ...) escaped as in :func:`visible`, never cut.
- :func:`id_like` — whether a value typed into an ID field may be quoted in a message (a name,
  an email address or a phone number typed there never is).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rich.text import Text

#: Longest untrusted value shown whole on a terminal or in a message; longer ones are cut.
MAX_SHOWN = 200

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Characters that never print as themselves: C0 and DEL, C1, bidi embeddings/overrides/isolates
# and marks, zero-width and other format characters (category Cf), line/paragraph separators,
# and lone surrogates (which cannot even be encoded as UTF-8). Backslashes stay as they are, so
# that IDs print as in the data.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _has_format_chars(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cf" for ch in text if ord(ch) > 0x7F)


def cut(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` whole when short, else its first ``limit`` characters and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text):,} chars)"


def visible(value: object, limit: int | None = MAX_SHOWN) -> str:
    """``value`` as text that prints as itself: control and format characters escaped
    (``\\x1b``, ``\\u202e``), cut to ``limit`` characters (None: whole)."""
    text = value if isinstance(value, str) else str(value)
    if limit is not None:
        text = cut(text, limit)
    text = _UNSAFE.sub(_escape, text)
    if _has_format_chars(text):  # any other invisible format character (category Cf)
        text = "".join(
            f"\\u{ord(ch):04x}" if ord(ch) > 0x7F and unicodedata.category(ch) == "Cf" else ch
            for ch in text
        )
    return text


def visible_lines(message: str, limit: int | None = None) -> str:
    """Like :func:`visible` for a message the program composed: its line breaks are kept (each
    line escaped on its own), everything else is escaped."""
    return "\n".join(visible(line, limit) for line in message.split("\n"))


def cell(value: object, limit: int | None = MAX_SHOWN) -> Text:
    """A table cell for rich: :func:`visible` text, never read as markup."""
    return Text(visible(value, limit))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet never runs as a formula: a value starting with ``=``,
    ``+``, ``-``, ``@``, tab or carriage return gets a leading single quote (OWASP), unless it is
    a plain number such as ``-0.5``; control characters are shown escaped."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        text = "'" + text
    return visible(text, limit=None)


_JSON_RAW = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def json_visible(text: str) -> str:
    """JSON text with DEL, C1, bidi and separator characters written as ``\\uXXXX``: JSON's
    structure is ASCII, so these only occur inside strings and the escapes keep the data."""
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: Longest text in one workbook cell (Excel's limit); longer text is cut with its length.
MAX_CELL = 32_767


def sheet_text(value: str) -> str:
    """Text for a workbook cell: control and format characters shown escaped (an XLSX cell
    cannot hold C0 characters, and bidi overrides would make it read differently from its
    bytes), cut to Excel's :data:`MAX_CELL` characters. Line breaks are kept (cells wrap)."""
    text = "\n".join(visible(line, None) for line in value.split("\n"))
    if len(text) > MAX_CELL:
        text = cut(text, MAX_CELL - 40)
    return text


def sheet_cell(sheet: Any, value: object) -> Any:
    """The cell to append to ``sheet`` (an openpyxl worksheet, write-only or not) for
    ``value``: numbers, booleans and ``None`` as they are; anything else as a text cell that
    is never a formula, whatever it starts with (``=``, ``+``, ``-``, ``@``), marked as quoted
    text (Excel's leading apostrophe) so that editing it keeps it text. Openpyxl reads a string
    starting with ``=`` as a formula; here its type is set to text after the value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    from openpyxl.cell import WriteOnlyCell  # lazy: openpyxl (~0.4 s); all commands load text

    text = sheet_text(value if isinstance(value, str) else str(value))
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    if text.startswith(_SHEET_FORMULA_START):
        cell.quotePrefix = True
    return cell


_SHEET_FORMULA_START = ("=", "+", "-", "@")


def html_text(value: object) -> str:
    """``value`` for an HTML page: control characters (NUL, ESC, C1), bidi overrides and other
    invisible format characters escaped as in :func:`visible` (never cut); line breaks kept."""
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE.search(text) is None and not _has_format_chars(text):
        return text
    return "\n".join(visible(line, None) for line in text.split("\n"))


# An ID as people type them: letters, digits and a few separators, no spaces, no @.
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/#+\-]{0,63}$")
_PHONE_LIKE = re.compile(r"^\+?[\d\-.()/]+$")


def id_like(value: object) -> bool:
    """Whether ``value``, found in an ID field, looks like an ID and may be quoted in a
    message: at most 64 letters, digits and ``_ . : / # + -``, no spaces, no ``@`` (an email
    address), and not a run of 9 or more digits alone (a phone or NHS number)."""
    if not isinstance(value, str) or not _ID_LIKE.match(value):
        return False
    return not (_PHONE_LIKE.match(value) and sum(c.isdigit() for c in value) >= 9)


def shown_id(value: object) -> str:
    """``value`` quoted when :func:`id_like`, else a note that it is not shown."""
    if id_like(value):
        return repr(value)
    return "(a value that is not an ID, not shown)"
