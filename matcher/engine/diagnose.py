"""Why no pair can be placed: the cause named, per cohort, in plain words with IDs and the
remedy (exit 4's message). Each check is a necessary condition for a cohort to take pairs, so
a cause named here is real; the list is the first cause found per cohort."""

from __future__ import annotations

from collections import Counter

from matcher.contract.instance import Instance
from matcher.contract.rules import (
    one_organisation_per_set,
    organisation_key,
    pair_organisations,
    pairs_in_conflict,
    splits_into_sets,
)
from matcher.engine.placement.model import Candidate
from matcher.engine.scoring import people_by_id
from matcher.errors import Conflict
from matcher.words import count


def diagnose_cohorts(
    instance: Instance, candidates: list[Candidate], only: list[str] | None = None
) -> list[Conflict]:
    """For each cohort (or those in ``only``), why the pairs that could attend it cannot
    form a plan there, when a simple necessary condition fails."""
    people = people_by_id(instance)
    hard_org = one_organisation_per_set(instance)
    out: list[Conflict] = []
    for q, cohort in enumerate(instance.cohorts):
        if only is not None and cohort.id not in only:
            continue
        here = [c for c in candidates if q in c.cohorts]
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        cap = min(cohort.capacity_pairs, len(here))
        if not here:
            out.append(
                Conflict(
                    "attendance",
                    f"{cohort.id}: no pair can attend it in full, in its mode ({cohort.mode})",
                    (cohort.id,),
                    "check the cohort's dates and mode and the people's available_cohorts",
                )
            )
            continue
        if cohort.capacity_pairs == 0:
            out.append(
                Conflict(
                    "capacity",
                    f"{cohort.id}: capacity 0 ({count(len(here), 'pair')} could attend it)",
                    (cohort.id,),
                    f"raise {cohort.id}'s capacity_pairs",
                )
            )
            continue
        if not any(splits_into_sets(lo, hi, k) for k in range(1, cap + 1)):
            out.append(
                Conflict(
                    "set_size",
                    f"{cohort.id}: only {count(cap, 'pair')} can go there, fewer than one set of "
                    f"{lo}-{hi} pairs",
                    (cohort.id,),
                    f"lower {cohort.id}'s set_size.min_pairs to {cap} or open it to more pairs",
                )
            )
            continue
        if hard_org:
            orgs: Counter[str] = Counter()
            spelling: dict[str, str] = {}  # the organisation as first typed, for the message
            for c in here:
                duo = (people[c.patient_leader], people[c.partner])
                for m in duo:
                    spelling.setdefault(organisation_key(m), m.organisation)
                for org in sorted(pair_organisations(duo)):  # ties: first in key order
                    orgs[org] += 1
            # one organisation in every pair: each set holds one pair at most
            key, n = orgs.most_common(1)[0]
            top = spelling[key]
            if n == len(here) and lo >= 2:
                out.append(
                    Conflict(
                        "one_organisation_per_set",
                        f"{cohort.id}: every pair that can attend it includes {top}, and a set "
                        f"of {lo} pairs may hold only one pair per organisation",
                        (cohort.id,),
                        "set rules.one_organisation_per_set to soft, or lower set_size.min_pairs",
                    )
                )
                continue
        if _conflict_clique_blocks(instance, here, lo):
            out.append(
                Conflict(
                    "conflicts",
                    f"{cohort.id}: declared conflicts (avoid) between the pairs that can attend "
                    f"it leave no set of {lo} pairs without a conflict",
                    (cohort.id,),
                    "review the avoid lists, or lower set_size.min_pairs",
                )
            )
    return out


def _conflict_clique_blocks(instance: Instance, here: list[Candidate], lo: int) -> bool:
    """True when every two of the cohort's pairs conflict and a set needs 2+ pairs."""
    if lo < 2 or len(here) < 2:
        return False
    people = people_by_id(instance)
    duos = [(people[c.patient_leader], people[c.partner]) for c in here]
    return all(
        pairs_in_conflict(duos[i], duos[j])
        for i in range(len(here))
        for j in range(i + 1, len(here))
    )


def diagnose_no_placement(instance: Instance, candidates: list[Candidate]) -> list[Conflict]:
    """Why none of ``candidates`` (the formed pairs) can be placed in any cohort."""
    if not any(c.cohorts for c in candidates):
        return [
            Conflict(
                "attendance",
                "no pair has a cohort both members can attend in full, in a mode both can attend",
                (),
                "check cohort dates and modes and the people's available_cohorts and attendance",
            )
        ]
    return diagnose_cohorts(instance, candidates)
