"""CP-SAT pieces shared by the exact model and the heuristic's last-resort start: a search stopped
on request, integer distances, and a model of the hard rules alone."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from solvers.grouping.problem import (
    FloatArray,
    GroupingInfeasible,
    GroupingNotFound,
    IntArray,
    _Problem,
)

#: Largest exact feasibility model (element x group variables plus cannot-link x group clauses)
#: built as a last resort when the greedy construction and the repair search find no grouping.
CPSAT_START_MAX_TERMS = 200_000


def _solve_with_stop(solver: Any, model: Any, should_stop: Callable[[], bool] | None) -> Any:
    """``solver.solve(model)``, stopped within ~50 ms once ``should_stop()`` returns True."""
    if should_stop is None:
        return solver.solve(model)
    import threading

    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if should_stop():
                solver.stop_search()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        return solver.solve(model)
    finally:
        done.set()
        watcher.join()


def _integer_scale(d: FloatArray) -> tuple[float, bool]:
    """Factor turning distances into integers: ``(10**k, True)`` if exact, else ``(s, False)``."""
    dmax = float(np.abs(d).max(initial=0.0))
    if dmax == 0.0:
        return 1.0, True
    for k in range(7):
        s = 10.0**k
        scaled = d * s
        if dmax * s < 2**40 and np.all(np.abs(scaled - np.round(scaled)) <= 1e-6):
            return s, True
    return 1e6 / dmax, False


def _feasibility_model(p: _Problem) -> tuple[Any, list[list[Any]]]:
    """CP-SAT variables and hard rules: one group each, size bounds, cannot-link, symmetry."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    n, n_groups = p.n, p.n_groups
    x = [[model.new_bool_var(f"x_{i}_{g}") for g in range(n_groups)] for i in range(n)]
    # Every element joins exactly one group.
    for i in range(n):
        model.add_exactly_one(x[i])
    # Each group's size stays within its (min, max) bounds.
    for g in range(n_groups):
        model.add_linear_constraint(sum(x[i][g] for i in range(n)), int(p.lo[g]), int(p.hi[g]))
    # Cannot-link pairs never share a group.
    for i, j in p.cl_pairs:
        for g in range(n_groups):
            model.add_bool_or([x[int(i)][g].Not(), x[int(j)][g].Not()])
    # Symmetry: among groups with equal bounds, group t may hold element i only if the previous
    # group of that class holds an element j < i (groups ordered by their smallest element).
    classes: dict[tuple[int, int], list[int]] = {}
    for g in range(n_groups):
        classes.setdefault((int(p.lo[g]), int(p.hi[g])), []).append(g)
    for members in classes.values():
        for prev, g in itertools.pairwise(members):
            for i in range(n):
                model.add(x[i][g] <= sum(x[j][prev] for j in range(i)))
    return model, x


def _cpsat_start(
    p: _Problem,
    *,
    seed: int,
    time_limit: float,
    should_stop: Callable[[], bool] | None = None,
) -> IntArray:
    """A feasible grouping from CP-SAT (no objective), or raise if none exists / none found.

    Only for small inputs: the model has O(n * groups + cannot-link pairs * groups) terms, so
    above ``CPSAT_START_MAX_TERMS`` it is not built (GroupingNotFound)."""
    from ortools.sat.python import cp_model

    terms = p.n * p.n_groups * (1 + p.n_groups) + len(p.cl_pairs) * p.n_groups
    if terms > CPSAT_START_MAX_TERMS:
        raise GroupingNotFound(
            f"No feasible grouping of {p.n} elements into {p.n_groups} groups found by the "
            "greedy construction and the repair search, and the exact model "
            f"({terms} terms) is too large to build. Try fewer cannot-link pairs or other "
            "group sizes."
        )
    model, x = _feasibility_model(p)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_time_in_seconds = max(0.01, time_limit)
    code = _solve_with_stop(solver, model, should_stop)
    if code == cp_model.INFEASIBLE:
        raise GroupingInfeasible(
            "No grouping meets every size bound and cannot-link pair (proven by CP-SAT). Try "
            "raising maximum sizes, adding groups, or dropping cannot-link pairs."
        )
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise GroupingNotFound(
            f"No feasible grouping found within {time_limit:.1f} s. Try a longer time limit or "
            "fewer cannot-link pairs."
        )
    return np.array(
        [next(g for g in range(p.n_groups) if solver.boolean_value(x[i][g])) for i in range(p.n)],
        dtype=np.int64,
    )
