"""Tests for solvers.grouping (maximally diverse grouping with size bounds and cannot-link pairs).

Every solve is re-checked by ``verify`` below, written independently of the solver: it checks
the size bounds and cannot-link pairs and recomputes the objective with plain loops.
"""

from __future__ import annotations

import csv
import itertools
import os
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import solvers.grouping as grouping
import solvers.grouping.kernels as kernels
from solvers.grouping import (
    GroupingInfeasible,
    GroupingResult,
    diverse_groups,
    grouping_objective,
)

DATA = Path(__file__).resolve().parent / "data" / "mdgp"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "mdgp"

#: Proven optima (exhaustive DP; see tests/data/mdgp/README.md).
OPTIMA = {
    "RanReal_n010_ss_01": 1427.845,
    "RanReal_n010_ds_01": 1437.807,
    "Geo_n010_ss_10": 3752.033,
    "RanReal_n012_ss_01": 956.430,
    "RanReal_n012_ds_01": 1050.349,
    "RanInt_n012_ss_03": 993.000,
}


def load_mdgplib(path: Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Read an MDGPLIB file: header ``M G ss|ds a1 b1 ...``, then ``i j d`` lines."""
    lines = path.read_text().split("\n")
    head = lines[0].split()
    n, n_groups = int(head[0]), int(head[1])
    bounds = [(int(head[3 + 2 * g]), int(head[4 + 2 * g])) for g in range(n_groups)]
    d = np.zeros((n, n))
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 3:
            i, j, v = int(parts[0]), int(parts[1]), float(parts[2])
            d[i, j] = d[j, i] = v
    return d, bounds


def verify(
    distance: np.ndarray,
    bounds: list[tuple[int, int]],
    result: GroupingResult,
    cannot_link: list[tuple[int, int]] | None = None,
) -> None:
    """Independent check of hard rules and of the reported objective."""
    labels = [int(v) for v in result.labels]
    n = distance.shape[0]
    assert len(labels) == n
    for g, (lo, hi) in enumerate(bounds):
        size = labels.count(g)
        assert lo <= size <= hi, f"group {g} has {size} members, bounds ({lo}, {hi})"
    assert all(0 <= v < len(bounds) for v in labels)
    for i, j in cannot_link or []:
        assert labels[i] != labels[j], f"cannot-link pair ({i}, {j}) shares group {labels[i]}"
    total = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] == labels[j]:
                total += float(distance[i, j])
    assert result.objective == pytest.approx(total, rel=1e-9, abs=1e-9)
    # a heuristic states no bound; a stated bound holds
    bound = result.bound
    assert bound is None or result.objective <= bound + 1e-6 * max(1.0, abs(bound))


def brute_force(
    distance: np.ndarray,
    bounds: list[tuple[int, int]],
    cannot_link: list[tuple[int, int]] | None = None,
) -> float | None:
    """Best objective over all labelings (None if none is feasible)."""
    n = distance.shape[0]
    best: float | None = None
    for labels in itertools.product(range(len(bounds)), repeat=n):
        if any(not lo <= labels.count(g) <= hi for g, (lo, hi) in enumerate(bounds)):
            continue
        if any(labels[i] == labels[j] for i, j in cannot_link or []):
            continue
        value = grouping_objective(distance, np.array(labels))
        if best is None or value > best:
            best = value
    return best


def random_instance(
    rng: np.random.Generator, n: int, n_groups: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Random symmetric distances and random bounds that admit n elements."""
    d = rng.uniform(0, 100, (n, n))
    d = np.round((d + d.T) / 2, 3)
    while True:
        lo = rng.integers(0, n // n_groups + 1, n_groups)
        hi = lo + rng.integers(0, 3, n_groups)
        if lo.sum() <= n <= hi.sum():
            return d, [(int(a), int(b)) for a, b in zip(lo, hi, strict=True)]


@pytest.fixture(scope="module", autouse=True)
def _warm_numba() -> None:
    """Compile (or load from cache) the heuristic kernel once, so timings below are fair and
    the tests below run the compiled kernel (small searches would otherwise run the numpy one
    first: NUMPY_FIRST_WORK)."""
    kernels._tabu_kernel(np.iinfo(np.int64).max)


# --------------------------------------------------------------------------------------------
# Objective
# --------------------------------------------------------------------------------------------


def test_objective_counts_each_unordered_pair_once_and_ignores_diagonal() -> None:
    """Groups {0, 1} and {2}: only d[0, 1] = 5 counts; the diagonal (99) never does."""
    d = np.array([[99.0, 5.0, 1.0], [5.0, 99.0, 2.0], [1.0, 2.0, 99.0]])
    assert grouping_objective(d, [0, 0, 1]) == 5.0
    assert grouping_objective(d, [0, 0, 0]) == 8.0


# --------------------------------------------------------------------------------------------
# MDGPLIB instances with proven optima
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_mdgplib_exact_hits_proven_optimum(name: str) -> None:
    d, bounds = load_mdgplib(DATA / f"{name}.txt")
    result = diverse_groups(d, bounds, method="exact")
    verify(d, bounds, result)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(OPTIMA[name], abs=2e-3)
    assert result.bound == pytest.approx(result.objective, abs=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMA))
def test_mdgplib_heuristic_small_budget_hits_proven_optimum(name: str) -> None:
    d, bounds = load_mdgplib(DATA / f"{name}.txt")
    result = diverse_groups(d, bounds, method="heuristic", max_iters=3000, seed=1)
    verify(d, bounds, result)
    assert result.objective == pytest.approx(OPTIMA[name], abs=2e-3)
    assert result.bound is None and result.status == "feasible"


def test_auto_uses_exact_for_tiny_and_heuristic_for_larger() -> None:
    d, bounds = load_mdgplib(DATA / "RanReal_n010_ss_01.txt")
    assert diverse_groups(d, bounds).method == "exact"
    rng = np.random.default_rng(3)
    big = rng.uniform(0, 1, (30, 30))
    big = big + big.T
    assert diverse_groups(big, [(10, 10)] * 3, max_iters=100).method == "heuristic"


@pytest.mark.skipif(not SHARED.exists(), reason="shared MDGP benchmark dir absent")
def test_shared_n120_instance_heuristic_close_to_reference() -> None:
    """One second on RanReal_n120_ss_01 lands within 1% of the TPSDP reference value."""
    d, bounds = load_mdgplib(SHARED / "instances" / "RanReal_n120_ss_01.txt")
    with (SHARED / "best_known.csv").open() as f:
        ref = {r["instance"]: float(r["best_value"]) for r in csv.DictReader(f)}
    result = diverse_groups(d, bounds, time_limit=1.0)
    verify(d, bounds, result)
    assert result.objective >= 0.99 * ref["RanReal_n120_ss_01"]


# --------------------------------------------------------------------------------------------
# Exact and heuristic against brute force on tiny random cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", range(8))
def test_exact_matches_brute_force(case: int) -> None:
    rng = np.random.default_rng(100 + case)
    n, n_groups = int(rng.integers(4, 8)), int(rng.integers(2, 4))
    d, bounds = random_instance(rng, n, n_groups)
    if case % 2:  # also negative distances: the model must then force "together" both ways
        d = d - 50.0
        np.fill_diagonal(d, 0.0)
    result = diverse_groups(d, bounds, method="exact")
    verify(d, bounds, result)
    assert result.status == "optimal"
    assert result.objective == pytest.approx(brute_force(d, bounds), abs=1e-6)


@pytest.mark.parametrize("case", range(6))
def test_exact_with_cannot_link_matches_brute_force(case: int) -> None:
    rng = np.random.default_rng(200 + case)
    n = 7
    d, bounds = random_instance(rng, n, 3)
    pairs = [(int(i), int(j)) for i, j in itertools.combinations(range(n), 2)]
    cannot = [pairs[k] for k in rng.choice(len(pairs), 4, replace=False)]
    best = brute_force(d, bounds, cannot)
    if best is None:
        with pytest.raises(GroupingInfeasible):
            diverse_groups(d, bounds, cannot_link=cannot, method="exact")
        return
    for method in ("exact", "heuristic"):
        result = diverse_groups(d, bounds, cannot_link=cannot, method=method, max_iters=500)
        verify(d, bounds, result, cannot)
        assert result.objective == pytest.approx(best, abs=1e-6), method


# --- the exact method's dynamic programming over subsets, against CP-SAT ----------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 10),
    lo=st.integers(1, 4),
    spread=st.integers(0, 3),
    links=st.integers(0, 8),
    ties=st.booleans(),
)
def test_subsets_reach_cp_sats_optimum_or_share_its_proof_of_infeasibility(
    seed: int, n: int, lo: int, spread: int, links: int, ties: bool
) -> None:
    """Interchangeable groups (one size range for all) on up to 10 elements, with cannot-link
    pairs, negative distances and many ties: the subset method (what ``method="exact"`` runs
    there) and CP-SAT's model reach the same optimum, or both prove there is none."""
    import solvers.grouping.exact as exact

    rng = np.random.default_rng(seed)
    hi = lo + spread
    n_groups = int(rng.integers(1, n // lo + 2))  # some admit no grouping
    d = rng.integers(-2, 5, (n, n)) / 4 if ties else rng.uniform(-10, 100, (n, n))
    d = (d + d.T) / 2
    pairs = [(int(i), int(j)) for i, j in itertools.combinations(range(n), 2)]
    cannot = [pairs[k] for k in rng.choice(len(pairs), min(links, len(pairs)), replace=False)]
    bounds = [(lo, hi)] * n_groups
    try:
        by_subsets = diverse_groups(d, bounds, cannot_link=cannot, method="exact")
    except GroupingInfeasible:
        by_subsets = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exact, "solve_by_subsets", lambda p: None)
        try:
            by_cp_sat = diverse_groups(d, bounds, cannot_link=cannot, method="exact")
        except GroupingInfeasible:
            by_cp_sat = None
    assert (by_subsets is None) == (by_cp_sat is None)
    if by_subsets is not None and by_cp_sat is not None:
        verify(d, bounds, by_subsets, cannot)
        assert by_subsets.status == "optimal" and by_subsets.method == "exact"
        assert by_subsets.objective == pytest.approx(by_cp_sat.objective, abs=1e-9)
        assert by_subsets.bound == by_subsets.objective


def test_subsets_match_brute_force_and_give_the_same_labels_every_run() -> None:
    rng = np.random.default_rng(7)
    d = np.round(rng.uniform(0, 3, (9, 9)))  # integer distances: many optimal groupings
    d = (d + d.T) / 2
    bounds = [(2, 4)] * 3
    first = diverse_groups(d, bounds, method="exact")
    verify(d, bounds, first)
    assert first.objective == pytest.approx(brute_force(d, bounds), abs=1e-9)
    for _ in range(3):
        assert diverse_groups(d, bounds, method="exact").labels.tolist() == first.labels.tolist()


def test_subsets_decline_what_they_do_not_cover_and_cp_sat_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Groups with different bounds, groups that may be empty, more than SUBSETS_MAX_N elements
    or a step past SUBSETS_MAX_WORK: the subset method declines, CP-SAT's model proves it."""
    import solvers.grouping.subsets as subsets
    from solvers.grouping.problem import _prepare

    rng = np.random.default_rng(3)
    d = rng.uniform(0, 1, (8, 8))
    d = (d + d.T) / 2
    for bounds in ([(2, 2), (2, 2), (2, 4)], [(0, 4), (0, 4), (0, 4)]):
        assert subsets.solve_by_subsets(_prepare(d, bounds, None)) is None
        result = diverse_groups(d, bounds, method="exact")
        verify(d, bounds, result)
        assert result.status == "optimal"
        assert result.objective == pytest.approx(brute_force(d, bounds), abs=1e-9)
    big = rng.uniform(0, 1, (subsets.SUBSETS_MAX_N + 1,) * 2)
    assert subsets.solve_by_subsets(_prepare((big + big.T) / 2, [(3, 6)] * 4, None)) is None
    assert subsets.solve_by_subsets(_prepare(d, [(2, 3)] * 3, None)) is not None
    monkeypatch.setattr(subsets, "SUBSETS_MAX_WORK", 10)
    assert subsets.solve_by_subsets(_prepare(d, [(2, 3)] * 3, None)) is None


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 6),
    n_groups=st.integers(1, 3),
)
def test_property_solve_then_verify(seed: int, n: int, n_groups: int) -> None:
    """Generate -> solve (both methods) -> verify; exact equals brute force."""
    rng = np.random.default_rng(seed)
    d, bounds = random_instance(rng, n, n_groups)
    best = brute_force(d, bounds)
    exact = diverse_groups(d, bounds, method="exact")
    verify(d, bounds, exact)
    assert exact.objective == pytest.approx(best, abs=1e-6)
    heur = diverse_groups(d, bounds, method="heuristic", max_iters=300, seed=seed)
    verify(d, bounds, heur)
    assert heur.objective == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("case", range(5))
def test_heuristic_matches_exact_on_small_random(case: int) -> None:
    """n = 10..12: the heuristic with 3000 iterations finds the CP-SAT optimum (tolerance 0)."""
    rng = np.random.default_rng(300 + case)
    d, bounds = random_instance(rng, int(rng.integers(10, 13)), int(rng.integers(2, 5)))
    exact = diverse_groups(d, bounds, method="exact")
    heur = diverse_groups(d, bounds, method="heuristic", max_iters=3000, seed=case)
    verify(d, bounds, exact)
    verify(d, bounds, heur)
    assert exact.status == "optimal"
    assert heur.objective == pytest.approx(exact.objective, abs=1e-6)


# --------------------------------------------------------------------------------------------
# Hard rules: bounds and cannot-link
# --------------------------------------------------------------------------------------------


def test_heuristic_respects_cannot_link_and_bounds_on_mid_size() -> None:
    rng = np.random.default_rng(7)
    n = 60
    d = rng.uniform(0, 10, (n, n))
    d = d + d.T
    bounds = [(8, 12), (10, 10), (0, 15), (9, 14), (5, 20)]
    # Make the forbidden pairs the most attractive ones, so the search is tempted.
    iu = np.triu_indices(n, 1)
    top = np.argsort(-d[iu])[:80]
    cannot = [(int(iu[0][k]), int(iu[1][k])) for k in top]
    result = diverse_groups(d, bounds, cannot_link=cannot, max_iters=3000, seed=2)
    verify(d, bounds, result, cannot)


def test_group_with_min_zero_may_be_empty_and_others_may_not() -> None:
    """All distances negative: the best plan uses small groups; a min-0 group may stay empty."""
    d = -np.ones((6, 6))
    bounds = [(2, 6), (2, 6), (0, 6), (0, 0)]
    for method in ("exact", "heuristic"):
        result = diverse_groups(d, bounds, method=method, max_iters=500)
        verify(d, bounds, result)
        assert np.count_nonzero(result.labels == 3) == 0


def test_single_group_and_empty_input() -> None:
    d = np.arange(9, dtype=float).reshape(3, 3)
    d = d + d.T
    result = diverse_groups(d, [(0, 5)], method="heuristic")
    verify(d, [(0, 5)], result)
    assert list(result.labels) == [0, 0, 0]
    empty = diverse_groups(np.zeros((0, 0)), [(0, 3)])
    assert empty.labels.shape == (0,) and empty.objective == 0.0


def test_labels_are_canonical_for_interchangeable_groups() -> None:
    """Groups with equal bounds are numbered in order of their smallest element."""
    d, bounds = load_mdgplib(DATA / "RanReal_n012_ss_01.txt")
    for method in ("exact", "heuristic"):
        labels = list(diverse_groups(d, bounds, method=method, max_iters=500).labels)
        firsts = [labels.index(g) for g in range(4)]
        assert firsts == sorted(firsts)


def test_result_is_immutable_and_input_untouched() -> None:
    rng = np.random.default_rng(0)
    d = rng.uniform(0, 1, (8, 8))
    d = d + d.T
    original = d.copy()
    result = diverse_groups(d, [(4, 4), (4, 4)])
    np.testing.assert_array_equal(d, original)
    with pytest.raises(ValueError):
        result.labels[0] = 1
    assert "optimal" in result.summary()


# --------------------------------------------------------------------------------------------
# Infeasible and invalid inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bounds", "cannot", "message"),
    [
        ([(3, 4), (3, 4)], None, "minimums add up to 6"),
        ([(1, 2), (1, 2)], None, "maximums add up to 4"),
        ([(0, 5), (0, 5)], [(0, 1), (1, 2), (0, 2)], "Elements [0, 1, 2]"),
        # 0 cannot be with anyone, but every group needs 2 or more members.
        ([(2, 3), (2, 3)], [(0, 1), (0, 2), (0, 3), (0, 4)], "proven by"),
    ],
)
@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_infeasible_inputs_raise_with_reason(
    bounds: list[tuple[int, int]], cannot: list[tuple[int, int]] | None, message: str, method: str
) -> None:
    d = np.ones((5, 5))
    with pytest.raises(GroupingInfeasible, match=message.replace("[", r"\[").replace("]", r"\]")):
        diverse_groups(d, bounds, cannot_link=cannot, method=method)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("distance", "bounds", "kwargs", "message"),
    [
        (np.ones((2, 3)), [(1, 2)], {}, "square"),
        (np.array([[0.0, 1.0], [2.0, 0.0]]), [(1, 2)], {}, "symmetric"),
        (np.ones((2, 2)), [(2, 1)], {}, "invalid"),
        (np.ones((2, 2)), [], {}, "empty"),
        (np.ones((2, 2)), [(0, 2)], {"cannot_link": [(0, 5)]}, "out of range"),
        (np.ones((2, 2)), [(0, 2)], {"cannot_link": [(1, 1)]}, "itself"),
        (np.ones((2, 2)), [(0, 2)], {"method": "fast"}, "valid methods"),
        (np.full((2, 2), np.nan), [(0, 2)], {}, "finite"),
    ],
)
def test_invalid_inputs_raise_value_error(
    distance: np.ndarray, bounds: list[tuple[int, int]], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        diverse_groups(distance, bounds, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Determinism and time limits
# --------------------------------------------------------------------------------------------


def test_same_seed_and_max_iters_give_identical_labels() -> None:
    rng = np.random.default_rng(11)
    n = 60
    d = rng.uniform(0, 100, (n, n))
    d = np.round(d + d.T)  # integer distances: many ties, exercising the random tie-breaks
    bounds = [(8, 12), (9, 11), (10, 14), (10, 10), (6, 16)]
    runs = [diverse_groups(d, bounds, seed=5, max_iters=4000) for _ in range(2)]
    assert runs[0].labels.tobytes() == runs[1].labels.tobytes()
    assert runs[0].objective == runs[1].objective
    other = diverse_groups(d, bounds, seed=6, max_iters=4000)
    verify(d, bounds, other)


def test_plain_python_kernel_gives_the_same_result_as_numba(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without numba the same code runs uncompiled: identical labels, just slower."""
    rng = np.random.default_rng(12)
    n = 16
    d = np.round(rng.uniform(0, 100, (n, n)), 1)
    d = d + d.T
    bounds = [(3, 6), (4, 4), (2, 7), (3, 5)]
    compiled = diverse_groups(d, bounds, method="heuristic", max_iters=300, seed=3)
    monkeypatch.setattr(kernels, "_KERNEL", kernels._tabu_steps)
    plain = diverse_groups(d, bounds, method="heuristic", max_iters=300, seed=3)
    assert compiled.labels.tobytes() == plain.labels.tobytes()


def _heuristic_under_time_limit() -> tuple[float, Any]:
    rng = np.random.default_rng(13)
    n = 150
    d = rng.uniform(0, 100, (n, n))
    d = d + d.T
    start = time.perf_counter()
    result = diverse_groups(d, [(15, 15)] * 10, time_limit=0.5, method="heuristic")
    elapsed = time.perf_counter() - start
    verify(d, [(15, 15)] * 10, result)
    assert result.iterations is not None and result.iterations > 0
    return elapsed, result


def test_heuristic_under_a_time_limit_returns_a_valid_grouping() -> None:
    _heuristic_under_time_limit()


@pytest.mark.slow
def test_heuristic_honours_time_limit() -> None:
    """Wall clock: 0.5 s asked, at most 0.35 s over (slow: timing on a loaded machine). The
    search is timed once its kernel is loaded: the first run loads numba's compiled kernel,
    or on a new checkout compiles it (3-5 s; `pytest -m slow` alone on a fresh clone took
    5.6 s here), which is not the search's time."""
    _heuristic_under_time_limit()
    elapsed, _ = _heuristic_under_time_limit()
    assert elapsed < 0.5 + 0.35


def _exact_under_time_limit() -> float:
    d, bounds = load_mdgplib(DATA / "RanReal_n012_ds_01.txt")
    big = np.kron(np.ones((3, 3)), d) + np.random.default_rng(0).uniform(0, 1, (36, 36))
    big = (big + big.T) / 2
    bounds36 = [(lo * 3, hi * 3) for lo, hi in bounds]
    start = time.perf_counter()
    result = diverse_groups(big, bounds36, method="exact", time_limit=1.5)
    elapsed = time.perf_counter() - start
    verify(big, bounds36, result)
    assert result.status in ("optimal", "feasible")
    assert result.objective >= 0.9 * 3 * 3 * 1050.349  # at least near the tiled optimum
    return elapsed


def test_exact_under_a_time_limit_reports_a_near_optimal_grouping() -> None:
    _exact_under_time_limit()


@pytest.mark.slow
def test_exact_honours_time_limit_and_reports_bound() -> None:
    """Wall clock: 1.5 s asked; model building and the heuristic hint add at most 2 s."""
    assert _exact_under_time_limit() < 1.5 + 2.0


# --- largest groupable subset, bounds, initial groupings, cancelling -------------------------


def clique_links(cliques: list[list[int]]) -> list[tuple[int, int]]:
    return [(i, j) for c in cliques for i, j in itertools.combinations(c, 2)]


def test_grouping_bound_hand_checked() -> None:
    """7 elements, {0, 1, 2} pairwise cannot-link, groups of exactly 2: 3 groups, each with one
    clique member and one other -> 6. Six elements with a 5-clique, groups of 2: two groups
    would need 2 clique members + 2 others but there is 1 other -> 1 group of 2."""
    assert grouping.grouping_bound(7, 2, 2, [[0, 1, 2]]) == (6, 3)
    assert grouping.grouping_bound(6, 2, 2, [[0, 1, 2, 3, 4]]) == (2, 1)
    assert grouping.grouping_bound(2, 3, 4, []) == (0, 0)
    assert grouping.grouping_bound(10, 3, 4, []) == (10, 3)


def test_largest_grouping_reaches_the_bound_and_keeps_the_rules() -> None:
    """The first case above: 6 of 7 grouped, never two clique members together."""
    cliques = [[0, 1, 2]]
    res = grouping.largest_grouping(7, 2, 2, cannot_link=clique_links(cliques), cliques=cliques)
    assert res.grouped == 6 == res.bound and res.n_groups == 3
    kept = res.labels[res.labels >= 0]
    assert sorted(np.bincount(kept).tolist()) == [2, 2, 2]
    assert len({int(res.labels[i]) for i in (0, 1, 2) if res.labels[i] >= 0}) == 3


def test_largest_grouping_latin_structure() -> None:
    """90 elements = a 3 x 3 grid of attributes (row r, column c), 10 of each cell; a group may
    hold one element per row and one per column, groups of exactly 3: 30 groups each a
    'permutation' of the grid, everyone grouped (the bound is 90)."""
    rows = [i % 3 for i in range(90)]
    cols = [(i // 3) % 3 for i in range(90)]
    cliques = [[i for i in range(90) if rows[i] == r] for r in range(3)]
    cliques += [[i for i in range(90) if cols[i] == c] for c in range(3)]
    res = grouping.largest_grouping(90, 3, 3, cannot_link=clique_links(cliques), cliques=cliques)
    assert res.bound == 90
    assert res.grouped == 90
    for g in range(res.n_groups):
        members = np.flatnonzero(res.labels == g)
        assert len({rows[i] for i in members}) == len({cols[i] for i in members}) == 3


def test_diverse_groups_from_initial_keeps_feasibility() -> None:
    """A feasible start is improved, never made infeasible; an infeasible one is refused."""
    rng = np.random.default_rng(3)
    d = rng.random((12, 12))
    d = (d + d.T) / 2
    bounds = [(3, 3)] * 4
    cl = [(0, 1), (2, 3)]
    start = np.array([0, 1, 0, 1, 2, 2, 2, 3, 3, 3, 0, 1])
    res = diverse_groups(
        d, bounds, cannot_link=cl, method="heuristic", max_iters=200, initial=start
    )
    verify(d, bounds, res, cl)
    assert res.objective >= grouping_objective(d, start) - 1e-9
    with pytest.raises(ValueError, match="initial is not a feasible grouping"):
        diverse_groups(d, bounds, cannot_link=cl, initial=np.zeros(12, dtype=int))


@pytest.mark.parametrize("method", ["diverse", "maximin"])
def test_should_stop_ends_the_search_at_its_next_check(method: str) -> None:
    """A search with a huge budget asked to stop (from the 21st poll on) returns a valid
    grouping, the best so far, at once: it polls at most twice more. Counted in polls, not
    seconds, so it holds on a loaded machine."""
    from solvers.grouping import maximin_groups

    rng = np.random.default_rng(0)
    d = rng.random((120, 120))
    d = (d + d.T) / 2
    bounds = [(3, 4)] * 34
    polls = {"before": 0, "after": 0}

    def stop() -> bool:
        if polls["before"] < 20:
            polls["before"] += 1
            return False
        polls["after"] += 1
        return True

    if method == "diverse":
        res = diverse_groups(d, bounds, should_stop=stop, max_iters=10**9, method="heuristic")
    else:
        res = maximin_groups(d, bounds, should_stop=stop, max_iters=10**9)
    verify(d, bounds, res)
    assert polls["before"] == 20
    assert 1 <= polls["after"] <= 2


@pytest.mark.slow
def test_should_stop_cancels_within_a_fraction_of_a_second() -> None:
    """A search with a huge budget, cancelled after ~0.2 s, returns a valid grouping (the best
    so far) within well under a second of the cancel."""
    from solvers.grouping import maximin_groups

    rng = np.random.default_rng(0)
    d = rng.random((120, 120))
    d = (d + d.T) / 2
    bounds = [(3, 4)] * 34
    for fn in (diverse_groups, maximin_groups):
        t0 = time.perf_counter()

        def stop(t0: float = t0) -> bool:
            return time.perf_counter() - t0 > 0.2

        if fn is diverse_groups:
            res = diverse_groups(d, bounds, should_stop=stop, max_iters=10**9, method="heuristic")
        else:
            res = maximin_groups(d, bounds, should_stop=stop, max_iters=10**9)
        assert time.perf_counter() - t0 < 1.5, fn.__name__
        verify(d, bounds, res)


def test_should_stop_before_anything_raises_not_found_on_exact() -> None:
    """Exact method cancelled at once on a model without hint: GroupingNotFound, or a
    grouping if CP-SAT found one before the watcher fired; never a crash."""
    rng = np.random.default_rng(1)
    d = rng.random((12, 12))
    d = (d + d.T) / 2
    bounds = [(3, 3)] * 3 + [(2, 3)]  # bounds differ: CP-SAT's model, not the subset method
    try:
        res = diverse_groups(d, bounds, method="exact", should_stop=lambda: True)
    except grouping.GroupingNotFound:
        return
    verify(d, bounds, res)


def test_largest_grouping_should_stop_returns_valid_groups() -> None:
    """Cancelled at once: the greedy construction's groups (no repair), all within bounds and
    never two members of a clique together; the bound is still reported."""
    cliques = [[i for i in range(60) if i % 3 == r] for r in range(3)]
    res = grouping.largest_grouping(
        60, 3, 3, cannot_link=clique_links(cliques), cliques=cliques, should_stop=lambda: True
    )
    assert res.bound == 60 and res.iterations == 0
    for g in range(res.n_groups):
        members = np.flatnonzero(res.labels == g)
        assert len(members) == 3 and len({i % 3 for i in members}) == 3


@pytest.mark.parametrize("n, groups, links", [(13, 4, 6), (23, 6, 0), (30, 8, 25), (45, 12, 80)])
def test_numpy_kernel_identical_to_compiled_and_python(n: int, groups: int, links: int) -> None:
    """The numpy tabu kernel (used without numba) makes the same moves, draws and floating-point
    operations as the loop kernel: identical labels over enough iterations to perturb several
    times (distances rounded to 2 decimals, so ties are frequent and the tie rule is exercised).
    The plain-Python loop kernel is the reference for a shorter run."""
    rng = np.random.default_rng(n)
    d = np.round(rng.random((n, n)), 2)
    d = (d + d.T) / 2
    cl: set[tuple[int, int]] = set()
    while len(cl) < links:
        i, j = sorted(rng.integers(n, size=2).tolist())
        if i != j:
            cl.add((i, j))
    bounds = [(3, 4)] * groups
    saved = kernels._tabu_kernel(np.iinfo(np.int64).max)  # the compiled kernel
    assert saved is not kernels._tabu_steps_numpy  # numba is installed in CI
    results = {}
    try:
        for name, kernel, iters in [
            ("default", None, 1200),
            ("numpy", kernels._tabu_steps_numpy, 1200),
            ("python", kernels._tabu_steps, 250),
            ("default-short", None, 250),
        ]:
            kernels._KERNEL = kernel if kernel is not None else saved
            res = diverse_groups(
                d, bounds, cannot_link=sorted(cl), method="heuristic", max_iters=iters, seed=2
            )
            results[name] = res.labels.tolist()
    finally:
        kernels._KERNEL = saved
    assert results["numpy"] == results["default"]
    assert results["python"] == results["default-short"]


def _grouping_bound_loop(n: int, lo: int, hi: int, cliques: list[list[int]]) -> tuple[int, int]:
    """Reference: the bound of solvers.grouping.grouping_bound computed one s at a time."""
    if n <= 0 or lo <= 0 or hi < lo or n < lo:
        return 0, 0
    sets = [np.unique(np.asarray(c, dtype=np.int64)) for c in cliques]
    sets = [c for c in sets if c.size > 1]
    sets.sort(key=lambda c: (-c.size, c.tolist()[:1]))
    sets = sets[:64]
    mult = np.zeros(n, dtype=np.int64)
    families = []
    for k in range(len(sets) + 1):
        if k:
            mult[sets[k - 1]] += 1
        families.append((np.array([c.size for c in sets[:k]]), np.bincount(mult, minlength=2)))
    best, best_s = 0, 0
    for s in range(1, n // lo + 1):
        value = min(n, s * hi)
        for sizes, hist in families:
            budget = int(np.minimum(sizes, s).sum()) if sizes.size else 0
            m = int(hist[0])
            for t in range(1, hist.shape[0]):
                take = min(int(hist[t]), budget // t)
                m += take
                budget -= take * t
                if take < hist[t]:
                    break
            value = min(value, m)
        if value >= s * lo and value >= best:
            best, best_s = value, s
    return best, best_s


def test_grouping_bound_vectorised_equals_the_loop() -> None:
    """The bound is computed for every number of groups at once; it equals the loop over s."""
    from solvers.grouping import grouping_bound

    rng = np.random.default_rng(0)
    for _ in range(1500):
        n = int(rng.integers(0, 40))
        lo = int(rng.integers(1, 5))
        hi = lo + int(rng.integers(0, 3))
        cliques = [
            rng.choice(max(n, 1), size=int(rng.integers(0, max(n, 1) + 1)), replace=False).tolist()
            for _ in range(int(rng.integers(0, 6)))
        ]
        assert grouping_bound(n, lo, hi, cliques) == _grouping_bound_loop(n, lo, hi, cliques)


def _plans_in_fresh_processes(
    tmp_path: Path, n: int, seed: int, runs: dict[str, tuple[str, dict[str, str]]]
) -> dict[str, tuple[str, str]]:
    """A generated intake of ``n`` participants solved in one fresh process per run (its
    Python statements first, e.g. kernel thresholds; its extra environment): per run, whether
    the solve imported numba ("True"/"False") and the plan's JSON."""
    import subprocess
    import sys

    from tests.conftest import pythonpath

    env = {"PYTHONPATH": pythonpath(), "PATH": "/usr/bin:/bin"}
    intake = tmp_path / f"g{n}.json"
    generate = ["generate", "-n", str(n), "--seed", str(seed), "-o", str(intake)]
    subprocess.run(
        [sys.executable, "-m", "matcher", *generate], env=env, check=True, capture_output=True
    )
    out = {}
    for name, (setup, extra_env) in runs.items():
        script = (
            f"import sys, solvers.grouping.kernels as g; {setup}; "
            "from matcher import load_instance, solve; "
            "sol = solve(load_instance(sys.argv[1])); "
            "print('numba' in sys.modules); print(sol.model_dump_json())"
        )
        res = subprocess.run(
            [sys.executable, "-c", script, str(intake)],
            env={**env, **extra_env},
            check=True,
            capture_output=True,
            text=True,
        )
        loaded, plan = res.stdout.split("\n", 1)
        out[name] = (loaded, plan)
    return out


def test_small_searches_run_the_numpy_kernel_first_with_identical_plans(tmp_path: Path) -> None:
    """On a new machine (numba's cache empty) a process runs small set searches on the numpy
    kernel (no numba import, so no compile) until NUMPY_FIRST_WORK, then loads the compiled
    one. Both give identical groupings, so the plan of a 120-participant intake is
    byte-identical whichever ran."""
    # the first-work rule alone, each run with an empty numba cache (as on a new machine)
    out = _plans_in_fresh_processes(
        tmp_path,
        120,
        4,
        {
            f"first={first}": (
                f"g.NUMPY_FIRST_WORK = {first}; g.NUMPY_BATCH_S = g.NUMPY_BATCH_LOADED_S = 0",
                {"NUMBA_CACHE_DIR": str(tmp_path / f"numba-cache-{first}")},
            )
            for first in (0, 10**12)
        },
    )
    assert out["first=0"][0] == "True" and out[f"first={10**12}"][0] == "False"
    assert out["first=0"][1] == out[f"first={10**12}"][1]


def test_compiled_kernel_found_in_numbas_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With NUMBA_CACHE_DIR set, numba's cache is looked for there only: empty -> numpy first;
    a tabu kernel index anywhere below it -> the compiled kernel at once."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not kernels._compiled_on_disk()
    (tmp_path / "solvers_x").mkdir()
    (tmp_path / "solvers_x" / "kernels._tabu_steps-985.py311.nbi").write_bytes(b"")
    assert kernels._compiled_on_disk()


def test_warm_up_leaves_the_first_search_nothing_to_load() -> None:
    """In a fresh process, ``warm_up`` (what a worker process runs while it waits) loads the
    compiled code itself, not only numba: numba reads it on the kernel's first call, which the
    first real search paid (0.44-0.50 s) before warm_up made that call."""
    import subprocess
    import sys

    from tests.conftest import pythonpath

    if find_spec("numba") is None:
        pytest.skip("numba is not installed")
    d = np.ones((15, 15))
    diverse_groups(d, [(3, 4)] * 4, method="heuristic", max_iters=1)  # compiled and cached now
    code = (
        "from solvers.grouping import kernels, warm_up\n"
        "loaded = warm_up()\n"
        "print(loaded, len(kernels._KERNEL.signatures))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": pythonpath()},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["True", "1"]  # the kernel is loaded, with its one compiled specialisation


def test_stall_ends_the_search_early_reproducibly_and_close_to_the_full_budget() -> None:
    """``stall``: the search ends after that many iterations without a new best, counted in
    iterations (the same labels every run), well before ``max_iters``, with an objective close
    to the whole budget's."""
    rng = np.random.default_rng(3)
    n = 120
    d = rng.uniform(0, 1, (n, n))
    d = (d + d.T) / 2
    bounds = [(3, 4)] * 34
    links = [(i, i + 1) for i in range(0, n - 1, 7)]
    full = diverse_groups(d, bounds, cannot_link=links, seed=2, max_iters=2_000, method="heuristic")
    runs = [
        diverse_groups(
            d, bounds, cannot_link=links, seed=2, max_iters=2_000, stall=30, method="heuristic"
        )
        for _ in range(2)
    ]
    assert runs[0].labels.tobytes() == runs[1].labels.tobytes()
    verify(d, bounds, runs[0], links)
    assert full.iterations == 2_000
    assert runs[0].iterations is not None and runs[0].iterations < 2_000
    assert runs[0].objective >= 0.99 * full.objective


def test_stall_must_be_positive() -> None:
    d = np.ones((6, 6))
    with pytest.raises(ValueError, match="stall"):
        diverse_groups(d, [(3, 3), (3, 3)], stall=0)


def _target_sizes_by_loops(p: Any) -> np.ndarray:
    """The size pattern's dynamic programme, scalar (the reference of the vectorised one)."""
    n, n_groups = p.n, p.n_groups
    iu = np.triu_indices(n, k=1)
    mean = float(p.d[iu].mean()) if n > 1 else 0.0
    value = np.full((n_groups + 1, n + 1), -np.inf)
    choice = np.zeros((n_groups + 1, n + 1), dtype=np.int64)
    value[0, 0] = 0.0
    for g in range(n_groups):
        for placed in range(n + 1):
            if value[g, placed] == -np.inf:
                continue
            for size in range(int(p.lo[g]), min(int(p.hi[g]), n - placed) + 1):
                v = value[g, placed] + mean * size * (size - 1) / 2
                if v > value[g + 1, placed + size]:
                    value[g + 1, placed + size] = v
                    choice[g + 1, placed + size] = size
    sizes = np.zeros(n_groups, dtype=np.int64)
    placed = n
    for g in range(n_groups, 0, -1):
        sizes[g - 1] = choice[g, placed]
        placed -= int(sizes[g - 1])
    return sizes


def test_target_sizes_vectorised_equals_the_loops() -> None:
    from solvers.grouping.problem import _prepare
    from solvers.grouping.search import _target_sizes

    rng = np.random.default_rng(1)
    checked = 0
    for case in range(600):
        n = int(rng.integers(2, 40))
        d, bounds = random_instance(rng, n, int(rng.integers(1, max(2, n // 3))))
        if case % 2:
            d = np.round(d / 25)  # few distinct values: ties between size patterns
        p = _prepare(d, bounds, None)
        assert _target_sizes(p).tolist() == _target_sizes_by_loops(p).tolist()
        checked += 1
    assert checked == 600


def test_an_announced_small_batch_runs_on_the_numpy_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches announced together that the numpy kernel does faster than the compiled one
    loads run on the numpy kernel, even with numba's cache warm; past the announced work, or
    for a batch too large, the choice is as before."""
    monkeypatch.setattr(kernels, "_KERNEL", None)
    monkeypatch.setattr(kernels, "_CACHED", True)
    monkeypatch.setattr(kernels, "_numpy_allowance", 0)
    monkeypatch.setattr(kernels, "_numpy_granted_s", 0.0)
    monkeypatch.setattr(kernels, "NUMPY_BATCH_LOADED_S", kernels.NUMPY_BATCH_S)
    kernels.expect_searches([(2000, 15), (2000, 16)])  # ~0.27 s on numpy
    assert kernels._numpy_allowance == 2000 * (15 * 15 + 16 * 16)
    assert kernels._tabu_kernel(2000 * 15 * 15) is kernels._tabu_steps_numpy
    assert kernels._tabu_kernel(2000 * 16 * 16) is kernels._tabu_steps_numpy
    assert kernels._numpy_allowance == 0
    # 10 searches of 2,000 iterations on 60 elements: ~2.5 s on numpy, more than a load
    kernels.expect_searches([(2000, 60)] * 10)
    assert kernels._numpy_allowance == 0
    # the same small batch again: with the first, more than a load (a long-lived process then
    # loads the compiled kernel once rather than pay the numpy kernel on every solve)
    kernels.expect_searches([(2000, 15), (2000, 16)])
    assert kernels._numpy_allowance == 0


def test_searches_under_a_short_limit_stay_on_the_numpy_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under a time limit the batch's numpy time is at most the time left (``within``), and
    searches that must stop within twice the compiled kernel's load stay on numpy: the load
    cannot be cut short and would take half their time or more. With more time left, a large
    batch loads the compiled kernel as before."""
    monkeypatch.setattr(kernels, "_KERNEL", None)
    monkeypatch.setattr(kernels, "_CACHED", True)
    monkeypatch.setattr(kernels, "_numpy_allowance", 0)
    monkeypatch.setattr(kernels, "_numpy_granted_s", 0.0)
    monkeypatch.setattr(kernels, "NUMPY_BATCH_LOADED_S", kernels.NUMPY_BATCH_S)
    big = [(2000, 60)] * 10  # ~2.5 s on numpy
    kernels.expect_searches(big, within=2 * kernels.NUMPY_BATCH_S - 0.01)
    assert kernels._numpy_allowance == 10 * 2000 * 60 * 60
    assert kernels._tabu_kernel(2000 * 60 * 60) is kernels._tabu_steps_numpy
    kernels.expect_searches(big, within=5.0)
    assert kernels._numpy_allowance == 0


def test_would_load_compiled_answers_as_the_announcement_would_choose(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``would_load_compiled`` says whether announcing a batch would leave it to the compiled
    kernel (which the process then loads), and grants nothing: a small batch stays on numpy, a
    large one loads it unless a short limit keeps it on numpy, and once the compiled kernel is
    loaded nothing more is loaded."""
    monkeypatch.setattr(kernels, "_KERNEL", None)
    monkeypatch.setattr(kernels, "_numpy_allowance", 0)
    monkeypatch.setattr(kernels, "_numpy_granted_s", 0.0)
    monkeypatch.setattr(kernels, "NUMPY_BATCH_LOADED_S", kernels.NUMPY_BATCH_S)
    small, big = [(2000, 15), (2000, 16)], [(2000, 60)] * 10
    assert not kernels.would_load_compiled(small)
    assert kernels.would_load_compiled(big)
    assert not kernels.would_load_compiled(big, within=2 * kernels.NUMPY_BATCH_S - 0.01)
    assert kernels.would_load_compiled(big, within=5.0)
    assert not kernels.would_load_compiled([])  # no search at all (only exact cohorts)
    assert kernels._numpy_granted_s == 0.0 and kernels._numpy_allowance == 0  # nothing granted
    for searches in (small, big):  # the announcement agrees
        expected = kernels.would_load_compiled(searches)
        kernels.expect_searches(searches)
        assert (kernels._numpy_allowance == 0) == expected
        monkeypatch.setattr(kernels, "_numpy_granted_s", 0.0)
    monkeypatch.setattr(kernels, "_KERNEL", lambda *args: 0)  # a loaded compiled kernel
    assert kernels.compiled_loaded()
    assert not kernels.would_load_compiled(big)


def test_a_small_intakes_sets_skip_numba_with_identical_plans(tmp_path: Path) -> None:
    """With numba's cache warm, a 100-participant intake's set searches are announced as a
    batch the numpy kernel does faster than numba loads: the solve never imports numba, and
    its plan is byte-identical to the one made with the compiled kernel."""
    kernels._tabu_kernel(np.iinfo(np.int64).max)  # numba's cache holds the kernel
    out = _plans_in_fresh_processes(
        tmp_path,
        100,
        1,
        {limit: (f"g.NUMPY_BATCH_S = {limit}", {}) for limit in ("0", "0.45")},
    )
    assert out["0"][0] == "True" and out["0.45"][0] == "False"
    assert out["0"][1] == out["0.45"][1]


def _perturb_loops(
    d: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    cl: np.ndarray,
    has_cl: bool,
    labels: np.ndarray,
    sizes: np.ndarray,
    m: np.ndarray,
    c: np.ndarray,
    tabu: np.ndarray,
    best_labels: np.ndarray,
    floats: np.ndarray,
    ints: np.ndarray,
    strength: int,
) -> None:
    """The perturbation as element-by-element loops (its form before it was vectorised): the
    reference the numpy form must equal bit for bit."""
    n, n_groups = d.shape[0], lo.shape[0]
    labels[:] = best_labels
    sizes[:] = 0
    for i in range(n):
        sizes[labels[i]] += 1
    m[:] = 0.0
    c[:] = 0
    for i in range(n):
        for k in range(n):
            m[k, labels[i]] += d[k, i]
            if has_cl and cl[k, i]:
                c[k, labels[i]] += 1
    done = attempts = 0
    while done < strength and attempts < 50 * strength:
        attempts += 1
        i = kernels._rand_below(ints, n)
        a = labels[i]
        if kernels._rand_below(ints, 2) == 0:
            g = kernels._rand_below(ints, n_groups)
            if g == a or sizes[a] <= lo[a] or sizes[g] >= hi[g] or (has_cl and c[i, g] > 0):
                continue
            kernels._move(d, cl, has_cl, labels, sizes, m, c, m.T.copy(), c.T.copy(), i, g)
        else:
            j = kernels._rand_below(ints, n)
            b = labels[j]
            if a == b:
                continue
            link = 1 if has_cl and cl[i, j] else 0
            if has_cl and (c[i, b] - link > 0 or c[j, a] - link > 0):
                continue
            kernels._move(d, cl, has_cl, labels, sizes, m, c, m.T.copy(), c.T.copy(), i, b)
            kernels._move(d, cl, has_cl, labels, sizes, m, c, m.T.copy(), c.T.copy(), j, a)
        done += 1
    obj = 0.0
    for i in range(n):
        obj += m[i, labels[i]]
    floats[0] = obj / 2.0
    floats[2] = floats[0]
    ints[1] = 0
    tabu[:] = 0


@pytest.mark.parametrize("has_cl", [False, True])
def test_perturbation_equals_its_loop_form_bit_for_bit(has_cl: bool) -> None:
    """The perturbation (numpy, never compiled) leaves every array exactly as the loops did:
    the sums in the same order, the same random draws and moves."""
    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(4, 40))
        n_groups = max(2, n // 4)
        d = rng.random((n, n))
        d = (d + d.T) / 3.0
        cl = (rng.random((n, n)) < 0.08) & has_cl
        cl = cl | cl.T
        np.fill_diagonal(cl, False)
        best = rng.integers(0, n_groups, n).astype(np.int64)
        sizes0 = np.bincount(best, minlength=n_groups).astype(np.int64)
        lo = np.maximum(sizes0 - 1, 0).astype(np.int64)
        hi = (sizes0 + 2).astype(np.int64)
        states = []
        for fn in (kernels._perturb, _perturb_loops):
            labels = rng.integers(0, n_groups, n).astype(np.int64)
            arrays: dict[str, Any] = dict(
                labels=labels,
                sizes=np.zeros(n_groups, np.int64),
                m=rng.random((n, n_groups)),
                c=np.zeros((n, n_groups), np.int64),
                tabu=np.ones((n, n_groups), np.int64),
                floats=np.zeros(3),
                ints=np.array([5, 3, 1 + trial * 7919], np.int64),
            )
            fn(
                d, lo, hi, cl, bool(cl.any()), arrays["labels"], arrays["sizes"], arrays["m"],
                arrays["c"], arrays["tabu"], best.copy(), arrays["floats"], arrays["ints"], 6,
            )  # fmt: skip
            states.append(arrays)
        new, ref = states
        for key in ref:
            assert new[key].tobytes() == ref[key].tobytes(), (trial, key)
