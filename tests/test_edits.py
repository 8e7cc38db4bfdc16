"""The edit API (matcher.contract.edits): each decision gives a new valid Instance or is refused
with the rule and the IDs, and never changes the instance it was given."""

from __future__ import annotations

import pytest

from matcher import load_instance, solve, verify
from matcher.contract import edits
from matcher.contract.instance import Instance
from matcher.errors import InvalidInstance
from tests.conftest import MAY2016


@pytest.fixture(scope="module")
def may() -> Instance:
    return load_instance(MAY2016)


def refused(call: object, *words: str) -> InvalidInstance:
    """The InvalidInstance raised by ``call()``, whose messages hold every one of ``words``."""
    assert callable(call)
    with pytest.raises(InvalidInstance) as info:
        call()
    text = str(info.value)
    for w in words:
        assert w in text, (w, text)
    return info.value


def test_withdraw_frees_the_partner_and_leaves_the_input_alone(may: Instance) -> None:
    before = may.model_dump_json()
    after = edits.withdraw(may, "pl01")
    assert may.model_dump_json() == before
    assert not after.participants_by_id()["pl01"].active
    plan = solve(after, seed=0)
    assert verify(after, plan).ok
    placed = {x for p in plan.pairs for x in (p.patient_leader, p.partner)}
    assert "pl01" not in placed
    assert "pl01" not in {u.participant for u in plan.unmatched}


def test_withdraw_removes_the_locks_naming_them(may: Instance) -> None:
    locked = edits.lock(may, "pr20", "pl20", cohort="c1")
    assert [(x.patient_leader, x.partner, x.cohort) for x in locked.locks] == [
        ("pl20", "pr20", "c1")
    ]
    after = edits.withdraw(locked, "pr20")
    assert after.locks == []


def test_withdraw_and_reinstate_refuse_what_makes_no_sense(may: Instance) -> None:
    refused(lambda: edits.withdraw(may, "nobody"), "unknown participant", "nobody")
    gone = edits.withdraw(may, "pl19")
    refused(lambda: edits.withdraw(gone, "pl19"), "already withdrawn", "pl19")
    refused(lambda: edits.reinstate(may, "pl19"), "has not withdrawn", "pl19")
    back = edits.reinstate(gone, "pl19")
    assert back.participants_by_id()["pl19"].active


def test_lock_is_kept_by_the_solver(may: Instance) -> None:
    after = edits.pair_by_hand(may, "pl20", "pr20", cohort="c1")
    plan = solve(after, seed=0)
    assert verify(after, plan).ok
    pair = next(p for p in plan.pairs if p.patient_leader == "pl20")
    assert (pair.partner, pair.cohort, pair.locked) == ("pr20", "c1", True)
    # locking again moves only the cohort; unlocking removes it
    assert edits.lock(after, "pl20", "pr20").locks[0].cohort is None
    assert edits.unlock(after, "pr20", "pl20").locks == []
    refused(lambda: edits.unlock(may, "pl20", "pr20"), "is not locked", "pl20+pr20")


def test_lock_refusals_name_the_rule(may: Instance) -> None:
    refused(lambda: edits.lock(may, "pl20", "pl19"), "same side", "pl20", "pl19")
    refused(lambda: edits.lock(may, "pl20", "pl20"), "named twice")
    refused(lambda: edits.lock(may, "pl20", "pr20", cohort="c9"), "unknown cohort", "c9")
    # pl24 can attend c2 only, pr20 c1 only
    refused(lambda: edits.lock(may, "pl24", "pr20"), "no cohort both can attend")
    # pl20 can attend c1 only
    refused(lambda: edits.lock(may, "pl20", "pr24", cohort="c2"), "cannot attend c2")
    # pl01 applied with pr01
    refused(lambda: edits.lock(may, "pl01", "pr20"), "splits the pre-formed pair", "pl01+pr01")
    # declared conflict: pl23 avoids pr21
    refused(lambda: edits.lock(may, "pl23", "pr21"), "declared conflict", "pl23")
    once = edits.lock(may, "pl20", "pr20")
    refused(lambda: edits.lock(once, "pl19", "pr20"), "two locks", "pr20")
    gone = edits.withdraw(may, "pr20")
    refused(lambda: edits.lock(gone, "pl20", "pr20"), "withdrawn", "pr20")


def test_forbid_and_allow(may: Instance) -> None:
    after = edits.forbid(may, "pr20", "pl20")
    assert after.forbidden_pairs == [("pl20", "pr20")]
    plan = solve(after, seed=0)
    assert verify(after, plan).ok
    assert not any(p.patient_leader == "pl20" and p.partner == "pr20" for p in plan.pairs)
    refused(lambda: edits.forbid(after, "pl20", "pr20"), "already forbidden")
    assert edits.allow(after, "pl20", "pr20").forbidden_pairs == []
    refused(lambda: edits.allow(may, "pl20", "pr20"), "is not forbidden")
    # contradictions: a locked pair, a pre-formed pair
    locked = edits.lock(may, "pl20", "pr20")
    refused(lambda: edits.forbid(locked, "pl20", "pr20"), "contradiction", "locked")
    refused(lambda: edits.lock(after, "pl20", "pr20"), "forbidden")
    refused(lambda: edits.forbid(may, "pl01", "pr01"), "contradiction", "pre-formed")


def test_capacity_and_closing_a_cohort(may: Instance) -> None:
    after = edits.set_capacity(may, "c2", 3)
    assert after.cohorts_by_id()["c2"].capacity_pairs == 3
    plan = solve(after, seed=0)
    assert verify(after, plan).ok
    assert sum(p.cohort == "c2" for p in plan.pairs) <= 3
    closed = edits.close_cohort(may, "c3")
    plan = solve(closed, seed=0)
    assert verify(closed, plan).ok
    assert not any(p.cohort == "c3" for p in plan.pairs)
    refused(lambda: edits.set_capacity(may, "c9", 3), "unknown cohort", "c9")
    refused(lambda: edits.set_capacity(may, "c1", -1), "whole number")
    refused(lambda: edits.set_capacity(may, "c1", True), "whole number")
    locked = edits.lock(may, "pl20", "pr20", cohort="c1")
    refused(lambda: edits.close_cohort(locked, "c1"), "above its capacity", "c1")


def test_messages_carry_ids_not_names(may: Instance) -> None:
    data = may.model_dump(mode="json", exclude_unset=True)
    for record in data["participants"]:
        record["name"] = f"Secret Name {record['id']}"
    named = Instance.model_validate(data)
    error = refused(lambda: edits.lock(named, "pl24", "pr20"))
    assert "Secret" not in str(error)
    assert all(p.ids for p in error.problems)
