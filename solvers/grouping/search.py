"""The heuristic: starting groupings and the iterated tabu search around the kernels of
:mod:`solvers.grouping.kernels`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.random import default_rng

from solvers.grouping.feasibility import _cpsat_start
from solvers.grouping.kernels import _perturb, _tabu_kernel, load_compiled, search_work
from solvers.grouping.packing import _Packer
from solvers.grouping.problem import (
    FloatArray,
    GroupingNotFound,
    GroupingResult,
    IntArray,
    _finish,
    _prepare,
    _Problem,
    grouping_objective,
)


def _target_sizes(p: _Problem) -> IntArray:
    """Group sizes within the bounds that maximise ``mean distance * sum_g C(size_g, 2)``.

    With sizes not all fixed, the size pattern dominates the objective (it sets how many pairs
    there are), and tabu search rarely changes it: moving one element from a large group to a
    small one loses a lot. So the start uses the best pattern for an average distance, found by
    a small dynamic programme over groups and the number of elements placed.
    """
    n, n_groups = p.n, p.n_groups
    iu = np.triu_indices(n, k=1)
    mean = float(p.d[iu].mean()) if n > 1 else 0.0
    value = np.full((n_groups + 1, n + 1), -np.inf)
    choice = np.zeros((n_groups + 1, n + 1), dtype=np.int64)
    value[0, 0] = 0.0
    for g in range(n_groups):
        # value[g + 1, t] = max over sizes s of value[g, t - s] + mean * C(s, 2); ties go to the
        # largest size (the scalar loop's order: placed ascending, first strict maximum kept)
        for size in range(int(p.hi[g]), int(p.lo[g]) - 1, -1):
            if size > n:
                continue
            v = value[g, : n + 1 - size] + mean * size * (size - 1) / 2
            target = value[g + 1, size:]
            better = v > target
            target[better] = v[better]
            choice[g + 1, size:][better] = size
    sizes = np.zeros(n_groups, dtype=np.int64)
    placed = n
    for g in range(n_groups, 0, -1):
        sizes[g - 1] = choice[g, placed]
        placed -= int(sizes[g - 1])
    return sizes


def _greedy_start(
    p: _Problem, rng: np.random.Generator, caps: IntArray, tries: int | None = None
) -> IntArray | None:
    """Randomised greedy construction honouring bounds and cannot-link, or None if it fails.

    Elements with many cannot-link partners go first. Each element joins, among the groups it
    may join (below ``caps``, no cannot-link partner there), the one with the largest distance
    gain; while the unplaced elements are only just enough to fill every group to its minimum,
    only groups below their minimum are eligible.
    """
    n, n_groups = p.n, p.n_groups
    if tries is None:
        # 20 tries cost O(20 n^2): on large inputs fewer, the repair search does the rest
        tries = 20 if n <= 200 else max(3, 4000 // n)
    deg = p.cl.sum(axis=1)
    lo, cap = p.lo.tolist(), caps.tolist()
    groups = range(n_groups)
    for _ in range(tries):
        order = np.lexsort((rng.random(n), -deg))
        labels = np.full(n, -1, dtype=np.int64)
        sizes = [0] * n_groups
        gain = np.zeros((n, n_groups), dtype=np.float64)  # gain[k, g]: distance from k to g
        blocked = np.zeros((n, n_groups), dtype=np.int64)
        ok = True
        # Per element a few numbers per group: plain Python lists, not small numpy arrays (the
        # start of every cohort's search, 50 cohorts in a row at 5,000 participants). The
        # arithmetic is the vectorised form's, so the choices are the same.
        for pos, i in enumerate(order.tolist()):
            deficit = [max(lo[g] - sizes[g], 0) for g in groups]
            short = n - pos <= sum(deficit)  # only groups below their minimum may take it
            row = blocked[i].tolist()
            cand = [
                g
                for g in groups
                if sizes[g] < cap[g] and row[g] == 0 and (not short or deficit[g] > 0)
            ]
            if not cand:
                ok = False
                break
            # Prefer groups below their minimum, then the largest gain, random tie-break.
            here = gain[i].tolist()
            noise = rng.random(len(cand)).tolist()
            best, g = -np.inf, -1
            for c, r in zip(cand, noise, strict=True):
                key = here[c] + (1e12 if deficit[c] > 0 else 0.0) + 1e-9 * r
                if key > best:
                    best, g = key, c
            labels[i] = g
            sizes[g] += 1
            blocked[:, g] += p.cl[i]
            gain[:, g] += p.d[:, i]
        if ok:
            return labels
    return None


def _packed_start(
    p: _Problem, rng: np.random.Generator, should_stop: Callable[[], bool] | None
) -> IntArray | None:
    """Every element in a group within bounds, by the partial-colouring repair search of
    :func:`largest_grouping` (groups fixed, none dissolved), or None if it leaves one out."""
    packer = _Packer(p.cl, p.lo, p.hi, rng, should_stop)
    packer.greedy()
    packer.repair(max(2_000, 20 * p.n))
    if np.any(packer.labels < 0) or not packer.fill_minimums():
        return None
    return packer.labels.copy()


def _solve_heuristic(
    p: _Problem,
    *,
    time_limit: float | None,
    seed: int,
    max_iters: int | None,
    start: float,
    initial: IntArray | None = None,
    should_stop: Callable[[], bool] | None = None,
    stall: int | None = None,
) -> GroupingResult:
    rng = default_rng(seed)
    if max_iters is None and time_limit is None:
        max_iters = max(20_000, 400 * p.n)
    labels0 = initial
    if labels0 is None:
        labels0 = _greedy_start(p, rng, _target_sizes(p))
    if labels0 is None:
        labels0 = _greedy_start(p, rng, p.hi)
    if labels0 is None:
        labels0 = _packed_start(p, rng, should_stop)
    if labels0 is None:
        if should_stop is not None and should_stop():
            raise GroupingNotFound("Stopped before any feasible grouping was found.")
        budget = 10.0 if time_limit is None else time_limit - (time.perf_counter() - start)
        labels0 = _cpsat_start(p, seed=seed, time_limit=budget, should_stop=should_stop)
    if p.n_groups == 1:
        return _finish(
            p,
            labels0,
            bound=None,
            status="optimal",
            method="heuristic",
            seed=seed,
            start=start,
            iterations=0,
        )

    kernel = _tabu_kernel(
        np.iinfo(np.int64).max if max_iters is None else search_work(max_iters, p.n)
    )
    state = _TabuState.create(p, labels0, rng)
    if stall is not None:
        # the kernel hands back (code 2) after `depth` iterations without a new best since the
        # last perturbation: with a stall rule that is where the search ends, unperturbed
        state.params[0] = stall
    deadline = None if time_limit is None else start + time_limit
    budget = max_iters if max_iters is not None else np.iinfo(np.int64).max
    # first chunk ~20 ms whatever the size (an iteration is O(n^2): 64 of them on 1,000 elements
    # took 0.6 s between two stop checks); chunking never changes the result
    chunk = max(1, min(64, 4_000_000 // max(1, p.n * p.n)))
    while state.iterations < budget:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        if should_stop is not None and should_stop():
            break
        steps = int(min(chunk, budget - state.iterations))
        t0 = time.perf_counter()
        code = kernel(
            p.d,
            p.lo,
            p.hi,
            p.cl,
            state.has_cl,
            state.labels,
            state.sizes,
            state.m,
            state.c,
            state.tabu,
            state.best_labels,
            state.floats,
            state.ints,
            state.params,
            steps,
        )
        if code == 1:
            break
        if code == 2 and stall is not None:
            break
        if code == 2:
            _perturb(
                p.d,
                p.lo,
                p.hi,
                p.cl,
                state.has_cl,
                state.labels,
                state.sizes,
                state.m,
                state.c,
                state.tabu,
                state.best_labels,
                state.floats,
                state.ints,
                int(state.params[1]),
            )
        # Aim for ~20 ms between clock checks; chunking never changes the result.
        elapsed = time.perf_counter() - t0
        if elapsed < 0.01:
            chunk = min(chunk * 2, 1 << 20)
        elif elapsed > 0.04:
            chunk = max(1, chunk // 2)
    return _finish(
        p,
        state.best_labels,
        bound=None,
        status="feasible",
        method="heuristic",
        seed=seed,
        start=start,
        iterations=state.iterations,
    )


@dataclass
class _TabuState:
    """All mutable search state, so kernel calls can be chunked without changing the result."""

    has_cl: bool
    labels: IntArray
    sizes: IntArray
    m: FloatArray  # m[i, g] = sum of distances from i to the members of g
    c: IntArray  # c[i, g] = number of cannot-link partners of i in g
    tabu: IntArray  # tabu[i, g] = iteration until which i may not re-enter g
    best_labels: IntArray
    floats: FloatArray  # [current objective, best objective, best since last perturbation]
    ints: IntArray  # [iteration, iterations without improvement, rng state]
    params: IntArray  # [depth, perturbation strength, min tenure, tenure span]

    @property
    def iterations(self) -> int:
        return int(self.ints[0])

    @classmethod
    def create(cls, p: _Problem, labels0: IntArray, rng: np.random.Generator) -> _TabuState:
        n, n_groups = p.n, p.n_groups
        onehot = np.zeros((n, n_groups), dtype=np.float64)
        onehot[np.arange(n), labels0] = 1.0
        m = p.d @ onehot
        # counts, summed in floats (BLAS; exact below 2**53): an int64 product has no BLAS and
        # took 0.44 s on a 1,000-element, 250-group search
        c = (p.cl.astype(np.float64) @ onehot).astype(np.int64)
        obj = grouping_objective(p.d, labels0)
        avg = n / max(1, n_groups)
        params = np.array(
            [
                max(200, 5 * n),  # depth: non-improving iterations before a perturbation
                max(2, int(0.1 * n)) if n > 4 else 1,  # random swaps per perturbation
                max(2, int(0.6 * min(avg, n - avg))),  # min tabu tenure
                max(2, int(0.6 * min(avg, n - avg))),  # tenure span
            ],
            dtype=np.int64,
        )
        return cls(
            has_cl=bool(len(p.cl_pairs) > 0),
            labels=labels0.copy(),
            sizes=np.bincount(labels0, minlength=n_groups).astype(np.int64),
            m=m,
            c=c,
            tabu=np.zeros((n, n_groups), dtype=np.int64),
            best_labels=labels0.copy(),
            floats=np.array([obj, obj, obj], dtype=np.float64),
            ints=np.array([0, 0, int(rng.integers(1, 2_147_483_646))], dtype=np.int64),
            params=params,
        )


def warm_up() -> bool:
    """Load the compiled kernel now when numba's cache holds it (a worker process calls this
    while it waits for work, so its first search pays no load); never compiles. Returns
    whether the compiled kernel is loaded. Numba reads the compiled code on the kernel's first
    call, so a one-iteration search on 8 elements makes it: without it the first real search
    still paid 0.44-0.50 s."""
    loaded = load_compiled()
    if loaded:
        tiny = _prepare(np.zeros((8, 8)), [(4, 4)] * 2, None)
        _solve_heuristic(tiny, time_limit=None, seed=0, max_iters=1, start=time.perf_counter())
    return loaded
