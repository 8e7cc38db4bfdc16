"""The solve pipeline: validated instance → pairs → cohorts → action-learning sets → solution.

The caller verifies the solution (:func:`matcher.verify.verify`); the CLI always does.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from matcher.diagnose import diagnose_cohorts, diagnose_no_placement
from matcher.diff import plan_changes
from matcher.errors import (
    Conflict,
    Infeasible,
    InternalError,
    InvalidParameter,
    MatcherError,
    NoPlanInTime,
)
from matcher.explain import pair_reasons, unmatched_reason
from matcher.learning_sets import _in_conflict, _shares_organisation, form_sets, pair_distance
from matcher.metrics import solution_metrics
from matcher.pairing import OBJECTIVES, PROPOSERS, Pairing, pair_lone_applicants, preformed_pairs
from matcher.placement import (
    Candidate,
    Placement,
    Replan,
    Stop,
    diagnose_locks,
    solve_placement,
)
from matcher.placement_scale import complete_pairing, pressure_note, set_rule_pressure
from matcher.prepare import Prepared, prepare
from matcher.progress import ProgressCallback, Reporter
from matcher.replan import (
    KEEP_SETS_MAX_PAIRS,
    PreviousPlan,
    keep_sets,
    load_previous,
    new_set_ids,
    pair_ids,
    previous_pairs,
)
from matcher.rules import pairing_rule_breaks
from matcher.schema import Instance, Participant
from matcher.scoring import CRITERIA, attendance_matrix, pair_scores
from matcher.solution import (
    CohortPlan,
    LearningSet,
    Pair,
    RunInfo,
    Solution,
    Status,
    Unmatched,
    Waitlisted,
)

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


def matcher_version() -> str:
    try:
        return version("matcher")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


#: The job's settings, handed down to every placement strategy.
@dataclass(frozen=True)
class Job:
    prepared: Prepared
    seed: int
    deterministic: bool
    stop: Stop


def _candidates(
    job: Job, pairs: list[tuple[str, str]], scores: list[float], *, fixed: bool
) -> list[Candidate]:
    """Candidates with the cohorts both can attend; a lock with a cohort leaves only that one."""
    instance = job.prepared.effective
    index = {p.id: i for i, p in enumerate(instance.participants)}
    attend = attendance_matrix(instance, instance.participants)
    out = []
    for (a, b), s in zip(pairs, scores, strict=True):
        options = tuple(int(q) for q in np.flatnonzero(attend[index[a]] & attend[index[b]]))
        lock = job.prepared.locks.get((a, b))
        if lock is not None:
            options = (lock,) if lock in options else ()
        out.append(Candidate(a, b, fixed, s, options))
    return out


def _must_place(job: Job, candidates: list[Candidate]) -> Replan:
    """Locked pairs with a cohort must be placed in it."""
    return Replan(
        must_place=frozenset(
            k
            for k, c in enumerate(candidates)
            if job.prepared.locks.get((c.patient_leader, c.partner)) is not None
        )
    )


def _place(
    job: Job,
    pairing: Pairing,
    *,
    time_limit: float | None,
) -> tuple[list[Candidate], Placement, list[str]]:
    """Decomposition first; the joint model when it leaves pairs unplaced (module docs of
    :mod:`matcher.placement`)."""
    instance = job.prepared.effective
    seed, deterministic = job.seed, job.deterministic
    notes: list[str] = list(pairing.scan.notes)
    pre = [(a, b) for a, b, _ in preformed_pairs(instance)]
    scan = pairing.scan
    rows, cols = pairing.matched_rows, pairing.matched_cols
    matched = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(rows, cols, strict=True)]
    matched_scores = pair_scores(instance, matched)[0].tolist()
    fixed = _candidates(job, pre, [0.0] * len(pre), fixed=True) + _candidates(
        job, matched, matched_scores, fixed=True
    )
    placement = solve_placement(
        instance,
        fixed,
        seed=seed,
        time_limit=time_limit,
        deterministic=deterministic,
        replan=_must_place(job, fixed),
        stop=job.stop,
    )
    all_placed = all(q is not None for q in placement.cohort_of.values())
    if all_placed:
        notes.append("decomposition: optimal matching, then exact placement of every pair")
        return fixed, placement, notes
    if placement.status not in ("optimal", "feasible"):
        return fixed, placement, notes
    if pairing.objective == "stable":
        notes.append(
            "stable objective: pairs the cohorts cannot take are wait-listed rather than "
            "re-paired (re-pairing would create blocking pairs); not proven to place the most"
        )
        return fixed, replace(placement, status="feasible"), notes
    if not pairing.exact:
        notes.append(
            "joint pairing-and-placement model skipped on candidate lists; plan from the "
            "decomposition, not proven optimal"
        )
        return fixed, replace(placement, status="feasible"), notes
    r, c, sc = scan.cand_rows, scan.cand_cols, scan.cand_scores
    if pairing.bottleneck is not None:  # fair: never re-pair below the proven worst pair
        keep = sc >= pairing.bottleneck
        r, c, sc = r[keep], c[keep], sc[keep]
    # one variable per (lone pair, cohort both can attend)
    size = int((scan.rows.attend[r] * scan.cols.attend[c]).sum())
    if size > JOINT_MODEL_MAX_VARS:
        notes.append(
            f"joint pairing-and-placement model skipped ({size} variables > "
            f"{JOINT_MODEL_MAX_VARS}); plan from the decomposition, not proven optimal"
        )
        repaired = _repair(job, pairing, fixed, placement, (r, c, sc), len(pre), time_limit)
        if repaired is not None:
            cands, better, note = repaired
            notes.append(note)
            return cands, replace(better, status="feasible"), notes
        return fixed, replace(placement, status="feasible"), notes
    # The whole joint model: only the pre-formed pairs are fixed; every allowed lone pair is open.
    candidates, joint = _replan(
        job, pairing, fixed, placement, fixed[: len(pre)], (r, c, sc), time_limit=time_limit
    )
    if joint.status not in ("optimal", "feasible"):
        notes.append("joint model found nothing in the time limit; plan from the decomposition")
        return (
            fixed,
            replace(placement, status="feasible"),
            notes,
        )
    notes.append("joint pairing-and-placement model (CP-SAT): some pairs could not all be placed")
    return candidates, joint, notes


#: Largest re-plan model (lone pair × cohort variables) over every allowed lone pair; above it,
#: the lone pairs are the previous plan's and those of people free in it (not proven minimal).
REPLAN_MAX_VARS = 20_000


def _place_against(
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
    fixed = _candidates(job, pre, [0.0] * len(pre), fixed=True)
    # the previous plan's lone pairs that may still be formed
    people = eff.participants_by_id()
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
    size = int((scan.rows.attend[r] * scan.cols.attend[c]).sum())
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
    candidates = fixed + _candidates(job, edges, scores, fixed=False)
    index = {(x.patient_leader, x.partner): k for k, x in enumerate(candidates)}
    spec = Replan(
        keep=frozenset(index[key] for key in survivors if key in index),
        stay={
            index[key]: cohort_index[p.cohort]
            for key, p in before.items()
            if key in index and p.cohort in cohort_index
        },
        must_place=_must_place(job, candidates).must_place,
    )
    hint = {key: cohort_index.get(p.cohort or "") for key, p in before.items() if key in index}
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
) -> tuple[list[Candidate], Placement]:
    """Pairs and cohorts chosen together: the ``kept`` pairs stay formed, the lone pairs
    ``lone_edges`` (row, column, score indices into the scan) are open; CP-SAT starts from the
    decomposition's plan (``fixed`` placed as in ``placement``)."""
    scan = pairing.scan
    r, c, sc = lone_edges
    edges = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(r, c, strict=True)]
    candidates = kept + _candidates(job, edges, sc.tolist(), fixed=False)
    start = {(f.patient_leader, f.partner): placement.cohort_of[k] for k, f in enumerate(fixed)}
    result = solve_placement(
        job.prepared.effective,
        candidates,
        seed=job.seed,
        time_limit=time_limit,
        deterministic=job.deterministic,
        hint=start,
        default_budget=default_budget,
        replan=_must_place(job, candidates),
        stop=job.stop,
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
        size = int((scan.rows.attend[r] * scan.cols.attend[c]).sum())
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


def _waitlist_reason(instance: Instance, cand: Candidate, fill: dict[int, int]) -> str:
    cohorts = instance.cohorts
    if not cand.cohorts:
        return "no cohort that both members can attend in full, in a mode both can attend"
    parts = []
    for q in cand.cohorts:
        c, n = cohorts[q], fill.get(q, 0)
        parts.append(
            f"{c.id}, which is full ({n} of {c.capacity_pairs})"
            if n >= c.capacity_pairs
            else f"{c.id} ({n} of {c.capacity_pairs})"
        )
    head = "both can attend only " if len(parts) == 1 else "both can attend "
    text = head + "; ".join(parts)
    if any(fill.get(q, 0) < cohorts[q].capacity_pairs for q in cand.cohorts):
        text += (
            "; adding this pair would break the action-learning-set rules (set sizes, one "
            "organisation per set, declared conflicts) or displace a pair that has fewer options"
        )
    return text


Objective = Literal["total", "fair", "stable"]
Proposer = Literal["patient_leader", "professional"]
#: Largest seed accepted (CP-SAT takes a 32-bit signed seed).
MAX_SEED = 2**31 - 1


def _check_parameters(
    instance: object,
    seed: object,
    time_limit: object,
    objective: object,
    proposer: object,
) -> None:
    """Reject bad arguments with a usage error (:class:`InvalidParameter`)."""
    if not isinstance(instance, Instance):
        raise InvalidParameter(
            "solve() takes an Instance (from load_instance, parse_instance or Instance(...)), "
            f"not {type(instance).__name__}"
        )
    if objective not in OBJECTIVES:
        raise InvalidParameter(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    if proposer not in PROPOSERS:
        raise InvalidParameter(f"unknown proposer {proposer!r}; valid: {', '.join(PROPOSERS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidParameter(f"seed must be an integer from 0 to {MAX_SEED}")
    if time_limit is not None and (
        isinstance(time_limit, bool)
        or not isinstance(time_limit, int | float)
        or not math.isfinite(time_limit)
        or time_limit <= 0
    ):
        raise InvalidParameter("time_limit must be a positive number of seconds (or None)")


def solve(
    instance: Instance,
    *,
    objective: Objective = "total",
    proposer: Proposer = "patient_leader",
    seed: int = 0,
    time_limit: float | None = None,
    previous: PreviousPlan | None = None,
    progress: ProgressCallback | None = None,
    deterministic: bool = True,
) -> Solution:
    """Pair the lone applicants, place every pair in a cohort, split cohorts into sets.

    ``previous``: an earlier plan (a :class:`Solution`, its JSON, or a path) to disturb as
    little as possible (:mod:`matcher.replan`); the solution then carries ``changes``.
    ``progress``: called with :class:`matcher.progress.ProgressEvent`; returning False stops the
    solve with the best plan so far (``feasible``, noted) or :class:`NoPlanInTime`.
    ``time_limit``: wall-clock seconds for the whole call.

    Guarantees are in :mod:`matcher.placement` (pairing and placement) and
    :mod:`matcher.learning_sets` (sets); ``status`` is ``optimal`` only when every stage proved
    optimality. With ``deterministic`` (the default) and no ``time_limit`` the result is a
    function of the instance and the seed alone (solvers run on deterministic budgets) and wall
    time is not recorded (``run.time_s`` is null), so repeated runs give byte-identical JSON.

    Raises :class:`InvalidParameter` for bad arguments, :class:`Infeasible` when the hard rules
    and locks are proven to admit no plan that places a pair (``.diagnosis`` names the
    conflicting parts), :class:`NoPlanInTime` when nothing was found in time; nothing else.
    """
    _check_parameters(instance, seed, time_limit, objective, proposer)
    try:
        return _solve(
            instance,
            objective=objective,
            proposer=proposer,
            seed=seed,
            time_limit=time_limit,
            previous=previous,
            progress=progress,
            deterministic=deterministic,
        )
    except MatcherError:
        raise
    except MemoryError:
        raise NoPlanInTime(
            "the solve ran out of memory; try a time limit or fewer cohorts"
        ) from None
    except Exception as exc:  # a bug: keep one error family, and the cause for --debug
        log.exception("internal error in solve")
        raise InternalError(f"internal error ({type(exc).__name__}); this is a bug") from exc


def _solve(
    instance: Instance,
    *,
    objective: str,
    proposer: str,
    seed: int,
    time_limit: float | None,
    previous: PreviousPlan | None,
    progress: ProgressCallback | None,
    deterministic: bool,
) -> Solution:
    deadline = Deadline(time_limit, deterministic=deterministic)
    reporter = Reporter(progress)
    prev = load_previous(previous) if previous is not None else None
    prepared = prepare(instance)
    eff = prepared.effective
    stop = Stop(
        deadline=None if time_limit is None else time.monotonic() + RESERVE * time_limit,
        tick=lambda message: reporter.report("placement", None, message),
    )
    job = Job(prepared, seed, deterministic, stop)
    people = eff.participants_by_id()
    stages: dict[str, float] = {}
    outcomes: dict[str, str] = {}
    log.info("solve: %d participants, %d cohorts", len(instance.participants), len(eff.cohorts))
    reporter.report("pairing", 0.0, f"pairing {len(eff.participants)} participants")
    pairing = pair_lone_applicants(eff, objective=objective, proposer=proposer)
    stages["pairing"] = deadline.elapsed()
    if not reporter.report("placement", 0.0, f"placing {len(pairing.pairs)} pairs"):
        raise NoPlanInTime("the solve was cancelled before any plan was found")
    minimal = True
    if prev is None:
        candidates, placement, notes = _place(job, pairing, time_limit=deadline.share(0.5, 2))
        # issue 10 hook: nobody left unpaired who could be paired when a budget cut placement
        if placement.status in ("optimal", "feasible"):
            candidates, placement, note = complete_pairing(pairing, candidates, placement)
            notes += [note] if note else []
    else:
        candidates, placement, notes, minimal = _place_against(
            job, pairing, prev, time_limit=deadline.share(0.5, 2)
        )
    if placement.status == "infeasible":
        raise _lock_infeasibility(job, candidates)
    if placement.status == "timeout":
        raise NoPlanInTime(
            "no plan found within the time limit"
            + (" (cancelled)" if placement.cancelled else "; raise the time limit")
        )
    outcomes["placement"] = placement.status
    if placement.cancelled:
        notes.append("cancelled by the caller: the best plan found so far, not proven best")
    stages["placement"] = deadline.elapsed() - sum(stages.values())

    formed = sorted(
        placement.formed,
        key=lambda k: (
            (candidates[k].patient_leader, candidates[k].partner) not in prepared.preformed,
            (candidates[k].patient_leader, candidates[k].partner) not in prepared.locks,
            _order(eff)[candidates[k].patient_leader],
        ),
    )
    keys = [(candidates[k].patient_leader, candidates[k].partner) for k in formed]
    ids = pair_ids(keys, prev, set(prepared.preformed))
    pair_id = {k: ids[key] for k, key in zip(formed, keys, strict=True)}

    records: dict[int, Pair] = {}
    all_scores, all_parts = pair_scores(eff, keys)
    for n_pair, k in enumerate(formed):
        c = candidates[k]
        a, b = people[c.patient_leader], people[c.partner]
        breakdown = {name: round(float(all_parts[name][n_pair]), 6) for name in CRITERIA}
        q = placement.cohort_of.get(k)
        records[k] = Pair(
            id=pair_id[k],
            patient_leader=a.id,
            partner=b.id,
            score=round(float(all_scores[n_pair]), 6),
            preformed=(a.id, b.id) in prepared.preformed,
            locked=(a.id, b.id) in prepared.locks,
            cohort=eff.cohorts[q].id if q is not None else None,
            breakdown=breakdown,
            reasons=pair_reasons(eff, a, b, breakdown),
        )

    fill = {
        q: sum(1 for k in formed if placement.cohort_of.get(k) == q)
        for q in range(len(eff.cohorts))
    }
    # issue 10 hook: when the one-organisation-per-set rule limits a cohort, say so in numbers
    pressure = set_rule_pressure(eff, candidates, formed, placement.cohort_of)
    waitlist = [
        Waitlisted(
            pair=pair_id[k],
            reason=_waitlist_reason(eff, candidates[k], fill)
            + pressure_note(pressure, candidates[k]),
        )
        for k in formed
        if placement.cohort_of.get(k) is None
    ]

    before_sets = previous_pairs(prev) if prev is not None else {}
    used_set_ids = {s.id for s in prev.learning_sets or []} if prev is not None else set()
    set_outcomes: list[str] = []
    cohort_plans: list[CohortPlan] = []
    sets_out: list[LearningSet] = []
    for q, cohort in enumerate(eff.cohorts):
        reporter.report(
            "learning_sets", q / len(eff.cohorts), f"action-learning sets of {cohort.id}"
        )
        ks = [k for k in formed if placement.cohort_of.get(k) == q]
        duos = [(people[candidates[k].patient_leader], people[candidates[k].partner]) for k in ks]
        share = deadline.share(0.5 / len(eff.cohorts), len(eff.cohorts) - q)
        before = [
            before_sets[key].learning_set
            if (key := (candidates[k].patient_leader, candidates[k].partner)) in before_sets
            and before_sets[key].cohort == cohort.id
            else None
            for k in ks
        ]
        kept = None
        if any(b is not None for b in before) and len(ks) <= KEEP_SETS_MAX_PAIRS:
            links = set_links(eff, duos)
            kept = keep_sets(
                eff,
                cohort,
                duos,
                before,
                pair_distance(eff, duos),
                links,
                seed=seed,
                time_limit=share,
            )
        if kept is not None:
            fresh = iter(new_set_ids(cohort, len(kept.sets), used_set_ids))
            named = [(sid or next(fresh), members) for sid, members in kept.sets]
            div = pair_distance(eff, duos)
            result_sets = [
                (sid, members, _mean_distance(div, members)) for sid, members in sorted(named)
            ]
            dropped: dict[int, str] = {}
            set_outcomes.append("optimal" if kept.proven else "feasible")
            if not kept.proven:
                minimal = False
        else:
            if any(b is not None for b in before):
                minimal = minimal and len(ks) <= KEEP_SETS_MAX_PAIRS
            result = form_sets(
                eff, cohort, duos, seed=seed, time_limit=share, deterministic=deterministic
            )
            dropped = result.dropped
            ids_here = (
                new_set_ids(cohort, len(result.sets), used_set_ids)
                if prev is not None
                else [f"{cohort.id}-s{n}" for n in range(1, len(result.sets) + 1)]
            )
            result_sets = [
                (sid, members, div)
                for sid, members, div in zip(ids_here, result.sets, result.diversity, strict=True)
            ]
            # Pairs left out of the sets after placement: the plan is no longer proven best.
            set_outcomes.append("feasible" if dropped else result.status)
        for i, why in dropped.items():
            k = ks[i]
            records[k] = records[k].model_copy(update={"cohort": None})
            waitlist.append(Waitlisted(pair=pair_id[k], reason=why))
        for set_id, members, div in result_sets:
            for i in members:
                records[ks[i]] = records[ks[i]].model_copy(update={"learning_set": set_id})
            sets_out.append(
                LearningSet(
                    id=set_id,
                    cohort=cohort.id,
                    pairs=[pair_id[ks[i]] for i in members],
                    diversity=round(div, 6),
                )
            )
        placed = [pair_id[k] for k in ks if records[k].cohort is not None]
        cohort_plans.append(
            CohortPlan(id=cohort.id, pairs=placed, capacity_pairs=cohort.capacity_pairs)
        )
    stages["learning_sets"] = deadline.elapsed() - sum(stages.values())

    formed_people = {x for key in keys for x in key}
    unmatched = _unmatched(eff, pairing, formed_people)
    status: Status
    if (
        pairing.exact
        and placement.status == "optimal"
        and all(s == "optimal" for s in set_outcomes)
    ):
        status = "optimal"
    else:
        status = "feasible"
    if not records and not unmatched:
        notes.append("the intake has no active participants")
    solution = Solution(
        instance=instance.name,
        status=status,
        pairs=[records[k] for k in formed],
        unmatched=unmatched,
        waitlist=sorted(waitlist, key=lambda w: w.pair),
        cohorts=cohort_plans,
        learning_sets=sorted(sets_out, key=lambda s: (s.cohort, _set_number(s.id))),
        withdrawn=list(prepared.withdrawn),
        run=RunInfo(
            solver="matching (OR-Tools assignment) + placement (CP-SAT) + sets (MDGP)",
            objective=objective,
            proposer=proposer,
            seed=seed,
            deterministic=deterministic,
            version=matcher_version(),
            versions=_versions(),
            time_limit=time_limit,
            bound=placement.bound,
            gap=_gap(placement),
            outcomes=outcomes | {"learning_sets": _worst(set_outcomes)},
            notes=notes,
        ),
    )
    placed_any = any(r.cohort for r in records.values())
    if records and not placed_any and not placement.cancelled:
        # Nobody placed: say why (a plan that places nobody is never a success).
        diagnosis = diagnose_no_placement(eff, [candidates[k] for k in formed])
        if placement.status == "optimal" or diagnosis:
            raise Infeasible(
                "no plan places any pair: "
                + (
                    diagnosis[0].message
                    if diagnosis
                    else "the set rules (sizes, one organisation per set, declared conflicts) "
                    "leave no valid set in any cohort"
                ),
                diagnosis,
                solution=solution.model_copy(update={"status": "infeasible"}),
            )
    reporter.report("metrics", None, "computing metrics")
    metrics = solution_metrics(eff, solution, pairing.scan)
    stages["metrics"] = deadline.elapsed() - sum(stages.values())
    update: dict[str, object] = {"metrics": metrics}
    if prev is not None:
        update["changes"] = plan_changes(
            prev, solution, instance, minimal=minimal and status == "optimal"
        )
    if not deterministic:
        update["run"] = solution.run.model_copy(
            update={
                "time_s": round(deadline.elapsed(), 3),
                "stages": {k: round(v, 3) for k, v in stages.items()},
            }
        )
    return solution.model_copy(update=update)


#: Share of the time limit the searches may use; the rest is kept for building the output.
RESERVE = 0.85


def _order(instance: Instance) -> dict[str, int]:
    return {p.id: k for k, p in enumerate(instance.participants)}


def _set_number(set_id: str) -> int:
    tail = set_id.rsplit("-s", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _mean_distance(d: NDArray[np.float64], members: list[int]) -> float:
    pairs = [d[i, j] for a, i in enumerate(members) for j in members[a + 1 :]]
    return float(np.mean(pairs)) if pairs else 0.0


def _worst(outcomes: list[str]) -> str:
    return "optimal" if all(o == "optimal" for o in outcomes) else "feasible"


def _gap(placement: Placement) -> float | None:
    """Relative gap of pairs placed to the ceiling (0 when proven at the ceiling)."""
    if placement.bound is None or placement.objective is None or placement.bound <= 0:
        return None
    return round((placement.bound - placement.objective) / placement.bound, 6)


def _versions() -> dict[str, str]:
    out = {"matcher": matcher_version(), "numpy": np.__version__}
    try:
        out["ortools"] = version("ortools")
    except PackageNotFoundError:
        out["ortools"] = "unknown"
    return out


def set_links(
    instance: Instance, duos: list[tuple[Participant, Participant]]
) -> list[tuple[int, int]]:
    """Pairs of pairs that may never share a set: a declared conflict, or (hard rule) an
    organisation in common."""
    hard = instance.rules.one_organisation_per_set == "hard"
    out = []
    for i in range(len(duos)):
        for j in range(i + 1, len(duos)):
            shared = _shares_organisation(duos[i], duos[j])
            if _in_conflict(duos[i], duos[j]) or (shared and hard):
                out.append((i, j))
    return out


def _lock_infeasibility(job: Job, candidates: list[Candidate]) -> Infeasible:
    """Name the locks that cannot hold together (CP-SAT assumptions), with what to relax."""
    must = _must_place(job, candidates).must_place
    core = diagnose_locks(job.prepared.effective, candidates, must)
    if not core:
        return Infeasible("no plan meets the hard rules and the locks")
    eff = job.prepared.effective
    names = [candidates[k] for k in core]
    cohorts = sorted({eff.cohorts[c.cohorts[0]].id for c in names if c.cohorts})
    diagnosis = [
        Conflict(
            kind="lock",
            message=f"lock {c.patient_leader}+{c.partner} in {eff.cohorts[c.cohorts[0]].id}",
            ids=(c.patient_leader, c.partner),
            remedy="remove its cohort or the lock",
        )
        for c in names
        if c.cohorts
    ]
    diagnosis += diagnose_cohorts(eff, [c for c in candidates if c.cohorts], cohorts)
    return Infeasible(
        f"these {len(names)} locked pairs cannot all be placed in their cohorts "
        f"({', '.join(cohorts)}) under the set rules and capacities",
        diagnosis,
    )


def _unmatched(instance: Instance, pairing: Pairing, formed_people: set[str]) -> list[Unmatched]:
    scan = pairing.scan
    out = []
    for p in instance.participants:
        if p.id in formed_people:
            continue
        is_row = p.id in scan.rows.index
        index = scan.rows.index[p.id] if is_row else scan.cols.index[p.id]
        reason = unmatched_reason(
            pairing.objective,
            scan.row_stats if is_row else scan.col_stats,
            index,
            is_row=is_row,
            n_rows=len(scan.rows.ids),
            n_cols=len(scan.cols.ids),
            min_score=instance.rules.min_score,
        )
        out.append(Unmatched(participant=p.id, reason=reason))
    return out
