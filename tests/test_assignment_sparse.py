"""Tests for the sparse auction of solvers.assignment (square problems with a perfect matching).

The auction's matching is used only when it is provably the only optimum, so the public
functions must return exactly what OR-Tools' assignment returns, ties included. Oracles: OR-Tools'
``SimpleLinearSumAssignment`` on the same integer costs, scipy's
``min_weight_full_bipartite_matching`` and ``linear_sum_assignment``, and brute force over all
permutations for the uniqueness claim.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from ortools.graph.python import linear_sum_assignment as ortools_lsa
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

import solvers.assignment as assignment_module
from solvers.assignment import (
    _auction,
    _auction_kernel,
    _sparse_perfect,
    grid_levels,
    max_weight_matching,
    max_weight_matching_sparse,
)

ROOT = Path(__file__).resolve().parents[1]

Arcs = tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.int64]]


def random_square(
    rng: np.random.Generator, n: int, degree: int, values: str, single: float = 0.0
) -> Arcs:
    """Arcs in (row, col) order of an ``n x n`` problem with a perfect matching (a random
    permutation is always among the arcs) and up to ``degree`` arcs per row; ``single`` of
    the rows keep only their permutation arc. Integer costs: ``values`` "wide" (the grid's
    whole range at this shape), "ties" (three values), "equal" (one value)."""
    perm = rng.permutation(n)
    rows = [np.arange(n)]
    cols = [perm]
    if degree > 1:
        extra_rows = np.repeat(np.arange(n), degree - 1)
        keep = rng.random(extra_rows.size) >= single
        keep &= ~np.isin(extra_rows, np.flatnonzero(rng.random(n) < single))
        rows.append(extra_rows[keep])
        cols.append(rng.integers(0, n, size=extra_rows.size)[keep])
    key = np.unique(np.concatenate(rows) * n + np.concatenate(cols))
    r, c = np.divmod(key, n)
    levels, tie_break = grid_levels(n, n)
    if values == "wide":
        # Costs as _solve makes them: -q * S (+ the tie-break term while it is on).
        multiplier = 1 + n * n if tie_break else 1
        cost = -rng.integers(0, levels + 1, size=r.size) * multiplier
        if tie_break:
            cost += 1 + np.abs(r - c)
    elif values == "ties":
        cost = -rng.integers(0, 3, size=r.size)
    else:
        cost = np.full(r.size, -5)
    return r.astype(np.int32), c.astype(np.int32), cost.astype(np.int64)


def ortools_mates(
    rows: NDArray[np.int32], cols: NDArray[np.int32], cost: NDArray[np.int64], n: int
) -> tuple[NDArray[np.int64], int]:
    solver = ortools_lsa.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(rows, cols, cost)
    assert solver.solve() == solver.OPTIMAL
    mates = np.array([solver.right_mate(i) for i in range(n)], dtype=np.int64)
    return mates, int(solver.optimal_cost())


def arc_costs(
    rows: NDArray[np.int32],
    cols: NDArray[np.int32],
    cost: NDArray[np.int64],
    n: int,
    mates: NDArray[np.int64],
) -> int:
    key = rows.astype(np.int64) * n + cols
    idx = np.searchsorted(key, np.arange(n) * n + mates)
    assert np.array_equal(key[idx], np.arange(n) * n + mates), "a pair that is not an arc"
    return int(cost[idx].sum())


def csr(rows: NDArray[np.int32], n: int) -> NDArray[np.int64]:
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr


def run_kernel(
    arcs: Arcs, n: int, *, compiled: bool = True, budget: int = 10**12
) -> tuple[bool, NDArray[np.int64]]:
    rows, cols, cost = arcs
    mate = np.full(n, -1, dtype=np.int64)
    kernel = _auction_kernel() if compiled else _auction
    assert kernel is not None
    only = bool(kernel(csr(rows, n), cols, cost, mate, budget))
    return only, mate


def optimum_count(arcs: Arcs, n: int) -> tuple[int, int]:
    """(minimum cost, number of perfect matchings at that cost), by brute force (small n)."""
    rows, cols, cost = arcs
    table = {(int(i), int(j)): int(x) for i, j, x in zip(rows, cols, cost, strict=True)}
    best, count = None, 0
    for perm in itertools.permutations(range(n)):
        if all((i, j) in table for i, j in enumerate(perm)):
            total = sum(table[i, j] for i, j in enumerate(perm))
            if best is None or total < best:
                best, count = total, 1
            elif total == best:
                count += 1
    assert best is not None
    return best, count


@pytest.fixture
def auction_everywhere() -> Iterator[None]:
    """Small problems through the auction too (normally from 200,000 arcs only)."""
    saved = assignment_module._AUCTION_MIN_ARCS
    assignment_module._AUCTION_MIN_ARCS = 0
    assert _auction_kernel() is not None  # loaded: used whatever the size
    try:
        yield
    finally:
        assignment_module._AUCTION_MIN_ARCS = saved


def without_auction(call: object) -> NDArray[np.int64]:
    """``call()`` with the auction switched off: the OR-Tools path, as before the auction."""
    saved = assignment_module._AUCTION_MIN_ARCS
    assignment_module._AUCTION_MIN_ARCS = 2**62
    try:
        result = call()  # type: ignore[operator]
    finally:
        assignment_module._AUCTION_MIN_ARCS = saved
    return np.asarray(result)


# ---------------------------------------------------------------------------------------------
# The kernel against OR-Tools and brute force
# ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 6),
    st.sampled_from(["wide", "ties", "equal"]),
    st.sampled_from([0.0, 0.3, 1.0]),
    st.integers(0, 2**32 - 1),
)
def test_kernel_optimal_and_unique_only_when_it_says_so(
    n: int, degree: int, values: str, single: float, seed: int
) -> None:
    """Whatever it answers, the auction's matching is perfect and of OR-Tools' optimal cost;
    when it says "the only optimum", it is OR-Tools' matching, and brute force finds no
    other of that cost (small sizes)."""
    arcs = random_square(np.random.default_rng(seed), n, degree, values, single)
    only, mate = run_kernel(arcs, n)
    assert sorted(mate.tolist()) == list(range(n))
    mates, optimum = ortools_mates(*arcs, n)
    assert arc_costs(*arcs, n, mate) == optimum
    if only:
        np.testing.assert_array_equal(mate, mates)
    if n <= 7:
        best, count = optimum_count(arcs, n)
        assert best == optimum
        if only:
            assert count == 1
        if count > 1:
            assert not only


def test_kernel_sees_ties() -> None:
    """Equal costs on rows with two arcs each (a cycle of 2-regular structure): several perfect
    matchings of one cost, so the kernel must not claim its matching is the only one; and a
    problem whose only perfect matching is forced is recognised as unique."""
    n = 50
    rows = np.repeat(np.arange(n, dtype=np.int32), 2)
    cols = np.stack([np.arange(n), (np.arange(n) + 1) % n], axis=1).reshape(-1)
    order = np.lexsort((cols, rows))
    arcs = (rows[order], cols[order].astype(np.int32), np.full(2 * n, -3, dtype=np.int64))
    only, mate = run_kernel(arcs, n)
    assert not only
    assert sorted(mate.tolist()) == list(range(n))
    forced = (
        np.arange(n, dtype=np.int32),
        np.arange(n, dtype=np.int32),
        np.full(n, -3, dtype=np.int64),
    )
    only, mate = run_kernel(forced, n)
    assert only
    np.testing.assert_array_equal(mate, np.arange(n))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 4),
    st.sampled_from(["wide", "ties"]),
    st.integers(0, 2**32 - 1),
)
def test_plain_python_kernel_equals_compiled(n: int, degree: int, values: str, seed: int) -> None:
    """The kernel is written in the numba subset of Python: uncompiled it gives the same
    matching and the same answer (the plain version is what this file's reader can step
    through)."""
    arcs = random_square(np.random.default_rng(seed), n, degree, values)
    plain_only, plain_mate = run_kernel(arcs, n, compiled=False)
    only, mate = run_kernel(arcs, n)
    assert plain_only == only
    np.testing.assert_array_equal(plain_mate, mate)


def test_budget_gives_up_and_ortools_answers() -> None:
    """Out of bids the kernel says no (never a wrong matching); the public function then
    returns OR-Tools' matching."""
    rng = np.random.default_rng(2)
    n = 300
    arcs = random_square(rng, n, 5, "wide")
    assert run_kernel(arcs, n, budget=3)[0] is False
    rows, cols, cost = arcs
    assert _sparse_perfect(rows, cols, cost, n) is not None  # with its real budget: unique
    saved = assignment_module._AUCTION_BIDS_PER_ARC
    assignment_module._AUCTION_BIDS_PER_ARC = 0
    try:
        assert _sparse_perfect(rows, cols, cost, n) is None
    finally:
        assignment_module._AUCTION_BIDS_PER_ARC = saved


# ---------------------------------------------------------------------------------------------
# The public functions: identical to the OR-Tools path, optimal against scipy
# ---------------------------------------------------------------------------------------------


@st.composite
def sparse_inputs(
    draw: st.DrawFn,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], int]:
    """Square candidate lists, often with a perfect matching (a permutation added), sometimes
    without; duplicates, unsorted order, a handful of distinct weights or arbitrary floats,
    weights at the far ends of the float range."""
    n = draw(st.integers(1, 30))
    degree = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(n), degree)
    cols = rng.integers(0, n, size=rows.size)
    if draw(st.booleans()):
        rows = np.concatenate([rows, np.arange(n)])
        cols = np.concatenate([cols, rng.permutation(n)])
    kind = draw(st.sampled_from(["few", "floats", "huge", "one"]))
    if kind == "few":
        weights = rng.integers(0, 3, size=rows.size).astype(np.float64)
    elif kind == "floats":
        weights = rng.uniform(-10, 10, size=rows.size)
    elif kind == "huge":
        weights = rng.choice([-1e300, 1e300, 0.0, 1e-300], size=rows.size)
    else:
        weights = np.full(rows.size, 0.25)
    if draw(st.booleans()):  # shuffled, with duplicates
        order = rng.permutation(rows.size)
        twice = order[: rows.size // 3]
        rows, cols, weights = (np.concatenate([a[order], a[twice]]) for a in (rows, cols, weights))
    return rows, cols, weights, n


@settings(max_examples=300, deadline=None)
@given(sparse_inputs())
def test_public_sparse_identical_to_ortools_path(
    data: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], int],
) -> None:
    """With the auction on every size, max_weight_matching_sparse returns exactly what it
    returns without the auction (OR-Tools' assignment, or the min-cost flow when there is no
    perfect matching), ties included; and the dense call with a mask agrees."""
    rows, cols, weights, n = data
    assert _auction_kernel() is not None
    saved = assignment_module._AUCTION_MIN_ARCS
    assignment_module._AUCTION_MIN_ARCS = 0
    try:
        fast = max_weight_matching_sparse(rows, cols, weights, (n, n))
    finally:
        assignment_module._AUCTION_MIN_ARCS = saved
    slow = without_auction(lambda: max_weight_matching_sparse(rows, cols, weights, (n, n)))
    np.testing.assert_array_equal(fast, slow)
    assert fast.dtype == np.int64


@pytest.mark.parametrize("values", ["wide", "ties"])
def test_public_sparse_against_scipy(values: str, auction_everywhere: None) -> None:
    """Totals equal scipy's full matching on the same scores (an exact grid: small integers or
    multiples of a power of two), and linear_sum_assignment on the dense matrix."""
    rng = np.random.default_rng(7)
    for n in (1, 2, 5, 40, 200):
        rows, cols, cost = random_square(rng, n, 4, values)
        # Scores that the grid keeps exactly: integer levels of a span that is a power of two.
        scores = (
            (-cost).astype(np.float64)
            if values == "ties"
            else rng.integers(0, 64, size=rows.size) / 8.0
        )
        pairs = max_weight_matching_sparse(rows, cols, scores, (n, n))
        assert len(pairs) == n
        key = rows.astype(np.int64) * n + cols
        idx = np.searchsorted(key, pairs[:, 0] * n + pairs[:, 1])
        total = float(scores[idx].sum())
        graph = csr_matrix((scores + 1.0, (rows, cols)), shape=(n, n))
        r, c = min_weight_full_bipartite_matching(graph, maximize=True)
        assert total == pytest.approx(float(np.asarray(graph[r, c]).sum()) - n)
        dense = np.full((n, n), -1e6)
        dense[rows, cols] = scores
        r2, c2 = linear_sum_assignment(dense, maximize=True)
        assert total == pytest.approx(float(dense[r2, c2].sum()))
        mask = np.zeros((n, n), dtype=bool)
        mask[rows, cols] = True
        if not mask.all():
            np.testing.assert_array_equal(max_weight_matching(dense, mask), pairs)


def test_single_row_and_single_candidates(auction_everywhere: None) -> None:
    assert max_weight_matching_sparse([0], [0], [3.5], (1, 1)).tolist() == [[0, 0]]
    # Every row has exactly one candidate: the matching is forced.
    perm = np.random.default_rng(1).permutation(25)
    pairs = max_weight_matching_sparse(np.arange(25), perm, np.linspace(-1, 1, 25), (25, 25))
    assert pairs.tolist() == [[i, int(j)] for i, j in enumerate(perm)]


def test_large_sparse_uses_the_auction_and_matches_ortools() -> None:
    """20,000 per side, 20 random candidates per row (400,000 arcs, above the threshold): the
    auction answers (its matching is the only optimum) and equals OR-Tools'; one column without
    candidates: no perfect matching, and the result is the min-cost-flow path's, as before."""
    n, degree = 20_000, 20
    rng = np.random.default_rng(5)
    rows = np.repeat(np.arange(n), degree)
    cols = rng.integers(0, n, size=rows.size)
    weights = rng.random(rows.size)
    assert rows.size >= assignment_module._AUCTION_MIN_ARCS
    assert _auction_kernel() is not None
    calls: list[bool] = []
    saved = assignment_module._sparse_perfect

    def spy(*args: object) -> object:
        out = saved(*args)  # type: ignore[arg-type]
        calls.append(out is not None)
        return out

    assignment_module._sparse_perfect = spy  # type: ignore[assignment]
    try:
        fast = max_weight_matching_sparse(rows, cols, weights, (n, n))
    finally:
        assignment_module._sparse_perfect = saved
    assert calls == [True]
    slow = without_auction(lambda: max_weight_matching_sparse(rows, cols, weights, (n, n)))
    np.testing.assert_array_equal(fast, slow)
    keep = cols != cols[0]
    short = max_weight_matching_sparse(rows[keep], cols[keep], weights[keep], (n, n))
    assert len(short) < n
    np.testing.assert_array_equal(
        short,
        without_auction(
            lambda: max_weight_matching_sparse(rows[keep], cols[keep], weights[keep], (n, n))
        ),
    )


def _fresh_python(code: str, numba_cache: Path) -> list[str]:
    """What ``code`` prints, split into words, run in a fresh process with ``numba_cache`` as
    numba's cache (empty: a new install)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_cache), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_small_sparse_problems_never_load_numba(tmp_path: Path) -> None:
    """Below the threshold a square sparse problem goes to OR-Tools without importing numba;
    importing the module does not import it either."""
    code = (
        "import sys, numpy as np; import solvers.assignment as a; s = 'numba' in sys.modules; "
        "r = np.repeat(np.arange(300), 5); c = (r + np.tile(np.arange(5), 300)) % 300; "
        "p = a.max_weight_matching_sparse(r, c, np.random.default_rng(0).random(r.size), "
        "(300, 300)); print(s, 'numba' in sys.modules, len(p))"
    )
    out = _fresh_python(code, tmp_path)
    assert out == ["False", "False", "300"]


def test_kernel_has_one_specialisation() -> None:
    kernel = _auction_kernel()
    assert kernel is not None
    rng = np.random.default_rng(4)
    for n in (3, 60, 600):
        assert run_kernel(random_square(rng, n, 3, "wide"), n)[1].size == n
    assert len(getattr(kernel, "signatures", ())) == 1
    assert len(getattr(kernel, "overloads", {})) == 1


def test_without_numba_ortools_answers(auction_everywhere: None) -> None:
    """Without numba the auction is skipped and the answer is OR-Tools', unchanged."""
    rng = np.random.default_rng(9)
    rows, cols, cost = random_square(rng, 80, 4, "wide")
    weights = -cost.astype(np.float64)
    with_auction = max_weight_matching_sparse(rows, cols, weights, (80, 80))
    saved = assignment_module._AUCTION
    assignment_module._AUCTION, assignment_module._AUCTION_NO_NUMBA = None, True
    try:
        assert _sparse_perfect(rows, cols, cost, 80) is None
        plain = max_weight_matching_sparse(rows, cols, weights, (80, 80))
    finally:
        assignment_module._AUCTION, assignment_module._AUCTION_NO_NUMBA = saved, False
    np.testing.assert_array_equal(plain, with_auction)


def test_new_install_does_not_compile_for_one_problem(tmp_path: Path) -> None:
    """With numba's cache empty (a new install), one square problem above the threshold goes
    to OR-Tools without compiling the auction (about 3 s, more than it would save); the
    matching is complete all the same."""
    code = (
        "import numpy as np; import solvers.assignment as a; n = 20000; "
        "rng = np.random.default_rng(3); r = np.repeat(np.arange(n), 12); "
        "c = rng.integers(0, n, size=r.size); "
        "p = a.max_weight_matching_sparse(r, c, rng.random(r.size), (n, n)); "
        "print(r.size >= a._AUCTION_MIN_ARCS, a._AUCTION is None, len(p))"
    )
    out = _fresh_python(code, tmp_path)
    assert out == ["True", "True", "20000"]
