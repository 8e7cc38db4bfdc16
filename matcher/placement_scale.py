"""Placement at scale: what the set rules allow per cohort, in numbers.

The placement model (:mod:`matcher.placement`) already holds each organisation to at most ``s``
pairs in a cohort of ``s`` sets. When a few organisations dominate a cohort, that rule, not the
capacity, is what keeps pairs out, and the wait-list has to say so with the figures and the
remedy. :func:`set_rule_pressure` computes, per cohort, an upper bound on the pairs the set rules
let it hold (:func:`solvers.grouping.grouping_bound` over the pairs that could attend it, one
clique per organisation and per group of mutually conflicting pairs) and, when that bound or
the busiest organisation is what limits the cohort, the sentence to add to the reasons of the
pairs wait-listed from it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from matcher.placement import Candidate
from matcher.schema import Instance
from solvers.grouping import grouping_bound


@dataclass(frozen=True)
class CohortPressure:
    """The set rules' limit on one cohort.

    ``candidates``: formed pairs that could attend it; ``placed``: pairs placed in it;
    ``bound``: most pairs the set rules let it hold (also capped by capacity); ``busiest``:
    the organisation in most of the candidates and its count; ``reason``: the sentence for the
    wait-list, or "" when the set rules do not limit this cohort."""

    cohort: str
    candidates: int
    placed: int
    bound: int
    busiest: tuple[str, int] | None
    reason: str


def set_rule_pressure(
    instance: Instance,
    candidates: list[Candidate],
    formed: list[int],
    cohort_of: dict[int, int | None],
) -> dict[int, CohortPressure]:
    """Per cohort index: how far the one-organisation-per-set rule limits it (see module
    docstring). O(pairs) per cohort plus the bound's O(cliques * pairs / min set size)."""
    if instance.rules.one_organisation_per_set != "hard":
        return {}
    people = instance.participants_by_id()
    able: dict[int, list[int]] = defaultdict(list)
    for k in formed:
        for q in candidates[k].cohorts:
            able[q].append(k)
    out: dict[int, CohortPressure] = {}
    for q, ks in sorted(able.items()):
        cohort = instance.cohorts[q]
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        by_org: dict[str, list[int]] = defaultdict(list)
        for i, k in enumerate(ks):
            c = candidates[k]
            for org in sorted(
                {people[c.patient_leader].organisation, people[c.partner].organisation}
            ):
                by_org[org].append(i)
        bound, _ = grouping_bound(len(ks), lo, hi, [v for v in by_org.values() if len(v) > 1])
        bound = min(bound, cohort.capacity_pairs)
        placed = sum(1 for k in ks if cohort_of.get(k) == q)
        busiest = None
        if by_org:
            org = min(by_org, key=lambda o: (-len(by_org[o]), o))
            busiest = (org, len(by_org[org]))
        reason = ""
        limited = bound < min(len(ks), cohort.capacity_pairs)
        if limited and busiest is not None:
            org, count = busiest
            reason = (
                f"in {cohort.id}, {len(ks)} pairs could attend and organisation {org} is in "
                f"{count} of them, but a set holds at most one pair per organisation: with sets "
                f"of {lo}-{hi} pairs at most {bound} of the {len(ks)} can be placed there "
                f"({placed} placed); set rules.one_organisation_per_set to 'soft' to place more"
            )
        out[q] = CohortPressure(cohort.id, len(ks), placed, bound, busiest, reason)
    return out


def pressure_note(pressure: dict[int, CohortPressure], candidate: Candidate) -> str:
    """The set-rule sentences for a wait-listed pair's cohorts ("" when none applies), to
    append to its wait-list reason."""
    parts = [pressure[q].reason for q in candidate.cohorts if q in pressure and pressure[q].reason]
    return "".join(f"; {p}" for p in parts)
