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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.plan_file import load_plan, parse_plan, parse_plan_bytes
from matcher.contract.rules import pairing_rule_breaks, set_counts
from matcher.contract.solution import Changes, Pair, Solution
from matcher.engine.progress import Stop
from matcher.engine.scoring import pair_scores, people_by_id

#: Cohorts with more pairs than this keep their sets greedily (no exact set-moves model).
KEEP_SETS_MAX_PAIRS = 80
#: Deterministic seconds for the set-moves model of one cohort.
KEEP_SETS_BUDGET = 5.0

PreviousPlan = Solution | dict[str, Any] | str | Path


def load_previous(previous: PreviousPlan) -> Solution:
    """The previous plan as a :class:`Solution` (from the object, its JSON text or dict, or a
    file path), read and checked as strictly as an instance file
    (:mod:`matcher.contract.plan_file`: a JSON plan, or a plan workbook made by ``matcher solve
    -o plan.xlsx``, which carries its JSON plan). A file that is not a sound plan is an
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
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (~1 s)

    from matcher.engine.cpsat import optimise_level  # lazy: loads CP-SAT

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
    label = f"sets of {cohort.id}"
    if stays:  # level 1: the most pairs kept in their previous set, then held
        kept = optimise_level(model, solver, sum(stays), stop, label)
        if not kept.found:
            return None
        proven = kept.optimal
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
    # level 2: diversity (without terms, level 1's objective again: any solution holding it)
    last = sum(terms) if terms else sum(stays) if stays else 0
    if not optimise_level(model, solver, last, stop, label, hold=False).found:
        return None
    members: dict[int, list[int]] = {}
    for (i, g), var in x.items():
        if solver.value(var):
            members.setdefault(g, []).append(i)
    sets = [
        (old[g] if g < len(old) else None, sorted(ks)) for g, ks in sorted(members.items()) if ks
    ]
    return KeptSets(sets, proven)


#: A kept pair is named as the price of a new pair when its partner would score this much more.
TRADE_MARGIN = 0.05


def quality_trades(
    instance: Instance, solution: Solution, prev: Solution, changes: Changes
) -> Changes:
    """Say, in the change list, where the re-plan gave up pair quality to keep the previous
    plan's pairs: for each new pair (and each person newly unmatched), the best-scoring
    compatible person of the other side who stays in a pair kept from the previous plan, when
    pairing with them would score at least :data:`TRADE_MARGIN` more, with both figures.
    ``instance`` is the effective intake (withdrawals and locks applied)."""

    people = people_by_id(instance)
    before = previous_pairs(prev)
    kept = [
        p
        for p in solution.pairs
        if (p.patient_leader, p.partner) in before and not p.preformed and not p.locked
    ]
    if not kept:
        return changes
    partner_of: dict[str, str] = {}
    own: dict[str, float] = {}
    for p in solution.pairs:
        own[p.patient_leader] = own[p.partner] = p.score
        partner_of[p.patient_leader], partner_of[p.partner] = p.partner, p.patient_leader
    items = []
    traded = 0
    for c in changes.items:
        movers: list[str] = []
        if c.kind == "formed":
            pair = next((p for p in solution.pairs if p.id == c.pair), None)
            if pair is not None and not pair.preformed and not pair.locked:
                movers = [pair.patient_leader, pair.partner]
        elif c.kind == "newly_unmatched":
            movers = list(c.participants)
        notes = [n for pid in movers if (n := _trade(instance, people, kept, own, partner_of, pid))]
        if notes:
            traded += 1
            c = c.model_copy(update={"reason": c.reason + "; " + "; ".join(notes)})
        items.append(c)
    if not traded:
        return changes
    return changes.model_copy(update={"items": items})


def _trade(
    instance: Instance,
    people: Mapping[str, Participant],
    kept: list[Pair],
    own: dict[str, float],
    partner_of: dict[str, str],
    pid: str,
) -> str | None:
    """The best swap ``pid`` was denied to keep a previous pair, in words with the figures, when
    swapping would raise the total score of the pairs involved; None otherwise."""
    me = people.get(pid)
    if me is None:
        return None
    mine = own.get(pid)
    side = [k for k in kept if pid not in (k.patient_leader, k.partner)]
    if not side:
        return None
    others = [k.partner if me.is_patient_leader else k.patient_leader for k in side]
    keys = [(pid, o) if me.is_patient_leader else (o, pid) for o in others]
    scores = pair_scores(instance, keys)[0].tolist()
    best: tuple[float, str, Pair, float, float] | None = None
    for k, o, key, sc in zip(side, others, keys, scores, strict=True):
        if sc < max((mine or 0.0) + TRADE_MARGIN, instance.rules.min_score):
            continue
        if pairing_rule_breaks(instance, people[key[0]], people[key[1]]):
            continue
        held = k.patient_leader if k.partner == o else k.partner
        before = k.score + (mine or 0.0)
        after = sc
        mate = partner_of.get(pid)
        if mate is not None:  # the swap: held takes pid's partner, if they may be paired
            pl, pr = (held, mate) if people[held].is_patient_leader else (mate, held)
            a, b = people[pl], people[pr]
            if pairing_rule_breaks(instance, a, b):
                continue
            swapped = float(pair_scores(instance, [(pl, pr)])[0][0])
            if swapped < instance.rules.min_score:
                continue
            after += swapped
        if after > before + 1e-9 and (best is None or after - before > best[0]):
            best = (after - before, o, k, sc, before)
    if best is None:
        return None
    gain, o, k, sc, total = best
    held = k.patient_leader if k.partner == o else k.partner
    now = f"score {mine:.2f} as paired now" if mine is not None else "unmatched now"
    swap = f"{held} taking {partner_of[pid]}" if pid in partner_of else f"{held} left unmatched"
    return (
        f"pair quality given up to avoid a move: {pid} would score {sc:.2f} with {o} ({now}), "
        f"but {o} stays with {held} ({k.id}, score {k.score:.2f}); swapping ({swap}) would "
        f"raise these pairs' total score from {total:.2f} to {total + gain:.2f} at the cost "
        "of ending a pair of the previous plan"
    )
