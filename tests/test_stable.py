"""Tests for solvers.stable: the `matching` package and brute force as oracles, every code path.

The stability check and the enumeration of stable matchings below are written independently of
the solver (plain Python on the lists, no shared helpers).
"""

from __future__ import annotations

import copy
import random
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matching.games import StableMarriage

import solvers.stable as stable
from solvers.stable import blocking_pairs, gale_shapley, prefs_from_scores, stable_matching

Lists = list[list[int]]
REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# Independent oracles
# ---------------------------------------------------------------------------------------------


def mutual(P: Lists, R: Lists, p: int, r: int) -> bool:
    return r in P[p] and p in R[r]


def prefers(prefs: list[int], a: int, b: int) -> bool:
    """Whether a person with list ``prefs`` prefers ``a`` to its partner ``b`` (-1: single)."""
    return a in prefs and (b == -1 or prefs.index(a) < prefs.index(b))


def naive_blocking(P: Lists, R: Lists, match: list[int]) -> list[tuple[int, int]]:
    partner_of_r = {r: p for p, r in enumerate(match) if r >= 0}
    out = []
    for p in range(len(P)):
        for r in P[p]:
            if match[p] == r or not mutual(P, R, p, r):
                continue
            if prefers(P[p], r, match[p]) and prefers(R[r], p, partner_of_r.get(r, -1)):
                out.append((p, r))
    return out


def is_stable(P: Lists, R: Lists, match: list[int]) -> bool:
    used = [r for r in match if r >= 0]
    if len(used) != len(set(used)):
        return False
    if any(r >= 0 and not mutual(P, R, p, r) for p, r in enumerate(match)):
        return False
    return not naive_blocking(P, R, match)


def all_matchings(P: Lists, R: Lists) -> Iterator[list[int]]:
    """Every matching of mutually acceptable pairs, as a list per proposer (-1: single)."""
    match = [-1] * len(P)
    used: set[int] = set()

    def rec(p: int) -> Iterator[list[int]]:
        if p == len(P):
            yield list(match)
            return
        yield from rec(p + 1)
        for r in range(len(R)):
            if r not in used and mutual(P, R, p, r):
                match[p] = r
                used.add(r)
                yield from rec(p + 1)
                used.discard(r)
                match[p] = -1

    yield from rec(0)


def stable_by_brute_force(P: Lists, R: Lists) -> list[list[int]]:
    return [m for m in all_matchings(P, R) if is_stable(P, R, m)]


def oracle_matching(P: Lists, R: Lists) -> list[int]:
    """Proposer-optimal matching from the `matching` package (complete lists, equal sizes)."""
    game = StableMarriage.create_from_dictionaries(dict(enumerate(P)), dict(enumerate(R)))
    solved = game.solve(optimal="suitor")
    out = [-1] * len(P)
    for suitor, reviewer in solved.items():
        out[suitor.name] = reviewer.name
    return out


# ---------------------------------------------------------------------------------------------
# Every code path: numba or plain Python, dense rank matrix or sparse ranks
# ---------------------------------------------------------------------------------------------

MODES = [(compiled, dense) for compiled in (True, False) for dense in (True, False)]


@contextmanager
def mode(compiled: bool, dense: bool) -> Iterator[None]:
    kernels = stable._kernels() if compiled else stable._python_kernels()
    with (
        mock.patch.object(stable, "_KERNELS", kernels),
        mock.patch.object(stable, "_use_dense", lambda *_: dense),
    ):
        yield


def gs_all_modes(P: Lists, R: Lists) -> list[int]:
    """Run gale_shapley on every code path; they must agree. Returns the common answer."""
    results = []
    for compiled, dense in MODES:
        with mode(compiled, dense):
            m = gale_shapley(P, R)
        assert m.dtype == np.int64 and m.shape == (len(P),)
        results.append(m.tolist())
    assert all(r == results[0] for r in results), f"code paths disagree: {results}"
    return results[0]


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------


@st.composite
def complete_instance(draw: st.DrawFn, max_n: int = 12) -> tuple[Lists, Lists]:
    n = draw(st.integers(1, max_n))
    P = [draw(st.permutations(range(n))) for _ in range(n)]
    R = [draw(st.permutations(range(n))) for _ in range(n)]
    return P, R


@st.composite
def incomplete_instance(draw: st.DrawFn, max_n: int = 5) -> tuple[Lists, Lists]:
    """Random partial lists on both sides: one-sided entries are common on purpose."""
    n_p = draw(st.integers(0, max_n))
    n_r = draw(st.integers(0, max_n))

    def lists(n: int, other: int) -> Lists:
        out = []
        for _ in range(n):
            chosen = draw(st.lists(st.integers(0, max(other - 1, 0)), unique=True, max_size=other))
            out.append(chosen if other else [])
        return out

    return lists(n_p, n_r), lists(n_r, n_p)


# ---------------------------------------------------------------------------------------------
# Against the `matching` package (complete lists, equal sides)
# ---------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(complete_instance())
def test_matches_matching_package(inst: tuple[Lists, Lists]) -> None:
    P, R = inst
    assert gs_all_modes(P, R) == oracle_matching(P, R)


@settings(max_examples=20, deadline=None)
@given(complete_instance())
def test_receiver_optimal_matches_matching_package(inst: tuple[Lists, Lists]) -> None:
    P, R = inst
    game = StableMarriage.create_from_dictionaries(dict(enumerate(P)), dict(enumerate(R)))
    expected = [-1] * len(P)
    for suitor, reviewer in game.solve(optimal="reviewer").items():  # keyed by suitor
        expected[suitor.name] = reviewer.name
    assert stable_matching(P, R, optimal="receiver").tolist() == expected


def test_matching_package_at_30_per_side() -> None:
    rng = np.random.default_rng(7)
    n = 30
    P = [rng.permutation(n).tolist() for _ in range(n)]
    R = [rng.permutation(n).tolist() for _ in range(n)]
    assert gs_all_modes(P, R) == oracle_matching(P, R)


# ---------------------------------------------------------------------------------------------
# Against brute force (incomplete lists, one-sided entries, unequal sides)
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(incomplete_instance())
def test_stable_and_proposer_optimal_by_brute_force(inst: tuple[Lists, Lists]) -> None:
    P, R = inst
    match = gs_all_modes(P, R)
    assert is_stable(P, R, match)
    everything = stable_by_brute_force(P, R)
    assert match in everything
    for p in range(len(P)):
        # p's partner is at least as good as in any stable matching (-1 only if always single).
        for other in everything:
            assert match[p] == other[p] or prefers(P[p], match[p], other[p]) or other[p] == -1
            assert (match[p] == -1) == (other[p] == -1), "rural hospitals theorem"


@settings(max_examples=80, deadline=None)
@given(incomplete_instance())
def test_receiver_optimal_by_brute_force(inst: tuple[Lists, Lists]) -> None:
    P, R = inst
    match = stable_matching(P, R, optimal="receiver").tolist()
    assert is_stable(P, R, match)
    everything = stable_by_brute_force(P, R)
    partner_of = {r: p for p, r in enumerate(match) if r >= 0}
    for other in everything:
        other_of = {r: p for p, r in enumerate(other) if r >= 0}
        for r in range(len(R)):
            mine, theirs = partner_of.get(r, -1), other_of.get(r, -1)
            assert mine == theirs or prefers(R[r], mine, theirs)
    # Same people matched as in the proposer-optimal matching (rural hospitals theorem).
    proposer_opt = gale_shapley(P, R).tolist()
    assert [m >= 0 for m in match] == [m >= 0 for m in proposer_opt]


@settings(max_examples=100, deadline=None)
@given(incomplete_instance(), st.randoms(use_true_random=False))
def test_blocking_pairs_agrees_with_naive(inst: tuple[Lists, Lists], rnd: random.Random) -> None:
    P, R = inst
    candidates = list(all_matchings(P, R))
    match = candidates[rnd.randrange(len(candidates))]
    for compiled, dense in MODES:
        with mode(compiled, dense):
            assert blocking_pairs(P, R, match) == naive_blocking(P, R, match)


def test_unequal_sides() -> None:
    """Three proposers, two receivers, all want receiver 0; receivers both prefer p2 > p1 > p0."""
    P = [[0, 1], [0, 1], [0, 1]]
    R = [[2, 1, 0], [2, 1, 0]]
    assert gs_all_modes(P, R) == [-1, 1, 0]
    # More receivers than proposers.
    assert gs_all_modes([[2, 0]], [[0], [0], [0]]) == [2]


def test_one_sided_entries_are_unacceptable() -> None:
    """p0 lists r0 first, but r0 does not list p0: p0 ends up with r1, its second choice."""
    P = [[0, 1], [0]]
    R = [[1], [0]]
    assert gs_all_modes(P, R) == [1, 0]
    # r1 lists p1, but p1 lists nobody: p1 stays single.
    assert gs_all_modes([[0], []], [[0], [1]]) == [0, -1]


def test_empty_inputs() -> None:
    assert gs_all_modes([], []) == []
    assert gs_all_modes([[], []], []) == [-1, -1]
    assert gs_all_modes([], [[], []]) == []
    assert gs_all_modes([[], []], [[], []]) == [-1, -1]
    assert stable_matching([], [[]], optimal="receiver").tolist() == []
    assert blocking_pairs([], [], []) == []


def test_array_inputs_match_lists() -> None:
    rng = np.random.default_rng(3)
    P = np.array([rng.permutation(6) for _ in range(8)])[:, :4]  # 8 proposers, 4 of 6 each
    R = np.array([rng.permutation(8) for _ in range(6)])
    expected = gale_shapley(P.tolist(), R.tolist())
    assert gale_shapley(P, R).tolist() == expected.tolist()
    assert gale_shapley(list(P), list(R.astype(np.int32))).tolist() == expected.tolist()


def test_inputs_are_not_modified() -> None:
    P = [[1, 0], [0, 1]]
    R = [[0, 1], [1, 0]]
    before = copy.deepcopy((P, R))
    gale_shapley(P, R)
    stable_matching(P, R, optimal="receiver")
    blocking_pairs(P, R, [0, 1])
    assert before == (P, R)


def test_deterministic() -> None:
    rng = np.random.default_rng(11)
    P = [rng.permutation(50)[: rng.integers(0, 50)].tolist() for _ in range(60)]
    R = [rng.permutation(60)[: rng.integers(0, 60)].tolist() for _ in range(50)]
    first = gs_all_modes(P, R)
    assert gs_all_modes(P, R) == first
    assert is_stable(P, R, first)


def test_correlated_lists_many_proposals() -> None:
    """Everyone ranks the other side 0, 1, ..., n-1: p_i ends with r_i after n(n+1)/2 proposals."""
    n = 40
    P = [list(range(n)) for _ in range(n)]
    R = [list(range(n)) for _ in range(n)]
    assert gs_all_modes(P, R) == list(range(n))


# ---------------------------------------------------------------------------------------------
# blocking_pairs on a hand-made example
# ---------------------------------------------------------------------------------------------


def test_blocking_pairs_hand_made() -> None:
    """p0: r0 > r1; p1: r0 > r1. r0: p1 > p0; r1: p0 > p1.

    Matching p0-r0, p1-r1: p1 and r0 prefer each other -> (1, 0) blocks; p0 is with its first
    choice and r1 has its first choice, so nothing else blocks. Leaving p1 single too: (1, 0)
    and (1, 1) block (r1 is single).
    """
    P = [[0, 1], [0, 1]]
    R = [[1, 0], [0, 1]]
    assert blocking_pairs(P, R, [0, 1]) == [(1, 0)]
    assert blocking_pairs(P, R, np.array([0, -1])) == [(1, 0), (1, 1)]
    assert blocking_pairs(P, R, [1, 0]) == []
    assert blocking_pairs(P, R, [-1, -1]) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_blocking_pairs_rejects_non_matchings() -> None:
    P = [[0, 1], [0]]
    R = [[0, 1], [0]]
    with pytest.raises(ValueError, match="receiver 0 is matched to several proposers"):
        blocking_pairs(P, R, [0, 0])
    with pytest.raises(ValueError, match="one entry per proposer"):
        blocking_pairs(P, R, [0])
    with pytest.raises(ValueError, match=r"match\[1\] = 5"):
        blocking_pairs(P, R, [0, 5])
    with pytest.raises(ValueError, match="not mutually acceptable"):
        blocking_pairs(P, R, [-1, 1])  # p1 does not list r1


# ---------------------------------------------------------------------------------------------
# Invalid inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("P", "R", "message"),
    [
        ([[0, 2]], [[0], [0]], r"proposer_prefs\[0\]\[1\] = 2 is not a receiver index"),
        ([[-1]], [[0]], r"proposer_prefs\[0\]\[0\] = -1 is not a receiver index"),
        ([[0]], [[0, 1]], r"receiver_prefs\[0\]\[1\] = 1 is not a proposer index"),
        ([[0]], [], r"\(0 receivers; there are none\)"),
        (
            [[1, 0, 1]],
            [[0], [0]],
            r"proposer_prefs\[0\] lists receiver 1 twice \(positions 0 and 2",
        ),
        ([[0]], [[0, 0]], r"receiver_prefs\[0\] lists proposer 0 twice"),
        ([[0.0]], [[0]], r"proposer_prefs\[0\]\[0\] = 0.0 is not an integer index"),
        ([["0"]], [[0]], "is not an integer index"),
        (np.zeros((2, 2, 2), dtype=int), [[0]], "must be 2-D with integer entries"),
        ([np.array([0.5])], [[0]], r"proposer_prefs\[0\] must be a 1-D list of integer"),
    ],
)
def test_invalid_inputs(P: object, R: object, message: str) -> None:
    for compiled, dense in MODES:
        with mode(compiled, dense), pytest.raises(ValueError, match=message):
            gale_shapley(P, R)  # type: ignore[arg-type]


def test_unknown_optimal_side() -> None:
    with pytest.raises(ValueError, match="'proposer', 'receiver'"):
        stable_matching([[0]], [[0]], optimal="suitor")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# prefs_from_scores
# ---------------------------------------------------------------------------------------------


def test_prefs_from_scores_ties_and_mask() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [0.2, 0.2, 0.2, 0.2], [1.0, 0.0, 3.0, 3.0]])
    allowed = np.array(
        [[True, True, True, False], [True, False, True, True], [False, False, False, False]]
    )
    rows, cols = prefs_from_scores(scores, allowed)
    assert [r.tolist() for r in rows] == [[1, 0, 2], [0, 2, 3], []]
    assert [c.tolist() for c in cols] == [[0, 1], [0], [0, 1], [1]]
    assert all(r.dtype == np.int64 for r in rows + cols)
    # No mask: everything allowed; ties go to the lower index.
    rows, cols = prefs_from_scores(scores)
    assert [r.tolist() for r in rows] == [[1, 0, 2, 3], [0, 1, 2, 3], [2, 3, 0, 1]]
    assert cols[3].tolist() == [2, 1, 0]


def test_prefs_from_scores_feed_gale_shapley() -> None:
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 3, size=(7, 9)).astype(float)  # many ties
    allowed = rng.random((7, 9)) < 0.6
    rows, cols = prefs_from_scores(scores, allowed)
    P, R = [r.tolist() for r in rows], [c.tolist() for c in cols]
    match = gale_shapley(rows, cols).tolist()
    assert match == gs_all_modes(P, R)
    assert is_stable(P, R, match)
    assert all(r == -1 or allowed[p, r] for p, r in enumerate(match))


def test_prefs_from_scores_empty_and_errors() -> None:
    rows, cols = prefs_from_scores(np.zeros((0, 3)))
    assert rows == [] and [c.tolist() for c in cols] == [[], [], []]
    rows, cols = prefs_from_scores(np.zeros((2, 0)))
    assert [r.tolist() for r in rows] == [[], []] and cols == []
    with pytest.raises(ValueError, match="2-D"):
        prefs_from_scores(np.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        prefs_from_scores(np.zeros((2, 2)), np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="boolean"):
        prefs_from_scores(np.zeros((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"scores\[0, 1\] is NaN"):
        prefs_from_scores(np.array([[0.0, np.nan]]))
    # NaN on a forbidden pair is fine.
    rows, _ = prefs_from_scores(np.array([[0.0, np.nan]]), np.array([[True, False]]))
    assert rows[0].tolist() == [0]
    with pytest.raises(ValueError, match="tie_break"):
        prefs_from_scores(np.zeros((1, 1)), tie_break="random")  # type: ignore[arg-type]


def test_import_does_not_import_matcher_or_numba() -> None:
    code = "import sys, solvers.stable; print('matcher' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.split() == ["False", "False"]
