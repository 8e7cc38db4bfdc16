"""Cross-reference checks of an instance: duplicate IDs, partners, unknown cohort and conflict
IDs, impossible set sizes, locks and forbidden pairs, and locks that break a hard rule.

The :class:`~matcher.contract.instance.Instance` model runs them on itself, so an Instance that
exists is valid whatever built it; :mod:`matcher.intake.json_file` runs them on a file's data
together with the shape errors. Every problem carries its JSON path and the IDs involved;
messages hold IDs only, never names or other personal data. This module imports the rules and
errors only: the Instance it checks is named for the type checker alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeGuard

from matcher.contract.rules import PROFESSIONAL_ROLES, can_attend, pairing_rule_breaks
from matcher.errors import Problem
from matcher.text import id_like, shown_id

if TYPE_CHECKING:  # the model runs these checks on itself: a type-only reference back up
    from matcher.contract.instance import Instance


def _is_int(value: Any) -> TypeGuard[int]:
    """An integer, and not a boolean (JSON ``true`` is not a number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> str | None:
    """``value`` if it is a string (a role given as a list or object is a shape error, reported
    by the schema; here it must not break set lookups)."""
    return value if isinstance(value, str) else None


def path_id(value: Any) -> str:
    """A record's ID for a JSON path: as written when it looks like an ID, else not shown
    (a name typed into an ID field must not reach a message)."""
    return str(value) if id_like(value) else "not shown"


def _id_tuple(*values: Any) -> tuple[str, ...]:
    """The IDs involved in a problem, leaving out values that do not look like IDs."""
    return tuple(str(v) for v in values if id_like(v))


def _listing(ids: set[str], limit: int = 10) -> str:
    """At most ``limit`` IDs, sorted, then how many more."""
    shown = sorted(ids)[:limit]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(shown) + more


def _records(data: dict[str, Any], key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    items = data.get(key)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield i, item


def _ids(items: Any) -> list[str]:
    return [x for x in items if isinstance(x, str)] if isinstance(items, list) else []


def reference_problems(data: dict[str, Any]) -> list[Problem]:
    """Cross-reference problems of an instance's JSON data (shape errors are skipped over)."""
    problems: list[Problem] = []
    cohorts = list(_records(data, "cohorts"))
    people = list(_records(data, "participants"))

    for key, records in (("cohorts", cohorts), ("participants", people)):
        counts = Counter(r.get("id") for _, r in records if isinstance(r.get("id"), str))
        for i, r in records:
            rid = r.get("id")
            if isinstance(rid, str) and counts[rid] > 1:
                others = [f"{key}[{j}]" for j, q in records if q.get("id") == rid and j != i]
                problems.append(
                    Problem(
                        f"{key}[{i}](id {path_id(rid)}).id",
                        f"duplicate ID {shown_id(rid)} (also at {', '.join(others)})",
                        (rid,),
                    )
                )

    cohort_ids = {r["id"] for _, r in cohorts if isinstance(r.get("id"), str)}
    for i, c in cohorts:
        where = f"cohorts[{i}](id {path_id(c.get('id'))})"
        size = c.get("set_size")
        if isinstance(size, dict):
            lo, hi = size.get("min_pairs", 3), size.get("max_pairs", 4)
            if _is_int(lo) and _is_int(hi) and lo > hi:
                problems.append(
                    Problem(
                        f"{where}.set_size",
                        f"impossible set size: min_pairs {lo} is above max_pairs {hi}",
                        (str(c.get("id")),),
                    )
                )
        cap = c.get("capacity_pairs")
        lo_pairs = size.get("min_pairs", 3) if isinstance(size, dict) else 3
        if _is_int(cap) and _is_int(lo_pairs) and 0 < cap < lo_pairs:
            problems.append(
                Problem(
                    f"{where}.capacity_pairs",
                    f"capacity {cap} is below the smallest set ({lo_pairs} pairs): the cohort "
                    "could never run; raise the capacity or lower set_size.min_pairs "
                    "(capacity 0 closes a cohort)",
                    (str(c.get("id")),),
                )
            )
        sessions = _ids(c.get("sessions"))
        dupes = sorted(d for d, n in Counter(sessions).items() if n > 1)
        if dupes:
            problems.append(
                Problem(f"{where}.sessions", f"session dates repeated: {', '.join(dupes)}")
            )

    roles = {r["id"]: _text(r.get("role")) for _, r in people if isinstance(r.get("id"), str)}
    status = {r["id"]: r.get("status") for _, r in people if isinstance(r.get("id"), str)}
    problems.extend(_lock_and_forbid_references(data, roles, status))
    partners = {r["id"]: r.get("partner") for _, r in people if isinstance(r.get("id"), str)}
    for i, p in people:
        pid = p.get("id")
        where = f"participants[{i}](id {path_id(pid)})"
        for key in ("interests", "project_topics"):
            for j, item in enumerate(_ids(p.get(key))):
                if not item.strip():
                    problems.append(Problem(f"{where}.{key}[{j}]", "empty entry", (str(pid),)))
        for key in ("avoid", "available_cohorts"):
            repeated = sorted(x for x, k in Counter(_ids(p.get(key))).items() if k > 1)
            if repeated:
                problems.append(
                    Problem(f"{where}.{key}", f"repeated: {', '.join(repeated)}", (str(pid),))
                )
        for key in ("available_cohorts", "preferred_cohorts"):
            for j, cid in enumerate(_ids(p.get(key))):
                if cid not in cohort_ids:
                    problems.append(
                        Problem(
                            f"{where}.{key}[{j}]",
                            f"unknown cohort {shown_id(cid)} (cohorts are: {_listing(cohort_ids)})",
                            _id_tuple(pid, cid),
                        )
                    )
        for j, other in enumerate(_ids(p.get("avoid"))):
            if other not in roles:
                problems.append(
                    Problem(
                        f"{where}.avoid[{j}]",
                        f"unknown participant {shown_id(other)}",
                        _id_tuple(pid, other),
                    )
                )
            elif other == pid:
                problems.append(
                    Problem(f"{where}.avoid[{j}]", "a participant cannot avoid themselves", (pid,))
                )
            elif other == p.get("partner"):
                problems.append(
                    Problem(
                        f"{where}.avoid[{j}]",
                        f"contradiction: {pid} declares a conflict with their own pre-formed "
                        f"partner {other}; remove one of the two",
                        (str(pid), other),
                    )
                )
        for j, other in enumerate(_ids(p.get("preferences"))):
            if other not in roles:
                problems.append(
                    Problem(
                        f"{where}.preferences[{j}]",
                        f"unknown participant {shown_id(other)}",
                        _id_tuple(pid, other),
                    )
                )
            elif (roles[other] == "patient_leader") == (p.get("role") == "patient_leader"):
                problems.append(
                    Problem(
                        f"{where}.preferences[{j}]",
                        f"{other} is on the same side as {pid}; preferences name possible "
                        "partners (patient leader <-> clinician or manager)",
                        (str(pid), other),
                    )
                )
        partner = p.get("partner")
        if not isinstance(partner, str):
            continue
        if partner == pid:
            problems.append(Problem(f"{where}.partner", "a participant cannot partner themselves"))
        elif partner not in roles:
            problems.append(
                Problem(
                    f"{where}.partner",
                    f"unknown participant {shown_id(partner)}",
                    _id_tuple(pid, partner),
                )
            )
        else:
            back = partners.get(partner)
            if back != pid:
                problems.append(
                    Problem(
                        f"{where}.partner",
                        f"not mutual: {pid} names {partner} as partner, but {partner} names "
                        f"{(back if id_like(back) else shown_id(back)) if back else 'nobody'}",
                        (str(pid), partner),
                    )
                )
            mine, theirs = _text(p.get("role")), roles.get(partner)
            if mine == "patient_leader" and theirs == "patient_leader":
                problems.append(
                    Problem(
                        f"{where}.partner",
                        f"{pid} and {partner} are both patient leaders; a pair is one patient "
                        "leader with one clinician or manager",
                        (str(pid), partner),
                    )
                )
            elif mine in PROFESSIONAL_ROLES and theirs in PROFESSIONAL_ROLES:
                problems.append(
                    Problem(
                        f"{where}.partner",
                        f"{pid} and {partner} are both professionals ({mine}, {theirs}); a pair "
                        "is one patient leader with one clinician or manager",
                        (str(pid), partner),
                    )
                )
    return problems


def _lock_and_forbid_references(
    data: dict[str, Any], roles: dict[str, Any], status: dict[str, Any]
) -> list[Problem]:
    """``locks`` and ``forbidden_pairs``: known IDs, the right sides, no one locked twice."""
    problems: list[Problem] = []
    partners = {
        r["id"]: r.get("partner")
        for _, r in _records(data, "participants")
        if isinstance(r.get("id"), str)
    }
    cohort_ids = {r["id"] for _, r in _records(data, "cohorts") if isinstance(r.get("id"), str)}
    locked_in: dict[str, int] = {}
    for i, lock in _records(data, "locks"):
        pl, pr = lock.get("patient_leader"), lock.get("partner")
        where = f"locks[{i}]({pl}+{pr})"
        if not (isinstance(pl, str) and isinstance(pr, str)):
            continue  # a shape problem, reported by the schema
        for key, pid in (("patient_leader", pl), ("partner", pr)):
            if pid not in roles:
                problems.append(
                    Problem(
                        f"{where}.{key}", f"unknown participant {shown_id(pid)}", _id_tuple(pid)
                    )
                )
            elif status.get(pid) == "withdrawn":
                problems.append(
                    Problem(
                        f"{where}.{key}",
                        f"lock {pl}+{pr} names {pid}, who has withdrawn; remove the lock",
                        (pl, pr),
                    )
                )
            elif pid in locked_in:
                problems.append(
                    Problem(
                        f"{where}.{key}",
                        f"{pid} is in two locks (locks[{locked_in[pid]}] and locks[{i}]); "
                        "a person can be in one pair only",
                        (pid,),
                    )
                )
        locked_in.setdefault(pl, i)
        locked_in.setdefault(pr, i)
        if roles.get(pl) not in (None, "patient_leader"):
            problems.append(
                Problem(f"{where}.patient_leader", f"{pl} is not a patient leader", (pl, pr))
            )
        if roles.get(pr) == "patient_leader":
            problems.append(
                Problem(
                    f"{where}.partner",
                    f"{pr} is a patient leader, not a clinician or manager",
                    (pl, pr),
                )
            )
        for pid, other in ((pl, pr), (pr, pl)):
            mine = partners.get(pid)
            if (
                isinstance(mine, str)
                and mine != other
                and status.get(mine, "active") != "withdrawn"
                and mine in roles
            ):
                problems.append(
                    Problem(
                        where,
                        f"lock {pl}+{pr} splits the pre-formed pair {pid}+{mine}; pre-formed "
                        "pairs are kept (withdraw one of them or remove the lock)",
                        (pl, pr, mine),
                    )
                )
        cohort = lock.get("cohort")
        if isinstance(cohort, str) and cohort not in cohort_ids:
            problems.append(
                Problem(
                    f"{where}.cohort",
                    f"unknown cohort {shown_id(cohort)}",
                    _id_tuple(pl, pr, cohort),
                )
            )
    seen: dict[frozenset[str], int] = {}
    for i, entry in enumerate(data.get("forbidden_pairs") or []):
        if not (
            isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, str) for x in entry)
        ):
            continue  # a shape problem
        a, b = entry
        where = f"forbidden_pairs[{i}]({a}+{b})"
        unknown = [x for x in (a, b) if x not in roles]
        for x in unknown:
            problems.append(Problem(where, f"unknown participant {shown_id(x)}", _id_tuple(x)))
        if unknown:
            continue
        if (roles[a] == "patient_leader") == (roles[b] == "patient_leader"):
            problems.append(
                Problem(
                    where,
                    f"{a} and {b} are on the same side; a forbidden pair is a patient leader "
                    "and a clinician or manager",
                    (a, b),
                )
            )
        both = frozenset((a, b))
        if both in seen:
            problems.append(Problem(where, f"repeats forbidden_pairs[{seen[both]}]", (a, b)))
        seen.setdefault(both, i)
        if partners.get(a) == b and status.get(a) != "withdrawn" and status.get(b) != "withdrawn":
            problems.append(
                Problem(
                    where,
                    f"contradiction: {a} and {b} applied as a pre-formed pair; remove one of "
                    "the two",
                    (a, b),
                )
            )
        for j, lock in _records(data, "locks"):
            if {lock.get("patient_leader"), lock.get("partner")} == {a, b}:
                problems.append(
                    Problem(
                        where,
                        f"contradiction: {a}+{b} is both locked (locks[{j}]) and forbidden",
                        (a, b),
                    )
                )
    return problems


def decision_problems(instance: Instance) -> list[Problem]:
    """Locks that break a hard rule (the shape and IDs already checked): a declared conflict,
    a pairing rule, no cohort both can attend, a cohort the pair cannot attend, more locked
    pairs in a cohort than its capacity."""
    problems: list[Problem] = []
    people = instance.participants_by_id()
    cohorts = instance.cohorts_by_id()
    in_cohort: dict[str, list[int]] = {}
    for i, lock in enumerate(instance.locks):
        a, b = people.get(lock.patient_leader), people.get(lock.partner)
        if a is None or b is None or (lock.cohort is not None and lock.cohort not in cohorts):
            continue  # unknown IDs: reported with the references
        where = f"locks[{i}]({a.id}+{b.id})"
        ids = (a.id, b.id)
        breaks = pairing_rule_breaks(instance, a, b)
        problems.extend(Problem(where, f"breaks a hard rule: {why}", ids) for why in breaks)
        common = [c.id for c in instance.cohorts if can_attend(a, c) and can_attend(b, c)]
        if common and lock.cohort is not None and lock.cohort not in common:
            problems.append(
                Problem(
                    f"{where}.cohort",
                    f"the pair cannot attend {lock.cohort} (both can attend: {', '.join(common)})",
                    (*ids, lock.cohort),
                )
            )
        if lock.cohort is not None:
            in_cohort.setdefault(lock.cohort, []).append(i)
    for cid, locks in sorted(in_cohort.items()):
        cap = cohorts[cid].capacity_pairs
        if len(locks) > cap:
            problems.append(
                Problem(
                    "locks",
                    f"{len(locks)} locked pairs in {cid} (locks {locks}), above its capacity "
                    f"of {cap} pairs",
                    (cid,),
                )
            )
    return problems


def unique_problems(problems: Iterable[Problem]) -> list[Problem]:
    """``problems`` without repeats (same path and message), in their order."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in problems:
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def instance_problems(instance: Instance) -> list[Problem]:
    """Every cross-reference problem of a typed instance (its shape is valid by construction):
    the rules its locks break, then the references, as a file's check lists them."""
    return unique_problems(
        [*decision_problems(instance), *reference_problems(instance.model_dump(mode="json"))]
    )
