"""The independent verifier: every rule it states fails a plan tampered to break it, with that
rule named (never a bare "not ok"), and holds on real solves.

The reference plan is may2016 solved with the default objective (see instances/README.md): the
first 17 pairs are pre-formed, pair-18 (pl19 + pr18) is a lone pair in set c1-s3 of cohort c1,
and pl18, pl23, pl27, pl28 are unmatched. Tampering edits either the plan (a copy: Solution is
frozen) or the instance (so that the unchanged plan breaks a rule of the edited one).
"""

from __future__ import annotations

import copy
import importlib
import json
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher import parse_instance, solve, verify
from matcher.contract.instance import Instance
from matcher.contract.solution import LearningSet, Metrics, Solution
from matcher.engine.objectives import Objective, Proposer
from matcher.errors import Infeasible, InternalError, InvalidParameter, VerificationFailed
from matcher.tools.generate import generate_instance
from matcher.verification.verify import Report, Violation, recompute_score
from tests.conftest import MAY2016, person, tiny_data, verifying
from tests.test_pipeline import random_instances

verify_module = importlib.import_module(
    "matcher.verification.verify"
)  # `matcher.verification.verify` is the function
Data = dict[str, Any]
Edit = Callable[[Data], object]  # what an edit returns is ignored


@cache
def _reference() -> tuple[str, str]:
    data = MAY2016.read_text()
    return data, solve(parse_instance(json.loads(data))).model_dump_json()


def reference() -> tuple[Data, Solution]:
    """may2016 as a dict, and its plan (fresh copies)."""
    data, plan = _reference()
    return json.loads(data), Solution.model_validate_json(plan)


def tamper(good: Solution, edit: Edit) -> Solution:
    """A copy of the (frozen) plan with ``edit`` applied to its JSON-like dict."""
    doc = good.model_dump(mode="json")
    edit(doc)
    return Solution.model_validate(doc)


def instance(cohorts: list[Data], people: list[Data], **extra: Any) -> Instance:
    return parse_instance(
        {"schema_version": "1", "name": "t", "cohorts": cohorts, "participants": people, **extra}
    )


def cohort(cid: str, cap: int, lo: int = 1, hi: int = 4) -> Data:
    return {
        "id": cid,
        "sessions": ["2016-05-12"],
        "capacity_pairs": cap,
        "mode": "in_person",
        "set_size": {"min_pairs": lo, "max_pairs": hi},
    }


def pair(doc: Data, pid: str) -> Data:
    return next(p for p in doc["pairs"] if p["id"] == pid)


def someone(data: Data, pid: str) -> Data:
    return next(p for p in data["participants"] if p["id"] == pid)


def test_reference_plan_verifies() -> None:
    data, good = reference()
    report = verify(parse_instance(data), good)
    assert report.ok, str(report)
    assert report.skipped == []
    assert pair(good.model_dump(), "pair-18")["patient_leader"] == "pl19"  # the docstring holds


# --- every rule: a plan edit, or an instance edit, and the rule it breaks ---------------------


def _drop_from_plan(doc: Data, pid: str) -> None:
    """Take pair ``pid`` out of its cohort and set (not wait-listed: a structural break)."""
    p = pair(doc, pid)
    for plan in doc["cohorts"]:
        if pid in plan["pairs"]:
            plan["pairs"].remove(pid)
    for s in doc["learning_sets"]:
        if pid in s["pairs"]:
            s["pairs"].remove(pid)
    p["cohort"] = p["learning_set"] = None


def _unpair_18(doc: Data) -> None:
    """pl19 and pr18 (pair-18) both unmatched, though nothing keeps them apart."""
    _drop_from_plan(doc, "pair-18")
    doc["pairs"].remove(pair(doc, "pair-18"))
    doc["unmatched"] += [{"participant": x, "reason": "x"} for x in ("pl19", "pr18")]


PLAN_EDITS: dict[str, tuple[Edit, str]] = {
    "score raised": (lambda d: pair(d, "pair-18").update(score=0.99), "scores"),
    "breakdown edited": (
        lambda d: pair(d, "pair-18")["breakdown"].update(interests=0.0),
        "scores",
    ),
    "unmatched person dropped": (lambda d: d["unmatched"].pop(), "each_participant_once"),
    "paired person also unmatched": (
        lambda d: d["unmatched"].append({"participant": "pl19", "reason": "x"}),
        "each_participant_once",
    ),
    "unknown person": (
        lambda d: d["unmatched"].append({"participant": "zz99", "reason": "x"}),
        "each_participant_once",
    ),
    "withdrawn list invented": (lambda d: d["withdrawn"].append("pl18"), "withdrawn"),
    "duplicate pair ID": (lambda d: pair(d, "pair-19").update(id="pair-18"), "pair_ids"),
    "roles swapped": (
        lambda d: pair(d, "pair-18").update(patient_leader="pr18", partner="pl19"),
        "roles",
    ),
    "pre-formed flag dropped": (lambda d: pair(d, "pair-01").update(preformed=False), "preformed"),
    "lone pair marked pre-formed": (
        lambda d: pair(d, "pair-18").update(preformed=True),
        "preformed",
    ),
    "lock flag invented": (lambda d: pair(d, "pair-18").update(locked=True), "locks"),
    "pair neither placed nor wait-listed": (
        lambda d: _drop_from_plan(d, "pair-18"),
        "waitlist",
    ),
    "wait-list names an unknown pair": (
        lambda d: d["waitlist"].append({"pair": "pair-99", "reason": "x"}),
        "waitlist",
    ),
    "set emptied below its minimum": (
        # the first set of three pairs (sets of 3-4): make it two, the third pair in no set
        lambda d: next(s for s in d["learning_sets"] if len(s["pairs"]) == 3)["pairs"].pop(),
        "set_size",
    ),
    "a lone pair unpaired: both could be paired": (
        _unpair_18,
        "maximal_pairing",
    ),
    "set diversity edited": (
        lambda d: d["learning_sets"][0].update(diversity=d["learning_sets"][0]["diversity"] - 0.1),
        "set_diversity",
    ),
    "cohort plan lists a pair twice": (
        lambda d: d["cohorts"][0]["pairs"].append(d["cohorts"][0]["pairs"][0]),
        "plan_structure",
    ),
    "unknown cohort": (
        lambda d: d["cohorts"].append({"id": "c9", "pairs": []}),
        "plan_structure",
    ),
    "status timeout on a returned plan": (lambda d: d.update(status="timeout"), "status"),
    "optimal with a stage only feasible": (
        lambda d: d["run"]["outcomes"].update(learning_sets="feasible"),
        "status",
    ),
    "metrics: paired count": (
        lambda d: d["metrics"]["people"]["patient_leaders"].update(paired=23),
        "metrics",
    ),
    "metrics: score total": (
        lambda d: d["metrics"]["scores"]["all_pairs"].update(
            total=d["metrics"]["scores"]["all_pairs"]["total"] + 0.01
        ),
        "metrics",
    ),
    "metrics: lone mean": (
        lambda d: d["metrics"]["scores"]["lone_pairs"].update(mean=0.5),
        "metrics",
    ),
    "metrics: cohort fill": (
        lambda d: d["metrics"]["cohort_fill"]["c2"].update(fill=0.5),
        "metrics",
    ),
    "metrics: set count": (lambda d: d["metrics"]["sets"].update(count=1), "metrics"),
    "metrics: least diversity": (
        lambda d: d["metrics"]["sets"].update(least_diversity=0.1),
        "metrics",
    ),
    "metrics: blocking pairs": (lambda d: d["metrics"].update(blocking_pairs=7), "metrics"),
    "metrics: top-3 share": (lambda d: d["metrics"].update(top3_share=0.01), "metrics"),
    "metrics: by role": (
        lambda d: d["metrics"]["by_role"]["patient_leader"].update(mean_score=0.1),
        "metrics",
    ),
}


@pytest.mark.parametrize("name", sorted(PLAN_EDITS))
def test_tampered_plan_fails_with_its_rule(name: str) -> None:
    data, good = reference()
    edit, rule = PLAN_EDITS[name]
    report = verify(parse_instance(data), tamper(good, edit))
    assert rule in report.rules(), str(report)
    assert not report.ok


def _lone_pair_rule(rules: Data) -> Edit:
    def edit(data: Data) -> None:
        data["rules"].update(rules)

    return edit


def _org_of(pid: str, like: str) -> Edit:
    def edit(data: Data) -> None:
        someone(data, pid)["organisation"] = someone(data, like)["organisation"]

    return edit


def _avoids(pid: str, other: str) -> Edit:
    def edit(data: Data) -> None:
        someone(data, pid)["avoid"] = [other]

    return edit


def _avoids_set_mate() -> Edit:
    """The first set's first patient leader declares a conflict with the patient leader of
    another pair in the same set (whichever the plan put there)."""

    def edit(data: Data) -> None:
        _, good = reference()
        pairs = {p.id: p for p in good.pairs}
        first = _sets(good)[0]
        a, b = (pairs[pid].patient_leader for pid in first.pairs[:2])
        someone(data, a)["avoid"] = [b]

    return edit


INSTANCE_EDITS: dict[str, tuple[Edit, str]] = {
    # pl19 + pr18 form pair-18 in the plan
    "a paired person withdrew": (
        lambda d: someone(d, "pl19").update(status="withdrawn"),
        "withdrawn",
    ),
    "pair declared a conflict": (_avoids("pl19", "pr18"), "avoid"),
    "pair is now forbidden": (
        lambda d: d.update(forbidden_pairs=[["pr18", "pl19"]]),
        "forbidden_pairs",
    ),
    "same organisation forbidden": (
        lambda d: (_org_of("pr18", "pl19")(d), _lone_pair_rule({"same_organisation": "forbid"})(d)),
        "same_organisation",
    ),
    "same local system required": (
        lambda d: (
            someone(d, "pr18").update(system="elsewhere"),
            _lone_pair_rule({"local_system": "require"})(d),
        ),
        "local_system",
    ),
    "no cohort in common": (
        lambda d: someone(d, "pr18").update(available_cohorts=["c2"]),
        "attendance",
    ),
    "min_score raised": (_lone_pair_rule({"min_score": 0.99}), "min_score"),
    "placed where one cannot attend": (
        lambda d: someone(d, "pr18").update(available_cohorts=["c2", "c3"]),  # pair-18 is in c1
        "attendance",
    ),
    "a formed pair is now locked": (
        lambda d: d.update(locks=[{"patient_leader": "pl19", "partner": "pr18"}]),
        "locks",
    ),
    "capacity cut below the placed pairs": (
        lambda d: d["cohorts"][0].update(capacity_pairs=6),
        "capacity",
    ),
    "sets capped at two pairs": (
        lambda d: d["cohorts"][0].update(set_size={"min_pairs": 1, "max_pairs": 2}),
        "set_size",
    ),
    "two pairs of one set share an organisation": (
        # pair-11 (pl11) and pair-18 (pl19) share set c1-s3
        _org_of("pl19", "pl11"),
        "one_organisation_per_set",
    ),
    "a declared conflict inside a set": (_avoids_set_mate(), "avoid"),
}


@pytest.mark.parametrize("name", sorted(INSTANCE_EDITS))
def test_plan_breaking_an_edited_instance_fails_with_its_rule(name: str) -> None:
    data, good = reference()
    edit, rule = INSTANCE_EDITS[name]
    edit(data)
    report = verify(parse_instance(data), good)
    assert rule in report.rules(), str(report)


def test_violations_name_ids_only() -> None:
    """Every violation of every tampered plan names IDs of the instance or the plan (people,
    pairs, sets, cohorts, the intake), never names, organisations or free text."""
    data, good = reference()
    known = {p["id"] for p in data["participants"]} | {c["id"] for c in data["cohorts"]}
    known |= {p.id for p in good.pairs} | {s.id for s in good.learning_sets or []}
    known |= {"pair-99", "zz99", "c9", data["name"]}  # IDs the tampering invents; the intake
    seen = 0
    for edit, _ in PLAN_EDITS.values():
        for v in verify(parse_instance(data), tamper(good, edit)).violations:
            assert isinstance(v, Violation) and v.rule and v.message
            assert set(v.ids) <= known, (v.rule, v.ids)
            seen += len(v.ids)
    assert seen > 0


def test_violation_reads_as_its_message() -> None:
    data, good = reference()
    report = verify(parse_instance(data), tamper(good, PLAN_EDITS["score raised"][0]))
    (v,) = [x for x in report.violations if x.rule == "scores"]
    assert v.ids == ("pair-18", "pl19", "pr18")
    assert "recomputes" in v and str(v) == v.message
    assert str(v) in str(report)


# --- status: optimal only when nothing could simply be placed ------------------------------


def _three_pairs(capacity: int) -> Instance:
    """Three pre-formed pairs from three organisations, one cohort, sets of 1-4 pairs."""
    people = []
    for i in range(3):
        people.append(person(f"a{i}", "patient_leader", f"pl-org{i}", partner=f"b{i}"))
        people.append(person(f"b{i}", "clinician", f"pr-org{i}", partner=f"a{i}"))
    return instance([cohort("c1", capacity)], people)


def test_optimal_with_a_waitlisted_pair_that_fits_a_set_is_refused() -> None:
    """All three pairs fit one set; a plan that wait-lists pair-03 while the cohort and the set
    have room, and still says optimal, is refused under `status`."""
    inst = _three_pairs(3)
    good = solve(inst)
    assert good.status == "optimal" and not good.waitlist and verify(inst, good).ok

    def waitlist_third(d: Data) -> None:
        _drop_from_plan(d, "pair-03")
        d["waitlist"].append({"pair": "pair-03", "reason": "x"})

    report = verify(inst, tamper(good, waitlist_third))
    status = [v for v in report.violations if v.rule == "status"]
    assert [v.ids for v in status] == [("pair-03", "c1-s1", "c1")]

    # the same plan said `feasible` breaks no status rule (only the metrics are stale)
    def and_feasible(d: Data) -> None:
        waitlist_third(d)
        d["status"] = "feasible"

    honest = tamper(good, and_feasible)
    assert verify(inst, honest).rules() == {"metrics"}


def test_optimal_with_a_full_cohort_and_a_waitlist_is_accepted() -> None:
    """Capacity 2 for three pairs: one pair must wait, and the plan is proven optimal. A
    wait-list alone does not make `optimal` wrong."""
    inst = _three_pairs(2)
    sol = solve(inst)
    assert len(sol.waitlist) == 1 and sol.status == "optimal"
    report = verify(inst, sol)
    assert report.ok, str(report)


# --- stability (objective stable) -----------------------------------------------------------


def _crossed() -> Instance:
    """a1 and b1 share interest x, a2 and b2 share y: the only stable matching is a1-b1, a2-b2."""
    return instance(
        [cohort("c1", 4)],
        [
            person("a1", "patient_leader", "o1", interests=["x"]),
            person("a2", "patient_leader", "o2", interests=["y"]),
            person("b1", "clinician", "o3", interests=["x"]),
            person("b2", "clinician", "o4", interests=["y"]),
        ],
    )


def _swap_partners(inst: Instance, sol: Solution, first: str, second: str) -> Solution:
    """Swap the partners of two pairs, with scores and breakdowns recomputed, so that only
    stability (and the metrics) can object."""
    people = inst.participants_by_id()
    pairs = {p.id: p for p in sol.pairs}
    a, b = pairs[first], pairs[second]
    out = []
    for p in sol.pairs:
        if p.id in (first, second):
            partner = b.partner if p.id == first else a.partner
            parts = recompute_score(inst, people[p.patient_leader], people[partner])
            score = parts.pop("score")
            p = p.model_copy(update={"partner": partner, "score": score, "breakdown": parts})
        out.append(p)
    return sol.model_copy(update={"pairs": out})


def test_blocking_pair_in_a_stable_plan_is_refused() -> None:
    inst = _crossed()
    good = solve(inst, objective="stable")
    assert verify(inst, good).ok
    swapped = _swap_partners(inst, good, good.pairs[0].id, good.pairs[1].id)
    report = verify(inst, swapped)
    stability = sorted(v.ids for v in report.violations if v.rule == "stability")
    assert stability == [("a1", "b1"), ("a2", "b2")]
    # a set holding a swapped pair has a new diversity too
    assert report.rules() <= {"stability", "metrics", "set_diversity"}, str(report)
    # the same pairs under `total` make no stability claim
    total = swapped.model_copy(
        update={"run": swapped.run.model_copy(update={"objective": "total"})}
    )
    assert "stability" not in verify(inst, total).rules()


def test_stated_preferences_decide_stability() -> None:
    """a1 and b2 name each other first: a plan pairing a1-b1 and a2-b2 (best by score) has the
    blocking pair a1-b2 under the stated preferences."""
    people = [
        person("a1", "patient_leader", "o1", interests=["x", "y"], preferences=["b2", "b1"]),
        person("a2", "patient_leader", "o2", interests=["z"]),
        person("b1", "clinician", "o3", interests=["x", "y"]),
        person("b2", "clinician", "o4", interests=["z"], preferences=["a1", "a2"]),
    ]
    inst = instance([cohort("c1", 20)], people)
    stable = solve(inst, objective="stable")
    assert verify(inst, stable).ok
    by_score = solve(inst, objective="total")
    assert {(p.patient_leader, p.partner) for p in by_score.pairs} == {("a1", "b1"), ("a2", "b2")}
    claimed = by_score.model_copy(
        update={"run": by_score.run.model_copy(update={"objective": "stable"})}
    )
    report = verify(inst, claimed)
    assert [v.ids for v in report.violations if v.rule == "stability"] == [("a1", "b2")]


def test_equal_scores_are_ties_not_preferences() -> None:
    """Everyone scores the same with everyone: any pairing is stable (no strict preference)."""
    inst = instance(
        [cohort("c1", 4)],
        [person(f"a{i}", "patient_leader", f"o{i}") for i in range(2)]
        + [person(f"b{i}", "clinician", f"q{i}") for i in range(2)],
    )
    good = solve(inst, objective="stable")
    swapped = _swap_partners(inst, good, good.pairs[0].id, good.pairs[1].id)
    assert "stability" not in verify(inst, swapped).rules()


def test_preformed_pairs_take_no_part_in_stability() -> None:
    """a1 and b1 would rather be together, but b1 applied with a2: pre-formed pairs are fixed
    by the programme, so the stable plan is not refused for them."""
    people = [
        person("a1", "patient_leader", "o1", interests=["x"]),
        person("a2", "patient_leader", "o2", interests=["y"], partner="b1"),
        person("b1", "clinician", "o3", interests=["x"], partner="a2"),
        person("b2", "clinician", "o4", interests=["y"]),
    ]
    inst = instance([cohort("c1", 4)], people)
    sol = solve(inst, objective="stable")
    report = verify(inst, sol)
    assert report.ok, str(report)


@pytest.mark.parametrize(("n", "seed"), [(80, 1), (160, 2)])
@pytest.mark.parametrize("proposer", ["patient_leader", "professional"])
def test_generated_stable_solves_verify(n: int, seed: int, proposer: Proposer) -> None:
    inst = parse_instance(generate_instance(n, seed=seed, preformed_share=0.2))
    sol = solve(inst, objective="stable", proposer=proposer)
    report = verify(inst, sol)
    assert report.ok, str(report)
    assert report.skipped == []


def test_checks_beyond_their_size_are_skipped_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    inst = _crossed()
    sol = solve(inst, objective="stable")
    monkeypatch.setattr(verify_module, "EXACT_PAIRING_MAX_CELLS", 1)
    monkeypatch.setattr(verify_module, "METRIC_SCAN_MAX_CELLS", 1)
    report = verify(inst, _swap_partners(inst, sol, sol.pairs[0].id, sol.pairs[1].id))
    assert "stability" not in report.rules()
    assert [s.split(":")[0] for s in report.skipped] == ["metrics", "stability"]


# --- changes against the previous plan -------------------------------------------------------


@cache
def _replanned() -> tuple[str, str, str]:
    data, prev = reference()
    someone(data, "pr20")["status"] = "withdrawn"  # pair-20 (pl21 + pr20) dissolves
    sol = solve(parse_instance(data), previous=prev)
    return json.dumps(data), prev.model_dump_json(), sol.model_dump_json()


def replanned() -> tuple[Instance, Solution, Solution]:
    data, prev, sol = _replanned()
    return (
        parse_instance(json.loads(data)),
        Solution.model_validate_json(prev),
        Solution.model_validate_json(sol),
    )


def test_replan_verifies_against_its_previous_plan() -> None:
    inst, prev, sol = replanned()
    assert sol.changes is not None and sol.changes.counts.dissolved == 1
    report = verify(inst, sol, previous=prev)
    assert report.ok, str(report)


CHANGE_EDITS: dict[str, tuple[Edit, str]] = {
    "count of moved sets": (lambda d: d["changes"]["counts"].update(moved_set=5), "changes"),
    "count kept": (lambda d: d["changes"]["counts"].update(kept=0), "changes"),
    "newly unmatched": (lambda d: d["changes"]["counts"].update(newly_unmatched=9), "changes"),
    "an item dropped": (
        lambda d: d["changes"]["items"].remove(
            next(c for c in d["changes"]["items"] if c["kind"] == "dissolved")
        ),
        "changes",
    ),
    "previous instance misnamed": (
        lambda d: d["changes"].update(previous_instance="other"),
        "changes",
    ),
    "no changes at all": (lambda d: d.update(changes=None), "changes"),
    "kept pair renamed": (lambda d: pair(d, "pair-18").update(id="pair-18x"), "pair_ids"),
    "new pair takes an old ID": (
        lambda d: pair(d, "pair-18").update(
            patient_leader="pl21", partner="pr18", score=d["pairs"][0]["score"]
        ),
        "pair_ids",
    ),
}


@pytest.mark.parametrize("name", sorted(CHANGE_EDITS))
def test_changes_inconsistent_with_previous_fail(name: str) -> None:
    inst, prev, sol = replanned()
    edit, rule = CHANGE_EDITS[name]
    report = verify(inst, tamper(sol, edit), previous=prev)
    assert rule in report.rules(), str(report)


# --- odd plans ------------------------------------------------------------------------------


def test_report_of_a_clean_plan_reads_as_verified() -> None:
    report = Report()
    assert report.ok and "verified" in str(report) and report.rules() == set()


def test_metrics_of_a_plan_without_metrics_are_not_invented() -> None:
    data, good = reference()
    bare = good.model_copy(update={"metrics": None})
    assert verify(parse_instance(data), bare).ok


def test_data_edit_helpers_do_not_leak() -> None:
    """The cached reference is never mutated by a test's edits."""
    data, good = reference()
    data["participants"].clear()
    tamper(good, lambda d: d["pairs"].clear())
    again, plan = reference()
    assert again["participants"] and plan.pairs
    assert copy.deepcopy(plan) == plan


def test_lone_scan_rows_match_the_pair_by_pair_scorer() -> None:
    """The numpy scan of every lone pair (blocking pairs, third-best scores) agrees with the
    verifier's own pair-by-pair formula on a generated intake with stated preferences."""
    data = generate_instance(90, seed=5, preformed_share=0.2)
    lone = [p for p in data["participants"] if not p.get("partner")]
    others = {
        p["id"]: [
            q["id"]
            for q in lone
            if (q["role"] == "patient_leader") != (p["role"] == "patient_leader")
        ]
        for p in lone
    }
    for p in lone[::4]:
        p["preferences"] = others[p["id"]][::-3]
    inst = parse_instance(data)
    sol = solve(inst, objective="stable")
    checker = verify_module._Checker(inst, sol, [])
    rows = [p for p in checker.people.values() if p.role == "patient_leader" and checker.is_lone(p)]
    cols = [p for p in checker.people.values() if p.role != "patient_leader" and checker.is_lone(p)]
    scan = verify_module._LoneScan(checker, rows, cols, stable=True)
    scorer = checker.scorer
    best: dict[str, list[float]] = {}
    blocking, unstable = 0, []
    none = float("-inf")
    for a in rows:
        for b in cols:
            s = scorer.allowed_score(scorer.traits(a), scorer.traits(b))
            if s is None:
                continue
            best.setdefault(a.id, []).append(s)
            best.setdefault(b.id, []).append(s)
            tie = verify_module.TIE
            if s > scan.current.get(a.id, none) + tie and s > scan.current.get(b.id, none) + tie:
                blocking += 1
            if scan._prefers(a.id, b.id, s) and scan._prefers(b.id, a.id, s):
                unstable.append((a.id, b.id))
    assert scan.blocking == blocking > 0  # the stated preferences go against the scores
    assert scan.unstable == unstable == []
    assert scan.third == {pid: sorted(v, reverse=True)[:3][-1] for pid, v in best.items()}
    assert sol.metrics is not None and sol.metrics.blocking_pairs == blocking


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_instances(), st.sampled_from(["total", "fair", "stable"]))
def test_random_instances_verify_under_every_objective(data: Data, objective: Objective) -> None:
    """generate -> solve -> verify for each objective (the pipeline tests draw `total` only):
    stability, metrics and status hold on whatever the engine returns."""
    inst = parse_instance(copy.deepcopy(data))
    try:
        sol = solve(inst, objective=objective)
    except Infeasible as exc:  # proven: nobody can be placed; only its status is not a plan's
        assert exc.solution is not None
        assert verify(inst, exc.solution).rules() <= {"status"}
        return
    report = verify(inst, sol)
    assert report.ok, str(report)


# --- the verifier's own failures, and every solve verified ----------------------------------


def test_every_solve_in_the_suite_is_verified(every_solve_verified: list[object]) -> None:
    """The autouse fixture sees each plan, whichever way `solve` was imported."""
    import matcher
    from matcher.engine.solve import solve as engine_solve

    inst = parse_instance(copy.deepcopy(tiny_data()))
    plans = [solve(inst), matcher.solve(inst, objective="fair"), engine_solve(inst, seed=3)]
    assert every_solve_verified == plans


def test_the_fixture_fails_a_test_whose_plan_breaks_a_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A solver bug that misstates a score fails the test through `solve`'s error guard
    (pytest's Failed, not InternalError), naming the rule; an honest plan passes."""
    from matcher.engine import assemble

    real = assemble.make_plan  # already verifying: wrap the wrong plan's maker again

    def wrong(instance: Instance, **kwargs: Any) -> Solution:
        plan: Solution = real(instance, **kwargs)
        first = plan.pairs[0].model_copy(update={"score": 0.5})
        return plan.model_copy(update={"pairs": [first, *plan.pairs[1:]]})

    seen: list[object] = []
    monkeypatch.setattr(assemble, "make_plan", verifying(wrong, seen))
    with pytest.raises(pytest.fail.Exception, match="scores"):
        solve(parse_instance(copy.deepcopy(tiny_data())))
    assert seen == []
    monkeypatch.setattr(assemble, "make_plan", verifying(real, seen))
    assert [solve(parse_instance(copy.deepcopy(tiny_data())))] == seen


def _tiny_plan() -> tuple[Instance, Solution]:
    inst = parse_instance(copy.deepcopy(tiny_data()))
    return inst, solve(inst)


def _sets(plan: Solution) -> list[LearningSet]:
    assert plan.learning_sets is not None
    return plan.learning_sets


def _metrics(plan: Solution) -> Metrics:
    assert plan.metrics is not None
    return plan.metrics


STRUCTURE_EDITS: dict[str, tuple[Callable[[Solution], Solution], str]] = {
    # model_copy(update=...) does not validate: the way a caller can hand over a broken plan
    "a score as text": (
        lambda s: s.model_copy(
            update={"pairs": [s.pairs[0].model_copy(update={"score": "x"}), *s.pairs[1:]]}
        ),
        "pairs[0] (pair-01).score: should be a number",
    ),
    "a cohort as a number": (
        lambda s: s.model_copy(
            update={"pairs": [s.pairs[0].model_copy(update={"cohort": 3}), *s.pairs[1:]]}
        ),
        "pairs[0] (pair-01).cohort: should be text or null",
    ),
    "no pairs list": (lambda s: s.model_copy(update={"pairs": None}), "pairs: should be a list"),
    "a pair as a dict": (
        lambda s: s.model_copy(update={"pairs": [s.pairs[0].model_dump(), *s.pairs[1:]]}),
        "pairs[0]: should be a Pair",
    ),
    "a set's pairs as text": (
        lambda s: s.model_copy(
            update={"learning_sets": [_sets(s)[0].model_copy(update={"pairs": "pair-01"})]}
        ),
        "learning_sets[0] (c1-s1).pairs: should be a list",
    ),
    "a breakdown keyed by numbers": (
        lambda s: s.model_copy(
            update={"pairs": [s.pairs[0].model_copy(update={"breakdown": {1: 0.5}}), *s.pairs[1:]]}
        ),
        "pairs[0] (pair-01).breakdown (a key): should be text",
    ),
    "a status outside the contract": (
        lambda s: s.model_copy(update={"status": "great"}),
        "status: should be one of 'optimal', 'feasible', 'infeasible', 'timeout'",
    ),
    "a metric's count as a bool": (
        lambda s: s.model_copy(
            update={"metrics": _metrics(s).model_copy(update={"blocking_pairs": True})}
        ),
        "metrics.blocking_pairs: should be an integer",
    ),
    "a required field missing": (
        lambda s: Solution.model_construct(**{k: v for k, v in s if k != "run"}),
        "run: should be a RunInfo (missing)",
    ),
    "a withdrawn ID as a number": (
        lambda s: s.model_copy(update={"withdrawn": [7]}),
        "withdrawn[0]: should be text",
    ),
}


@pytest.mark.parametrize("name", sorted(STRUCTURE_EDITS))
def test_a_plan_off_the_contract_is_reported_field_by_field(name: str) -> None:
    """A plan whose fields do not have their types is reported as plan_structure with the
    field's path, and nothing else is checked (checks past this point rely on the types)."""
    inst, good = _tiny_plan()
    edit, message = STRUCTURE_EDITS[name]
    report = verify(inst, edit(good))
    assert [(v.rule, v.message) for v in report.violations] == [("plan_structure", message)]


def test_duplicate_ids_are_named_first() -> None:
    """Duplicate pair, cohort and set IDs come first in the report, each naming the ID."""
    inst, good = _tiny_plan()
    second = good.pairs[1].model_copy(update={"id": good.pairs[0].id})
    report = verify(
        inst, good.model_copy(update={"pairs": [good.pairs[0], second, *good.pairs[2:]]})
    )
    assert (report.violations[0].rule, report.violations[0].ids) == (
        "pair_ids",
        (good.pairs[0].id,),
    )
    sets = _sets(good)
    doubled = verify(inst, good.model_copy(update={"learning_sets": [*sets, sets[0]]}))
    assert doubled.violations[0].message == f"sets: {sets[0].id} listed 2 times"


@pytest.mark.parametrize(
    "where", ["participants", "pair_rules", "schedule", "sets", "status", "metrics"]
)
def test_an_exception_inside_the_verifier_escapes_as_internal_error(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the structure check an exception is a bug in the verifier, never "the plan is
    malformed": InternalError, the cause chained."""
    inst, good = _tiny_plan()

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(verify_module._Checker, where, broken)
    with pytest.raises(InternalError, match="verifier") as caught:
        verify(inst, good)
    assert isinstance(caught.value.__cause__, KeyError)


def test_verify_refuses_arguments_that_are_not_an_instance_and_plans() -> None:
    inst, good = _tiny_plan()
    with pytest.raises(InvalidParameter, match="Instance"):
        verify(tiny_data(), good)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="Solution"):
        verify(inst, good.model_dump())  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="previous"):
        verify(inst, good, previous="plan.json")  # type: ignore[arg-type]


# --- the plan belongs to the instance ------------------------------------------------------


def test_a_plan_of_another_intake_is_one_violation_naming_both() -> None:
    data, _ = reference()
    _, tiny_plan = _tiny_plan()
    report = verify(parse_instance(data), tiny_plan)
    assert [(v.rule, v.ids) for v in report.violations] == [("instance", ("tiny", "may2016"))]
    (v,) = report.violations
    assert "intake 'tiny', not 'may2016'" in v.message
    assert "7 of its 7 people are not in the instance" in v.message


def test_a_renamed_instance_is_named_and_the_plan_still_checked() -> None:
    inst, good = _tiny_plan()
    renamed = good.model_copy(update={"instance": "tiny-2"})
    report = verify(inst, renamed)
    assert [(v.rule, v.ids) for v in report.violations] == [("instance", ("tiny-2", "tiny"))]
    assert "(the same people)" in report.violations[0].message
    # a pair's score broken as well: found too (the same people, so every check runs)
    first = renamed.pairs[0].model_copy(update={"score": 0.0})
    both = renamed.model_copy(update={"pairs": [first, *renamed.pairs[1:]]})
    assert {"instance", "scores"} <= verify(inst, both).rules()


def test_a_plan_missing_people_of_its_instance_names_them_too() -> None:
    data, good = reference()
    report = verify(parse_instance(data), tamper(good, lambda d: d["unmatched"].pop()))
    assert report.rules() == {"instance", "each_participant_once"}
    (whole,) = [v for v in report.violations if v.rule == "instance"]
    assert "0 of its 51 people are not in the instance and 1 of the instance's 52" in whole.message


# --- VerificationFailed carries the violations ----------------------------------------------


def test_verification_failed_carries_violations_and_the_same_message() -> None:
    data, good = reference()
    bad = tamper(good, PLAN_EDITS["score raised"][0])
    report = verify(parse_instance(data), bad)
    with pytest.raises(VerificationFailed) as caught:
        verify_module.check(parse_instance(data), bad)
    assert caught.value.violations == report.violations
    assert all(isinstance(v, Violation) for v in caught.value.violations)
    assert caught.value.rules() == report.rules() and "scores" in report.rules()
    assert str(caught.value) == "\n".join(
        ["the plan failed verification:", *(v.message for v in report.violations)]
    )
    assert Violation is verify_module.Violation  # one class, in matcher.errors


# --- never raises, and not by construction -------------------------------------------------


_IDS = ["pl01", "pl19", "pr18", "c1", "c3", "c1-s1", "pair-01", "pair-18", "x", ""]


@st.composite
def damaged_plans(draw: st.DrawFn) -> tuple[Solution, bool]:
    """The reference plan with one field of one item changed: an ID swapped for another (known
    or not), a list shortened, doubled or given an unknown ID, a number made NaN or infinite; or
    (``True`` second) a value of the wrong type set without validation."""
    _, good = reference()
    doc: Data = good.model_dump(mode="json")
    section = draw(st.sampled_from(["pairs", "unmatched", "waitlist", "cohorts", "learning_sets"]))
    items = doc[section]
    if not items:
        return Solution.model_validate(doc), False
    k = draw(st.integers(0, len(items) - 1))
    key = draw(st.sampled_from(sorted(items[k])))
    value = items[k][key]
    if draw(st.booleans()) and section in ("pairs", "learning_sets"):
        wrong: object = draw(st.sampled_from([None, 3, 2.5, [], {}, "x", True]))
        model = getattr(good, section)[k]
        if key in type(model).model_fields and verify_module._off_shape(
            wrong, type(model).model_fields[key].annotation
        ):
            broken = list(getattr(good, section))
            broken[k] = model.model_copy(update={key: wrong})
            return good.model_copy(update={section: broken}), True
    if isinstance(value, str):
        items[k][key] = draw(st.sampled_from(_IDS))
    elif isinstance(value, list) and value:
        how = draw(st.sampled_from(["pop", "double", "unknown"]))
        if how == "pop":
            value.pop(draw(st.integers(0, len(value) - 1)))
        elif how == "double":
            value.append(value[0])
        else:
            value.append(draw(st.sampled_from(_IDS)))
    elif isinstance(value, float):
        items[k][key] = draw(st.sampled_from([math.nan, math.inf, -1.0, 2.0]))
    return Solution.model_validate(doc), False


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_plans())
def test_verify_reports_damage_and_never_raises(damaged: tuple[Solution, bool]) -> None:
    """No exception is caught inside the verifier any more: this fails on a verifier bug.
    A plan of the wrong types is reported as structure alone; every violation names its rule
    and IDs of the instance, the plan or the intake."""
    plan, wrong_type = damaged
    data, _ = reference()
    report = verify(parse_instance(data), plan)
    assert all(v.rule and v.message for v in report.violations)
    if wrong_type:
        assert report.rules() == {"plan_structure"}, str(report)


# --- the verifier's pairing-rule forms agree -------------------------------------------------


@st.composite
def rule_heavy_instances(draw: st.DrawFn) -> Instance:
    """Random small intakes with every pairing rule in play: declared conflicts, forbidden
    pairs, organisations spelt in several ways, systems, min_score and each rule setting."""
    data = draw(random_instances())
    people = data["participants"]
    for p in people:
        p["organisation"] = draw(st.sampled_from(["Org A", "org-a", "ORG_A", "org b", "Org-B"]))
    lone = [p for p in people if not p["partner"]]
    pls = [p["id"] for p in lone if p["role"] == "patient_leader"]
    prs = [p["id"] for p in lone if p["role"] != "patient_leader"]
    if pls and prs:
        data["forbidden_pairs"] = draw(
            st.lists(
                st.tuples(st.sampled_from(pls), st.sampled_from(prs)).map(list),
                max_size=3,
                unique_by=lambda pair: tuple(sorted(pair)),
            )
        )
    data["rules"]["min_score"] = draw(st.sampled_from([0.0, 0.2, 0.4, 0.6]))
    return parse_instance(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_heavy_instances())
def test_the_verifiers_pairing_rule_forms_agree(inst: Instance) -> None:
    """Three statements of "may these two lone people be paired" inside the verifier: the
    rules with words (`breaks`, for violations, plus min_score), the wordless one run per lone
    pair (`allowed_score`), and the numpy row of `_LoneScan` (every person's third-best
    allowed score). They agree on every patient leader x professional of random intakes."""
    people = [p for p in inst.participants if p.status != "withdrawn"]
    rows = [p for p in people if p.role == "patient_leader"]
    cols = [p for p in people if p.role != "patient_leader"]
    scorer = verify_module._Scorer(inst)
    allowed: dict[str, list[float]] = {}
    for a in rows:
        for b in cols:
            x, y = scorer.traits(a), scorer.traits(b)
            score = scorer.score(x, y)
            by_words = not scorer.breaks(x, y) and score >= inst.rules.min_score
            got = scorer.allowed_score(x, y)
            assert (got is not None) == by_words, (a.id, b.id, scorer.breaks(x, y), score)
            if got is not None:
                assert got == score
                allowed.setdefault(a.id, []).append(score)
                allowed.setdefault(b.id, []).append(score)
    empty = Solution.model_validate(
        {
            "instance": inst.name,
            "status": "feasible",
            "pairs": [],
            "unmatched": [{"participant": p.id, "reason": "x"} for p in people],
            "waitlist": [],
            "run": {"solver": "none", "objective": "total", "seed": 0, "version": "0"},
        }
    )
    checker = verify_module._Checker(inst, empty, [])
    scan = verify_module._LoneScan(checker, rows, cols, stable=False)
    assert scan.third == {pid: sorted(v, reverse=True)[:3][-1] for pid, v in allowed.items()}
    # with everyone unmatched every allowed pair is a blocking pair
    assert scan.blocking == sum(len(v) for k, v in allowed.items() if k in {a.id for a in rows})
