"""Re-planning that respects decisions: withdrawals, locks, forbidden pairs, minimal disruption,
changes with reasons, plan diff and why-not (issue 7).

Each scenario has a hand-checkable fixture on the bundled intake (instances/README.md lists its
pairs), then a property test (generate -> solve -> perturb -> re-solve -> verify) and a brute
force check of minimality on tiny intakes.
"""

from __future__ import annotations

import copy
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from matcher import load_instance, parse_instance, solve, verify
from matcher.cli import main
from matcher.compare.diff import plan_changes
from matcher.contract.solution import Solution
from matcher.errors import Infeasible, InvalidInstance, InvalidParameter
from matcher.explain import why, why_not
from matcher.tools.generate import generate_instance
from tests.conftest import MAY2016, person, write
from tests.test_pipeline import cohort, instance

Data = dict[str, Any]


@cache
def _base() -> tuple[Data, str]:
    data = json.loads(MAY2016.read_text())
    plan = solve(parse_instance(data)).model_dump_json()
    return data, plan


def base() -> tuple[Data, Solution]:
    data, plan = _base()
    return copy.deepcopy(data), Solution.model_validate_json(plan)


def edit(data: Data, pid: str, **fields: Any) -> Data:
    for p in data["participants"]:
        if p["id"] == pid:
            p.update(fields)
    return data


def replan(data: Data, prev: Solution, **kw: Any) -> Solution:
    inst = parse_instance(data)
    sol = solve(inst, previous=prev, **kw)
    report = verify(inst, sol, previous=prev)
    assert report.ok, str(report)
    return sol


def by_people(sol: Solution) -> dict[tuple[str, str], Any]:
    return {(p.patient_leader, p.partner): p for p in sol.pairs}


# --- withdrawal is one edit -------------------------------------------------------------------


def test_withdrawal_of_a_lone_professional_moves_nothing_else() -> None:
    """pr20 (lone, paired with pl21 in c1) withdraws: every other pair keeps its partner, ID and
    cohort; every set not below its minimum keeps its pairs; the change says why."""
    data, prev = base()
    sol = replan(edit(data, "pr20", status="withdrawn"), prev)
    before, after = by_people(prev), by_people(sol)
    gone = next(k for k in before if "pr20" in k)
    for key, p in before.items():
        if key == gone:
            continue
        assert after[key].id == p.id and after[key].cohort == p.cohort
    assert sol.withdrawn == ["pr20"]
    assert "pr20" not in {u.participant for u in sol.unmatched}
    assert sol.changes is not None and sol.changes.minimal
    c = sol.changes.counts
    assert (c.dissolved, c.moved_cohort, c.moved_set) == (1, 0, 0)
    [dissolved] = [x for x in sol.changes.items if x.kind == "dissolved"]
    assert dissolved.reason == "pr20 withdrew" and dissolved.pair == before[gone].id
    # sets: the set that lost the pair kept its other pairs (it stays at or above the minimum)
    old_sets = {s.id: set(s.pairs) - {before[gone].id} for s in prev.learning_sets or []}
    new_sets = {s.id: set(s.pairs) for s in sol.learning_sets or []}
    assert old_sets == new_sets


def test_withdrawal_needs_no_other_edit() -> None:
    """pr05 (pre-formed with pl05) withdraws with one edit: pl05 still names pr05 as partner and
    pl22 nothing changes; pl05 becomes a lone applicant and is paired only if someone is free."""
    data, prev = base()
    inst = parse_instance(edit(data, "pr05", status="withdrawn"))  # references stay valid
    sol = replan(inst.model_dump(mode="json"), prev)
    assert not any("pr05" in (p.patient_leader, p.partner) for p in sol.pairs)
    pl05 = [p for p in sol.pairs if p.patient_leader == "pl05"]
    assert all(not p.preformed for p in pl05)
    assert sol.changes is not None
    assert {x.reason for x in sol.changes.items if x.kind == "dissolved"} == {"pr05 withdrew"}


def test_withdrawn_partner_frees_the_other_for_pairing() -> None:
    """Tiny: pl0's pre-formed partner pr0 withdraws and pr9 is free and compatible: pl0 is
    re-paired with pr9 and placed."""
    people = [
        person("pl0", "patient_leader", "o1", partner="pr0", interests=["x"]),
        person("pr0", "clinician", "o2", partner="pl0", status="withdrawn"),
        person("pr9", "clinician", "o3", interests=["x"]),
    ]
    inst = parse_instance(instance([cohort("c1", 4)], people))
    sol = solve(inst)
    assert verify(inst, sol).ok
    [pair] = sol.pairs
    assert (pair.patient_leader, pair.partner, pair.preformed) == ("pl0", "pr9", False)
    assert pair.cohort == "c1" and sol.withdrawn == ["pr0"]


# --- cohort shrinks, late applicant ----------------------------------------------------------


def test_shrunk_cohort_moves_only_what_must_move() -> None:
    """c1 (capacity 12) shrinks to 8: the pairs that leave c1 say so; nothing outside c1 moves
    except to take them in."""
    data, prev = base()
    data["cohorts"][0]["capacity_pairs"] = 8
    sol = replan(data, prev)
    assert sum(p.cohort == "c1" for p in sol.pairs) <= 8
    assert sol.changes is not None
    moved = [x for x in sol.changes.items if x.kind in ("moved_cohort", "newly_waitlisted")]
    assert moved and all(x.before == "c1" for x in moved)
    assert all("c1 shrank to 8 pairs" in x.reason for x in moved)
    fresh = solve(parse_instance(data))
    assert _disruption(prev, sol) <= _disruption(prev, fresh)


def test_late_applicant_is_paired_without_dissolving_anything() -> None:
    """A late professional, like pr19, arrives: an unmatched patient leader is paired with them;
    no pair of the previous plan is dissolved or moved to another cohort."""
    data, prev = base()
    late = dict(next(p for p in data["participants"] if p["id"] == "pr19"), id="pr99")
    data["participants"].append(late)
    sol = replan(data, prev)
    assert sol.changes is not None
    c = sol.changes.counts
    assert (c.dissolved, c.moved_cohort, c.formed) == (0, 0, 1)
    [formed] = [x for x in sol.changes.items if x.kind == "formed"]
    assert "pr99" in formed.participants and "pr99 is a new applicant" in formed.reason
    # the new pair's ID was never used before
    assert formed.pair not in {p.id for p in prev.pairs}


def test_previous_plan_naming_unknown_people_is_accepted() -> None:
    """A previous plan naming someone deleted from the file: a change, not an error."""
    data, prev = base()
    data["participants"] = [p for p in data["participants"] if p["id"] != "pr20"]
    for p in data["participants"]:
        p["avoid"] = [x for x in p["avoid"] if x != "pr20"]
    sol = replan(data, prev)
    assert sol.changes is not None
    assert any(x.reason == "pr20 is no longer in the instance" for x in sol.changes.items)


# --- locks and forbidden pairs ----------------------------------------------------------------


def test_lock_forms_and_places_the_pair_whatever_the_objective() -> None:
    """pl23 is unmatched in the optimal plan; locked with pr18 in c1 they are paired there."""
    data, _ = base()
    data["locks"] = [{"patient_leader": "pl23", "partner": "pr18", "cohort": "c1"}]
    inst = parse_instance(data)
    for objective in ("total", "fair", "stable"):
        sol = solve(inst, objective=objective)
        assert verify(inst, sol).ok
        locked = by_people(sol)[("pl23", "pr18")]
        assert locked.locked and not locked.preformed and locked.cohort == "c1"


@pytest.mark.parametrize(
    ("lock", "edits", "expected"),
    [
        (("pl23", "pr21", None), {}, "declared conflict"),
        (("pl18", "pr18", None), {}, "no cohort both can attend: pl18 only c3, pr18 only c1"),
        (("pl20", "pr19", "c3"), {}, "cannot attend c3"),
        (("pl19", "pr18", None), {"pr18": {"status": "withdrawn"}}, "has withdrawn"),
        (("pl01", "pr18", None), {}, "splits the pre-formed pair pl01+pr01"),
    ],
)
def test_lock_breaking_a_hard_rule_is_an_input_error(
    lock: tuple[str, str, str | None], edits: dict[str, Data], expected: str
) -> None:
    data, _ = base()
    for pid, fields in edits.items():
        edit(data, pid, **fields)
    data["locks"] = [{"patient_leader": lock[0], "partner": lock[1], "cohort": lock[2]}]
    with pytest.raises(InvalidInstance) as caught:
        parse_instance(data)
    [problem] = caught.value.problems
    assert problem.path.startswith("locks[0]") and expected in problem.message


def test_one_person_in_two_locks_and_capacity_are_input_errors() -> None:
    data, _ = base()
    data["cohorts"][2]["capacity_pairs"] = 1
    data["locks"] = [
        {"patient_leader": "pl19", "partner": "pr18"},
        {"patient_leader": "pl21", "partner": "pr18"},
        {"patient_leader": "pl01", "partner": "pr01", "cohort": "c3"},
        {"patient_leader": "pl02", "partner": "pr02", "cohort": "c3"},
    ]
    with pytest.raises(InvalidInstance) as caught:
        parse_instance(data)
    text = str(caught.value)
    assert "pr18 is in two locks (locks[0] and locks[1])" in text
    assert "2 locked pairs in c3 (locks [2, 3]), above its capacity of 1 pairs" in text


def test_forbidden_pair_is_never_formed_but_may_share_a_set() -> None:
    """Tiny: one cohort, one set of 2 pairs. pl1+pr1 is the best pair but forbidden, so the
    plan pairs pl1+pr2 and pl2+pr1; the two forbidden people still share the one set."""
    people = [
        person("pl1", "patient_leader", "o1", interests=["x"]),
        person("pl2", "patient_leader", "o2", interests=["y"]),
        person("pr1", "clinician", "o3", interests=["x"]),
        person("pr2", "clinician", "o4", interests=["z"]),
    ]
    data = instance([cohort("c1", 2, lo=2, hi=2)], people, forbidden_pairs=[["pr1", "pl1"]])
    inst = parse_instance(data)
    sol = solve(inst)
    assert verify(inst, sol).ok
    assert ("pl1", "pr1") not in by_people(sol)
    assert len(sol.learning_sets or []) == 1 and len(sol.pairs) == 2
    # and the verifier catches a plan that forms it
    bad = sol.model_copy(
        update={
            "pairs": [
                p.model_copy(update={"partner": "pr1" if p.patient_leader == "pl1" else "pr2"})
                for p in sol.pairs
            ]
        }
    )
    assert "forbidden_pairs" in verify(inst, bad).rules()


def test_locks_that_cannot_hold_together_are_named() -> None:
    """Two locked pairs share big-trust and are locked into c1 (capacity 3, sets of 2-4 pairs,
    one more pre-formed pair): each lock alone fits (with the third pair, one set of 2), but
    both need two sets of 2, i.e. 4 pairs: Infeasible names both locks."""
    people = [
        person("a0", "patient_leader", "o1"),
        person("b0", "clinician", "big-trust"),
        person("a1", "patient_leader", "o2"),
        person("b1", "clinician", "big-trust"),
        person("a2", "patient_leader", "o3", partner="b2"),
        person("b2", "clinician", "o4", partner="a2"),
    ]
    locks = [
        {"patient_leader": "a0", "partner": "b0", "cohort": "c1"},
        {"patient_leader": "a1", "partner": "b1", "cohort": "c1"},
    ]
    inst = parse_instance(instance([cohort("c1", 3, lo=2, hi=4)], people, locks=locks))
    with pytest.raises(Infeasible) as caught:
        solve(inst)
    kinds = [c.kind for c in caught.value.diagnosis]
    assert kinds.count("lock") == 2
    assert {c.ids for c in caught.value.diagnosis if c.kind == "lock"} == {
        ("a0", "b0"),
        ("a1", "b1"),
    }


# --- why not, why, diff -------------------------------------------------------------------


def test_why_not_names_the_rule_or_the_price() -> None:
    data, prev = base()
    inst = parse_instance(data)
    rule = why_not(inst, "pl18", "pr18", prev)
    assert rule.forbidden_by and "pl18 only c3, pr18 only c1" in rule.forbidden_by[0]
    price = why_not(inst, "pr18", "pl23", prev)  # either order
    assert price.patient_leader == "pl23" and not price.forbidden_by
    assert price.total_after is not None and price.total_before is not None
    assert price.total_after <= price.total_before + 1e-9  # the plan was optimal
    assert price.newly_unmatched  # someone loses their partner
    with pytest.raises(InvalidParameter):
        why_not(inst, "pl18", "pl19", prev)


def test_why_lists_alternatives_with_reasons() -> None:
    """Alternatives are the compatible people who went to someone else, with the price; pr21
    (a declared conflict of pl23's) can never be chosen and is only counted (issue 16)."""
    data, prev = base()
    answer = why(parse_instance(data), "pl23", prev)
    assert answer.pair is None and answer.standing.startswith("unmatched")
    assert [a.partner for a in answer.alternatives] == ["pr19", "pr18", "pr20"]
    assert "went to pl20 (pair-19, score 0.90)" in answer.alternatives[0].why_not
    assert "score 0.35 with pl23" in answer.alternatives[0].why_not
    assert "pr21" not in {a.partner for a in answer.alternatives}
    assert answer.incompatible > 0 and "can never be paired" in answer.summary()


def test_cli_diff_and_explain(tmp_path: Path) -> None:
    data, prev = base()
    old = tmp_path / "old.json"
    old.write_text(prev.model_dump_json())
    inst_path = write(tmp_path, edit(data, "pr20", status="withdrawn"), "w.json")
    new = tmp_path / "new.json"
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["solve", str(inst_path), "--previous", str(old), "--format", "json", "-o", str(new)],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["diff", str(old), str(new), "--instance", str(inst_path)])
    assert result.exit_code == 0
    assert "dissolved 1" in result.output and "pr20 withdrew" in result.output
    result = runner.invoke(main, ["diff", str(old), str(new), "--format", "json"])
    doc = json.loads(result.output)
    assert doc["changes"]["counts"]["kept"] == len(prev.pairs) - 1
    result = runner.invoke(main, ["explain", str(MAY2016), str(old), "--why-not", "pl18", "pr18"])
    assert result.exit_code == 0 and "cannot be paired" in result.output
    result = runner.invoke(main, ["explain", str(MAY2016), "--why-not", "pl18", "nobody"])
    assert result.exit_code == 2 and "unknown participant" in result.output


# --- property: never more changes than solving from scratch ---------------------------------


def _disruption(prev: Solution, new: Solution) -> tuple[int, int, int]:
    c = plan_changes(prev, new).counts
    return (c.dissolved, c.moved_cohort, c.moved_set)


@pytest.mark.parametrize("seed", range(4))
def test_property_replan_never_disturbs_more_than_a_fresh_solve(seed: int) -> None:
    """generate -> solve -> withdraw one placed person -> re-solve with the previous plan ->
    verify; the re-plan places as many pairs as a fresh solve and dissolves no more pairs."""
    data = generate_instance(60, seed=seed)
    inst = parse_instance(data)
    prev = solve(inst, seed=seed)
    placed = [p for p in prev.pairs if p.cohort is not None]
    victim = placed[(7 * seed) % len(placed)].partner
    edit(data, victim, status="withdrawn")
    sol = replan(data, prev, seed=seed)
    fresh = solve(parse_instance(data), seed=seed)
    placed_new = sum(p.cohort is not None for p in sol.pairs)
    assert placed_new >= sum(p.cohort is not None for p in fresh.pairs)
    assert _disruption(prev, sol)[:2] <= _disruption(prev, fresh)[:2]


# --- brute force: the fewest changes on tiny intakes -------------------------------------


def _brute_force(inst: Any, prev: Solution) -> tuple[int, int, int]:
    """(most pairs placed, then fewest dissolved, then fewest moved cohort) over every
    matching and placement of a tiny intake (sets of 1-4 pairs, no set rules that bind)."""
    from matcher.contract.rules import can_attend, pairing_rule_breaks

    people = [p for p in inst.participants if p.status == "active"]
    pls = [p for p in people if p.role == "patient_leader"]
    prs = [p for p in people if p.role != "patient_leader"]
    before = {(p.patient_leader, p.partner): p.cohort for p in prev.pairs}
    best: tuple[int, int, int] | None = None
    options = [None, *pls]
    for assignment in itertools.product(options, repeat=len(prs)):
        used = [a.id for a in assignment if a is not None]
        if len(used) != len(set(used)):
            continue
        pairs = [(a, b) for a, b in zip(assignment, prs, strict=True) if a is not None]
        if any(pairing_rule_breaks(inst, a, b) for a, b in pairs):
            continue
        choices = [
            [None] + [c.id for c in inst.cohorts if can_attend(a, c) and can_attend(b, c)]
            for a, b in pairs
        ]
        for cohorts in itertools.product(*choices):
            fill = {c.id: sum(1 for x in cohorts if x == c.id) for c in inst.cohorts}
            if any(fill[c.id] > c.capacity_pairs for c in inst.cohorts):
                continue
            keys = {(a.id, b.id): q for (a, b), q in zip(pairs, cohorts, strict=True)}
            placed = sum(q is not None for q in cohorts)
            dissolved = sum(1 for k in before if k not in keys)
            moved = sum(1 for k, q in before.items() if k in keys and keys[k] != q)
            value = (placed, -dissolved, -moved)
            best = value if best is None or value > best else best
    assert best is not None
    return best[0], -best[1], -best[2]


@pytest.mark.parametrize("seed", range(6))
def test_brute_force_minimal_changes_on_tiny_intakes(seed: int) -> None:
    import random

    rng = random.Random(seed)
    people = []
    for i in range(3):
        people.append(person(f"pl{i}", "patient_leader", f"a{i}", interests=[rng.choice("xyz")]))
        people.append(person(f"pr{i}", "clinician", f"b{i}", interests=[rng.choice("xyz")]))
    cohorts = [cohort("c1", 2), cohort("c2", 2)]
    data = instance(cohorts, people)
    prev = solve(parse_instance(data))
    # perturb: one withdrawal, one cohort shrinks, one person can no longer attend c1
    edit(data, f"pr{rng.randrange(3)}", status="withdrawn")
    data["cohorts"][rng.randrange(2)]["capacity_pairs"] = 1
    edit(data, f"pl{rng.randrange(3)}", available_cohorts=["c2"])
    inst = parse_instance(data)
    sol = solve(inst, previous=prev)
    assert verify(inst, sol, previous=prev).ok
    assert sol.changes is not None and sol.changes.minimal
    placed = sum(p.cohort is not None for p in sol.pairs)
    c = sol.changes.counts
    assert (placed, c.dissolved, c.moved_cohort) == _brute_force(inst, prev)


def test_verify_catches_tampered_changes() -> None:
    data, prev = base()
    inst = parse_instance(edit(data, "pr20", status="withdrawn"))
    sol = solve(inst, previous=prev)
    assert sol.changes is not None
    counts = sol.changes.counts.model_copy(update={"moved_set": 5})
    bad = sol.model_copy(update={"changes": sol.changes.model_copy(update={"counts": counts})})
    assert "changes" in verify(inst, bad, previous=prev).rules()
    renamed = sol.model_copy(
        update={"pairs": [p.model_copy(update={"id": p.id + "x"}) for p in sol.pairs]}
    )
    assert "pair_ids" in verify(inst, renamed, previous=prev).rules()


def test_seed_and_time_limit_are_checked() -> None:
    inst = load_instance(MAY2016)
    for kwargs in ({"seed": -1}, {"seed": 2**40}, {"time_limit": 0}, {"objective": "best"}):
        with pytest.raises(InvalidParameter):
            solve(inst, **kwargs)
