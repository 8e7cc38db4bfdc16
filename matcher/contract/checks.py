"""Load and validate instance files, reporting every problem in one run.

Shape errors come from pydantic (:mod:`matcher.contract.instance`); cross-reference errors
(duplicate
IDs, partners, unknown cohort or conflict IDs, impossible set sizes) are checked here on the
raw JSON so that both kinds are reported together. Every problem carries its JSON path and the
IDs involved; messages hold IDs only, never names or other personal data.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

from pydantic import ValidationError

from matcher.contract.instance import CHECKED, PROFESSIONAL_ROLES, SCHEMA_VERSION, Instance
from matcher.contract.rules import can_attend, pairing_rule_breaks
from matcher.errors import InvalidInstance, Problem

#: The error raised for an unusable instance (an alias kept for older callers).
InstanceError = InvalidInstance

#: Largest instance file read (bytes). A 20,000-participant intake is about 10 MB.
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Deepest nesting of arrays and objects accepted; instance files need 5 levels.
MAX_DEPTH = 64
#: Longest string value accepted anywhere in the file (characters).
MAX_STRING = 10_000
#: Longest ID accepted (characters).
MAX_ID = 200
#: Most digits in an integer literal.
MAX_INT_DIGITS = 18

# Fields whose string values are IDs, and lists whose items are IDs.
_ID_FIELDS = frozenset({"id", "partner", "patient_leader", "cohort"})
_ID_LISTS = frozenset(
    {"avoid", "available_cohorts", "preferred_cohorts", "preferences", "forbidden_pairs"}
)
_SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Unrolled ("[^"\\]*" runs between escapes), so a 10 MB string is matched without a
# per-character backtracking record (the plain alternation took 1.3 GB for it).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[^\[\]{}]+")


class _Pairs(dict[str, Any]):
    """A JSON object that remembers the keys it held more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = _Pairs(pairs)
    if len(obj) != len(pairs):
        counts = Counter(k for k, _ in pairs)
        obj.duplicates = tuple(k for k, n in counts.items() if n > 1)
    return obj


class _BadLiteral(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _BadLiteral(f"{name} is not a JSON number; write a number or null")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadLiteral("a number too large for a float; write a smaller number")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadLiteral(f"an integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _decode(raw: bytes) -> tuple[str, str]:
    """The text of ``raw`` and its encoding: UTF-8 (with or without BOM), UTF-16 or UTF-32
    (recognised by their BOM or their zero bytes, as RFC 8259's predecessors describe)."""
    encoding = json.detect_encoding(raw)
    if encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    text = raw.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text, encoding.replace("-sig", "").upper()


def _nesting_depth(text: str) -> int:
    """Deepest nesting of ``[`` and ``{`` outside strings (up to MAX_DEPTH + 1), without
    recursion."""
    brackets = _BRACKETS.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for ch in brackets:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                break  # deep enough to refuse; the exact depth does not matter
        else:
            depth -= 1
    return deepest


def _value_problems(data: Any) -> list[Problem]:
    """Problems no schema rule can see: duplicate keys, oversized strings and IDs, lone
    surrogates. Walks the parsed document without recursion."""
    problems: list[Problem] = []
    stack: list[tuple[str, Any, str]] = [("$", data, "")]
    while stack and len(problems) < 1_000:
        path, node, key = stack.pop()
        if isinstance(node, dict):
            for dup in getattr(node, "duplicates", ()):
                name = repr(dup) if _SAFE_KEY.match(dup) else "a key"
                problems.append(
                    Problem(path, f"duplicate key {name}: JSON keys must be unique in an object")
                )
            for k, v in reversed(list(node.items())):
                shown = k if _SAFE_KEY.match(k) else "<key>"
                sub = f"{path}.{shown}" if path != "$" else shown
                stack.append((sub, v, k))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((f"{path}[{i}]", node[i], key))
        elif isinstance(node, str):
            limit = MAX_ID if key in _ID_FIELDS or key in _ID_LISTS else MAX_STRING
            if len(node) > limit:
                what = "an ID" if limit == MAX_ID else "a text"
                problems.append(
                    Problem(path, f"{what} of {len(node):,} characters; at most {limit:,}")
                )
            elif _SURROGATE.search(node):
                problems.append(Problem(path, "invalid Unicode (a lone surrogate \\uD8xx escape)"))
    return sorted(problems, key=lambda p: p.path) if len(problems) > 1 else problems


_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:+\-]{1,32}$")


def _echo(value: Any) -> str:
    """``value`` for an error message when it is a short ID-like string or a number; otherwise
    only its type (free text may be personal data)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float) or (isinstance(value, str) and _SAFE_VALUE.match(value)):
        return repr(value)
    return f"(a {type(value).__name__} value, not shown)"


def _is_int(value: Any) -> TypeGuard[int]:
    """An integer, and not a boolean (JSON ``true`` is not a number)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> str | None:
    """``value`` if it is a string (a role given as a list or object is a shape error, reported
    by the schema; here it must not break set lookups)."""
    return value if isinstance(value, str) else None


def _listing(ids: set[str], limit: int = 10) -> str:
    """At most ``limit`` IDs, sorted, then how many more."""
    shown = sorted(ids)[:limit]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(shown) + more


def read_json(path: str | Path) -> Any:
    """Read a JSON document strictly: at most MAX_FILE_BYTES, UTF-8/16/32 with or without a
    BOM, no duplicate keys, no NaN or Infinity, at most MAX_DEPTH levels, no string longer than
    MAX_STRING (MAX_ID for IDs). Raises :class:`InvalidInstance` naming the problem."""
    path = Path(path)
    source = str(path)
    try:
        # A pipe or device is read too (`<(...)`), but never more than the limit.
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInstance(source, [Problem("$", "file not found")]) from None
    except IsADirectoryError:
        raise InvalidInstance(source, [Problem("$", "a directory, not a file")]) from None
    except OSError as exc:
        raise InvalidInstance(
            source, [Problem("$", f"cannot read file ({exc.strerror or type(exc).__name__})")]
        ) from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInstance(
            source,
            [Problem("$", f"file larger than {MAX_FILE_BYTES // 2**20} MB; is it an instance?")],
        )
    try:
        text, encoding = _decode(raw)
    except UnicodeDecodeError as exc:
        raise InvalidInstance(
            source,
            [
                Problem(
                    "$",
                    f"not valid {exc.encoding.upper()} text (byte {exc.start}); save the file as "
                    "UTF-8 (a spreadsheet export in Windows-1252 can be read by `matcher import`)",
                )
            ],
        ) from None
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise InvalidInstance(
            source, [Problem("$", f"nested more than {MAX_DEPTH} levels deep (arrays/objects)")]
        )
    try:
        data = json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as exc:
        hint = f" ({encoding})" if encoding != "UTF-8" else ""
        where = f"line {exc.lineno}, column {exc.colno}"
        # "Unterminated string starting at" already ends in "at": never "at at line"
        said = f"{exc.msg} {where}" if exc.msg.endswith(" at") else f"{exc.msg} at {where}"
        raise InvalidInstance(source, [Problem("$", f"not valid JSON{hint}: {said}")]) from None
    except _BadLiteral as exc:
        raise InvalidInstance(source, [Problem("$", f"not valid JSON: {exc}")]) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInstance(
            source, [Problem("$", f"not valid JSON ({type(exc).__name__})")]
        ) from None
    problems = _value_problems(data)
    if problems:
        # Nothing else is checked: other messages could echo the oversized values.
        raise InvalidInstance(source, problems)
    return data


def load_instance(path: str | Path) -> Instance:
    """Read and validate an instance file (strictly, see :func:`read_json`). Raises
    :class:`matcher.errors.InvalidInstance` listing every problem."""
    data = read_json(path)
    return parse_instance(data, source=str(path))


def parse_instance(data: Any, *, source: str = "<instance>") -> Instance:
    """Validate already-parsed JSON data. Raises :class:`InstanceError` listing every problem."""
    problems = check_instance_data(data)
    if problems:
        raise InstanceError(source, problems)
    # checked above: the model's own cross-reference validator need not run again
    return Instance.model_validate(data, context=CHECKED)


def check_instance_data(data: Any) -> list[Problem]:
    """Every problem in ``data`` (shape and cross-references), in file order."""
    if not isinstance(data, dict):
        return [Problem("$", "the top level must be a JSON object")]
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        # Nothing else can be trusted under another schema version.
        return [
            Problem(
                "schema_version",
                f"unsupported schema version {_echo(version)}; this matcher reads "
                f"{SCHEMA_VERSION!r}",
            )
        ]
    problems = _shape_problems(data)
    if not problems:  # rules that need the typed records (attendance, capacity)
        problems.extend(decision_problems(Instance.model_validate(data, context=CHECKED)))
    problems.extend(_reference_problems(data))
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in problems:
        key = (p.path, p.message)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


#: Error types whose offending value is echoed: dates and numbers only, and only when the value
#: looks like one (free text in any field may be personal, e.g. a name typed into `role`).
_ECHO_INPUT = ("date", "greater", "less", "int", "float")
_LOOKS_SAFE = re.compile(r"^[0-9TZ:+.\-]{1,32}$")


def _json_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic location as a JSON path, naming the record's ID where known."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                out += f"(id {node['id']})"
        else:
            # An unknown key may be any text (a name typed as a key): shown only if it looks
            # like a field name.
            key = part if _SAFE_KEY.match(part) else "<key>"
            out += f".{key}" if out else key
            node = node.get(part) if isinstance(node, dict) else None
    return out or "$"


def _shape_problems(data: dict[str, Any]) -> list[Problem]:
    try:
        Instance.model_validate(data, context=CHECKED)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling; see `matcher schema`)"
            elif err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"].startswith(_ECHO_INPUT) and _LOOKS_SAFE.match(str(err.get("input"))):
                msg = f"{msg} (got {err['input']!r})"
            problems.append(Problem(_json_path(loc, data), msg))
        return problems
    return []


def _records(data: dict[str, Any], key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    items = data.get(key)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield i, item


def _ids(items: Any) -> list[str]:
    return [x for x in items if isinstance(x, str)] if isinstance(items, list) else []


def _reference_problems(data: dict[str, Any]) -> list[Problem]:
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
                        f"{key}[{i}](id {rid}).id",
                        f"duplicate ID {rid!r} (also at {', '.join(others)})",
                        (rid,),
                    )
                )

    cohort_ids = {r["id"] for _, r in cohorts if isinstance(r.get("id"), str)}
    for i, c in cohorts:
        where = f"cohorts[{i}](id {c.get('id')})"
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
        where = f"participants[{i}](id {pid})"
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
                            f"unknown cohort {cid!r} (cohorts are: {_listing(cohort_ids)})",
                            (str(pid), cid),
                        )
                    )
        for j, other in enumerate(_ids(p.get("avoid"))):
            if other not in roles:
                problems.append(
                    Problem(
                        f"{where}.avoid[{j}]",
                        f"unknown participant {other!r}",
                        (str(pid), other),
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
                        f"unknown participant {other!r}",
                        (str(pid), other),
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
                    f"unknown participant {partner!r}",
                    (str(pid), partner),
                )
            )
        else:
            back = partners.get(partner)
            if back != pid:
                problems.append(
                    Problem(
                        f"{where}.partner",
                        f"not mutual: {pid} names {partner} as partner, but {partner} names "
                        f"{back if isinstance(back, str) else 'nobody'}",
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
                problems.append(Problem(f"{where}.{key}", f"unknown participant {pid!r}", (pid,)))
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
                Problem(f"{where}.cohort", f"unknown cohort {cohort!r}", (pl, pr, cohort))
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
            problems.append(Problem(where, f"unknown participant {x!r}", (x,)))
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
