"""Dates as people in the UK type them on a form: "9 June", "9/6/2016", "9-12 June",
"9 June and 16 June", "Thurs 12th May", "30 May - 2 June 2016", "none".

:func:`parse_dates` reads one cell into :class:`Span` values (a day or a range of days, the
year possibly left out); :func:`resolve` turns them into dates, taking a missing year from the
cohorts' session dates (the year that puts the day nearest a session). Day before month, always
(``9/6`` is 9 June). Messages never repeat the cell's text.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

#: Longest range a person may give as "from - to" (a longer one is more likely a typo).
MAX_RANGE_DAYS = 366

_MONTHS: dict[str, int] = {}
for _n in range(1, 13):
    _MONTHS[calendar.month_name[_n].lower()] = _n
    _MONTHS[calendar.month_abbr[_n].lower()] = _n
_MONTHS["sept"] = 9
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = (
    r"\b(?:monday|mon|tuesday|tues|tue|wednesday|weds|wed|thursday|thurs|thur|thu|friday|fri"
    r"|saturday|sat|sunday|sun)\b\.?,?"
)
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(\d{4}|'?\d{2})"  # after day/month numbers: 9/6/16
_WORD_YEAR = r"(\d{4}|'\d{2})"  # after a month name: "9 June 16 June" is two dates
_NOTHING = {"", "none", "no", "n/a", "na", "nil", "-", "--", "no dates", "none known", "x"}

# One date: "9 June 2016", "9th of June", "June 9", "9/6/2016", "09.06.16", "9/6", "2016-06-09"
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_NUMERIC = re.compile(r"(\d{1,2})[/.](\d{1,2})(?:[/.]" + _YEAR + r")?")
_DAY_MONTH = re.compile(_DAY + r"\s*(?:of\s+)?(" + _MONTH + r")(?:\s*,?\s*" + _WORD_YEAR + r")?")
_MONTH_DAY = re.compile(
    "(" + _MONTH + r")\s+" + _DAY + r"(?:\s*,?\s*" + _WORD_YEAR + r")?(?![\d/.])"
)
# "9-12 June 2016", "9 to 12 June", "9th & 16th June": a bare day, then a joiner, then a date
_BARE_DAY = re.compile(_DAY + r"(?=\s*(?:-|–|—|to|until|till|and|&|,|\+)\s*\d)")


class DateError(ValueError):
    """A cell holds something that is not a date list; the message never holds its text."""


@dataclass(frozen=True)
class Day:
    day: int
    month: int | None  # None: taken from the next date in the cell ("9" of "9-12 June")
    year: int | None  # None: taken from the cohorts' sessions


@dataclass(frozen=True)
class Span:
    """One day (``first == last``) or a range of days, as typed."""

    first: Day
    last: Day


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.lstrip("'")
    return 2000 + int(text) if len(text) == 2 else int(text)


def _tokens(text: str) -> list[tuple[str, Day | None]]:
    """The cell as a sequence of dates and joiners (``range`` / ``list``)."""
    out: list[tuple[str, Day | None]] = []
    pos = 0
    text = re.sub(_WEEKDAY, " ", text)
    while pos < len(text):
        rest = text[pos:]
        skip = re.match(r"\s+", rest)
        if skip:
            pos += skip.end()
            continue
        joiner = re.match(r"(-|–|—|to\b|until\b|till\b)", rest)
        if joiner:
            out.append(("range", None))
            pos += joiner.end()
            continue
        joiner = re.match(r"(and\b|&|,|;|\+|/(?=\s)|also\b|or\b)", rest)
        if joiner:
            out.append(("list", None))
            pos += joiner.end()
            continue
        m = _ISO.match(rest)
        if m:
            out.append(("date", Day(int(m[3]), int(m[2]), int(m[1]))))
            pos += m.end()
            continue
        m = _DAY_MONTH.match(rest)
        if m:
            out.append(("date", Day(int(m[1]), _MONTHS[m[2].rstrip(".")], _year(m[3]))))
            pos += m.end()
            continue
        m = _MONTH_DAY.match(rest)
        if m:
            out.append(("date", Day(int(m[2]), _MONTHS[m[1].rstrip(".")], _year(m[3]))))
            pos += m.end()
            continue
        m = _NUMERIC.match(rest)
        if m:
            out.append(("date", Day(int(m[1]), int(m[2]), _year(m[3]))))
            pos += m.end()
            continue
        m = _BARE_DAY.match(rest)
        if m:
            out.append(("date", Day(int(m[1]), None, None)))
            pos += m.end()
            continue
        raise DateError(
            "not a date list: write dates such as 9 June 2016, 9/6/2016, 9-12 June or "
            "9 June and 16 June"
        )
    return out


def parse_dates(value: object) -> list[Span]:
    """The days and ranges of one cell (a text, or a date the spreadsheet already holds)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        one = Day(value.day, value.month, value.year)
        return [Span(one, one)]
    text = " ".join(str(value).split()).lower()
    if text.strip(" .") in _NOTHING:
        return []
    tokens = _tokens(text)
    spans: list[Span] = []
    pending: Day | None = None
    ranging = False
    for kind, day in tokens:
        if kind == "range":
            if pending is None or ranging:
                raise DateError("a range needs a date on each side (9-12 June)")
            ranging = True
        elif kind == "list":
            if ranging:
                raise DateError("a range needs a date on each side (9-12 June)")
        else:
            assert day is not None
            if ranging and pending is not None:
                spans.append(Span(pending, day))
                pending, ranging = None, False
            else:
                if pending is not None:
                    spans.append(Span(pending, pending))
                pending = day
    if ranging:
        raise DateError("a range needs a date on each side (9-12 June)")
    if pending is not None:
        spans.append(Span(pending, pending))
    # A bare day ("9" in "9 and 16 June", "9" in "9-12 June") takes the month and year of the
    # next date that has one.
    filled: list[Span] = []
    later: Day | None = None
    for span in reversed(spans):
        last = span.last
        if last.month is None:
            if later is None:
                raise DateError("a day without a month: write the month (9 June)")
            last = Day(last.day, later.month, later.year)
        first = span.first
        if first.month is None:
            first = Day(first.day, last.month, last.year)
        elif first.year is None and last.year is not None:
            first = Day(first.day, first.month, last.year)
        later = last
        filled.append(Span(first, last))
    return filled[::-1]


def _nearest_year(day: int, month: int, sessions: list[dt.date]) -> int:
    """The year that puts ``day month`` nearest one of ``sessions`` (this year without any)."""
    if not sessions:
        return dt.date.today().year
    best: tuple[int, int] | None = None
    for year in sorted({s.year for s in sessions} | {s.year - 1 for s in sessions}
                       | {s.year + 1 for s in sessions}):  # fmt: skip
        try:
            when = dt.date(year, month, day)
        except ValueError:
            continue
        gap = min(abs((when - s).days) for s in sessions)
        if best is None or gap < best[0]:
            best = (gap, year)
    if best is None:
        raise DateError(f"no such date: day {day} of month {month}")
    return best[1]


def _date(d: Day, sessions: list[dt.date]) -> dt.date:
    assert d.month is not None
    if not 1 <= d.month <= 12:
        raise DateError(f"no month {d.month}: dates are day/month/year (9/6/2016 is 9 June)")
    year = d.year if d.year is not None else _nearest_year(d.day, d.month, sessions)
    try:
        return dt.date(year, d.month, d.day)
    except ValueError:
        raise DateError(
            f"no such date: day {d.day} of {calendar.month_name[d.month]} {year}"
        ) from None


def resolve(spans: Iterable[Span], sessions: Iterable[dt.date]) -> list[dt.date]:
    """Every date the spans cover, sorted and once each; missing years from ``sessions``."""
    known = sorted(set(sessions))
    out: set[dt.date] = set()
    for span in spans:
        first = _date(span.first, known)
        last = _date(span.last, known)
        if span.last.year is None and span.first.year is None and last < first:
            last = dt.date(last.year + 1, last.month, last.day)  # "30 Dec - 2 Jan"
        if last < first:
            raise DateError("a range ends before it starts")
        if (last - first).days > MAX_RANGE_DAYS:
            raise DateError(f"a range longer than {MAX_RANGE_DAYS} days")
        out.update(first + dt.timedelta(days=k) for k in range((last - first).days + 1))
    return sorted(out)
