"""The independent checker: re-checks every hard rule of a solution against its instance.

Written apart from the solvers and from the vectorised scoring in :mod:`matcher.scoring`: it
recomputes each pair's score from the instance with plain set arithmetic, so a bug in either
path shows up as a disagreement. Every solve path runs through it in the tests.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from matcher.errors import VerificationFailed
from matcher.schema import Cohort, Instance, Participant
from matcher.solution import Solution

TOLERANCE = 1e-6


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule, the IDs involved, and the message."""

    rule: str
    ids: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return self.message

    def __contains__(self, text: str) -> bool:  # `"missing" in violation`, as for strings
        return text in self.message


#: Rule names of violations, by a word of their message (kept beside the messages below).
_RULES = (
    ("withdrew", "withdrawn"),
    ("lock", "locks"),
    ("forbidden", "forbidden_pairs"),
    ("declared conflict", "avoid"),
    ("pre-formed", "preformed"),
    ("appears", "each_participant_once"),
    ("missing", "each_participant_once"),
    ("not a participant", "each_participant_once"),
    ("recomputes", "scores"),
    ("breakdown", "scores"),
    ("min_score", "min_score"),
    ("could be paired", "maximal_pairing"),
    ("capacity", "capacity"),
    ("cannot attend", "attendance"),
    ("one organisation", "one_organisation_per_set"),
    ("outside", "set_size"),
    ("diversity", "set_diversity"),
    ("status", "status"),
    (" ID", "pair_ids"),
    ("change", "changes"),
)


def _typed(message: str) -> Violation:
    rule = next((r for word, r in _RULES if word in message), "plan_structure")
    ids = tuple(sorted(set(_ID.findall(message))))
    return Violation(rule, ids, message)


_ID = re.compile(r"\b[A-Za-z][\w.-]*\d[\w.-]*\b")


@dataclass
class Report:
    """Violations found by :func:`verify`; ``ok`` when there are none."""

    violations: list[Violation] = field(default_factory=list)

    def rules(self) -> set[str]:
        """The rules broken."""
        return {v.rule for v in self.violations}

    @property
    def ok(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        if self.ok:
            return "solution verified: every hard rule holds and every score recomputes"
        return "\n".join(["solution violates:", *(f"  - {v}" for v in self.violations)])


VerificationError = VerificationFailed


def _same(text: str) -> str:
    """Category values are one value when equal after NFKC, case-folding and turning every run
    of spaces, punctuation and underscores into one space (stated again here, apart from
    :mod:`matcher.normalise`, so the two can check each other)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = "".join(ch if ch.isalnum() else " " for ch in folded).split()
    return " ".join(words) if words else " ".join(folded.split())


def _norm(items: list[str]) -> set[str]:
    return {_same(t) for t in items}


def _attends(p: Participant, c: Cohort) -> bool:
    if p.available_cohorts is not None and c.id not in p.available_cohorts:
        return False
    modes = {"in_person", "online"} if p.attendance is None else set(p.attendance)
    if c.mode == "blended":
        return modes == {"in_person", "online"}
    return c.mode in modes


def recompute_score(instance: Instance, a: Participant, b: Participant) -> dict[str, float]:
    """Each criterion of the pair (a, b), plus ``"score"``, from the instance alone."""
    ia, ib = _norm(a.interests), _norm(b.interests)
    ta, tb = _norm(a.project_topics), _norm(b.project_topics)
    union = ia | ib
    parts = {"interests": len(ia & ib) / len(union) if union else 0.0}
    n_topics = len(ta) + len(tb)
    parts["project"] = (len(ta & (ib | tb)) + len(tb & (ia | ta))) / n_topics if n_topics else 0.0
    same_org = _same(a.organisation) == _same(b.organisation)
    parts["organisation"] = 0.0 if same_org and instance.rules.same_organisation != "allow" else 1.0
    parts["system"] = 1.0 if _same(a.system) == _same(b.system) else 0.0
    both = sum(1 for c in instance.cohorts if _attends(a, c) and _attends(b, c))
    parts["availability"] = both / len(instance.cohorts)
    w = instance.weights.model_dump()
    if instance.rules.local_system == "ignore":
        w["system"] = 0.0
    parts["score"] = sum(w[k] * parts[k] for k in w) / sum(w.values())
    return parts


def _pair_rule_breaks(instance: Instance, a: Participant, b: Participant) -> list[str]:
    """Hard pairing rules broken by pairing ``a`` with ``b`` (lone applicants)."""
    out = []
    if b.id in a.avoid or a.id in b.avoid:
        out.append("declared conflict")
    if {a.id, b.id} in [set(x) for x in instance.forbidden_pairs]:
        out.append("a forbidden pair (forbidden_pairs)")
    if instance.rules.same_organisation == "forbid" and _same(a.organisation) == _same(
        b.organisation
    ):
        out.append(f"same organisation {a.organisation} (forbidden by the rules)")
    if instance.rules.local_system == "require" and _same(a.system) != _same(b.system):
        out.append("different local systems (the rules require the same)")
    if not any(_attends(a, c) and _attends(b, c) for c in instance.cohorts):
        out.append("no cohort both can attend in full")
    return out


def verify(instance: Instance, solution: Solution, *, previous: Solution | None = None) -> Report:
    """Check ``solution`` against every hard rule of ``instance`` and recompute its scores;
    with ``previous``, check that pair IDs and ``changes`` are consistent with it."""
    try:
        v = _violations(instance, solution, previous)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a malformed plan
        v = [f"the plan cannot be checked ({type(exc).__name__}): it is malformed"]
    return Report([_typed(x) for x in v])


def _violations(instance: Instance, solution: Solution, previous: Solution | None) -> list[str]:
    v: list[str] = []
    withdrawn = {p.id for p in instance.participants if p.status == "withdrawn"}
    people = {p.id: p for p in instance.participants if p.id not in withdrawn}
    cohorts = instance.cohorts_by_id()

    def partner_of(p: Participant) -> str | None:
        return p.partner if p.partner is not None and p.partner not in withdrawn else None

    # Every active participant appears exactly once: in a pair or in `unmatched`; the
    # withdrawn appear nowhere but in `withdrawn`.
    seen = Counter(
        [x for p in solution.pairs for x in (p.patient_leader, p.partner)]
        + [u.participant for u in solution.unmatched]
    )
    for pid, n in sorted(seen.items()):
        if pid in withdrawn:
            v.append(f"{pid}: withdrew but appears in the plan")
        elif pid not in people:
            v.append(f"{pid}: not a participant of the instance")
        elif n > 1:
            v.append(f"{pid}: appears {n} times (pairs and unmatched)")
    for pid in people:
        if pid not in seen:
            v.append(f"{pid}: missing (neither paired nor unmatched)")
    if set(solution.withdrawn) != withdrawn:
        v.append(
            f"withdrawn lists {sorted(solution.withdrawn)} but the instance withdrew "
            f"{sorted(withdrawn)}"
        )

    pair_ids = Counter(p.id for p in solution.pairs)
    v += [f"{pid}: duplicate pair ID" for pid, n in pair_ids.items() if n > 1]

    # Pre-formed pairs (both active) are kept, never split or re-paired.
    by_pair = {(p.patient_leader, p.partner): p for p in solution.pairs}
    for person in people.values():
        partner = partner_of(person)
        if person.role == "patient_leader" and partner is not None:
            kept = by_pair.get((person.id, partner))
            if kept is None:
                v.append(f"pre-formed pair {person.id}+{partner} was not kept")
            elif not kept.preformed:
                v.append(f"{kept.id}: pre-formed pair not marked preformed")
    # Locks: the pair is formed, in its cohort when given.
    locks = {(lk.patient_leader, lk.partner): lk.cohort for lk in instance.locks}
    for (a_id, b_id), cohort in locks.items():
        got = by_pair.get((a_id, b_id))
        if got is None:
            v.append(f"lock {a_id}+{b_id} was not kept")
        elif cohort is not None and got.cohort != cohort:
            v.append(f"lock {a_id}+{b_id}: placed in {got.cohort}, not in {cohort}")

    for pair in solution.pairs:
        a, b = people.get(pair.patient_leader), people.get(pair.partner)
        if a is None or b is None:
            continue
        key = (a.id, b.id)
        if pair.locked != (key in locks):
            v.append(f"{pair.id}: lock flag {pair.locked} but the locks say {key in locks}")
        if a.role != "patient_leader":
            v.append(f"{pair.id}: {a.id} is a {a.role}, not a patient leader")
        if b.role == "patient_leader":
            v.append(f"{pair.id}: partner {b.id} is a patient leader, not a clinician or manager")
        if pair.preformed and (partner_of(a) != b.id or partner_of(b) != a.id):
            v.append(f"{pair.id}: marked pre-formed but {a.id} and {b.id} did not apply together")
        if not pair.preformed:
            if partner_of(a) is not None or partner_of(b) is not None:
                v.append(f"{pair.id}: re-pairs someone who applied with a partner")
            for why in _pair_rule_breaks(instance, a, b):
                v.append(f"{pair.id} ({a.id}+{b.id}): {why}")
        parts = recompute_score(instance, a, b)
        if (
            not pair.preformed
            and key not in locks
            and not parts["score"] >= instance.rules.min_score - TOLERANCE
        ):
            v.append(f"{pair.id}: score {parts['score']:.4f} below rules.min_score")
        # written as `not (... <= tol)` so that a NaN anywhere is a violation
        if not abs(parts["score"] - pair.score) <= TOLERANCE:
            v.append(f"{pair.id}: score {pair.score} but recomputes to {parts['score']:.6f}")
        if set(pair.breakdown) != set(parts) - {"score"}:
            v.append(f"{pair.id}: breakdown criteria {sorted(pair.breakdown)} are not the five")
        for k, value in pair.breakdown.items():
            if k not in parts or not abs(parts[k] - value) <= TOLERANCE:
                v.append(f"{pair.id}: breakdown {k}={value} but recomputes to {parts.get(k)}")

    # Maximality: two unmatched lone people who could have been paired are a missed pair.
    alone = [people[u.participant] for u in solution.unmatched if u.participant in people]
    alone_pl = [p for p in alone if p.role == "patient_leader" and partner_of(p) is None]
    alone_pr = [p for p in alone if p.role != "patient_leader" and partner_of(p) is None]
    for a in alone_pl:
        for b in alone_pr:
            if not _pair_rule_breaks(instance, a, b) and (
                recompute_score(instance, a, b)["score"] >= instance.rules.min_score
            ):
                v.append(f"{a.id} and {b.id} are both unmatched but could be paired")

    v += _check_schedule(instance, solution, people, cohorts)
    v += _check_status(solution)
    if previous is not None:
        v += _check_changes(solution, previous)
    return v


def _jaccard_distance(x: set[str], y: set[str]) -> float:
    union = x | y
    return 1.0 - (len(x & y) / len(union) if union else 1.0)


def _set_diversity(instance: Instance, duos: list[tuple[Participant, Participant]]) -> float:
    """Mean pairwise distance of a set's pairs, re-stated from the documented formula."""
    w = instance.diversity
    total = w.organisation_type + w.system + w.role_mix + w.interests
    dists = []
    for i, (a, b) in enumerate(duos):
        for c, d in duos[i + 1 :]:
            if total <= 0:
                dists.append(0.0)
                continue
            value = (
                w.organisation_type
                * _jaccard_distance(
                    _norm([a.organisation_type, b.organisation_type]),
                    _norm([c.organisation_type, d.organisation_type]),
                )
                + w.system
                * _jaccard_distance(_norm([a.system, b.system]), _norm([c.system, d.system]))
                + w.role_mix * (b.role != d.role)
                + w.interests
                * _jaccard_distance(
                    _norm([*a.interests, *b.interests]), _norm([*c.interests, *d.interests])
                )
            ) / total
            dists.append(value)
    return math.fsum(dists) / len(dists) if dists else 0.0


def _check_status(solution: Solution) -> list[str]:
    """A returned plan is optimal or feasible; optimal only when every stage proved it."""
    v = []
    if solution.status not in ("optimal", "feasible"):
        v.append(f"status {solution.status} on a returned plan (it should have been raised)")
    outcomes = solution.run.outcomes
    if solution.status == "optimal" and any(o != "optimal" for o in outcomes.values()):
        v.append(f"status optimal but a stage was only feasible: {outcomes}")
    return v


def _check_changes(solution: Solution, previous: Solution) -> list[str]:
    """Pairs of the previous plan keep their IDs; new pairs get unused IDs; the change counts
    agree with the two plans."""
    v = []
    before = {(p.patient_leader, p.partner): p for p in previous.pairs}
    used = {p.id for p in previous.pairs}
    after = {(p.patient_leader, p.partner): p for p in solution.pairs}
    for key, p in after.items():
        if key in before and before[key].id != p.id:
            v.append(f"{p.id}: kept pair {key[0]}+{key[1]} changed ID (was {before[key].id})")
        if key not in before and p.id in used:
            v.append(f"{p.id}: new pair reuses an ID of the previous plan")
    if solution.changes is None:
        return [*v, "re-plan without a list of changes"]
    kept = [k for k in after if k in before]
    expected = {
        "kept": len(kept),
        "dissolved": sum(1 for k in before if k not in after),
        "formed": sum(1 for k in after if k not in before),
        "moved_cohort": sum(1 for k in kept if before[k].cohort != after[k].cohort),
        "moved_set": sum(
            1
            for k in kept
            if before[k].cohort == after[k].cohort
            and after[k].cohort is not None
            and before[k].learning_set != after[k].learning_set
        ),
    }
    counts = solution.changes.counts.model_dump()
    for name, n in expected.items():
        if counts[name] != n:
            v.append(f"changes: {name} is {counts[name]} but the plans differ by {n}")
    return v


def _check_schedule(
    instance: Instance,
    solution: Solution,
    people: dict[str, Participant],
    cohorts: dict[str, Cohort],
) -> list[str]:
    """Cohort placement, wait-list and action-learning-set rules."""
    v: list[str] = []
    waitlisted = Counter(w.pair for w in solution.waitlist)
    pairs = {p.id: p for p in solution.pairs}
    for pid, n in waitlisted.items():
        if pid not in pairs:
            v.append(f"waitlist: unknown pair {pid}")
        elif n > 1:
            v.append(f"waitlist: {pid} listed {n} times")
        elif pairs[pid].cohort is not None:
            v.append(f"waitlist: {pid} is placed in {pairs[pid].cohort} and also wait-listed")
    if solution.cohorts is None:
        for p in solution.pairs:
            if p.cohort is not None or p.learning_set is not None:
                v.append(f"{p.id}: has a cohort or set but the solution lists no cohorts")
        return v

    for p in solution.pairs:
        if p.cohort is None:
            if p.id not in waitlisted:
                v.append(f"{p.id}: not placed in a cohort and not on the wait-list")
            continue
        cohort = cohorts.get(p.cohort)
        if cohort is None:
            v.append(f"{p.id}: unknown cohort {p.cohort}")
            continue
        for member in (p.patient_leader, p.partner):
            person = people.get(member)
            if person is not None and not _attends(person, cohort):
                v.append(f"{p.id}: {member} cannot attend cohort {cohort.id} in full")

    plan_ids = Counter(plan.id for plan in solution.cohorts)
    v += [f"cohorts: {cid} listed {n} times" for cid, n in sorted(plan_ids.items()) if n > 1]
    # Capacity counted from the pairs themselves, whatever the cohort plans say.
    placed_in = Counter(p.cohort for p in solution.pairs if p.cohort is not None)
    for cid, n in sorted(placed_in.items()):
        if cid in cohorts and n > cohorts[cid].capacity_pairs:
            v.append(f"cohort {cid}: {n} pairs over capacity {cohorts[cid].capacity_pairs}")
    listed: Counter[str] = Counter()
    for plan in solution.cohorts:
        cohort = cohorts.get(plan.id)
        if cohort is None:
            v.append(f"cohorts: unknown cohort {plan.id}")
            continue
        for pid in plan.pairs:
            listed[pid] += 1
            if pid not in pairs or pairs[pid].cohort != plan.id:
                v.append(f"cohort {plan.id}: lists {pid}, whose cohort is not {plan.id}")
    for p in solution.pairs:
        if p.cohort is not None and listed[p.id] != 1:
            v.append(f"{p.id}: listed {listed[p.id]} times in the cohort plans")

    if solution.learning_sets is None:
        v += [
            f"{p.id}: names set {p.learning_set} but the solution lists no sets"
            for p in solution.pairs
            if p.learning_set is not None
        ]
        return v
    set_ids = Counter(s.id for s in solution.learning_sets)
    v += [f"sets: {sid} listed {n} times" for sid, n in sorted(set_ids.items()) if n > 1]
    for p in solution.pairs:
        if p.cohort is None and p.learning_set is not None:
            v.append(f"{p.id}: wait-listed but names set {p.learning_set}")
    in_set: Counter[str] = Counter()
    for s in solution.learning_sets:
        cohort = cohorts.get(s.cohort)
        if cohort is None:
            v.append(f"set {s.id}: unknown cohort {s.cohort}")
            continue
        size = cohort.set_size
        if not size.min_pairs <= len(s.pairs) <= size.max_pairs:
            v.append(f"set {s.id}: {len(s.pairs)} pairs, outside {size.min_pairs}-{size.max_pairs}")
        members: list[Participant] = []
        orgs: Counter[str] = Counter()
        for pid in s.pairs:
            in_set[pid] += 1
            pair = pairs.get(pid)
            if pair is None or pair.cohort != s.cohort:
                v.append(f"set {s.id}: pair {pid} is not in cohort {s.cohort}")
                continue
            if pair.learning_set != s.id:
                v.append(f"set {s.id}: pair {pid} names set {pair.learning_set}")
            duo = [people[x] for x in (pair.patient_leader, pair.partner) if x in people]
            members += duo
            for org in {_same(m.organisation) for m in duo}:
                orgs[org] += 1
        if instance.rules.one_organisation_per_set == "hard":
            for org, n in sorted(orgs.items()):
                if n > 1:
                    v.append(f"set {s.id}: {n} pairs from one organisation ({org})")
        ids = {m.id for m in members}
        for m in members:
            for other in m.avoid:
                if other in ids:
                    v.append(f"set {s.id}: declared conflict {m.id} / {other} in one set")
        duos = [
            (people[pairs[pid].patient_leader], people[pairs[pid].partner])
            for pid in s.pairs
            if pid in pairs and pairs[pid].patient_leader in people and pairs[pid].partner in people
        ]
        if s.diversity is not None and len(duos) == len(s.pairs):
            expected = _set_diversity(instance, duos)
            if not abs(expected - s.diversity) <= 1e-5:
                v.append(f"set {s.id}: diversity {s.diversity} but recomputes to {expected:.6f}")
    for p in solution.pairs:
        if p.cohort is not None and in_set[p.id] != 1:
            v.append(f"{p.id}: in {in_set[p.id]} action-learning sets (should be 1)")
    return v


def check(instance: Instance, solution: Solution) -> None:
    """Raise :class:`VerificationError` when :func:`verify` finds any violation."""
    report = verify(instance, solution)
    if not report.ok:
        raise VerificationFailed([str(x) for x in report.violations])
