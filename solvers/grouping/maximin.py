"""Maximin diverse grouping: make the least diverse group as diverse as possible, then the total.

Same input as :func:`solvers.grouping.diverse_groups`. A group's diversity is the *mean*
distance over its unordered pairs (so groups of different sizes compare fairly). The objective
is lexicographic: first the smallest group mean, then the total within-group distance.

Guarantee: heuristic, no optimality proof (``bound`` is ``None``). It starts from the
max-sum grouping of :func:`solvers.grouping.diverse_groups` and runs a seeded first-improvement
local search over relocate and swap moves on the lexicographic key, with random restarts from
perturbed solutions; every move keeps the size bounds and cannot-link pairs. Deterministic for
a given seed and ``max_iters``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from numpy.random import default_rng
from numpy.typing import ArrayLike, NDArray

from solvers.grouping.api import diverse_groups
from solvers.grouping.problem import GroupingResult, grouping_objective


def _key(d: NDArray[np.float64], labels: NDArray[np.int64], groups: int) -> tuple[float, float]:
    means = []
    total = 0.0
    for g in range(groups):
        idx = np.flatnonzero(labels == g)
        k = len(idx)
        if k < 2:
            if k == 1:
                means.append(0.0)
            continue
        s = float(d[np.ix_(idx, idx)].sum()) / 2.0
        total += s
        means.append(s / (k * (k - 1) / 2))
    return (min(means) if means else 0.0, total)


def maximin_groups(
    distance: ArrayLike,
    bounds: Sequence[tuple[int, int]],
    *,
    cannot_link: ArrayLike | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    max_iters: int | None = None,
    initial: ArrayLike | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GroupingResult:
    """Group elements so that the least diverse group (mean distance) is as diverse as possible.

    ``initial`` and ``should_stop`` are as in :func:`solvers.grouping.diverse_groups`:
    ``should_stop`` is polled before each element's moves are tried (tens of milliseconds
    apart at most on a few hundred elements); when it returns True the best grouping so far is
    returned. Raises the same exceptions as :func:`solvers.grouping.diverse_groups`.
    """
    start = time.perf_counter()
    base = diverse_groups(
        distance,
        bounds,
        cannot_link=cannot_link,
        seed=seed,
        time_limit=time_limit,
        max_iters=max_iters,
        initial=initial,
        should_stop=should_stop,
    )
    d = np.asarray(distance, dtype=np.float64)
    n, groups = d.shape[0], len(bounds)
    if n < 2:
        return base
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    cl = np.zeros((n, n), dtype=bool)
    if cannot_link is not None:
        for i, j in np.asarray(cannot_link, dtype=np.int64).reshape(-1, 2):
            cl[i, j] = cl[j, i] = True

    def fits(labels: NDArray[np.int64], i: int, g: int, skip: int = -1) -> bool:
        members = np.flatnonzero(labels == g)
        return not any(cl[i, m] for m in members if m != skip and m != i)

    rng = default_rng(seed)
    best = base.labels.astype(np.int64).copy()
    best_key = _key(d, best, groups)
    current, current_key = best.copy(), best_key
    budget = max_iters if max_iters is not None else 200 * n
    steps = 0

    def stop() -> bool:
        if time_limit is not None and time.perf_counter() - start > time_limit:
            return True
        return should_stop is not None and should_stop()

    stopped = False
    while steps < budget and not stopped:
        if stop():
            break
        improved = False
        sizes = np.bincount(current, minlength=groups)
        for i in rng.permutation(n).tolist():
            if stop():
                stopped = True
                break
            gi = int(current[i])
            # relocate i to another group
            for g in range(groups):
                steps += 1
                if g == gi or sizes[gi] - 1 < lo[gi] or sizes[g] + 1 > hi[g]:
                    continue
                if not fits(current, i, g):
                    continue
                current[i] = g
                key = _key(d, current, groups)
                if key > current_key:
                    current_key, improved = key, True
                    sizes = np.bincount(current, minlength=groups)
                    break
                current[i] = gi
            if improved:
                break
            # swap i with j in another group
            for j in range(n):
                gj = int(current[j])
                if gj == gi:
                    continue
                steps += 1
                if not (fits(current, i, gj, skip=j) and fits(current, j, gi, skip=i)):
                    continue
                current[i], current[j] = gj, gi
                key = _key(d, current, groups)
                if key > current_key:
                    current_key, improved = key, True
                    break
                current[i], current[j] = gi, gj
            if improved:
                break
        if current_key > best_key:
            best, best_key = current.copy(), current_key
        if stopped:
            break
        if not improved:
            # local optimum: restart from the best with a few random feasible swaps
            current = best.copy()
            for _ in range(max(1, n // 4)):
                i, j = rng.integers(n, size=2).tolist()
                gi, gj = int(current[i]), int(current[j])
                if gi != gj and fits(current, i, gj, skip=j) and fits(current, j, gi, skip=i):
                    current[i], current[j] = gj, gi
            current_key = _key(d, current, groups)
            steps += n
    return GroupingResult(
        labels=best,
        objective=grouping_objective(d, best),
        bound=None,
        status="feasible",
        method="maximin-local-search",
        seed=seed,
        time_s=time.perf_counter() - start,
    )
