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
from dataclasses import dataclass, replace

import numpy as np

from matcher.pairing import Pairing
from matcher.placement import Candidate, Placement
from matcher.schema import Instance
from matcher.scoring import tag
from solvers.assignment import max_weight_matching_sparse
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
    """Per cohort index that a wait-listed pair could attend: how far the
    one-organisation-per-set rule limits it (see module docstring). O(pairs) per cohort plus
    the bound's O(cliques * pairs / min set size); nothing when no pair is wait-listed."""
    if instance.rules.one_organisation_per_set != "hard":
        return {}
    wanted = {q for k in formed if cohort_of.get(k) is None for q in candidates[k].cohorts}
    if not wanted:
        return {}
    people = instance.participants_by_id()
    able: dict[int, list[int]] = defaultdict(list)
    for k in formed:
        for q in candidates[k].cohorts:
            if q in wanted:
                able[q].append(k)
    out: dict[int, CohortPressure] = {}
    for q, ks in sorted(able.items()):
        cohort = instance.cohorts[q]
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        # organisations compared as tag() normalises them; messages use the first ID spelling
        by_tag: dict[str, list[int]] = defaultdict(list)
        spelling: dict[str, str] = {}
        for i, k in enumerate(ks):
            c = candidates[k]
            orgs = (people[c.patient_leader].organisation, people[c.partner].organisation)
            for org in orgs:
                spelling.setdefault(tag(org), org)
            for key in sorted({tag(org) for org in orgs}):
                by_tag[key].append(i)
        by_org = {spelling[key]: v for key, v in sorted(by_tag.items())}
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


def complete_pairing(
    pairing: Pairing, candidates: list[Candidate], placement: Placement
) -> tuple[list[Candidate], Placement, str | None]:
    """Pair, among the lone applicants no formed pair holds, as many as can be paired (an
    exact maximum-weight matching over their allowed pairs); the new pairs are wait-listed.

    A safety net for level (b), most pairs formed: when a budget cuts the joint or repair
    model short, it can leave two people unpaired who could be paired (the verifier rejects
    that plan). Placement is unchanged, so every level above (b) keeps its value. Returns the
    candidates and placement (unchanged when there is nothing to add) and a note, or None.
    """
    scan = pairing.scan
    if pairing.objective == "stable" or not len(scan.cand_rows):
        return candidates, placement, None
    busy = {
        x for k in placement.formed for x in (candidates[k].patient_leader, candidates[k].partner)
    }
    free_r = np.array([pid not in busy for pid in scan.rows.ids], dtype=bool)
    free_c = np.array([pid not in busy for pid in scan.cols.ids], dtype=bool)
    r, c, s = scan.cand_rows, scan.cand_cols, scan.cand_scores
    keep = free_r[r] & free_c[c]
    if pairing.bottleneck is not None:  # fair: never pair below the proven worst pair
        keep &= s >= pairing.bottleneck
    if not keep.any():
        return candidates, placement, None
    r, c, s = r[keep], c[keep], s[keep]
    matched = max_weight_matching_sparse(r, c, s, (len(scan.rows.ids), len(scan.cols.ids)))
    if not len(matched):
        return candidates, placement, None
    score = {(int(i), int(j)): float(v) for i, j, v in zip(r, c, s, strict=True)}
    extra = []
    for i, j in matched.tolist():
        both = scan.rows.attend[i] & scan.cols.attend[j]
        extra.append(
            Candidate(
                scan.rows.ids[i],
                scan.cols.ids[j],
                False,
                score[i, j],
                tuple(int(q) for q in np.flatnonzero(both)),
            )
        )
    start = len(candidates)
    new_ids = list(range(start, start + len(extra)))
    cohort_of = {**placement.cohort_of, **dict.fromkeys(new_ids)}
    completed = replace(
        placement,
        formed=[*placement.formed, *new_ids],
        cohort_of=cohort_of,
        status="feasible",
    )
    note = (
        f"pairing completed: {len(extra)} more pairs formed among people the placement model "
        "left unpaired within its budget (wait-listed)"
    )
    return [*candidates, *extra], completed, note
