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

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.rules import (
    one_organisation_per_set,
    organisation_key,
    pair_organisations,
    set_counts,
)
from matcher.engine.scoring import tag
from solvers.grouping import (
    GroupingInfeasible,
    GroupingNotFound,
    GroupingResult,
    PartialGrouping,
    diverse_groups,
    expect_searches,
    group_by_patterns,
    grouping_bound,
    largest_grouping,
    maximin_groups,
    would_load_compiled,
)

#: Cost of two pairs sharing an organisation in one set when the rule is soft: more than any
#: distance gain (distances are at most 1), so it happens only when unavoidable.
ORGANISATION_PENALTY = 2.0
#: Tabu-search budget per cohort of up to SEARCH_SCALED_ABOVE pairs: SEARCH_ITERS iterations.
#: Measured on 24 real cohorts of 15-30 pairs (two generated 600-participant intakes, 3 seeds
#: each): against the former 400 iterations per pair (6,000-12,000 here) the objective changed
#: by -0.04% on average (worst -0.31%, 15 of 24 unchanged) in a fifth of the time.
SEARCH_ITERS = 2_000
#: An iteration evaluates every swap, O(n^2): the budget is capped at SEARCH_SWAP_WORK / n^2
#: iterations (as many swap evaluations as 2,000 iterations at 100 pairs), never below
#: SEARCH_MIN_ITERS.
SEARCH_SWAP_WORK = 2_000 * 100 * 100
#: Fewest iterations for any cohort (an 800-pair cohort gets this many, ~1.2 s).
SEARCH_MIN_ITERS = 150
#: Above this many pairs the budget follows the cohort's size: SEARCH_ITERS_PER_PAIR
#: iterations per pair (within the caps above), and the search ends after
#: max(SEARCH_MIN_STALL, n / SEARCH_STALL_DIVISOR) iterations without a better grouping (a
#: tabu move moves one or two pairs: from a greedy start the sets settle within about n
#: moves). Measured on the 50 cohorts (118-257 pairs) of generated 20,000 (seed 0): against
#: the former fixed 300-500 iterations, set CPU 12.2 s -> 6.5 s, total diversity 2,104.33 ->
#: 2,104.15 (-0.008%), least set 0.8579 -> 0.8591; on 10 of those cohorts 50 iterations lose
#: 0.55%, 100 lose 0.06%, 150 to 500 are level. Cohorts up to 100 pairs keep their budget
#: (every intake up to 2,000 participants: plans unchanged).
SEARCH_SCALED_ABOVE = 100
SEARCH_ITERS_PER_PAIR = 2
SEARCH_MIN_STALL = 30
SEARCH_STALL_DIVISOR = 4
#: Cohorts up to this many pairs get the exact grouping (proven optimal); larger ones the
#: iterated tabu search. A cohort's sets share one size range, so the exact grouping is the
#: dynamic programming over subsets of :mod:`solvers.grouping.subsets`: 2-20 ms at 12 pairs
#: (CP-SAT's model took 0.1-0.5 s there), but it grows as 2^pairs (about 50 ms at 14 and
#: 0.1 s at 16), where a tabu search takes 5-30 ms.
EXACT_MAX_PAIRS = 12
#: Cohorts up to this many pairs that cannot be grouped whole get the exact "fewest pairs left
#: out" model (pairs x sets variables, conflicts x sets clauses); larger ones the bounded
#: construction and repair search of :func:`solvers.grouping.largest_grouping`.
EXACT_DROPS_MAX_PAIRS = 24
#: A cohort whose only set rule is one organisation per set is grouped by counting set patterns
#: (:func:`solvers.grouping.group_by_patterns`) when the searches find no grouping of
#: everyone and its organisation mixes allow at most this many patterns.
PATTERN_MAX = 5_000
#: Numbers of sets tried, fewest first, whose search fails without a proof of infeasibility
#: before the cohort is treated as not groupable whole.
UNPROVEN_TRIES = 2


def _incidence(items: list[set[str]]) -> NDArray[np.float64]:
    """0/1 matrix: row i marks the members of ``items[i]`` (columns: every member seen)."""
    index: dict[str, int] = {}
    rows, cols = [], []
    for i, members in enumerate(items):
        for m in members:
            rows.append(i)
            cols.append(index.setdefault(m, len(index)))
    out = np.zeros((len(items), max(1, len(index))))
    out[rows, cols] = 1.0
    return out


def _jaccard_matrix(items: list[set[str]]) -> NDArray[np.float64]:
    """``J[i, j]`` = Jaccard similarity of ``items[i]`` and ``items[j]`` (1 when both empty)."""
    inc = _incidence(items)
    inter = inc @ inc.T  # exact integer counts
    size = inc.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 1.0)


def pair_distance(
    instance: Instance, duos: list[tuple[Participant, Participant]]
) -> NDArray[np.float64]:
    """The documented diversity distance between every two pairs (symmetric, zero diagonal).

    Vectorised (O(n^2) memory, no Python loop over pairs of pairs); the arithmetic is the
    formula's, term by term, so values equal the scalar formula's bit for bit."""
    w = instance.diversity
    total = w.organisation_type + w.system + w.role_mix + w.interests
    n = len(duos)
    if total <= 0 or n == 0:
        return np.zeros((n, n))
    types = [{tag(a.organisation_type), tag(b.organisation_type)} for a, b in duos]
    systems = [{tag(a.system), tag(b.system)} for a, b in duos]
    roles = np.array([b.role for _, b in duos])
    interests = [{tag(t) for t in (*a.interests, *b.interests)} for a, b in duos]
    d = (
        w.organisation_type * (1 - _jaccard_matrix(types))
        + w.system * (1 - _jaccard_matrix(systems))
        + w.role_mix * (roles[:, None] != roles[None, :])
        + w.interests * (1 - _jaccard_matrix(interests))
    ) / total
    np.fill_diagonal(d, 0.0)
    return np.asarray(d, dtype=np.float64)


def _organisations(duos: list[tuple[Participant, Participant]]) -> dict[str, list[int]]:
    """Organisation -> indices of the pairs with a member from it. Organisations are compared
    as the rules compare them (:func:`matcher.contract.rules.pair_organisations`); the key is the
    first spelling met (for messages), keys sorted."""
    by_tag: dict[str, list[int]] = defaultdict(list)
    spelling: dict[str, str] = {}
    for k, duo in enumerate(duos):
        for m in duo:
            spelling.setdefault(organisation_key(m), m.organisation)
        for key in sorted(pair_organisations(duo)):
            by_tag[key].append(k)
    return dict(sorted((spelling[key], ks) for key, ks in by_tag.items()))


def _conflicts(duos: list[tuple[Participant, Participant]]) -> set[tuple[int, int]]:
    """Pairs of pairs (i < j) with a declared conflict between their members: the index form
    of :func:`matcher.contract.rules.pairs_in_conflict` (one pass over the ``avoid`` lists;
    tests/test_rules.py ties the two)."""
    pair_of = {m.id: k for k, duo in enumerate(duos) for m in duo}
    out: set[tuple[int, int]] = set()
    for k, duo in enumerate(duos):
        for m in duo:
            for other in m.avoid:
                j = pair_of.get(other)
                if j is not None and j != k:
                    out.add((min(k, j), max(k, j)))
    return out


def _conflict_cliques(n: int, conflicts: set[tuple[int, int]]) -> list[list[int]]:
    """Cliques of mutually conflicting pairs, found greedily from each pair (largest first):
    a clique of k pairs needs k sets."""
    if not conflicts:
        return []
    adj: dict[int, set[int]] = defaultdict(set)
    for i, j in conflicts:
        adj[i].add(j)
        adj[j].add(i)
    found: set[tuple[int, ...]] = set()
    for start in sorted(adj, key=lambda v: (-len(adj[v]), v))[:50]:
        clique = [start]
        for v in sorted(adj[start], key=lambda v: (-len(adj[v]), v)):
            if all(v in adj[u] for u in clique):
                clique.append(v)
        if len(clique) > 2:
            found.add(tuple(sorted(clique)))
    return [list(c) for c in sorted(found, key=lambda c: (-len(c), c))][:10]


@dataclass(frozen=True)
class SetRuleCheck:
    """The fast necessary conditions of one cohort's set rules, before any search.

    ``bound``: proven upper bound on the pairs that can be grouped (``== n`` when the
    conditions hold for everyone); ``groups``: sets at which it is reached; ``busiest``: the
    organisation in the most pairs and its count; ``most_sets``: the most sets the pairs can
    form; ``clique``: the largest group of mutually conflicting pairs found."""

    n: int
    lo: int
    hi: int
    bound: int
    groups: int
    busiest: tuple[str, int] | None
    most_sets: int
    clique: int

    @property
    def fewest_sets(self) -> int:
        """Fewest sets the rules allow: one per pair of the busiest organisation, one per pair
        of the largest conflict clique."""
        return max(self.busiest[1] if self.busiest else 1, self.clique, 1)


def check_set_rules(
    instance: Instance, cohort: Cohort, duos: list[tuple[Participant, Participant]]
) -> SetRuleCheck:
    """Organisation counts, set sizes and conflict cliques against the set rules: O(pairs) plus
    the greedy clique search, no model."""
    n = len(duos)
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    hard_org = one_organisation_per_set(instance)
    orgs = _organisations(duos) if hard_org else {}
    conflict = _conflict_cliques(n, _conflicts(duos))
    bound, groups = grouping_bound(n, lo, hi, _cliques_of(orgs, conflict))
    busiest = None
    if orgs:
        org = min(orgs, key=lambda o: (-len(orgs[o]), o))
        busiest = (org, len(orgs[org]))
    return SetRuleCheck(
        n=n,
        lo=lo,
        hi=hi,
        bound=bound,
        groups=groups,
        busiest=busiest,
        most_sets=max(set_counts(lo, hi, n), default=n // lo),
        clique=max((len(c) for c in conflict), default=1),
    )


def _cliques(instance: Instance, duos: list[tuple[Participant, Participant]]) -> list[list[int]]:
    """Groups of pairs a set may hold at most one of: per organisation (hard rule), and the
    conflict cliques."""
    orgs = _organisations(duos) if one_organisation_per_set(instance) else {}
    return _cliques_of(orgs, _conflict_cliques(len(duos), _conflicts(duos)))


def _cliques_of(orgs: dict[str, list[int]], conflict: list[list[int]]) -> list[list[int]]:
    """:func:`_cliques` from the pairs of each organisation (empty without the hard rule) and
    the conflict cliques."""
    return [ks for ks in orgs.values() if len(ks) > 1] + conflict


def _links(instance: Instance, duos: list[tuple[Participant, Participant]]) -> NDArray[np.int64]:
    """Cannot-link pairs of pairs (k x 2, i < j): the vectorised form of
    :func:`matcher.contract.rules.never_share_a_set` (a declared conflict, or a shared
    organisation under the hard rule; tests/test_rules.py ties the two)."""
    n = len(duos)
    link = np.zeros((n, n), dtype=np.bool_)
    if one_organisation_per_set(instance):
        inc = _incidence([set(pair_organisations(duo)) for duo in duos])
        link |= (inc @ inc.T) > 0
    for i, j in _conflicts(duos):
        link[i, j] = True
    iu, ju = np.nonzero(np.triu(link, k=1))
    return np.stack([iu, ju], axis=1).astype(np.int64).reshape(-1, 2)


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
    should_stop: Callable[[], bool] | None = None,
) -> CohortSets:
    """Split the pairs ``duos`` of ``cohort`` into action-learning sets.

    First the fast necessary conditions (:func:`check_set_rules`). When they allow every pair,
    the set search runs for the feasible numbers of sets (fewest first). When they do not, or
    the search finds no grouping of everyone, the most pairs that can be grouped are kept
    (exact on small cohorts, else the bounded construction and repair of
    :func:`solvers.grouping.largest_grouping`) and the others are dropped with the reason in
    numbers. Memory O(pairs^2 + pairs x sets); no model grows beyond that.
    """
    n = len(duos)
    if n == 0:
        return CohortSets([], [], {}, "optimal", "none")
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    hard_org = one_organisation_per_set(instance)
    full = pair_distance(instance, duos)
    d = full.copy()
    links = _links(instance, duos)
    if not hard_org:
        inc = _incidence([set(pair_organisations(duo)) for duo in duos])
        shared = (inc @ inc.T) > 0
        shared[links[:, 0], links[:, 1]] = False
        shared[links[:, 1], links[:, 0]] = False
        np.fill_diagonal(shared, False)
        d = np.where(shared, d - ORGANISATION_PENALTY, d)
    check = check_set_rules(instance, cohort, duos)

    keep = list(range(n))
    dropped: dict[int, str] = {}
    best = None
    if check.bound >= n:
        best = _group(
            instance,
            d,
            lo,
            hi,
            links,
            fewest=check.fewest_sets,
            seed=seed,
            time_limit=time_limit,
            deterministic=deterministic,
            should_stop=should_stop,
        )
    if best is None:
        # Not every pair can be grouped: keep the most that can, drop the others with why.
        by_pattern = _by_patterns(instance, cohort, duos, seed=seed)
        if by_pattern is not None:
            keep, labels, found_by = by_pattern
        else:
            keep, labels, found_by = _most_groupable(
                instance, cohort, duos, links, check, seed=seed, should_stop=should_stop
            )
        kept = set(keep)
        if len(keep) < n:
            reason = _drop_reason(cohort, check, len(keep), found_by)
            dropped = {k: reason for k in range(n) if k not in kept}
        if not keep:
            return CohortSets([], [], dropped, "optimal", "none")
        best = _group_kept(
            instance,
            d,
            keep,
            labels,
            lo,
            hi,
            links,
            seed=seed,
            time_limit=time_limit,
            deterministic=deterministic,
            should_stop=should_stop,
        )
    sets: list[list[int]] = [[] for _ in range(int(best.labels.max()) + 1)]
    for i, g in enumerate(best.labels.tolist()):
        sets[g].append(keep[i])
    sets = [sorted(s) for s in sets if s]
    sets.sort()
    diversity = [
        float(np.mean([full[i, j] for a, i in enumerate(s) for j in s[a + 1 :]]))
        if len(s) > 1
        else 0.0
        for s in sets
    ]
    return CohortSets(sets, diversity, dropped, best.status, best.method)


def _budget(n: int) -> tuple[int, int | None]:
    """The set search's iteration budget and stall rule for a cohort of ``n`` pairs."""
    if n <= SEARCH_SCALED_ABOVE:
        return max(SEARCH_MIN_ITERS, min(SEARCH_ITERS, SEARCH_SWAP_WORK // max(n * n, 1))), None
    iters = max(SEARCH_MIN_ITERS, min(SEARCH_ITERS_PER_PAIR * n, SEARCH_SWAP_WORK // (n * n)))
    return iters, max(SEARCH_MIN_STALL, n // SEARCH_STALL_DIVISOR)


def announce_searches(
    instance: Instance, pair_counts: list[int], within: float | None = None
) -> None:
    """Tell the set search which tabu searches the cohorts of ``pair_counts`` pairs are about
    to run (one each above ``EXACT_MAX_PAIRS``, on its iteration budget), and within how many
    seconds they must all stop under a time limit, so that a small intake's searches (or a
    short limit's) run on the numpy kernel rather than wait for the compiled one to load
    (:func:`solvers.grouping.expect_searches`; identical sets either way without a limit)."""
    if instance.rules.set_diversity == "least_first":
        return
    expect_searches(_searches(pair_counts), within)


def searches_load_compiled(
    instance: Instance, pair_counts: list[int], within: float | None = None
) -> bool:
    """Whether the set searches of cohorts of ``pair_counts`` pairs, run in this process,
    would load the compiled search kernel first (0.8-1 s in a fresh process; see
    :func:`announce_searches`). Nothing is announced."""
    if instance.rules.set_diversity == "least_first":
        return False
    return would_load_compiled(_searches(pair_counts), within)


def _searches(pair_counts: list[int]) -> list[tuple[int, int]]:
    """(iterations, pairs) of the tabu search each cohort of ``pair_counts`` pairs runs."""
    return [(_budget(n)[0], n) for n in pair_counts if n > EXACT_MAX_PAIRS]


def _search(
    instance: Instance,
    d: NDArray[np.float64],
    bounds: list[tuple[int, int]],
    links: NDArray[np.int64] | None,
    *,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
    initial: NDArray[np.int64] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GroupingResult:
    """One set search with a fixed number of sets (the objective the rules ask for)."""
    n = d.shape[0]
    iters, stall = _budget(n)
    cl = links if links is not None and len(links) else None
    if instance.rules.set_diversity == "least_first":
        return maximin_groups(
            d,
            bounds,
            cannot_link=cl,
            seed=seed,
            time_limit=time_limit,
            max_iters=iters,
            initial=initial,
            should_stop=should_stop,
        )
    exact = n <= EXACT_MAX_PAIRS
    return diverse_groups(
        d,
        bounds,
        cannot_link=cl,
        seed=seed,
        # deterministic: the exact method (at most EXACT_MAX_PAIRS pairs) runs to proof,
        # the heuristic on its iteration budget with the time limit only as a cap
        time_limit=None if deterministic and exact else time_limit,
        max_iters=iters,
        stall=stall,
        method="exact" if exact else "heuristic",
        initial=initial,
        should_stop=should_stop,
    )


def _group(
    instance: Instance,
    d: NDArray[np.float64],
    lo: int,
    hi: int,
    links: NDArray[np.int64],
    *,
    fewest: int,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
    should_stop: Callable[[], bool] | None = None,
) -> GroupingResult | None:
    """Best grouping of every pair over the feasible numbers of sets (fewest first, none below
    ``fewest``, which the rules rule out), or None if none is found. Deterministic mode runs
    on an iteration budget; the time limit is then only a safety cap (if it bites, the result
    can vary run to run). Otherwise the search is anytime."""
    n = d.shape[0]
    unproven = 0
    for s in set_counts(lo, hi, n):  # fewest sets first: larger sets hold more diverse pairs
        if s < fewest:
            continue
        bounds = [(lo, hi)] * s
        try:
            return _search(
                instance,
                d,
                bounds,
                links,
                seed=seed,
                time_limit=time_limit,
                deterministic=deterministic,
                should_stop=should_stop,
            )
        except GroupingInfeasible:
            continue
        except GroupingNotFound:
            # No grouping found (time limit, or a construction that failed without proof):
            # after a few such numbers of sets, hand over to the largest-subset search.
            unproven += 1
            if unproven >= UNPROVEN_TRIES or (should_stop is not None and should_stop()):
                return None
    return None


def _group_kept(
    instance: Instance,
    d: NDArray[np.float64],
    keep: list[int],
    labels: NDArray[np.int64],
    lo: int,
    hi: int,
    links: NDArray[np.int64],
    *,
    seed: int,
    time_limit: float | None,
    deterministic: bool,
    should_stop: Callable[[], bool] | None,
) -> GroupingResult:
    """Make the sets of the kept pairs diverse, starting from their feasible ``labels``."""
    index = np.full(d.shape[0], -1, dtype=np.int64)
    index[keep] = np.arange(len(keep))
    sub = index[links] if len(links) else links
    sub = sub[(sub >= 0).all(axis=1)] if len(sub) else sub
    groups = int(labels.max()) + 1
    return _search(
        instance,
        d[np.ix_(keep, keep)],
        [(lo, hi)] * groups,
        sub,
        seed=seed,
        time_limit=time_limit,
        deterministic=deterministic,
        initial=labels,
        should_stop=should_stop,
    )


def _most_groupable(
    instance: Instance,
    cohort: Cohort,
    duos: list[tuple[Participant, Participant]],
    links: NDArray[np.int64],
    check: SetRuleCheck,
    *,
    seed: int,
    should_stop: Callable[[], bool] | None,
) -> tuple[list[int], NDArray[np.int64], str]:
    """The most pairs that form valid sets: ``(kept indices, their set labels, how found)``.
    Exact on small cohorts; otherwise the bounded construction and repair search."""
    n = len(duos)
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    partial: PartialGrouping = largest_grouping(
        n,
        lo,
        hi,
        cannot_link=links,
        cliques=_cliques(instance, duos),
        seed=seed,
        should_stop=should_stop,
    )
    keep = np.flatnonzero(partial.labels >= 0)
    labels = partial.labels[keep].astype(np.int64)
    found_by = "search"
    if len(keep) < check.bound and n <= EXACT_DROPS_MAX_PAIRS:
        exact = _fewest_drops(n, lo, hi, links, seed=seed)
        if exact is not None and len(exact[0]) >= len(keep):
            return exact[0], exact[1], "exact"
    if len(keep) == check.bound:
        found_by = "exact"  # the bound is reached: the most possible
    return keep.tolist(), labels, found_by


def _by_patterns(
    instance: Instance,
    cohort: Cohort,
    duos: list[tuple[Participant, Participant]],
    *,
    seed: int,
) -> tuple[list[int], NDArray[np.int64], str] | None:
    """The most pairs that form valid sets, exactly, when one organisation per set is the only
    set rule (no declared conflicts): pairs with the same organisations are interchangeable,
    so counting set patterns decides it (:func:`solvers.grouping.group_by_patterns`).
    ``(kept indices, their set labels, how found)``, or None when the rule set is other or the
    patterns are too many."""
    if not one_organisation_per_set(instance) or _conflicts(duos):
        return None
    keys: dict[str, int] = {}
    resources = [
        frozenset(keys.setdefault(o, len(keys)) for o in sorted(pair_organisations(duo)))
        for duo in duos
    ]
    lo, hi = cohort.set_size.min_pairs, cohort.set_size.max_pairs
    found = group_by_patterns(resources, lo, hi, seed=seed, max_patterns=PATTERN_MAX)
    if found is None:
        return None
    keep = np.flatnonzero(found.labels >= 0)
    return keep.tolist(), found.labels[keep], "exact" if found.proven else "search"


def _fewest_drops(
    n: int, lo: int, hi: int, links: NDArray[np.int64], *, seed: int
) -> tuple[list[int], NDArray[np.int64]] | None:
    """Exact CP-SAT on a small cohort: leave out the fewest pairs so that the rest form valid
    sets. O(n * n / lo) variables, O(links * n / lo) clauses: callers keep n small. None if
    CP-SAT proves nothing within its deterministic budget."""
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    groups = n // lo
    if groups == 0:
        return [], np.zeros(0, dtype=np.int64)
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
        for i, j in links.tolist():
            model.add(z[i, g] + z[j, g] <= 1)
    model.minimize(sum(out))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_deterministic_time = 5.0
    if solver.solve(model) != cp_model.OPTIMAL:
        return None
    keep = [k for k in range(n) if not solver.value(out[k])]
    labels = [next(g for g in range(groups) if solver.value(z[k, g])) for k in keep]
    relabel = {g: i for i, g in enumerate(sorted(set(labels)))}
    return keep, np.array([relabel[g] for g in labels], dtype=np.int64)


def _drop_reason(cohort: Cohort, check: SetRuleCheck, grouped: int, found_by: str) -> str:
    """Why pairs of this cohort are left out of its sets, in numbers, and the remedy."""
    n, lo, hi = check.n, check.lo, check.hi
    if not set_counts(lo, hi, n) and check.bound == 0:
        return (
            f"cohort {cohort.id} holds {n} pairs, which cannot form sets of {lo}-{hi} pairs; "
            "the pairs were left out"
        )
    head = f"cohort {cohort.id}: {n} pairs"
    if check.busiest is not None and check.busiest[1] > check.most_sets:
        org, count = check.busiest
        why = (
            f"{head}, but organisation {org} is in {count} of them and a set holds at most one "
            f"pair per organisation, while {n} pairs make at most {check.most_sets} sets of "
            f"{lo}-{hi}"
        )
    elif check.clique > check.most_sets:
        why = (
            f"{head}, but {check.clique} of them are in mutual declared conflict and need "
            f"{check.clique} sets, while {n} pairs make at most {check.most_sets} sets of {lo}-{hi}"
        )
    else:
        busiest = ""
        if check.busiest is not None:
            busiest = f" (busiest organisation {check.busiest[0]}: {check.busiest[1]} pairs)"
        why = (
            f"{head}; the one-organisation-per-set and conflict rules{busiest} leave no split "
            f"of all of them into sets of {lo}-{hi}"
        )
    proof = "the most possible" if found_by == "exact" else "not proven the most"
    text = (
        f"{why}; at most {check.bound} of the {n} pairs can be grouped ({grouped} grouped, "
        f"{proof}); the others are left out of the sets and wait-listed"
    )
    if check.busiest is not None and check.clique <= check.most_sets:
        text += "; set rules.one_organisation_per_set to 'soft' to group everyone"
    return text
