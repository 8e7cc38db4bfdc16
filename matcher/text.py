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
"""

from __future__ import annotations

import re
import unicodedata

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
