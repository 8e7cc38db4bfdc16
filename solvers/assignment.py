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
The solvers work in int64 (OR-Tools' cost-scaling assignment and min-cost-flow algorithms).
Scores are rounded onto a uniform grid of ``L + 1`` levels spanning the allowed scores
(``[min, max]`` with ``max_cardinality=True``; ``[0, max]`` otherwise), so one grid step is
``(max - min) / L``. The returned matching is an exact optimum for the rounded scores; for the
original scores its total is within ``k * step`` of the optimum (``k`` pairs, each rounded by
at most half a step). Cardinality is never approximated: it is enforced as a flow value, not by a
big-M cost.

``L`` depends only on the shape ``(n, m)``, so the dense and the sparse variants solve the same
rounded problem. It keeps every cost inside the range for which OR-Tools proves that its integer
arithmetic cannot overflow (for the assignment solver, whose bound is the tighter one: about
``2**63 / (3 N**2)`` for ``N`` nodes per side), capped at ``2**30`` (finer grids only slow the
solver down):

    budget = (2**63 - 1) // (4 * (n + m + 1)**2)
    L      = min(2**30, (budget - T) // S)

where ``S`` and ``T`` are the tie-break multiplier and range below (``S = 1``, ``T = 0`` when the
tie-break is off). In practice: ``L = 2**30`` (a step of about ``1e-9`` of the score range) up to
about 46,000 rows plus columns, and about ``2.3e8`` levels at 50,000 per side.
:func:`grid_levels` reports ``(L, tie_break)`` for a shape.

Ties
----
Among the optimal matchings of the rounded problem, the solver prefers, in this order: the
fewest pairs (this only matters with ``max_cardinality=False``), then the smallest
``sum(|row - col|)`` -- so, for example, a matrix of equal scores gives the diagonal pairs
``(i, i)``. This is exact: each pair's cost is ``-(q * S) + 1 + |row - col|`` with
``S = 1 + min(n, m) * max(n, m)``, so the tie-break can never outweigh one grid step. The
tie-break is on when it still leaves at least ``2**24`` grid levels, which holds up to about
430 per side for square problems. Remaining ties, and all ties on larger problems, are settled
by the solver: the same input gives the same output on every platform (the algorithm is
integer-only and single-threaded) for a given OR-Tools version, but that choice is not
documented by OR-Tools and may change between versions.

Method
------
With ``max_cardinality=True`` the size ``k`` of a maximum matching is known for a complete
matrix (``min(n, m)``) and otherwise computed by a unit-capacity max flow (OR-Tools push-
relabel). Then:

- a square problem with a perfect matching (``n == m == k``) goes to OR-Tools'
  ``SimpleLinearSumAssignment`` (cost-scaling assignment, Goldberg and Kennedy), on the
  candidate arcs only;
- anything else -- rectangular, or square without a perfect matching -- goes to OR-Tools'
  ``SimpleMinCostFlow`` on source -> rows -> columns -> sink with unit capacities and exactly
  ``k`` units of flow: a minimum-cost flow of value ``k`` is a maximum-cardinality matching of
  maximum rounded score.

On rectangular input a row (if ``n < m``; a column if ``n > m``) first keeps only its ``n``
(``m``) cheapest arcs, ties to the lower index: if it were matched elsewhere, one of those would
be free and no worse. The kept set depends on the rounded costs only, so dense and sparse inputs
keep the same arcs.

With ``max_cardinality=False`` the same network gets a zero-cost source -> sink bypass so units
may skip the matching. No big-M cost is used anywhere, so the whole int64 range goes to the score
grid. (Padding the assignment problem with dummy rows/columns was tried and rejected: OR-Tools'
assignment solver is very slow on the many equal-cost dummy arcs -- minutes on 50,000 x 60,000.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from ortools.graph.python import linear_sum_assignment, max_flow, min_cost_flow

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
    ties are broken by the documented rule (fewest pairs, then smallest ``sum(|row - col|)``).
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
        rows = np.repeat(np.arange(n, dtype=np.int32), m)
        cols = np.tile(np.arange(m, dtype=np.int32), n)
        weights = s.reshape(-1)
    else:
        r64, c64 = np.nonzero(mask)
        if r64.size == 0:
            return _empty()
        weights = s[r64, c64]
        _check_finite(weights, "scores")
        rows, cols = r64.astype(np.int32), c64.astype(np.int32)
    return _solve(rows, cols, weights, n, m, max_cardinality=max_cardinality, complete=mask is None)


def max_weight_matching_sparse(
    rows: ArrayLike,
    cols: ArrayLike,
    weights: ArrayLike,
    shape: tuple[int, int],
    *,
    max_cardinality: bool = True,
) -> IntPairs:
    """Return an optimal matching over candidate pairs, without building an ``n x m`` matrix.

    Args:
        rows, cols: 1-D integer arrays of equal length: candidate pair ``e`` is
            ``(rows[e], cols[e])`` with ``0 <= rows[e] < n`` and ``0 <= cols[e] < m``. Pairs not
            listed are forbidden.
        weights: 1-D finite float scores, one per candidate pair.
        shape: ``(n, m)``, the numbers of rows and columns.
        max_cardinality: as in :func:`max_weight_matching`.

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
    key = r.astype(np.int64) * m + c.astype(np.int64)
    if key.size > 1 and not bool(np.all(key[1:] > key[:-1])):
        order = np.lexsort((w, key))
        key_sorted = key[order]
        last = np.ones(key_sorted.size, dtype=bool)
        last[:-1] = key_sorted[1:] != key_sorted[:-1]
        pick = order[last]
        r, c, w = r[pick], c[pick], w[pick]
    return _solve(
        r.astype(np.int32),
        c.astype(np.int32),
        w,
        n,
        m,
        max_cardinality=max_cardinality,
        complete=False,
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
    return q.astype(np.int64)


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


def _solve(
    rows: NDArray[np.int32],
    cols: NDArray[np.int32],
    weights: NDArray[np.float64],
    n: int,
    m: int,
    *,
    max_cardinality: bool,
    complete: bool,
) -> IntPairs:
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
    if not max_cardinality:
        return _min_cost_flow(rows, cols, cost, n, m, pairs=None)
    size = min(n, m) if complete else _max_matching_size(rows, cols, n, m)
    if n == m == size:
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
