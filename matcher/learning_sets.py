"""Action-learning sets: split each cohort's pairs into diverse sets of 3–4 pairs.

Hard rules: set sizes within the cohort's ``set_size``; never two pairs sharing an organisation
(either member) in one set (``rules.one_organisation_per_set = "hard"``; under ``"soft"`` it
costs ``ORGANISATION_PENALTY`` in the objective instead); declared conflicts never in one set.

Objective: the most diverse sets — the sum, over pairs in the same set, of the pairwise
distance below (each unordered pair of pairs counted once). With
``rules.set_diversity = "least_first"`` the least diverse set is made as diverse as possible
first, then the sum.

Distance between pairs P and Q, in [0, 1], with ``instance.diversity`` weights ``w``::

    d(P, Q) = (w.organisation_type * (1 - J(types P, types Q))
               + w.system          * (1 - J(systems P, systems Q))
               + w.role_mix        * [professional roles differ]
               + w.interests       * (1 - J(interests P, interests Q))) / Σ w

where ``J`` is the Jaccard similarity of the two pairs' sets (organisation types, local
systems, interests of both members; ``J(∅, ∅) = 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from ortools.sat.python import cp_model

from matcher.placement import set_counts
from matcher.schema import Cohort, Instance, Participant
from matcher.scoring import tag
from solvers.grouping import (
    GroupingInfeasible,
    GroupingNotFound,
    GroupingResult,
    diverse_groups,
)
from solvers.maximin_grouping import maximin_groups

#: Cost of two pairs sharing an organisation in one set when the rule is soft: more than any
#: distance gain (distances are at most 1), so it happens only when unavoidable.
ORGANISATION_PENALTY = 2.0
#: Tabu-search budget per cohort: 400 iterations per pair, but at most SEARCH_WORK / n
#: iterations (an iteration costs O(n)), and at least SEARCH_MIN_ITERS. Measured on a 200-pair
#: cohort: 2,500 iterations take 0.5 s and reach within 0.4% of an 80,000-iteration run.
SEARCH_WORK = 500_000
SEARCH_MIN_ITERS = 2_000
#: Cohorts up to this many pairs get the exact CP-SAT grouping (proven optimal); larger ones
#: the iterated tabu search. Measured: exact at 13-14 pairs with cannot-link rules can take
#: 10 s, at 12 or fewer well under a second.
EXACT_MAX_PAIRS = 12


def _jaccard(a: set[str], b: set[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def pair_distance(
    instance: Instance, duos: list[tuple[Participant, Participant]]
) -> NDArray[np.float64]:
    """The documented diversity distance between every two pairs (symmetric, zero diagonal)."""
    w = instance.diversity
    total = w.organisation_type + w.system + w.role_mix + w.interests
    n = len(duos)
    d = np.zeros((n, n))
    if total <= 0:
        return d
    types = [{tag(a.organisation_type), tag(b.organisation_type)} for a, b in duos]
    systems = [{tag(a.system), tag(b.system)} for a, b in duos]
    roles = [b.role for _, b in duos]
    interests = [{tag(t) for t in (*a.interests, *b.interests)} for a, b in duos]
    for i in range(n):
        for j in range(i + 1, n):
            value = (
                w.organisation_type * (1 - _jaccard(types[i], types[j]))
                + w.system * (1 - _jaccard(systems[i], systems[j]))
                + w.role_mix * (roles[i] != roles[j])
                + w.interests * (1 - _jaccard(interests[i], interests[j]))
            ) / total
            d[i, j] = d[j, i] = value
    return d


def _shares_organisation(
    p: tuple[Participant, Participant], q: tuple[Participant, Participant]
) -> bool:
    return bool(
        {tag(p[0].organisation), tag(p[1].organisation)}
        & {tag(q[0].organisation), tag(q[1].organisation)}
    )


def _in_conflict(p: tuple[Participant, Participant], q: tuple[Participant, Participant]) -> bool:
    ids_p, ids_q = {p[0].id, p[1].id}, {q[0].id, q[1].id}
    return any(other in ids_q for m in p for other in m.avoid) or any(
        other in ids_p for m in q for other in m.avoid
    )


@dataclass(frozen=True)
class CohortSets:
    """Sets of one cohort: ``sets`` lists pair indices (into the input list); ``dropped`` the
    pairs the hard rules left out, with the reason."""

    sets: list[list[int]]
    diversity: list[float]
    dropped: dict[int, str]
    status: str  # optimal | feasible
    method: str


def form_sets(
    instance: Instance,
    cohort: Cohort,
    duos: list[tuple[Participant, Participant]],
    *,
    seed: int = 0,
    time_limit: float | None = None,
    deterministic: bool = True,
) -> CohortSets:
    """Split the pairs ``duos`` of ``cohort`` into action-learning sets."""
    n = len(duos)
    if n == 0:
        return CohortSets([], [], {}, "optimal", "none")
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    hard_org = instance.rules.one_organisation_per_set == "hard"
    d = pair_distance(instance, duos)
    links = []
    for i in range(n):
        for j in range(i + 1, n):
            shared = _shares_organisation(duos[i], duos[j])
            if _in_conflict(duos[i], duos[j]) or (shared and hard_org):
                links.append((i, j))
            elif shared:
                d[i, j] = d[j, i] = d[i, j] - ORGANISATION_PENALTY

    keep = list(range(n))
    dropped: dict[int, str] = {}
    best = _group(
        instance, d, lo, hi, links, seed=seed, time_limit=time_limit, deterministic=deterministic
    )
    if best is None:
        # No valid split of every pair: leave out the fewest (exact), then group the rest.
        keep, dropped = _fewest_drops(cohort, duos, links, seed=seed)
        if not keep:
            return CohortSets([], [], dropped, "optimal", "none")
        index = {k: i for i, k in enumerate(keep)}
        sub_links = [(index[i], index[j]) for i, j in links if i in index and j in index]
        best = _group(
            instance,
            d[np.ix_(keep, keep)],
            lo,
            hi,
            sub_links,
            seed=seed,
            time_limit=time_limit,
            deterministic=deterministic,
        )
        if best is None:  # the exact model proved this subset groupable: a solver failure
            raise RuntimeError(f"cohort {cohort.id}: no grouping found for {len(keep)} pairs")
    sets: list[list[int]] = [[] for _ in range(int(best.labels.max()) + 1)]
    for i, g in enumerate(best.labels.tolist()):
        sets[g].append(keep[i])
    sets = [sorted(s) for s in sets if s]
    sets.sort()
    full = pair_distance(instance, duos)
    diversity = [
        float(np.mean([full[i, j] for a, i in enumerate(s) for j in s[a + 1 :]]))
        if len(s) > 1
        else 0.0
        for s in sets
    ]
    return CohortSets(sets, diversity, dropped, best.status, best.method)


def _group(
    instance: Instance,
    d: NDArray[np.float64],
    lo: int,
    hi: int,
    links: list[tuple[int, int]],
    *,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
) -> GroupingResult | None:
    """Best grouping over the feasible numbers of sets (fewest first), or None if none."""
    n = d.shape[0]
    # Deterministic mode runs on an iteration budget; the time limit is then only a safety cap
    # (if it bites, the result can vary run to run). Otherwise the search is anytime.
    iters = max(SEARCH_MIN_ITERS, min(400 * n, SEARCH_WORK // max(n, 1)))
    for s in set_counts(lo, hi, n):  # fewest sets first: larger sets hold more diverse pairs
        bounds = [(lo, hi)] * s
        cl = links or None
        try:
            if instance.rules.set_diversity == "least_first":
                return maximin_groups(
                    d, bounds, cannot_link=cl, seed=seed, time_limit=time_limit, max_iters=iters
                )
            exact = n <= EXACT_MAX_PAIRS
            return diverse_groups(
                d,
                bounds,
                cannot_link=cl,
                seed=seed,
                # deterministic: the exact model (at most EXACT_MAX_PAIRS pairs) runs to proof,
                # the heuristic on its iteration budget with the time limit only as a cap
                time_limit=None if deterministic and exact else time_limit,
                max_iters=iters,
                method="exact" if exact else "heuristic",
            )
        except GroupingInfeasible:
            continue
        except GroupingNotFound:
            # The time limit ran out before any grouping was found: take the heuristic's first
            # feasible grouping on a small budget rather than return nothing.
            try:
                return diverse_groups(
                    d, bounds, cannot_link=cl, seed=seed, method="heuristic", max_iters=10 * n
                )
            except (GroupingInfeasible, GroupingNotFound):
                continue
    return None


def _fewest_drops(
    cohort: Cohort,
    duos: list[tuple[Participant, Participant]],
    links: list[tuple[int, int]],
    *,
    seed: int,
) -> tuple[list[int], dict[int, str]]:
    """Exact CP-SAT: leave out the fewest pairs so that the rest form valid sets."""
    n = len(duos)
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    groups = n // lo
    model = cp_model.CpModel()
    z = {(k, g): model.new_bool_var(f"z{k}_{g}") for k in range(n) for g in range(groups)}
    used = [model.new_bool_var(f"u{g}") for g in range(groups)]
    out = [model.new_bool_var(f"d{k}") for k in range(n)]
    for k in range(n):
        model.add(sum(z[k, g] for g in range(groups)) + out[k] == 1)
    for g in range(groups):
        size = sum(z[k, g] for k in range(n))
        model.add(size >= lo * used[g])
        model.add(size <= hi * used[g])
        if g:
            model.add(used[g] <= used[g - 1])  # symmetry: use groups in order
        for i, j in links:
            model.add(z[i, g] + z[j, g] <= 1)
    model.minimize(sum(out))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_deterministic_time = 30.0
    code = solver.solve(model)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        keep: list[int] = []
        return keep, {k: _drop_reason(cohort, n, duos, k, links) for k in range(n)}
    keep = [k for k in range(n) if not solver.value(out[k])]
    dropped = {k: _drop_reason(cohort, n, duos, k, links) for k in range(n) if solver.value(out[k])}
    return keep, dropped


def _drop_reason(
    cohort: Cohort,
    n: int,
    duos: list[tuple[Participant, Participant]],
    k: int,
    links: list[tuple[int, int]],
) -> str:
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    if not set_counts(lo, hi, n):
        return (
            f"cohort {cohort.id} holds {n} pairs, which cannot form sets of {lo}-{hi} pairs; "
            "the fewest pairs were moved out"
        )
    blocked = sum(1 for i, j in links if k in (i, j))
    if blocked == 0:
        return (
            f"left out of cohort {cohort.id} so that the other pairs split into sets of "
            f"{lo}-{hi} under the one-organisation-per-set and conflict rules ({n} pairs)"
        )
    return (
        f"in cohort {cohort.id} the one-organisation-per-set and conflict rules leave no "
        f"set for this pair (it shares an organisation or a conflict with {blocked} of the "
        f"other {n - 1} pairs; sets of {lo}-{hi}); the fewest pairs were left out"
    )
