"""The hard rules of a plan, each stated once in domain words.

Pairing
    * a pair is one patient leader with one clinician or manager;
    * pre-formed pairs (both name each other in ``partner``) and locked pairs (``locks``) are
      kept as they are; a withdrawn person takes no part;
    * never paired: declared conflicts (``avoid``, either direction), ``forbidden_pairs``, one
      organisation under ``rules.same_organisation = "forbid"``, two local systems under
      ``rules.local_system = "require"``, and two people with no cohort both can attend
      (:func:`can_attend`).
Placement
    * a pair goes only to a cohort both members can attend in full, in a mode both can attend;
    * at most ``capacity_pairs`` pairs per cohort, and a count that splits into sets
      (:func:`set_counts`, :func:`splits_into_sets`; the most a cohort can hold:
      :func:`most_pairs_held`).
Action-learning sets
    * ``set_size.min_pairs`` to ``set_size.max_pairs`` pairs per set;
    * never two pairs sharing an organisation in one set (:func:`shares_organisation`, when
      ``rules.one_organisation_per_set = "hard"``: :func:`one_organisation_per_set`);
    * never two people with a declared conflict in one set (:func:`declared_conflict`,
      :func:`pairs_in_conflict`; ``forbidden_pairs`` may share one);
    * together: the pairs of pairs that may never share a set (:func:`never_share_a_set`).

Organisations (and systems) are compared by their category key
(:func:`matcher.contract.keys.category_key`): :func:`organisation_key`.

Engine code calls these predicates, or states a vectorised, CP-SAT or flow form of one that a
property test ties to it (``tests/test_rules.py``). The verifier
(:mod:`matcher.verification.verify`) re-states them in its own code on purpose, so a bug in one
shows up as a disagreement.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, TypeAlias

from matcher.contract.keys import category_key

if TYPE_CHECKING:  # the Instance model checks itself with these rules: a type-only reference
    from matcher.contract.instance import Cohort, Instance, Participant

BOTH_MODES = frozenset({"in_person", "online"})
#: The roles on the other side of a pair from a patient leader.
PROFESSIONAL_ROLES: frozenset[str] = frozenset({"clinician", "manager"})

#: A pair's two members (patient leader, clinician or manager).
Duo: TypeAlias = "tuple[Participant, Participant]"


def can_attend(person: Participant, cohort: Cohort) -> bool:
    """Whether ``person`` can attend every session of ``cohort`` in its mode (``blended`` needs
    both modes): the cohort is among their ``available_cohorts`` (when listed) and none of its
    sessions falls on one of their ``unavailable_dates``."""
    if person.available_cohorts is not None and cohort.id not in person.available_cohorts:
        return False
    if clashing_dates(person, cohort):
        return False
    modes = set(person.attendance) if person.attendance is not None else BOTH_MODES
    needed = BOTH_MODES if cohort.mode == "blended" else {cohort.mode}
    return needed <= modes


def clashing_dates(person: Participant, cohort: Cohort) -> list[dt.date]:
    """The sessions of ``cohort`` that fall on dates ``person`` cannot attend."""
    if not person.unavailable_dates:
        return []
    off = set(person.unavailable_dates)
    return sorted(d for d in set(cohort.sessions) if d in off)


def uk_date(day: dt.date) -> str:
    """A date as people in the UK write it: ``12 May 2016``."""
    return f"{day.day} {day:%B %Y}"


def why_cannot_attend(person: Participant, cohort: Cohort) -> str | None:
    """Why ``person`` cannot attend ``cohort``, in words with IDs (``pl05 cannot attend c1 (12
    May 2016)``), or None when they can."""
    clash = clashing_dates(person, cohort)
    if clash:
        return f"{person.id} cannot attend {cohort.id} ({', '.join(uk_date(d) for d in clash)})"
    if person.available_cohorts is not None and cohort.id not in person.available_cohorts:
        return f"{person.id} cannot attend {cohort.id} (not among their available cohorts)"
    if not can_attend(person, cohort):
        modes = " or ".join(person.attendance or [])
        return f"{person.id} cannot attend {cohort.id} ({cohort.mode}; they attend {modes} only)"
    return None


def set_counts(lo: int, hi: int, n: int) -> list[int]:
    """Numbers of sets ``s`` into which ``n`` pairs split with ``lo..hi`` pairs per set: every
    ``s`` from 0 to ``n`` with ``s * lo <= n <= s * hi``, in increasing order (computed from its
    two ends, not by trying each ``s``)."""
    if hi <= 0:
        return [0] if n == 0 else []
    first = -(-n // hi)  # the fewest sets of at most hi pairs
    last = n if lo <= 0 else min(n, n // lo)  # the most sets of at least lo pairs
    return list(range(first, last + 1))


def usable_capacity(cohort: Cohort) -> int:
    """The most pairs ``cohort`` can hold: its capacity cut to a count that splits into sets of
    ``set_size.min_pairs`` to ``set_size.max_pairs`` pairs."""
    return most_pairs_held(
        cohort.set_size.min_pairs, cohort.set_size.max_pairs, cohort.capacity_pairs
    )


def splits_into_sets(lo: int, hi: int, n: int) -> bool:
    """Whether ``n`` pairs split into sets of ``lo..hi`` pairs (0 pairs: no set, yes)."""
    return bool(set_counts(lo, hi, n))


def most_pairs_held(lo: int, hi: int, capacity: int) -> int:
    """The most pairs a cohort of ``capacity`` pairs can hold: the largest count up to it that
    splits into sets of ``lo..hi`` (0 when none does)."""
    return next((k for k in range(capacity, -1, -1) if splits_into_sets(lo, hi, k)), 0)


def organisation_key(person: Participant) -> str:
    """The person's organisation as the rules compare it (its category key)."""
    return category_key(person.organisation)


def pair_organisations(duo: Duo) -> frozenset[str]:
    """The organisations (keys) a pair's members come from: one or two."""
    return frozenset(organisation_key(m) for m in duo)


def shares_organisation(p: Duo, q: Duo) -> bool:
    """Whether two pairs have an organisation in common (a member of one and a member of the
    other, compared by key)."""
    return bool(pair_organisations(p) & pair_organisations(q))


def one_organisation_per_set(instance: Instance) -> bool:
    """Whether two pairs sharing an organisation may never share a set (the rule is hard)."""
    return instance.rules.one_organisation_per_set == "hard"


def declared_conflict(a: Participant, b: Participant) -> bool:
    """Whether ``a`` and ``b`` declared a conflict (``avoid``, either direction): never paired,
    never in one set."""
    return b.id in a.avoid or a.id in b.avoid


def conflict_among(people: list[Participant]) -> bool:
    """Whether any two of ``people`` declared a conflict (:func:`declared_conflict`, read off
    each person's ``avoid`` list: linear in the people and their lists)."""
    ids = {p.id for p in people}
    return any(other in ids for p in people for other in p.avoid)


def pairs_in_conflict(p: Duo, q: Duo) -> bool:
    """Whether a member of one pair and a member of the other declared a conflict."""
    return any(declared_conflict(x, y) for x in p for y in q)


def may_share_a_set(instance: Instance, p: Duo, q: Duo) -> bool:
    """Whether two pairs may be in one action-learning set: no declared conflict between them,
    and no organisation in common while :func:`one_organisation_per_set` holds."""
    if pairs_in_conflict(p, q):
        return False
    return not (one_organisation_per_set(instance) and shares_organisation(p, q))


def never_share_a_set(instance: Instance, duos: list[Duo]) -> list[tuple[int, int]]:
    """Every pair of pairs (i < j, in order) that may never share a set
    (:func:`may_share_a_set`)."""
    return [
        (i, j)
        for i in range(len(duos))
        for j in range(i + 1, len(duos))
        if not may_share_a_set(instance, duos[i], duos[j])
    ]


def pairing_rule_breaks(instance: Instance, a: Participant, b: Participant) -> list[str]:
    """The hard pairing rules that pairing patient leader ``a`` with ``b`` would break, in
    words with IDs (empty when they may be paired). Pre-formed partners are not checked here:
    the caller knows who applied together."""
    out = []
    if declared_conflict(a, b):
        who = a.id if b.id in a.avoid else b.id
        out.append(f"declared conflict: {who} asked not to be paired with the other (avoid)")
    pair = {a.id, b.id}
    if any(set(fp) == pair for fp in instance.forbidden_pairs):
        out.append(f"{a.id}+{b.id} is a forbidden pair (forbidden_pairs)")
    same_org = organisation_key(a) == organisation_key(b)
    if instance.rules.same_organisation == "forbid" and same_org:
        out.append("both are from one organisation (rules.same_organisation = forbid)")
    if instance.rules.local_system == "require" and category_key(a.system) != category_key(
        b.system
    ):
        out.append("different local systems (rules.local_system = require)")
    common = [c.id for c in instance.cohorts if can_attend(a, c) and can_attend(b, c)]
    if not common:
        only_a = [c.id for c in instance.cohorts if can_attend(a, c)]
        only_b = [c.id for c in instance.cohorts if can_attend(b, c)]
        why = [
            w
            for c in instance.cohorts
            for w in (why_cannot_attend(a, c), why_cannot_attend(b, c))
            if w is not None and "(not among" not in w and "they attend" not in w
        ]
        out.append(
            f"no cohort both can attend: {a.id} only {', '.join(only_a) or 'none'}, "
            f"{b.id} only {', '.join(only_b) or 'none'}" + (f" ({'; '.join(why)})" if why else "")
        )
    return out
