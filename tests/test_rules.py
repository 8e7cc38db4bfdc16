"""Each engine rule is stated once, in matcher.contract.rules; every other form of it (vectorised
numpy, index sets, CP-SAT) is tied to that statement here by a property test (hypothesis); the
constants the verifier, the CLI or the metrics re-state have drift tests.

The verifier's own restatements (matcher.verification.verify) are independent on purpose and are
tied to the engine by the end-to-end tests (every solve verified), not here.
"""

from __future__ import annotations

import importlib
import itertools
from typing import Any

import click
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher import parse_instance
from matcher.contract.instance import Instance, Participant, Weights
from matcher.contract.rules import (
    can_attend,
    conflict_among,
    declared_conflict,
    may_share_a_set,
    most_pairs_held,
    never_share_a_set,
    one_organisation_per_set,
    pair_organisations,
    pairing_rule_breaks,
    pairs_in_conflict,
    set_counts,
    shares_organisation,
    splits_into_sets,
)
from matcher.engine import metrics, pairing, scoring
from matcher.engine import solve as engine_solve
from matcher.engine.placement.model import Candidate, cohort_ok, cohort_room, solve_placement
from matcher.engine.sets import _conflicts, _links, _organisations
from tests.conftest import person

verify_module = importlib.import_module("matcher.verification.verify")
Data = dict[str, Any]
Duo = tuple[Participant, Participant]

ORGS = ["Org A", "org-a", "ORG_A", "org b", "Org-B", "org c"]
TOPICS = ["carers", "diabetes", "frailty"]
MODES = [["online"], ["in_person"], ["in_person", "online"]]


@st.composite
def intakes(draw: st.DrawFn, *, lone: bool = False) -> Instance:
    """Small intakes: 1-3 cohorts of every mode, organisations spelt several ways, declared
    conflicts, forbidden pairs, each pairing and set rule setting; pre-formed pairs unless
    ``lone``."""
    n_cohorts = draw(st.integers(1, 3))
    cohorts = []
    for q in range(n_cohorts):
        lo = draw(st.integers(1, 3))
        cohorts.append(
            {
                "id": f"c{q}",
                "sessions": ["2016-05-12"],
                "capacity_pairs": draw(st.sampled_from([0, *range(lo, 7)])),  # 0 closes it
                "mode": draw(st.sampled_from(["in_person", "online", "blended"])),
                "set_size": {"min_pairs": lo, "max_pairs": lo + draw(st.integers(0, 2))},
            }
        )
    people: list[Data] = []
    for i in range(draw(st.integers(2, 12))):
        role = "patient_leader" if i % 2 == 0 else draw(st.sampled_from(["clinician", "manager"]))
        people.append(
            person(
                f"p{i}",
                role,
                draw(st.sampled_from(ORGS)),
                system=draw(st.sampled_from(["s1", "S-1", "s2"])),
                interests=draw(st.lists(st.sampled_from(TOPICS), max_size=2, unique=True)),
                available_cohorts=draw(
                    st.none() | st.lists(st.sampled_from([c["id"] for c in cohorts]), unique=True)
                ),
                attendance=draw(
                    st.none()
                    | st.sampled_from([["online"], ["in_person"], ["in_person", "online"]])
                ),
            )
        )
    pls = [p for p in people if p["role"] == "patient_leader"]
    prs = [p for p in people if p["role"] != "patient_leader"]
    if not lone:
        for a, b in list(zip(pls, prs, strict=False))[: draw(st.integers(0, 4))]:
            a["partner"], b["partner"] = b["id"], a["id"]
    for p in people:
        others = [q["id"] for q in people if q["id"] not in (p["id"], p["partner"])]
        if len(others) > 0 and draw(st.booleans()):
            p["avoid"] = draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
    lone_pl = [p["id"] for p in pls if not p["partner"]]
    lone_pr = [p["id"] for p in prs if not p["partner"]]
    forbidden = []
    if lone_pl and lone_pr:
        forbidden = draw(
            st.lists(
                st.tuples(st.sampled_from(lone_pl), st.sampled_from(lone_pr)).map(list),
                max_size=2,
                unique_by=lambda x: tuple(sorted(x)),
            )
        )
    rules = {
        "same_organisation": draw(st.sampled_from(["allow", "avoid", "forbid"])),
        "local_system": draw(st.sampled_from(["require", "prefer", "ignore"])),
        "one_organisation_per_set": draw(st.sampled_from(["hard", "soft"])),
    }
    return parse_instance(
        {
            "schema_version": "1",
            "name": "rules",
            "cohorts": cohorts,
            "participants": people,
            "forbidden_pairs": forbidden,
            "rules": rules,
        }
    )


def duos_of(inst: Instance) -> list[Duo]:
    """Every patient leader with the next professional (as pairs of pairs to test set rules on:
    any two people, whoever they are)."""
    pls = [p for p in inst.participants if p.role == "patient_leader"]
    prs = [p for p in inst.participants if p.role != "patient_leader"]
    return list(zip(pls, prs, strict=False))


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- set rules: the index, vectorised and CP-SAT forms ----------------------------------------


@SETTINGS
@given(intakes())
def test_cannot_link_matrix_is_never_share_a_set(inst: Instance) -> None:
    """sets._links (numpy incidence products) lists exactly the pairs of pairs that
    rules.never_share_a_set lists, in the same order."""
    duos = duos_of(inst)
    assert _links(inst, duos).tolist() == [list(x) for x in never_share_a_set(inst, duos)]


@SETTINGS
@given(intakes())
def test_conflict_index_is_pairs_in_conflict(inst: Instance) -> None:
    duos = duos_of(inst)
    expected = {
        (i, j)
        for i, j in itertools.combinations(range(len(duos)), 2)
        if pairs_in_conflict(duos[i], duos[j])
    }
    assert _conflicts(duos) == expected


@SETTINGS
@given(intakes())
def test_organisation_index_is_shares_organisation(inst: Instance) -> None:
    """sets._organisations groups pairs by organisation: two pairs are in one group exactly
    when they share an organisation; each pair is in one group per organisation it has."""
    duos = duos_of(inst)
    groups = _organisations(duos)
    for i, j in itertools.combinations(range(len(duos)), 2):
        together = any(i in ks and j in ks for ks in groups.values())
        assert together == shares_organisation(duos[i], duos[j])
    for k, duo in enumerate(duos):
        assert sum(k in ks for ks in groups.values()) == len(pair_organisations(duo))


@SETTINGS
@given(intakes())
def test_conflict_among_is_declared_conflict_between_any_two(inst: Instance) -> None:
    people = list(inst.participants)
    for size in (2, 3, len(people)):
        group = people[:size]
        expected = any(declared_conflict(x, y) for x, y in itertools.combinations(group, 2))
        assert conflict_among(group) == expected


@SETTINGS
@given(intakes())
def test_may_share_a_set_reads_as_the_two_rules(inst: Instance) -> None:
    duos = duos_of(inst)
    for p, q in itertools.combinations(duos, 2):
        conflict = any(y.id in x.avoid or x.id in y.avoid for x, y in itertools.product(p, q))
        shared = bool(
            {verify_module._same(m.organisation) for m in p}
            & {verify_module._same(m.organisation) for m in q}
        )
        hard = inst.rules.one_organisation_per_set == "hard"
        assert one_organisation_per_set(inst) == hard
        assert may_share_a_set(inst, p, q) == (not conflict and not (hard and shared))


@given(st.integers(1, 5), st.integers(0, 4), st.integers(0, 30))
def test_splits_into_sets_and_most_pairs_held(lo: int, extra: int, n: int) -> None:
    """A count splits into sets of lo..hi exactly when it is a sum of such set sizes (brute
    force); the most a cohort holds is the largest such count up to its capacity."""
    hi = lo + extra
    sums = {0}
    for _ in range(n + 1):
        sums |= {x + k for x in sums for k in range(lo, hi + 1) if x + k <= n}
    assert splits_into_sets(lo, hi, n) == (n in sums)
    # every number of sets the definition allows, in order (computed from its two ends)
    assert set_counts(lo, hi, n) == [s for s in range(n + 1) if lo * s <= n <= hi * s]
    assert most_pairs_held(lo, hi, n) == max(k for k in sums if k <= n)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intakes())
def test_cp_sat_placement_is_the_cohort_rules(inst: Instance) -> None:
    """The CP-SAT relaxation of the set rules (a count that splits into s sets, at most s pairs
    per organisation, two sets for a declared conflict) places as many fixed pairs as the best
    assignment whose every cohort meets cohort_ok, which is stated with the rules' predicates
    (brute force over every assignment); cohort_room is most_pairs_held per cohort."""
    duos = duos_of(inst)[:6]
    candidates = [
        Candidate(
            a.id,
            b.id,
            True,
            0.0,
            tuple(q for q, c in enumerate(inst.cohorts) if can_attend(a, c) and can_attend(b, c)),
        )
        for a, b in duos
    ]
    people = inst.participants_by_id()
    best = 0
    for choice in itertools.product(*[[None, *c.cohorts] for c in candidates]):
        placed = sum(x is not None for x in choice)
        if placed <= best:
            continue
        members: dict[int, list[Candidate]] = {}
        for c, q in zip(candidates, choice, strict=True):
            if q is not None:
                members.setdefault(q, []).append(c)
        if all(cohort_ok(inst, q, ms, people) for q, ms in members.items()):
            best = placed
    got = solve_placement(inst, candidates, seed=0)
    assert got.status == "optimal"
    assert sum(q is not None for q in got.cohort_of.values()) == best
    assert cohort_room(inst, 5) == [
        most_pairs_held(c.set_size.min_pairs, c.set_size.max_pairs, min(c.capacity_pairs, 5))
        for c in inst.cohorts
    ]


# --- pairing rules and attendance: the vectorised forms ----------------------------------------


@SETTINGS
@given(intakes(lone=True))
def test_compatibility_forbids_exactly_the_pairing_rules(inst: Instance) -> None:
    """scoring.compatibility's `forbidden` matrix (numpy, block by block) is True exactly where
    rules.pairing_rule_breaks names a rule."""
    comp = scoring.compatibility(inst)
    people = inst.participants_by_id()
    for i, a in enumerate(comp.row_ids):
        for j, b in enumerate(comp.col_ids):
            broken = pairing_rule_breaks(inst, people[a], people[b])
            assert bool(comp.forbidden[i, j]) == bool(broken), (a, b, broken)


@SETTINGS
@given(intakes())
def test_attendance_matrix_is_can_attend(inst: Instance) -> None:
    people = list(inst.participants)
    matrix = scoring.attendance_matrix(inst, people)
    for i, p in enumerate(people):
        assert matrix[i].tolist() == [can_attend(p, c) for c in inst.cohorts]


# --- constants re-stated elsewhere: drift tests --------------------------------------------------


def test_criteria_are_the_weights_in_order_everywhere() -> None:
    """The five criteria: the Weights model's fields (the contract), the engine's CRITERIA and
    the verifier's independent restatement, in one order."""
    assert tuple(Weights.model_fields) == scoring.CRITERIA == verify_module.CRITERIA


def test_min_group_is_one_figure_everywhere() -> None:
    from matcher.contract import solution
    from matcher.render import report

    assert metrics.MIN_GROUP == solution.MIN_GROUP == report.MIN_GROUP == verify_module.MIN_GROUP


def test_exact_pairing_size_is_the_engines() -> None:
    """The verifier checks stability up to the size where the engine pairs over every allowed
    pair."""
    assert verify_module.EXACT_PAIRING_MAX_CELLS == pairing.DENSE_MAX_CELLS


def test_every_seed_option_takes_the_librarys_seeds() -> None:
    """Each CLI command that solves takes in --seed exactly the seeds solve() accepts (the
    generator's --seed seeds the synthetic intake, not a solve)."""
    from matcher.cli import group as app

    assert app.MAX_SEED == engine_solve.MAX_SEED
    seen = 0
    assert isinstance(app.main, click.Group)
    commands = [c for name, c in app.main.commands.items() if name != "generate"]
    for command in commands:
        for param in command.params:
            if param.name == "seed":
                assert isinstance(param.type, click.IntRange)
                assert (param.type.min, param.type.max) == (0, engine_solve.MAX_SEED), command.name
                seen += 1
    assert seen >= 2
