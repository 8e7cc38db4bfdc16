"""The largest grouping that keeps every rule, when not all elements can be grouped (heuristic,
with the bound of :mod:`solvers.grouping.bound`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.random import default_rng
from numpy.typing import ArrayLike, NDArray

from solvers.grouping.bound import grouping_bound
from solvers.grouping.problem import IntArray


@dataclass(frozen=True, eq=False)
class PartialGrouping:
    """Outcome of :func:`largest_grouping`.

    Attributes:
        labels: ``labels[i]`` is the group of element ``i`` (``0..n_groups - 1``), or ``-1`` when
            ``i`` is left out. Every group holds ``lo..hi`` elements and no cannot-link pair.
        n_groups: Number of groups formed.
        bound: Proven upper bound on the elements any valid grouping holds
            (:func:`grouping_bound`); ``grouped == bound`` proves the grouping largest.
        bound_groups: Number of groups at which the bound is reached.
        iterations: Repair iterations run.
        time_s: Wall-clock seconds spent.
    """

    labels: IntArray
    n_groups: int
    bound: int
    bound_groups: int
    iterations: int
    time_s: float

    @property
    def grouped(self) -> int:
        """Elements in a group."""
        return int(np.count_nonzero(self.labels >= 0))


class _Packer:
    """Elements into groups with caps, no cannot-link pair together; some may stay out.

    ``c[i, g]`` counts the cannot-link partners of ``i`` in group ``g``: memory and the work
    of one move are O(n * groups). The repair loop is the partial-colouring tabu search known
    from graph colouring: an element left out joins the group where it displaces the fewest
    members (none when it fits), and a displaced member may not return to that group for a
    few iterations.
    """

    def __init__(
        self,
        cl: NDArray[np.bool_],
        lo: IntArray,
        hi: IntArray,
        rng: np.random.Generator,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.cl = cl
        self.cli = cl.astype(np.int32)
        self.n = int(cl.shape[0])
        self.lo = lo.astype(np.int64).copy()
        self.cap = hi.astype(np.int64).copy()
        self.rng = rng
        self.should_stop = should_stop
        n_groups = int(lo.shape[0])
        self.labels = np.full(self.n, -1, dtype=np.int64)
        self.sizes = np.zeros(n_groups, dtype=np.int64)
        self.c = np.zeros((self.n, n_groups), dtype=np.int32)
        self.tabu = np.zeros((self.n, n_groups), dtype=np.int64)
        self.iterations = 0
        self.stopped = False

    def _add(self, i: int, g: int) -> None:
        self.labels[i] = g
        self.sizes[g] += 1
        self.c[:, g] += self.cli[i]

    def _remove(self, i: int) -> None:
        g = int(self.labels[i])
        self.labels[i] = -1
        self.sizes[g] -= 1
        self.c[:, g] -= self.cli[i]

    def greedy(self) -> None:
        """Most-constrained elements first, each into the smallest group it fits."""
        deg = self.cl.sum(axis=1)
        for i in np.lexsort((self.rng.random(self.n), -deg)).tolist():
            ok = np.flatnonzero((self.c[i] == 0) & (self.sizes < self.cap))
            if ok.size:
                self._add(i, int(ok[int(np.argmin(self.sizes[ok]))]))

    def repair(self, max_iters: int) -> None:
        """Tabu search on the number left out; keeps the best state found."""
        big = np.iinfo(np.int32).max
        best = self.labels.copy()
        best_out = int(np.count_nonzero(best < 0))
        end = self.iterations + max_iters
        while self.iterations < end and best_out:
            if self.should_stop is not None and self.iterations % 16 == 0 and self.should_stop():
                self.stopped = True
                break
            it = self.iterations
            self.iterations += 1
            out = np.flatnonzero(self.labels < 0)
            full = (self.sizes >= self.cap).astype(np.int32)
            cost = np.maximum(self.c[out], full[None, :])
            cost[:, self.cap <= 0] = big
            cost[self.tabu[out] > it] = big
            low = int(cost.min())
            if low >= big:
                continue
            flat = np.flatnonzero(cost.ravel() == low)
            pick = int(flat[int(self.rng.integers(flat.size))])
            i, g = int(out[pick // cost.shape[1]]), pick % cost.shape[1]
            members = np.flatnonzero(self.labels == g)
            eject = members[self.cl[i, members]]
            if eject.size == 0 and self.sizes[g] >= self.cap[g]:
                eject = members[[int(self.rng.integers(members.size))]]
            tenure = int(self.rng.integers(10)) + (6 * out.size) // 10
            for j in eject.tolist():
                self._remove(j)
                self.tabu[j, g] = it + 1 + tenure
            self._add(i, g)
            left = int(np.count_nonzero(self.labels < 0))
            if left < best_out:
                best, best_out = self.labels.copy(), left
        self._load(best)

    def _load(self, labels: IntArray) -> None:
        self.labels[:] = -1
        self.sizes[:] = 0
        self.c[:, :] = 0
        for g in range(self.sizes.shape[0]):
            members = np.flatnonzero(labels == g)
            self.labels[members] = g
            self.sizes[g] = members.size
            if members.size:
                self.c[:, g] = self.cli[:, members].sum(axis=1)

    def fill_minimums(self) -> bool:
        """Bring every group below its minimum up to it, from the elements left out and from
        groups above their minimum. True if every group is within its bounds."""
        for g in np.flatnonzero(self.sizes < self.lo).tolist():
            for source in ("out", "above"):
                if self.sizes[g] >= self.lo[g]:
                    break
                if source == "out":
                    pool = np.flatnonzero(self.labels < 0)
                else:
                    above = self.sizes > self.lo
                    pool = np.flatnonzero((self.labels >= 0) & above[np.maximum(self.labels, 0)])
                for j in pool.tolist():
                    if self.sizes[g] >= self.lo[g]:
                        break
                    h = int(self.labels[j])
                    if h == g or self.c[j, g] or self.sizes[g] >= self.cap[g]:
                        continue
                    if h >= 0 and self.sizes[h] <= self.lo[h]:
                        continue
                    if h >= 0:
                        self._remove(j)
                    self._add(j, g)
        return bool(np.all(self.sizes >= self.lo))

    def close_smallest_short_group(self) -> bool:
        """Dissolve the smallest group below its minimum (its members are left out); False if
        there is none."""
        short = np.flatnonzero((self.sizes < self.lo) & (self.cap > 0))
        if short.size == 0:
            return False
        g = int(short[np.lexsort((short, self.sizes[short]))[0]])
        for j in np.flatnonzero(self.labels == g).tolist():
            self._remove(j)
        self.cap[g] = 0
        self.lo[g] = 0
        return True


def largest_grouping(
    n: int,
    lo: int,
    hi: int,
    *,
    cannot_link: ArrayLike | None = None,
    cliques: Sequence[Sequence[int]] = (),
    seed: int = 0,
    max_iters: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PartialGrouping:
    """Group as many of ``n`` elements as possible into groups of ``lo..hi`` elements with no
    cannot-link pair together; the others are left out (label ``-1``). The number of groups is
    free. For when :func:`diverse_groups` cannot place everyone; feed the kept elements and the
    labels to :func:`diverse_groups` (``initial=``) to make the groups diverse.

    Heuristic with a proven bound: :func:`grouping_bound` over ``cliques`` (sets of elements a
    group may hold at most one of, e.g. every element with one attribute; give them when you
    know them, the bound is then much tighter) sets the number of groups; a greedy construction
    (most-constrained first, smallest group first) and a partial-colouring tabu search of
    ``max_iters`` iterations (default ``max(2_000, 20 * n)``) then place as many as they can;
    groups that stay below ``lo`` are dissolved and their members re-placed. Memory O(n * n)
    for the cannot-link matrix plus O(n * groups); no solver model. Deterministic for a seed
    and ``max_iters``; ``should_stop`` (checked every few iterations) ends the search early
    with the best grouping so far.
    """
    start = time.perf_counter()
    if lo < 1 or hi < lo:
        raise ValueError(f"need 1 <= lo <= hi, got lo = {lo}, hi = {hi}.")
    cl = np.zeros((n, n), dtype=np.bool_)
    if cannot_link is not None:
        pairs = np.asarray(cannot_link, dtype=np.int64).reshape(-1, 2)
        if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
            raise ValueError(f"cannot_link has an index out of range for n = {n}.")
        cl[pairs[:, 0], pairs[:, 1]] = True
        cl[pairs[:, 1], pairs[:, 0]] = True
    np.fill_diagonal(cl, False)
    bound, groups = grouping_bound(n, lo, hi, cliques)
    if groups == 0:
        return PartialGrouping(np.full(n, -1, dtype=np.int64), 0, 0, 0, 0, 0.0)
    rng = default_rng(seed)
    budget = max(2_000, 20 * n) if max_iters is None else max_iters
    packer = _Packer(
        cl,
        np.full(groups, lo, dtype=np.int64),
        np.full(groups, hi, dtype=np.int64),
        rng,
        should_stop,
    )
    packer.greedy()
    packer.repair(budget)
    # Groups below the minimum: top them up, else dissolve the smallest and re-place its
    # members (each round closes a group, so this ends).
    while not packer.fill_minimums() and not packer.stopped:
        packer.close_smallest_short_group()
        packer.repair(max(200, budget // 10))
    while not packer.fill_minimums():  # stopped early: dissolve without further search
        packer.close_smallest_short_group()
    used = [g for g in range(groups) if packer.sizes[g] > 0]
    relabel = np.full(groups + 1, -1, dtype=np.int64)
    relabel[used] = np.arange(len(used))
    labels = relabel[packer.labels]  # -1 indexes the last entry, which stays -1
    labels.setflags(write=False)
    return PartialGrouping(
        labels=labels,
        n_groups=len(used),
        bound=bound,
        bound_groups=groups,
        iterations=packer.iterations,
        time_s=time.perf_counter() - start,
    )
