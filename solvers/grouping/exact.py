"""The exact method: dynamic programming over subsets where it applies (small inputs whose
groups are interchangeable, :mod:`solvers.grouping.subsets`), else the CP-SAT model of the whole
problem, proving optimality or a bound."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from solvers.grouping.feasibility import _feasibility_model, _integer_scale, _solve_with_stop
from solvers.grouping.problem import (
    AUTO_EXACT_MAX_N,
    GroupingInfeasible,
    GroupingNotFound,
    GroupingResult,
    IntArray,
    _finish,
    _Problem,
    grouping_objective,
)
from solvers.grouping.search import _solve_heuristic
from solvers.grouping.subsets import solve_by_subsets


def _solve_exact(
    p: _Problem,
    *,
    time_limit: float | None,
    seed: int,
    num_workers: int,
    start: float,
    initial: IntArray | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GroupingResult:
    by_subsets = solve_by_subsets(p)
    if by_subsets is not None:  # interchangeable groups of a small input: proven in ms
        result = _finish(
            p, by_subsets, bound=None, status="optimal", method="exact", seed=seed, start=start
        )
        return _replace_bound(result, result.objective)

    from ortools.sat.python import cp_model

    model, x = _feasibility_model(p)
    n, n_groups = p.n, p.n_groups
    scale, exact_ints = _integer_scale(p.d)
    w = np.round(p.d * scale).astype(np.int64)

    # Objective: sum of (integer-scaled) distances over pairs that share a group, with
    # together[i, j, g] <=> (i in g and j in g).
    together: dict[tuple[int, int, int], Any] = {}
    terms = []
    for g in range(n_groups):
        for i in range(n):
            for j in range(i + 1, n):
                if p.cl[i, j]:
                    continue  # never together (cannot-link)
                y = model.new_bool_var(f"together_{i}_{j}_{g}")
                together[i, j, g] = together[j, i, g] = y
                model.add_implication(y, x[i][g])
                model.add_implication(y, x[j][g])
                model.add_bool_or([x[i][g].Not(), x[j][g].Not(), y])
                if w[i, j] != 0:
                    terms.append(int(w[i, j]) * y)
    # Redundant counting rules that tighten the relaxation a lot (n = 12: 30 s -> 0.7 s): a
    # member of g is together with size(g) - 1 others, a non-member with none, and g holds
    # size(g) * (size(g) - 1) / 2 pairs.
    sizes: list[Any] = []
    pair_counts: list[Any] = []
    for g in range(n_groups):
        lo, hi = int(p.lo[g]), int(p.hi[g])
        size = model.new_int_var(lo, hi, f"size_{g}")
        sizes.append(size)
        model.add(sum(x[i][g] for i in range(n)) == size)
        for i in range(n):
            partners = sum(together[i, j, g] for j in range(n) if (i, j, g) in together)
            model.add(partners == size - 1).only_enforce_if(x[i][g])
            model.add(partners == 0).only_enforce_if(x[i][g].Not())
        pairs = model.new_int_var(lo * (lo - 1) // 2, hi * (hi - 1) // 2, f"pairs_{g}")
        pair_counts.append(pairs)
        model.add_element(size - lo, [s * (s - 1) // 2 for s in range(lo, hi + 1)], pairs)
        model.add(sum(y for (i, j, h), y in together.items() if h == g and i < j) == pairs)
    model.maximize(sum(terms))

    hint: IntArray | None = initial
    if hint is None and n > AUTO_EXACT_MAX_N:
        # A complete hint from a short, deterministic heuristic run: CP-SAT starts from it and
        # it is returned if CP-SAT finds nothing better within the time limit.
        hint = _solve_heuristic(
            p,
            time_limit=None,
            seed=seed,
            max_iters=max(2_000, 50 * n),
            start=start,
            should_stop=should_stop,
        ).labels
    if hint is not None:
        for i in range(n):
            for g in range(n_groups):
                model.add_hint(x[i][g], bool(hint[i] == g))
        for (i, j, g), y in together.items():
            if i < j:
                model.add_hint(y, bool(hint[i] == g and hint[j] == g))
        counts = np.bincount(hint, minlength=n_groups)
        for g in range(n_groups):
            model.add_hint(sizes[g], int(counts[g]))
            model.add_hint(pair_counts[g], int(counts[g] * (counts[g] - 1) // 2))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = seed
    if time_limit is not None:
        remaining = time_limit - (time.perf_counter() - start)
        solver.parameters.max_time_in_seconds = max(0.01, remaining)
    code = _solve_with_stop(solver, model, should_stop)
    if code == cp_model.INFEASIBLE or code == cp_model.MODEL_INVALID:
        if code == cp_model.MODEL_INVALID:
            raise AssertionError(f"internal error: invalid CP-SAT model: {model.validate()}")
        raise GroupingInfeasible(
            "No grouping meets every size bound and cannot-link pair (proven by CP-SAT). Try "
            "raising maximum sizes, adding groups, or dropping cannot-link pairs."
        )
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        labels = np.array(
            [next(g for g in range(n_groups) if solver.boolean_value(x[i][g])) for i in range(n)],
            dtype=np.int64,
        )
    elif hint is not None:
        labels = hint
    else:
        raise GroupingNotFound(
            f"No feasible grouping found within the time limit ({time_limit} s). Try a longer "
            "time limit or method='heuristic'."
        )
    if hint is not None and grouping_objective(p.d, hint) > grouping_objective(p.d, labels):
        labels = hint
    # Without a CP-SAT solution (only the hint) the reported objective bound is meaningless.
    found = code in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    bound: float | None = float(solver.best_objective_bound) / scale if found else None
    if bound is None or not math.isfinite(bound):
        bound = None
    elif not exact_ints:
        # Widen by the largest total rounding error over pairs that can share a group.
        max_pairs = float(sum(int(h) * (int(h) - 1) // 2 for h in p.hi))
        bound += max_pairs * 0.5 / scale
    status: Literal["optimal", "feasible"] = "optimal" if code == cp_model.OPTIMAL else "feasible"
    result = _finish(p, labels, bound=bound, status=status, method="exact", seed=seed, start=start)
    if status == "optimal" and exact_ints:
        # The bound equals the objective up to float summation order.
        return _replace_bound(result, result.objective)
    return result


def _replace_bound(r: GroupingResult, bound: float) -> GroupingResult:
    return GroupingResult(
        labels=r.labels,
        objective=r.objective,
        bound=bound,
        status=r.status,
        method=r.method,
        seed=r.seed,
        time_s=r.time_s,
        iterations=r.iterations,
    )
