"""Near-miss spellings in an instance: category values that are alike but not equal.

Values that are *near* but not equal under :func:`matcher.contract.keys.category_key` ("Surrey
Heartland" and "Surrey Heartlands") are never merged: :func:`near_duplicates` reports them, with
the IDs using each spelling, so a person can fix the file. It compares distinct values only,
grouped by length, within a bounded number of comparisons and seconds, so it stays fast at
20,000 participants and on hostile files.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from matcher.contract.instance import Instance
from matcher.contract.keys import category_key

_DIGITS = re.compile(r"\d+")

#: rapidfuzz ``fuzz.ratio`` (0-100) at or above which two different keys are reported.
NEAR_RATIO = 90.0

#: Fields compared together: interests and topics share one vocabulary (the project criterion
#: matches a topic against the other person's interests).
CATEGORY_FIELDS: dict[str, tuple[str, ...]] = {
    "organisation": ("organisation",),
    "organisation type": ("organisation_type",),
    "local system": ("system",),
    "interest or project topic": ("interests", "project_topics"),
}


@dataclass(frozen=True)
class NearDuplicate:
    """Two spellings of one field that look alike but are compared as different values."""

    field: str
    spelling: str  # the rarer spelling (as typed by most of its users)
    ids: tuple[str, ...]  # participants using it
    suggestion: str  # the more common spelling
    others: int  # participants using the suggestion

    def __str__(self) -> str:
        shown = ", ".join(self.ids[:5]) + (f", +{len(self.ids) - 5}" if len(self.ids) > 5 else "")
        return (
            f"{self.field} {self.spelling!r} ({shown}) looks like {self.suggestion!r} "
            f"({self.others} other{'s' if self.others != 1 else ''}); they are treated as "
            "different values: correct one if they are the same"
        )


#: Most string comparisons of one field's spellings. Within it every pair of spellings whose
#: lengths allow the ratio is compared; past it each spelling is compared with the most used
#: spellings only (a typo is usually a rare spelling of a common one), and a note says so.
MAX_COMPARISONS = 2_000_000
#: Wall-clock seconds the whole check may take; past it the check stops with a note.
BUDGET_S = 2.0


def near_duplicates(
    instance: Instance,
    *,
    ratio: float = NEAR_RATIO,
    notes: list[str] | None = None,
    budget_s: float = BUDGET_S,
) -> list[NearDuplicate]:
    """Pairs of distinct category keys at least ``ratio`` alike (rapidfuzz ``fuzz.ratio`` on
    the keys), in a stable order. Keys that differ in their numbers ("trust 1" / "trust 2")
    are deliberately different and never reported. Withdrawn participants count too: their
    record is in the file and may be re-activated.

    Bounded: keys are grouped by length (two keys can reach ``ratio`` only when their lengths
    are close), at most :data:`MAX_COMPARISONS` comparisons per field and ``budget_s`` seconds
    in all; when a bound cuts the check short a sentence saying so is appended to ``notes``."""
    deadline = time.monotonic() + budget_s
    out: list[NearDuplicate] = []
    for label, fields in CATEGORY_FIELDS.items():
        users: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for p in instance.participants:
            for name in fields:
                value = getattr(p, name)
                for text in value if isinstance(value, list) else [value]:
                    users[category_key(text)][text].append(p.id)
        out.extend(_near_in_field(label, users, ratio, notes, deadline))
    return out


def _near_in_field(
    label: str,
    users: dict[str, dict[str, list[str]]],
    ratio: float,
    notes: list[str] | None,
    deadline: float,
) -> Iterable[NearDuplicate]:
    keys = sorted(users)
    counts = {k: sum(map(len, users[k].values())) for k in keys}
    found = []
    for i, j in _alike(keys, ratio, counts, label, notes, deadline):
        if _DIGITS.findall(keys[i]) != _DIGITS.findall(keys[j]):
            continue
        a, b = users[keys[i]], users[keys[j]]
        n_a, n_b = counts[keys[i]], counts[keys[j]]
        rare, common = (a, b) if (n_a, keys[j]) <= (n_b, keys[i]) else (b, a)
        found.append(
            NearDuplicate(
                field=label,
                spelling=_usual(rare),
                ids=tuple(sorted({x for ids in rare.values() for x in ids})),
                suggestion=_usual(common),
                others=len({x for ids in common.values() for x in ids}),
            )
        )
    return sorted(found, key=lambda d: (d.field, d.spelling, d.suggestion))


def _alike(
    keys: list[str],
    ratio: float,
    counts: dict[str, int] | None = None,
    label: str = "",
    notes: list[str] | None = None,
    deadline: float | None = None,
) -> list[tuple[int, int]]:
    """Index pairs ``i < j`` of ``keys`` (sorted) whose rapidfuzz ``fuzz.ratio`` is at least
    ``ratio`` (and above 0), in row-major order.

    Keys are grouped by length: ``fuzz.ratio`` is ``2 M / (len a + len b)`` with M at most the
    shorter length, so a key of length ``n`` can only reach ``ratio`` with keys of length up to
    ``n (200 - ratio) / ratio``. Each key is compared (``process.extract``, in C, which returns
    plain lists: ``process.cdist`` imports numpy, which ``matcher validate`` never needs
    otherwise) with the longer-or-equal keys of its window. When that exceeds MAX_COMPARISONS,
    each key is compared only with the most used keys (``counts``) that fit the bound."""
    if len(keys) < 2:
        return []

    order = sorted(range(len(keys)), key=lambda i: (len(keys[i]), keys[i]))
    lengths = [len(keys[i]) for i in order]
    stretch = (200.0 - ratio) / ratio if ratio > 0 else float("inf")

    def window(pos: int) -> int:
        longest = int(lengths[pos] * stretch + 1e-9) if stretch != float("inf") else 1 << 30
        return bisect.bisect_right(lengths, longest)

    total = sum(window(pos) - pos - 1 for pos in range(len(order)))
    pairs: set[tuple[int, int]] = set()
    if total <= MAX_COMPARISONS:
        for pos, i in enumerate(order):
            if deadline is not None and time.monotonic() > deadline:
                _note(notes, label, "took too long and was stopped")
                break
            end = window(pos)
            if end <= pos + 1:
                continue
            choices = [keys[order[q]] for q in range(pos + 1, end)]
            hits = process.extract(
                keys[i], choices, scorer=fuzz.ratio, score_cutoff=ratio, limit=None
            )
            for _, score, q in hits:
                if score > 0:
                    j = order[pos + 1 + q]
                    pairs.add((min(i, j), max(i, j)))
    else:
        used = counts or {}
        top_n = max(1, MAX_COMPARISONS // len(keys))
        common = sorted(range(len(keys)), key=lambda i: (-used.get(keys[i], 0), keys[i]))[:top_n]
        choices = [keys[c] for c in common]
        for i in range(len(keys)):
            if deadline is not None and time.monotonic() > deadline:
                _note(notes, label, "took too long and was stopped")
                break
            hits = process.extract(
                keys[i], choices, scorer=fuzz.ratio, score_cutoff=ratio, limit=None
            )
            for _, score, q in hits:
                j = common[q]
                if score > 0 and j != i:
                    pairs.add((min(i, j), max(i, j)))
        _note(
            notes,
            label,
            f"compared each of the {len(keys):,} spellings with the {top_n:,} most used only",
        )
    return sorted(pairs)


def _note(notes: list[str] | None, label: str, what: str) -> None:
    if notes is not None:
        notes.append(f"near-miss spelling check of {label}s: {what} (a bounded check)")


def _usual(spellings: dict[str, list[str]]) -> str:
    """The spelling most people used for one key (ties: the first in sort order)."""
    return min(spellings, key=lambda s: (-len(spellings[s]), s))
