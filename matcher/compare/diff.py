"""What changed between two plans of one programme: ``matcher diff OLD NEW`` and the
``changes`` of a re-plan (DESIGN.md §4).

Pairs are matched by their two people (a pair's ID is a label: two plans solved from scratch may
number the same pair differently). Given the instance of the new plan, each change carries its
reason in words with IDs ("pr20 withdrew", "c1 shrank to 8 pairs"); without it, the reason says
only what changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from matcher.contract.identity import IntakeMismatch, check_made_from, check_same_intake
from matcher.contract.instance import Instance
from matcher.contract.rules import can_attend, pairing_rule_breaks
from matcher.contract.solution import Change, ChangeCounts, Changes, Pair, Solution
from matcher.words import count

Key = tuple[str, str]


@dataclass(frozen=True)
class ScoreChange:
    """Pair-score totals of the two plans."""

    total_before: float
    total_after: float
    mean_before: float | None
    mean_after: float | None


def _key(p: Pair) -> Key:
    return (p.patient_leader, p.partner)


def _partners(plan: Solution) -> dict[str, str]:
    """Each paired person's partner in ``plan``."""
    out = {}
    for p in plan.pairs:
        out[p.patient_leader], out[p.partner] = p.partner, p.patient_leader
    return out


class _Reasons:
    """Reasons for changes, from the new plan's instance (or generic without it)."""

    def __init__(self, old: Solution, new: Solution, instance: Instance | None) -> None:
        self.instance = instance
        self.people = instance.participants_by_id() if instance is not None else {}
        self.cohorts = instance.cohorts_by_id() if instance is not None else {}
        self.old, self.new = old, new
        self.old_fill = Counter(p.cohort for p in old.pairs if p.cohort is not None)
        self.locked = (
            {(lk.patient_leader, lk.partner): lk.cohort for lk in instance.locks}
            if instance is not None
            else {}
        )
        self.old_cohort = {_key(p): p.cohort for p in old.pairs}
        self.old_sets = {s.id: len(s.pairs) for s in old.learning_sets or []}
        self.new_partner = _partners(new)
        self.old_unmatched = {u.participant for u in old.unmatched}

    def gone(self, pid: str) -> str | None:
        if self.instance is None:
            return None
        person = self.people.get(pid)
        if person is None:
            return f"{pid} is no longer in the instance"
        if person.status == "withdrawn":
            return f"{pid} withdrew"
        return None

    def dissolved(self, key: Key) -> str:
        a, b = key
        for pid in key:
            why = self.gone(pid)
            if why:
                return why
        if self.instance is None:
            return "not in the new plan"
        pa, pb = self.people[a], self.people[b]
        breaks = pairing_rule_breaks(self.instance, pa, pb)
        if breaks and not (pa.partner == b and pb.partner == a):
            return "; ".join(breaks)
        for pid in key:
            other = self.new_partner.get(pid)
            lock = (pid, other) if pid == a else (other, pid)
            if other is not None and lock in self.locked:
                return f"{pid} is locked with {other}"
        was = self.old_cohort.get(key)
        cohort = self.cohorts.get(was or "")
        if cohort is not None and cohort.capacity_pairs < self.old_fill.get(cohort.id, 0):
            return (
                f"{cohort.id} shrank to {count(cohort.capacity_pairs, 'pair')}; the two were "
                "re-paired "
                "so that the most pairs are placed"
            )
        if not self.new.pairs or all(_key(p) != key for p in self.new.pairs):
            placed_before = sum(self.old_fill.values())
            placed_now = sum(1 for p in self.new.pairs if p.cohort is not None)
            if placed_now > placed_before:
                return f"re-paired so that more pairs are placed ({placed_before} -> {placed_now})"
        return "re-paired: the new plan pairs them differently"

    def formed(self, key: Key, old_partner: dict[str, str]) -> str:
        if key in self.locked:
            return "locked in the instance (locks)"
        freed = []
        for pid in key:
            was = old_partner.get(pid)
            if was is None:
                freed.append(
                    f"{pid} was unmatched"
                    if pid in self.old_unmatched
                    else f"{pid} is a new applicant"
                )
            else:
                why = self.gone(was)
                freed.append(
                    f"{pid}'s partner {was} " + why.split(" ", 1)[1]
                    if why
                    else f"{pid} was re-paired (was with {was})"
                )
        return "; ".join(freed)

    def moved_cohort(self, new: Pair, before: str | None) -> str:
        after = new.cohort
        if self.instance is None:
            return "placed in another cohort"
        lock = self.locked.get(_key(new), "")
        if lock and lock == after:
            return f"locked into {after} (locks)"
        if before is None:
            return "a place became free"
        cohort = self.cohorts.get(before)
        if cohort is None:
            return f"cohort {before} is no longer in the instance"
        for pid in _key(new):
            person = self.people.get(pid)
            if person is not None and not can_attend(person, cohort):
                return f"{pid} can no longer attend {before}"
        if cohort.capacity_pairs < self.old_fill.get(before, 0):
            return f"{before} shrank to {count(cohort.capacity_pairs, 'pair')}"
        if after is None:
            return f"{before} cannot take it under the set rules with the other pairs"
        return f"moved so that more pairs are placed, or to keep the set rules in {before}"

    def moved_set(self, before: str, after: str | None, kept: Counter[str]) -> str:
        if self.instance is None:
            return "placed in another set"
        cohort = self.cohorts.get(before.rsplit("-s", 1)[0])
        if cohort is None:
            return "placed in another set"
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        if kept[before] < lo:
            return (
                f"set {before} was broken up: only {kept[before]} of its pairs "
                f"{'remains' if kept[before] == 1 else 'remain'} in {cohort.id}, below the "
                f"minimum of {lo}"
            )
        if after in self.old_sets and kept[after] < lo:
            fallen = count(kept[after], "pair")
            return f"moved to {after}, which had fallen to {fallen} (minimum {lo})"
        if after not in self.old_sets:
            return (
                f"moved to the new set {after}: the cohort's pairs no longer fit sets of {lo}-{hi}"
            )
        return "sets re-formed around the pairs that joined or left the cohort"


def plan_changes(
    old: Solution,
    new: Solution,
    instance: Instance | None = None,
    *,
    minimal: bool = True,
    force: bool = False,
) -> Changes:
    """Every change from ``old`` to ``new`` (see the module docstring).

    ``instance`` is the intake ``new`` was made from: ``new`` must have been made from exactly it
    and ``old`` from an intake of the same name, else :class:`matcher.errors.InvalidParameter`
    names both intakes (``force=True`` compares them anyway). Without ``instance`` the two plans
    must name one intake."""
    if not force:
        if instance is not None:
            check_same_intake(old, instance, what="the old plan")
            check_made_from(new, instance, what="the new plan")
        elif old.instance != new.instance:
            raise IntakeMismatch(
                f"the old plan is of intake {old.instance!r} and the new plan of intake "
                f"{new.instance!r}; compare plans of one intake (or force=True / --force)",
                old.instance,
                new.instance,
            )
    why = _Reasons(old, new, instance)
    old_by = {_key(p): p for p in old.pairs}
    new_by = {_key(p): p for p in new.pairs}
    old_partner = _partners(old)
    items: list[Change] = []
    gone_people = set()
    for key, p in old_by.items():
        if key in new_by:
            continue
        items.append(
            Change(
                kind="dissolved",
                pair=p.id,
                participants=list(key),
                before=p.cohort,
                reason=why.dissolved(key),
            )
        )
        for pid in key:
            if why.gone(pid):
                gone_people.add(pid)
    for pid in sorted(
        gone_people | {u.participant for u in old.unmatched if why.gone(u.participant)}
    ):
        items.append(Change(kind="left", participants=[pid], reason=why.gone(pid) or ""))
    for key, p in new_by.items():
        if key not in old_by:
            items.append(
                Change(
                    kind="formed",
                    pair=p.id,
                    participants=list(key),
                    after=p.cohort,
                    reason=why.formed(key, old_partner),
                )
            )
    kept = [key for key in new_by if key in old_by]
    # how many of each old set's pairs are still in its cohort
    stayed_in: Counter[str] = Counter(
        [
            set_id
            for k in kept
            if (set_id := old_by[k].learning_set) is not None
            and old_by[k].cohort == new_by[k].cohort
        ]
    )
    moved_cohort = moved_set = newly_waitlisted = 0
    for key in kept:
        a, b = old_by[key], new_by[key]
        if a.cohort != b.cohort:
            moved_cohort += 1
            if b.cohort is None:
                newly_waitlisted += 1
                kind = "newly_waitlisted"
            else:
                kind = "no_longer_waitlisted" if a.cohort is None else "moved_cohort"
            items.append(
                Change(
                    kind=kind,
                    pair=b.id,
                    participants=list(key),
                    before=a.cohort,
                    after=b.cohort,
                    reason=why.moved_cohort(b, a.cohort),
                )
            )
        elif a.learning_set != b.learning_set and b.cohort is not None:
            moved_set += 1
            items.append(
                Change(
                    kind="moved_set",
                    pair=b.id,
                    participants=list(key),
                    before=a.learning_set,
                    after=b.learning_set,
                    reason=why.moved_set(a.learning_set or "", b.learning_set, stayed_in),
                )
            )
    newly_unmatched = 0
    for u in new.unmatched:
        if u.participant in old_partner:
            newly_unmatched += 1
            items.append(
                Change(
                    kind="newly_unmatched",
                    participants=[u.participant],
                    reason=u.reason,
                )
            )
    for pid in sorted(why.old_unmatched):
        if pid in why.new_partner and not why.gone(pid):
            items.append(
                Change(
                    kind="no_longer_unmatched",
                    participants=[pid],
                    after=why.new_partner[pid],
                    reason=f"paired with {why.new_partner[pid]}",
                )
            )
    counts = ChangeCounts(
        kept=len(kept),
        dissolved=sum(1 for c in items if c.kind == "dissolved"),
        formed=sum(1 for c in items if c.kind == "formed"),
        moved_cohort=moved_cohort,
        moved_set=moved_set,
        newly_unmatched=newly_unmatched,
        newly_waitlisted=newly_waitlisted,
    )
    return Changes(previous_instance=old.instance, counts=counts, items=items, minimal=minimal)


def score_change(old: Solution, new: Solution) -> ScoreChange:
    def mean(xs: list[float]) -> float | None:
        return round(sum(xs) / len(xs), 6) if xs else None

    a = [p.score for p in old.pairs]
    b = [p.score for p in new.pairs]
    return ScoreChange(round(sum(a), 6), round(sum(b), 6), mean(a), mean(b))
