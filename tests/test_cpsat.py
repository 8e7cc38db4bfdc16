"""The engine's lexicographic CP-SAT helper (matcher.engine.cpsat.optimise_level), shared by
placement and set-keeping in a re-plan."""

from __future__ import annotations

from ortools.sat.python import cp_model

from matcher.engine.cpsat import hold_level, optimise_level
from matcher.engine.progress import Stop


def _model() -> tuple[cp_model.CpModel, cp_model.IntVar, cp_model.IntVar]:
    """Two goals in conflict: a + b <= 4, each 0..3."""
    model = cp_model.CpModel()
    a, b = model.new_int_var(0, 3, "a"), model.new_int_var(0, 3, "b")
    model.add(a + b <= 4)
    return model, a, b


def _solver() -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    return solver


def test_a_held_level_is_kept_by_the_next() -> None:
    model, a, b = _model()
    solver = _solver()
    first = optimise_level(model, solver, a, None, "a first")
    assert first.found and first.optimal and first.value == 3
    second = optimise_level(model, solver, b, None, "then b", hold=False)
    assert second.value == 1
    assert (solver.value(a), solver.value(b)) == (3, 1)


def test_without_hold_the_next_level_may_trade_it_away() -> None:
    model, a, b = _model()
    solver = _solver()
    optimise_level(model, solver, a, None, "a first", hold=False)
    assert optimise_level(model, solver, b, None, "then b").value == 3
    assert solver.value(a) <= 1


def test_hint_from_hints_the_solution_found() -> None:
    model, a, b = _model()
    model.add_hint(a, 0)
    optimise_level(model, _solver(), a + 2 * b, None, "both", hint_from=[a, b])
    hint = model.proto.solution_hint
    assert dict(zip(hint.vars, hint.values, strict=True)) == {a.index: 1, b.index: 3}


def test_nothing_found_holds_nothing() -> None:
    model, a, b = _model()
    model.add(a >= 4)  # infeasible: a is at most 3
    n = len(model.proto.constraints)
    level = optimise_level(model, _solver(), b, None, "b")
    assert not level.found and level.value is None and level.code == cp_model.INFEASIBLE
    assert len(model.proto.constraints) == n


def test_a_cancelled_run_finds_nothing() -> None:
    model, a, _ = _model()
    stop = Stop(deadline=None, tick=lambda stage, message: False)  # the caller cancels
    level = optimise_level(model, _solver(), a, stop, "cancelled")
    assert not level.found and stop.cancelled


def test_hold_level_is_a_lower_bound() -> None:
    model, a, b = _model()
    hold_level(model, b, 2)
    solver = _solver()
    assert optimise_level(model, solver, a, None, "a").value == 2


def test_a_known_ceiling_stops_the_search_at_the_first_plan_reaching_it() -> None:
    """``ceiling``: the level's known bound (e.g. placement's flow ceiling). A solution at it is
    optimal, and the search stops there (``reached``) without CP-SAT's own proof; a ceiling
    no solution reaches leaves the search to run to its own end, not ``reached``."""
    model, a, b = _model()
    level = optimise_level(model, _solver(), a + b, None, "at the ceiling", ceiling=4)
    assert level.value == 4 and level.reached
    model, a, b = _model()
    level = optimise_level(model, _solver(), a + b, None, "above it", ceiling=5)
    assert level.value == 4 and not level.reached and level.optimal
    model, a, b = _model()
    level = optimise_level(model, _solver(), a + b, None, "within a gap", gap=0.5)
    assert level.found and level.value is not None and level.value >= 2 and not level.reached
