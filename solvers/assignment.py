"""Optimal bipartite assignment: maximum-weight matching, dense and sparse.

Two entry points, numpy in and numpy out:

- :func:`max_weight_matching` takes an ``n x m`` score matrix and an optional ``n x m`` mask
  of allowed pairs;
- :func:`max_weight_matching_sparse` takes candidate lists ``(rows, cols, weights)`` and never
  builds an ``n x m`` matrix.

Both return an int64 array of shape ``(k, 2)``: the matched ``(row, col)`` pairs, sorted by row.
:func:`matching_total` sums the scores of such pairs.

Objective
---------
With ``max_cardinality=True`` (the default) the matching has the **most pairs** possible among
the allowed pairs and, among all matchings of that size, the **highest total score**. Scores may
be negative: a maximum-cardinality matching takes its pairs whatever their sign.

With ``max_cardinality=False`` the matching has the highest total score, whatever its size.
Pairs whose score is ``<= 0`` are never matched (they cannot raise the total, and leaving them
out makes the answer canonical); nor are pairs whose positive score rounds to zero on the grid
below (they are worth less than half a grid step).

Guarantee: optimal, exactly, for the scores rounded to the grid
---------------------------------------------------------------
The solvers work in int64 (OR-Tools' cost-scaling assignment and min-cost-flow algorithms, and
this module's own shortest-augmenting-path code for complete matrices; see Method). Scores are
rounded onto a uniform grid of ``L + 1`` levels spanning the allowed scores
(``[min, max]`` with ``max_cardinality=True``; ``[0, max]`` otherwise), so one grid step is
``(max - min) / L``. The returned matching is an exact optimum for the rounded scores; for the
original scores its total is within ``k * step`` of the optimum (``k`` pairs, each rounded by
at most half a step). Cardinality is never approximated: it is enforced as a flow value, not by a
big-M cost.

``L`` depends only on the shape ``(n, m)``, so the dense and the sparse variants, and all the
solvers below, solve the same rounded problem. It keeps every cost inside the range for which
OR-Tools proves that its integer arithmetic cannot overflow (for the assignment solver, whose
bound is the tighter one: about ``2**63 / (3 N**2)`` for ``N`` nodes per side), capped at
``2**30`` (finer grids only slow the solver down):

    budget = (2**63 - 1) // (4 * (n + m + 1)**2)
    L      = min(2**30, (budget - T) // S)

where ``S`` and ``T`` are the tie-break multiplier and range below (``S = 1``, ``T = 0`` when the
tie-break is off). In practice: ``L = 2**30`` (a step of about ``1e-9`` of the score range) up to
about 46,000 rows plus columns, and about ``2.3e8`` levels at 50,000 per side.
:func:`grid_levels` reports ``(L, tie_break)`` for a shape.

Ties
----
Among the optimal matchings of the rounded problem, the solver prefers the smallest
``pairs + sum(|row - col|)``. With ``max_cardinality=True`` the number of pairs is fixed, so this
is the smallest ``sum(|row - col|)``; with ``max_cardinality=False`` it usually means fewer pairs
first, but not always (3 pairs at distance 2 tie with 2 pairs at distance 3). For example, a
matrix of equal scores gives the diagonal pairs ``(i, i)``. This is exact: each pair's cost is
``-(q * S) + 1 + |row - col|`` with
``S = 1 + min(n, m) * max(n, m)``, so the tie-break can never outweigh one grid step. The
tie-break is on when it still leaves at least ``2**24`` grid levels, which holds up to about
430 per side for square problems. Remaining ties, and all ties on larger problems, are settled
by the solver: the same input gives the same output on every platform (every algorithm here is
integer-only and single-threaded). On a complete matrix (no pair forbidden) that solver is this
module's own code, so the choice only changes if this module does; otherwise it is OR-Tools', for
a given OR-Tools version, and not documented by OR-Tools (it may change between versions).

Method
------
**Complete matrices** (dense input with no pair forbidden: ``allowed`` is ``None`` or all true,
or a candidate list naming all ``n * m`` pairs) are solved without OR-Tools, by successive
shortest augmenting paths -- the Jonker-Volgenant method in the rectangular form of Crouse
(2016, "On implementing 2D rectangular assignment algorithms"), compiled with numba when it is
installed (imported lazily, on the first such call; compiled code is cached on disk; without
numba the same code runs as plain Python after numpy's rounding, with identical results). The
rounded int64 costs above, tie-break term included, go into one matrix -- int32 when they fit,
which is always the case once the tie-break is off -- transposed if ``n > m``, so that rows are
the smaller side. With numba the rounding and the search are one compiled call with one
specialisation (float64 scores in, both cost types handled inside), so a process loads one
piece of compiled code, on its first complete problem, whatever the sizes that follow.
Each row in turn then gets a Dijkstra search over reduced costs to the nearest free column, and
the path is flipped; every matching so far is a min-cost one for its rows, so the last one is
an exact optimum of the rounded problem: a matching of ``min(n, m)`` pairs (the maximum
cardinality of a complete matrix) with the same rounded total, and the same tie-break value
while the tie-break is on, as the OR-Tools paths below would return. Integer arithmetic only;
the duals stay within a small multiple of ``min(n, m) * max|cost|``, which is below ``2**63 /
(n + m)`` on this grid.

With ``max_cardinality=False`` a complete matrix is solved the same way, with pairs that round to
level 0 costing 0 instead of being left out, and the zero-cost pairs of the answer dropped. This
is exact: every pair that rounds above 0 has a negative cost (``-q * S + 1 + |row - col| < 0``
as ``S = 1 + min(n, m) * max(n, m) > 1 + |row - col|``; ``-q < 0`` without the tie-break),
any matching extends to a full assignment by zero-cost pairs (the matrix is complete) at the same
cost, and dropping the zero-cost pairs of a full assignment gives a matching of the same cost; so
minimum-cost full assignments and minimum-cost matchings correspond, with equal costs, and the
tie-break (``pairs + sum(|row - col|)``) is part of that cost.

Everything else (some pair forbidden) goes to OR-Tools. With ``max_cardinality=True`` the size
``k`` of a maximum matching is computed by a unit-capacity max flow (OR-Tools push-
relabel). Then:

- a square problem with a perfect matching (``n == m == k``) goes to OR-Tools'
  ``SimpleLinearSumAssignment`` (cost-scaling assignment, Goldberg and Kennedy), on the
  candidate arcs only -- or, from 200,000 arcs, first to this module's own auction (below);
- anything else -- rectangular, or square without a perfect matching -- goes to OR-Tools'
  ``SimpleMinCostFlow`` on source -> rows -> columns -> sink with unit capacities and exactly
  ``k`` units of flow: a minimum-cost flow of value ``k`` is a maximum-cardinality matching of
  maximum rounded score.

On rectangular input a row (if ``n < m``; a column if ``n > m``) first keeps only its ``n``
(``m``) cheapest arcs, ties to the lower index: if it were matched elsewhere, one of those would
be free and no worse. The kept set depends on the rounded costs only, so dense and sparse inputs
keep the same arcs.

**The auction** (square, a perfect matching proven, at least 200,000 arcs; numba, imported
lazily and cached on disk like the dense kernel): Bertsekas' auction with epsilon-scaling on the
same int64 costs multiplied by ``n + 1``, started from Jonker and Volgenant's column reduction,
each row remembering its 4 cheapest arcs between scans (Goldberg and Kennedy's CSA-Q). With a
final epsilon of 1 it is an exact optimum of the rounded problem. Its matching is returned only
when it is provably the **only** min-cost perfect matching (no alternating cycle among the arcs
within ``n`` of tight, see :func:`_auction`) -- then OR-Tools, like any exact solver, would
return the same one. When several tie, when its safety budget runs out, or without numba,
OR-Tools' assignment solves the problem as before. So the answer is OR-Tools' in every case,
ties included; only the time changes (50,000 per side, 20 candidates each: about 0.5-0.7x the
time of the raw OR-Tools call; ``benchmarks/results/assignment.md``).

With ``max_cardinality=False`` the same network gets a zero-cost source -> sink bypass so units
may skip the matching. No big-M cost is used anywhere, so the whole int64 range goes to the score
grid. (Padding the assignment problem with dummy rows/columns was tried and rejected: OR-Tools'
assignment solver is very slow on the many equal-cost dummy arcs -- minutes on 50,000 x 60,000.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from ortools.graph.python import linear_sum_assignment, max_flow, min_cost_flow

from solvers.numba_cache import compile_kernel, compiled_on_disk

__all__ = [
    "grid_levels",
    "matching_total",
    "max_weight_matching",
    "max_weight_matching_sparse",
]

IntPairs = NDArray[np.int64]

_INT64_MAX = 2**63 - 1
_MAX_LEVELS = 2**30
_MIN_TIE_BREAK_LEVELS = 2**24
# Below this the rounding would be too coarse to call the result optimal; only reached around
# 10**6 rows plus columns.
_MIN_LEVELS = 2**16
# _prune works on a matrix when it has at most this many cells per arc (else it sorts the arcs).
_PRUNE_DENSITY = 4
# Node indices are int32 in OR-Tools; n + m real and dummy nodes plus a source and a sink.
_MAX_SIDE_TOTAL = 2**31 - 3


@dataclass(frozen=True)
class _Grid:
    """How scores become int64 costs for a problem of a given shape."""

    levels: int  # L: the score range is split into L steps
    multiplier: int  # S: grid level q costs -q * S
    tie_break: bool  # whether 1 + |row - col| is added to each pair's cost


def _grid(n: int, m: int) -> _Grid:
    # OR-Tools' assignment solver multiplies costs by (nodes per side + 1) and bounds prices by
    # about 3 * nodes * that; it refuses (POSSIBLE_OVERFLOW) above 2**63 / (3 * N**2). Its
    # min-cost flow is only linear in the node count, far looser. Using N = n + m (more than
    # either solver sees) and 4 leaves a margin and makes L depend on the shape alone.
    budget = _INT64_MAX // (4 * (n + m + 1) ** 2)
    t_max = max(n, m)
    multiplier = 1 + min(n, m) * t_max
    levels = (budget - t_max) // multiplier
    if levels >= _MIN_TIE_BREAK_LEVELS:
        return _Grid(min(levels, _MAX_LEVELS), multiplier, True)
    levels = min(budget, _MAX_LEVELS)
    if levels < _MIN_LEVELS:
        raise ValueError(
            f"Problem too large for exact int64 assignment: {n} rows and {m} columns leave "
            f"only {levels} score levels (need {_MIN_LEVELS}). Split the problem, or pass "
            "candidate lists for a smaller subproblem."
        )
    return _Grid(levels, 1, False)


def grid_levels(n: int, m: int) -> tuple[int, bool]:
    """Return ``(L, tie_break)`` for an ``n x m`` problem (see the module docstring).

    ``L`` is the number of grid steps the score range is rounded to; ``tie_break`` says whether
    ties are broken by the documented rule (smallest ``pairs + sum(|row - col|)``).
    """
    grid = _grid(int(n), int(m))
    return grid.levels, grid.tie_break


def _empty() -> IntPairs:
    return np.zeros((0, 2), dtype=np.int64)


def _check_shape(n: int, m: int) -> None:
    if n < 0 or m < 0:
        raise ValueError(f"shape must be non-negative, got ({n}, {m})")
    if n + m > _MAX_SIDE_TOTAL:
        raise ValueError(f"shape ({n}, {m}) too large: rows plus columns must be < 2**31 - 2")


def _check_finite(weights: NDArray[np.float64], what: str) -> None:
    if not np.isfinite(weights).all():
        bad = np.flatnonzero(~np.isfinite(weights))
        raise ValueError(
            f"{what} must be finite (no NaN or inf) on allowed pairs; "
            f"{bad.size} are not, first at flat position {int(bad[0])}. "
            "Mark such pairs as forbidden instead."
        )


def max_weight_matching(
    scores: ArrayLike,
    allowed: ArrayLike | None = None,
    *,
    max_cardinality: bool = True,
) -> IntPairs:
    """Return an optimal matching of an ``n x m`` score matrix as ``(k, 2)`` (row, col) pairs.

    Args:
        scores: ``n x m`` real scores (higher is better); ``n != m`` is fine. Must be finite
            wherever the pair is allowed (entries of forbidden pairs are ignored).
        allowed: optional ``n x m`` boolean mask; ``False`` forbids the pair. ``None`` allows
            all pairs.
        max_cardinality: if true, the most pairs first, then the highest total score; if false,
            the highest total score (pairs scoring ``<= 0`` are never taken).

    Returns:
        int64 array of shape ``(k, 2)``, sorted by row. Optimal exactly for the scores rounded
        to the grid described in the module docstring; ties broken as documented there.

    Raises:
        ValueError: ``scores`` is not 2-D, ``allowed`` has another shape, or an allowed score is
            NaN or infinite.
        TypeError: ``allowed`` is not boolean.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D (n x m) array, got {s.ndim} dimension(s)")
    n, m = s.shape
    _check_shape(n, m)
    mask: NDArray[np.bool_] | None = None
    if allowed is not None:
        mask = np.asarray(allowed)
        if mask.dtype != np.bool_:
            raise TypeError(
                f"allowed must be a boolean mask, got dtype {mask.dtype}; "
                "use e.g. `allowed.astype(bool)` if that is what you mean"
            )
        if mask.shape != s.shape:
            raise ValueError(
                f"allowed has shape {mask.shape} but scores has shape {s.shape}; they must match"
            )
        if mask.all():
            mask = None
    if n == 0 or m == 0:
        return _empty()

    if mask is None:
        _check_finite(s, "scores")
        return _solve_complete(s, max_cardinality=max_cardinality)
    r64, c64 = np.nonzero(mask)
    if r64.size == 0:
        return _empty()
    weights = s[r64, c64]
    _check_finite(weights, "scores")
    rows, cols = r64.astype(np.int32), c64.astype(np.int32)
    return _solve(rows, cols, weights, n, m, max_cardinality=max_cardinality, complete=False)


def max_weight_matching_sparse(
    rows: ArrayLike,
    cols: ArrayLike,
    weights: ArrayLike,
    shape: tuple[int, int],
    *,
    max_cardinality: bool = True,
    on_step: Callable[[str], object] | None = None,
) -> IntPairs:
    """Return an optimal matching over candidate pairs, without building an ``n x m`` matrix.

    Args:
        rows, cols: 1-D integer arrays of equal length: candidate pair ``e`` is
            ``(rows[e], cols[e])`` with ``0 <= rows[e] < n`` and ``0 <= cols[e] < m``. Pairs not
            listed are forbidden.
        weights: 1-D finite float scores, one per candidate pair.
        shape: ``(n, m)``, the numbers of rows and columns.
        max_cardinality: as in :func:`max_weight_matching`.
        on_step: called with a short message between the solver's steps (arcs pruned, maximum
            size found), so a caller can report progress or notice a deadline; the steps
            themselves (OR-Tools calls, the compiled auction) cannot be interrupted. Its
            return value is ignored.

    A pair listed more than once keeps its highest weight.

    Returns:
        int64 array of shape ``(k, 2)``, sorted by row: exactly the matching
        :func:`max_weight_matching` returns for the equivalent dense input (same rounding grid,
        same arcs in the same order), whatever the order of the candidates.

    Raises:
        ValueError: arrays of different lengths or not 1-D, indices out of range, non-integer
            indices, NaN or infinite weights, a negative shape.
    """
    n, m = (int(x) for x in shape)
    _check_shape(n, m)
    r = np.asarray(rows)
    c = np.asarray(cols)
    w = np.asarray(weights, dtype=np.float64)
    if r.ndim != 1 or c.ndim != 1 or w.ndim != 1:
        raise ValueError("rows, cols and weights must be 1-D arrays")
    if not (r.size == c.size == w.size):
        raise ValueError(
            f"rows, cols and weights must have equal lengths, got {r.size}, {c.size}, {w.size}"
        )
    if r.size == 0:
        return _empty()
    for name, idx, bound in (("rows", r, n), ("cols", c, m)):
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {idx.dtype}")
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= bound:
            raise ValueError(
                f"{name} must lie in [0, {bound}) for shape {(n, m)}; "
                f"found values from {lo} to {hi}"
            )
    _check_finite(w, "weights")

    # Put the pairs in (row, col) order, keeping the highest weight of each: the solver then
    # sees the same arcs, in the same order, as for the equivalent dense input, so both give
    # the same matching whatever order the candidates came in. Skip the sort when the pairs
    # are already strictly increasing, the common way candidate lists are built.
    key = r.astype(np.int64, copy=False) * m
    key += c.astype(np.int64, copy=False)
    if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
        order = np.lexsort((w, key))
        key_sorted = key[order]
        last = np.ones(key_sorted.size, dtype=bool)
        last[:-1] = key_sorted[1:] != key_sorted[:-1]
        pick = order[last]
        r, c, w = r[pick], c[pick], w[pick]
    if w.size == n * m:
        # Every pair is listed (the pairs are distinct and in (row, col) order): this is the
        # dense problem, so solve it the way the dense input is solved.
        return _solve_complete(w.reshape(n, m), max_cardinality=max_cardinality)
    return _solve(
        r.astype(np.int32, copy=False),
        c.astype(np.int32, copy=False),
        w,
        n,
        m,
        max_cardinality=max_cardinality,
        complete=False,
        on_step=on_step,
    )


def matching_total(scores: ArrayLike, pairs: ArrayLike) -> float:
    """Return the total score of ``pairs`` (a ``(k, 2)`` array of (row, col)) in ``scores``."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D array, got {s.ndim} dimension(s)")
    return float(np.sum(s[p[:, 0], p[:, 1]]))


def _quantise(x: NDArray[np.float64], span: float, levels: int) -> NDArray[np.int64]:
    """Round ``x`` in ``[0, span]`` to integer grid levels ``0..levels``."""
    if span <= 0.0:
        return np.zeros(x.shape, dtype=np.int64)
    scale = levels / span
    # A span so small that levels / span overflows needs the slower two-step form.
    q = x * scale if np.isfinite(scale) else (x / span) * levels
    np.rint(q, out=q)
    np.clip(q, 0, levels, out=q)
    return q.astype(np.int64, copy=False)


#: The quick matching below gives up after this many arc visits per arc (then the max flow
#: decides): bounded extra work on inputs whose augmenting paths are long.
_COVER_WORK_PER_ARC = 20
#: The quick matching runs from this many arcs (its numba code then pays for its load: the max
#: flow takes about 0.3 s at a million arcs, milliseconds at the sizes of a programme's intake,
#: which so never import numba for it).
_COVER_MIN_ARCS = 200_000
_COVER: Callable[..., bool] | None = None


def _covers_smaller_side(rows: NDArray[np.int32], cols: NDArray[np.int32], n: int, m: int) -> bool:
    """Whether a matching covers every vertex of the smaller side (then it is a maximum one):
    a greedy matching completed by breadth-first augmenting paths, compiled with numba
    (:func:`_cover_smaller_side`). False also when the work budget runs out or numba is missing;
    the caller then asks the max flow, which decides either way. O(arcs) on random inputs;
    at most ``_COVER_WORK_PER_ARC`` visits per arc."""
    global _COVER
    if _COVER is None:
        try:
            # Imported here, so that importing this module never imports numba (start-up).
            from numba import njit
        except ImportError:  # pragma: no cover - numba is installed in CI
            return False
        _COVER = njit(
            "boolean(int64[::1], int32[::1], int64, int64, int64)", cache=True, nogil=True
        )(_cover_smaller_side)
    side, other = (rows, cols) if n <= m else (cols, rows)
    n_side, n_other = min(n, m), max(n, m)
    if side.size > 1 and not bool(np.all(side[1:] >= side[:-1])):
        order = np.argsort(side, kind="stable")
        side, other = side[order], other[order]
    indptr = np.zeros(n_side + 1, dtype=np.int64)
    np.cumsum(np.bincount(side, minlength=n_side), out=indptr[1:])
    budget = _COVER_WORK_PER_ARC * max(int(side.size), 1)
    heads = np.ascontiguousarray(other, dtype=np.int32)
    return bool(_COVER(indptr, heads, n_side, n_other, budget))


def _cover_smaller_side(
    indptr: NDArray[np.int64], heads: NDArray[np.int32], n: int, m: int, budget: int
) -> bool:
    """Whether some matching covers all ``n`` vertices whose arcs are
    ``heads[indptr[i]:indptr[i + 1]]`` (into ``m`` vertices): greedy first, then a breadth-first
    augmenting path from each vertex left. A vertex with no augmenting path proves that no
    matching covers them all (it stays free in some maximum matching); False too when more
    than ``budget`` arcs have been visited."""
    mate = np.full(n, -1, dtype=np.int64)
    owner = np.full(m, -1, dtype=np.int64)
    for i in range(n):
        for e in range(indptr[i], indptr[i + 1]):
            j = heads[e]
            if owner[j] < 0:
                owner[j] = i
                mate[i] = j
                break
    seen = np.zeros(m, dtype=np.int64)
    via = np.zeros(m, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    work = 0
    for r in range(n):
        if mate[r] >= 0:
            continue
        stamp = r + 1
        head = 0
        tail = 1
        queue[0] = r
        found = -1
        while head < tail and found < 0:
            i = queue[head]
            head += 1
            for e in range(indptr[i], indptr[i + 1]):
                j = heads[e]
                work += 1
                if seen[j] == stamp:
                    continue
                seen[j] = stamp
                via[j] = i
                if owner[j] < 0:
                    found = j
                    break
                queue[tail] = owner[j]
                tail += 1
            if work > budget:
                return False
        if found < 0:
            return False
        j = found
        while True:
            i = via[j]
            nxt = mate[i]
            mate[i] = j
            owner[j] = i
            if i == r:
                break
            j = nxt
    return True


def _max_matching_size(rows: NDArray[np.int32], cols: NDArray[np.int32], n: int, m: int) -> int:
    """Size of a maximum matching: unit-capacity max flow source -> rows -> columns -> sink."""
    source, sink = n + m, n + m + 1
    tails = np.concatenate(
        [rows, np.full(n, source, dtype=np.int32), np.arange(n, n + m, dtype=np.int32)]
    )
    heads = np.concatenate(
        [cols + np.int32(n), np.arange(n, dtype=np.int32), np.full(m, sink, dtype=np.int32)]
    )
    flow = max_flow.SimpleMaxFlow()
    flow.add_arcs_with_capacity(tails, heads, np.ones(tails.size, dtype=np.int64))
    status = flow.solve(source, sink)
    if status != flow.OPTIMAL:
        raise RuntimeError(f"OR-Tools max flow failed with status {status!r}")
    return int(flow.optimal_flow())


# ---------------------------------------------------------------------------------------------
# Square sparse problems with a perfect matching: an auction over the candidate arcs
# ---------------------------------------------------------------------------------------------

#: Square problems with a perfect matching and at least this many candidate arcs are solved by
#: the compiled auction below (as for the quick cover check: below it OR-Tools takes
#: milliseconds, and a programme-sized intake never imports numba for it).
_AUCTION_MIN_ARCS = _COVER_MIN_ARCS
#: Each epsilon-scaling phase divides epsilon by this (16 to 64 bid about equally often).
_AUCTION_RATIO = 32
#: Each row remembers its this many cheapest arcs, and rescans only when they may no longer
#: hold its two cheapest (Goldberg and Kennedy's CSA-Q); 4 to 6 measured best at 50,000 per
#: side (2: 30% slower).
_AUCTION_KEEP = 4
#: The auction gives up (OR-Tools then solves the problem) after this many bids per arc plus
#: row: a safety net, never reached on the benchmark (about 1.4 bids per arc) or the tests.
_AUCTION_BIDS_PER_ARC = 64
#: ... or when a price passes this (int64 headroom for the sums of the uniqueness check).
_AUCTION_PRICE_LIMIT = 2**61
#: While numba's cache does not hold the compiled auction (a new install: compiling takes about
#: 3 s, what the auction saves on about 10 million arcs), OR-Tools' assignment keeps the square
#: problems until this process has given it this many arcs in all; then the auction is compiled
#: (and cached). Loading it from the cache takes milliseconds once numba is imported (the quick
#: cover check, which runs first, imports it).
AUCTION_COLD_ARCS = 10_000_000
_auction_cold_arcs = 0
_AUCTION_ON_DISK: bool | None = None
_AUCTION: Callable[..., bool] | None = None
_AUCTION_NO_NUMBA = False
_AUCTION_SIGNATURE = "boolean(int64[::1], int32[::1], int64[::1], int64[::1], int64)"


def _auction_kernel() -> Callable[..., bool] | None:
    """The compiled auction (numba, cached on disk), or None without numba."""
    global _AUCTION, _AUCTION_NO_NUMBA
    if _AUCTION is None and not _AUCTION_NO_NUMBA:
        # As for the dense kernel: the helper compiled into it, one specialisation (one cache
        # entry, one load per process).
        _AUCTION = compile_kernel(
            _auction,
            (_only_optimum,),
            {
                "np": np,
                "_INT64_MAX": _INT64_MAX,
                "_AUCTION_RATIO": _AUCTION_RATIO,
                "_AUCTION_KEEP": _AUCTION_KEEP,
                "_AUCTION_PRICE_LIMIT": _AUCTION_PRICE_LIMIT,
            },
            signature=_AUCTION_SIGNATURE,
        )
        _AUCTION_NO_NUMBA = _AUCTION is None
    return _AUCTION


def _auction_pays(arcs: int) -> bool:
    """Whether a square problem of ``arcs`` arcs should go to the auction (see
    ``AUCTION_COLD_ARCS``)."""
    global _AUCTION_ON_DISK, _auction_cold_arcs
    if _AUCTION is not None:
        return True
    if _AUCTION_ON_DISK is None:
        _AUCTION_ON_DISK = compiled_on_disk(__file__, "_auction")
    if _AUCTION_ON_DISK:
        return True
    _auction_cold_arcs += arcs
    return _auction_cold_arcs > AUCTION_COLD_ARCS


def _sparse_perfect(
    rows: NDArray[np.int32], cols: NDArray[np.int32], cost: NDArray[np.int64], n: int
) -> IntPairs | None:
    """The min-cost perfect matching of a square problem that has one (arcs in (row, col)
    order), by the compiled auction, when it is the only min-cost perfect matching: then it is
    exactly what OR-Tools (any exact solver) returns. None when another one ties with it (the
    caller lets OR-Tools settle the tie, as it always has), when the auction gives up, without
    numba, or while compiling it would not pay (:func:`_auction_pays`)."""
    kernel = _auction_kernel() if _auction_pays(int(rows.size)) else None
    if kernel is None:
        return None
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    mate = np.full(n, -1, dtype=np.int64)
    budget = _AUCTION_BIDS_PER_ARC * (int(rows.size) + n)
    heads = np.ascontiguousarray(cols, dtype=np.int32)
    if not kernel(indptr, heads, np.ascontiguousarray(cost, dtype=np.int64), mate, budget):
        return None
    return np.column_stack([np.arange(n, dtype=np.int64), mate])


def _auction(
    indptr: NDArray[np.int64],
    heads: NDArray[np.int32],
    cost: NDArray[np.int64],
    mate: NDArray[np.int64],
    budget: int,
) -> bool:
    """Min-cost perfect matching of the square problem whose row ``i`` has the arcs
    ``heads[indptr[i]:indptr[i + 1]]`` at ``cost[indptr[i]:indptr[i + 1]]``, which must have
    a perfect matching. Fills ``mate`` (row ``i`` gets column ``mate[i]``) and returns True
    when that matching is the only min-cost one; False when another one may tie with it, or
    when more than ``budget`` bids were made or a price passed ``_AUCTION_PRICE_LIMIT``
    (``mate`` then means nothing).

    Bertsekas' auction with epsilon-scaling, in integers: costs are multiplied by ``n + 1``;
    each column has a price ``p``. A free row (first in, first out) finds its cheapest arc
    ``cost + p`` (``b1``, column ``j1``) and the next cheapest (``b2``), raises ``p[j1]`` by
    ``b2 - b1 + eps`` and takes ``j1``, freeing its holder. Every row then holds an arc within
    ``eps`` of its cheapest (epsilon-complementary slackness), and prices only rise. A row
    with one arc raises its price by the whole cost span plus ``eps``. A row looks at its
    ``_AUCTION_KEEP`` cheapest arcs of its last scan and scans all its arcs again only when
    the two cheapest of those might be beaten (prices only rise, so the next value of that
    scan bounds all its other arcs). The first phase, at ``eps`` = span / 32, starts from
    Jonker and Volgenant's column reduction; each next one divides ``eps`` by 32, down to 1,
    and starts with all rows free; the prices carry over. With ``eps = 1`` on costs scaled
    by ``n + 1`` the matching is optimal: along any alternating cycle (``k <= n`` rows) the
    scaled reduced costs sum to the scaled change of cost, at least ``-k > -(n + 1)``, and a
    multiple of ``n + 1``, so at least 0.

    Uniqueness (:func:`_only_optimum`): an equally cheap matching differs by alternating
    cycles of zero change, whose arcs all have a reduced cost below ``n``; so if the arcs of
    reduced cost below ``n`` hold no alternating cycle, the matching is the only optimum.
    """
    n = mate.size
    inf = _INT64_MAX
    scale = n + 1
    lo = inf
    hi = -inf
    for e in range(cost.size):
        if cost[e] < lo:
            lo = cost[e]
        if cost[e] > hi:
            hi = cost[e]
    span = (hi - lo) * scale
    price = np.zeros(n, dtype=np.int64)
    owner = np.empty(n, dtype=np.int64)
    taken = np.empty(n, dtype=np.int64)  # the arc each row holds
    queue = np.empty(n, dtype=np.int64)  # free rows, circular
    # Each row's cheapest arcs at its last scan, and the next value then: prices only rise,
    # so every other arc of the row still costs at least that bound.
    best = np.empty((n, _AUCTION_KEEP), dtype=np.int64)
    kept = np.zeros(n, dtype=np.int64)
    bound = np.full(n, -inf, dtype=np.int64)
    top_value = np.empty(_AUCTION_KEEP + 1, dtype=np.int64)
    top_arc = np.empty(_AUCTION_KEEP + 1, dtype=np.int64)
    # The first phase starts from Jonker and Volgenant's column reduction: each column priced
    # at minus its lowest cost and taken (last first) by its lowest row (ties: the first) if
    # that row is still free. Those rows hold an arc of reduced cost 0 and every reduced cost
    # is >= 0, so they satisfy epsilon-complementary slackness; only the others bid.
    low = np.full(n, inf, dtype=np.int64)
    low_row = np.zeros(n, dtype=np.int64)
    low_arc = np.zeros(n, dtype=np.int64)
    for i in range(n):
        mate[i] = -1
        owner[i] = -1
        for e in range(indptr[i], indptr[i + 1]):
            j = heads[e]
            if cost[e] < low[j]:
                low[j] = cost[e]
                low_row[j] = i
                low_arc[j] = e
    for j in range(n - 1, -1, -1):
        if low[j] == inf:  # a column without arcs: no perfect matching after all
            return False
        price[j] = -low[j] * scale
        i = low_row[j]
        if mate[i] < 0:
            mate[i] = j
            owner[j] = i
            taken[i] = low_arc[j]
    waiting = 0
    for i in range(n):
        if mate[i] < 0:
            queue[waiting] = i
            waiting += 1
    head = 0
    eps = max(1, span // _AUCTION_RATIO)
    bids = 0
    while True:
        while waiting > 0:
            i = queue[head]
            head += 1
            if head == n:
                head = 0
            waiting -= 1
            b1 = inf
            b2 = inf
            e1 = -1
            for k in range(kept[i]):
                e = best[i, k]
                value = cost[e] * scale + price[heads[e]]
                if value < b2:
                    if value < b1:
                        b2 = b1
                        b1 = value
                        e1 = e
                    else:
                        b2 = value
            if b2 > bound[i]:
                # A non-kept arc may now be among the two cheapest: scan the row, keep its
                # _AUCTION_KEEP cheapest arcs and the next value as the bound.
                count = 0
                for e in range(indptr[i], indptr[i + 1]):
                    value = cost[e] * scale + price[heads[e]]
                    if count <= _AUCTION_KEEP:
                        at = count
                        count += 1
                    elif value < top_value[_AUCTION_KEEP]:
                        at = _AUCTION_KEEP
                    else:
                        continue
                    while at > 0 and top_value[at - 1] > value:
                        top_value[at] = top_value[at - 1]
                        top_arc[at] = top_arc[at - 1]
                        at -= 1
                    top_value[at] = value
                    top_arc[at] = e
                kept[i] = min(count, _AUCTION_KEEP)
                for k in range(kept[i]):
                    best[i, k] = top_arc[k]
                bound[i] = top_value[_AUCTION_KEEP] if count > _AUCTION_KEEP else inf
                b1 = top_value[0]
                e1 = top_arc[0]
                b2 = top_value[1] if count > 1 else inf
            j1 = heads[e1]
            if b2 == inf:
                price[j1] += span + eps
            else:
                price[j1] += b2 - b1 + eps
            bids += 1
            if bids > budget or price[j1] > _AUCTION_PRICE_LIMIT:
                return False
            before = owner[j1]
            owner[j1] = i
            mate[i] = j1
            taken[i] = e1
            if before >= 0:
                mate[before] = -1
                tail = head + waiting
                if tail >= n:
                    tail -= n
                queue[tail] = before
                waiting += 1
        if eps == 1:
            break
        eps = max(1, eps // _AUCTION_RATIO)
        for i in range(n):
            mate[i] = -1
            owner[i] = -1
            queue[i] = i
        head = 0
        waiting = n
    return _only_optimum(indptr, heads, cost, price, taken, mate, owner, scale)


def _only_optimum(
    indptr: NDArray[np.int64],
    heads: NDArray[np.int32],
    cost: NDArray[np.int64],
    price: NDArray[np.int64],
    taken: NDArray[np.int64],
    mate: NDArray[np.int64],
    owner: NDArray[np.int64],
    scale: int,
) -> bool:
    """Whether the near-tight arcs hold no alternating cycle (see :func:`_auction`): row ``i``
    points to ``owner[j]`` for each arc ``(i, j)`` other than its own whose reduced cost
    ``cost * scale + price[j]`` minus that of its own arc is below ``n``. Depth-first search
    for a cycle in that graph of rows, O(arcs)."""
    n = mate.size
    state = np.zeros(n, dtype=np.int8)  # 0 not visited, 1 on the current path, 2 finished
    path = np.empty(n, dtype=np.int64)
    next_arc = np.empty(n, dtype=np.int64)
    for root in range(n):
        if state[root] != 0:
            continue
        top = 0
        path[0] = root
        next_arc[0] = indptr[root]
        state[root] = 1
        while top >= 0:
            i = path[top]
            own = cost[taken[i]] * scale + price[mate[i]]
            e = next_arc[top]
            end = indptr[i + 1]
            deeper = False
            while e < end:
                j = heads[e]
                e += 1
                if j == mate[i] or cost[e - 1] * scale + price[j] - own >= n:
                    continue
                k = owner[j]
                if state[k] == 1:
                    return False
                if state[k] == 0:
                    next_arc[top] = e
                    top += 1
                    path[top] = k
                    next_arc[top] = indptr[k]
                    state[k] = 1
                    deeper = True
                    break
            if not deeper:
                state[i] = 2
                top -= 1
    return True


def _solve(
    rows: NDArray[np.int32],
    cols: NDArray[np.int32],
    weights: NDArray[np.float64],
    n: int,
    m: int,
    *,
    max_cardinality: bool,
    complete: bool,
    on_step: Callable[[str], object] | None = None,
) -> IntPairs:
    step = on_step or (lambda what: None)
    grid = _grid(n, m)
    if max_cardinality:
        lo = float(weights.min())
        q = _quantise(weights - lo, float(weights.max()) - lo, grid.levels)
    else:
        positive = weights > 0.0
        if not positive.any():
            return _empty()
        hi = float(weights[positive].max())
        q = _quantise(np.where(positive, weights, 0.0), hi, grid.levels)
        # Pairs worth nothing on the grid never improve the total.
        keep = q > 0
        if not keep.all():
            rows, cols, q = rows[keep], cols[keep], q[keep]
            complete = False

    cost = q
    cost *= -grid.multiplier
    if grid.tie_break:
        # Fewest pairs, then pairs near the diagonal; sum over any matching < multiplier.
        cost += 1 + np.abs(rows.astype(np.int64) - cols.astype(np.int64))

    if n != m:
        rows, cols, cost = _prune(rows, cols, cost, n, m, complete=complete)
    step(f"{rows.size} arcs")
    if not max_cardinality:
        return _min_cost_flow(rows, cols, cost, n, m, pairs=None)
    if complete or (rows.size >= _COVER_MIN_ARCS and _covers_smaller_side(rows, cols, n, m)):
        size = min(n, m)
    else:
        size = _max_matching_size(rows, cols, n, m)
    step(f"{size} pairs at most")
    if n == m == size:
        if not complete and rows.size >= _AUCTION_MIN_ARCS:
            pairs = _sparse_perfect(rows, cols, cost, n)
            if pairs is not None:
                return pairs
        return _perfect_assignment(rows, cols, cost, n)
    return _min_cost_flow(rows, cols, cost, n, m, pairs=size)


def _cheapest_per_row(cost_matrix: NDArray[np.int64], keep_count: int) -> NDArray[np.bool_]:
    """Mask of the ``keep_count`` cheapest entries of each row, ties to the lower column."""
    kth = np.partition(cost_matrix, keep_count - 1, axis=1)[:, keep_count - 1 : keep_count]
    keep = cost_matrix < kth
    ties = cost_matrix == kth
    room = keep_count - keep.sum(axis=1, keepdims=True)
    keep |= ties & (np.cumsum(ties, axis=1) <= room)
    return keep


def _prune(
    rows: NDArray[np.int32],
    cols: NDArray[np.int32],
    cost: NDArray[np.int64],
    n: int,
    m: int,
    *,
    complete: bool,
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int64]]:
    """Drop arcs no optimal matching needs: a row keeps its ``n`` cheapest (ties: lower column).

    If row i were matched outside its n cheapest columns, one of those is free (only n - 1
    other rows), and moving i there keeps the size and does not raise the cost. Symmetrically
    a column keeps its ``m`` cheapest rows. Kept arcs stay in their (row, col) order, and the
    kept set is defined by costs alone, so dense and sparse inputs still give the same arcs.
    """
    if complete:
        if n < m:
            keep = _cheapest_per_row(cost.reshape(n, m), n).reshape(-1)
        else:
            keep = _cheapest_per_row(cost.reshape(n, m).T, m).T.reshape(-1)
        return rows[keep], cols[keep], cost[keep]
    # A row can have more than n candidates only when n < m, a column more than m only when
    # n > m; ``limit`` is both the number of vertices on the pruned side and the bound.
    side, other, limit = (rows, cols, n) if n < m else (cols, rows, m)
    degree = np.bincount(side, minlength=limit)
    if not bool((degree > limit).any()):
        return rows, cols, cost
    width = max(n, m)
    if limit * width <= _PRUNE_DENSITY * rows.size:
        # Dense enough: the same rule on a (pruned side x other side) matrix, absent arcs at
        # the int64 maximum (never below a real kth cost, so never kept in place of one): a
        # partition per row instead of a three-key sort of all arcs, same kept set.
        matrix = np.full((limit, width), _INT64_MAX, dtype=np.int64)
        matrix[side, other] = cost
        keep = _cheapest_per_row(matrix, limit)[side, other]
        return rows[keep], cols[keep], cost[keep]
    order = np.lexsort((other, cost, side))
    group_start = np.concatenate([[0], np.cumsum(degree)[:-1]])
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size) - np.repeat(group_start, degree)
    keep = rank < limit
    return rows[keep], cols[keep], cost[keep]


def _perfect_assignment(
    rows: NDArray[np.int32], cols: NDArray[np.int32], cost: NDArray[np.int64], n: int
) -> IntPairs:
    """Min-cost perfect matching of a square problem known to have one (OR-Tools LSA)."""
    solver = linear_sum_assignment.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(rows, cols, cost)
    status = solver.solve()
    if status != solver.OPTIMAL:
        # A perfect matching exists and the grid keeps costs inside the range OR-Tools
        # proves safe, so this is a bug, never a property of the input.
        raise RuntimeError(f"OR-Tools assignment failed with status {status!r}")
    mates = np.fromiter((solver.right_mate(i) for i in range(n)), dtype=np.int64, count=n)
    return np.column_stack([np.arange(n, dtype=np.int64), mates])


def _min_cost_flow(
    rows: NDArray[np.int32],
    cols: NDArray[np.int32],
    cost: NDArray[np.int64],
    n: int,
    m: int,
    *,
    pairs: int | None,
) -> IntPairs:
    """Min-cost matching with exactly ``pairs`` pairs, or of any size if ``pairs`` is None.

    Network: source -> each row -> its candidate columns -> sink, unit capacities. With a fixed
    size the source sends exactly ``pairs`` units; otherwise a zero-cost source -> sink bypass
    lets units skip the matching, so only pairs of negative cost are worth taking.
    """
    source, sink = n + m, n + m + 1
    units = min(n, m) if pairs is None else pairs
    if units == 0 or rows.size == 0:
        return _empty()
    tail_parts = [rows, np.full(n, source, dtype=np.int32), np.arange(n, n + m, dtype=np.int32)]
    head_parts = [
        cols + np.int32(n),
        np.arange(n, dtype=np.int32),
        np.full(m, sink, dtype=np.int32),
    ]
    if pairs is None:
        tail_parts.append(np.array([source], dtype=np.int32))
        head_parts.append(np.array([sink], dtype=np.int32))
    tails = np.concatenate(tail_parts)
    heads = np.concatenate(head_parts)
    capacities = np.ones(tails.size, dtype=np.int64)
    capacities[-1] = units if pairs is None else 1
    costs = np.concatenate([cost, np.zeros(tails.size - cost.size, dtype=np.int64)])

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
    flow.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([units, -units], dtype=np.int64)
    )
    status = flow.solve()
    if status != flow.OPTIMAL:
        # ``units`` never exceeds the maximum matching size and the grid keeps costs inside
        # the range OR-Tools accepts, so this is a bug, never a property of the input.
        raise RuntimeError(f"OR-Tools min cost flow failed with status {status!r}")
    used = np.flatnonzero(flow.flows(np.arange(rows.size, dtype=np.int32)))
    pairs_out = np.column_stack([rows[used].astype(np.int64), cols[used].astype(np.int64)])
    return pairs_out[np.argsort(pairs_out[:, 0], kind="stable")]


# ---------------------------------------------------------------------------------------------
# Complete (dense, nothing forbidden) problems: shortest augmenting paths on the integer costs
# ---------------------------------------------------------------------------------------------

# Scores rounded per block of about this many entries: bounded temporary memory.
_BLOCK_ENTRIES = 2**20


def _solve_complete(s: NDArray[np.float64], *, max_cardinality: bool) -> IntPairs:
    """Optimal matching of a complete ``n x m`` problem (no pair forbidden, finite scores).

    Same rounded integer costs as :func:`_solve` (same grid, same tie-break term), solved by
    :func:`_shortest_augmenting_paths` on the (transposed if ``n > m``) cost matrix. With
    ``max_cardinality=False``, pairs worth nothing on the grid cost 0 instead of being
    forbidden and are dropped from the answer (see the module docstring for why this is exact).
    With numba the rounding and the search run in one compiled call (:func:`_dense_kernel`,
    one specialisation whatever the size); without it, numpy rounds and plain Python searches,
    with identical results.
    """
    n, m = s.shape
    grid = _grid(n, m)
    if max_cardinality:
        lo = float(s.min())
        span = float(s.max()) - lo
    else:
        lo = 0.0
        span = float(s.max())
        if span <= 0.0:
            return _empty()
    transpose = n > m
    bound = grid.levels * grid.multiplier + (1 + max(n, m) if grid.tie_break else 0)
    narrow = bound <= np.iinfo(np.int32).max
    kernel = _assignment_kernel() if _compiled_pays(n * m) else None
    if kernel is not None:
        scale = grid.levels / span if span > 0.0 else 0.0
        mate, taken = kernel(
            np.ascontiguousarray(s),
            lo,
            span,
            scale,
            grid.levels,
            grid.multiplier,
            grid.tie_break,
            not max_cardinality,
            transpose,
            narrow,
        )
    else:  # small problems, or no numba: numpy rounds, plain Python searches (same result)
        cost = _complete_costs(s, grid, lo, span, max_cardinality=max_cardinality, narrow=narrow)
        mate = _shortest_augmenting_paths(cost)
        taken = cost[np.arange(mate.size), mate].astype(np.int64)
    if transpose:
        rows, cols = mate, np.arange(m, dtype=np.int64)
    else:
        rows, cols = np.arange(n, dtype=np.int64), mate
    pairs = np.column_stack([rows, cols])
    if not max_cardinality:
        # Zero-cost pairs only pad the assignment; every taken pair has negative cost.
        pairs = pairs[taken < 0]
    if transpose:
        pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    return pairs


def _complete_costs(
    s: NDArray[np.float64],
    grid: _Grid,
    lo: float,
    span: float,
    *,
    max_cardinality: bool,
    narrow: bool,
) -> NDArray[np.integer[Any]]:
    """The rounded cost matrix of a complete problem, with numpy (transposed if ``n > m``;
    int32 when ``narrow``): what :func:`_fill_costs` writes, for the plain-Python path."""
    n, m = s.shape
    transpose = n > m
    cost = np.empty((m, n) if transpose else (n, m), dtype=np.int32 if narrow else np.int64)
    block = max(1, _BLOCK_ENTRIES // max(m, 1))
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        x = s[i0:i1]
        if max_cardinality:
            q = _quantise(x - lo, span, grid.levels)
        else:
            # Exactly the values _solve rounds: non-positive scores count as 0.
            q = _quantise(np.where(x > 0.0, x, 0.0), span, grid.levels)
        c = q * -grid.multiplier
        if grid.tie_break:
            c += 1 + np.abs(np.arange(i0, i1, dtype=np.int64)[:, None] - np.arange(m))
        if not max_cardinality:
            c[q == 0] = 0
        if transpose:
            cost[:, i0:i1] = c.T
        else:
            cost[i0:i1] = c
    return cost


def _fill_costs(
    cost: NDArray[np.integer[Any]],
    s: NDArray[np.float64],
    lo: float,
    span: float,
    scale: float,
    levels: int,
    multiplier: int,
    tie_break: bool,
    positive_only: bool,
    transpose: bool,
) -> None:
    """Write the rounded costs of ``s`` into ``cost`` (``cost[j, i]`` when ``transpose``):
    :func:`_quantise` and the cost formula of :func:`_solve`, entry by entry, the same
    floating-point operations in the same order, so the values equal numpy's."""
    n, m = s.shape
    finite = scale == scale and abs(scale) < np.inf
    for i in range(n):
        for j in range(m):
            x = s[i, j]
            if positive_only:
                if not x > 0.0:
                    x = 0.0
            else:
                x = x - lo
            if span <= 0.0:
                q = 0.0
            elif finite:
                q = np.rint(x * scale)
            else:
                q = np.rint((x / span) * levels)
            if q < 0.0:
                q = 0.0
            elif q > levels:
                q = float(levels)
            k = np.int64(q)
            c = -k * multiplier
            if tie_break:
                c += 1 + abs(i - j)
            if positive_only and k == 0:
                c = np.int64(0)
            if transpose:
                cost[j, i] = c
            else:
                cost[i, j] = c


def _dense_assignment(
    s: NDArray[np.float64],
    lo: float,
    span: float,
    scale: float,
    levels: int,
    multiplier: int,
    tie_break: bool,
    positive_only: bool,
    transpose: bool,
    narrow: bool,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Round ``s`` into an int32 (``narrow``) or int64 cost matrix and solve it: each row's
    column, and the cost of that entry. Compiled as one specialisation (both cost types
    inside), so a process loads one piece of compiled code whatever the problem's size."""
    n, m = s.shape
    nr, nc = (m, n) if transpose else (n, m)
    if narrow:
        c32 = np.empty((nr, nc), dtype=np.int32)
        _fill_costs(
            c32, s, lo, span, scale, levels, multiplier, tie_break, positive_only, transpose
        )
        mate = _shortest_augmenting_paths(c32)
        taken = np.empty(nr, dtype=np.int64)
        for i in range(nr):
            taken[i] = c32[i, mate[i]]
    else:
        c64 = np.empty((nr, nc), dtype=np.int64)
        _fill_costs(
            c64, s, lo, span, scale, levels, multiplier, tie_break, positive_only, transpose
        )
        mate = _shortest_augmenting_paths(c64)
        taken = np.empty(nr, dtype=np.int64)
        for i in range(nr):
            taken[i] = c64[i, mate[i]]
    return mate, taken


#: Complete problems up to this many cells run in plain Python (numpy rounding): 0.04 s at
#: 100 x 100, less than importing numba and loading the compiled kernel (about 0.9 s), so a
#: programme-sized intake never waits for numba here.
PLAIN_MAX_CELLS = 10_000
#: While numba's cache does not hold the compiled kernel (a new install: compiling takes
#: about 8 s), problems up to this many cells run in plain Python too (0.2 s at 200 x 200).
PLAIN_COLD_MAX_CELLS = 40_000
_ON_DISK: bool | None = None


def _compiled_pays(cells: int) -> bool:
    """Whether a complete problem of ``cells`` cells should use the compiled kernel."""
    global _ON_DISK
    if cells <= PLAIN_MAX_CELLS:
        return False
    if _KERNEL is not None or cells > PLAIN_COLD_MAX_CELLS:
        return True
    if _ON_DISK is None:
        _ON_DISK = _kernel_on_disk()
    return _ON_DISK


def _kernel_on_disk() -> bool:
    """Whether numba's cache holds the compiled dense kernel (then loading it is cheap). Looks
    where numba writes it: ``NUMBA_CACHE_DIR``, else beside the source or the user's cache; a
    stale entry only costs a compile, as without."""
    return compiled_on_disk(__file__, "_dense_assignment")


DenseKernel = Callable[..., tuple[NDArray[np.int64], NDArray[np.int64]]]
_KERNEL: DenseKernel | None = None
_NO_NUMBA = False
#: The only specialisation compiled (or loaded from numba's cache): C-contiguous float64 scores
#: and the grid's parameters; the int32 and int64 cost matrices are both handled inside it.
_KERNEL_SIGNATURE = (
    "Tuple((int64[::1], int64[::1]))"
    "(float64[:, ::1], float64, float64, float64, int64, int64, boolean, boolean, boolean, boolean)"
)


def _assignment_kernel() -> DenseKernel | None:
    """The compiled dense kernel (numba, cached on disk), or None without numba."""
    global _KERNEL, _NO_NUMBA
    if _KERNEL is None and not _NO_NUMBA:
        # The helpers are compiled into the kernel, for both cost types, once: one cache
        # entry, one load per process; only a complete problem pays numba's import.
        _KERNEL = compile_kernel(
            _dense_assignment,
            (_fill_costs, _column_reduction, _shortest_augmenting_paths),
            {"np": np, "abs": abs, "float": float, "_INT64_MAX": _INT64_MAX},
            signature=_KERNEL_SIGNATURE,
        )
        _NO_NUMBA = _KERNEL is None
    return _KERNEL


def _shortest_augmenting_paths(cost: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
    """Min-cost assignment of every row of an ``nr x nc`` integer matrix, ``nr <= nc``.

    Returns ``mate``: row ``i`` gets column ``mate[i]``. First a start: on a square matrix
    Jonker and Volgenant's column reduction with reduction transfer (:func:`_column_reduction`);
    on a rectangular one a row reduction, ``u[i]`` the row's lowest cost and ``v = 0``, a row
    whose first lowest column is still free taking it (column duals must stay 0 on the columns
    left free, which the column reduction would break). Each leaves every reduced cost ``>= 0``
    and the arcs taken tight, and matches about 60% of the rows of a random matrix. Then
    successive shortest augmenting paths (Jonker and Volgenant 1987; the rectangular form of
    Crouse 2016) for the rows left, one at a time: a Dijkstra search over the reduced costs
    ``cost[i, j] - u[i] - v[j]`` (all ``>= 0``) finds a cheapest alternating path from the new
    row to a free column, the duals are updated so that the path's arcs have reduced cost 0, and
    the path is flipped. Every matching so far is a min-cost one for its rows, so the last is
    optimal. Free columns keep ``v = 0 >= v`` of every other column, which is what makes the
    rectangular case optimal too. Each search step scans the columns not yet reached in index
    order (flags, not a shrinking list: the row and the duals are read front to back).

    Integer arithmetic only (exact: duals stay within a small multiple of ``nr * max|cost|``,
    far inside int64 for the grids of this module). Written in the numba-compatible subset of
    Python, so the compiled and the plain version give identical results. Ties: among equally
    short paths the search takes a free column first, then the lowest column index.
    """
    nr, nc = cost.shape
    inf = _INT64_MAX
    u = np.zeros(nr, dtype=np.int64)
    v = np.zeros(nc, dtype=np.int64)
    mate = np.full(nr, -1, dtype=np.int64)  # column of each row
    owner = np.full(nc, -1, dtype=np.int64)  # row of each column
    pred = np.full(nc, -1, dtype=np.int64)  # row before each column on the shortest path
    dist = np.empty(nc, dtype=np.int64)
    reached = np.zeros(nc, dtype=np.bool_)  # columns reached by the current search
    seen_rows = np.empty(nr, dtype=np.int64)
    seen_cols = np.empty(nc, dtype=np.int64)
    if nr == nc:
        _column_reduction(cost, u, v, mate, owner)
    else:
        for i in range(nr):
            low = cost[i, 0]
            at = 0
            for j in range(1, nc):
                if cost[i, j] < low:
                    low = cost[i, j]
                    at = j
            u[i] = low
            if owner[at] < 0:
                owner[at] = i
                mate[i] = at
    for start in range(nr):
        if mate[start] >= 0:
            continue
        for j in range(nc):
            dist[j] = inf
        n_rows = 0
        n_cols = 0
        reach = 0  # distance of the last column reached
        i = start
        sink = -1
        while sink < 0:
            seen_rows[n_rows] = i
            n_rows += 1
            base = reach - u[i]
            lowest = inf
            best = -1
            best_free = False
            for j in range(nc):
                if reached[j]:
                    continue
                d = base + cost[i, j] - v[j]
                if d < dist[j]:
                    dist[j] = d
                    pred[j] = i
                d = dist[j]
                if d < lowest or (d == lowest and not best_free and owner[j] < 0):
                    lowest = d
                    best = j
                    best_free = owner[j] < 0
            reach = lowest
            j = best
            reached[j] = True
            seen_cols[n_cols] = j
            n_cols += 1
            if owner[j] < 0:
                sink = j
            else:
                i = owner[j]
        # Duals: every reached row and column moves by how much closer than `reach` it was.
        u[start] += reach
        for t in range(1, n_rows):
            i = seen_rows[t]
            u[i] += reach - dist[mate[i]]
        for t in range(n_cols):
            j = seen_cols[t]
            v[j] -= reach - dist[j]
            reached[j] = False
        # Flip the path.
        j = sink
        while True:
            i = pred[j]
            owner[j] = i
            nxt = mate[i]
            mate[i] = j
            j = nxt
            if i == start:
                break
    return mate


def _column_reduction(
    cost: NDArray[np.integer[Any]],
    u: NDArray[np.int64],
    v: NDArray[np.int64],
    mate: NDArray[np.int64],
    owner: NDArray[np.int64],
) -> None:
    """Jonker and Volgenant's start for a square matrix, in place: ``v[j]`` the column's lowest
    cost, each column (last first) taken by its lowest row if that row is still free (ties: the
    first row); then every row that was the lowest of exactly one column moves the slack to its
    own dual (reduction transfer: ``u[i]`` = its second-lowest reduced cost, its column's ``v``
    lowered by as much), so that it stays tight while the other rows see more room. Reduced
    costs stay ``>= 0`` and the arcs taken tight. Reads the matrix row by row."""
    nr, nc = cost.shape
    low = np.empty(nc, dtype=np.int64)
    arg = np.zeros(nc, dtype=np.int64)
    for j in range(nc):
        low[j] = cost[0, j]
    for i in range(1, nr):
        for j in range(nc):
            if cost[i, j] < low[j]:
                low[j] = cost[i, j]
                arg[j] = i
    hits = np.zeros(nr, dtype=np.int64)
    for j in range(nc - 1, -1, -1):
        v[j] = low[j]
        i = arg[j]
        hits[i] += 1
        if mate[i] < 0:
            mate[i] = j
            owner[j] = i
    for i in range(nr):
        taken = mate[i]
        if taken < 0 or hits[i] != 1 or nc == 1:
            continue
        slack = _INT64_MAX
        for j in range(nc):
            if j != taken:
                d = cost[i, j] - v[j]
                if d < slack:
                    slack = d
        v[taken] -= slack
        u[i] = slack
