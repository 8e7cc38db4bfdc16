"""Running a CP-SAT model under the engine's stop rules (the deadline and the caller's cancel),
and solving it lexicographically, one level at a time.

Shared by placement (:mod:`matcher.engine.placement.model`: placed, kept, stayed, formed,
quality, balance) and set-keeping in a re-plan (:mod:`matcher.engine.replan`: pairs kept in
their set, then diversity).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from matcher.engine.progress import TICK_S, Stop

if TYPE_CHECKING:
    from ortools.sat.python import cp_model


def run_cpsat(
    model: cp_model.CpModel,
    solver: cp_model.CpSolver,
    stop: Stop | None,
    label: str,
    callback: cp_model.CpSolverSolutionCallback | None = None,
) -> cp_model.CpSolverStatus:
    """Solve, with CP-SAT's own stop mechanism wired to the deadline and the caller's cancel:
    a watcher thread calls ``stop.check`` every ``TICK_S`` seconds and stops the search when it
    says so. CP-SAT never handles SIGINT itself (the caller decides what Ctrl-C means)."""
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    solver.parameters.catch_sigint_signal = False
    if stop is None:
        return solver.solve(model, callback)
    left = stop.remaining()
    if left is not None:
        limit = solver.parameters.max_time_in_seconds
        solver.parameters.max_time_in_seconds = max(0.001, min(limit, left))
    if not stop.check(label):
        return cp_model.UNKNOWN
    done = threading.Event()

    def watch() -> None:
        while not done.wait(TICK_S):
            if not stop.check(label):
                solver.stop_search()
                return

    watcher = threading.Thread(target=watch, name="matcher-cpsat-watch", daemon=True)
    watcher.start()
    try:
        return solver.solve(model, callback)
    finally:
        done.set()
        watcher.join()


#: Variables read (or hinted) between two checks of the stop after a level (reading 100,000
#: took about 0.4 s at 20,000 participants).
HINT_CHECK_EVERY = 4096

#: What a level may be: a linear expression over the model's variables, or a constant.
Expression: TypeAlias = "cp_model.LinearExprT"


@dataclass(frozen=True)
class Level:
    """The outcome of one level: CP-SAT's status and, when a solution was found, the level's
    value in it (rounded to an integer: every level here has integer coefficients)."""

    code: cp_model.CpSolverStatus
    value: int | None
    #: the search stopped at the level's known ceiling (so the value is optimal)
    reached: bool = False

    @property
    def found(self) -> bool:
        return self.value is not None

    @property
    def optimal(self) -> bool:
        from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

        return self.code == cp_model.OPTIMAL


def hold_level(model: cp_model.CpModel, expr: Expression, value: int) -> None:
    """Keep ``expr`` at ``value`` or better in every later level (a maximised level)."""
    model.add(expr >= value)


def optimise_level(
    model: cp_model.CpModel,
    solver: cp_model.CpSolver,
    expr: Expression,
    stop: Stop | None,
    label: str,
    *,
    ceiling: int | None = None,
    gap: float = 0.0,
    hold: bool = True,
    hint_from: Sequence[cp_model.IntVar] = (),
) -> Level:
    """One level of a lexicographic solve: maximise ``expr`` (:func:`run_cpsat`); when a
    solution is found, ``hint_from``'s variables are hinted at their values in it (the next
    level starts from this solution) and, with ``hold``, the level is held at its value
    (:func:`hold_level`) so the levels after it cannot trade it away. The search stops early
    at ``ceiling``, a known bound on the level (the value is then optimal, ``reached``), or,
    with ``gap``, once within that fraction of the best bound known (the ceiling or CP-SAT's
    own, whichever is lower): a proven gap, not a proof of optimality. The caller sets the
    solver's budget for the level and reads the solution from ``solver`` afterwards.

    The levels in order: ``optimise_level(m, s, a, ...)``, then ``optimise_level(m, s, b, ...)``
    optimises ``b`` among the solutions best on ``a`` (the last level needs no ``hold``)."""
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    model.maximize(expr)
    stopper = _stop_at(ceiling, gap) if ceiling is not None or gap > 0 else None
    code = run_cpsat(model, solver, stop, label, stopper)
    reached = stopper is not None and stopper.reached
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Level(code, None, reached)
    value = round(solver.objective_value)
    if hint_from:
        best = []
        for n_read, var in enumerate(hint_from):
            if stop is not None and n_read % HINT_CHECK_EVERY == 0:
                stop.check(f"{label}: {n_read:,} of {len(hint_from):,} values kept as the hint")
            best.append((var, solver.value(var)))
        model.clear_hints()
        for n_hinted, (var, v) in enumerate(best):
            if stop is not None and n_hinted % HINT_CHECK_EVERY == 0:
                stop.check(f"{label}: {n_hinted:,} of {len(best):,} values hinted")
            model.add_hint(var, v)
    if hold:
        hold_level(model, expr, value)
    return Level(code, value, reached)


def _stop_at(ceiling: int | None, gap: float) -> Any:
    """A solution callback that stops the search at ``ceiling`` or within ``gap``
    (:func:`optimise_level`); its class is made on first use, as CP-SAT's module is loaded."""
    return _stop_at_class()(ceiling, gap)


@functools.cache
def _stop_at_class() -> Any:
    from ortools.sat.python import cp_model  # lazy: CP-SAT loads pandas (0.3-0.4 s)

    class StopAt(cp_model.CpSolverSolutionCallback):
        def __init__(self, ceiling: int | None, gap: float) -> None:
            super().__init__()
            self.ceiling = ceiling
            self.gap = gap
            self.reached = False

        def on_solution_callback(self) -> None:
            value = self.objective_value
            if self.ceiling is not None and value >= self.ceiling - 0.5:
                self.reached = True
                self.stop_search()
            elif self.gap > 0:
                bound = self.best_objective_bound
                if self.ceiling is not None:
                    bound = min(bound, self.ceiling)
                if value >= (1 - self.gap) * bound:
                    self.stop_search()

    return StopAt
