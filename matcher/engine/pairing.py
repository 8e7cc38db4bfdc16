"""Pairing: keep pre-formed pairs, pair lone applicants by the chosen objective.

Objectives (``--objective``), all over the lone pairs that no hard rule forbids and that reach
``rules.min_score``:

``total`` (default)
    The most pairs, then the highest total score: an exact maximum-weight matching
    (:mod:`solvers.assignment`). Between matchings whose totals differ by less than
    ``TIE_TOLERANCE`` per pair, the one whose pairs rank each other higher is preferred (fewer
    blocking pairs, as a tie-break: not a guarantee).
``fair``
    The most pairs, then the best possible *worst* pair (egalitarian), then the highest total.
    Exact: the bottleneck is found by a binary search over the distinct scores, each step a
    maximum-cardinality matching on the pairs at or above the threshold.
``stable``
    No blocking pair: Gale–Shapley (:func:`solvers.stable.gale_shapley`), patient leaders
    proposing by default (``proposer="professional"`` for the other side). Preferences are each
    person's stated ranked ``preferences`` when given (only allowed partners count; unlisted
    allowed partners follow in score order), otherwise their scores. A stable matching may have
    fewer pairs than the ``total`` one; the price is reported in the metrics.

Scale. The lone applicants are scored in blocks of rows
(:func:`matcher.engine.scoring.iter_blocks`),
so memory stays bounded. Up to ``DENSE_MAX_CELLS`` lone patient-leader × professional pairs,
every allowed pair is a candidate and the guarantees above are exact. Beyond that, each person
keeps their ``CANDIDATES_PER_PERSON`` best allowed partners (the union over both sides) and the
objective is optimised over those candidates; a final greedy pass pairs any two people still
alone who are allowed together, so no two unmatched people could have been paired. The
benchmark in ``benchmarks/results/scaling.md`` measures the score this gives up.

Time limits. Under a solve's deadline, pairing reports progress between scoring blocks and
between its steps, and a cancel raises :class:`~matcher.errors.NoPlanInTime`. The exact matching
is one OR-Tools call that cannot be interrupted (about 1 s at 5,000 participants); when it is
not expected to fit in ``EXACT_SHARE`` of the time left, the lone applicants are paired over
each person's ``HURRIED_PER_PERSON`` best candidates (optimal among those) and completed
greedily, the plan is ``feasible`` (never ``optimal``) and ``run.notes`` says so. ``fair``'s
binary search stops at the deadline with the best worst pair proven so far. Without a time
limit the result is always the exact one above.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from matcher.contract.instance import Instance
from matcher.engine.objectives import DEFAULT, PROPOSERS, PairingObjective, objective_named
from matcher.engine.progress import Stop
from matcher.engine.scoring import Side, iter_blocks, lone_sides, sides
from matcher.errors import NoPlanInTime
from solvers.assignment import max_weight_matching_sparse
from solvers.stable import gale_shapley

#: Score differences below this, per pair, count as ties for the `total` tie-break.
TIE_TOLERANCE = 1e-6
#: Above this many lone (patient leader, professional) pairs, pairing uses candidate lists.
DENSE_MAX_CELLS = 4_000_000
#: Candidate partners kept per person on large intakes.
CANDIDATES_PER_PERSON = 20
#: Top-k used by the "paired with one of their top candidates" metric.
TOP_K = 3
#: Scoring block size (cells) when every allowed pair is kept: small enough that progress is
#: reported every ~0.1 s at 5,000 participants; the result does not depend on it.
DENSE_BLOCK_CELLS = 250_000
#: Estimated seconds of the exact matching per candidate pair (ranks, arc pruning and OR-Tools'
#: min-cost flow: 0.6-0.9 s for the 720,000 candidates of 5,000 generated participants on the
#: project's 2-core machine, so about 1 µs, with a margin for load). ``fair``'s binary search
#: runs unweighted matchings (max flow), about as long in total at that size.
SECONDS_PER_CANDIDATE = 1.5e-6
#: Under a time limit, the exact matching runs only when its estimate fits in this share of the
#: time left; placement and the sets need the rest.
EXACT_SHARE = 0.5
#: Candidates per person kept when the exact matching would not fit in the time left.
HURRIED_PER_PERSON = 5

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass
class SideStats:
    """Per person on one lone side: why they may have no partner, and their top-k scores."""

    allowed: IntArray
    no_cohort: IntArray
    conflict: IntArray
    rule: IntArray
    low: IntArray
    top: FloatArray  # n x TOP_K best allowed scores, descending, -inf padded

    @classmethod
    def empty(cls, n: int) -> SideStats:
        z = np.zeros(n, dtype=np.int64)
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), np.full((n, TOP_K), -np.inf))


@dataclass
class LoneScan:
    """One pass over all lone pairs: candidate pairs and per-person statistics."""

    rows: Side
    cols: Side
    cand_rows: IntArray
    cand_cols: IntArray
    cand_scores: FloatArray
    row_stats: SideStats
    col_stats: SideStats
    dense: bool
    notes: list[str] = field(default_factory=list)
    #: the candidates are every allowed lone pair, in row-major order (a dense scan that kept
    #: candidates), so nothing need score the lone pairs again
    every_allowed: bool = False


def _top_merge(best: FloatArray, new: FloatArray, k: int) -> FloatArray:
    """Per row, the k largest of ``best`` and ``new`` (both n x ·), descending."""
    both = np.concatenate([best, new], axis=1)
    if both.shape[1] > k:
        both = -np.partition(-both, k - 1, axis=1)[:, :k]
    return -np.sort(-both, axis=1)


def scan_lone(
    instance: Instance,
    *,
    candidates: bool = True,
    per_person: int = CANDIDATES_PER_PERSON,
    stop: Stop | None = None,
) -> LoneScan:
    """Score every lone pair block by block; keep candidates (all allowed pairs when the intake
    is small, else each person's ``per_person`` best) and per-person statistics. ``stop`` gets
    a progress tick between blocks; the scan completes whatever the deadline (every lone person
    needs it), but a cancel ends it at the next block (:class:`NoPlanInTime`: no plan yet)."""
    a, b = lone_sides(instance)
    n, m = len(a.ids), len(b.ids)
    dense = n * m <= DENSE_MAX_CELLS
    # Keeping every allowed pair, the result is the same for any block size; with candidate
    # lists, ties between blocks could be kept differently, so the size stays fixed there.
    cells = {"max_cells": DENSE_BLOCK_CELLS} if dense else {}
    min_score = instance.rules.min_score
    rs, cs = SideStats.empty(n), SideStats.empty(m)
    kept_r: list[IntArray] = []
    kept_c: list[IntArray] = []
    kept_s: list[FloatArray] = []
    # running best per column: (score, row) of its per_person best candidates
    col_best_s = np.full((per_person, m), -np.inf)
    col_best_r = np.full((per_person, m), -1, dtype=np.int64)
    for start, comp in iter_blocks(instance, a, b, **cells):
        if stop is not None:
            stop.check(f"scored {start + comp.scores.shape[0]} of {n} patient leaders")
            _cancelled(stop)
        rows_here = comp.scores.shape[0]
        allowed = ~comp.forbidden & (comp.scores >= min_score)
        no_cohort = comp.common_cohorts == 0
        rule = comp.forbidden & ~comp.conflict & ~no_cohort
        low = ~comp.forbidden & (comp.scores < min_score)
        sl = slice(start, start + rows_here)
        for stats, axis in ((rs, 1), (cs, 0)):
            target = sl if axis == 1 else slice(None)
            stats.allowed[target] += allowed.sum(axis)
            stats.no_cohort[target] += no_cohort.sum(axis)
            stats.conflict[target] += comp.conflict.sum(axis)
            stats.rule[target] += rule.sum(axis)
            stats.low[target] += low.sum(axis)
        masked = np.where(allowed, comp.scores, -np.inf)
        rs.top[sl] = _top_merge(rs.top[sl], masked, TOP_K)
        cs.top = _top_merge(cs.top, masked.T, TOP_K)
        if not candidates:
            continue
        if dense:
            ii, jj = np.nonzero(allowed)
            kept_r.append(ii + start)
            kept_c.append(jj)
            kept_s.append(comp.scores[ii, jj])
            continue
        # each row's per_person best allowed columns
        k = min(per_person, m)
        top_j = np.argpartition(-masked, k - 1, axis=1)[:, :k]
        top_v = np.take_along_axis(masked, top_j, axis=1)
        ok = np.isfinite(top_v)
        kept_r.append((np.nonzero(ok)[0] + start).astype(np.int64))
        kept_c.append(top_j[ok].astype(np.int64))
        kept_s.append(top_v[ok])
        # merge this block into each column's running best rows
        ks = min(per_person, rows_here)
        top_i = np.argpartition(-masked, ks - 1, axis=0)[:ks]
        both_s = np.concatenate([col_best_s, np.take_along_axis(masked, top_i, axis=0)])
        both_r = np.concatenate([col_best_r, top_i + start])
        pick = np.argpartition(-both_s, per_person - 1, axis=0)[:per_person]
        col_best_s = np.take_along_axis(both_s, pick, axis=0)
        col_best_r = np.take_along_axis(both_r, pick, axis=0)
    if candidates and not dense:
        ok = np.isfinite(col_best_s)
        jj = np.broadcast_to(np.arange(m), col_best_s.shape)
        kept_r.append(col_best_r[ok])
        kept_c.append(jj[ok].astype(np.int64))
        kept_s.append(col_best_s[ok])
    if kept_r:
        r = np.concatenate(kept_r)
        c = np.concatenate(kept_c)
        sc = np.concatenate(kept_s)
        key = r * max(m, 1) + c
        if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
            # candidate lists: a pair kept for both of its people, blocks out of order
            key, first = np.unique(key, return_index=True)
            r, c, sc = r[first], c[first], sc[first]
    else:
        r = c = np.zeros(0, dtype=np.int64)
        sc = np.zeros(0)
    notes = []
    if not dense and candidates:
        notes.append(
            f"large intake ({n} x {m} lone pairs): paired over each person's "
            f"{per_person} best candidates ({len(r)} pairs), optimal among those"
        )
    return LoneScan(a, b, r, c, sc, rs, cs, dense, notes, every_allowed=dense and candidates)


@dataclass(frozen=True)
class Pairing:
    """Pairs as (patient leader ID, professional ID, pre-formed?), plus the lone-side data."""

    pairs: list[tuple[str, str, bool]]
    scan: LoneScan
    matched_rows: IntArray
    matched_cols: IntArray
    objective: str
    bottleneck: float | None = None
    exact: bool = True

    @property
    def kind(self) -> PairingObjective:
        """The objective the lone applicants were paired by (from the registry)."""
        return objective_named(self.objective)

    @property
    def row_ids(self) -> list[str]:
        return self.scan.rows.ids

    @property
    def col_ids(self) -> list[str]:
        return self.scan.cols.ids


def preformed_pairs(instance: Instance) -> list[tuple[str, str, bool]]:
    """Pre-formed pairs, as (patient leader, professional, True), in file order."""
    return [
        (p.id, p.partner, True)
        for p in instance.participants
        if p.role == "patient_leader" and p.partner is not None
    ]


def _side_ranks(
    rows: IntArray, cols: IntArray, scores: FloatArray, shape: tuple[int, int]
) -> tuple[IntArray, IntArray]:
    """Rank of each candidate in its row's list and in its column's list (0 = best; ties by
    the other side's index). Candidates are distinct (row, col) pairs."""
    n, m = shape
    if len(rows) and n * m <= 4 * len(rows):
        # Dense enough: one stable sort per row of an n x m matrix (absent pairs last) is
        # much faster than a three-key sort of all candidates, with the same ranks.
        neg = np.full((n, m), np.inf)
        neg[rows, cols] = -scores
        out = []
        for matrix, own, other in ((neg, rows, cols), (neg.T, cols, rows)):
            order = np.argsort(matrix, axis=1, kind="stable")
            rank = np.empty_like(order)
            np.put_along_axis(rank, order, np.arange(matrix.shape[1])[None, :], axis=1)
            out.append(rank[own, other].astype(np.int64))
        return out[0], out[1]
    out = []
    for own, other in ((rows, cols), (cols, rows)):
        order = np.lexsort((other, -scores, own))
        sorted_own = own[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_own)) + 1]
        first = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - first
        out.append(rank)
    return out[0], out[1]


def _ranks(
    rows: IntArray, cols: IntArray, scores: FloatArray, shape: tuple[int, int]
) -> FloatArray:
    """Rank of each candidate in its row's list plus in its column's list (0 = best; ties by
    index)."""
    by_row, by_col = _side_ranks(rows, cols, scores, shape)
    return (by_row + by_col).astype(np.float64)


def _match(
    rows: IntArray,
    cols: IntArray,
    weights: FloatArray,
    shape: tuple[int, int],
    stop: Stop | None = None,
) -> IntArray:
    if len(rows) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    return max_weight_matching_sparse(
        rows,
        cols,
        weights,
        shape,
        max_cardinality=True,
        on_step=None if stop is None else lambda what: stop.check(f"matching: {what}"),
    )


def _total(
    rows: IntArray,
    cols: IntArray,
    scores: FloatArray,
    shape: tuple[int, int],
    stop: Stop | None = None,
) -> IntArray:
    """Most pairs, then the highest total, over the candidate pairs (rows[k], cols[k])."""
    # Tie-break: a bonus below TIE_TOLERANCE for pairs that rank each other high.
    bonus = TIE_TOLERANCE * (1.0 - _ranks(rows, cols, scores, shape) / max(sum(shape), 1))
    if stop is not None:
        stop.check(f"matching: {len(rows)} candidates ranked")
    return _match(rows, cols, scores + bonus, shape, stop)


def _fair(
    rows: IntArray, cols: IntArray, scores: FloatArray, shape: tuple[int, int]
) -> tuple[IntArray, float | None]:
    """Most pairs, then the highest worst pair, then the highest total."""
    matched, floor, _ = _fair_search(rows, cols, scores, shape)
    return matched, floor


def _fair_search(
    rows: IntArray,
    cols: IntArray,
    scores: FloatArray,
    shape: tuple[int, int],
    stop: Stop | None = None,
) -> tuple[IntArray, float | None, bool]:
    """:func:`_fair`, and whether the worst pair is proven best: the binary search ends early,
    with the best floor proven so far (still the most pairs), when ``stop`` says time is up."""
    if len(rows) == 0:
        return np.zeros((0, 2), dtype=np.int64), None, True
    ones = np.ones(len(rows))
    target = len(_match(rows, cols, ones, shape))
    levels = np.unique(scores)
    lo, hi = 0, len(levels) - 1  # levels[lo] always achieves the target cardinality
    while lo < hi:
        if stop is not None and not stop.check(f"fair: worst pair, {hi - lo} levels to test"):
            break
        mid = (lo + hi + 1) // 2
        keep = scores >= levels[mid]
        if len(_match(rows[keep], cols[keep], ones[keep], shape)) == target:
            lo = mid
        else:
            hi = mid - 1
    floor = float(levels[lo])
    keep = scores >= floor
    return _total(rows[keep], cols[keep], scores[keep], shape, stop), floor, lo == hi


@dataclass(frozen=True)
class _Kernels:
    """The matchings an objective may ask for (:class:`matcher.engine.objectives.MatchingKernels`),
    over the candidate lone pairs ``(rows[k], cols[k])`` with ``scores``."""

    instance: Instance
    scan: LoneScan
    rows: IntArray
    cols: IntArray
    scores: FloatArray
    shape: tuple[int, int]
    stop: Stop | None

    def most_pairs_best_total(self) -> IntArray:
        return _total(self.rows, self.cols, self.scores, self.shape, self.stop)

    def most_pairs_best_worst(self) -> tuple[IntArray, float | None, bool]:
        return _fair_search(self.rows, self.cols, self.scores, self.shape, self.stop)

    def stable(self, proposer: str) -> IntArray:
        return _stable(self.instance, self.scan, proposer)


def _preference_lists(instance: Instance, scan: LoneScan) -> tuple[list[IntArray], list[IntArray]]:
    """Ranked candidate lists for rows and columns: stated preferences first, then by score."""
    r, c, s = scan.cand_rows, scan.cand_cols, scan.cand_scores

    def lists(own: IntArray, other: IntArray, people: Side, others: Side) -> list[IntArray]:
        order = np.lexsort((other, -s, own))
        bounds = np.searchsorted(own[order], np.arange(len(people.ids) + 1))
        out = []
        for i, person in enumerate(people.people):
            ranked = other[order[bounds[i] : bounds[i + 1]]]
            if person.preferences:
                allowed = set(ranked.tolist())
                stated = [
                    others.index[x]
                    for x in dict.fromkeys(person.preferences)
                    if x in others.index and others.index[x] in allowed
                ]
                seen = set(stated)
                ranked = np.array(
                    stated + [j for j in ranked.tolist() if j not in seen], dtype=np.int64
                )
            out.append(ranked)
        return out

    return lists(r, c, scan.rows, scan.cols), lists(c, r, scan.cols, scan.rows)


def _stable(instance: Instance, scan: LoneScan, proposer: str) -> IntArray:
    row_prefs, col_prefs = _preference_lists(instance, scan)
    if proposer == "patient_leader":
        match = gale_shapley(row_prefs, col_prefs)
        pairs = [(i, int(j)) for i, j in enumerate(match) if j >= 0]
    else:
        match = gale_shapley(col_prefs, row_prefs)
        pairs = sorted((int(i), j) for j, i in enumerate(match) if i >= 0)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def complete_greedily(
    instance: Instance,
    scan: LoneScan,
    matched: IntArray,
    tick: Callable[[str], object] | None = None,
) -> IntArray:
    """Pair any two people still alone who are allowed together, best score first, so the
    matching is maximal over *all* allowed pairs, not only the candidates. ``tick`` is called
    between the blocks scored (progress)."""
    free_r = np.setdiff1d(np.arange(len(scan.rows.ids)), matched[:, 0])
    free_c = np.setdiff1d(np.arange(len(scan.cols.ids)), matched[:, 1])
    if len(free_r) == 0 or len(free_c) == 0:
        return matched
    a, b = sides(
        instance,
        [scan.rows.people[i] for i in free_r],
        [scan.cols.people[j] for j in free_c],
    )
    found: list[tuple[float, int, int]] = []
    for start, comp in iter_blocks(instance, a, b):
        if tick is not None:
            tick(f"scored {start + comp.scores.shape[0]} of {len(free_r)} people alone")
        ok = ~comp.forbidden & (comp.scores >= instance.rules.min_score)
        ii, jj = np.nonzero(ok)
        found += zip(comp.scores[ii, jj].tolist(), (ii + start).tolist(), jj.tolist(), strict=True)
    used_r: set[int] = set()
    used_c: set[int] = set()
    extra = []
    for _, i, j in sorted(found, key=lambda t: (-t[0], t[1], t[2])):
        if i not in used_r and j not in used_c:
            used_r.add(i)
            used_c.add(j)
            extra.append((int(free_r[i]), int(free_c[j])))
    if not extra:
        return matched
    out = np.concatenate([matched, np.array(extra, dtype=np.int64)])
    return out[np.argsort(out[:, 0], kind="stable")]


def _shortlist(
    rows: IntArray, cols: IntArray, scores: FloatArray, shape: tuple[int, int], k: int
) -> NDArray[np.bool_]:
    """Which candidates are among their row's or their column's ``k`` best."""
    n, m = shape
    if len(rows) and n * m <= 4 * len(rows):
        # Dense enough: a partition per row and per column of an n x m matrix.
        neg = np.full((n, m), np.inf)
        neg[rows, cols] = -scores
        keep = np.zeros((n, m), dtype=bool)
        top = np.argpartition(neg, min(k, m) - 1, axis=1)[:, :k]
        np.put_along_axis(keep, top, True, axis=1)
        # columns as rows of a contiguous copy: partitioning along axis 0 is several times slower
        top = np.argpartition(np.ascontiguousarray(neg.T), min(k, n) - 1, axis=1)[:, :k]
        np.put_along_axis(keep, top.T, True, axis=0)
        return keep[rows, cols]  # absent pairs picked by a short row are never read
    by_row, by_col = _side_ranks(rows, cols, scores, shape)
    return (by_row < k) | (by_col < k)


def _complete_from_candidates(scan: LoneScan, matched: IntArray) -> IntArray:
    """:func:`complete_greedily` when the candidates are every allowed pair (dense scan): the
    free people's allowed pairs are read off the candidates instead of scored again."""
    free_r = np.ones(len(scan.rows.ids), dtype=bool)
    free_c = np.ones(len(scan.cols.ids), dtype=bool)
    free_r[matched[:, 0]] = False
    free_c[matched[:, 1]] = False
    r, c, sc = scan.cand_rows, scan.cand_cols, scan.cand_scores
    open_ = free_r[r] & free_c[c]
    r, c, sc = r[open_], c[open_], sc[open_]
    extra = []
    for k in np.lexsort((c, r, -sc)).tolist():
        i, j = int(r[k]), int(c[k])
        if free_r[i] and free_c[j]:
            free_r[i] = free_c[j] = False
            extra.append((i, j))
    if not extra:
        return matched
    out = np.concatenate([matched, np.array(extra, dtype=np.int64)])
    return out[np.argsort(out[:, 0], kind="stable")]


def _exact_fits(stop: Stop | None, objective: PairingObjective, scan: LoneScan) -> tuple[bool, str]:
    """Whether the exact matching is expected to fit in its share of the time left, and a note
    when it is not. No deadline: always. An objective ``always_exact`` (``stable``: shortened
    preference lists would change which pairs block) is always run in full."""
    left = None if stop is None else stop.remaining()
    if left is None or objective.always_exact:
        return True, ""
    estimate = len(scan.cand_rows) * SECONDS_PER_CANDIDATE
    if estimate <= EXACT_SHARE * left:
        return True, ""
    return False, (
        f"time limit: the exact matching over {len(scan.cand_rows)} candidate pairs (about "
        f"{estimate:.1f} s) did not fit in the {left:.1f} s left; lone applicants paired over "
        f"each person's {HURRIED_PER_PERSON} best candidates, optimal among those, then "
        "greedily: not proven the most pairs or the best total"
    )


def _cancelled(stop: Stop | None) -> None:
    if stop is not None and stop.cancelled:
        raise NoPlanInTime("the solve was cancelled before any plan was found")


def pair_lone_applicants(
    instance: Instance,
    *,
    objective: str = DEFAULT,
    proposer: str = "patient_leader",
    stop: Stop | None = None,
) -> Pairing:
    """Pre-formed pairs as they are, plus the lone applicants paired by ``objective``.

    ``stop`` (a solve's deadline and progress ticks): pairing reports progress between its
    steps; a cancel raises :class:`~matcher.errors.NoPlanInTime`. Under a deadline, when the
    exact matching (one OR-Tools call that cannot be interrupted) is not expected to fit in
    ``EXACT_SHARE`` of the time left, the lone applicants are paired over each person's
    ``HURRIED_PER_PERSON`` best candidates and completed greedily (``exact`` is then False and
    a note says so); for ``fair``, a search cut short keeps the best worst pair proven so far.
    Without a deadline the result is the exact one, whatever ``stop`` is."""
    kind = objective_named(objective)  # ValueError naming the valid ones
    if proposer not in PROPOSERS:
        raise ValueError(f"unknown proposer {proposer!r}; choose from {', '.join(PROPOSERS)}")
    if stop is not None:
        stop = stop.within(None, stage="pairing")
    scan = scan_lone(instance, stop=stop)
    _cancelled(stop)
    shape = (len(scan.rows.ids), len(scan.cols.ids))
    r, c, sc = scan.cand_rows, scan.cand_cols, scan.cand_scores
    exact, note = _exact_fits(stop, kind, scan)
    if not exact:
        scan.notes.append(note)
        keep = _shortlist(r, c, sc, shape, HURRIED_PER_PERSON)
        r, c, sc = r[keep], c[keep], sc[keep]
    if stop is not None:
        stop.check(f"matching {len(r)} candidate pairs")
    result = kind.match(_Kernels(instance, scan, r, c, sc, shape, stop), proposer)
    _cancelled(stop)
    matched, bottleneck = result.matched, result.bottleneck
    if not result.proven:
        exact = False
        scan.notes.append(result.note)
    if stop is not None:
        stop.check(f"{len(matched)} lone pairs matched")
    if not scan.dense:
        matched = complete_greedily(instance, scan, matched)
    elif not exact:
        matched = _complete_from_candidates(scan, matched)
    pairs = preformed_pairs(instance) + [
        (scan.rows.ids[i], scan.cols.ids[j], False) for i, j in matched
    ]
    return Pairing(
        pairs=pairs,
        scan=scan,
        matched_rows=matched[:, 0].astype(np.int64),
        matched_cols=matched[:, 1].astype(np.int64),
        objective=objective,
        bottleneck=bottleneck,
        exact=scan.dense and exact,
    )
