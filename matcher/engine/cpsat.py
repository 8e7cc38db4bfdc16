"""Running a CP-SAT model under the engine's stop rules: the deadline and the caller's cancel.

Shared by placement (:mod:`matcher.engine.placement.model`) and set-keeping in a re-plan
(:mod:`matcher.engine.replan`).
"""

from __future__ import annotations

import threading

from ortools.sat.python import cp_model

from matcher.engine.progress import TICK_S, Stop


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
