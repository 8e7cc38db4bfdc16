"""Cohort placement, solved together with the pairing of lone applicants.

Priorities, in order (lexicographic):

(a) the most pairs placed in a cohort (people on the programme);
(a') when re-planning against a previous plan: the fewest pairs of that plan dissolved
     (``kept``), then the fewest moved to another cohort (``stayed``);
(b) the most pairs formed (the rest are wait-listed with the reason);
(c) pairing quality: the total compatibility score of the lone pairs;
(d) cohort preferences met, then balance (the fullest cohort as empty as possible).

Locked pairs with a cohort are placed there (a hard constraint); when that cannot be done,
:func:`diagnose_locks` finds a small set of locks that cannot hold together (CP-SAT
assumptions).

A pair may go only to a cohort both members can attend in full and in a mode both can attend,
at most ``capacity_pairs`` per cohort, and each cohort's pair count must split into
``s`` sets within ``set_size`` with no set holding two pairs that share an organisation (hard
rule) or two people with a declared conflict: so an organisation may have at most ``s`` pairs
in a cohort, and two conflicting pairs need ``s >= 2``.

Guarantee. First the *decomposition*: an optimal matching of the lone applicants (most pairs,
then highest total) and then an exact CP-SAT placement of all pairs. If that places every pair,
no plan can place or form more pairs nor score higher (the matching is optimal on (b)-(c) and
(a) is at its ceiling), so the plan is optimal on (a)-(c) and on (d) for that pairing. Otherwise
the *joint* CP-SAT model chooses pairs and cohorts together over every allowed lone pair.

The levels are optimised one after another (each held at its optimum while the next is
optimised, the previous plan as the hint). ``status`` is about (a)-(c): ``optimal`` when each
was proven. Level (d) is best effort within ``BALANCE_BUDGET`` seconds; whether it was proven
is reported separately (``balance_proven``).

Proofs without a search, where they exist: a start plan (greedy, or the caller's hint, e.g.
the flow repair's) that meets every rule and reaches the ceiling proves (a); with nobody
stating cohort preferences, a plan whose fullest cohort equals a max-flow lower bound (each
cohort cut to a fill percentage, binary search) is optimal on (d). When the caller gives a
:class:`QualityLevel`, level (c) starts from the plan with each cohort's lone pairs re-matched
at their best, stops within its gap of the best bound known (the unconstrained optimal
matching's total, or CP-SAT's), and keeps that start when its short budget finds nothing.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from ortools.graph.python import linear_sum_assignment, max_flow

from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.rules import (
    conflict_among,
    most_pairs_held,
    one_organisation_per_set,
    pair_organisations,
    set_counts,
)
from matcher.engine.cpsat import hold_level, optimise_level, run_cpsat
from matcher.engine.progress import Stop
from matcher.engine.scoring import people_by_id
from matcher.errors import MatcherError

if TYPE_CHECKING:
    from ortools.sat.python import cp_model

log = logging.getLogger("matcher")

SCORE_SCALE = 1000  # scores are integers in CP-SAT: 3 decimals are kept
#: Seconds (deterministic time in deterministic mode) for level (d), preferences and balance.
BALANCE_BUDGET = 2.0
#: Level (d) on models above ``PRESOLVE_MAX_VARS``: a short budget and no LP relaxation.
#: Measured on 920 fixed pairs in 40 cohorts (9,000 variables), starting from a complete plan:
#: 2 s of deterministic time took 9-10 s wall (LP on) or 4-6 s (LP off); 0.3 s took 1.3 s wall
#: with LP off, and found the same balance (the fullest cohort full either way).
LARGE_BALANCE_BUDGET = 0.3
#: Joint models with more placement variables than this skip CP-SAT's presolve.
PRESOLVE_MAX_VARS = 5_000
#: Seconds to build and start searching the model, per placement variable (pair x cohort):
#: under a time limit, a model that would not be built in the time left is not started.
#: Measured: 1.1 s to build 23,000 variables at 5,000 participants; twice that, for the search.
BUILD_S_PER_VAR = 1e-4
#: Seconds per level (a)-(c) when the caller sets no time limit.
DEFAULT_BUDGET = 5.0
#: CP-SAT's "no wall-clock limit" (its default).
NO_LIMIT = float("inf")
#: Items (candidates, variables) handled between two checks of the stop while a model is built
#: (a few ms of work: a candidate has up to one variable per cohort; measured, 2,048
#: candidates' hints took 0.16 s at 5,000 participants).
CHECK_EVERY = 256


class Tick(Protocol):
    """Called in the loops that build a model with the step's name, how far it is and its
    length; it acts every ``every`` items."""

    def __call__(self, step: str, done: int, total: int, every: int = CHECK_EVERY) -> None: ...


def _no_tick(step: str, done: int, total: int, every: int = CHECK_EVERY) -> None:
    return None


class _Cancelled(Exception):
    """The caller cancelled while a model was being built (raised by :func:`_build_ticks`)."""


def _check_ticks(stop: Stop | None) -> Tick:
    """A tick that checks ``stop`` every ``CHECK_EVERY`` items (reporting progress, noticing a
    cancel for the next decision to act on) and never raises."""
    if stop is None:
        return _no_tick

    def tick(step: str, done: int, total: int, every: int = CHECK_EVERY) -> None:
        if done % every == 0:
            stop.check(f"placement: {step}, {done:,} of {total:,}")

    return tick


def _build_ticks(stop: Stop | None) -> Tick:
    """The tick for a model's build: every ``CHECK_EVERY`` items, a check of ``stop`` (which
    reports progress at most every ``TICK_S`` seconds) that raises :class:`_Cancelled` once
    the caller has cancelled. A deadline that passes is left to the search's own check, so
    that a time limit ends the build where it always has."""
    if stop is None:
        return _no_tick

    def tick(step: str, done: int, total: int, every: int = CHECK_EVERY) -> None:
        if done % every == 0:
            stop.check(f"placement: building the model ({step}, {done:,} of {total:,})")
            if stop.cancelled:
                raise _Cancelled

    return tick


@dataclass(frozen=True)
class Candidate:
    """A pair that may be formed: ``fixed`` ones are always formed (pre-formed pairs, or pairs
    an earlier stage chose); the others are optional lone pairs."""

    patient_leader: str
    partner: str
    fixed: bool
    score: float
    cohorts: tuple[int, ...]  # indices of the cohorts both can attend


@dataclass(frozen=True)
class Placement:
    """Which candidates are formed, and where each formed pair is placed (None = wait-list)."""

    formed: list[int]
    cohort_of: dict[int, int | None]
    sets_in: dict[int, int]  # cohort index -> number of action-learning sets planned
    status: str  # optimal | feasible | infeasible | timeout: about levels (a)-(c)
    objective: float | None
    bound: float | None
    balance_proven: bool = False
    #: the level values reached, by name (placed, kept, stayed, formed, quality, balance)
    levels: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False


@dataclass(frozen=True)
class QualityLevel:
    """How level (c), the lone pairs' total score, is searched: ``upper`` is a known bound on it
    (e.g. the unconstrained optimal matching's total, in ``SCORE_SCALE`` units), ``gap`` the
    relative gap to the best bound known at which the search stops, and ``budget`` its seconds
    (deterministic time in deterministic mode)."""

    upper: int | None
    gap: float
    budget: float
    #: CP-SAT's linearization level for this level: 2 proves bounds sooner (measured: the
    #: quality level of generated 150 seed 3 proven in 1.0 s of deterministic time at level 2,
    #: unproven after 5 s at the default 1), 1 finds improvements sooner from a good start
    linearization: int = 1
    #: the optional candidates are a subset of the allowed lone pairs (a shortlist): CP-SAT's
    #: optimality on levels (b)-(c) is then no proof; only reaching ``upper`` (or a ceiling)
    #: proves them
    restricted: bool = False


@dataclass(frozen=True)
class Replan:
    """What the placement must disturb as little as possible: candidate indices of the pairs
    of a previous plan (``keep``), and where each previously placed pair was (``stay``: index
    -> cohort index). ``must_place`` holds locked pairs with a cohort (their only option)."""

    keep: frozenset[int] = frozenset()
    stay: dict[int, int] = field(default_factory=dict)
    must_place: frozenset[int] = frozenset()


@dataclass
class _Vars:
    """The decision variables of the placement model."""

    formed: dict[int, cp_model.IntVar]
    placed: dict[tuple[int, int], cp_model.IntVar]
    count: dict[int, cp_model.IntVar] = field(default_factory=dict)
    n_sets: dict[int, cp_model.IntVar] = field(default_factory=dict)
    two_sets: dict[int, cp_model.IntVar] = field(default_factory=dict)
    in_cohort: dict[int, list[int]] = field(default_factory=dict)

    def all(self, candidates: list[Candidate]) -> list[cp_model.IntVar]:
        """Every decision variable, so a plan handed from level to level is a complete hint."""
        return [
            *self.placed.values(),
            *(self.formed[k] for k, c in enumerate(candidates) if not c.fixed),
            *self.count.values(),
            *self.n_sets.values(),
            *self.two_sets.values(),
        ]


def _formed_once_per_person(
    model: cp_model.CpModel, candidates: list[Candidate], tick: Tick = _no_tick
) -> _Vars:
    # Pre-formed and locked pairs are always formed; a lone pair at most once per person.
    formed: dict[int, cp_model.IntVar] = {}
    n = len(candidates)
    for k, c in enumerate(candidates):
        tick("pairs formed", k, n)
        formed[k] = model.new_constant(1) if c.fixed else model.new_bool_var(f"x{k}")
    by_person: dict[str, list[int]] = defaultdict(list)
    for k, c in enumerate(candidates):
        by_person[c.patient_leader].append(k)
        by_person[c.partner].append(k)
    for ks in by_person.values():
        if len(ks) > 1:
            model.add_at_most_one(formed[k] for k in ks)
    return _Vars(formed=formed, placed={})


def _sum(terms: Iterable[cp_model.LinearExprT]) -> cp_model.LinearExpr:
    """The sum of CP-SAT terms, in their order, built by CP-SAT in one call: Python's ``sum``
    makes an expression object per term (0.15 s of a 2,000-participant model's build)."""
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    return cp_model.LinearExpr.sum(list(terms))


def _placed_where_both_can_attend(
    model: cp_model.CpModel, candidates: list[Candidate], v: _Vars, tick: Tick = _no_tick
) -> None:
    # A formed pair goes to at most one cohort that both members can attend in full.
    n = len(candidates)
    for k, c in enumerate(candidates):
        tick("cohorts each pair can attend", k, n)
        ys = [v.placed.setdefault((k, q), model.new_bool_var(f"y{k}_{q}")) for q in c.cohorts]
        if ys:
            model.add(_sum(ys) <= v.formed[k])
    v.in_cohort = defaultdict(list)
    for k, q in v.placed:
        v.in_cohort[q].append(k)


def _capacity_and_set_sizes(
    model: cp_model.CpModel, instance: Instance, v: _Vars, tick: Tick = _no_tick
) -> None:
    # At most capacity_pairs per cohort, and a count that splits into s sets of lo..hi pairs.
    for q, cohort in enumerate(instance.cohorts):
        tick("capacity and set sizes, cohorts", q, len(instance.cohorts), every=1)
        ks = v.in_cohort.get(q, [])
        cap = min(cohort.capacity_pairs, len(ks))
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        count = model.new_int_var(0, cap, f"n{q}")
        model.add(count == _sum(v.placed[k, q] for k in ks))
        s = model.new_int_var(0, max(1, cap // lo + 1), f"s{q}")
        model.add(lo * s <= count)
        model.add(count <= hi * s)
        v.count[q], v.n_sets[q] = count, s


def _one_organisation_per_set(
    model: cp_model.CpModel,
    instance: Instance,
    candidates: list[Candidate],
    v: _Vars,
    tick: Tick = _no_tick,
) -> None:
    # Never two pairs sharing an organisation in one set: at most s pairs per organisation
    # (the CP-SAT form of rules.shares_organisation; tests/test_rules.py ties it to cohort_ok).
    if not one_organisation_per_set(instance):
        return
    people = people_by_id(instance)
    orgs_of: dict[int, frozenset[str]] = {}  # a pair's organisations, once for its cohorts
    n_seen, n_all = 0, len(v.placed)
    for q, ks in v.in_cohort.items():
        by_org: dict[str, list[int]] = defaultdict(list)
        for k in ks:
            tick("one organisation per set", n_seen, n_all)
            n_seen += 1
            orgs = orgs_of.get(k)
            if orgs is None:
                c = candidates[k]
                orgs = orgs_of[k] = pair_organisations(
                    (people[c.patient_leader], people[c.partner])
                )
            for org in orgs:
                by_org[org].append(k)
        for _, org_ks in sorted(by_org.items()):
            if len(org_ks) > 1:
                model.add(_sum(v.placed[k, q] for k in org_ks) <= v.n_sets[q])


def _conflicts_in_separate_sets(
    model: cp_model.CpModel,
    instance: Instance,
    candidates: list[Candidate],
    v: _Vars,
    tick: Tick = _no_tick,
) -> None:
    # Declared conflicts never share a set: two conflicting pairs in a cohort need s >= 2 (the
    # CP-SAT form of rules.declared_conflict; tests/test_rules.py ties it to cohort_ok).
    people = people_by_id(instance)
    for q in range(len(instance.cohorts)):
        tick("declared conflicts, cohorts", q, len(instance.cohorts), every=1)
        two_sets = model.new_bool_var(f"two_sets{q}")
        v.two_sets[q] = two_sets
        model.add(v.n_sets[q] >= 2).only_enforce_if(two_sets)
        member_pairs: dict[str, list[int]] = defaultdict(list)
        for k in v.in_cohort.get(q, []):
            member_pairs[candidates[k].patient_leader].append(k)
            member_pairs[candidates[k].partner].append(k)
        conflicts = {
            tuple(sorted((pid, other)))
            for pid in member_pairs
            for other in people[pid].avoid
            if other in member_pairs
        }
        for a, b in sorted(conflicts):
            model.add(
                _sum(v.placed[k, q] for k in member_pairs[a])
                + _sum(v.placed[k, q] for k in member_pairs[b])
                <= 1 + two_sets
            )


def _locks_placed(
    model: cp_model.CpModel,
    candidates: list[Candidate],
    v: _Vars,
    must_place: Iterable[int],
    *,
    assumptions: bool = False,
) -> dict[int, cp_model.IntVar]:
    """Locked pairs with a cohort are placed there (their only cohort option). With
    ``assumptions``, each lock is an assumption literal, for :func:`diagnose_locks`."""
    literals = {}
    for k in sorted(must_place):
        ys = [v.placed[k, q] for q in candidates[k].cohorts]
        if assumptions:
            lit = model.new_bool_var(f"lock{k}")
            model.add(_sum(ys) == 1).only_enforce_if(lit)
            literals[k] = lit
        else:
            model.add(_sum(ys) == 1)
    if literals:
        model.add_assumptions(list(literals.values()))
    return literals


def _build(
    instance: Instance,
    candidates: list[Candidate],
    must_place: Iterable[int],
    *,
    assumptions: bool = False,
    tick: Tick = _no_tick,
) -> tuple[cp_model.CpModel, _Vars, dict[int, cp_model.IntVar]]:
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    model = cp_model.CpModel()
    v = _formed_once_per_person(model, candidates, tick)
    _placed_where_both_can_attend(model, candidates, v, tick)
    _capacity_and_set_sizes(model, instance, v, tick)
    _one_organisation_per_set(model, instance, candidates, v, tick)
    _conflicts_in_separate_sets(model, instance, candidates, v, tick)
    literals = _locks_placed(model, candidates, v, must_place, assumptions=assumptions)
    return model, v, literals


def solve_placement(
    instance: Instance,
    candidates: list[Candidate],
    *,
    seed: int = 0,
    time_limit: float | None = None,
    deterministic: bool = True,
    hint: dict[tuple[str, str], int | None] | None = None,
    default_budget: float = 0.0,
    replan: Replan | None = None,
    stop: Stop | None = None,
    ceiling: int | None = None,
    balance_when_short: bool = True,
    quality: QualityLevel | None = None,
    balance: bool = True,
) -> Placement:
    """Choose the formed pairs among ``candidates`` and their cohorts (see module docstring).

    Each level (a)-(c) gets ``time_limit`` seconds, or ``default_budget`` (``DEFAULT_BUDGET``
    when 0) when the caller set none; ``stop`` bounds the whole call (wall clock and cancel).

    ``hint`` maps (patient leader, professional) of a known plan to its cohort (or None):
    CP-SAT starts from it (the joint model starts from the decomposition's plan).
    ``ceiling``: a known bound on the pairs any plan can place (a tighter one than this model's
    own, e.g. :func:`matcher.engine.placement.ceiling.placement_ceiling`); reaching it proves level
    (a).
    ``balance_when_short=False`` skips level (d) when not every candidate is placed (the caller
    will re-plan, so balancing this plan would be wasted time).
    ``quality``: how level (c) is searched when the caller knows a bound on it and a good start
    (:class:`QualityLevel`); by default it gets the same budget as levels (a)-(b).
    ``balance=False`` skips level (d) (the caller balances the chosen pairs in a smaller model).

    Fixed candidates are always formed; the others are formed at most once per
    person. With ``deterministic``, CP-SAT runs one worker with a fixed seed and a
    deterministic-time budget, so the result does not depend on machine load.
    """
    replan = replan or Replan()
    left = None if stop is None else stop.remaining()
    size = sum(len(c.cohorts) for c in candidates)
    if stop is not None and (
        not stop.check("placement: start") or (left is not None and left < BUILD_S_PER_VAR * size)
    ):
        # out of time (or cancelled), or too little left to build the model and search it
        return _without_search(
            instance, candidates, hint, replan.must_place, ceiling, stop.cancelled
        )
    optional = any(not c.fixed for c in candidates)
    quick: Placement | None = None  # the greedy plan of fixed pairs, CP-SAT's start below
    if not (optional or replan.must_place or replan.stay or replan.keep) and hint is None:
        # Fixed pairs from scratch: the greedy plan at the ceiling proves level (a), and when
        # level (d) is not wanted for it, nothing is left to search: no model to build
        # (measured: 1.4 s of CPU for the 2,300 pairs of 5,000 participants).
        n_all = len(candidates)
        top = min(
            _placement_ceiling(instance, candidates), ceiling if ceiling is not None else n_all
        )
        quick = greedy_placement(instance, candidates)
        if not balance or (not balance_when_short and top < n_all):
            if sum(q is not None for q in quick.cohort_of.values()) >= top:
                return replace(
                    quick, status="optimal", cancelled=stop is not None and stop.cancelled
                )
        elif not _prefers_any(instance, candidates):
            balanced = _balanced_without_search(instance, candidates, quick, top, stop)
            if balanced is not None:
                return balanced
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    tick = _build_ticks(stop)
    try:
        people = people_by_id(instance)
        cohorts = instance.cohorts
        model, v, _ = _build(instance, candidates, replan.must_place, tick=tick)
        placed, formed = v.placed, v.formed

        # Objective, lexicographic: (a) placed, (a') kept then stayed, (b) formed, (c) quality,
        # (d) preferences and balance.
        n = len(candidates)
        fullest = model.new_int_var(0, 100, "fullest")
        for q, cohort in enumerate(cohorts):
            if cohort.capacity_pairs > 0 and v.in_cohort.get(q):
                fill = _sum(placed[k, q] for k in v.in_cohort[q])
                model.add(100 * fill <= fullest * cohort.capacity_pairs)
        prefer_terms = []
        for n_seen, ((k, q), y) in enumerate(placed.items()):
            tick("cohort preferences", n_seen, len(placed))
            c = candidates[k]
            hits = sum(
                cohorts[q].id in people[pid].preferred_cohorts
                for pid in (c.patient_leader, c.partner)
            )
            if hits:
                prefer_terms.append(hits * y)
        quality_level = quality
        quality_expr = sum(
            round(c.score * SCORE_SCALE) * formed[k]
            for k, c in enumerate(candidates)
            if not c.fixed
        )
        # A ceiling on (a), stated so that CP-SAT stops as soon as a plan reaches it (CP-SAT's own
        # bound is often looser): a max flow of pairs into cohorts whose capacity is cut to the
        # largest count that splits into sets; lone pairs count as at most one per lone person.
        ceiling = min(
            _placement_ceiling(instance, candidates), ceiling if ceiling is not None else n
        )
        model.add(_sum(placed.values()) <= ceiling)
        budget = (default_budget or DEFAULT_BUDGET) if time_limit is None else time_limit
        levels: list[tuple[str, cp_model.LinearExprT, float]] = [
            ("placed", _sum(placed.values()), budget),
        ]
        ceilings = {"placed": ceiling}
        kept = [formed[k] for k in sorted(replan.keep) if not candidates[k].fixed]
        if kept:
            levels.append(("kept", _sum(kept), budget))
            ceilings["kept"] = len(kept)
        stayed = [placed[k, q] for k, q in sorted(replan.stay.items()) if (k, q) in placed]
        if stayed:
            levels.append(("stayed", _sum(stayed), budget))
            ceilings["stayed"] = len(stayed)
        if optional:
            q_budget = budget if quality_level is None else min(budget, quality_level.budget)
            levels += [
                ("formed", _sum(formed.values()), budget),
                ("quality", quality_expr, q_budget),
            ]
            if quality_level is not None and quality_level.upper is not None:
                ceilings["quality"] = quality_level.upper
            # each optional pair takes one of the people the optional candidates name on each side
            open_rows = {c.patient_leader for c in candidates if not c.fixed}
            open_cols = {c.partner for c in candidates if not c.fixed}
            ceilings["formed"] = sum(c.fixed for c in candidates) + min(
                len(open_rows), len(open_cols)
            )
        # (d) is best effort: a short budget of its own, whatever the time limit.
        large = len(placed) > PRESOLVE_MAX_VARS
        d_cap = min(LARGE_BALANCE_BUDGET if large else BALANCE_BUDGET, budget)
        levels.append(("balance", (2 * n + 1) * (100 - fullest) + sum(prefer_terms), d_cap))

        start = (
            None
            if optional or replan.must_place or replan.stay or hint is not None
            else quick
            if quick is not None
            else greedy_placement(instance, candidates)
        )
        if start is None and hint is not None and not optional and not replan.stay:
            # a hint that already meets every cohort rule is a plan to start from, like the
            # greedy one
            start = _plan_from_hint(instance, candidates, hint, replan.must_place)
        if start is not None:  # start from the greedy plan: CP-SAT then only has to improve it
            as_hint = {
                (c.patient_leader, c.partner): start.cohort_of.get(k)
                for k, c in enumerate(candidates)
            }
            _complete_hint(model, instance, candidates, v, as_hint, fullest, tick)
        elif hint is not None:
            _complete_hint(model, instance, candidates, v, hint, fullest, tick)
    except _Cancelled:  # before any search: the plan a cancel at the start gets
        return _without_search(instance, candidates, hint, replan.must_place, ceiling, True)
    solver = cp_model.CpSolver()
    solver.parameters.random_seed = seed
    if len(placed) > PRESOLVE_MAX_VARS:
        # Measured: on ~27k variables presolve alone outlasts a 5 s budget, and on 9,000 (920
        # fixed pairs, 40 cohorts) the 2 s balance budget; without it the search starts from
        # the (complete) hint at once.
        solver.parameters.cp_model_presolve = False
    solver.parameters.num_workers = 1 if deterministic else 2
    values: dict[str, int] = {}
    proven: dict[str, bool] = {}
    variables = [*v.all(candidates), fullest]
    solved = False
    greedy_at_ceiling = (
        start is not None and sum(q is not None for q in start.cohort_of.values()) >= ceiling
    )
    code = cp_model.UNKNOWN
    chosen: list[int] = []
    cohort_of: dict[int, int | None] = {}
    sets_in: dict[int, int] = {}
    hinted = None
    if (
        quality_level is not None
        and start is None
        and hint is not None
        and optional
        and not (replan.keep or replan.stay)
    ):
        hinted = _joint_plan_from_hint(instance, candidates, hint, replan.must_place, people)
    if hinted is not None and sum(q is not None for q in hinted[1].values()) >= ceiling:
        # the hint (e.g. the flow repair's plan) meets every rule and already places the most
        # pairs possible: level (a) is proven without a search, and the hint is the plan the
        # next levels improve (or keep, when they find nothing better in their budget)
        chosen, cohort_of = hinted
        sets_in = _sets_of(instance, cohort_of)
        solved = True
    if greedy_at_ceiling or solved:  # a plan that already places the most pairs possible
        hold_level(model, sum(placed.values()), ceiling)
        levels = levels[1:]
        values["placed"], proven["placed"] = ceiling, True
    for name, expr, level_budget in levels:
        # Optimise each level in turn, holding the levels above at their optimum; the previous
        # solution is the hint, so every stage starts from a feasible plan.
        if name == "quality" and solved and not (replan.keep or replan.stay):
            # start quality from the plan with each cohort's lone pairs re-matched at their best
            polished = _polish(instance, candidates, chosen, cohort_of, people)
            if polished is not None:
                model.clear_hints()
                _complete_hint(model, instance, candidates, v, polished, fullest)
                index = {(c.patient_leader, c.partner): k for k, c in enumerate(candidates)}
                cohort_of = {index[key]: q for key, q in polished.items()}
                chosen = sorted(cohort_of)
                sets_in = _sets_of(instance, cohort_of)
        if name == "formed" and values.get("placed", -1) >= ceilings["formed"]:
            # every pair formed is placed and no plan forms more: (b) holds at its ceiling
            values[name], proven[name] = ceilings["formed"], proven.get("placed", False)
            continue
        if name == "balance":
            if not balance:
                break
            if not balance_when_short and values.get("placed", 0) < n:
                break
            if len(v.in_cohort) <= 1 and solved:
                # one cohort in use: which pairs are placed (held above) fixes its fill, and
                # no pair has another cohort to prefer
                proven[name] = True
                continue
            plan_now = cohort_of if solved else (start.cohort_of if start is not None else None)
            if not prefer_terms and not optional and plan_now is not None:
                # no preferences: (d) is the fullest cohort alone; when no plan placing this
                # many pairs can keep every cohort below the current plan's fullest (a max
                # flow says so), the current plan is optimal on (d) without a search
                # (measured: 3 s of CPU at 1,000 participants that found nothing better)
                now = _fullest(instance, plan_now)
                target = sum(q is not None for q in plan_now.values())
                floor = _fullest_lower_bound(instance, candidates, target, _check_ticks(stop))
                if now is not None and floor >= now:
                    proven[name] = True
                    values[name] = (2 * n + 1) * (100 - now)
                    continue
            if large:
                solver.parameters.linearization_level = 0
        # Deterministic mode counts CP-SAT's deterministic time, so the plan does not depend on
        # machine load. Only a time limit the caller set adds a wall-clock cap (twice the
        # budget): if it bites, the plan may vary run to run. (Measured: deterministic time
        # runs up to ~3x slower than wall time here, so a cap on our own default budgets bit
        # routinely and made default runs irreproducible.) `stop` bounds the whole call.
        solver.parameters.max_time_in_seconds = NO_LIMIT
        if deterministic:
            solver.parameters.max_deterministic_time = level_budget
            if time_limit is not None:
                solver.parameters.max_time_in_seconds = 2 * level_budget
        else:
            solver.parameters.max_time_in_seconds = level_budget
        gap = 0.0
        linearization = solver.parameters.linearization_level
        if name == "quality" and quality_level is not None:
            gap = quality_level.gap
            solver.parameters.linearization_level = quality_level.linearization
        t0, c0 = time.perf_counter(), time.process_time()
        # optimise the level; when found, hold it and hint its solution to the next level
        level = optimise_level(
            model,
            solver,
            expr,
            stop,
            f"placement: level {name}",
            ceiling=ceilings.get(name),
            gap=gap,
            hint_from=variables,
        )
        code = level.code
        solver.parameters.linearization_level = linearization
        log.debug(
            "placement level %s: %s, value %s, bound %s, %d variables, %.2f s (CPU %.2f s)",
            name,
            solver.status_name(code),
            solver.objective_value if level.found else None,
            solver.best_objective_bound if level.found else None,
            len(variables),
            time.perf_counter() - t0,
            time.process_time() - c0,
        )
        if code == cp_model.MODEL_INVALID:  # a bug in this model: say what CP-SAT says
            raise MatcherError(f"placement model invalid: {model.validate()}")
        if level.value is None:
            if name == "quality" and solved:
                # nothing found in the level's budget: the plan it started from holds every
                # level above, and its quality is what the levels below must keep
                values[name] = sum(
                    round(candidates[k].score * SCORE_SCALE)
                    for k in chosen
                    if not candidates[k].fixed
                )
                proven[name] = False
                hold_level(model, expr, values[name])
                if stop is not None and stop.cancelled:
                    break
                continue
            break
        solved = True
        values[name] = level.value
        # Reaching the ceiling is a proof too (CP-SAT's own bound is often looser).
        shortlist = quality_level is not None and quality_level.restricted
        proven[name] = (
            level.optimal and not (shortlist and name in ("formed", "quality"))
        ) or level.reached
        chosen = [k for k in range(n) if solver.value(formed[k])]
        cohort_of = {k: None for k in chosen}
        reading = _check_ticks(stop)
        for n_read, ((k, q), y) in enumerate(placed.items()):
            reading(f"level {name}, reading the plan", n_read, len(placed), every=4 * CHECK_EVERY)
            if solver.value(y):
                cohort_of[k] = q
        sets_in = {q: solver.value(s) for q, s in v.n_sets.items()}
        if stop is not None and stop.cancelled:
            break
    cancelled = stop is not None and stop.cancelled
    if not solved:
        if start is not None and greedy_at_ceiling:
            return replace(
                start,
                status="optimal",
                objective=float(values.get("placed", 0)),
                bound=float(ceiling),
                sets_in=_sets_of(instance, start.cohort_of),
                levels=values,
                balance_proven=proven.get("balance", False),
                cancelled=cancelled,
            )
        if code == cp_model.INFEASIBLE:
            return Placement([], {}, {}, "infeasible", None, None)
        if start is not None:  # nothing better in time: the plan CP-SAT started from
            return replace(start, bound=float(ceiling), cancelled=cancelled)
        if all(c.fixed for c in candidates) and not replan.must_place:
            return replace(greedy_placement(instance, candidates), cancelled=cancelled)
        return Placement([], {}, {}, "timeout", None, None, cancelled=cancelled)
    upper = [name for name, _, _ in levels if name != "balance"]
    return Placement(
        formed=chosen,
        cohort_of=cohort_of,
        sets_in=sets_in,
        status="optimal" if all(proven.get(k, False) for k in upper) else "feasible",
        objective=float(values.get("placed", 0)),
        bound=float(ceiling),
        balance_proven=proven.get("balance", False),
        levels=values,
        cancelled=cancelled,
    )


def _without_search(
    instance: Instance,
    candidates: list[Candidate],
    hint: dict[tuple[str, str], int | None] | None,
    must_place: frozenset[int],
    ceiling: int | None,
    cancelled: bool,
) -> Placement:
    """The plan when no search runs (out of time, or cancelled before one): fixed pairs are
    placed by the hint when it meets every rule, else greedily; otherwise nothing (timeout)."""
    if all(c.fixed for c in candidates) and not must_place:
        quick = None
        if hint is not None:
            quick = _plan_from_hint(instance, candidates, hint, must_place)
        quick = quick or greedy_placement(instance, candidates)
        if ceiling is not None:
            quick = replace(quick, bound=float(ceiling))
        return replace(quick, cancelled=cancelled)
    return Placement([], {}, {}, "timeout", None, None, cancelled=cancelled)


def _polish(
    instance: Instance,
    candidates: list[Candidate],
    chosen: list[int],
    cohort_of: dict[int, int | None],
    people: Mapping[str, Participant],
) -> dict[tuple[str, str], int | None] | None:
    """The plan with the lone pairs of each cohort re-matched among the same people by an
    exact maximum-weight matching (as many pairs, a higher total), where the cohort's rules
    still hold; None when no cohort improves. A hint for the quality level: same pairs
    placed and formed, so every level above still holds."""
    optional_of: dict[str, list[int]] = defaultdict(list)
    for k, c in enumerate(candidates):
        if not c.fixed:
            optional_of[c.patient_leader].append(k)
    members: dict[int, list[int]] = defaultdict(list)
    for k in chosen:
        q = cohort_of.get(k)
        if q is not None:
            members[q].append(k)
    plan = {(candidates[k].patient_leader, candidates[k].partner): cohort_of.get(k) for k in chosen}
    improved = False
    for q, ks in sorted(members.items()):
        lone = [k for k in ks if not candidates[k].fixed]
        if len(lone) < 2:
            continue
        rows = sorted({candidates[k].patient_leader for k in lone})
        cols = {pid: j for j, pid in enumerate(sorted({candidates[k].partner for k in lone}))}
        edges = [
            k2
            for i, pl in enumerate(rows)
            for k2 in optional_of[pl]
            if candidates[k2].partner in cols and q in candidates[k2].cohorts
        ]
        row_i = {pl: i for i, pl in enumerate(rows)}
        ends_r = [row_i[candidates[k2].patient_leader] for k2 in edges]
        ends_c = [cols[candidates[k2].partner] for k2 in edges]
        w = [round(candidates[k2].score * SCORE_SCALE) for k2 in edges]
        # the cohort's current pairs are a perfect matching of these people, so a best perfect
        # one exists (OR-Tools' assignment: exact, and no compiled kernel to load)
        by_ends: dict[tuple[int, int], int] = {}
        for e, k2 in enumerate(edges):
            key = (ends_r[e], ends_c[e])
            if key not in by_ends or w[e] > round(candidates[by_ends[key]].score * SCORE_SCALE):
                by_ends[key] = k2
        solver = linear_sum_assignment.SimpleLinearSumAssignment()
        for (i, j), k2 in by_ends.items():
            solver.add_arc_with_cost(i, j, -round(candidates[k2].score * SCORE_SCALE))
        if len(rows) != len(cols) or solver.solve() != solver.OPTIMAL:
            continue
        new = [by_ends[i, solver.right_mate(i)] for i in range(len(rows))]
        gain = sum(round(candidates[k2].score * SCORE_SCALE) for k2 in new) - sum(
            round(candidates[k].score * SCORE_SCALE) for k in lone
        )
        if gain <= 0:
            continue
        fixed_here = [candidates[k] for k in ks if candidates[k].fixed]
        if not cohort_ok(instance, q, fixed_here + [candidates[k2] for k2 in new], people):
            continue
        for k in lone:
            del plan[candidates[k].patient_leader, candidates[k].partner]
        for k2 in new:
            plan[candidates[k2].patient_leader, candidates[k2].partner] = q
        improved = True
    return plan if improved else None


def _fullest(instance: Instance, cohort_of: dict[int, int | None]) -> int | None:
    """The plan's fullest cohort, in whole percent rounded up (as the model counts it)."""
    count: dict[int, int] = defaultdict(int)
    for q in cohort_of.values():
        if q is not None:
            count[q] += 1
    caps = instance.cohorts
    fills = [
        -(-100 * k // caps[q].capacity_pairs) for q, k in count.items() if caps[q].capacity_pairs
    ]
    return max(fills, default=0)


def _prefers_any(instance: Instance, candidates: list[Candidate]) -> bool:
    """Whether a member of some candidate prefers a cohort the pair could be placed in (level
    (d)'s preference terms)."""
    people = people_by_id(instance)
    cohorts = instance.cohorts
    return any(
        cohorts[q].id in people[pid].preferred_cohorts
        for c in candidates
        for q in c.cohorts
        for pid in (c.patient_leader, c.partner)
    )


def _balanced_without_search(
    instance: Instance, candidates: list[Candidate], quick: Placement, top: int, stop: Stop | None
) -> Placement | None:
    """Fixed pairs from scratch whose level (d) is the fullest cohort alone (no cohort
    preferences): a plan placing ``top`` pairs (the ceiling, so level (a) is proven) with its
    fullest cohort at the max-flow lower bound (:func:`_fullest_lower_bound`) is optimal on
    every level, found without a model: the greedy plan ``quick``, or failing that the greedy
    plan with each cohort's room cut to that bound. None when neither reaches it (CP-SAT then
    searches). Measured: the model and CP-SAT's import (0.3-0.4 s) were most of a
    200-participant placement."""
    if sum(q is not None for q in quick.cohort_of.values()) < top:
        return None
    floor = _fullest_lower_bound(instance, candidates, top, _check_ticks(stop))
    now = _fullest(instance, quick.cohort_of)
    if now is None or now > floor:
        rooms = [floor * cohort.capacity_pairs // 100 for cohort in instance.cohorts]
        quick = greedy_placement(instance, candidates, rooms)
        if sum(q is not None for q in quick.cohort_of.values()) < top:
            return None
        now = _fullest(instance, quick.cohort_of)
        if now is None or now > floor:
            return None
    n = len(candidates)
    return replace(
        quick,
        status="optimal",
        objective=float(top),
        bound=float(top),
        sets_in=_sets_of(instance, quick.cohort_of),
        levels={"placed": top, "balance": (2 * n + 1) * (100 - now)},
        balance_proven=True,
        cancelled=stop is not None and stop.cancelled,
    )


def _fullest_lower_bound(
    instance: Instance, candidates: list[Candidate], target: int, tick: Tick = _no_tick
) -> int:
    """The least fullest-cohort percentage any plan placing ``target`` of these fixed
    candidates can have: the smallest ``f`` for which a max flow of pairs into cohorts, each cut
    to ``floor(f * capacity / 100)``, carries ``target`` (set rules ignored, so a lower bound).
    Binary search over ``f``, one max flow each."""
    usable = [c for c in candidates if c.cohorts]
    if target <= 0 or not usable:
        return 0
    import numpy as np  # lazy: the arc arrays, built once for every f

    # source -> each pair -> each cohort it can attend -> sink; only the last arcs' capacities
    # depend on f
    source, sink, first_q = 0, 1, 2 + len(usable)
    n_q = len(instance.cohorts)
    attend = [(2 + k, first_q + q) for k, c in enumerate(usable) for q in c.cohorts]
    tails = np.array(
        [source] * len(usable) + [t for t, _ in attend] + list(range(first_q, first_q + n_q)),
        dtype=np.int32,
    )
    heads = np.array(
        list(range(2, 2 + len(usable))) + [h for _, h in attend] + [sink] * n_q, dtype=np.int32
    )
    unit = np.ones(len(usable) + len(attend), dtype=np.int64)
    capacity = np.array([cohort.capacity_pairs for cohort in instance.cohorts], dtype=np.int64)

    def carries(f: int) -> bool:
        tick(f"balance bound, {f}% full", 0, 1)
        flow = max_flow.SimpleMaxFlow()
        flow.add_arcs_with_capacity(tails, heads, np.concatenate([unit, f * capacity // 100]))
        return flow.solve(source, sink) == flow.OPTIMAL and flow.optimal_flow() >= target

    lo, hi = 0, 100
    if not carries(hi):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if carries(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _sets_of(instance: Instance, cohort_of: dict[int, int | None]) -> dict[int, int]:
    """Sets per cohort for a plan: the most its pair count splits into."""
    count: dict[int, int] = defaultdict(int)
    for q in cohort_of.values():
        if q is not None:
            count[q] += 1
    out = {}
    for q, cohort in enumerate(instance.cohorts):
        options = set_counts(cohort.set_size.min_pairs, cohort.set_size.max_pairs, count[q])
        out[q] = max(options) if options else 0
    return out


def _joint_plan_from_hint(
    instance: Instance,
    candidates: list[Candidate],
    hint: dict[tuple[str, str], int | None],
    must_place: frozenset[int],
    people: Mapping[str, Participant],
) -> tuple[list[int], dict[int, int | None]] | None:
    """The hint as a plan over fixed and optional candidates (formed: the fixed ones and the
    optional ones the hint names), when it forms every fixed pair, nobody twice, places every
    locked pair in its cohort and meets every cohort rule; else None."""
    cohort_of: dict[int, int | None] = {}
    members: dict[int, list[Candidate]] = defaultdict(list)
    used: set[str] = set()
    for k, c in enumerate(candidates):
        key = (c.patient_leader, c.partner)
        if key not in hint:
            if c.fixed:
                return None
            continue
        if c.patient_leader in used or c.partner in used:
            return None
        used.update(key)
        q = hint[key]
        if (q is not None and q not in c.cohorts) or (q is None and k in must_place):
            return None
        cohort_of[k] = q
        if q is not None:
            members[q].append(c)
    if not all(cohort_ok(instance, q, ms, people) for q, ms in members.items()):
        return None
    return sorted(cohort_of), cohort_of


def _plan_from_hint(
    instance: Instance,
    candidates: list[Candidate],
    hint: dict[tuple[str, str], int | None],
    must_place: frozenset[int],
) -> Placement | None:
    """The hint as a plan of fixed pairs, when it meets every cohort rule and places every
    locked pair in its cohort; else None."""
    people = people_by_id(instance)
    cohort_of: dict[int, int | None] = {}
    members: dict[int, list[Candidate]] = defaultdict(list)
    for k, c in enumerate(candidates):
        q = hint.get((c.patient_leader, c.partner))
        if q is not None and q not in c.cohorts:
            return None
        if q is None and k in must_place:
            return None
        cohort_of[k] = q
        if q is not None:
            members[q].append(c)
    if not all(cohort_ok(instance, q, ms, people) for q, ms in members.items()):
        return None
    return Placement(list(range(len(candidates))), cohort_of, {}, "feasible", None, None)


def _complete_hint(
    model: cp_model.CpModel,
    instance: Instance,
    candidates: list[Candidate],
    v: _Vars,
    hint: dict[tuple[str, str], int | None],
    fullest: cp_model.IntVar,
    tick: Tick = _no_tick,
) -> None:
    """A complete hint (every variable), so CP-SAT starts from a plan at once."""
    per_cohort: dict[int, int] = defaultdict(int)
    for k, c in enumerate(candidates):
        tick("hint", k, len(candidates))
        key = (c.patient_leader, c.partner)
        if not c.fixed:
            model.add_hint(v.formed[k], key in hint)
        for q in c.cohorts:
            on = key in hint and hint[key] == q
            model.add_hint(v.placed[k, q], on)
            per_cohort[q] += on
    top = 0
    for q, cohort in enumerate(instance.cohorts):
        if q not in v.count:
            continue
        k_q = per_cohort.get(q, 0)
        options = set_counts(cohort.set_size.min_pairs, cohort.set_size.max_pairs, k_q)
        s_q = max(options) if options else 0
        model.add_hint(v.count[q], k_q)
        model.add_hint(v.n_sets[q], s_q)
        model.add_hint(v.two_sets[q], s_q >= 2)
        if cohort.capacity_pairs and v.in_cohort.get(q):
            top = max(top, -(-100 * k_q // cohort.capacity_pairs))
    model.add_hint(fullest, top)


def diagnose_locks(
    instance: Instance,
    candidates: list[Candidate],
    must_place: Iterable[int],
    stop: Stop | None = None,
) -> list[int] | None:
    """A small set of locked pairs (candidate indices) that cannot all be placed in their
    cohorts together, from CP-SAT's assumptions; None when they can (or nothing was proven).
    ``stop``: progress ticks and the caller's cancel only (its deadline is not applied: the
    diagnosis runs on its own deterministic budget, whatever time is left)."""
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    model, _, literals = _build(instance, candidates, must_place, assumptions=True)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = 10.0
    ticks = None if stop is None else Stop(None, stop.tick, stop.stage, stop.cancelled_by)
    if run_cpsat(model, solver, ticks, "placement: locks that cannot hold together") != (
        cp_model.INFEASIBLE
    ):
        return None
    core = set(solver.sufficient_assumptions_for_infeasibility())
    found = [k for k, lit in literals.items() if lit.index in core]
    return found or sorted(literals)


def cohort_room(instance: Instance, n_pairs: int) -> list[int]:
    """Per cohort, the most pairs it can hold: the largest count up to its capacity (and up to
    the ``n_pairs`` there are) that splits into sets within its set size."""
    return [
        most_pairs_held(c.set_size.min_pairs, c.set_size.max_pairs, min(c.capacity_pairs, n_pairs))
        for c in instance.cohorts
    ]


def _placement_ceiling(instance: Instance, candidates: list[Candidate]) -> int:
    """An upper bound on the number of pairs placed (see :func:`solve_placement`)."""
    fixed = [c for c in candidates if c.fixed and c.cohorts]
    lone_rows = {c.patient_leader for c in candidates if not c.fixed and c.cohorts}
    lone_cols = {c.partner for c in candidates if not c.fixed and c.cohorts}
    lone = min(len(lone_rows), len(lone_cols))
    room = cohort_room(instance, len(candidates))
    if lone:  # lone pairs may go anywhere: only the total room and head count bound them
        return min(sum(room), len(fixed) + lone)
    flow = max_flow.SimpleMaxFlow()
    source, sink = 0, 1
    for k, c in enumerate(fixed):
        flow.add_arc_with_capacity(source, 2 + k, 1)
        for q in c.cohorts:
            flow.add_arc_with_capacity(2 + k, 2 + len(fixed) + q, 1)
    for q, r in enumerate(room):
        flow.add_arc_with_capacity(2 + len(fixed) + q, sink, r)
    if not fixed or flow.solve(source, sink) != flow.OPTIMAL:
        return min(sum(room), len(fixed))
    return int(flow.optimal_flow())


def cohort_ok(
    instance: Instance,
    q: int,
    members: list[Candidate],
    people: Mapping[str, Participant] | None = None,
    organisations: dict[tuple[str, str], frozenset[str]] | None = None,
) -> bool:
    """The placement rules of one cohort, from :mod:`matcher.contract.rules`: capacity, a count
    that splits into sets, at most ``s`` pairs per organisation (one organisation per set), and
    two sets when a declared conflict joins two of its people. ``organisations``: a dict the
    caller keeps over many checks of one instance, which remembers each pair's organisations
    (a search that checks a full cohort of 1,000 pairs 187 times spent half its time on them)."""
    cohort = instance.cohorts[q]
    n = len(members)
    if not _counts_hold(cohort, n, 1):  # capacity and set sizes first: no people to read
        return False
    people = people if people is not None else people_by_id(instance)
    duos = [(people[c.patient_leader], people[c.partner]) for c in members]
    by_org: dict[str, int] | None = None
    if one_organisation_per_set(instance):
        by_org = defaultdict(int)
        known = organisations if organisations is not None else {}
        for c, duo in zip(members, duos, strict=True):
            key = (c.patient_leader, c.partner)
            orgs = known.get(key)
            if orgs is None:
                orgs = known[key] = pair_organisations(duo)
            for org in orgs:
                by_org[org] += 1
    conflict = conflict_among([m for duo in duos for m in duo])
    return _counts_hold(cohort, n, _sets_needed(by_org, conflict))


def _sets_needed(by_org: dict[str, int] | None, conflict: bool) -> int:
    """The fewest sets a cohort's pairs need: as many as pairs share one organisation (under
    one organisation per set, ``by_org`` counting its pairs per organisation), and two when a
    declared conflict joins two of its people."""
    need = 1 if by_org is None else max(by_org.values(), default=1)
    return max(need, 2) if conflict else need


def _counts_hold(cohort: Cohort, n: int, need: int) -> bool:
    """``n`` pairs fit the cohort: within capacity, a count that splits into sets of its size,
    and into at least ``need`` sets."""
    counts = set_counts(cohort.set_size.min_pairs, cohort.set_size.max_pairs, n)
    return n <= cohort.capacity_pairs and bool(counts) and counts[-1] >= need


def drop_last_until_ok(
    instance: Instance,
    q: int,
    candidates: list[Candidate],
    keys: list[int],
    people: Mapping[str, Participant],
) -> None:
    """Drop the last of ``keys`` (candidates placed in cohort ``q``, in order) until
    :func:`cohort_ok` holds for the rest: the loop ``while not cohort_ok(...): keys.pop()``,
    with the pairs per organisation counted once and kept as pairs leave, and the shortest
    prefix holding a declared conflict found once (a conflict among the first pairs stays as
    pairs join), so a cohort dropping d of n pairs costs O(n + d * organisations), not
    O(n * d) (measured: 1,000 pre-formed pairs in one cohort dropping 187, 3 s -> 0.02 s)."""
    cohort = instance.cohorts[q]
    duos = [(people[candidates[k].patient_leader], people[candidates[k].partner]) for k in keys]
    orgs: list[frozenset[str]] = []
    by_org: dict[str, int] | None = None
    if one_organisation_per_set(instance):
        orgs = [pair_organisations(duo) for duo in duos]
        by_org = defaultdict(int)
        for keys_of in orgs:
            for org in keys_of:
                by_org[org] += 1
    # A conflict among the first n pairs' people only grows with n: find the first n with one.
    ids: set[str] = set()
    avoided: set[str] = set()
    clash_from = len(duos) + 1  # the shortest prefix (in pairs) with a declared conflict
    for t, duo in enumerate(duos):
        ids.update(m.id for m in duo)
        avoided.update(other for m in duo for other in m.avoid)
        if any(m.id in avoided for m in duo) or any(o in ids for m in duo for o in m.avoid):
            clash_from = t + 1
            break
    n = len(duos)
    while n and not _counts_hold(cohort, n, _sets_needed(by_org, n >= clash_from)):
        n -= 1
        keys.pop()
        if by_org is not None:
            for org in orgs[n]:
                by_org[org] -= 1
                if not by_org[org]:
                    del by_org[org]


def feasible_hint(
    instance: Instance,
    candidates: list[Candidate],
    wanted: dict[tuple[str, str], int | None],
    must_place: frozenset[int] = frozenset(),
) -> dict[tuple[str, str], int | None]:
    """A plan close to ``wanted`` (pair -> cohort, e.g. the previous plan) that meets the cohort
    rules (:func:`cohort_ok`): locked pairs in their cohort first, then the wanted placements,
    each cohort dropping its last pairs until its rules hold. Fixed candidates are always in it
    (placed or not), so CP-SAT starts from a feasible plan."""
    people = people_by_id(instance)
    members: dict[int, list[int]] = defaultdict(list)
    for k, c in enumerate(candidates):
        key = (c.patient_leader, c.partner)
        q = c.cohorts[0] if k in must_place and c.cohorts else wanted.get(key)
        if q is not None and q in c.cohorts:
            members[q].append(k)
    for q, ks in members.items():
        ks.sort(key=lambda k: k not in must_place)  # locks stay longest
        drop_last_until_ok(instance, q, candidates, ks, people)
    hint: dict[tuple[str, str], int | None] = {
        (c.patient_leader, c.partner): None
        for c in candidates
        if c.fixed or (c.patient_leader, c.partner) in wanted
    }
    for q, ks in members.items():
        for k in ks:
            hint[candidates[k].patient_leader, candidates[k].partner] = q
    return hint


def greedy_placement(
    instance: Instance, candidates: list[Candidate], rooms: list[int] | None = None
) -> Placement:
    """A quick feasible placement of fixed pairs, for when CP-SAT finds nothing in time.

    Pairs with the fewest cohort options go first, each to the cohort with the most room where
    the cohort rules (:func:`cohort_ok`) can still be met; then each cohort drops its
    last-placed pairs until its rules hold. ``rooms``: pairs each cohort may take, when fewer
    than its capacity. No optimality claim: status ``feasible``.
    """
    room = rooms if rooms is not None else [c.capacity_pairs for c in instance.cohorts]
    order = sorted(range(len(candidates)), key=lambda k: (len(candidates[k].cohorts), k))
    members: dict[int, list[int]] = defaultdict(list)
    for k in order:
        options = [q for q in candidates[k].cohorts if len(members[q]) < room[q]]
        if options:
            q = max(options, key=lambda q: (room[q] - len(members[q]), -q))
            members[q].append(k)
    people = people_by_id(instance)  # once, not once per cohort_ok
    for q, ks in members.items():
        drop_last_until_ok(instance, q, candidates, ks, people)
    cohort_of: dict[int, int | None] = {k: None for k in range(len(candidates))}
    for q, ks in members.items():
        for k in ks:
            cohort_of[k] = q
    return Placement(list(range(len(candidates))), cohort_of, {}, "feasible", None, None)
