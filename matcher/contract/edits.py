"""Decisions an administrator takes on an intake, as pure functions ``Instance -> Instance``.

Each function returns a *new*, fully validated :class:`~matcher.contract.instance.Instance`
(the argument is never changed) or raises :class:`~matcher.errors.InvalidInstance` whose
``problems`` name the rule broken and the IDs involved, for example::

    from matcher.contract import edits
    after = edits.withdraw(instance, "pl03")
    after = edits.lock(after, "pl19", "pr20", cohort="c1")
    edits.forbid(after, "pl19", "pr20")   # InvalidInstance: contradiction: locked and forbidden

The edits are the web app's clicks and an admin script's calls alike:

======================  =====================================================================
:func:`withdraw`        the person takes no part; locks naming them are removed with them
:func:`reinstate`       a withdrawn person is active again
:func:`lock`            this pair is formed (and placed in ``cohort`` when given)
:func:`pair_by_hand`    two people who applied alone are paired by the team (a lock)
:func:`unlock`          the lock on a pair is removed
:func:`forbid`          this pair is never formed (they may still share a set)
:func:`allow`           a forbidden pair is allowed again
:func:`set_capacity`    a cohort takes at most ``pairs`` pairs
:func:`close_cohort`    a cohort takes no pairs (capacity 0)
======================  =====================================================================

Every result passes the same checks as an instance file (:mod:`matcher.contract.checks`): a lock
that breaks a hard rule, a lock on a forbidden pair, more locked pairs in a cohort than its
capacity are refused with the rule in words. Messages carry IDs only, never names.

A lock names a pair and, optionally, its cohort; keeping a pair in a given action-learning set
needs a ``set`` on the lock in the instance format, which the engine does not read yet.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from matcher.contract.instance import Instance
from matcher.errors import InvalidInstance, Problem

__all__ = [
    "allow",
    "close_cohort",
    "forbid",
    "lock",
    "pair_by_hand",
    "reinstate",
    "set_capacity",
    "unlock",
    "withdraw",
]


def _data(instance: Instance) -> dict[str, Any]:
    """The instance as JSON data to edit (a deep copy: the instance itself is frozen)."""
    if not isinstance(instance, Instance):
        raise TypeError(f"an edit takes an Instance, not {type(instance).__name__}")
    return instance.model_dump(mode="json", exclude_unset=True)


def _refuse(edit: str, path: str, message: str, ids: tuple[str, ...]) -> InvalidInstance:
    return InvalidInstance(f"edit {edit}", [Problem(path, message, ids)])


def _rebuild(edit: str, data: dict[str, Any]) -> Instance:
    """Validate the edited data as a whole (the model's own cross-reference checks,
    :mod:`matcher.contract.checks`); every rule it breaks is named."""
    try:
        return Instance.model_validate(data)
    except InvalidInstance as exc:
        raise InvalidInstance(f"edit {edit}", exc.problems) from None
    except ValidationError as exc:  # an edit never changes a shape; kept for safety
        problems = [
            Problem(".".join(map(str, e["loc"])) or "$", e["msg"])
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidInstance(f"edit {edit}", problems) from None


def _person(data: dict[str, Any], pid: str, edit: str) -> tuple[int, dict[str, Any]]:
    for i, record in enumerate(data["participants"]):
        if record["id"] == pid:
            return i, record
    raise _refuse(edit, "participants", f"unknown participant {pid!r}", (pid,))


def _cohort(data: dict[str, Any], cid: str, edit: str) -> tuple[int, dict[str, Any]]:
    for i, record in enumerate(data["cohorts"]):
        if record["id"] == cid:
            return i, record
    raise _refuse(edit, "cohorts", f"unknown cohort {cid!r}", (cid,))


def _sides(data: dict[str, Any], x: str, y: str, edit: str) -> tuple[str, str]:
    """``(patient leader, clinician or manager)`` from two IDs given in either order."""
    _, a = _person(data, x, edit)
    _, b = _person(data, y, edit)
    if x == y:
        raise _refuse(edit, "participants", f"{x} named twice; a pair is two people", (x,))
    a_pl, b_pl = a["role"] == "patient_leader", b["role"] == "patient_leader"
    if a_pl == b_pl:
        raise _refuse(
            edit,
            "participants",
            f"{x} and {y} are on the same side; a pair is one patient leader with one "
            "clinician or manager",
            (x, y),
        )
    return (x, y) if a_pl else (y, x)


def _lock_index(data: dict[str, Any], pl: str, pr: str) -> int | None:
    for i, entry in enumerate(data.get("locks") or []):
        if entry["patient_leader"] == pl and entry["partner"] == pr:
            return i
    return None


def _forbid_index(data: dict[str, Any], pl: str, pr: str) -> int | None:
    for i, entry in enumerate(data.get("forbidden_pairs") or []):
        if set(entry) == {pl, pr}:
            return i
    return None


def withdraw(instance: Instance, participant: str) -> Instance:
    """``participant`` withdraws: they take no part, their pre-formed partner becomes a lone
    applicant, and locks naming them are removed (one edit, not three). Records that name
    them in ``partner`` or ``avoid`` stay as they are, as the format allows."""
    edit = f"withdraw {participant}"
    data = _data(instance)
    _, record = _person(data, participant, edit)
    if record.get("status") == "withdrawn":
        raise _refuse(
            edit, "participants.status", f"{participant} has already withdrawn", (participant,)
        )
    record["status"] = "withdrawn"
    if data.get("locks"):
        data["locks"] = [
            x for x in data["locks"] if participant not in (x["patient_leader"], x["partner"])
        ]
    return _rebuild(edit, data)


def reinstate(instance: Instance, participant: str) -> Instance:
    """A withdrawn ``participant`` is active again (a pre-formed partner who is still
    active pairs with them again)."""
    edit = f"reinstate {participant}"
    data = _data(instance)
    _, record = _person(data, participant, edit)
    if record.get("status", "active") != "withdrawn":
        raise _refuse(
            edit, "participants.status", f"{participant} has not withdrawn", (participant,)
        )
    record["status"] = "active"
    return _rebuild(edit, data)


def lock(instance: Instance, a: str, b: str, *, cohort: str | None = None) -> Instance:
    """Keep the pair ``a``+``b`` (IDs in either order) exactly, placed in ``cohort`` when
    given. Locking a locked pair again changes only its cohort. Refused when the pair breaks a
    hard rule (declared conflict, forbidden pair, organisation or system policy, no cohort
    both can attend), splits a pre-formed pair, names a withdrawn person or someone already
    locked with another, or fills ``cohort`` beyond its capacity."""
    edit = f"lock {a}+{b}" + (f" in {cohort}" if cohort else "")
    data = _data(instance)
    pl, pr = _sides(data, a, b, edit)
    if cohort is not None:
        _cohort(data, cohort, edit)
    entry: dict[str, Any] = {"patient_leader": pl, "partner": pr}
    if cohort is not None:
        entry["cohort"] = cohort
    locks = list(data.get("locks") or [])
    i = _lock_index(data, pl, pr)
    if i is None:
        locks.append(entry)
    else:
        locks[i] = entry
    data["locks"] = locks
    return _rebuild(edit, data)


def pair_by_hand(instance: Instance, a: str, b: str, *, cohort: str | None = None) -> Instance:
    """The team pairs ``a`` and ``b`` themselves: a lock of a pair the solver did not choose.
    Refused, besides :func:`lock`'s rules, when either is in a pre-formed pair with someone
    else (withdraw that partner first)."""
    return lock(instance, a, b, cohort=cohort)


def unlock(instance: Instance, a: str, b: str) -> Instance:
    """Remove the lock on ``a``+``b``; the solver may then re-pair them."""
    edit = f"unlock {a}+{b}"
    data = _data(instance)
    pl, pr = _sides(data, a, b, edit)
    i = _lock_index(data, pl, pr)
    if i is None:
        raise _refuse(edit, "locks", f"{pl}+{pr} is not locked", (pl, pr))
    data["locks"] = [x for j, x in enumerate(data["locks"]) if j != i]
    return _rebuild(edit, data)


def forbid(instance: Instance, a: str, b: str) -> Instance:
    """Never pair ``a`` and ``b`` (they may still share an action-learning set). Refused when
    the pair is locked or applied together (a contradiction), or already forbidden."""
    edit = f"forbid {a}+{b}"
    data = _data(instance)
    pl, pr = _sides(data, a, b, edit)
    if _forbid_index(data, pl, pr) is not None:
        raise _refuse(edit, "forbidden_pairs", f"{pl}+{pr} is already forbidden", (pl, pr))
    data["forbidden_pairs"] = [*(data.get("forbidden_pairs") or []), [pl, pr]]
    return _rebuild(edit, data)


def allow(instance: Instance, a: str, b: str) -> Instance:
    """Remove ``a``+``b`` from the forbidden pairs."""
    edit = f"allow {a}+{b}"
    data = _data(instance)
    pl, pr = _sides(data, a, b, edit)
    i = _forbid_index(data, pl, pr)
    if i is None:
        raise _refuse(edit, "forbidden_pairs", f"{pl}+{pr} is not forbidden", (pl, pr))
    data["forbidden_pairs"] = [x for j, x in enumerate(data["forbidden_pairs"]) if j != i]
    return _rebuild(edit, data)


def set_capacity(instance: Instance, cohort: str, pairs: int) -> Instance:
    """Cohort ``cohort`` takes at most ``pairs`` pairs. Refused below the pairs locked into
    it, and for a number that is not a whole number from 0 to 100,000."""
    edit = f"set capacity of {cohort} to {pairs}"
    data = _data(instance)
    _, record = _cohort(data, cohort, edit)
    if isinstance(pairs, bool) or not isinstance(pairs, int) or not 0 <= pairs <= 100_000:
        raise _refuse(
            edit,
            f"cohorts({cohort}).capacity_pairs",
            "a capacity is a whole number of pairs from 0 to 100000",
            (cohort,),
        )
    record["capacity_pairs"] = pairs
    return _rebuild(edit, data)


def close_cohort(instance: Instance, cohort: str) -> Instance:
    """Cohort ``cohort`` takes no pairs (its capacity becomes 0); its pairs move elsewhere or
    to the wait-list at the next re-plan. Refused while pairs are locked into it."""
    return set_capacity(instance, cohort, 0)
