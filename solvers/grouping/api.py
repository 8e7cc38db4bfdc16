"""The entry point: :func:`diverse_groups` checks the input and runs the exact model or the
heuristic search."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from solvers.grouping.exact import _solve_exact
from solvers.grouping.problem import (
    AUTO_EXACT_MAX_N,
    METHODS,
    GroupingResult,
    Method,
    _check_initial,
    _finish,
    _prepare,
)
from solvers.grouping.search import _solve_heuristic


def diverse_groups(
    distance: ArrayLike,
    bounds: Sequence[tuple[int, int]],
    *,
    cannot_link: ArrayLike | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    method: Method = "auto",
    max_iters: int | None = None,
    stall: int | None = None,
    num_workers: int = 1,
    initial: ArrayLike | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GroupingResult:
    """Group elements so that the total within-group distance is maximal.

    Args:
        distance: Symmetric ``n x n`` array; ``distance[i, j]`` is the value of putting ``i`` and
            ``j`` in the same group. The diagonal is ignored. Not modified.
        bounds: One ``(min, max)`` size pair per group. A group ends up empty only if its min is 0.
            ``labels`` index into this list.
        cannot_link: Optional ``k x 2`` index pairs that must never share a group (hard rule).
        time_limit: Wall-clock seconds. Exact: CP-SAT's limit (if cut short the status is
            ``"feasible"`` with a proven ``bound``); the subset method is not interrupted (it
            declines inputs that would take more than about 0.2 s). Heuristic: the search
            stops at the first check after this time; the result then depends on machine
            speed, so it is not reproducible run to run. ``None``: no limit.
        seed: Seed for all randomness (numpy ``Generator`` / CP-SAT ``random_seed``).
        method: ``"exact"`` (for small ``n``, up to about 30: dynamic programming over subsets
            when every group has the same bounds, a minimum of at least 1, and ``n <= 16``,
            else CP-SAT), ``"heuristic"`` (iterated tabu search) or ``"auto"`` (exact when
            ``n <= 14``, heuristic otherwise).
        max_iters: Heuristic iteration budget (tabu moves). With ``max_iters`` and no
            ``time_limit`` the result is identical on every run and machine (byte-identical
            labels). If neither is given, the heuristic uses ``max(20_000, 400 * n)`` iterations.
        stall: Heuristic only: end the search after this many iterations in a row without a
            new best, within ``max_iters``, and never perturb. Counted in iterations, so a
            ``max_iters`` run stays reproducible. ``None``: the search runs its whole budget,
            perturbing after ``max(200, 5 * n)`` iterations without a new best.
        num_workers: CP-SAT workers (exact only). With 1 worker and no time limit the exact
            method is deterministic; keep it at most the number of cores.
        initial: Optional feasible grouping (``n`` labels into ``bounds``) to start from: the
            heuristic improves it (e.g. the labels of :func:`largest_grouping` on the kept
            elements), the exact method uses it as a hint. An infeasible one raises ValueError.
        should_stop: Optional callable, polled about every 20 ms of search (exact: by a
            watcher thread, so it must be safe to call from another thread; not by the subset
            method); when it returns
            True the search ends with the best grouping found so far (``status ==
            "feasible"``), or raises :class:`GroupingNotFound` if there is none yet.

    Returns:
        A :class:`GroupingResult`; ``result.labels`` is the array of ``n`` group labels.

    Raises:
        GroupingInfeasible: Proven infeasible: sum of mins > n, sum of maxes < n, a cannot-link
            clique larger than the number of usable groups, or (found by CP-SAT) any other
            combination of bounds and cannot-link pairs. The message says why.
        GroupingNotFound: The time limit ran out (or ``should_stop`` returned True) before any
            feasible grouping was found, or, on a large input, neither the greedy construction
            nor the repair search found one and the exact model would be too large to build.
        ValueError: Malformed input (non-square or asymmetric distance, bad bounds, bad pairs,
            unknown method).

    Exact method and non-integer distances: CP-SAT needs integer coefficients, so distances are
    multiplied by ``10**k`` (smallest ``k <= 6`` that makes them integral) or, failing that,
    scaled so that the largest is about ``1e6`` and rounded. In the rounded case ``status ==
    "optimal"`` means optimal for the rounded distances, and ``bound`` is widened by the largest
    possible total rounding error so that it remains a valid bound for the true distances.
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; valid methods: {', '.join(METHODS)}.")
    if time_limit is not None and time_limit <= 0:
        raise ValueError(f"time_limit must be positive, got {time_limit}.")
    if max_iters is not None and max_iters < 0:
        raise ValueError(f"max_iters must be >= 0, got {max_iters}.")
    if stall is not None and stall < 1:
        raise ValueError(f"stall must be >= 1, got {stall}.")
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}.")
    p = _prepare(distance, bounds, cannot_link)
    start_labels = None if initial is None else _check_initial(p, initial)

    if p.n == 0:
        return _finish(
            p,
            np.zeros(0, np.int64),
            bound=0.0,
            status="optimal",
            method="exact",
            seed=seed,
            start=start,
        )
    if method == "auto":
        method = "exact" if p.n <= AUTO_EXACT_MAX_N else "heuristic"
    if method == "exact":
        return _solve_exact(
            p,
            time_limit=time_limit,
            seed=seed,
            num_workers=num_workers,
            start=start,
            initial=start_labels,
            should_stop=should_stop,
        )
    return _solve_heuristic(
        p,
        time_limit=time_limit,
        seed=seed,
        max_iters=max_iters,
        stall=stall,
        start=start,
        initial=start_labels,
        should_stop=should_stop,
    )
