"""Placement strategies, chosen by the shape of the job (module docs of
:mod:`matcher.engine.placement.model` for the guarantees):

* decomposition first (:func:`place`): an optimal matching, then an exact placement; when that
  leaves pairs unplaced, the *joint* model chooses pairs and cohorts together, or on large
  intakes the smaller *repair* model re-pairs the people no cohort took;
* against a previous plan (:func:`place_against`): one model with the change levels.

Each returns the candidates, a typed :class:`~matcher.engine.placement.model.Placement` (status,
levels,
bound) and notes in words.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.random import default_rng
from numpy.typing import NDArray
from ortools.graph.python import min_cost_flow

from matcher.contract.rules import (
    one_organisation_per_set,
    organisation_key,
    pair_organisations,
    pairing_rule_breaks,
    set_counts,
    usable_capacity,
)
from matcher.contract.solution import (
    Solution,
)
from matcher.engine.pairing import LoneScan, Pairing, preformed_pairs
from matcher.engine.placement.ceiling import Ceiling, lone_pairs_along, placement_ceiling
from matcher.engine.placement.model import (
    SCORE_SCALE,
    Candidate,
    Placement,
    QualityLevel,
    Replan,
    feasible_hint,
    solve_placement,
)
from matcher.engine.prepare import Prepared
from matcher.engine.progress import Stop
from matcher.engine.replan import (
    previous_pairs,
)
from matcher.engine.scoring import pair_scores, people_by_id
from solvers.assignment import max_weight_matching_sparse

log = logging.getLogger("matcher")

#: Above this many (lone pair × cohort) variables the joint pairing-and-placement model is not
#: attempted; the decomposition's plan is returned as ``feasible`` with a note.
JOINT_MODEL_MAX_VARS = 5_000
#: Largest repair model (lone pair × cohort variables) attempted.
REPAIR_MAX_VARS = 10_000
#: Seconds per level for the repair model (deterministic time in deterministic mode). Measured
#: on a 500-participant intake (deterministic, no wall-clock cap): 3 s -> 30 s wall, lone mean
#: score 0.543, 348 blocking pairs; 6 s -> 55 s wall, 0.546, 296. Both wait-list 6 pairs.
REPAIR_BUDGET = 3.0
#: The joint model's quality level (c) stops within this relative gap of the best bound known
#: (the unconstrained optimal matching's total, or CP-SAT's own bound).
QUALITY_GAP = 0.005
#: Seconds (deterministic time in deterministic mode) for the joint model's quality level. It
#: starts from the flow repair's plan with each cohort's lone pairs re-matched at their best
#: (:func:`matcher.engine.placement.model._polish`), already close: measured on generated 300
#: seed 2, that start is 27,231 against 27,254 after 5 s (25 s wall) of search.
QUALITY_BUDGET = 0.5
#: The joint model's lone pairs: each lone person's best few partners (by score, either side)
#: plus the pairs of the plan it starts from. Measured on generated 300, seeds 0, 2 and 3
#: (quality level from the polished flow-repair plan, 0.5 s deterministic, linearization 2):
#: every allowed pair (2,900-3,100) 27,860 / 27,343 / 29,263 at 1.1-2.2 s of CPU; the best
#: 3 per person (about 260) 28,103 / 27,668 / 29,301 at 0.2-0.3 s.
JOINT_SHORTLIST = 3
#: Joint models up to this many variables run whole, every level to proof as before (the
#: bundled intakes: 112 variables for may2017, proven in well under a second); larger ones run
#: over the shortlist above with the quality level's warm start, budget and gap.
JOINT_WHOLE_MAX_VARS = 500


class Deadline:
    """The whole solve's time limit, handed out to the stages in turn.

    Placement gets half and the cohorts' sets share the other half. In deterministic mode the
    shares are fixed fractions of the limit (never read off the clock), so the budgets, and with
    them the results, do not depend on machine load.
    """

    def __init__(self, limit: float | None, *, deterministic: bool) -> None:
        self.limit = limit
        self.deterministic = deterministic
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def share(self, fraction: float, stages_left: int = 1) -> float | None:
        """Seconds for the next stage: ``fraction`` of the limit (deterministic), or of what is
        left split over ``stages_left`` stages (at least 10 ms)."""
        if self.limit is None:
            return None
        if self.deterministic:
            return max(0.01, self.limit * fraction)
        left = self.limit - (time.perf_counter() - self.start)
        return max(0.01, left / max(stages_left, 1))


def placement_variables(
    scan: LoneScan, r: NDArray[np.int64], c: NDArray[np.int64], *, above: int | None = None
) -> int:
    """Variables of a model over the lone pairs ``(r[k], c[k])``: one per (pair, cohort both can
    attend). Counted cohort by cohort, in O(pairs) memory (an edges x cohorts array was most of
    the peak at 5,000 participants); with ``above``, the count stops once it exceeds that (the
    callers only compare it with a model-size limit: 1.2 s -> 0.05 s at 5,000 participants)."""
    rows, cols = scan.rows.attend, scan.cols.attend
    total = 0
    for q in range(rows.shape[1]):
        total += int(np.count_nonzero(rows[r, q] & cols[c, q]))
        if above is not None and total > above:
            break
    return total


#: The job's settings, handed down to every placement strategy.
@dataclass(frozen=True)
class Job:
    prepared: Prepared
    seed: int
    deterministic: bool
    stop: Stop


def candidates_for(
    job: Job, pairs: list[tuple[str, str]], scores: list[float], *, fixed: bool
) -> list[Candidate]:
    """Candidates with the cohorts both can attend; a lock with a cohort leaves only that one."""
    index, attend = job.prepared.order, job.prepared.attend  # computed once, in prepare
    out = []
    for (a, b), s in zip(pairs, scores, strict=True):
        options = tuple(int(q) for q in np.flatnonzero(attend[index[a]] & attend[index[b]]))
        lock = job.prepared.locks.get((a, b))
        if lock is not None:
            options = (lock,) if lock in options else ()
        out.append(Candidate(a, b, fixed, s, options))
    return out


def must_place(job: Job, candidates: list[Candidate]) -> Replan:
    """Locked pairs with a cohort must be placed in it."""
    return Replan(
        must_place=frozenset(
            k
            for k, c in enumerate(candidates)
            if job.prepared.locks.get((c.patient_leader, c.partner)) is not None
        )
    )


def place(
    job: Job,
    pairing: Pairing,
    *,
    time_limit: float | None,
) -> tuple[list[Candidate], Placement, list[str]]:
    """Decomposition first; the joint model when it leaves pairs unplaced (module docs of
    :mod:`matcher.engine.placement.model`)."""
    instance = job.prepared.effective
    seed, deterministic = job.seed, job.deterministic
    notes: list[str] = list(pairing.scan.notes)
    pre = [(a, b) for a, b, _ in preformed_pairs(instance)]
    scan = pairing.scan
    rows, cols = pairing.matched_rows, pairing.matched_cols
    matched = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(rows, cols, strict=True)]
    matched_scores = pair_scores(instance, matched)[0].tolist()
    fixed = candidates_for(job, pre, [0.0] * len(pre), fixed=True) + candidates_for(
        job, matched, matched_scores, fixed=True
    )
    placement = solve_placement(
        instance,
        fixed,
        seed=seed,
        time_limit=time_limit,
        deterministic=deterministic,
        replan=must_place(job, fixed),
        stop=job.stop,
        # when pairs are left out, the flow repair below re-plans (unless it may not re-pair)
        balance_when_short=not pairing.kind.re_pairs,
    )
    all_placed = all(q is not None for q in placement.cohort_of.values())
    r, c, sc = scan.cand_rows, scan.cand_cols, scan.cand_scores
    if all_placed:
        notes.append("decomposition: optimal matching, then exact placement of every pair")
        if not pairing.kind.most_pairs and len(r):
            # a matching that may form fewer pairs than the most possible (stable): the bound
            # is the most pairs any plan could place, so it comes from the flow ceiling, not
            # this plan
            true = _ceiling(job, pairing, fixed, placement, (r, c), len(pre))
            bound = float(max(true.value, _placed(placement)))
            return fixed, replace(placement, bound=bound), notes
        return fixed, placement, notes
    if placement.status not in ("optimal", "feasible"):
        return fixed, placement, notes
    # run.bound is the most pairs any plan could place, whatever the objective: the ceiling
    # over every allowed lone pair
    true = _ceiling(job, pairing, fixed, placement, (r, c), len(pre))
    ceiling: Ceiling | None = true
    if pairing.bottleneck is not None:  # fair: never re-pair below the worst pair ...
        floor = pairing.bottleneck
        keep = sc >= floor
        ceiling = _ceiling(job, pairing, fixed, placement, (r[keep], c[keep]), len(pre))
        if ceiling.value < true.value:
            # ... unless that keeps pairs out that another pairing would place: the most
            # pairs placed come first, so the floor drops to the highest score that lets the
            # flow ceiling reach the bound
            capped = ceiling.value
            floor, ceiling = _fair_floor(job, pairing, fixed, placement, len(pre), true.value)
            notes.append(
                f"{pairing.kind.name} objective: with no lone pair below "
                f"{pairing.bottleneck:.3f}, at most {capped} pairs could be placed, "
                f"{true.value} otherwise; lone pairs down to {floor:.3f} may be formed so "
                "that the most pairs are placed first"
            )
            keep = sc >= floor
        r, c, sc = r[keep], c[keep], sc[keep]
    unrestricted = len(r) == len(scan.cand_rows)
    if pairing.kind.re_pairs and pairing.bottleneck is None and pairing.exact:
        # (an objective that allows re-pairing and keeps no worst-pair guarantee, which the
        # quota's bonuses could break)
        # one cohort, one organisation per set: the quota re-pairing reaches the ceiling
        # directly (the flow repair ignores the set rules, so it cannot; measured on
        # mentor-match 500 + 500: 1.5 s of CPU for no pair more)
        quota = _organisation_quota_pairing(
            job, pairing, fixed, placement, (r, c, sc), len(pre), time_limit, true.value
        )
        if quota is not None:
            cands, better, note = quota
            notes.append(note)
            return cands, replace(better, status="feasible", bound=float(true.value)), notes
    ceiling, flowed = _flow_repair(
        job, pairing, fixed, placement, (r, c, sc), len(pre), time_limit, ceiling=ceiling
    )
    if not unrestricted and pairing.bottleneck is not None:
        got = _placed(flowed[1]) if flowed is not None else _placed(placement)
        if got < true.value:
            # the floor's ceiling is only an upper bound: when its repair still leaves pairs
            # out, a repair over every allowed pair may place more (most pairs placed first)
            every = (scan.cand_rows, scan.cand_cols, scan.cand_scores)
            _, wider = _flow_repair(
                job, pairing, fixed, placement, every, len(pre), time_limit, ceiling=true
            )
            if wider is not None and _placed(wider[1]) > got:
                notes.append(
                    f"{pairing.kind.name} objective: {got} pairs placed with no lone pair "
                    f"below the floor, {_placed(wider[1])} with every allowed pair open, "
                    "which is kept"
                )
                flowed, ceiling, unrestricted = wider, true, True
                r, c, sc = every
    bound = float(true.value)
    if not pairing.kind.re_pairs:
        notes.append(
            f"{pairing.kind.name} objective: pairs the cohorts cannot take are wait-listed "
            "rather than re-paired (re-pairing would create blocking pairs); not proven to "
            "place the most"
        )
        return fixed, replace(placement, status="feasible", bound=bound), notes
    if flowed is not None:
        fixed, placement, note = flowed
        notes.append(note)
    at_ceiling = _placed(placement) >= ceiling.value
    if at_ceiling and flowed is None and pairing.exact:
        # The optimal matching itself is placed at the ceiling: most pairs placed (a), most
        # formed (b) and the highest total (c), each at its own unconstrained optimum, so no
        # joint model can do better; only level (d), skipped while pairs were short, is left.
        notes.append(
            f"decomposition: optimal matching, then exact placement; {ceiling.value} pairs "
            "placed, the most any plan can place (flow ceiling)"
        )
        if "balance" not in placement.levels:
            placement = _balanced(job, fixed, placement, ceiling.value, time_limit)
        status = "optimal" if placement.status in ("optimal", "feasible") else placement.status
        return fixed, replace(placement, status=status, bound=bound), notes
    # one variable per (lone pair, cohort both can attend)
    size = placement_variables(scan, r, c, above=JOINT_MODEL_MAX_VARS) if pairing.exact else 0
    if at_ceiling and not (pairing.exact and size <= JOINT_MODEL_MAX_VARS):
        notes.append(f"{ceiling.value} pairs placed: the most any plan can place (flow ceiling)")
        return fixed, replace(placement, status="feasible", bound=bound), notes
    if not pairing.exact:
        notes.append(
            "joint pairing-and-placement model skipped on candidate lists; plan from the "
            "decomposition, not proven optimal"
        )
        return fixed, replace(placement, status="feasible", bound=bound), notes
    if size > JOINT_MODEL_MAX_VARS:
        notes.append(
            f"joint pairing-and-placement model skipped (more than {JOINT_MODEL_MAX_VARS} "
            "variables); plan from the decomposition, not proven optimal"
        )
        repaired = _repair(job, pairing, fixed, placement, (r, c, sc), len(pre), time_limit)
        if repaired is not None:
            cands, better, note = repaired
            notes.append(note)
            return cands, replace(better, status="feasible", bound=bound), notes
        return fixed, replace(placement, status="feasible", bound=bound), notes
    # The joint model: only the pre-formed pairs are fixed; the lone pairs open are each
    # person's best few and those of the plan it starts from (the bound on (c) is over every
    # allowed lone pair).
    if size <= JOINT_WHOLE_MAX_VARS:
        candidates, joint = _replan(
            job,
            pairing,
            fixed,
            placement,
            fixed[: len(pre)],
            (r, c, sc),
            time_limit=time_limit,
            ceiling=ceiling.value,
        )
        return _joint_outcome(fixed, placement, candidates, joint, bound, notes, unrestricted)
    upper = lone_upper_bound(r, c, sc)
    start_pairs = {(f.patient_leader, f.partner) for f in fixed[len(pre) :]}
    short = _shortlist(scan, (r, c, sc), start_pairs, JOINT_SHORTLIST)
    candidates, joint = _replan(
        job,
        pairing,
        fixed,
        placement,
        fixed[: len(pre)],
        (r[short], c[short], sc[short]),
        time_limit=time_limit,
        ceiling=ceiling.value,
        quality=QualityLevel(
            upper=upper,
            gap=QUALITY_GAP,
            budget=QUALITY_BUDGET,
            linearization=2,
            restricted=not bool(short.all()),
        ),
        balance=False,
    )
    if (
        not unrestricted
        and pairing.bottleneck is not None
        and _placed(joint) < true.value
        and joint.status in ("optimal", "feasible")
    ):
        # the set rules (which the flow ceiling leaves out) may be what keeps pairs out above
        # the floor: the joint model over every allowed pair places the most first
        every = (scan.cand_rows, scan.cand_cols, scan.cand_scores)
        wide_candidates, wide = _replan(
            job,
            pairing,
            fixed,
            placement,
            fixed[: len(pre)],
            every,
            time_limit=time_limit,
            ceiling=true.value,
        )
        if wide.status in ("optimal", "feasible") and _placed(wide) > _placed(joint):
            notes.append(
                f"{pairing.kind.name} objective: {_placed(joint)} pairs placed with no lone "
                f"pair below the floor, {_placed(wide)} with every allowed pair open, which is kept"
            )
            # pairs below the floor: the worst pair is no longer proven best
            candidates, unrestricted = wide_candidates, True
            joint = replace(wide, status="feasible")
    if joint.status in ("optimal", "feasible"):
        # level (d) over the pairs the joint model chose, as fixed pairs: a far smaller model
        # (the joint one often found no balanced plan at all in its budget)
        chosen = [replace(candidates[k], fixed=True) for k in joint.formed]
        where = {i: joint.cohort_of.get(k) for i, k in enumerate(joint.formed)}
        placed_joint = replace(joint, formed=list(range(len(chosen))), cohort_of=where)
        balanced = _balanced(job, chosen, placed_joint, _placed(joint), time_limit)
        candidates = chosen
        joint = replace(
            balanced,
            status=joint.status,
            levels={**joint.levels, **{k: v for k, v in balanced.levels.items() if k == "balance"}},
        )
    return _joint_outcome(fixed, placement, candidates, joint, bound, notes, unrestricted)


def _joint_outcome(
    fixed: list[Candidate],
    placement: Placement,
    candidates: list[Candidate],
    joint: Placement,
    bound: float,
    notes: list[str],
    unrestricted: bool,
) -> tuple[list[Candidate], Placement, list[str]]:
    """The joint model's plan when it is at least as good as the decomposition's, else the
    decomposition's, with the note saying which. ``unrestricted``: every allowed pair was open
    to the joint model (only then does its own bound hold for every plan)."""
    if joint.status not in ("optimal", "feasible") or _placed(joint) < _placed(placement):
        notes.append("joint model found nothing better in the time limit")
        return fixed, replace(placement, status="feasible", bound=bound), notes
    notes.append(
        "joint pairing-and-placement model (CP-SAT): pairs and cohorts chosen together, "
        "because the optimal matching's pairs could not all be placed"
    )
    # the joint model's own bound holds for every plan only when every allowed pair was open
    if unrestricted:
        bound = min(bound, joint.bound or bound)
    return candidates, replace(joint, bound=bound), notes


def _shortlist(
    scan: LoneScan,
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    keep_pairs: set[tuple[str, str]],
    per_person: int,
) -> NDArray[np.bool_]:
    """Mask of the lone pairs that are among either member's ``per_person`` best (highest
    score, then lower index), or in ``keep_pairs``."""
    r, c, sc = lone_edges
    keep = np.zeros(len(r), dtype=bool)
    for side in (r, c):
        order = np.lexsort((np.arange(len(r)), -sc, side))  # by person, best first
        ranked = side[order]
        first = np.searchsorted(ranked, ranked, side="left")
        rank = np.arange(len(r)) - first
        keep[order[rank < per_person]] = True
    if keep_pairs:
        rows, cols = scan.rows.ids, scan.cols.ids
        keep |= np.fromiter(
            ((rows[i], cols[j]) in keep_pairs for i, j in zip(r, c, strict=True)),
            dtype=bool,
            count=len(r),
        )
    return keep


def lone_upper_bound(r: NDArray[np.int64], c: NDArray[np.int64], sc: NDArray[np.float64]) -> int:
    """The highest total of any matching over the lone pairs ``(r[k], c[k])``, in the placement
    model's integer units (each score rounded to ``1 / SCORE_SCALE``, as that model counts it),
    whatever the cohorts: an upper bound on its quality level (c). Exact, by one min-cost flow
    with a zero-cost bypass (so any number of pairs may be formed)."""
    if not len(r):
        return 0
    rows, r_i = np.unique(r, return_inverse=True)
    cols, c_i = np.unique(c, return_inverse=True)
    w = np.round(sc * SCORE_SCALE).astype(np.int64)
    keep = w > 0
    n_r, n_c = len(rows), len(cols)
    source, sink = n_r + n_c, n_r + n_c + 1
    flow = min_cost_flow.SimpleMinCostFlow()
    supply = min(n_r, n_c)
    tails = np.concatenate(
        [np.full(n_r, source), r_i[keep], n_r + np.arange(n_c), [source]]
    ).astype(np.int64)
    heads = np.concatenate([np.arange(n_r), n_r + c_i[keep], np.full(n_c, sink), [sink]]).astype(
        np.int64
    )
    caps = np.concatenate([np.ones(n_r + int(keep.sum()) + n_c), [supply]]).astype(np.int64)
    costs = np.concatenate([np.zeros(n_r), -w[keep], np.zeros(n_c), [0]]).astype(np.int64)
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    flow.set_node_supply(source, supply)
    flow.set_node_supply(sink, -supply)
    if flow.solve() != flow.OPTIMAL:  # cannot happen: the bypass carries any flow
        return int(w[keep].sum())
    return int(-flow.optimal_cost())


def _balanced(
    job: Job,
    fixed: list[Candidate],
    placement: Placement,
    ceiling: int,
    time_limit: float | None,
) -> Placement:
    """Level (d), preferences and balance, for a plan of fixed pairs that places ``ceiling``
    pairs: the exact placement model started from it (which holds it at that many placed); the
    plan as it was when that finds nothing in its budget."""
    plan = {(f.patient_leader, f.partner): placement.cohort_of.get(k) for k, f in enumerate(fixed)}
    balanced = solve_placement(
        job.prepared.effective,
        fixed,
        seed=job.seed,
        time_limit=time_limit,
        deterministic=job.deterministic,
        hint=plan,
        replan=must_place(job, fixed),
        stop=job.stop,
        ceiling=ceiling,
    )
    if balanced.status in ("optimal", "feasible") and _placed(balanced) >= ceiling:
        return balanced
    return placement


def _placed(placement: Placement) -> int:
    return sum(q is not None for q in placement.cohort_of.values())


def _ceiling(
    job: Job,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64]],
    n_pre: int,
) -> Ceiling:
    """The flow ceiling (:func:`matcher.engine.placement.ceiling.placement_ceiling`) with the
    lone applicants free to pair along ``lone_edges``; the first ``n_pre`` of ``fixed`` are the
    pre-formed pairs, the rest the matched lone pairs (placed as in ``placement``)."""
    scan = pairing.scan
    units = fixed[:n_pre]
    unit_current = [placement.cohort_of.get(k) for k in range(n_pre)]
    row_now: dict[int, int] = {}
    col_now: dict[int, int] = {}
    for k in range(n_pre, len(fixed)):
        q = placement.cohort_of.get(k)
        if q is not None:
            row_now[scan.rows.index[fixed[k].patient_leader]] = q
            col_now[scan.cols.index[fixed[k].partner]] = q
    locked = {
        k
        for k, u in enumerate(units)
        if job.prepared.locks.get((u.patient_leader, u.partner)) is not None
    }
    return placement_ceiling(
        job.prepared.effective,
        pairing,
        units,
        unit_current,
        lone_edges,
        (row_now, col_now),
        locked,
    )


def _fair_floor(
    job: Job, pairing: Pairing, fixed: list[Candidate], placement: Placement, n_pre: int, most: int
) -> tuple[float, Ceiling]:
    """``fair`` when its worst pair keeps pairs out: the highest lone-pair score ``floor`` such
    that, pairing only along lone pairs scoring at least ``floor``, the flow ceiling still
    reaches ``most`` (the ceiling over every allowed pair), found by a binary search over the
    distinct scores (the ceiling only grows as the floor drops); with that ceiling."""
    scan = pairing.scan
    levels = np.unique(scan.cand_scores)
    lo, hi = 0, len(levels) - 1  # levels[0] keeps every allowed pair: the ceiling is `most`
    found: Ceiling | None = None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        keep = scan.cand_scores >= levels[mid]
        edges = (scan.cand_rows[keep], scan.cand_cols[keep])
        at = _ceiling(job, pairing, fixed, placement, edges, n_pre)
        if at.value >= most:
            lo, found = mid, at
        else:
            hi = mid - 1
    floor = float(levels[lo])
    if found is None:
        keep = scan.cand_scores >= floor
        found = _ceiling(
            job, pairing, fixed, placement, (scan.cand_rows[keep], scan.cand_cols[keep]), n_pre
        )
    return floor, found


def _step_check(stop: Stop, what: str) -> Callable[[str], object]:
    """A sparse matching's ``on_step``: a check of ``stop`` between the matching's steps
    (progress, and a cancel noticed; its OR-Tools calls themselves cannot be interrupted)."""
    return lambda step: stop.check(f"placement: {what}, matching: {step}")


def _flow_repair(
    job: Job,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    n_pre: int,
    time_limit: float | None,
    *,
    ceiling: Ceiling | None = None,
) -> tuple[Ceiling, tuple[list[Candidate], Placement, str] | None]:
    """The flow ceiling on pairs placed (:func:`matcher.engine.placement.ceiling.placement_ceiling`)
    and, when the plan is below it, a re-pairing that follows a ceiling flow: the pre-formed
    pairs go where it puts them, the lone people into cohorts (one side as the flow puts it,
    or both sides in equal numbers per cohort, whichever pairs more) and are paired inside
    each cohort by an exact maximum-weight matching (most pairs, then highest total); the
    exact placement model then places the new pairs and the pre-formed ones (hinted with those
    cohorts). Returns the ceiling and the new
    candidates, placement and note when that places more pairs, else None. Linear-size
    models only: two min-cost flows, one sparse matching and the fixed-pairs placement."""
    instance = job.prepared.effective
    scan = pairing.scan
    r, c, sc = lone_edges
    units = fixed[:n_pre]
    if ceiling is None:
        ceiling = _ceiling(job, pairing, fixed, placement, (r, c), n_pre)
    before = _placed(placement)
    if before >= ceiling.value or not pairing.kind.re_pairs or not len(r):
        return ceiling, None
    if not job.stop.check("placement: flow repair"):
        return ceiling, None
    # Units where a ceiling flow puts them; lone people paired inside each cohort by an exact
    # maximum-weight matching, either (a) the flow's side staying in its cohorts with partners
    # free to join them (flexible on sparse candidate lists), or (b) both sides put into the
    # cohorts in equal numbers first (better when one side's flow over-fills a cohort).
    shape = (len(scan.rows.ids), len(scan.cols.ids))
    best: tuple[int, NDArray[np.int64], list[list[int]], list[int]] | None = None
    for side, unit_cohort, lone_cohort in ceiling.flows:
        q_e = lone_cohort[c] if side == "cols" else lone_cohort[r]
        # whether the other side can attend that cohort, read edge by edge (not through an
        # edges x cohorts copy: 0.5 s at 5,000 participants, during which no other Python
        # thread, the progress heartbeat included, could run)
        other, ends = (scan.rows.attend, r) if side == "cols" else (scan.cols.attend, c)
        one_sided = (q_e >= 0) & (other[ends, np.maximum(q_e, 0)] != 0)
        row_q, col_q = lone_pairs_along(ceiling, unit_cohort)
        for ok, cohort_of in ((one_sided, None), ((row_q[r] >= 0) & (row_q[r] == col_q[c]), row_q)):
            matched = max_weight_matching_sparse(
                r[ok], c[ok], sc[ok], shape, on_step=_step_check(job.stop, "flow repair")
            ).tolist()
            if cohort_of is not None:
                where = [int(cohort_of[i]) for i, _ in matched]
            else:
                where = [int(lone_cohort[j if side == "cols" else i]) for i, j in matched]
            total = int((unit_cohort >= 0).sum()) + len(matched)
            if best is None or total > best[0]:
                best = (total, unit_cohort, matched, where)
            if total >= ceiling.value:
                break
        if best is not None and best[0] >= ceiling.value:
            break
    assert best is not None
    _, unit_cohort, matched, where = best
    pairs = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in matched]
    # the matched pairs' scores (the one score formula), not a map over every allowed pair
    scores = pair_scores(instance, pairs)[0].tolist() if pairs else []
    lone = candidates_for(job, pairs, scores, fixed=True)
    candidates = units + lone
    wanted: dict[tuple[str, str], int | None] = {}
    for k, u in enumerate(units):
        q = int(unit_cohort[k])
        wanted[u.patient_leader, u.partner] = q if q >= 0 else None
    for q, key in zip(where, pairs, strict=True):
        wanted[key] = q
    keep = must_place(job, candidates)
    result = solve_placement(
        instance,
        candidates,
        seed=job.seed,
        time_limit=time_limit,
        deterministic=job.deterministic,
        hint=feasible_hint(instance, candidates, wanted, keep.must_place),
        replan=keep,
        stop=job.stop,
        ceiling=ceiling.value,
    )
    after = _placed(result) if result.status in ("optimal", "feasible") else 0
    if after <= before:
        return ceiling, None
    return ceiling, (
        candidates,
        result,
        f"flow repair: lone applicants re-paired along the flow ceiling's cohorts; pairs placed "
        f"{before} -> {after} (ceiling {ceiling.value})",
    )


#: Rounds of the organisation-quota re-pairing (each one exact matching): the bonus on the
#: pairs within an organisation grows until every organisation is in at most as many pairs as
#: the cohort has sets (measured on mentor-match 500 + 500: 3-6 rounds).
QUOTA_ROUNDS = 40
#: How much a round raises an organisation's bonus per pair it is over its quota (scores are
#: in [0, 1]).
QUOTA_STEP = 0.01
#: Bisection steps on each organisation's share of the final bonus.
QUOTA_BISECTIONS = 8


def _organisation_quota_pairing(
    job: Job,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    n_pre: int,
    time_limit: float | None,
    ceiling: int,
) -> tuple[list[Candidate], Placement, str] | None:
    """One cohort, one organisation per set, pairs left out by that rule alone: re-pair the lone
    applicants so that every organisation is in at most as many pairs as the cohort has sets.

    With everyone in one cohort of ``s`` sets, an organisation can be in at most ``s`` pairs;
    a pair within one organisation counts once, so pairing some people inside their own
    organisation is what lets a dominant one fit (mentor-match: 181 people of one department,
    166 sets). A Lagrangian search: exact maximum-weight matchings (most pairs first, then the
    highest total) with a bonus on the pairs within each organisation that is over its quota,
    raised each round by how far over it is, until none is (``QUOTA_ROUNDS`` at most); then the
    exact placement of the pairs found. Returns the candidates, placement and note when that
    places more pairs than ``placement`` (and reaches ``ceiling``), else None. Each round is
    one matching (about 10 ms at 500 per side), where the repair model's search took seconds
    and depended on its budget.
    """
    instance = job.prepared.effective
    if len(instance.cohorts) != 1 or not one_organisation_per_set(instance):
        return None
    if not pairing.kind.re_pairs or not job.stop.check("placement: organisation quota"):
        return None
    scan = pairing.scan
    r, c, sc = lone_edges
    if not len(r):
        return None
    cohort = instance.cohorts[0]
    people = people_by_id(instance)
    orgs: dict[str, int] = {}
    row_org = np.array(
        [orgs.setdefault(organisation_key(people[x]), len(orgs)) for x in scan.rows.ids]
    )
    col_org = np.array(
        [orgs.setdefault(organisation_key(people[x]), len(orgs)) for x in scan.cols.ids]
    )
    units = fixed[:n_pre]
    unit_orgs = [
        [orgs.setdefault(key, len(orgs)) for key in sorted(pair_organisations(duo))]
        for duo in ((people[u.patient_leader], people[u.partner]) for u in units)
    ]
    unit_count = np.zeros(len(orgs), dtype=np.int64)
    for keys in unit_orgs:
        unit_count[keys] += 1
    within = row_org[r] == col_org[c]
    bonus = np.zeros(len(orgs), dtype=np.float64)
    shape = (len(scan.rows.ids), len(scan.cols.ids))
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    room = usable_capacity(cohort)

    # Each inner pair gets its own share (1/2 to 1, from the seed) of its organisation's bonus:
    # scores tie often, and with one bonus for all, every tied inner pair would change at once.
    spread = 0.5 + 0.5 * default_rng(job.seed).random(len(r))

    def attempt(extra: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The matching with the bonus ``extra`` on each organisation's inner pairs, and how
        far over its quota each organisation is (all <= 0: it fits)."""
        weights = sc + np.where(within, extra[row_org[r]] * spread, 0.0)
        matched = max_weight_matching_sparse(
            r, c, weights, shape, on_step=_step_check(job.stop, "organisation quota")
        )
        total = n_pre + len(matched)
        sets = max(set_counts(lo, hi, min(total, room)), default=0)
        mi, mj = matched[:, 0], matched[:, 1]
        count = unit_count.copy()
        np.add.at(count, row_org[mi], 1)
        np.add.at(count, col_org[mj], 1)
        np.subtract.at(count, row_org[mi][row_org[mi] == col_org[mj]], 1)
        over = count - sets
        if total > room:
            over = np.maximum(over, 1)
        return matched, over

    found = None
    for _ in range(QUOTA_ROUNDS):
        matched, over = attempt(bonus)
        if (over <= 0).all():
            found = matched
            break
        bonus += QUOTA_STEP * np.maximum(over, 0)
        if not job.stop.check("placement: organisation quota"):
            return None
    if found is None:
        return None
    # The last round's bonus may be more than the quotas need: organisation by organisation,
    # the smallest share of it that still fits (bisection), so that no more people than
    # needed leave their best partner.
    for o in np.flatnonzero(bonus > 0).tolist():
        if not job.stop.check("placement: organisation quota"):
            break  # out of time or cancelled: the fitting pairing found so far
        low, high = 0.0, 1.0
        for _ in range(QUOTA_BISECTIONS):
            mid = (low + high) / 2
            trial = bonus.copy()
            trial[o] *= mid
            matched, over = attempt(trial)
            if (over <= 0).all():
                high, found = mid, matched
            else:
                low = mid
        bonus[o] *= high
    pairs = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in found.tolist()]
    scores = pair_scores(instance, pairs)[0].tolist() if pairs else []
    candidates = units + candidates_for(job, pairs, scores, fixed=True)
    result = solve_placement(
        instance,
        candidates,
        seed=job.seed,
        time_limit=time_limit,
        deterministic=job.deterministic,
        replan=must_place(job, candidates),
        stop=job.stop,
        ceiling=ceiling,
    )
    before = _placed(placement)
    after = _placed(result) if result.status in ("optimal", "feasible") else 0
    if after <= before or after < ceiling:
        return None
    note = (
        f"organisation quota: lone applicants re-paired so that no organisation is in more "
        f"pairs than the cohort has sets ({int(found.shape[0])} pairs, "
        f"{int((row_org[found[:, 0]] == col_org[found[:, 1]]).sum())} within one organisation); "
        f"pairs placed {before} -> {after} (ceiling {ceiling})"
    )
    return candidates, result, note


#: Largest re-plan model (lone pair × cohort variables) over every allowed lone pair; above it,
#: the lone pairs are the previous plan's and those of people free in it (not proven minimal).
REPLAN_MAX_VARS = 20_000


def place_against(
    job: Job, pairing: Pairing, prev: Solution, *, time_limit: float | None
) -> tuple[list[Candidate], Placement, list[str], bool]:
    """Placement with the fewest changes to ``prev`` (after the most pairs placed): one CP-SAT
    model over the pre-formed and locked pairs, the previous plan's lone pairs that are still
    allowed, and the other allowed lone pairs, hinted with the previous plan. Returns the
    candidates, the placement, notes and whether the change count is proven minimal."""
    eff = job.prepared.effective
    scan = pairing.scan
    notes = list(scan.notes)
    before = previous_pairs(prev)
    cohort_index = {c.id: q for q, c in enumerate(eff.cohorts)}
    pre = [(a, b) for a, b, _ in preformed_pairs(eff)]
    fixed = candidates_for(job, pre, [0.0] * len(pre), fixed=True)
    # the previous plan's lone pairs that may still be formed
    people = job.prepared.people
    survivors = [
        key
        for key in before
        if key[0] in scan.rows.index
        and key[1] in scan.cols.index
        and not pairing_rule_breaks(eff, people[key[0]], people[key[1]])
    ]
    r, c, sc = scan.cand_rows, scan.cand_cols, scan.cand_scores
    if pairing.bottleneck is not None:  # fair: never re-pair below the proven worst pair
        keep_edge = sc >= pairing.bottleneck
        r, c, sc = r[keep_edge], c[keep_edge], sc[keep_edge]
    size = placement_variables(scan, r, c, above=REPLAN_MAX_VARS)
    minimal = pairing.exact and size <= REPLAN_MAX_VARS
    if not minimal:
        busy = {x for key in survivors for x in key}
        free_r = np.array([pid not in busy for pid in scan.rows.ids], dtype=bool)
        free_c = np.array([pid not in busy for pid in scan.cols.ids], dtype=bool)
        edge = free_r[r] | free_c[c] if len(r) else np.zeros(0, dtype=bool)
        r, c, sc = r[edge], c[edge], sc[edge]
        notes.append(
            "re-plan over the previous pairs and the pairs of people free in it "
            f"({len(r)} lone pairs); the fewest changes are not proven"
        )
    edges = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(r, c, strict=True)]
    present = set(edges)
    extra = [key for key in survivors if key not in present]
    edges += extra
    scores = sc.tolist() + pair_scores(eff, extra)[0].tolist()
    candidates = fixed + candidates_for(job, edges, scores, fixed=False)
    index = {(x.patient_leader, x.partner): k for k, x in enumerate(candidates)}
    spec = Replan(
        keep=frozenset(index[key] for key in survivors if key in index),
        stay={
            index[key]: cohort_index[p.cohort]
            for key, p in before.items()
            if key in index and p.cohort in cohort_index
        },
        must_place=must_place(job, candidates).must_place,
    )
    wanted = {key: cohort_index.get(p.cohort or "") for key, p in before.items() if key in index}
    # the fresh matching's pairs of people the previous plan leaves free, each in the cohort
    # with the most room, so that CP-SAT starts from a plan that places as many as it can
    busy = {x for key in wanted for x in key}
    room = {q: c.capacity_pairs for q, c in enumerate(eff.cohorts)}
    for q in wanted.values():
        if q is not None:
            room[q] -= 1
    for i, j in zip(pairing.matched_rows, pairing.matched_cols, strict=True):
        key = (scan.rows.ids[i], scan.cols.ids[j])
        if key not in index or key[0] in busy or key[1] in busy:
            continue
        options = candidates[index[key]].cohorts
        best = max(options, key=lambda q: (room[q], -q), default=None)
        if best is not None and room[best] > 0:
            room[best] -= 1
            wanted[key] = best
        else:
            wanted[key] = None
    hint = feasible_hint(eff, candidates, wanted, spec.must_place)
    placement = solve_placement(
        eff,
        candidates,
        seed=job.seed,
        time_limit=time_limit,
        deterministic=job.deterministic,
        hint=hint,
        replan=spec,
        stop=job.stop,
    )
    notes.append(
        "re-plan against the previous plan: most pairs placed, then fewest pairs dissolved, "
        "then fewest moved to another cohort (CP-SAT)"
    )
    return candidates, placement, notes, minimal and placement.status == "optimal"


def _replan(
    job: Job,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    kept: list[Candidate],
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    *,
    time_limit: float | None,
    default_budget: float = 0.0,
    ceiling: int | None = None,
    quality: QualityLevel | None = None,
    balance: bool = True,
) -> tuple[list[Candidate], Placement]:
    """Pairs and cohorts chosen together: the ``kept`` pairs stay formed, the lone pairs
    ``lone_edges`` (row, column, score indices into the scan) are open; CP-SAT starts from the
    decomposition's plan (``fixed`` placed as in ``placement``)."""
    scan = pairing.scan
    r, c, sc = lone_edges
    edges = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(r, c, strict=True)]
    candidates = kept + candidates_for(job, edges, sc.tolist(), fixed=False)
    start = {(f.patient_leader, f.partner): placement.cohort_of[k] for k, f in enumerate(fixed)}
    result = solve_placement(
        job.prepared.effective,
        candidates,
        seed=job.seed,
        time_limit=time_limit,
        deterministic=job.deterministic,
        hint=start,
        default_budget=default_budget,
        replan=must_place(job, candidates),
        stop=job.stop,
        ceiling=ceiling,
        quality=quality,
        balance=balance,
    )
    return candidates, result


def _repair(
    job: Job,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    n_pre: int,
    time_limit: float | None,
) -> tuple[list[Candidate], Placement, str] | None:
    """A smaller joint model when the whole one is too big: everyone who applied alone and is
    not in a placed pair (unmatched, or in a pair no cohort took), and the placed lone pairs
    one of whose members could pair with them, may be re-paired; other pairs stay formed
    (their cohorts may still change). Starts from the decomposition's plan, so it never places
    fewer pairs. None when even this model is too big or finds nothing."""
    scan = pairing.scan
    r_all, c_all, sc_all = lone_edges
    placed_all = {k for k, q in placement.cohort_of.items() if q is not None}
    for hop in (True, False):  # with the one-hop neighbourhood first, then without if too big
        placed = set(placed_all)
        busy = {x for k in placed for x in (fixed[k].patient_leader, fixed[k].partner)}
        free_r = np.array([pid not in busy for pid in scan.rows.ids], dtype=bool)
        free_c = np.array([pid not in busy for pid in scan.cols.ids], dtype=bool)
        r, c = r_all, c_all
        if hop and len(r):
            # a placed lone pair one of whose members could pair with a free person is opened
            # up too (both members may be re-paired), so pairs can swap partners
            pair_of = {
                x: k
                for k in placed
                if k >= n_pre
                for x in (fixed[k].patient_leader, fixed[k].partner)
            }
            touch = free_r[r] ^ free_c[c]
            ends = [scan.rows.ids[i] for i in r[touch & ~free_r[r]]]
            ends += [scan.cols.ids[j] for j in c[touch & ~free_c[c]]]
            opened = {pair_of[x] for x in ends if x in pair_of}
            for k in opened:
                free_r[scan.rows.index[fixed[k].patient_leader]] = True
                free_c[scan.cols.index[fixed[k].partner]] = True
            placed -= opened
        keep = free_r[r] & free_c[c] if len(r) else np.zeros(0, dtype=bool)
        r, c, sc = r[keep], c[keep], sc_all[keep]
        size = placement_variables(scan, r, c, above=REPAIR_MAX_VARS)
        if 0 < size <= REPAIR_MAX_VARS:
            break
    else:
        return None
    kept = [f for k, f in enumerate(fixed) if k < n_pre or k in placed]
    candidates, result = _replan(
        job,
        pairing,
        fixed,
        placement,
        kept,
        (r, c, sc),
        time_limit=None if time_limit is None else min(REPAIR_BUDGET, time_limit),
        default_budget=REPAIR_BUDGET,
        # the quality level as in the joint model: from the polished plan, a short budget,
        # stopping at a proven gap (measured on mentor-match 500 + 500: 8.5 s of CPU for the
        # default budget)
        quality=QualityLevel(
            upper=lone_upper_bound(r, c, sc), gap=QUALITY_GAP, budget=QUALITY_BUDGET
        ),
    )
    if result.status not in ("optimal", "feasible"):
        return None
    before = len(placed_all)
    after = sum(q is not None for q in result.cohort_of.values())
    if after < before:  # cannot happen from a feasible hint, but never accept a worse plan
        return None
    free = int(free_r.sum() + free_c.sum())
    return (
        candidates,
        result,
        f"repair model: {free} people not in a placed pair could be re-paired ({size} "
        f"variables); pairs placed {before} -> {after}",
    )
