"""Near-miss spellings in an instance: category values that are alike but not equal.

Values that are *near* but not equal under :func:`matcher.contract.keys.category_key` ("Surrey
Heartland" and "Surrey Heartlands") are never merged: :func:`near_duplicates` reports them, with
the IDs using each spelling, so a person can fix the file. It compares distinct values only, so
it stays fast at 20,000 participants.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

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


def near_duplicates(instance: Instance, *, ratio: float = NEAR_RATIO) -> list[NearDuplicate]:
    """Pairs of distinct category keys at least ``ratio`` alike (rapidfuzz ``fuzz.ratio`` on
    the keys), in a stable order. Keys that differ in their numbers ("trust 1" / "trust 2")
    are deliberately different and never reported. Withdrawn participants count too: their
    record is in the file and may be re-activated."""
    out: list[NearDuplicate] = []
    for label, fields in CATEGORY_FIELDS.items():
        users: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for p in instance.participants:
            for name in fields:
                value = getattr(p, name)
                for text in value if isinstance(value, list) else [value]:
                    users[category_key(text)][text].append(p.id)
        out.extend(_near_in_field(label, users, ratio))
    return out


def _near_in_field(
    label: str, users: dict[str, dict[str, list[str]]], ratio: float
) -> Iterable[NearDuplicate]:
    keys = sorted(users)
    found = []
    for i, j in _alike(keys, ratio):
        if _DIGITS.findall(keys[i]) != _DIGITS.findall(keys[j]):
            continue
        a, b = users[keys[i]], users[keys[j]]
        n_a, n_b = sum(map(len, a.values())), sum(map(len, b.values()))
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


def _alike(keys: list[str], ratio: float) -> list[tuple[int, int]]:
    """Index pairs ``i < j`` of ``keys`` whose rapidfuzz ``fuzz.ratio`` is at least ``ratio``
    (and above 0), in row-major order. Each key is compared with the keys after it by
    ``process.extract`` (in C), which returns plain lists: ``process.cdist`` makes the same
    comparisons but imports numpy (about 0.25 s), which ``matcher validate`` never needs
    otherwise."""
    if len(keys) < 2:
        return []
    # Loaded on use (start-up time): rapidfuzz is slow to import.
    from rapidfuzz import fuzz, process

    out: list[tuple[int, int]] = []
    for i in range(len(keys) - 1):
        hits = process.extract(
            keys[i], keys[i + 1 :], scorer=fuzz.ratio, score_cutoff=ratio, limit=None
        )
        out.extend((i, i + 1 + j) for j in sorted(j for _, score, j in hits if score > 0))
    return out


def _usual(spellings: dict[str, list[str]]) -> str:
    """The spelling most people used for one key (ties: the first in sort order)."""
    return min(spellings, key=lambda s: (-len(spellings[s]), s))
