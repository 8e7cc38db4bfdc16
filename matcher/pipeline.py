"""The solve pipeline: validated instance → pairs → cohorts → action-learning sets → solution.

The caller verifies the solution (:func:`matcher.verify.verify`); the CLI always does.
"""

from __future__ import annotations

import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from numpy.typing import NDArray

from matcher.errors import NoPlanInTime
from matcher.explain import pair_reasons, unmatched_reason
from matcher.learning_sets import form_sets
from matcher.metrics import solution_metrics
from matcher.pairing import Pairing, pair_lone_applicants, preformed_pairs
from matcher.placement import Candidate, Placement, solve_placement
from matcher.progress import ProgressCallback, Reporter
from matcher.schema import Instance
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


def _candidates(
    instance: Instance, pairs: list[tuple[str, str]], scores: list[float], *, fixed: bool
) -> list[Candidate]:
    index = {p.id: i for i, p in enumerate(instance.participants)}
    attend = attendance_matrix(instance, instance.participants)
    return [
        Candidate(a, b, fixed, s, tuple(np.flatnonzero(attend[index[a]] & attend[index[b]])))
        for (a, b), s in zip(pairs, scores, strict=True)
    ]


def _place(
    instance: Instance,
    pairing: Pairing,
    *,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
) -> tuple[list[Candidate], Placement, list[str]]:
    """Decomposition first; the joint model when it leaves pairs unplaced (module docs of
    :mod:`matcher.placement`)."""
    notes: list[str] = list(pairing.scan.notes)
    pre = [(a, b) for a, b, _ in preformed_pairs(instance)]
    scan = pairing.scan
    rows, cols = pairing.matched_rows, pairing.matched_cols
    matched = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(rows, cols, strict=True)]
    matched_scores = pair_scores(instance, matched)[0].tolist()
    fixed = _candidates(instance, pre, [0.0] * len(pre), fixed=True) + _candidates(
        instance, matched, matched_scores, fixed=True
    )
    placement = solve_placement(
        instance, fixed, seed=seed, time_limit=time_limit, deterministic=deterministic
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
        repaired = _repair(
            instance,
            pairing,
            fixed,
            placement,
            (r, c, sc),
            len(pre),
            seed=seed,
            time_limit=time_limit,
            deterministic=deterministic,
        )
        if repaired is not None:
            cands, better, note = repaired
            notes.append(note)
            return cands, replace(better, status="feasible"), notes
        return fixed, replace(placement, status="feasible"), notes
    # The whole joint model: only the pre-formed pairs are fixed; every allowed lone pair is open.
    candidates, joint = _replan(
        instance,
        pairing,
        fixed,
        placement,
        fixed[: len(pre)],
        (r, c, sc),
        seed=seed,
        time_limit=time_limit,
        deterministic=deterministic,
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


def _replan(
    instance: Instance,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    kept: list[Candidate],
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    *,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
    default_budget: float = 0.0,
) -> tuple[list[Candidate], Placement]:
    """Pairs and cohorts chosen together: the ``kept`` pairs stay formed, the lone pairs
    ``lone_edges`` (row, column, score indices into the scan) are open; CP-SAT starts from the
    decomposition's plan (``fixed`` placed as in ``placement``)."""
    scan = pairing.scan
    r, c, sc = lone_edges
    edges = [(scan.rows.ids[i], scan.cols.ids[j]) for i, j in zip(r, c, strict=True)]
    candidates = kept + _candidates(instance, edges, sc.tolist(), fixed=False)
    start = {(f.patient_leader, f.partner): placement.cohort_of[k] for k, f in enumerate(fixed)}
    result = solve_placement(
        instance,
        candidates,
        seed=seed,
        time_limit=time_limit,
        deterministic=deterministic,
        hint=start,
        default_budget=default_budget,
    )
    return candidates, result


def _repair(
    instance: Instance,
    pairing: Pairing,
    fixed: list[Candidate],
    placement: Placement,
    lone_edges: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    n_pre: int,
    *,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
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
        instance,
        pairing,
        fixed,
        placement,
        kept,
        (r, c, sc),
        seed=seed,
        time_limit=None if time_limit is None else min(REPAIR_BUDGET, time_limit),
        deterministic=deterministic,
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


def solve(
    instance: Instance,
    *,
    seed: int = 0,
    time_limit: float | None = None,
    objective: str = "total",
    proposer: str = "patient_leader",
    deterministic: bool = True,
    progress: ProgressCallback | None = None,
) -> Solution:
    """Pair the lone applicants, place every pair in a cohort, split cohorts into sets.

    Guarantees are in :mod:`matcher.placement` (pairing and placement) and
    :mod:`matcher.learning_sets` (sets); ``status`` is ``optimal`` only when every stage proved
    optimality. With ``deterministic`` (the default) the result is a function of the instance
    and the seed alone: solvers run on deterministic budgets (``time_limit`` then bounds CP-SAT's
    deterministic time) and wall time is not recorded (``run.time_s`` is null), so repeated runs
    give byte-identical JSON.
    """
    deadline = Deadline(time_limit, deterministic=deterministic)
    reporter = Reporter(progress)
    people = instance.participants_by_id()
    stages: dict[str, float] = {}
    reporter.report("pairing", 0.0, f"pairing {len(instance.participants)} participants")
    pairing = pair_lone_applicants(instance, objective=objective, proposer=proposer)
    stages["pairing"] = deadline.elapsed()
    if not reporter.report("placement", 0.0, f"placing {len(pairing.pairs)} pairs"):
        raise NoPlanInTime("the solve was cancelled before any plan was found")
    candidates, placement, notes = _place(
        instance,
        pairing,
        seed=seed,
        time_limit=deadline.share(0.5, 2),
        deterministic=deterministic,
    )
    order = {p.id: k for k, p in enumerate(instance.participants)}
    preformed_ids = {(a, b) for a, b, _ in preformed_pairs(instance)}
    formed = sorted(
        placement.formed,
        key=lambda k: (
            (candidates[k].patient_leader, candidates[k].partner) not in preformed_ids,
            order[candidates[k].patient_leader],
        ),
    )
    width = max(2, len(str(len(formed))))
    pair_id = {k: f"pair-{n:0{width}d}" for n, k in enumerate(formed, start=1)}

    records: dict[int, Pair] = {}
    all_scores, all_parts = pair_scores(
        instance, [(candidates[k].patient_leader, candidates[k].partner) for k in formed]
    )
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
            preformed=(a.id, b.id) in preformed_ids,
            cohort=instance.cohorts[q].id if q is not None else None,
            breakdown=breakdown,
            reasons=pair_reasons(instance, a, b, breakdown),
        )

    fill = {
        q: sum(1 for k in formed if placement.cohort_of.get(k) == q)
        for q in range(len(instance.cohorts))
    }
    waitlist = [
        Waitlisted(pair=pair_id[k], reason=_waitlist_reason(instance, candidates[k], fill))
        for k in formed
        if placement.cohort_of.get(k) is None
    ]

    statuses: list[str] = [placement.status]
    cohort_plans: list[CohortPlan] = []
    sets_out: list[LearningSet] = []
    stages["placement"] = deadline.elapsed() - sum(stages.values())
    for q, cohort in enumerate(instance.cohorts):
        reporter.report(
            "learning_sets", q / len(instance.cohorts), f"action-learning sets of {cohort.id}"
        )
        ks = [k for k in formed if placement.cohort_of.get(k) == q]
        duos = [(people[candidates[k].patient_leader], people[candidates[k].partner]) for k in ks]
        result = form_sets(
            instance,
            cohort,
            duos,
            seed=seed,
            time_limit=deadline.share(0.5 / len(instance.cohorts), len(instance.cohorts) - q),
            deterministic=deterministic,
        )
        # Pairs left out of the sets after placement: the plan is no longer proven best.
        statuses.append("feasible" if result.dropped else result.status)
        for i, why in result.dropped.items():
            k = ks[i]
            records[k] = records[k].model_copy(update={"cohort": None})
            waitlist.append(Waitlisted(pair=pair_id[k], reason=why))
        for s_no, (members, div) in enumerate(zip(result.sets, result.diversity, strict=True), 1):
            set_id = f"{cohort.id}-s{s_no}"
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
    formed_people = {
        x for k in formed for x in (candidates[k].patient_leader, candidates[k].partner)
    }
    unmatched = _unmatched(instance, pairing, formed_people)
    status: Status
    if placement.status == "timeout":
        status = "timeout"
    elif (
        formed
        and not any(r.cohort for r in records.values())
        and placement.status == "optimal"
        and not any("joint" in n and "skipped" in n for n in notes)
    ):
        # Proven: the most pairs that can be placed is zero.
        status = "infeasible"
        notes.append("no pair can be placed in any cohort: check capacities, dates and modes")
    elif pairing.exact and all(s == "optimal" for s in statuses):
        status = "optimal"
    else:
        status = "feasible"
    solution = Solution(
        instance=instance.name,
        status=status,
        pairs=[records[k] for k in formed],
        unmatched=unmatched,
        waitlist=sorted(waitlist, key=lambda w: w.pair),
        cohorts=cohort_plans,
        learning_sets=sets_out,
        run=RunInfo(
            solver="matching (OR-Tools assignment) + placement (CP-SAT) + sets (MDGP)",
            objective=objective,
            seed=seed,
            version=matcher_version(),
            time_limit=time_limit,
            notes=notes,
        ),
    )
    metrics = solution_metrics(instance, solution, pairing.scan)
    stages["metrics"] = deadline.elapsed() - sum(stages.values())
    if deterministic:
        return solution.model_copy(update={"metrics": metrics})
    run = solution.run.model_copy(
        update={
            "time_s": round(deadline.elapsed(), 3),
            "stages": {k: round(v, 3) for k, v in stages.items()},
        }
    )
    return solution.model_copy(update={"metrics": metrics, "run": run})


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
