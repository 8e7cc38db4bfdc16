"""Assembling a plan (:func:`make_plan`) in named stages over the intake prepared once
(:mod:`matcher.engine.prepare`): pair (:func:`_pair`), place (:func:`_place`, the placement
strategy of :mod:`matcher.engine.placement.strategy`), name the pairs (:func:`_name_pairs`: IDs,
scores, reasons, wait-list), group each cohort into sets (:func:`_group`), assemble the solution
(:func:`_assemble`: unmatched, status, run information) and measure it (:func:`_measure`:
metrics, changes). Called by :func:`matcher.engine.solve.solve`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from numpy.typing import NDArray

from matcher.compare.diff import plan_changes
from matcher.contract.identity import instance_hash
from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.keys import category_key
from matcher.contract.rules import (
    can_attend,
    clashing_dates,
    never_share_a_set,
    one_organisation_per_set,
    pairs_in_conflict,
    set_counts,
    shares_organisation,
    usable_capacity,
    why_cannot_attend,
)
from matcher.contract.solution import (
    CohortPlan,
    LearningSet,
    Metrics,
    Pair,
    RunInfo,
    Solution,
    Status,
    Unmatched,
    Waitlisted,
)
from matcher.engine import set_pool
from matcher.engine.diagnose import diagnose_cohorts, diagnose_no_placement
from matcher.engine.meaning import meaning_notes
from matcher.engine.metrics import solution_metrics
from matcher.engine.pairing import Pairing, pair_lone_applicants
from matcher.engine.placement.ceiling import (
    CohortPressure,
    complete_pairing,
    place_by_moves,
    pressure_note,
    set_rule_pressure,
)
from matcher.engine.placement.model import (
    Candidate,
    Placement,
    diagnose_locks,
)
from matcher.engine.placement.strategy import Deadline, Job, must_place, place, place_against
from matcher.engine.prepare import Prepared, prepare
from matcher.engine.progress import ProgressCallback, Reporter, Stop
from matcher.engine.reasons import pair_reasons, partner_gone_reason, unmatched_reason
from matcher.engine.replan import (
    KEEP_SETS_MAX_PAIRS,
    PreviousPlan,
    keep_sets,
    load_previous,
    new_set_ids,
    pair_ids,
    previous_pairs,
    quality_trades,
)
from matcher.engine.scoring import CRITERIA, pair_scores, people_by_id
from matcher.engine.sets import (
    CohortSets,
    announce_searches,
    form_sets,
    pair_distance,
    searches_load_compiled,
)
from matcher.errors import (
    Conflict,
    Infeasible,
    NoPlanInTime,
)
from matcher.words import count


def matcher_version() -> str:
    try:
        return version("matcher")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


log = logging.getLogger("matcher")


def _waitlist_reason(
    prepared: Prepared,
    cand: Candidate,
    fill: dict[int, int],
    pressure: dict[int, CohortPressure],
    placed_in: dict[int, list[tuple[str, Candidate]]] | None = None,
) -> str:
    """Why a formed pair has no cohort: each cohort both can attend with its fill, then the one
    rule that binds where there is room (capacity not splittable into sets; in a cohort that
    holds one set, one organisation per set or a declared conflict with a pair placed there;
    the one-organisation pressure of :func:`set_rule_pressure`), with its figures, or the set
    rules in general when no single rule is found. ``placed_in``: cohort index -> the (pair ID,
    candidate) placed there."""
    instance = prepared.effective
    cohorts = instance.cohorts
    if not cand.cohorts:
        text = "no cohort that both members can attend in full, in a mode both can attend"
        people = [p for p in instance.participants if p.id in (cand.patient_leader, cand.partner)]
        dated = [
            why
            for c in cohorts
            for p in people
            if p.unavailable_dates and (why := why_cannot_attend(p, c)) and clashing_dates(p, c)
        ]
        return text + (f" ({'; '.join(dated)})" if dated else "")
    parts = []
    binding: list[str] = []
    open_ = []
    for q in cand.cohorts:
        c, n = cohorts[q], fill.get(q, 0)
        if c.capacity_pairs == 0:
            parts.append(f"{c.id}, which is closed (capacity 0)")
        elif n >= c.capacity_pairs:
            parts.append(f"{c.id}, which is full ({n} of {c.capacity_pairs})")
        else:
            parts.append(f"{c.id} ({n} of {c.capacity_pairs})")
            open_.append(q)
    head = "both can attend only " if len(parts) == 1 else "both can attend "
    text = head + "; ".join(parts)
    for q in open_:
        c, n = cohorts[q], fill.get(q, 0)
        usable = usable_capacity(c)
        lo, hi = c.set_size.min_pairs, c.set_size.max_pairs
        if n >= usable:
            binding.append(
                f"{c.id} holds at most {count(usable, 'pair')}: "
                f"{count(c.capacity_pairs, 'pair')} cannot be split into sets of {lo}-{hi} "
                f"(raise its capacity to {_next_splittable(c)} or change its set sizes)"
            )
        elif (
            one_set := _one_set_rule(prepared, c, cand, (placed_in or {}).get(q, []))
        ) is not None:
            binding.append(one_set)
        elif q in pressure and pressure[q].reason:
            binding.append(pressure[q].reason)
    if open_ and len(binding) == len(open_):
        return text + "".join(f"; {b}" for b in binding)
    if open_:
        text += (
            "; adding this pair would break the action-learning-set rules (set sizes, one "
            "organisation per set, declared conflicts) or displace a pair that has fewer options"
        )
    return text + pressure_note(pressure, cand)


def _one_set_rule(
    prepared: Prepared, cohort: Cohort, cand: Candidate, placed: list[tuple[str, Candidate]]
) -> str | None:
    """In a cohort that holds at most one set, the set rule that keeps ``cand`` out: a pair
    placed there shares an organisation with it (one organisation per set, when hard) or
    holds someone either of them declared a conflict with. None when neither applies."""
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    if not placed or usable_capacity(cohort) >= 2 * lo:
        return None
    people = prepared.people
    mine = (people[cand.patient_leader], people[cand.partner])
    shape = f"{cohort.id} holds one set (capacity {cohort.capacity_pairs}, sets of {lo}-{hi} pairs)"
    for pid, other in placed:
        theirs = (people[other.patient_leader], people[other.partner])
        if pairs_in_conflict(mine, theirs):
            return (
                f"declared conflict: {shape} and {pid} ({other.patient_leader}+{other.partner}), "
                "placed there, may not share a set with this pair (avoid)"
            )
    if one_organisation_per_set(prepared.effective):
        for pid, other in placed:
            theirs = (people[other.patient_leader], people[other.partner])
            if shares_organisation(mine, theirs):
                return (
                    f"one organisation per set: {shape} and {pid} "
                    f"({other.patient_leader}+{other.partner}), placed there, is from the same "
                    "organisation as this pair"
                )
    return None


def _next_splittable(cohort: Cohort) -> int:
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    m = cohort.capacity_pairs + 1
    while not set_counts(lo, hi, m):
        m += 1
    return m


@dataclass
class _Run:
    """One solve: its settings, the intake prepared once (:mod:`matcher.engine.prepare`), the
    clocks, and what the stages record (seconds, outcomes, notes, whether changes are proven
    fewest). Every stage reads the prepared intake from here; none re-derives it."""

    instance: Instance
    prepared: Prepared
    objective: str
    proposer: str
    seed: int
    time_limit: float | None
    deterministic: bool
    prev: Solution | None
    deadline: Deadline
    reporter: Reporter
    stop: Stop
    job: Job
    pool: set_pool.SetPool | None = None
    stages: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    minimal: bool = True

    @property
    def eff(self) -> Instance:
        return self.prepared.effective

    @property
    def people(self) -> Mapping[str, Participant]:
        return self.prepared.people

    def lap(self, stage: str) -> float:
        """Record the seconds ``stage`` took (since the previous stage ended)."""
        self.stages[stage] = self.deadline.elapsed() - sum(self.stages.values())
        return self.stages[stage]


@dataclass
class _Named:
    """The formed pairs (indices into the candidates, pre-formed and locked first), their IDs
    and records, and the wait-list so far."""

    formed: list[int]
    keys: list[tuple[str, str]]
    pair_id: dict[int, str]
    records: dict[int, Pair]
    waitlist: list[Waitlisted]
    in_cohort: dict[int, list[int]]  # cohort index -> its formed pairs, in plan order


@dataclass
class _Grouped:
    """Each cohort's plan, the action-learning sets and each cohort's sets outcome."""

    cohorts: list[CohortPlan]
    sets: list[LearningSet]
    outcomes: list[str]


def make_plan(
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
    """The plan, in named stages over one prepared intake: pair, place, name the pairs, group
    each cohort into sets, assemble the solution, measure it."""
    began = time.monotonic()
    deadline = Deadline(time_limit, deterministic=deterministic)
    reporter = Reporter(progress)
    reporter.report("prepare", 0.0, f"preparing {len(instance.participants)} participants")
    # between the stages' own events, the latest one is sent again (progress.py)
    with reporter.heartbeat():
        prev = load_previous(previous) if previous is not None else None
        prepared = prepare(instance)
        n_people = len(prepared.effective.participants)
        searching = None if time_limit is None else search_time(time_limit, n_people)
        stop = Stop(
            # from the call's start: preparing (coding the people, embedding their project
            # descriptions) spends the searches' time too
            deadline=None if searching is None else began + searching,
            tick=lambda stage, message: reporter.report(stage, None, message),
            cancelled_by=lambda: reporter.cancelled,
        )
        run = _Run(
            instance=instance,
            prepared=prepared,
            objective=objective,
            proposer=proposer,
            seed=seed,
            time_limit=time_limit,
            deterministic=deterministic,
            prev=prev,
            deadline=deadline,
            reporter=reporter,
            stop=stop,
            job=Job(prepared, seed, deterministic, stop),
            # the sets stage's workers start now, so that their start-up overlaps pairing and
            # placement
            pool=set_pool.start(
                n_people,
                len(prepared.effective.cohorts),
                replan=prev is not None,
                search_s=searching,
            ),
        )
        log.info(
            "solve: %d participants, %d cohorts", len(instance.participants), len(run.eff.cohorts)
        )
        try:
            pairing = _pair(run)
            candidates, placement = _place(run, pairing)
            named = _name_pairs(run, candidates, placement)
            grouped = _group(run, candidates, placement, named)
            solution = _assemble(run, pairing, candidates, placement, named, grouped)
            return _measure(run, pairing, solution)
        finally:
            if run.pool is not None:
                run.pool.close()


def _pair(run: _Run) -> Pairing:
    """Stage 1: keep the pre-formed pairs, pair the lone applicants by the objective."""
    eff = run.eff
    run.reporter.report("pairing", 0.0, f"pairing {len(eff.participants)} participants")
    pairing = pair_lone_applicants(
        eff, objective=run.objective, proposer=run.proposer, stop=run.stop
    )
    log.info(
        "pairing: %d pairs (%d pre-formed or locked) in %.2f s",
        len(pairing.pairs),
        len(run.prepared.preformed) + len(run.prepared.locks),
        run.lap("pairing"),
    )
    return pairing


def _place(run: _Run, pairing: Pairing) -> tuple[list[Candidate], Placement]:
    """Stage 2: place the pairs in cohorts (re-pairing lone applicants where that places
    more), or against the previous plan; raise when no plan exists or none was found."""
    if not run.reporter.report("placement", 0.0, f"placing {len(pairing.pairs)} pairs"):
        raise NoPlanInTime("the solve was cancelled before any plan was found")
    eff, stop, deadline = run.eff, run.stop, run.deadline
    left = stop.remaining()
    # placement may use most of what is left; the sets keep the rest
    job = replace(run.job, stop=stop.within(None if left is None else PLACEMENT_SHARE * left))
    if run.prev is None:
        candidates, placement, notes = place(job, pairing, time_limit=deadline.share(0.5, 2))
        # issue 10 hook: nobody left unpaired who could be paired when a budget cut placement
        if placement.status in ("optimal", "feasible"):
            stop.check("placement: pairing the people left")
            candidates, placement, note = complete_pairing(
                eff, pairing, candidates, placement, stop
            )
            notes += [note] if note else []
            # wait-listed pairs (e.g. the ones just formed) placed by moving others aside
            stop.check("placement: wait-listed pairs, moves")
            placement, note = place_by_moves(eff, candidates, placement)
            notes += [note] if note else []
    else:
        candidates, placement, notes, run.minimal = place_against(
            job, pairing, run.prev, time_limit=deadline.share(0.5, 2)
        )
    run.notes = notes
    if placement.status == "infeasible":
        raise _lock_infeasibility(job, candidates)
    if placement.status == "timeout":
        raise NoPlanInTime(
            "no plan found within the time limit"
            + (" (cancelled)" if placement.cancelled else "; raise the time limit")
        )
    run.outcomes["placement"] = placement.status
    if placement.cancelled:
        run.notes.append("cancelled by the caller: the best plan found so far, not proven best")
    log.info(
        "placement: %s, levels %s in %.2f s",
        placement.status,
        placement.levels,
        run.lap("placement"),
    )
    return candidates, placement


def _name_pairs(run: _Run, candidates: list[Candidate], placement: Placement) -> _Named:
    """Stage 3: the formed pairs in plan order (pre-formed, locked, then by patient leader),
    their IDs (kept from the previous plan), scores, breakdowns and reasons, and the wait-list
    of the pairs placement left out, with the reason."""
    eff, people, prepared = run.eff, run.people, run.prepared
    order = prepared.order
    formed = sorted(
        placement.formed,
        key=lambda k: (
            (candidates[k].patient_leader, candidates[k].partner) not in prepared.preformed,
            (candidates[k].patient_leader, candidates[k].partner) not in prepared.locks,
            order[candidates[k].patient_leader],
        ),
    )
    keys = [(candidates[k].patient_leader, candidates[k].partner) for k in formed]
    # the plan's records, reasons and wait-list: O(pairs) work between the stages' events (2.9 s
    # at 20,000 participants), with progress ticks of their own
    finishing = run.stop.within(None, stage="placement")
    finishing.check(f"plan records: IDs and scores of {len(formed)} pairs")
    ids = pair_ids(keys, run.prev, set(prepared.preformed))
    pair_id = {k: ids[key] for k, key in zip(formed, keys, strict=True)}
    records: dict[int, Pair] = {}
    all_scores, all_parts = pair_scores(eff, keys)
    for n_pair, k in enumerate(formed):
        if n_pair % 256 == 0:
            finishing.check(f"plan records: {n_pair} of {len(formed)} pairs")
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

    in_cohort: dict[int, list[int]] = {q: [] for q in range(len(eff.cohorts))}
    for k in formed:
        if (q_in := placement.cohort_of.get(k)) is not None:
            in_cohort[q_in].append(k)
    fill = {q: len(ks) for q, ks in in_cohort.items()}
    finishing.check("wait-list reasons")
    # issue 10 hook: when the one-organisation-per-set rule limits a cohort, say so in numbers
    pressure = set_rule_pressure(eff, candidates, formed, placement.cohort_of)
    placed_in: dict[int, list[tuple[str, Candidate]]] = {}
    for k in formed:
        if (q_placed := placement.cohort_of.get(k)) is not None:
            placed_in.setdefault(q_placed, []).append((pair_id[k], candidates[k]))
    waitlist = [
        Waitlisted(
            pair=pair_id[k],
            reason=_waitlist_reason(run.prepared, candidates[k], fill, pressure, placed_in),
        )
        for k in formed
        if placement.cohort_of.get(k) is None
    ]
    return _Named(formed, keys, pair_id, records, waitlist, in_cohort)


def _group(run: _Run, candidates: list[Candidate], placement: Placement, named: _Named) -> _Grouped:
    """Stage 4: split each cohort's pairs into action-learning sets (keeping the previous
    plan's sets where it can); pairs the set rules leave out join the wait-list (and lose
    their cohort in ``named.records``)."""
    eff, people, stop, deadline, prev = run.eff, run.people, run.stop, run.deadline, run.prev
    pair_id, records, waitlist = named.pair_id, named.records, named.waitlist
    before_sets = previous_pairs(prev) if prev is not None else {}
    used_set_ids = {s.id for s in prev.learning_sets or []} if prev is not None else set()
    set_outcomes: list[str] = []
    cohort_plans: list[CohortPlan] = []
    sets_out: list[LearningSet] = []
    presolved = _sets_in_pool(run, candidates, named.in_cohort) if prev is None else {}
    if not presolved:
        counts = [len(named.in_cohort[q]) for q in range(len(eff.cohorts))]
        announce_searches(eff, counts, stop.remaining())
    for q, cohort in enumerate(eff.cohorts):
        run.reporter.report(
            "learning_sets", q / len(eff.cohorts), f"action-learning sets of {cohort.id}"
        )
        ks = named.in_cohort[q]
        duos = [(people[candidates[k].patient_leader], people[candidates[k].partner]) for k in ks]
        share = deadline.share(0.5 / len(eff.cohorts), len(eff.cohorts) - q)
        left = stop.remaining()
        if left is not None and share is not None:  # never past the wall-clock limit
            # past it, 1 ms: the search's start (a valid grouping) and no more; a 10 ms floor
            # gave 50 cohorts half a second after a 1 s limit's deadline
            share = max(0.001, min(share, left / (len(eff.cohorts) - q)))
        before = [
            before_sets[key].learning_set
            if (key := (candidates[k].patient_leader, candidates[k].partner)) in before_sets
            and before_sets[key].cohort == cohort.id
            else None
            for k in ks
        ]
        kept = None
        if any(b is not None for b in before) and len(ks) <= KEEP_SETS_MAX_PAIRS:
            links = never_share_a_set(eff, duos)
            kept = keep_sets(
                eff,
                cohort,
                duos,
                before,
                pair_distance(eff, duos),
                links,
                seed=run.seed,
                time_limit=share,
                stop=stop.within(share, stage="learning_sets"),
            )
        if kept is not None:
            fresh = iter(new_set_ids(cohort, len(kept.sets), used_set_ids))
            named_sets = [(sid or next(fresh), members) for sid, members in kept.sets]
            dist = pair_distance(eff, duos)
            result_sets = [
                (sid, members, _mean_distance(dist, members)) for sid, members in sorted(named_sets)
            ]
            dropped: dict[int, str] = {}
            set_outcomes.append("optimal" if kept.proven else "feasible")
            if not kept.proven:
                run.minimal = False
        else:
            if any(b is not None for b in before):
                run.minimal = run.minimal and len(ks) <= KEEP_SETS_MAX_PAIRS
            sets_stop = stop.within(share, stage="learning_sets")

            def stop_sets(s: Stop = sets_stop, c: str = cohort.id) -> bool:
                return not s.check(f"sets of {c}")

            result = presolved.get(q) or form_sets(
                eff,
                cohort,
                duos,
                seed=run.seed,
                time_limit=share,
                deterministic=run.deterministic,
                should_stop=stop_sets,
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
    log.info("sets: %d action-learning sets in %.2f s", len(sets_out), run.lap("learning_sets"))
    return _Grouped(cohort_plans, sets_out, set_outcomes)


def _assemble(
    run: _Run,
    pairing: Pairing,
    candidates: list[Candidate],
    placement: Placement,
    named: _Named,
    grouped: _Grouped,
) -> Solution:
    """Stage 5: the solution (pairs, unmatched with reasons, wait-list, cohorts, sets, run
    information and status); :class:`Infeasible`, with the all-wait-listed plan, when no pair
    could be placed."""
    eff, prepared, formed, records = run.eff, run.prepared, named.formed, named.records
    formed_people = {x for key in named.keys for x in key}
    finishing = run.stop.within(None, stage="metrics")
    unmatched = _unmatched(eff, pairing, formed_people, run.instance, run.prev, finishing)
    finishing.check("the plan: its status and run information")
    status: Status
    if (
        pairing.exact
        and placement.status == "optimal"
        and all(s == "optimal" for s in grouped.outcomes)
    ):
        status = "optimal"
    else:
        status = "feasible"
    if not records and not unmatched:
        run.notes.append("the intake has no active participants")
    run.notes += meaning_notes(eff)
    finishing.check("the plan: the intake's fingerprint")
    fingerprint = instance_hash(run.instance)
    finishing.check(f"the plan: {len(formed)} pairs, {len(unmatched)} unmatched")
    solution = Solution(
        instance=run.instance.name,
        instance_sha256=fingerprint,
        status=status,
        pairs=[records[k] for k in formed],
        unmatched=unmatched,
        waitlist=sorted(named.waitlist, key=lambda w: w.pair),
        cohorts=grouped.cohorts,
        learning_sets=sorted(grouped.sets, key=lambda s: (s.cohort, _set_number(s.id))),
        withdrawn=list(prepared.withdrawn),
        run=RunInfo(
            solver="matching (OR-Tools assignment) + placement (CP-SAT) + sets (MDGP)",
            objective=run.objective,
            proposer=run.proposer,
            seed=run.seed,
            deterministic=run.deterministic,
            version=matcher_version(),
            versions=_versions(),
            time_limit=run.time_limit,
            bound=placement.bound,
            gap=_gap(placement.bound, sum(records[k].cohort is not None for k in formed)),
            outcomes=run.outcomes | {"learning_sets": _worst(grouped.outcomes)},
            notes=run.notes,
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
    return solution


def _measure(run: _Run, pairing: Pairing, solution: Solution) -> Solution:
    """Stage 6: the plan's metrics, its changes against the previous plan (with the quality
    trades), and (timings on) the seconds of each stage."""
    run.reporter.report("metrics", None, "computing metrics")
    finishing = run.stop.within(None, stage="metrics")
    metrics = Metrics.model_validate(
        solution_metrics(
            run.eff, solution, pairing.scan, tick=lambda what: finishing.check(f"metrics: {what}")
        )
    )
    run.lap("metrics")
    update: dict[str, object] = {"metrics": metrics}
    if run.prev is not None:
        # the previous plan's intake was checked by solve(); `solution` is this instance's
        changes = plan_changes(
            run.prev,
            solution,
            run.instance,
            minimal=run.minimal and solution.status == "optimal",
            force=True,
        )
        update["changes"] = quality_trades(run.eff, solution, run.prev, changes)
    if not run.deterministic:
        update["run"] = solution.run.model_copy(
            update={
                "time_s": round(run.deadline.elapsed(), 3),
                "stages": {k: round(v, 3) for k, v in run.stages.items()},
            }
        )
    return solution.model_copy(update=update)


def _sets_in_pool(
    run: _Run, candidates: list[Candidate], in_cohort: dict[int, list[int]]
) -> dict[int, CohortSets]:
    """Every cohort's sets from the worker processes (cohort index -> sets), when the pool is
    there and the work is worth it; else nothing (the cohorts then run one by one). Each
    cohort gets the time a serial run would give it."""
    pool, eff, people = run.pool, run.eff, run.people
    if pool is None or not eff.cohorts:
        return {}
    n_q = len(eff.cohorts)
    tasks = []
    for q, cohort in enumerate(eff.cohorts):
        ks = in_cohort[q]
        duos = [(people[candidates[k].patient_leader], people[candidates[k].partner]) for k in ks]
        share = run.deadline.share(0.5 / n_q, n_q)
        if share is not None and not run.deterministic:
            share *= pool.workers  # the cohorts share the workers, not one clock
        tasks.append(set_pool.SetTask(cohort, duos, share))
    loads_kernel = searches_load_compiled(eff, [len(t.duos) for t in tasks], run.stop.remaining())
    if not set_pool.worth_it(pool, tasks, loads_kernel=loads_kernel):
        return {}

    def keep_going(fraction: float) -> bool:
        ok = run.reporter.report(
            "learning_sets", fraction, f"action-learning sets: {fraction:.0%} of the cohorts"
        )
        return ok and not run.stop.cancelled

    results = set_pool.form_all(
        pool,
        eff,
        tasks,
        seed=run.seed,
        deterministic=run.deterministic,
        deadline=run.stop.deadline,
        keep_going=keep_going,
    )
    log.info("sets: %d cohorts in %d worker processes", n_q, pool.workers)
    return dict(enumerate(results))


#: Share of the time limit the searches may use; the rest is kept for building the output.
RESERVE = 0.85
#: Seconds per participant the plan takes after the searches, whatever the limit: records and
#: reasons, every cohort's sets built once (a placed pair must be in a set), the unmatched
#: people's reasons, metrics (scoring every lone pair again for the blocking pairs). Measured
#: at 5,000 participants on a quiet 2-core machine: ~1.2 s after placement (032bfa1); at 20,000
#: under load, 2.9 s of records and reasons, ~4 s of sets after the deadline, 4.9 s of metrics.
TAIL_S_PER_PARTICIPANT = 0.00025
#: The searches keep at least this share of the time limit, whatever the estimate above. A
#: limit shorter than the tail (1 s at 5,000 participants: ~0.8 s of work after the searches
#: at 39bac9b on a quiet machine, 1.2 s in a slow process) gets past it by this much: 0.2 made
#: runs end 1.3-1.7 s after a 1 s limit's start.
MIN_SEARCH_SHARE = 0.1


def search_time(limit: float, participants: int) -> float:
    """Seconds of a ``limit`` that the searches (pairing, placement, the set searches) may use:
    ``RESERVE`` of it, less what the rest of the plan is expected to take on an intake of
    ``participants`` people, and never below ``MIN_SEARCH_SHARE`` of it."""
    tail = TAIL_S_PER_PARTICIPANT * participants
    return max(MIN_SEARCH_SHARE * limit, min(RESERVE * limit, limit - tail))


#: Share of the searches' remaining time that placement may use (the sets get the rest).
PLACEMENT_SHARE = 0.6


def _set_number(set_id: str) -> int:
    tail = set_id.rsplit("-s", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _mean_distance(d: NDArray[np.float64], members: list[int]) -> float:
    pairs = [d[i, j] for a, i in enumerate(members) for j in members[a + 1 :]]
    return float(np.mean(pairs)) if pairs else 0.0


def _worst(outcomes: list[str]) -> str:
    return "optimal" if all(o == "optimal" for o in outcomes) else "feasible"


def _gap(bound: float | None, placed: int) -> float | None:
    """Relative gap of the plan's pairs placed (after the sets stage, which may leave pairs
    out) to the ceiling (0 when proven at the ceiling)."""
    if bound is None or bound <= 0:
        return None
    return round(max(0.0, bound - placed) / bound, 6)


def _versions() -> dict[str, str]:
    out = {"matcher": matcher_version(), "numpy": np.__version__}
    try:
        out["ortools"] = version("ortools")
    except PackageNotFoundError:
        out["ortools"] = "unknown"
    return out


def _lock_infeasibility(job: Job, candidates: list[Candidate]) -> Infeasible:
    """Name the locks that cannot hold together (CP-SAT assumptions), each with its place in
    ``locks`` (``locks[0]``: the CLI shows the Locks sheet row), and the one rule that binds
    when it is plain: one organisation per set, a declared conflict, or capacity."""
    must = must_place(job, candidates).must_place
    core = diagnose_locks(job.prepared.effective, candidates, must, job.stop)
    if not core:
        return Infeasible("no plan meets the hard rules and the locks")
    eff = job.prepared.effective
    original = job.prepared.original
    position = {(lk.patient_leader, lk.partner): n for n, lk in enumerate(original.locks)}
    names = [candidates[k] for k in core]
    cohorts = sorted({eff.cohorts[c.cohorts[0]].id for c in names if c.cohorts})

    def where(c: Candidate) -> str:
        n = position.get((c.patient_leader, c.partner))
        return f"lock {c.patient_leader}+{c.partner}" + (f" (locks[{n}])" if n is not None else "")

    diagnosis = [
        Conflict(
            kind="lock",
            message=f"{where(c)} in {eff.cohorts[c.cohorts[0]].id}",
            ids=(c.patient_leader, c.partner),
            remedy="remove its cohort or the lock",
        )
        for c in names
        if c.cohorts
    ]
    rules = _binding_lock_rules(eff, [c for c in names if c.cohorts], where)
    diagnosis = rules + diagnosis
    diagnosis += diagnose_cohorts(eff, [c for c in candidates if c.cohorts], cohorts)
    head = (
        f"these {len(names)} locked pairs cannot all be placed in their cohorts "
        f"({', '.join(cohorts)})"
    )
    if rules:
        return Infeasible(f"{head}: {rules[0].message}", diagnosis)
    return Infeasible(f"{head} under the set rules and capacities", diagnosis)


def _binding_lock_rules(
    instance: Instance, locked: list[Candidate], where: Callable[[Candidate], str]
) -> list[Conflict]:
    """Per cohort of the locked pairs ``locked``: the rule they break together, in words with
    figures (more locked pairs than the cohort holds; more pairs of one organisation, or
    pairs with a declared conflict between them, than the cohort has sets)."""
    people = people_by_id(instance)
    hard_org = instance.rules.one_organisation_per_set == "hard"
    out: list[Conflict] = []
    by_cohort: dict[int, list[Candidate]] = {}
    for c in locked:
        by_cohort.setdefault(c.cohorts[0], []).append(c)
    for q, here in sorted(by_cohort.items()):
        cohort = instance.cohorts[q]
        lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
        usable = usable_capacity(cohort)
        most_sets = usable // lo if lo else usable
        shape = (
            f"{cohort.id} holds at most {count(most_sets, 'set')} (capacity "
            f"{cohort.capacity_pairs}, sets of {lo}-{hi} pairs)"
        )
        if len(here) > usable:
            out.append(
                Conflict(
                    "capacity",
                    f"{count(len(here), 'pair')} are locked into {cohort.id}, which holds at "
                    f"most {count(usable, 'pair')} (capacity {cohort.capacity_pairs}, sets of "
                    f"{lo}-{hi} pairs): " + ", ".join(where(c) for c in here),
                    (cohort.id,),
                    f"raise {cohort.id}'s capacity or lock fewer pairs into it",
                )
            )
            continue
        if hard_org:
            orgs: dict[str, list[Candidate]] = {}
            spelled: dict[str, str] = {}
            for c in here:
                for pid in (c.patient_leader, c.partner):
                    org = category_key(people[pid].organisation)
                    spelled.setdefault(org, people[pid].organisation)
                    if c not in orgs.setdefault(org, []):
                        orgs[org].append(c)
            for key, pairs in sorted(orgs.items()):
                org = spelled[key]
                if len(pairs) > most_sets:
                    out.append(
                        Conflict(
                            "organisation",
                            f"one organisation per set: {' and '.join(where(c) for c in pairs)}"
                            f" put {count(len(pairs), 'pair')} of organisation {org} in "
                            f"{cohort.id}, and {shape}",
                            tuple(x for c in pairs for x in (c.patient_leader, c.partner)),
                            "lock one of them into another cohort, remove a lock, or set "
                            "rules.one_organisation_per_set to soft",
                        )
                    )
        if most_sets == 1:
            for i, a in enumerate(here):
                for b in here[i + 1 :]:
                    if pairs_in_conflict(
                        (people[a.patient_leader], people[a.partner]),
                        (people[b.patient_leader], people[b.partner]),
                    ):
                        out.append(
                            Conflict(
                                "conflict",
                                f"declared conflict: {where(a)} and {where(b)} may not share "
                                f"a set (avoid), and {shape}",
                                (a.patient_leader, a.partner, b.patient_leader, b.partner),
                                "lock one of them into another cohort or remove a lock",
                            )
                        )
    return out


def _unmatched(
    instance: Instance,
    pairing: Pairing,
    formed_people: set[str],
    original: Instance,
    prev: Solution | None,
    ticks: Stop | None = None,
) -> list[Unmatched]:
    """Unmatched people of ``instance`` (the effective intake) with their reasons; someone whose
    partner (in ``original``, or in the previous plan ``prev``) withdrew is told so first."""
    scan = pairing.scan
    was_with: dict[str, str] = {}
    for pair in prev.pairs if prev is not None else []:
        was_with[pair.patient_leader], was_with[pair.partner] = pair.partner, pair.patient_leader
    out = []
    for n_seen, p in enumerate(instance.participants):
        if ticks is not None and n_seen % 512 == 0:
            ticks.check(f"reasons of the unmatched: {n_seen} of {len(instance.participants)}")
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
        reason = partner_gone_reason(original, p.id, reason, was_with.get(p.id))
        out.append(Unmatched(participant=p.id, reason=reason + _dates_rule_out(instance, p)))
    return out


def _dates_rule_out(instance: Instance, p: Participant) -> str:
    """For someone whose dates leave no cohort at all: which dates rule out each cohort."""
    if not p.unavailable_dates or any(can_attend(p, c) for c in instance.cohorts):
        return ""
    why = [why_cannot_attend(p, c) for c in instance.cohorts]
    return f" ({'; '.join(w for w in why if w)})"
