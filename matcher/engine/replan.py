"""Re-planning against a previous plan with minimal disruption (DESIGN.md §4).

Priorities, in order: hard rules and locks; the most pairs placed; the fewest changes to the
previous plan — pairs dissolved, then pairs moved to another cohort (both levels of the
placement model, :mod:`matcher.engine.placement.model`), then pairs moved to another
action-learning set
(:func:`keep_sets`, per cohort) —; then quality.

A pair that survives keeps its ``id``; new pairs and new sets get IDs never used in the
previous plan. A previous plan that names people or cohorts no longer in the instance is
accepted: those become changes, not errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.plan_file import load_plan, parse_plan, parse_plan_bytes
from matcher.contract.rules import set_counts
from matcher.contract.solution import Solution
from matcher.engine.progress import Stop

#: Cohorts with more pairs than this keep their sets greedily (no exact set-moves model).
KEEP_SETS_MAX_PAIRS = 80
#: Deterministic seconds for the set-moves model of one cohort.
KEEP_SETS_BUDGET = 5.0

PreviousPlan = Solution | dict[str, Any] | str | Path


def load_previous(previous: PreviousPlan) -> Solution:
    """The previous plan as a :class:`Solution` (from the object, its JSON text or dict, or a
    file path), read and checked as strictly as an instance file
    (:mod:`matcher.contract.plan_file`). A file that is not a sound plan is an
    :class:`InvalidInstance` error naming what is wrong."""
    if isinstance(previous, Solution):
        return previous
    if isinstance(previous, Path) or (
        isinstance(previous, str) and not previous.lstrip().startswith("{")
    ):
        return load_plan(previous)
    if isinstance(previous, str):
        return parse_plan_bytes(previous.encode("utf-8", "surrogatepass"), "previous plan")
    return parse_plan(previous, "previous plan")


@dataclass(frozen=True)
class PreviousPair:
    id: str
    cohort: str | None
    learning_set: str | None


def previous_pairs(prev: Solution) -> dict[tuple[str, str], PreviousPair]:
    """(patient leader, partner) -> the pair's ID, cohort and set in the previous plan."""
    return {
        (p.patient_leader, p.partner): PreviousPair(p.id, p.cohort, p.learning_set)
        for p in prev.pairs
    }


#: Most digits of an ID's trailing number taken into account (longer numbers count as 0: new
#: IDs, numbered from 1 upwards, can never reach them).
_MAX_NUMBER_DIGITS = 9


def _number(ident: str) -> int:
    """The number an ID ends with (``pair-12`` -> 12), in linear time (a regular expression
    searching for trailing digits is quadratic on a long run of digits)."""
    digits = len(ident) - len(ident.rstrip("0123456789"))
    if digits == 0 or digits > _MAX_NUMBER_DIGITS:
        return 0
    return int(ident[-digits:])


def pair_ids(
    keys: list[tuple[str, str]], prev: Solution | None, preformed: set[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """IDs for the formed pairs ``keys``: a pair of the previous plan keeps its ID; new pairs
    are numbered after every ID the previous plan used (pre-formed pairs first, then in
    ``keys`` order), so an ID never names two different pairs across re-plans."""
    before = previous_pairs(prev) if prev is not None else {}
    out = {k: before[k].id for k in keys if k in before}
    position = {k: n for n, k in enumerate(keys)}
    new = sorted((k for k in keys if k not in out), key=lambda k: (k not in preformed, position[k]))
    first = 1 + max((_number(p.id) for p in prev.pairs), default=0) if prev is not None else 1
    width = max(2, len(str(first + len(new))))
    out.update({k: f"pair-{n:0{width}d}" for n, k in enumerate(new, start=first)})
    return out


def new_set_ids(cohort: Cohort, count: int, used: set[str]) -> list[str]:
    """``count`` set IDs for ``cohort`` never used before (``used``: IDs of the previous plan)."""
    start = 1 + max((_number(s) for s in used if s.startswith(f"{cohort.id}-s")), default=0)
    return [f"{cohort.id}-s{n}" for n in range(start, start + count)]


@dataclass(frozen=True)
class KeptSets:
    """Sets of one cohort: each a (set ID or None for a new set, pair indices)."""

    sets: list[tuple[str | None, list[int]]]
    proven: bool


def keep_sets(
    instance: Instance,
    cohort: Cohort,
    duos: list[tuple[Participant, Participant]],
    before: list[str | None],
    distance: np.ndarray,
    links: list[tuple[int, int]],
    *,
    seed: int,
    time_limit: float | None,
    stop: Stop | None = None,
) -> KeptSets | None:
    """Split the pairs ``duos`` of ``cohort`` into sets moving the fewest pairs out of their
    previous set (``before[i]``: pair i's previous set in this cohort, or None), then making the
    sets of the moved and new pairs as diverse as possible. ``links`` are pairs of pair indices
    that may not share a set (declared conflicts; one organisation when that rule is hard).
    Exact CP-SAT (``proven`` when optimal); None when no valid split exists or is found."""
    from ortools.sat.python import cp_model  # imported on use: it loads pandas (~1 s)

    from matcher.engine.cpsat import run_cpsat  # loads OR-Tools, like cp_model above

    n = len(duos)
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    if not set_counts(lo, hi, n):
        return None
    old = sorted({b for b in before if b is not None})
    groups = len(old) + n // lo
    model = cp_model.CpModel()
    x = {(i, g): model.new_bool_var(f"x{i}_{g}") for i in range(n) for g in range(groups)}
    used = [model.new_bool_var(f"u{g}") for g in range(groups)]
    for i in range(n):
        model.add_exactly_one(x[i, g] for g in range(groups))
    for g in range(groups):
        size = sum(x[i, g] for i in range(n))
        # set sizes: min_pairs..max_pairs pairs in every set that is used
        model.add(size >= lo * used[g])
        model.add(size <= hi * used[g])
        # one organisation per set and declared conflicts: never together
        for i, j in links:
            model.add(x[i, g] + x[j, g] <= 1)
    for g in range(len(old) + 1, groups):  # new sets are interchangeable: use them in order
        model.add(used[g] <= used[g - 1])
    home = {i: old.index(b) for i, b in enumerate(before) if b is not None}
    stays = [x[i, g] for i, g in home.items()]
    for i, g in home.items():
        model.add_hint(x[i, g], 1)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_deterministic_time = KEEP_SETS_BUDGET
    solver.parameters.catch_sigint_signal = False
    if time_limit is not None:
        solver.parameters.max_time_in_seconds = max(0.01, time_limit)
    proven = True
    if stays:
        model.maximize(sum(stays))
        code = run_cpsat(model, solver, stop, f"sets of {cohort.id}")
        if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        proven = code == cp_model.OPTIMAL
        model.add(sum(stays) >= round(solver.objective_value))
    # then diversity around the pairs that are new or moved: pairs (i, j) with i not kept home
    movers = [i for i in range(n) if i not in home]
    terms = []
    if movers and len(movers) * n * groups <= 20_000:
        for i in movers:
            for j in range(n):
                if j == i or (j in movers and j < i):
                    continue
                for g in range(groups):
                    w = model.new_bool_var(f"w{i}_{j}_{g}")
                    model.add_implication(w, x[i, g])
                    model.add_implication(w, x[j, g])
                    terms.append(round(1000 * float(distance[i, j])) * w)
    if terms:
        model.maximize(sum(terms))
    elif not stays:
        model.maximize(0)
    code = run_cpsat(model, solver, stop, f"sets of {cohort.id}")
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    members: dict[int, list[int]] = {}
    for (i, g), var in x.items():
        if solver.value(var):
            members.setdefault(g, []).append(i)
    sets = [
        (old[g] if g < len(old) else None, sorted(ks)) for g, ks in sorted(members.items()) if ks
    ]
    return KeptSets(sets, proven)
