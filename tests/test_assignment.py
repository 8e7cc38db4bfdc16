"""Tests for solvers.assignment: oracles (scipy, networkx), validity, ties, input errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

import solvers.assignment as assignment_module
from solvers.assignment import (
    _assignment_kernel,
    _solve,
    _solve_complete,
    grid_levels,
    matching_total,
    max_weight_matching,
    max_weight_matching_sparse,
)

TOL = 1e-6
ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# Helpers: validity check and independent oracles
# ---------------------------------------------------------------------------------------------


def assert_valid(pairs: NDArray[np.int64], allowed: NDArray[np.bool_]) -> None:
    """Each row and column used at most once, only allowed pairs, sorted by row."""
    n, m = allowed.shape
    assert pairs.ndim == 2 and pairs.shape[1] == 2
    assert pairs.dtype == np.int64
    rows, cols = pairs[:, 0], pairs[:, 1]
    assert np.all((rows >= 0) & (rows < n)) and np.all((cols >= 0) & (cols < m))
    assert len(set(rows.tolist())) == len(rows), "a row is matched twice"
    assert len(set(cols.tolist())) == len(cols), "a column is matched twice"
    assert np.all(np.diff(rows) > 0), "pairs not sorted by row"
    assert allowed[rows, cols].all(), "a forbidden pair was matched"


def max_cardinality_oracle(allowed: NDArray[np.bool_]) -> int:
    """Maximum matching size from scipy's Hopcroft-Karp."""
    if allowed.size == 0 or not allowed.any():
        return 0
    match = maximum_bipartite_matching(csr_matrix(allowed.astype(np.int8)), perm_type="column")
    return int(np.sum(match >= 0))


def scipy_oracle(
    scores: NDArray[np.float64], allowed: NDArray[np.bool_], max_cardinality: bool
) -> tuple[int, float]:
    """(cardinality, total) of an optimal matching via scipy's linear_sum_assignment.

    Max cardinality first: allowed entries become ``big + score`` with ``big`` larger than any
    difference of totals, forbidden entries 0 (matched only as padding, then dropped). Without
    it: allowed entries ``max(score, 0)``, forbidden 0; zero-valued pairs are dropped.
    """
    n, m = scores.shape
    if n == 0 or m == 0:
        return 0, 0.0
    if max_cardinality:
        big = 10.0 * (1.0 + float(np.abs(scores[allowed]).sum()) if allowed.any() else 1.0)
        profit = np.where(allowed, big + scores, 0.0)
    else:
        profit = np.where(allowed, np.maximum(scores, 0.0), 0.0)
    r, c = linear_sum_assignment(profit, maximize=True)
    keep = allowed[r, c] if max_cardinality else allowed[r, c] & (scores[r, c] > 0)
    return int(keep.sum()), float(scores[r[keep], c[keep]].sum())


def networkx_oracle(
    scores: NDArray[np.float64], allowed: NDArray[np.bool_], max_cardinality: bool
) -> tuple[int, float]:
    """(cardinality, total) via networkx's blossom algorithm on the bipartite graph."""
    n, m = scores.shape
    graph = nx.Graph()
    graph.add_nodes_from(("r", i) for i in range(n))
    graph.add_nodes_from(("c", j) for j in range(m))
    for i, j in zip(*np.nonzero(allowed), strict=True):
        graph.add_edge(("r", int(i)), ("c", int(j)), weight=float(scores[i, j]))
    matching = nx.max_weight_matching(graph, maxcardinality=max_cardinality)
    total = 0.0
    for u, v in matching:
        (_, i), (_, j) = sorted((u, v))  # "c" sorts before "r"
        total += scores[j, i]
    return len(matching), total


# Scores on a coarse grid (many exact ties) or arbitrary floats; negative values included.
coarse_scores = st.integers(-8, 8).map(lambda v: v / 4)
fine_scores = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def instances(draw: st.DrawFn) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    n = draw(st.integers(0, 9))
    m = draw(st.integers(0, 9))
    element = draw(st.sampled_from([coarse_scores, fine_scores]))
    flat = draw(st.lists(element, min_size=n * m, max_size=n * m))
    density = draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scores = np.array(flat, dtype=np.float64).reshape(n, m)
    allowed = rng.random((n, m)) < density
    return scores, allowed


# ---------------------------------------------------------------------------------------------
# Property tests against the oracles
# ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(instances())
def test_max_cardinality_matches_scipy_and_networkx(
    instance: tuple[NDArray[np.float64], NDArray[np.bool_]],
) -> None:
    scores, allowed = instance
    pairs = max_weight_matching(scores, allowed)
    assert_valid(pairs, allowed)
    total = matching_total(scores, pairs)

    assert len(pairs) == max_cardinality_oracle(allowed)
    card_sp, total_sp = scipy_oracle(scores, allowed, max_cardinality=True)
    assert len(pairs) == card_sp
    assert total == pytest.approx(total_sp, abs=TOL)
    card_nx, total_nx = networkx_oracle(scores, allowed, max_cardinality=True)
    assert len(pairs) == card_nx
    assert total == pytest.approx(total_nx, abs=TOL)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_max_weight_matches_scipy_and_networkx(
    instance: tuple[NDArray[np.float64], NDArray[np.bool_]],
) -> None:
    scores, allowed = instance
    pairs = max_weight_matching(scores, allowed, max_cardinality=False)
    assert_valid(pairs, allowed)
    # Pairs scoring <= 0 are never taken.
    assert np.all(scores[pairs[:, 0], pairs[:, 1]] > 0)
    total = matching_total(scores, pairs)
    _, total_sp = scipy_oracle(scores, allowed, max_cardinality=False)
    assert total == pytest.approx(total_sp, abs=TOL)
    _, total_nx = networkx_oracle(scores, allowed, max_cardinality=False)
    assert total == pytest.approx(total_nx, abs=TOL)


@settings(max_examples=300, deadline=None)
@given(instances(), st.booleans(), st.integers(0, 2**32 - 1))
def test_sparse_equals_dense(
    instance: tuple[NDArray[np.float64], NDArray[np.bool_]], max_card: bool, seed: int
) -> None:
    """Candidate lists in any order, with lower-weight duplicates, give the dense matching."""
    scores, allowed = instance
    n, m = scores.shape
    dense = max_weight_matching(scores, allowed, max_cardinality=max_card)

    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(allowed)
    weights = scores[rows, cols]
    dup = rng.random(rows.size) < 0.3
    rows = np.concatenate([rows, rows[dup]])
    cols = np.concatenate([cols, cols[dup]])
    weights = np.concatenate([weights, weights[dup] - rng.uniform(0.1, 5.0, int(dup.sum()))])
    order = rng.permutation(rows.size)
    sparse = max_weight_matching_sparse(
        rows[order], cols[order], weights[order], (n, m), max_cardinality=max_card
    )
    np.testing.assert_array_equal(sparse, dense)


@settings(max_examples=300, deadline=None)
@given(instances())
def test_no_mask_equals_all_true_mask_and_transpose(
    instance: tuple[NDArray[np.float64], NDArray[np.bool_]],
) -> None:
    """The complete-graph shortcut agrees with the general path; transposing is harmless."""
    scores, _ = instance
    everything = np.ones(scores.shape, dtype=bool)
    pairs = max_weight_matching(scores)
    assert_valid(pairs, everything)
    assert len(pairs) == min(scores.shape)
    _, total = scipy_oracle(scores, everything, max_cardinality=True)
    assert matching_total(scores, pairs) == pytest.approx(total, abs=TOL)
    flipped = max_weight_matching(scores.T)
    assert matching_total(scores.T, flipped) == pytest.approx(total, abs=TOL)


# ---------------------------------------------------------------------------------------------
# Hand-checkable cases
# ---------------------------------------------------------------------------------------------


def test_cardinality_beats_weight() -> None:
    """One heavy pair (0,0) loses to two light pairs (0,1), (1,0) under max cardinality."""
    scores = np.array([[10.0, 1.0], [1.0, 0.0]])
    allowed = np.array([[True, True], [True, False]])
    assert max_weight_matching(scores, allowed).tolist() == [[0, 1], [1, 0]]
    assert max_weight_matching(scores, allowed, max_cardinality=False).tolist() == [[0, 0]]


def test_negative_scores_taken_only_under_max_cardinality() -> None:
    scores = np.array([[-1.0, -2.0], [-3.0, -0.5]])
    assert max_weight_matching(scores).tolist() == [[0, 0], [1, 1]]
    assert max_weight_matching(scores, max_cardinality=False).shape == (0, 2)


def test_zero_scores_never_taken_without_max_cardinality() -> None:
    scores = np.array([[0.0, 2.0], [0.0, 0.0]])
    assert max_weight_matching(scores, max_cardinality=False).tolist() == [[0, 1]]
    assert max_weight_matching(scores).tolist() == [[0, 1], [1, 0]]


def test_vertex_cover_structure() -> None:
    """Rows a, b, c; columns x, y. Edges a-x, b-x, c-x, c-y: max matching has 2 pairs and must
    use c-y; the heavy c-x pair (joining two always-matched vertices) is never taken."""
    scores = np.array([[1.0, 0.0], [2.0, 0.0], [100.0, 0.5]])
    allowed = np.array([[True, False], [True, False], [True, True]])
    assert max_weight_matching(scores, allowed).tolist() == [[1, 0], [2, 1]]
    assert max_weight_matching(scores, allowed, max_cardinality=False).tolist() == [[2, 0]]


def test_one_row() -> None:
    scores = np.array([[0.3, 0.9, 0.1, 0.9]])
    assert max_weight_matching(scores).tolist() == [[0, 1]]  # tie 1 vs 3: nearer the diagonal
    allowed = np.array([[True, False, True, False]])
    assert max_weight_matching(scores, allowed).tolist() == [[0, 0]]


def test_one_column() -> None:
    scores = np.array([[0.3], [0.9], [0.1]])
    assert max_weight_matching(scores).tolist() == [[1, 0]]


@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (4, 0)])
def test_empty_matrix(shape: tuple[int, int]) -> None:
    result = max_weight_matching(np.zeros(shape))
    assert result.shape == (0, 2) and result.dtype == np.int64
    sparse = max_weight_matching_sparse([], [], [], shape)
    assert sparse.shape == (0, 2) and sparse.dtype == np.int64


def test_all_forbidden() -> None:
    scores = np.ones((3, 4))
    allowed = np.zeros((3, 4), dtype=bool)
    for flag in (True, False):
        assert max_weight_matching(scores, allowed, max_cardinality=flag).shape == (0, 2)


def test_forbidden_nan_is_ignored() -> None:
    scores = np.array([[np.nan, 1.0], [1.0, np.nan]])
    allowed = ~np.isnan(scores)
    assert max_weight_matching(scores, allowed).tolist() == [[0, 1], [1, 0]]


def test_large_offset_does_not_cost_precision() -> None:
    """Scores are rounded relative to their range, not their magnitude."""
    scores = 1e9 + np.array([[0.0, 1e-3], [1e-3, 0.0]])
    assert max_weight_matching(scores).tolist() == [[0, 1], [1, 0]]


def test_medium_random_against_scipy() -> None:
    rng = np.random.default_rng(7)
    scores = rng.random((120, 150))
    allowed = rng.random((120, 150)) < 0.05
    pairs = max_weight_matching(scores, allowed)
    assert_valid(pairs, allowed)
    assert len(pairs) == max_cardinality_oracle(allowed)
    _, total = scipy_oracle(scores, allowed, max_cardinality=True)
    assert matching_total(scores, pairs) == pytest.approx(total, abs=TOL)


# ---------------------------------------------------------------------------------------------
# Ties and determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 7), (7, 4), (50, 50), (200, 300)])
@pytest.mark.parametrize("max_card", [True, False])
def test_equal_scores_give_the_diagonal(shape: tuple[int, int], max_card: bool) -> None:
    """Documented tie-break: among optimal matchings, the smallest sum(|row - col|)."""
    n, m = shape
    expected = [[i, i] for i in range(min(n, m))]
    for _ in range(3):
        assert max_weight_matching(np.full(shape, 0.5), max_cardinality=max_card).tolist() == (
            expected
        )
    rows, cols = np.nonzero(np.ones(shape, dtype=bool))
    sparse = max_weight_matching_sparse(
        rows[::-1], cols[::-1], np.full(rows.size, 0.5), shape, max_cardinality=max_card
    )
    assert sparse.tolist() == expected


def test_tie_break_prefers_fewest_pairs_without_max_cardinality() -> None:
    """Total 2 either way: one pair (0,0) beats two pairs (0,1) + (1,0)."""
    scores = np.array([[2.0, 1.0], [1.0, 0.0]])
    assert max_weight_matching(scores, max_cardinality=False).tolist() == [[0, 0]]
    # Two pairs are required here; both two-pair matchings total 2, the diagonal one wins.
    assert max_weight_matching(scores).tolist() == [[0, 0], [1, 1]]


def test_repeated_calls_identical_on_large_tied_instance() -> None:
    """Above the tie-break size the solver settles ties, still the same on every call."""
    assert grid_levels(600, 600)[1] is False
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, size=(600, 600)).astype(float)
    first = max_weight_matching(scores)
    for _ in range(2):
        np.testing.assert_array_equal(max_weight_matching(scores), first)


def test_grid_levels() -> None:
    assert grid_levels(10, 10) == (2**30, True)
    levels, tie_break = grid_levels(400, 400)
    assert tie_break and 2**24 <= levels < 2**30
    assert grid_levels(2000, 2000) == (2**30, False)
    levels, tie_break = grid_levels(50_000, 50_000)
    assert not tie_break and 2**27 < levels < 2**30
    with pytest.raises(ValueError, match="too large"):
        grid_levels(3_000_000, 3_000_000)


# ---------------------------------------------------------------------------------------------
# Complete (dense, unmasked) fast path against the OR-Tools path and scipy
# ---------------------------------------------------------------------------------------------


def ortools_complete(scores: NDArray[np.float64], max_card: bool) -> NDArray[np.int64]:
    """The general (OR-Tools) path forced on a complete problem."""
    n, m = scores.shape
    rows = np.repeat(np.arange(n, dtype=np.int32), m)
    cols = np.tile(np.arange(m, dtype=np.int32), n)
    return _solve(rows, cols, scores.reshape(-1), n, m, max_cardinality=max_card, complete=True)


def tie_cost(pairs: NDArray[np.int64]) -> int:
    """The documented tie-break quantity: pairs + sum(|row - col|)."""
    return len(pairs) + int(np.abs(pairs[:, 0] - pairs[:, 1]).sum())


@st.composite
def dense_instances(draw: st.DrawFn) -> NDArray[np.float64]:
    n = draw(st.integers(1, 14))
    m = draw(st.integers(1, 14))
    seed = draw(st.integers(0, 2**32 - 1))
    kind = draw(st.sampled_from(["ties", "coarse", "fine"]))
    rng = np.random.default_rng(seed)
    if kind == "ties":  # heavy ties: a handful of integer values
        return rng.integers(-1, draw(st.integers(1, 3)), size=(n, m)).astype(np.float64)
    if kind == "coarse":
        return rng.integers(-8, 9, size=(n, m)) / 4
    return rng.uniform(-10, 10, size=(n, m))


@settings(max_examples=300, deadline=None)
@given(dense_instances(), st.booleans())
def test_fast_path_agrees_with_ortools_path_and_scipy(
    scores: NDArray[np.float64], max_card: bool
) -> None:
    """Same rounded problem, same tie-break: equal totals and pairs + sum(|row - col|)."""
    everything = np.ones(scores.shape, dtype=bool)
    fast = _solve_complete(scores, max_cardinality=max_card)
    slow = ortools_complete(scores, max_card)
    assert_valid(fast, everything)
    assert_valid(slow, everything)
    total = matching_total(scores, fast)
    assert total == pytest.approx(matching_total(scores, slow), abs=TOL)
    _, total_sp = scipy_oracle(scores, everything, max_cardinality=max_card)
    assert total == pytest.approx(total_sp, abs=TOL)
    if max_card:
        assert len(fast) == min(scores.shape)
    else:
        assert np.all(scores[fast[:, 0], fast[:, 1]] > 0)
    # The tie-break is on at these sizes: the smallest pairs + sum(|row - col|).
    assert grid_levels(*scores.shape)[1]
    assert tie_cost(fast) == tie_cost(slow)
    # Transposing the input transposes the problem (the fast path solves it the other way up).
    flipped = _solve_complete(scores.T.copy(), max_cardinality=max_card)
    assert matching_total(scores.T, flipped) == pytest.approx(total, abs=TOL)
    assert tie_cost(flipped) == tie_cost(fast)


@pytest.mark.parametrize("shape", [(150, 260), (260, 150), (200, 200)])
@pytest.mark.parametrize("max_card", [True, False])
def test_fast_path_tie_break_on_larger_tied_instances(
    shape: tuple[int, int], max_card: bool
) -> None:
    rng = np.random.default_rng(sum(shape))
    scores = rng.integers(-1, 3, size=shape).astype(np.float64)
    assert grid_levels(*shape)[1]
    fast = max_weight_matching(scores, max_cardinality=max_card)
    slow = ortools_complete(scores, max_card)
    assert matching_total(scores, fast) == matching_total(scores, slow)
    assert tie_cost(fast) == tie_cost(slow)


@pytest.mark.parametrize("shape", [(600, 900), (900, 600)])
def test_fast_path_without_tie_break_against_scipy(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(11)
    everything = np.ones(shape, dtype=bool)
    for scores in (rng.random(shape), rng.integers(0, 3, size=shape).astype(np.float64)):
        assert not grid_levels(*shape)[1]
        for max_card in (True, False):
            pairs = max_weight_matching(scores, max_cardinality=max_card)
            assert_valid(pairs, everything)
            _, total = scipy_oracle(scores, everything, max_cardinality=max_card)
            assert matching_total(scores, pairs) == pytest.approx(total, abs=TOL)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 9),
    st.integers(0, 6),
    st.integers(0, 2**32 - 1),
    st.sampled_from([2, 5, 0]),
    st.booleans(),
    st.booleans(),
)
def test_pure_python_path_equals_compiled(
    rows: int, extra: int, seed: int, spread: int, max_card: bool, flip: bool
) -> None:
    """Without numba (numpy rounds, plain Python searches) the matching is exactly the compiled
    kernel's (which rounds and searches in one call), on both cost types: int64 while the
    tie-break is on (these sizes), int32 on the coarser grid of a large problem."""
    rng = np.random.default_rng(seed)
    shape = (rows + extra, rows) if flip else (rows, rows + extra)
    scores = rng.integers(-spread, spread + 1, size=shape) / 2 if spread else rng.random(shape)
    saved, plain_max = assignment_module._KERNEL, assignment_module.PLAIN_MAX_CELLS
    try:
        assignment_module.PLAIN_MAX_CELLS = 0  # small problems too through the compiled kernel
        assert _assignment_kernel() is not None
        compiled = _solve_complete(scores, max_cardinality=max_card)
    finally:
        assignment_module.PLAIN_MAX_CELLS = plain_max
    try:
        assignment_module._KERNEL, assignment_module._NO_NUMBA = None, True
        plain = _solve_complete(scores, max_cardinality=max_card)
    finally:
        assignment_module._KERNEL, assignment_module._NO_NUMBA = saved, False
    np.testing.assert_array_equal(plain, compiled)
    _, total = scipy_oracle(scores, np.ones(shape, dtype=bool), max_cardinality=max_card)
    assert matching_total(scores, compiled) == pytest.approx(total, abs=TOL)


def test_kernel_has_one_specialisation_for_every_size() -> None:
    """Small (int64 costs, tie-break) and large (int32 costs) problems, both orientations and
    both objectives go through one compiled specialisation: a process never compiles or loads
    a second one in the middle of a solve."""
    kernel = _assignment_kernel()
    assert kernel is not None
    rng = np.random.default_rng(3)
    plain_max = assignment_module.PLAIN_MAX_CELLS
    try:
        assignment_module.PLAIN_MAX_CELLS = 0
        for shape in ((3, 5), (5, 3), (600, 700), (700, 600)):
            assert grid_levels(*shape)[1] == (shape[0] < 100)
            for max_card in (True, False):
                pairs = max_weight_matching(rng.random(shape), max_cardinality=max_card)
                assert len(pairs) == min(shape) or not max_card
    finally:
        assignment_module.PLAIN_MAX_CELLS = plain_max
    assert len(getattr(kernel, "signatures", ())) == 1
    assert len(getattr(kernel, "overloads", {})) == 1


# ---------------------------------------------------------------------------------------------
# Input errors
# ---------------------------------------------------------------------------------------------


def test_nan_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        max_weight_matching(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="finite"):
        max_weight_matching(np.array([[1.0, np.nan]]), np.array([[True, True]]))
    with pytest.raises(ValueError, match="finite"):
        max_weight_matching_sparse([0], [0], [np.nan], (1, 1))


def test_inf_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        max_weight_matching(np.array([[1.0, np.inf]]))


def test_shape_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        max_weight_matching(np.ones((2, 3)), np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="2-D"):
        max_weight_matching(np.ones(3))


def test_non_boolean_mask_rejected() -> None:
    with pytest.raises(TypeError, match="boolean"):
        max_weight_matching(np.ones((2, 2)), np.ones((2, 2)))


def test_sparse_input_errors() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        max_weight_matching_sparse([0, 1], [0], [1.0], (2, 2))
    with pytest.raises(ValueError, match="rows must lie"):
        max_weight_matching_sparse([2], [0], [1.0], (2, 2))
    with pytest.raises(ValueError, match="cols must lie"):
        max_weight_matching_sparse([0], [-1], [1.0], (2, 2))
    with pytest.raises(ValueError, match="integers"):
        max_weight_matching_sparse([0.0], [0], [1.0], (2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        max_weight_matching_sparse([], [], [], (-1, 2))


def test_sparse_duplicates_keep_the_highest_weight() -> None:
    pairs = max_weight_matching_sparse(
        [0, 0, 1, 1, 0], [0, 1, 0, 1, 0], [1.0, 2.0, 2.0, 1.0, 5.0], (2, 2)
    )
    assert pairs.tolist() == [[0, 0], [1, 1]]  # (0,0) counts 5: 5 + 1 > 2 + 2


def test_inputs_not_mutated() -> None:
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    allowed = np.array([[True, False], [True, True]])
    before = scores.copy(), allowed.copy()
    max_weight_matching(scores, allowed)
    np.testing.assert_array_equal(scores, before[0])
    np.testing.assert_array_equal(allowed, before[1])
    rows, cols, weights = np.array([1, 0]), np.array([0, 1]), np.array([1.0, 1.0])
    max_weight_matching_sparse(rows, cols, weights, (2, 2))
    assert rows.tolist() == [1, 0] and cols.tolist() == [0, 1]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(0, 2**32 - 1), st.floats(0.02, 0.5))
def test_quick_cover_check_agrees_with_maximum_matching(
    n: int, m: int, seed: int, density: float
) -> None:
    """The quick check says a matching covers the smaller side only when one does (scipy's
    maximum matching), and finds it on these small inputs (no budget cut)."""
    from solvers.assignment import _covers_smaller_side

    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < density
    r, c = np.nonzero(mask)
    if r.size == 0:
        return
    graph = csr_matrix((np.ones(r.size), (r, c)), shape=(n, m))
    size = int((maximum_bipartite_matching(graph, perm_type="column") >= 0).sum())
    got = _covers_smaller_side(r.astype(np.int32), c.astype(np.int32), n, m)
    assert got == (size == min(n, m))


def test_quick_cover_check_on_large_sparse_input() -> None:
    """50,000 per side, 20 candidates each: covered; one column removed: not (the max flow
    then decides), and the matching sizes the solver uses agree with the max flow."""
    from solvers.assignment import _covers_smaller_side, _max_matching_size

    rng = np.random.default_rng(5)
    n = 50_000
    r = np.repeat(np.arange(n, dtype=np.int32), 20)
    c = rng.integers(0, n, size=r.size).astype(np.int32)
    assert r.size >= assignment_module._COVER_MIN_ARCS
    assert _covers_smaller_side(r, c, n, n) == (_max_matching_size(r, c, n, n) == n)
    keep = c != c[0]
    assert not _covers_smaller_side(r[keep], c[keep], n, n)


def test_small_complete_problems_never_load_numba(tmp_path: Path) -> None:
    """A programme-sized complete problem runs in plain Python (no numba import), and on a new
    install (empty numba cache) up to PLAIN_COLD_MAX_CELLS too, instead of waiting for the
    compile; the matching is the compiled kernel's (tested above)."""
    code = (
        "import sys, numpy as np; from solvers.assignment import max_weight_matching as f; "
        "f(np.random.default_rng(0).random((100, 100))); a = 'numba' in sys.modules; "
        "f(np.random.default_rng(0).random((150, 200))); b = 'numba' in sys.modules; "
        "print(a, b)"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
