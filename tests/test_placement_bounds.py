"""Placement shortcuts that replace CP-SAT searches by proofs: the matching bound on the quality
level, the flow bound on the fullest cohort, and the decomposition proven optimal when its
optimal matching is placed at the flow ceiling (no joint model)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from matcher import parse_instance, solve, verify
from matcher.engine.placement.model import (
    Candidate,
    _balanced_without_search,
    _fullest,
    _fullest_lower_bound,
    _placement_ceiling,
    cohort_ok,
    drop_last_until_ok,
    greedy_placement,
    solve_placement,
)
from matcher.engine.placement.strategy import lone_upper_bound
from matcher.tools.generate import generate_instance
from tests.conftest import person


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 2**31 - 1))
def test_lone_upper_bound_is_the_best_matching_total(n: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < 0.6
    r, c = np.nonzero(mask)
    sc = rng.random(len(r)).round(4)
    dense = np.zeros((n, m))
    dense[r, c] = np.round(sc * 1000)
    rows, cols = linear_sum_assignment(dense, maximize=True)
    expected = int(dense[rows, cols].sum())
    assert lone_upper_bound(r.astype(np.int64), c.astype(np.int64), sc) == expected


def _cohorts(caps: list[int]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{q}",
            "sessions": ["2016-05-12"],
            "capacity_pairs": cap,
            "mode": "in_person",
            "set_size": {"min_pairs": 1, "max_pairs": 4},
        }
        for q, cap in enumerate(caps)
    ]


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.lists(st.lists(st.integers(0, 2), min_size=1, max_size=3), min_size=1, max_size=6),
)
def test_fullest_lower_bound_matches_brute_force(caps: list[int], options: list[list[int]]) -> None:
    """The flow bound equals the least fullest cohort over every assignment (no set rules bind
    with sets of 1-4 pairs and distinct organisations)."""
    people = []
    for k in range(len(options)):
        people.append(person(f"a{k}", "patient_leader", f"o{k}a", partner=f"b{k}"))
        people.append(person(f"b{k}", "clinician", f"o{k}b", partner=f"a{k}"))
    inst = parse_instance(
        {"schema_version": "1", "name": "t", "cohorts": _cohorts(caps), "participants": people}
    )
    cands = [
        Candidate(f"a{k}", f"b{k}", True, 0.0, tuple(sorted({q for q in opts if q < len(caps)})))
        for k, opts in enumerate(options)
    ]
    best_count, best_fullest = -1, 101
    for choice in itertools.product(*[(None, *c.cohorts) for c in cands]):
        fill = [sum(1 for q in choice if q == i) for i in range(len(caps))]
        if any(f > cap for f, cap in zip(fill, caps, strict=True)):
            continue
        count = sum(fill)
        fullest = _fullest(inst, dict(enumerate(choice)))
        assert fullest is not None
        if count > best_count or (count == best_count and fullest < best_fullest):
            best_count, best_fullest = count, fullest
    assert _fullest_lower_bound(inst, cands, best_count) == best_fullest
    # and the placement model agrees on the plan it returns
    placement = solve_placement(inst, cands)
    placed = sum(q is not None for q in placement.cohort_of.values())
    assert placed == best_count
    assert _fullest(inst, placement.cohort_of) == best_fullest


def test_decomposition_at_the_ceiling_is_optimal_without_the_joint_model() -> None:
    """Generated 150, seed 3: a pre-formed pair no cohort can take keeps the plan below the
    number of pairs, but the optimal matching is placed at the flow ceiling, so the plan is
    proven optimal on pairs placed, formed and the lone pairs' total (which the joint model
    used to leave 11% lower after 25 s)."""
    data = generate_instance(150, seed=3)
    inst = parse_instance(data)
    sol = solve(inst)
    assert verify(inst, sol).ok
    assert sol.run.outcomes is not None and sol.run.outcomes["placement"] == "optimal"
    assert sol.run.bound == 60.0
    assert sum(1 for p in sol.pairs if p.cohort) == 60
    assert any(n.startswith("decomposition: optimal matching") for n in sol.run.notes)
    assert not any("joint" in n for n in sol.run.notes)
    lone = sorted(p.score for p in sol.pairs if not p.preformed)
    assert len(lone) == 20 and round(sum(lone), 3) == 12.375
    assert solve(inst).model_dump_json() == sol.model_dump_json()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(2, 9), min_size=2, max_size=4),
    st.lists(
        st.tuples(st.lists(st.integers(0, 3), min_size=1, max_size=4), st.integers(0, 4)),
        min_size=2,
        max_size=14,
    ),
    st.integers(1, 2),
)
def test_balance_found_without_a_model_is_the_models_optimum(
    caps: list[int], pairs: list[tuple[list[int], int]], min_pairs: int
) -> None:
    """Fixed pairs, no cohort preferences: when the greedy plan (or the greedy plan with each
    cohort's room cut to the flow bound) places the most pairs with its fullest cohort at the
    flow bound, no model is built. That plan keeps every cohort rule, and CP-SAT, made to
    search the same candidates (a hint forces the model), finds no better on placed pairs or
    on level (d). Organisations repeat, so the one-organisation-per-set rule binds."""
    cohorts = _cohorts(caps)
    for c in cohorts:
        c["set_size"] = {"min_pairs": min_pairs, "max_pairs": 3}
    people = []
    for k, (_, org) in enumerate(pairs):
        people.append(person(f"a{k}", "patient_leader", f"org{org}", partner=f"b{k}"))
        people.append(person(f"b{k}", "clinician", f"trust{k}", partner=f"a{k}"))
    inst = parse_instance(
        {"schema_version": "1", "name": "t", "cohorts": cohorts, "participants": people}
    )
    cands = [
        Candidate(f"a{k}", f"b{k}", True, 0.0, tuple(sorted({q for q in opts if q < len(caps)})))
        for k, (opts, _) in enumerate(pairs)
    ]
    top = min(_placement_ceiling(inst, cands), len(cands))
    fast = _balanced_without_search(inst, cands, greedy_placement(inst, cands), top, None)
    searched = solve_placement(
        inst, cands, hint={(c.patient_leader, c.partner): None for c in cands}
    )
    if fast is None:
        return
    placed = sum(q is not None for q in fast.cohort_of.values())
    assert placed == top == sum(q is not None for q in searched.cohort_of.values())
    assert fast.status == "optimal" and fast.balance_proven
    members: dict[int, list[Candidate]] = {}
    for k, q in fast.cohort_of.items():
        if q is not None:
            members.setdefault(q, []).append(cands[k])
    assert all(cohort_ok(inst, q, ms) for q, ms in members.items())
    # level (d) without preferences is the fullest cohort: none of CP-SAT's is emptier
    fullest = _fullest(inst, fast.cohort_of)
    assert fullest == _fullest_lower_bound(inst, cands, top)
    assert fullest is not None and fullest <= (_fullest(inst, searched.cohort_of) or 0)
    if searched.balance_proven and "balance" in searched.levels:
        assert fast.levels["balance"] == searched.levels["balance"]
    assert fast.levels["balance"] == (2 * len(cands) + 1) * (100 - fullest)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 3),
    st.integers(0, 2),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=0, max_size=16),
    st.lists(st.tuples(st.integers(0, 15), st.integers(0, 31)), max_size=6),
    st.booleans(),
)
def test_dropping_last_pairs_keeps_what_cohort_ok_keeps(
    capacity: int,
    min_pairs: int,
    extra: int,
    orgs: list[tuple[int, int]],
    avoid: list[tuple[int, int]],
    hard: bool,
) -> None:
    """drop_last_until_ok keeps the same pairs as dropping the last one while cohort_ok fails,
    over capacities, set sizes, shared organisations and declared conflicts."""
    people = []
    for k, (oa, ob) in enumerate(orgs):
        people.append(person(f"a{k}", "patient_leader", f"org{oa}", partner=f"b{k}"))
        people.append(person(f"b{k}", "clinician", f"org{ob}", partner=f"a{k}"))
    ids = [p["id"] for p in people]
    for who, whom in avoid:  # between people of two pairs (never their own partner)
        if ids and (who % len(ids)) // 2 != (whom % len(ids)) // 2:
            listed = people[who % len(ids)]["avoid"]
            if ids[whom % len(ids)] not in listed:
                listed.append(ids[whom % len(ids)])
    cohorts = _cohorts([max(capacity, min_pairs)])
    cohorts[0]["set_size"] = {"min_pairs": min_pairs, "max_pairs": min_pairs + extra}
    inst = parse_instance(
        {
            "schema_version": "1",
            "name": "t",
            "cohorts": cohorts,
            "participants": people,
            "rules": {"one_organisation_per_set": "hard" if hard else "soft"},
        }
    )
    cands = [Candidate(f"a{k}", f"b{k}", True, 0.0, (0,)) for k in range(len(orgs))]
    by_id = inst.participants_by_id()
    naive = list(range(len(cands)))
    while naive and not cohort_ok(inst, 0, [cands[k] for k in naive], by_id):
        naive.pop()
    kept = list(range(len(cands)))
    drop_last_until_ok(inst, 0, cands, kept, by_id)
    assert kept == naive
