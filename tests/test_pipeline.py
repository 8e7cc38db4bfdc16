"""The solve pipeline end to end: pairs, cohorts, sets; every rule feasible and infeasible;
every solution through the independent verifier."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from matcher import compatibility, load_instance, parse_instance, solve, verify
from matcher.contract.solution import Solution
from matcher.errors import Infeasible
from matcher.verification.verify import recompute_score
from tests.conftest import MAY2016, person, tiny_data

Data = dict[str, Any]


def run(data: Data, **kw: Any) -> tuple[Any, Solution]:
    inst = parse_instance(data)
    sol = solve(inst, **kw)
    report = verify(inst, sol)
    assert report.ok, str(report)
    return inst, sol


def partner_of(sol: Solution, pid: str) -> str | None:
    for p in sol.pairs:
        if p.patient_leader == pid:
            return p.partner
        if p.partner == pid:
            return p.patient_leader
    return None


def cohort(cid: str, cap: int, mode: str = "in_person", lo: int = 1, hi: int = 4) -> Data:
    return {
        "id": cid,
        "sessions": ["2016-05-12"],
        "capacity_pairs": cap,
        "mode": mode,
        "set_size": {"min_pairs": lo, "max_pairs": hi},
    }


def instance(cohorts: list[Data], people: list[Data], **extra: Any) -> Data:
    return {"schema_version": "1", "name": "t", "cohorts": cohorts, "participants": people, **extra}


# --- the reference instance ---------------------------------------------------------------


def test_may2016_full_plan_verified() -> None:
    inst = load_instance(MAY2016)
    sol = solve(inst)
    assert verify(inst, sol).ok
    assert sol.status == "optimal"
    assert len(sol.pairs) == 24 and sum(p.preformed for p in sol.pairs) == 17
    assert {u.participant for u in sol.unmatched} == {"pl18", "pl23", "pl27", "pl28"}
    pl18 = next(u for u in sol.unmatched if u.participant == "pl18")
    assert "share no cohort" in pl18.reason
    assert all(p.cohort and p.learning_set for p in sol.pairs)
    assert sol.cohorts is not None and sol.learning_sets is not None
    for s in sol.learning_sets:
        assert 3 <= len(s.pairs) <= 4
    assert sol.waitlist == []


def test_may2016_deterministic_json() -> None:
    inst = load_instance(MAY2016)
    first = solve(inst, seed=7).model_dump_json()
    assert solve(inst, seed=7).model_dump_json() == first


def test_vectorised_scores_match_independent_recomputation() -> None:
    inst = load_instance(MAY2016)
    comp = compatibility(inst, include_preformed=True)
    people = inst.participants_by_id()
    for i, a in enumerate(comp.row_ids):
        for j, b in enumerate(comp.col_ids):
            parts = recompute_score(inst, people[a], people[b])
            assert comp.scores[i, j] == pytest.approx(parts["score"], abs=1e-12)
            for k, arr in comp.breakdown.items():
                assert arr[i, j] == pytest.approx(parts[k], abs=1e-12)


# --- pairing rules: a feasible and an infeasible case each -----------------------------------


def test_tiny_pairs_best_partners() -> None:
    _, sol = run(tiny_data())
    assert partner_of(sol, "pl1") == "pr1"
    assert partner_of(sol, "pl2") == "pr2"
    assert partner_of(sol, "pl0") == "pr0"  # pre-formed kept
    assert [u.participant for u in sol.unmatched] == ["pl3"]
    assert "share no cohort" in sol.unmatched[0].reason


def test_declared_conflict_never_paired() -> None:
    data = tiny_data()
    data["participants"][5]["avoid"] = ["pl1"]  # pr1 avoids pl1
    _, sol = run(data)
    assert partner_of(sol, "pl1") != "pr1"


@pytest.mark.parametrize(
    ("policy", "organisation_parts"), [("allow", [1.0]), ("avoid", [0.0]), ("forbid", [])]
)
def test_same_organisation_policy(policy: str, organisation_parts: list[float]) -> None:
    """Two people of one organisation: allowed (criterion 1), avoided (criterion 0) or never
    paired (no pair)."""
    people = [person("a", "patient_leader", "org"), person("b", "clinician", "org")]
    _, sol = run(instance([cohort("c1", 2)], people, rules={"same_organisation": policy}))
    assert [p.breakdown["organisation"] for p in sol.pairs] == organisation_parts
    assert (partner_of(sol, "a") == "b") is bool(organisation_parts)


@pytest.mark.parametrize(
    ("policy", "paired"), [("require", False), ("prefer", True), ("ignore", True)]
)
def test_local_system_policy(policy: str, paired: bool) -> None:
    people = [
        person("a", "patient_leader", "o1", system="s1"),
        person("b", "manager", "o2", system="s2"),
    ]
    _, sol = run(instance([cohort("c1", 2)], people, rules={"local_system": policy}))
    assert (partner_of(sol, "a") == "b") is paired


def test_no_common_cohort_or_mode_is_forbidden() -> None:
    people = [
        person("a", "patient_leader", "o1", attendance=["online"]),
        person("b", "manager", "o2", attendance=["in_person"]),
    ]
    _, sol = run(instance([cohort("c1", 2, "blended"), cohort("c2", 2, "online")], people))
    assert sol.pairs == []
    people[1]["attendance"] = ["online"]
    _, sol = run(instance([cohort("c1", 2, "blended"), cohort("c2", 2, "online")], people))
    assert sol.pairs[0].cohort == "c2"


def test_min_score_rule() -> None:
    people = [
        person("a", "patient_leader", "o1", interests=["x"]),
        person("b", "manager", "o2", interests=["y"]),
    ]
    _, sol = run(instance([cohort("c1", 2)], people, rules={"min_score": 0.99}))
    assert sol.pairs == [] and len(sol.unmatched) == 2
    assert "below the minimum" in sol.unmatched[0].reason


# --- placement rules ------------------------------------------------------------------------


def lone_pairs(k: int, **kw: Any) -> list[Data]:
    out = []
    for i in range(k):
        out.append(person(f"a{i}", "patient_leader", f"pl-org{i}", partner=f"b{i}", **kw))
        out.append(person(f"b{i}", "clinician", f"pr-org{i}", partner=f"a{i}", **kw))
    return out


def test_capacity_waitlists_with_reason() -> None:
    _, sol = run(instance([cohort("c1", 2)], lone_pairs(3)))
    assert sum(p.cohort == "c1" for p in sol.pairs) == 2
    assert len(sol.waitlist) == 1
    assert "c1, which is full (2 of 2)" in sol.waitlist[0].reason
    _, sol = run(instance([cohort("c1", 3)], lone_pairs(3)))
    assert sol.waitlist == []


def test_cohort_count_must_split_into_sets() -> None:
    # 5 pairs cannot form sets of 3-4: one waits, 4 form one set.
    _, sol = run(instance([cohort("c1", 8, lo=3, hi=4)], lone_pairs(5)))
    assert len(sol.waitlist) == 1
    assert sol.learning_sets is not None and [len(s.pairs) for s in sol.learning_sets] == [4]
    _, sol = run(instance([cohort("c1", 8, lo=3, hi=4)], lone_pairs(6)))
    assert sol.waitlist == [] and sorted(len(s.pairs) for s in sol.learning_sets or []) == [3, 3]


def crossed_pairs() -> list[Data]:
    """Best-score pairing {a1-b1, a2-b2} needs c1 twice; {a1-b2, a2-b1} places both."""
    return [
        person("a1", "patient_leader", "o1", interests=["x"], available_cohorts=["c1"]),
        person("a2", "patient_leader", "o2", interests=["y"]),
        person("b1", "clinician", "o3", interests=["x"]),
        person("b2", "clinician", "o4", interests=["y"], available_cohorts=["c1"]),
    ]


def test_joint_model_beats_best_score_pairing_when_it_cannot_be_placed() -> None:
    # Best-score pairing {a1-b1, a2-b2} needs c1 twice (capacity 1). {a1-b2, a2-b1} places both.
    people = crossed_pairs()
    _, sol = run(instance([cohort("c1", 1, lo=1, hi=1), cohort("c2", 1, lo=1, hi=1)], people))
    assert len(sol.pairs) == 2 and sol.waitlist == []
    assert partner_of(sol, "a1") == "b2"
    assert any("joint" in n for n in sol.run.notes)


# --- action-learning-set rules ----------------------------------------------------------------


def test_one_organisation_per_set() -> None:
    people = lone_pairs(6)
    for k in (0, 2):  # pairs 0 and 2 share the clinician's organisation
        people[2 * k + 1]["organisation"] = "big-trust"
    _, sol = run(instance([cohort("c1", 8, lo=3, hi=3)], people))
    assert sol.waitlist == []
    sets = {p.patient_leader: p.learning_set for p in sol.pairs}
    assert sets["a0"] != sets["a2"]


def test_one_organisation_per_set_infeasible_names_the_organisation_rule() -> None:
    """Three pairs, all with a professional from big-trust, sets of 3-4: no set can form, and
    the diagnosis blames the organisation rule (not capacities, dates or modes)."""
    people = lone_pairs(3)
    for k in range(3):
        people[2 * k + 1]["organisation"] = "big-trust"
    with pytest.raises(Infeasible) as caught:
        run(instance([cohort("c1", 8, lo=3, hi=4)], people))
    assert [c.kind for c in caught.value.diagnosis] == ["one_organisation_per_set"]
    assert "big-trust" in str(caught.value) and "soft" in str(caught.value)


def test_soft_organisation_rule_allows_sharing() -> None:
    people = lone_pairs(3)
    for k in range(3):
        people[2 * k + 1]["organisation"] = "big-trust"
    _, sol = run(
        instance([cohort("c1", 8, lo=3, hi=4)], people, rules={"one_organisation_per_set": "soft"})
    )
    assert sol.status == "optimal" and sol.waitlist == []


def test_conflicting_pairs_never_share_a_set() -> None:
    people = lone_pairs(4)
    people[0]["avoid"] = ["b1"]  # a0 (pair 0) declares a conflict with b1 (pair 1)
    _, sol = run(instance([cohort("c1", 8, lo=2, hi=4)], people))
    sets = {p.patient_leader: p.learning_set for p in sol.pairs}
    assert sets["a0"] != sets["a1"]
    assert sol.waitlist == []
    # with sets of exactly 4 pairs they cannot be separated, and 3 pairs cannot form a set of 4:
    # no pair can be placed at all
    _, sol = run(instance([cohort("c1", 8, lo=4, hi=4)], lone_pairs(4)))
    assert sol.waitlist == []
    with pytest.raises(Infeasible) as caught:
        run(instance([cohort("c1", 8, lo=4, hi=4)], people))
    assert caught.value.diagnosis == []  # no simple necessary condition fails: CP-SAT's proof


def test_least_first_diversity_option_verified() -> None:
    inst = load_instance(MAY2016)
    data = inst.model_dump(mode="json")
    data["rules"]["set_diversity"] = "least_first"
    _, sol = run(data)
    base = solve(inst)
    least = min(s.diversity or 0 for s in sol.learning_sets or [])
    least_base = min(s.diversity or 0 for s in base.learning_sets or [])
    assert least >= least_base - 1e-9


# --- verifier catches broken solutions -------------------------------------------------------


def tamper(good: Solution, edit: Any) -> Solution:
    """A copy of the (frozen) plan with ``edit`` applied to its JSON-like dict."""
    doc = good.model_dump(mode="python")
    edit(doc)
    return Solution.model_validate(doc)


def test_verifier_catches_violations() -> None:
    inst = load_instance(MAY2016)
    good = solve(inst)

    def score_up(d: Data) -> None:
        d["pairs"][0]["score"] += 0.1

    def swap_partners(d: Data) -> None:
        a, b = d["pairs"][20], d["pairs"][21]
        a["partner"], b["partner"] = b["partner"], a["partner"]

    def drop_unmatched(d: Data) -> None:
        d["unmatched"].pop()

    def not_preformed(d: Data) -> None:
        d["pairs"][0]["preformed"] = False

    def other_cohort(d: Data) -> None:
        d["pairs"][0]["cohort"] = "c2" if d["pairs"][0]["cohort"] != "c2" else "c1"

    assert "scores" in verify(inst, tamper(good, score_up)).rules()
    assert "scores" in verify(inst, tamper(good, swap_partners)).rules()
    assert "each_participant_once" in verify(inst, tamper(good, drop_unmatched)).rules()
    assert "preformed" in verify(inst, tamper(good, not_preformed)).rules()
    broken = verify(inst, tamper(good, other_cohort))
    # pair-01 (online only) moved to an in-person cohort, still listed in c3
    assert {"attendance", "plan_structure"} <= broken.rules()
    assert ("pair-01", "pl01", "c2") in [v.ids for v in broken.violations]


# --- random instances: generate -> solve -> verify ---------------------------------------


@st.composite
def random_instances(draw: st.DrawFn) -> Data:
    n_cohorts = draw(st.integers(1, 3))
    cohorts = []
    for k in range(n_cohorts):
        lo = draw(st.integers(1, 3))
        cap = draw(st.sampled_from([0, *range(lo, 7)]))  # 0 closes a cohort; else >= one set
        mode = draw(st.sampled_from(["in_person", "online", "blended"]))
        cohorts.append(cohort(f"c{k}", cap, mode, lo=lo, hi=4))
    topics = ["carers", "diabetes", "frailty", "dementia", "maternity"]
    n = draw(st.integers(0, 14))
    people: list[Data] = []
    for i in range(n):
        role = draw(st.sampled_from(["patient_leader", "clinician", "manager"]))
        people.append(
            person(
                f"p{i}",
                role,
                f"org{draw(st.integers(0, 4))}",
                system=f"s{draw(st.integers(0, 2))}",
                interests=draw(st.lists(st.sampled_from(topics), max_size=3, unique=True)),
                project_topics=draw(st.lists(st.sampled_from(topics), max_size=2, unique=True)),
                available_cohorts=draw(
                    st.none() | st.lists(st.sampled_from([c["id"] for c in cohorts]), unique=True)
                ),
                attendance=draw(st.none() | st.sampled_from([["online"], ["in_person"]])),
            )
        )
    pls = [p for p in people if p["role"] == "patient_leader"]
    prs = [p for p in people if p["role"] != "patient_leader"]
    for a, b in list(zip(pls, prs, strict=False))[: draw(st.integers(0, 3))]:
        a["partner"], b["partner"] = b["id"], a["id"]
    for p in people:
        others = [q["id"] for q in people if q["id"] not in (p["id"], p["partner"])]
        if others and bool(draw(st.booleans())):
            p["avoid"] = [draw(st.sampled_from(others))]
    rules = {
        "same_organisation": draw(st.sampled_from(["allow", "avoid", "forbid"])),
        "local_system": draw(st.sampled_from(["require", "prefer", "ignore"])),
        "one_organisation_per_set": draw(st.sampled_from(["hard", "soft"])),
    }
    return instance(cohorts, people, rules=rules)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_instances())
def test_random_instances_solve_and_verify(data: Data) -> None:
    try:
        inst, sol = run(copy.deepcopy(data))
    except Infeasible as exc:  # proven: nobody can be placed; the plan still verifies
        inst, sol = parse_instance(copy.deepcopy(data)), exc.solution
        assert sol is not None and not any(p.cohort for p in sol.pairs)
        assert {w.pair for w in sol.waitlist} == {p.id for p in sol.pairs}
        report = verify(inst, sol)
        assert report.rules() <= {"status"}, str(report)
    assert sol.status in ("optimal", "feasible", "infeasible")
    # The lone pairs formed: most pairs placed comes first, then most pairs formed (the
    # documented order), so fewer than a maximum matching (networkx) only to place more: every
    # lone applicant left out of the placed pairs is paired as far as a maximum matching among
    # them allows. (10 people of one organisation, one set each, 3 places: 3 placed pairs use
    # everyone the two unplaceable ones could pair with; the maximum matching has 4.)
    comp = compatibility(inst)
    allowed = ~comp.forbidden & (comp.scores >= inst.rules.min_score)
    lone = [p for p in sol.pairs if not p.preformed]
    placed = {x for p in lone if p.cohort for x in (p.patient_leader, p.partner)}
    row_ok = np.array([pid not in placed for pid in comp.row_ids], dtype=bool)
    col_ok = np.array([pid not in placed for pid in comp.col_ids], dtype=bool)

    def most_pairs(ok: NDArray[np.bool_]) -> int:
        g = nx.Graph()
        g.add_edges_from((("r", i), ("c", j)) for i, j in zip(*np.nonzero(ok), strict=True))
        return len(nx.max_weight_matching(g, maxcardinality=True))

    most = most_pairs(allowed)
    n_placed = sum(1 for p in lone if p.cohort)
    assert len(lone) <= most
    assert len(lone) == n_placed + most_pairs(allowed & row_ok[:, None] & col_ok[None, :])
    assert np.isfinite([p.score for p in sol.pairs]).all()


@pytest.mark.parametrize("deterministic", [True, False])
def test_tiny_time_limit_never_crashes(deterministic: bool) -> None:
    inst = load_instance(MAY2016)
    sol = solve(inst, time_limit=0.05, deterministic=deterministic)
    assert verify(inst, sol).ok
    assert sol.status in ("optimal", "feasible")
    assert sol.run.time_limit == 0.05


def test_verifier_catches_schedule_violations() -> None:
    import math

    inst = load_instance(MAY2016)
    good = solve(inst)

    def over_capacity(d: Data) -> None:  # capacity split over two plans of one cohort
        c3 = [p for p in d["pairs"] if p["cohort"] == "c3"][:2]
        for p in c3:
            p["cohort"] = "c2"
        d["cohorts"].append({"id": "c2", "pairs": [p["id"] for p in c3]})

    def nan_score(d: Data) -> None:
        d["pairs"][0]["score"] = math.nan

    def shared_organisation(d: Data) -> None:
        # pair-02..05 share frimley-health-ft (see instances/README.md): put 02 with 03
        sets = {x["id"]: x for x in d["learning_sets"]}
        by_id = {p["id"]: p for p in d["pairs"]}
        a, b = by_id["pair-02"], by_id["pair-03"]
        sa, sb = sets[a["learning_set"]], sets[b["learning_set"]]
        mate = next(x for x in sb["pairs"] if x != b["id"])
        sa["pairs"][sa["pairs"].index(a["id"])], sb["pairs"][sb["pairs"].index(mate)] = (
            mate,
            a["id"],
        )
        by_id[mate]["learning_set"], a["learning_set"] = a["learning_set"], b["learning_set"]
        by_id[mate]["cohort"], a["cohort"] = a["cohort"], b["cohort"]

    def short_set(d: Data) -> None:
        d["learning_sets"][0]["pairs"].pop()

    def waitlisted_in_set(d: Data) -> None:
        d["pairs"][0]["cohort"] = None

    over = verify(inst, tamper(good, over_capacity))
    assert [v.ids for v in over.violations if v.rule == "capacity"] == [("c2",)]
    assert "cohorts: c2 listed 2 times" in [v.message for v in over.violations]
    assert "scores" in verify(inst, tamper(good, nan_score)).rules()
    by_id = {p.id: p for p in good.pairs}
    assert by_id["pair-02"].learning_set != by_id["pair-03"].learning_set  # the rule held
    broken = verify(inst, tamper(good, shared_organisation))
    assert "one_organisation_per_set" in broken.rules()
    short = verify(inst, tamper(good, short_set))
    dropped = good.learning_sets[0].pairs[-1] if good.learning_sets else ""
    assert [v.ids for v in short.violations if v.rule == "plan_structure"] == [(dropped,)]
    assert "set_diversity" in short.rules()  # the set's diversity changed with its members
    waiting = verify(inst, tamper(good, waitlisted_in_set))
    assert [v.message for v in waiting.violations if v.rule == "waitlist"] == [
        "pair-01: not placed in a cohort and not on the wait-list",
        "pair-01: wait-listed but names set c3-s1",
    ]


def test_sets_dropping_pairs_is_not_reported_optimal() -> None:
    """Regression: a triangle of conflicts needs three sets; the placement model only knows it
    needs two, so the sets stage leaves pairs out. The plan must then say `feasible`."""
    people = lone_pairs(7)
    people[0]["avoid"] = ["a1", "a2"]
    people[2]["avoid"] = ["a2"]
    people[6]["preferred_cohorts"] = ["c2"]
    _, sol = run(instance([cohort("c1", 6, lo=3, hi=3), cohort("c2", 1, lo=1, hi=1)], people))
    # c1 holds 6 pairs in sets of exactly 3 (2 sets), but pairs 0-2 need 3 sets: only one
    # set of 3 can form, so 3 pairs are left out, with the reason in numbers
    assert sol.status == "feasible" and sol.run.outcomes["learning_sets"] == "feasible"
    assert len(sol.waitlist) == 3
    assert all("mutual declared conflict and need 3 sets" in w.reason for w in sol.waitlist)


def test_repair_model_when_joint_model_is_too_big(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the whole joint model ruled out by size and the flow repair finding nothing (as
    when its re-pairing breaks a set rule), the CP-SAT repair model re-pairs the people no
    cohort took and still finds the plan that places both pairs."""
    import matcher.engine.placement.strategy as strategy

    monkeypatch.setattr(strategy, "JOINT_MODEL_MAX_VARS", 0)
    flow_repair = strategy._flow_repair

    def ceiling_only(*args: Any, **kwargs: Any) -> Any:
        return flow_repair(*args, **kwargs)[0], None

    monkeypatch.setattr(strategy, "_flow_repair", ceiling_only)
    people = crossed_pairs()
    _, sol = run(instance([cohort("c1", 1, lo=1, hi=1), cohort("c2", 1, lo=1, hi=1)], people))
    assert len(sol.pairs) == 2 and sol.waitlist == []
    assert sol.status == "feasible"  # not proven: the whole joint model did not run
    assert any("repair model" in n and "1 -> 2" in n for n in sol.run.notes)


def test_fewer_pairs_formed_only_to_place_more() -> None:
    """Found by the random-instance test: ten people of one organisation (one pair per set),
    one cohort of 3 places that two of them cannot attend. Pairing those two takes partners the
    placed pairs need, so the plan places 3 pairs and forms 3 (a maximum matching forms 4 but
    places 2): most placed first, as documented, and the plan verifies."""
    inst = load_instance(Path(__file__).parent / "data" / "one_org_three_places.json")
    sol = solve(inst)
    assert verify(inst, sol).ok
    assert sum(1 for p in sol.pairs if p.cohort) == 3
    assert len(sol.pairs) == 3
