"""The exact method on small inputs whose groups are interchangeable: dynamic programming over
subsets of the elements, which proves the optimum by covering every grouping.

When every group has the same size bounds and a minimum of at least one, a grouping is a
partition of the elements into exactly ``g`` blocks of allowed sizes, the labels being mere
names. Build it block by block, each new block holding the lowest element not yet covered: every
partition is then built in exactly one way. ``best[k][S]`` is the largest total over the ways of
covering the set ``S`` with ``k`` blocks so built; ``best[g][all]`` is the optimum, and following
the choices back gives a grouping that reaches it. Ties are broken by a fixed order (blocks in
lexicographic order of their members, sets of elements by their bits), so the result is the
same on every run and machine.

The work is the number of (covered set, block) combinations that keep the rest coverable, done
in a few numpy passes: milliseconds at 12 elements in blocks of 3-4, against 0.1-0.5 s for
CP-SAT's proof. :func:`solve_by_subsets` declines (returns None) above ``SUBSETS_MAX_N``
elements or ``SUBSETS_MAX_WORK`` combinations in one step, and for groups that are not
interchangeable; the caller then builds the CP-SAT model.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from solvers.grouping.problem import GroupingInfeasible, IntArray, _Problem

#: Most elements for the subset method (``2**n`` sets of elements).
SUBSETS_MAX_N = 16
#: Most (covered set, block) combinations in one step before the subset method declines
#: (~25 MB of candidate arrays). Measured over every size range and number of groups up to 16
#: elements: at most 0.16 s for an input it takes; at 12 elements it declines only size ranges
#: of 9 or more (then CP-SAT's model runs).
SUBSETS_MAX_WORK = 1_000_000


def solve_by_subsets(p: _Problem) -> IntArray | None:
    """The labels of an optimal grouping of ``p`` (group ``k`` is the ``k``-th block built), or
    None when the method does not apply or would take too much work.

    Raises:
        GroupingInfeasible: No partition meets the size bounds and the cannot-link pairs.
    """
    n, g = p.n, p.n_groups
    lo, hi = int(p.lo[0]), int(p.hi[0])
    if n > SUBSETS_MAX_N or lo < 1 or np.any(p.lo != lo) or np.any(p.hi != hi):
        return None
    blocks, weights, lowest, sizes = _blocks(p, lo, hi)
    popcount = _popcounts(n)
    # layer k: the covered sets reachable with k blocks, their best totals, and how reached
    covered = np.zeros(1, dtype=np.int64)
    totals = np.zeros(1, dtype=np.float64)
    parents: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]] = []
    all_bits = (1 << n) - 1
    for k in range(g):
        left_blocks = g - k - 1
        free = ~covered & all_bits
        first = _lowest_bit(free)
        new_sets, new_totals, from_sets, via = [], [], [], []
        for b in np.unique(first).tolist():
            rows = np.flatnonzero(first == b)
            cols = np.flatnonzero(lowest == b)
            if len(rows) * len(cols) > SUBSETS_MAX_WORK:
                return None
            if not len(cols):
                continue
            union = covered[rows, None] | blocks[None, cols]
            rest = n - (popcount[covered[rows]][:, None] + sizes[None, cols])
            ok = ((covered[rows, None] & blocks[None, cols]) == 0) & (
                (left_blocks * lo <= rest) & (rest <= left_blocks * hi)
            )
            r, c = np.nonzero(ok)
            new_sets.append(union[r, c])
            new_totals.append(totals[rows[r]] + weights[cols[c]])
            from_sets.append(covered[rows[r]])
            via.append(cols[c])
        if not sum(len(s) for s in new_sets):
            raise _infeasible()
        union_all = np.concatenate(new_sets)
        total_all = np.concatenate(new_totals)
        # per covered set, the best total; among equals the first candidate in the fixed order
        order = np.lexsort((np.arange(len(union_all)), -total_all, union_all))
        keep = order[np.r_[True, union_all[order][1:] != union_all[order][:-1]]]
        covered, totals = union_all[keep], total_all[keep]
        parents.append((covered, np.concatenate(from_sets)[keep], np.concatenate(via)[keep]))
    if len(covered) != 1 or int(covered[0]) != all_bits:
        raise _infeasible()
    labels = np.full(n, -1, dtype=np.int64)
    target = all_bits
    for k in range(g - 1, -1, -1):
        sets_k, from_k, via_k = parents[k]
        at = int(np.searchsorted(sets_k, target))
        block = int(blocks[via_k[at]])
        labels[[i for i in range(n) if block >> i & 1]] = k
        target = int(from_k[at])
    return labels


def _blocks(
    p: _Problem, lo: int, hi: int
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Every allowed block (``lo``-``hi`` elements, no cannot-link pair inside), in
    lexicographic order of its members within each size: its bits, its total distance, its
    lowest element and its size. ``1 <= lo <= n`` (the caller's input is validated), so every
    size from ``lo`` to ``min(hi, n)`` has blocks before the cannot-link filter."""
    n = p.n
    bits, weights, lowest, sizes = [], [], [], []
    for size in range(lo, min(hi, n) + 1):
        members = np.array(list(combinations(range(n), size)), dtype=np.int64).reshape(-1, size)
        ok = np.ones(len(members), dtype=np.bool_)
        weight = np.zeros(len(members), dtype=np.float64)
        for a, b in combinations(range(size), 2):
            ok &= ~p.cl[members[:, a], members[:, b]]
            weight += p.d[members[:, a], members[:, b]]
        members, weight = members[ok], weight[ok]
        bits.append((np.int64(1) << members).sum(axis=1))
        weights.append(weight)
        lowest.append(members[:, 0])
        sizes.append(np.full(len(members), size, dtype=np.int64))
    return (
        np.concatenate(bits),
        np.concatenate(weights),
        np.concatenate(lowest),
        np.concatenate(sizes),
    )


def _popcounts(n: int) -> NDArray[np.int64]:
    """The number of elements in each set of ``n`` elements, indexed by its bits."""
    counts = np.zeros(1 << n, dtype=np.int64)
    for i in range(n):
        counts[1 << i : 2 << i] = counts[: 1 << i] + 1
    return counts


def _lowest_bit(sets: NDArray[np.int64]) -> NDArray[np.int64]:
    """The index of each set's lowest element (sets are non-empty)."""
    low = sets & -sets
    return np.log2(low.astype(np.float64)).astype(np.int64)


def _infeasible() -> GroupingInfeasible:
    return GroupingInfeasible(
        "No grouping meets every size bound and cannot-link pair (proven by trying every "
        "partition). Try raising maximum sizes, adding groups, or dropping cannot-link pairs."
    )
