"""Pairing under a deadline and a cancel (issue 9 item 4): progress between its steps, a
cheaper matching when the exact one would not fit, the exact result whenever no deadline is
given, and the faster rank / arc-pruning paths equal to the sorting ones."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import matcher.engine.pairing as pairing
import solvers.assignment as assignment
from matcher import NoPlanInTime, parse_instance, solve, verify
from matcher.contract.instance import Instance
from matcher.engine.pairing import pair_lone_applicants
from matcher.engine.prepare import prepare
from matcher.engine.progress import Stop
from matcher.engine.scoring import sides
from matcher.tools.generate import generate_instance


def _intake(n: int = 300, seed: int = 0) -> Instance:
    """A generated intake, with withdrawals and locks resolved as solve() does."""
    return prepare(parse_instance(generate_instance(n, seed=seed))).effective


def _allowed(instance: Instance, result: pairing.Pairing) -> np.ndarray:
    """The allowed lone pairs (no hard rule against them, score at least min_score), as an
    n x m boolean matrix over the scan's rows and columns."""
    scan = result.scan
    a, b = sides(instance, scan.rows.people, scan.cols.people)
    (_, comp), *rest = pairing.iter_blocks(instance, a, b, max_cells=10**9)
    assert not rest
    return ~comp.forbidden & (comp.scores >= instance.rules.min_score)


@pytest.mark.parametrize("objective", ["total", "fair", "stable"])
def test_no_deadline_same_result_with_or_without_stop(objective: str) -> None:
    """A stop without a deadline (what solve() passes when no time limit is given) only adds
    progress ticks: the pairs, bottleneck and exactness are those of a call without it."""
    inst = _intake()
    ticks: list[str] = []

    def tick(stage: str, msg: str) -> bool:
        ticks.append(f"{stage}: {msg}")
        return True

    stop = Stop(None, tick=tick)
    stop_result = pair_lone_applicants(inst, objective=objective, stop=stop)
    plain = pair_lone_applicants(inst, objective=objective)
    assert stop_result.pairs == plain.pairs
    assert stop_result.bottleneck == plain.bottleneck
    assert stop_result.exact and plain.exact
    assert ticks and all(t.startswith("pairing: ") for t in ticks)


@pytest.mark.parametrize("objective", ["total", "fair"])
def test_past_deadline_pairs_greedily_completed_and_says_so(objective: str) -> None:
    """With no time left, the exact matching is replaced by one over each person's 5 best
    candidates, completed greedily: a valid matching of allowed pairs, maximal (no two people
    left alone are allowed together), not called exact, with a note naming the shortcut."""
    inst = _intake()
    exact = pair_lone_applicants(inst, objective=objective)
    hurried = pair_lone_applicants(inst, objective=objective, stop=Stop(time.monotonic()))
    assert not hurried.exact
    assert any("5 best candidates" in note for note in hurried.scan.notes)
    rows, cols = hurried.matched_rows, hurried.matched_cols
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    allowed = _allowed(inst, hurried)
    assert allowed[rows, cols].all()
    free_r = np.setdiff1d(np.arange(allowed.shape[0]), rows)
    free_c = np.setdiff1d(np.arange(allowed.shape[1]), cols)
    assert not allowed[np.ix_(free_r, free_c)].any()
    # the shortcut gives up little on this intake: at most 2% of the pairs
    assert len(hurried.pairs) >= 0.98 * len(exact.pairs)


def test_cancel_during_pairing_raises_no_plan_in_time() -> None:
    """A progress callback that returns False during pairing stops the solve: there is no plan
    yet, so NoPlanInTime, as DESIGN §5 says."""
    inst = _intake()
    stop = Stop(None, tick=lambda stage, msg: False)
    with pytest.raises(NoPlanInTime, match="cancelled"):
        pair_lone_applicants(inst, stop=stop)


def test_solve_with_hurried_pairing_is_feasible_not_optimal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the exact matching is estimated not to fit (here: forced by a huge per-candidate
    estimate), solve() returns a plan that verifies, with status feasible and the note."""
    monkeypatch.setattr(pairing, "SECONDS_PER_CANDIDATE", 1e3)
    inst = parse_instance(generate_instance(120, seed=2))
    sol = solve(inst, time_limit=30, deterministic=False)
    assert sol.status == "feasible"
    assert any("5 best candidates" in note for note in sol.run.notes)
    assert verify(inst, sol).ok


@pytest.mark.parametrize(("n", "m", "density"), [(40, 30, 0.8), (30, 45, 1.0), (25, 25, 0.4)])
def test_matrix_ranks_equal_sorted_ranks(n: int, m: int, density: float) -> None:
    """The n x m matrix path of the candidate ranks gives exactly the ranks of the three-key
    sort (ties on coarse scores broken by the other side's index)."""
    rng = np.random.default_rng(n * m)
    r, c = np.nonzero(rng.random((n, m)) < density)
    s = rng.integers(0, 6, len(r)) / 5.0
    by_matrix = pairing._side_ranks(r, c, s, (n, m))
    by_sort = pairing._side_ranks(r, c, s, (10 * n, 10 * m))  # too sparse for the matrix
    assert all(np.array_equal(x, y) for x, y in zip(by_matrix, by_sort, strict=True))


@pytest.mark.parametrize(("n", "m"), [(30, 12), (12, 30)])
def test_matrix_arc_pruning_equals_sorted_pruning(
    n: int, m: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_prune's matrix path keeps exactly the arcs its sorting path keeps, in the same order,
    ties included (costs on a coarse grid)."""
    rng = np.random.default_rng(n + m)
    r, c = np.nonzero(rng.random((n, m)) < 0.9)
    rows, cols = r.astype(np.int32), c.astype(np.int32)
    cost = rng.integers(-4, 1, len(rows)).astype(np.int64)
    by_matrix = assignment._prune(rows, cols, cost, n, m, complete=False)
    monkeypatch.setattr(assignment, "_PRUNE_DENSITY", 0)
    by_sort = assignment._prune(rows, cols, cost, n, m, complete=False)
    assert len(by_sort[0]) < len(rows)  # something was pruned
    both: Any = zip(by_matrix, by_sort, strict=True)
    assert all(np.array_equal(x, y) for x, y in both)


def test_assignment_on_step_reports_between_steps_and_changes_nothing() -> None:
    """max_weight_matching_sparse calls on_step between its steps (arcs pruned, maximum size
    found) and returns the matching it returns without the callback."""
    rng = np.random.default_rng(7)
    r, c = np.nonzero(rng.random((12, 9)) < 0.5)
    w = rng.random(len(r))
    steps: list[str] = []
    with_steps = assignment.max_weight_matching_sparse(r, c, w, (12, 9), on_step=steps.append)
    plain = assignment.max_weight_matching_sparse(r, c, w, (12, 9))
    assert np.array_equal(with_steps, plain)
    assert steps == [f"{steps[0].split()[0]} arcs", f"{len(plain)} pairs at most"]
