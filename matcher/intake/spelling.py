"""Near-miss spellings in an instance: category values that are alike but not equal.

Values that are *near* but not equal under :func:`matcher.contract.keys.category_key` ("Surrey
Heartland" and "Surrey Heartlands") are never merged: :func:`near_duplicates` reports them, with
the IDs using each spelling, so a person can fix the file. It compares distinct values only,
grouped by length, within a bounded number of comparisons (deterministic) and of seconds, and
can be cancelled, so it stays fast at 20,000 participants and on hostile files; before a solve
with a time limit its seconds are part of that limit (:func:`seconds_within`).
"""

from __future__ import annotations

import bisect
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
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


#: Most string comparisons of the whole check (every field; each field may use what the fields
#: before it left). A deterministic bound: the same file is cut at the same place on any machine.
#: Within it, every pair of a field's spellings whose lengths allow the ratio is compared; past
#: it each spelling is compared with the most used spellings and with its nearest neighbours in
#: (length, text) order only (a typo is usually a rare spelling of a common one, or one letter
#: away from its neighbour), and a note says so. 2,000,000 comparisons take about 0.2 s.
MAX_COMPARISONS = 2_000_000
#: Wall-clock seconds the whole check may take without a time limit; past it the check stops
#: with a note. Under a solve's time limit it gets at most :data:`SHARE_OF_LIMIT` of the limit.
BUDGET_S = 2.0
#: Share of a solve's time limit the check may use (at most :data:`BUDGET_S`): see
#: :func:`seconds_within`.
SHARE_OF_LIMIT = 0.1


def seconds_within(time_limit: float | None) -> float:
    """Seconds the check may take when it runs before a solve of ``time_limit`` seconds (the
    CLI's ``solve --time-limit``): at most a tenth of the limit and :data:`BUDGET_S`; the solve
    gets the rest."""
    return BUDGET_S if time_limit is None else min(BUDGET_S, SHARE_OF_LIMIT * time_limit)


@dataclass
class SpellingCheck:
    """What :func:`check_spellings` found and the work it did."""

    found: list[NearDuplicate]
    comparisons: int  # string comparisons made (never above the cap it was given)
    complete: bool  # False when a bound (comparisons, seconds, a cancel) cut it short


class _Bounds:
    """The check's bounds: comparisons left, a monotonic deadline and the caller's go-on test."""

    def __init__(
        self, comparisons: int, seconds: float, keep_going: Callable[[], bool] | None
    ) -> None:
        self.left = comparisons
        self.used = 0
        self.deadline = time.monotonic() + seconds
        self.keep_going = keep_going
        self.seconds = seconds
        self.stopped = ""  # why it stopped early: its seconds ran out, or the caller cancelled
        self.capped = False  # by the comparison bound

    def go_on(self) -> bool:
        if self.stopped:
            return False
        if time.monotonic() > self.deadline:
            self.stopped = f"stopped after {self.seconds:g} s, its time budget"
        elif self.keep_going is not None and not self.keep_going():
            self.stopped = "cancelled"
        return not self.stopped

    def spend(self, n: int) -> None:
        self.left -= n
        self.used += n


def check_spellings(
    instance: Instance,
    *,
    ratio: float = NEAR_RATIO,
    notes: list[str] | None = None,
    seconds: float = BUDGET_S,
    keep_going: Callable[[], bool] | None = None,
    max_comparisons: int = MAX_COMPARISONS,
) -> SpellingCheck:
    """Pairs of distinct category keys at least ``ratio`` alike (rapidfuzz ``fuzz.ratio`` on
    the keys), in a stable order. Keys that differ in their numbers ("trust 1" / "trust 2")
    are deliberately different and never reported. Withdrawn participants count too: their
    record is in the file and may be re-activated.

    Bounded: keys are grouped by length (two keys can reach ``ratio`` only when their lengths
    are close); at most ``max_comparisons`` string comparisons in all, ``seconds`` of wall
    clock, and it stops as soon as ``keep_going()`` (polled between comparisons of one
    spelling) returns False. When a bound cuts the check short a sentence saying so is
    appended to ``notes`` and ``complete`` is False."""
    bounds = _Bounds(max_comparisons, seconds, keep_going)
    out: list[NearDuplicate] = []
    for label, fields in CATEGORY_FIELDS.items():
        if not bounds.go_on():
            _note(notes, label, f"not done ({bounds.stopped})")
            continue
        users: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for p in instance.participants:
            for name in fields:
                value = getattr(p, name)
                for text in value if isinstance(value, list) else [value]:
                    users[category_key(text)][text].append(p.id)
        out.extend(_near_in_field(label, users, ratio, notes, bounds))
    return SpellingCheck(out, bounds.used, not (bounds.stopped or bounds.capped))


def near_duplicates(
    instance: Instance,
    *,
    ratio: float = NEAR_RATIO,
    notes: list[str] | None = None,
    budget_s: float = BUDGET_S,
    keep_going: Callable[[], bool] | None = None,
) -> list[NearDuplicate]:
    """:func:`check_spellings`' findings alone (``budget_s``: its ``seconds``)."""
    return check_spellings(
        instance, ratio=ratio, notes=notes, seconds=budget_s, keep_going=keep_going
    ).found


def _near_in_field(
    label: str,
    users: dict[str, dict[str, list[str]]],
    ratio: float,
    notes: list[str] | None,
    bounds: _Bounds,
) -> Iterable[NearDuplicate]:
    keys = sorted(users)
    counts = {k: sum(map(len, users[k].values())) for k in keys}
    found = []
    alike = _alike(keys, ratio, counts, label, notes, bounds)
    # each key's numbers once: generated organisations ("trust 1", "trust 2", ...) give tens of
    # thousands of alike pairs, and reading both keys' numbers per pair took 30 ms past the
    # check's time budget at 5,000 participants
    numbers = [_DIGITS.findall(k) for k in keys] if alike else []
    for i, j in alike:
        if numbers[i] != numbers[j]:
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
    bounds: _Bounds | None = None,
) -> list[tuple[int, int]]:
    """Index pairs ``i < j`` of ``keys`` (sorted) whose rapidfuzz ``fuzz.ratio`` is at least
    ``ratio`` (and above 0), in row-major order.

    Keys are grouped by length: ``fuzz.ratio`` is ``2 M / (len a + len b)`` with M at most the
    shorter length, so a key of length ``n`` can only reach ``ratio`` with keys of length up to
    ``n (200 - ratio) / ratio``. Each key is compared (``process.extract``, in C, which returns
    plain lists: ``process.cdist`` imports numpy, which ``matcher validate`` never needs
    otherwise) with the longer-or-equal keys of its window. When that exceeds the comparisons
    ``bounds`` leave, each key is compared only with the most used keys (``counts``) and its
    nearest neighbours in its window, within that bound."""
    if len(keys) < 2:
        return []

    bounds = bounds if bounds is not None else _Bounds(MAX_COMPARISONS, float("inf"), None)
    order = sorted(range(len(keys)), key=lambda i: (len(keys[i]), keys[i]))
    lengths = [len(keys[i]) for i in order]
    stretch = (200.0 - ratio) / ratio if ratio > 0 else float("inf")

    def window(pos: int) -> int:
        longest = int(lengths[pos] * stretch + 1e-9) if stretch != float("inf") else 1 << 30
        return bisect.bisect_right(lengths, longest)

    ordered = [keys[i] for i in order]

    def compare(i: int, texts: list[str], index: list[int] | int) -> None:
        """``keys[i]`` against ``texts``: the keys ``index[q]``, or ``order[index + q]``."""
        bounds.spend(len(texts))
        if not texts:
            return
        hits = process.extract(keys[i], texts, scorer=fuzz.ratio, score_cutoff=ratio, limit=None)
        for _, score, q in hits:
            j = index[q] if isinstance(index, list) else order[index + q]
            if score > 0 and j != i:
                pairs.add((min(i, j), max(i, j)))

    ends = [window(pos) for pos in range(len(order))]
    total = sum(end - pos - 1 for pos, end in enumerate(ends))
    pairs: set[tuple[int, int]] = set()
    if total <= bounds.left:
        for pos, i in enumerate(order):
            if ends[pos] <= pos + 1:
                continue
            if not bounds.go_on():
                _note(notes, label, bounds.stopped)
                break
            compare(i, ordered[pos + 1 : ends[pos]], pos + 1)
        return sorted(pairs)
    bounds.capped = True
    quota = bounds.left // len(keys)
    if quota < 2:
        _note(notes, label, f"its {len(keys):,} spellings not compared (comparisons used up)")
        return []
    used = counts or {}
    top = sorted(range(len(keys)), key=lambda i: (-used.get(keys[i], 0), keys[i]))[: quota // 2]
    top_texts = [keys[j] for j in top]
    near = quota - len(top)
    for pos, i in enumerate(order):
        if not bounds.go_on():
            _note(notes, label, bounds.stopped)
            break
        compare(i, ordered[pos + 1 : min(ends[pos], pos + 1 + near)], pos + 1)
        compare(i, top_texts, top)
    _note(
        notes,
        label,
        f"compared each of the {len(keys):,} spellings with the {len(top):,} most used and its "
        f"{near:,} nearest only",
    )
    return sorted(pairs)


def _note(notes: list[str] | None, label: str, what: str) -> None:
    if notes is not None:
        notes.append(f"near-miss spelling check of {label}s: {what} (a bounded check)")


def _usual(spellings: dict[str, list[str]]) -> str:
    """The spelling most people used for one key (ties: the first in sort order)."""
    return min(spellings, key=lambda s: (-len(spellings[s]), s))
