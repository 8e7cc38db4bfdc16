"""Reading a plan file (`matcher solve --format json`) as strictly as an instance file.

A plan comes back to matcher as ``--previous`` (re-planning), in ``diff``, ``explain`` and
``report``. It may have been edited by hand, or by someone hostile, so it is read with the
instance reader's limits (:func:`matcher.contract.checks.read_json`: 64 MB, 64 levels, no
duplicate keys, no NaN or Infinity, texts of at most 10,000 characters and IDs of at most 200),
then checked for the promises every plan matcher writes keeps: unique pair, cohort and set IDs,
each person in at most one pair or in the unmatched list, every reference (a cohort's pairs, a
set's pairs and cohort, the wait-list) to something in the plan and consistent with the pair's
own ``cohort`` and ``learning_set``, scores between 0 and 1. Each broken promise is an
:class:`~matcher.errors.InvalidInstance` problem (exit 3) naming the path and the IDs; no check
costs more than linear time in the plan's size.
"""

from __future__ import annotations

import base64
import io
import math
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from matcher.contract.solution import Solution
from matcher.errors import InvalidInstance, Problem
from matcher.jsonio import parse_json, read_bytes
from matcher.text import shown_id

#: Keys of a plan whose string values are IDs (at most MAX_ID characters).
PLAN_ID_FIELDS = frozenset(
    {"id", "patient_leader", "partner", "cohort", "learning_set", "participant", "pair",
     "before", "after"}
)  # fmt: skip
#: Keys of a plan whose string items are IDs.
PLAN_ID_LISTS = frozenset({"pairs", "participants"})
#: Problems listed for one plan before the rest are counted.
MAX_PLAN_PROBLEMS = 200

#: How every .xlsx (zip) file starts.
ZIP_MAGIC = b"PK\x03\x04"

_NOT_A_PLAN = "not a plan written by `matcher solve --format json`"


def load_plan(path: str | Path) -> Solution:
    """Read and check a plan file (see the module's description). Raises
    :class:`InvalidInstance` naming every problem."""
    raw = read_bytes(path, what="a plan")
    if raw.startswith(ZIP_MAGIC):  # a plan workbook: it carries the JSON plan
        try:
            raw = embedded_plan(raw).encode("utf-8", "surrogatepass")
        except NoEmbeddedPlan as exc:
            raise InvalidInstance(str(path), [Problem("$", str(exc))]) from None
    return parse_plan_bytes(raw, str(path))


def parse_plan_bytes(raw: bytes, source: str) -> Solution:
    """:func:`load_plan` on bytes already read."""
    data = parse_json(raw, source, id_fields=PLAN_ID_FIELDS, id_lists=PLAN_ID_LISTS)
    return parse_plan(data, source)


def parse_plan(data: Any, source: str = "plan") -> Solution:
    """A :class:`Solution` from parsed JSON data, checked (see the module's description)."""
    if not isinstance(data, dict):
        raise InvalidInstance(source, [Problem("$", f"{_NOT_A_PLAN} (not a JSON object)")])
    try:
        solution = Solution.model_validate(data)
    except ValidationError as exc:
        problems = [Problem("$", _NOT_A_PLAN)]
        for e in exc.errors(include_url=False)[:MAX_PLAN_PROBLEMS]:
            path = ".".join(str(x) for x in e["loc"]) or "$"
            # pydantic's message, never the input value (it may be personal data)
            problems.append(Problem(path, e["msg"]))
        raise InvalidInstance(source, problems) from None
    problems = plan_problems(solution)
    if problems:
        raise InvalidInstance(source, problems)
    return solution


def _repeated(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def _ids(values: list[str], limit: int = 10) -> str:
    shown = [shown_id(v) for v in values[:limit]]
    more = f" and {len(values) - limit:,} more" if len(values) > limit else ""
    return ", ".join(shown) + more


def plan_problems(s: Solution) -> list[Problem]:
    """Broken promises of a plan, on its own (no instance needed), in linear time."""
    problems: list[Problem] = []
    pair_ids = [p.id for p in s.pairs]
    if dup := _repeated(pair_ids):
        problems.append(Problem("pairs", f"pair IDs used twice: {_ids(dup)}", tuple(dup[:10])))
    people = [x for p in s.pairs for x in (p.patient_leader, p.partner)]
    people += [u.participant for u in s.unmatched]
    if dup := _repeated(people):
        problems.append(
            Problem(
                "pairs",
                f"people in more than one pair (or paired and unmatched): {_ids(dup)}",
                tuple(dup[:10]),
            )
        )
    for i, p in enumerate(s.pairs):
        if p.patient_leader == p.partner:
            problems.append(Problem(f"pairs[{i}]", "a pair of one person", (p.id,)))
        values = [("score", p.score), *((f"breakdown.{k}", v) for k, v in p.breakdown.items())]
        for name, value in values:
            if not (math.isfinite(value) and -1e-9 <= value <= 1 + 1e-9):
                problems.append(
                    Problem(f"pairs[{i}].{name}", "a score must be between 0 and 1", (p.id,))
                )
        if len(problems) >= MAX_PLAN_PROBLEMS:
            return problems
    by_id = {p.id: p for p in s.pairs}
    cohort_ids = [c.id for c in s.cohorts or []]
    if dup := _repeated(cohort_ids):
        problems.append(Problem("cohorts", f"cohort IDs used twice: {_ids(dup)}"))
    placed: dict[str, str] = {}
    for i, c in enumerate(s.cohorts or []):
        for pid in c.pairs:
            pair = by_id.get(pid)
            if pair is None:
                problems.append(Problem(f"cohorts[{i}].pairs", f"unknown pair {shown_id(pid)}"))
            elif pid in placed:
                problems.append(
                    Problem(f"cohorts[{i}].pairs", f"pair {shown_id(pid)} is in two cohorts")
                )
            else:
                placed[pid] = c.id
            if len(problems) >= MAX_PLAN_PROBLEMS:
                return problems
    set_ids = [ls.id for ls in s.learning_sets or []]
    if dup := _repeated(set_ids):
        problems.append(Problem("learning_sets", f"set IDs used twice: {_ids(dup)}"))
    in_set: dict[str, str] = {}
    known_cohorts = set(cohort_ids)
    for i, ls in enumerate(s.learning_sets or []):
        if ls.cohort not in known_cohorts:
            problems.append(
                Problem(f"learning_sets[{i}].cohort", f"unknown cohort {shown_id(ls.cohort)}")
            )
        for pid in ls.pairs:
            if pid not in by_id:
                problems.append(
                    Problem(f"learning_sets[{i}].pairs", f"unknown pair {shown_id(pid)}")
                )
            elif pid in in_set:
                problems.append(
                    Problem(f"learning_sets[{i}].pairs", f"pair {shown_id(pid)} is in two sets")
                )
            else:
                in_set[pid] = ls.id
                if placed.get(pid) != ls.cohort:
                    problems.append(
                        Problem(
                            f"learning_sets[{i}].pairs",
                            f"pair {shown_id(pid)} is in a set of cohort {shown_id(ls.cohort)} "
                            "but not placed in that cohort",
                        )
                    )
            if len(problems) >= MAX_PLAN_PROBLEMS:
                return problems
    for i, p in enumerate(s.pairs):
        if p.cohort is not None and placed.get(p.id) != p.cohort:
            problems.append(
                Problem(
                    f"pairs[{i}].cohort",
                    f"pair {shown_id(p.id)} names cohort {shown_id(p.cohort)}, whose list of "
                    "pairs does not hold it",
                )
            )
        elif p.cohort is None and p.id in placed:
            problems.append(
                Problem(f"pairs[{i}].cohort", f"pair {shown_id(p.id)} is listed in a cohort")
            )
        if p.learning_set is not None and in_set.get(p.id) != p.learning_set:
            problems.append(
                Problem(
                    f"pairs[{i}].learning_set",
                    f"pair {shown_id(p.id)} names set {shown_id(p.learning_set)}, which does "
                    "not hold it",
                )
            )
        if len(problems) >= MAX_PLAN_PROBLEMS:
            return problems
    waiting = [w.pair for w in s.waitlist]
    if dup := _repeated(waiting):
        problems.append(Problem("waitlist", f"pairs wait-listed twice: {_ids(dup)}"))
    for i, w in enumerate(s.waitlist):
        if w.pair not in by_id:
            problems.append(Problem(f"waitlist[{i}].pair", f"unknown pair {shown_id(w.pair)}"))
        elif w.pair in placed:
            problems.append(
                Problem(f"waitlist[{i}].pair", f"pair {shown_id(w.pair)} is also placed")
            )
        if len(problems) >= MAX_PLAN_PROBLEMS:
            break
    return problems


def instance_problems(s: Solution, participants: set[str], cohorts: set[str]) -> list[Problem]:
    """People and cohorts of the plan that the instance does not hold (for a report or an
    explanation, which show the plan through the instance)."""
    people = sorted(
        {x for p in s.pairs for x in (p.patient_leader, p.partner)}
        | {u.participant for u in s.unmatched}
    )
    problems = []
    if missing := [x for x in people if x not in participants]:
        problems.append(
            Problem("pairs", f"people not in the instance: {_ids(missing)}", tuple(missing[:10]))
        )
    used = sorted({c.id for c in s.cohorts or []} | {p.cohort for p in s.pairs if p.cohort})
    if missing := [c for c in used if c not in cohorts]:
        problems.append(Problem("cohorts", f"cohorts not in the instance: {_ids(missing)}"))
    return problems


#: The very hidden sheet holding the JSON plan (base64 of its zlib-compressed UTF-8 text).
PLAN_SHEET = "matcher-plan"
#: First cell of :data:`PLAN_SHEET`: what it holds and in which encoding.
PLAN_MARK = "matcher plan v1: zlib+base64 JSON"
#: Characters of base64 text per cell (Excel holds at most 32,767 in one cell).
PLAN_CHUNK = 32_000
#: Largest JSON plan read back from a workbook (a plan of 20,000 people is about 20 MB).
MAX_PLAN_BYTES = 256 * 1024 * 1024


class NoEmbeddedPlan(ValueError):
    """The workbook holds no matcher plan (an intake workbook, or a plan sheet damaged)."""


def embedded_plan(data: bytes) -> str:
    """The JSON text of the plan a workbook made by :func:`plan_workbook` carries. Raises
    :class:`NoEmbeddedPlan` (message for people) when it has none or it cannot be read."""
    from openpyxl import load_workbook  # lazy: openpyxl (~0.4 s), only for an .xlsx plan

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise NoEmbeddedPlan("not a readable .xlsx workbook") from exc
    try:
        if PLAN_SHEET not in book.sheetnames:
            raise NoEmbeddedPlan(
                "this workbook holds no matcher plan (a plan workbook is written by "
                "`matcher solve INTAKE -o plan.xlsx`)"
            )
        cells = [str(row[0]) for row in book[PLAN_SHEET].values if row and row[0] is not None]
    finally:
        book.close()
    if not cells or cells[0] != PLAN_MARK:
        raise NoEmbeddedPlan("the workbook's plan sheet is damaged (unknown format)")
    try:
        packed = base64.b64decode("".join(cells[1:]), validate=True)
        unpacker = zlib.decompressobj()
        raw = unpacker.decompress(packed, MAX_PLAN_BYTES)
        if unpacker.unconsumed_tail:
            raise NoEmbeddedPlan("the workbook's plan is larger than matcher reads")
        return raw.decode("utf-8")
    except (ValueError, zlib.error, UnicodeDecodeError) as exc:
        raise NoEmbeddedPlan("the workbook's plan sheet is damaged (cannot be decoded)") from exc
