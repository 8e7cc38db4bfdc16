"""Placement at scale: what the set rules allow per cohort, in numbers.

The placement model (:mod:`matcher.engine.placement.model`) already holds each organisation to at
most ``s``
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
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from matcher.contract.instance import Instance, Participant
from matcher.contract.rules import one_organisation_per_set, organisation_key, pair_organisations
from matcher.engine.pairing import Pairing, complete_greedily
from matcher.engine.placement.model import Candidate, Placement, cohort_ok, cohort_room
from matcher.engine.progress import Stop
from matcher.engine.scoring import pair_scores, people_by_id
from matcher.engine.sets import check_set_rules
from solvers.assignment import max_weight_matching_sparse
from solvers.flow import bin_flow, pair_flow
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
    if not one_organisation_per_set(instance):
        return {}
    fill: dict[int, int] = defaultdict(int)
    for k in formed:
        if (q := cohort_of.get(k)) is not None:
            fill[q] += 1
    # a full cohort turns pairs away for its capacity (the reason says so); the set-rule
    # figures are for cohorts with room left, where the set rules are what keeps pairs out
    wanted = {
        q
        for k in formed
        if cohort_of.get(k) is None
        for q in candidates[k].cohorts
        if fill[q] < instance.cohorts[q].capacity_pairs
    }
    if not wanted:
        return {}
    people = people_by_id(instance)
    able: dict[int, list[int]] = defaultdict(list)
    for k in formed:
        for q in candidates[k].cohorts:
            if q in wanted:
                able[q].append(k)
    out: dict[int, CohortPressure] = {}
    for q, ks in sorted(able.items()):
        cohort = instance.cohorts[q]
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        bound, by_org = organisation_bound(instance, q, [candidates[k] for k in ks], people)
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


def organisation_bound(
    instance: Instance, q: int, pairs: list[Candidate], people: Mapping[str, Participant]
) -> tuple[int, dict[str, list[int]]]:
    """Most of ``pairs`` cohort ``q`` can hold with one pair per organisation in each set
    (:func:`solvers.grouping.grouping_bound`, capped by capacity), and the pairs (indices into
    ``pairs``) of each organisation. Organisations are compared as the rules compare them
    (:func:`matcher.contract.rules.pair_organisations`); the keys are the first spelling met."""
    cohort = instance.cohorts[q]
    by_tag: dict[str, list[int]] = defaultdict(list)
    spelling: dict[str, str] = {}
    for i, c in enumerate(pairs):
        duo = (people[c.patient_leader], people[c.partner])
        for m in duo:
            spelling.setdefault(organisation_key(m), m.organisation)
        for key in sorted(pair_organisations(duo)):
            by_tag[key].append(i)
    by_org = {spelling[key]: v for key, v in sorted(by_tag.items())}
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    bound, _ = grouping_bound(len(pairs), lo, hi, [v for v in by_org.values() if len(v) > 1])
    return min(bound, cohort.capacity_pairs), by_org


def pressure_note(pressure: dict[int, CohortPressure], candidate: Candidate) -> str:
    """The set-rule sentences for a wait-listed pair's cohorts ("" when none applies), to
    append to its wait-list reason."""
    parts = [pressure[q].reason for q in candidate.cohorts if q in pressure and pressure[q].reason]
    return "".join(f"; {p}" for p in parts)


def complete_pairing(
    instance: Instance,
    pairing: Pairing,
    candidates: list[Candidate],
    placement: Placement,
    stop: Stop | None = None,
) -> tuple[list[Candidate], Placement, str | None]:
    """Pair, among the lone applicants no formed pair holds, as many as can be paired (an
    exact maximum-weight matching over their allowed pairs); the new pairs are wait-listed.

    A safety net for level (b), most pairs formed: when a budget cuts the joint or repair
    model short, or the flow repair re-pairs along candidate lists only, it can leave two
    people unpaired who could be paired (the verifier rejects that plan). On candidate lists
    (large intakes) the rest are then paired greedily over *all* allowed pairs, as the pairing
    stage does. Placement is unchanged, so every level above (b) keeps its value. Returns the
    candidates and placement (unchanged when there is nothing to add) and a note, or None.
    ``stop``: checked between the steps (progress; it never cuts the completion short).
    """

    def check(what: str) -> object:
        return None if stop is None else stop.check(f"placement: pairing the people left, {what}")

    scan = pairing.scan
    if not pairing.kind.re_pairs or not len(scan.cand_rows):
        return candidates, placement, None
    busy = {
        x for k in placement.formed for x in (candidates[k].patient_leader, candidates[k].partner)
    }
    free_r = np.array([pid not in busy for pid in scan.rows.ids], dtype=bool)
    free_c = np.array([pid not in busy for pid in scan.cols.ids], dtype=bool)
    r, c, s = scan.cand_rows, scan.cand_cols, scan.cand_scores
    keep = free_r[r] & free_c[c]
    if not keep.any():
        return candidates, placement, None
    r, c, s = r[keep], c[keep], s[keep]
    shape = (len(scan.rows.ids), len(scan.cols.ids))
    check(f"matching over {len(r):,} candidate pairs")
    if pairing.bottleneck is None:
        matched = max_weight_matching_sparse(r, c, s, shape, on_step=check)
    else:
        # fair: at or above the proven worst pair first; then (most pairs formed comes first)
        # whoever is still free and allowed together, below it: wait-listed pairs, found by
        # the oracle of `fair` end to end (tests/test_oracles.py)
        high = s >= pairing.bottleneck
        matched = max_weight_matching_sparse(
            r[high], c[high], s[high], shape, on_step=check
        ).reshape(-1, 2)
        rest = ~np.isin(r, matched[:, 0]) & ~np.isin(c, matched[:, 1])
        if rest.any():
            low = max_weight_matching_sparse(
                r[rest], c[rest], s[rest], shape, on_step=check
            ).reshape(-1, 2)
            matched = np.concatenate([matched, low])
    check(f"{len(matched)} pairs matched")
    # the matched pairs' scores, read off their candidates (the last one listed, as a dict of
    # every candidate would keep; that dict took over 1 s at 20,000 participants)
    width = np.int64(shape[1])
    wanted = np.isin(
        r.astype(np.int64) * width + c,
        matched.reshape(-1, 2)[:, 0].astype(np.int64) * width + matched.reshape(-1, 2)[:, 1],
    )
    score = {
        (int(i), int(j)): float(v) for i, j, v in zip(r[wanted], c[wanted], s[wanted], strict=True)
    }
    if not scan.dense:  # beyond the candidate lists: any allowed pair, best score first
        held = np.array(
            [
                (scan.rows.index[x.patient_leader], scan.cols.index[x.partner])
                for k in placement.formed
                if (x := candidates[k]).patient_leader in scan.rows.index
                and x.partner in scan.cols.index
            ]
            + matched.tolist(),
            dtype=np.int64,
        ).reshape(-1, 2)
        before = {(i, j) for i, j in held.tolist()}
        check("any allowed pair, best score first")
        more = np.array(
            [
                p
                for p in complete_greedily(instance, scan, held, tick=check).tolist()
                if tuple(p) not in before
            ],
            dtype=np.int64,
        ).reshape(-1, 2)
        if len(more):
            scores = pair_scores(
                instance, [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in more.tolist()]
            )[0]
            score.update(
                {(int(i), int(j)): float(v) for (i, j), v in zip(more, scores, strict=True)}
            )
            matched = np.concatenate([matched.reshape(-1, 2), more])
    if not len(matched):
        return candidates, placement, None
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


@dataclass(frozen=True)
class Ceiling:
    """The most pairs any plan can place (``value``), from two maximum flows (see
    :func:`placement_ceiling`), with the flows (a unit is a pair that cannot be re-paired) and
    the arcs and room they used."""

    value: int
    #: per flow, tighter first: which lone side it kept, each unit's cohort, and each of that
    #: side's lone people's cohort (-1: not placed)
    flows: list[tuple[str, NDArray[np.int64], NDArray[np.int64]]]
    row_arcs: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
    col_arcs: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
    room: list[int]
    shape: tuple[int, int]  # lone patient leaders, lone professionals


#: Costs of the ceiling's flow arcs: among the flows that place the most, one that keeps locked
#: pairs in their cohort, then moves as few placed people as possible.
_COST_LOCKED, _COST_STAY, _COST_MOVE = 0, 1, 3


def placement_ceiling(
    instance: Instance,
    pairing: Pairing,
    units: list[Candidate],
    unit_current: list[int | None],
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64]],
    lone_current: tuple[dict[int, int], dict[int, int]],
    locked: set[int],
) -> Ceiling:
    """An upper bound on the pairs any plan can place, with the flows that reach it.

    ``units`` are the pairs that stay formed (pre-formed and locked; ``unit_current`` their
    cohort index in the current plan, or None); lone applicants may be paired along
    ``lone_edges`` (row, column indices into ``pairing.scan``); ``lone_current`` maps placed
    lone people (row index, column index) to their current cohort; ``locked`` holds the indices
    of locked units.

    Every plan places each unit in a cohort it can attend and each lone pair in a cohort both
    members can attend, within each cohort's room (capacity cut to the largest count that
    splits into sets: :func:`matcher.engine.placement.model.cohort_room`). Forgetting one lone side
    gives a
    maximum flow of units and the other side's people into cohorts, with the lone people
    capped at the size of the smaller side (only people with an allowed partner who can attend
    the same cohort count). Each of the two flows is at least the number of pairs any plan
    places, so the smaller is a bound; both are exact maximum flows (OR-Tools). A cohort that
    only pre-formed pairs can reach is also held to what one organisation per set lets those
    pairs fill (:func:`organisation_bound`), when that rule is hard."""
    scan = pairing.scan
    r, c = lone_edges
    n_q = len(instance.cohorts)
    room = cohort_room(instance, len(units) + min(len(scan.rows.ids), len(scan.cols.ids)))
    # (person, cohort) for people with an allowed partner who can attend that cohort too
    per_q = _able_with_a_partner(scan.rows.attend, scan.cols.attend, r, c)
    if one_organisation_per_set(instance):
        # a cohort only pre-formed pairs can reach holds at most what the set rules allow them
        people = people_by_id(instance)
        for q in range(n_q):
            if len(per_q["rows"][q][0]) or len(per_q["cols"][q][0]):
                continue
            able = [u for u in units if q in u.cohorts]
            if able:
                room[q] = min(room[q], organisation_bound(instance, q, able, people)[0])
    u_item = np.array([k for k, u in enumerate(units) for _ in u.cohorts], dtype=np.int64)
    u_bin = np.array([q for u in units for q in u.cohorts], dtype=np.int64)
    u_cost = np.array(
        [
            _COST_LOCKED if k in locked else _COST_STAY if unit_current[k] == q else _COST_MOVE
            for k, u in enumerate(units)
            for q in u.cohorts
        ],
        dtype=np.int64,
    )
    # people on each side with an allowed partner, counted by marking (np.unique sorts or
    # hashes the ~720,000 edges at 5,000 participants: 20-70 ms)
    cap = min(_distinct(r, len(scan.rows.ids)), _distinct(c, len(scan.cols.ids)))
    arcs = {}
    flows: list[tuple[int, str, NDArray[np.int64], NDArray[np.int64]]] = []
    for side, current, n in (
        ("cols", lone_current[1], len(scan.cols.ids)),
        ("rows", lone_current[0], len(scan.rows.ids)),
    ):
        item = np.concatenate([p for p, _ in per_q[side]]) if n_q else np.zeros(0, np.int64)
        q_of = np.concatenate([b for _, b in per_q[side]]) if n_q else np.zeros(0, np.int64)
        now = np.full(n, -1, dtype=np.int64)
        for person, q in current.items():
            now[person] = q
        cost = np.where(now[item] == q_of, _COST_STAY, _COST_MOVE).astype(np.int64)
        arcs[side] = (item, q_of, cost)
        f = bin_flow(len(units), (u_item, u_bin, u_cost), n, (item, q_of, cost), room, cap)
        flows.append((f.value, side, f.unit_bin, f.single_bin))
    flows.sort(key=lambda f: f[0])  # stable: the columns' flow first on a tie
    shape = (len(scan.rows.ids), len(scan.cols.ids))
    kept = [(side, at, lone) for _, side, at, lone in flows]
    return Ceiling(flows[0][0], kept, arcs["rows"], arcs["cols"], room, shape)


def _distinct(indices: NDArray[np.int64], n: int) -> int:
    """How many distinct values ``indices`` (each in ``0..n-1``) holds."""
    seen = np.zeros(n, dtype=np.bool_)
    seen[indices] = True
    return int(np.count_nonzero(seen))


def _able_with_a_partner(
    rows_attend: NDArray[np.int64],
    cols_attend: NDArray[np.int64],
    r: NDArray[np.int64],
    c: NDArray[np.int64],
) -> dict[str, list[tuple[NDArray[np.int64], NDArray[np.int64]]]]:
    """Per side and cohort q, the people (and q repeated) who have an allowed partner along the
    edges ``(r[e], c[e])`` such that both can attend q. Cohorts are packed 64 to a machine
    word, so each edge is read once per 64 cohorts (a loop over cohorts read all edges once
    per cohort: 1.4 s at 5,000 participants)."""
    n_q = rows_attend.shape[1]
    out: dict[str, list[tuple[NDArray[np.int64], NDArray[np.int64]]]] = {"rows": [], "cols": []}
    for w in range(0, n_q, 64):
        qs = np.arange(w, min(n_q, w + 64))
        bits = np.left_shift(np.uint64(1), (qs - w).astype(np.uint64))
        row_bits = ((rows_attend[:, qs] != 0).astype(np.uint64) * bits).sum(axis=1, dtype=np.uint64)
        col_bits = ((cols_attend[:, qs] != 0).astype(np.uint64) * bits).sum(axis=1, dtype=np.uint64)
        common = row_bits[r] & col_bits[c]
        row_any = np.zeros(len(row_bits), dtype=np.uint64)
        col_any = np.zeros(len(col_bits), dtype=np.uint64)
        np.bitwise_or.at(row_any, r, common)
        np.bitwise_or.at(col_any, c, common)
        for q, bit in zip(qs.tolist(), bits, strict=True):
            for side, anyq in (("rows", row_any), ("cols", col_any)):
                who = np.flatnonzero(anyq & bit).astype(np.int64)
                out[side].append((who, np.full(len(who), q, dtype=np.int64)))
    return out


def lone_pairs_along(
    ceiling: Ceiling, unit_cohort: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """With the units in ``unit_cohort``, the most lone patient leaders and professionals in
    cohorts in equal numbers within the room left (a maximum flow, fewest moves among them):
    each lone person's cohort, -1 when not placed (row array, column array)."""
    left = np.array(ceiling.room, dtype=np.int64)
    placed = unit_cohort[unit_cohort >= 0]
    left -= np.bincount(placed, minlength=len(left)).astype(np.int64)
    n_rows, n_cols = ceiling.shape
    flow = pair_flow(n_rows, ceiling.row_arcs, n_cols, ceiling.col_arcs, np.maximum(left, 0))
    return flow.row_bin, flow.col_bin


def place_by_moves(
    instance: Instance, candidates: list[Candidate], placement: Placement
) -> tuple[Placement, str | None]:
    """Place wait-listed pairs by moving placed pairs to other cohorts they can attend.

    A pair is wait-listed when every cohort it can attend is full; yet another pair there may
    be able to go to a cohort with room. For each wait-listed pair (in the plan's order) a
    shortest chain of such moves is searched (breadth first over the cohorts: a cohort leads to
    another when a pair placed in it can attend the other), ending in a cohort with room
    (:func:`matcher.engine.placement.model.cohort_room`, the ceiling's room); it is applied only
    when every cohort it changes still meets the placement model's cohort rules
    (:func:`matcher.engine.placement.model.cohort_ok`) and the set rules' fast checks
    (organisations, conflicts, sizes: :func:`matcher.engine.sets.check_set_rules`). This is
    the augmenting path of the maximum flow of pairs into cohorts, so the pairs placed reach
    that flow's value when the set rules allow. O(wait-listed x placed pairs). Returns the
    placement (unchanged when nothing moves) and a note in words, or None."""
    waiting = [k for k in placement.formed if placement.cohort_of.get(k) is None]
    if not waiting:
        return placement, None
    pos = {k: i for i, k in enumerate(placement.formed)}
    room = cohort_room(instance, len(placement.formed))
    where: dict[int, int | None] = dict(placement.cohort_of)
    members: dict[int, list[int]] = {q: [] for q in range(len(instance.cohorts))}
    for k in placement.formed:
        if (q := where.get(k)) is not None:
            members[q].append(k)
    people = people_by_id(instance)
    organisations: dict[tuple[str, str], frozenset[str]] = {}

    def duos(ks: list[int]) -> list[tuple[Participant, Participant]]:
        return [(people[candidates[k].patient_leader], people[candidates[k].partner]) for k in ks]

    def passes(q: int, ks: list[int]) -> bool:
        # the placement model's own cohort rules first (a declared conflict needs two sets),
        # then the sets' fast checks
        if not cohort_ok(instance, q, [candidates[k] for k in ks], people, organisations):
            return False
        check = check_set_rules(instance, instance.cohorts[q], duos(ks))
        return check.bound >= len(ks)

    placed_now, moved = 0, 0
    # Cohorts from which no chain of moves reaches room: every cohort a failed search visited
    # (it explored them all), until a move changes the cohorts. A pair that can attend only
    # such cohorts has no chain either (425 wait-listed pairs, one search instead of 425).
    dead: set[int] = set()
    for k in waiting:
        if dead.issuperset(candidates[k].cohorts):
            continue
        # breadth first from the cohorts k can attend; parent[q] = (cohort it came from, the
        # pair that would move from there to q)
        parent: dict[int, tuple[int, int] | None] = {}
        frontier = []
        for q in sorted(candidates[k].cohorts):
            parent[q] = None
            frontier.append(q)
        end = next((q for q in frontier if len(members[q]) < room[q]), None)
        while end is None and frontier:
            following = []
            for q in frontier:
                for j in members[q]:
                    for q2 in candidates[j].cohorts:
                        if q2 not in parent:
                            parent[q2] = (q, j)
                            following.append(q2)
                            if len(members[q2]) < room[q2]:
                                end = q2
                                break
                    if end is not None:
                        break
                if end is not None:
                    break
            frontier = following
        if end is None:
            dead.update(parent)
            continue
        # the chain, from the cohort with room back to one k can attend
        steps: list[tuple[int, int, int]] = []  # (pair, from cohort, to cohort)
        q = end
        while (step := parent[q]) is not None:
            steps.append((step[1], step[0], q))
            q = step[0]
        new = dict(members)
        for c in {src for _, src, _ in steps} | {dst for _, _, dst in steps} | {q}:
            new[c] = list(members[c])
        for j, src, dst in steps:
            new[src].remove(j)
            new[dst].append(j)
        new[q].append(k)
        touched = {dst for _, _, dst in steps} | {q}
        for c in touched:
            new[c].sort(key=pos.__getitem__)
        if not all(passes(c, new[c]) for c in touched):
            continue
        for j, _, dst in steps:
            where[j] = dst
        where[k] = q
        members = new
        dead.clear()
        placed_now += 1
        moved += len(steps)
    if not placed_now:
        return placement, None
    levels = dict(placement.levels)
    if "placed" in levels:
        levels["placed"] += placed_now
    note = (
        f"{placed_now} wait-listed pairs placed by moving {moved} placed pairs to other cohorts "
        "they can attend (all cohorts those pairs could attend were full)"
    )
    return replace(placement, cohort_of=where, levels=levels), note
