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
      (:func:`set_counts`).
Action-learning sets
    * ``set_size.min_pairs`` to ``set_size.max_pairs`` pairs per set;
    * never two pairs sharing an organisation in one set (``rules.one_organisation_per_set =
      "hard"``);
    * never two people with a declared conflict in one set (``forbidden_pairs`` may share one).

The vectorised forms (:mod:`matcher.engine.scoring`, :mod:`matcher.engine.placement.model`,
:mod:`matcher.engine.sets`) implement these statements; the verifier
(:mod:`matcher.verification.verify`)
re-states them in its own code on purpose, so a bug in one shows up as a disagreement.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from matcher.contract.keys import category_key

if TYPE_CHECKING:  # the Instance model checks itself with these rules: a type-only reference
    from matcher.contract.instance import Cohort, Instance, Participant

BOTH_MODES = frozenset({"in_person", "online"})
#: The roles on the other side of a pair from a patient leader.
PROFESSIONAL_ROLES: frozenset[str] = frozenset({"clinician", "manager"})


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
    """Numbers of sets ``s`` into which ``n`` pairs split with ``lo..hi`` pairs per set."""
    return [s for s in range(0, n + 1) if s * lo <= n <= s * hi]


def usable_capacity(cohort: Cohort) -> int:
    """The most pairs ``cohort`` can hold: its capacity cut to a count that splits into sets of
    ``set_size.min_pairs`` to ``set_size.max_pairs`` pairs."""
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    return next((m for m in range(cohort.capacity_pairs, -1, -1) if set_counts(lo, hi, m)), 0)


def pairing_rule_breaks(instance: Instance, a: Participant, b: Participant) -> list[str]:
    """The hard pairing rules that pairing patient leader ``a`` with ``b`` would break, in
    words with IDs (empty when they may be paired). Pre-formed partners are not checked here:
    the caller knows who applied together."""
    out = []
    if b.id in a.avoid or a.id in b.avoid:
        who = a.id if b.id in a.avoid else b.id
        out.append(f"declared conflict: {who} asked not to be paired with the other (avoid)")
    pair = {a.id, b.id}
    if any(set(fp) == pair for fp in instance.forbidden_pairs):
        out.append(f"{a.id}+{b.id} is a forbidden pair (forbidden_pairs)")
    same_org = category_key(a.organisation) == category_key(b.organisation)
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
