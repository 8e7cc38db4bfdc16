"""Grouping problems: the validated input every method solves, the result type, the errors and
the objective (sum of within-group distances)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Method = Literal["auto", "exact", "heuristic"]
METHODS: tuple[str, ...] = ("auto", "exact", "heuristic")

#: ``method="auto"`` uses the exact method (subsets or CP-SAT's model) up to this many elements.
AUTO_EXACT_MAX_N = 14

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


class GroupingInfeasible(ValueError):
    """Proven: no grouping meets the size bounds and cannot-link pairs; the message says why."""


class GroupingNotFound(RuntimeError):
    """The time limit ran out before any feasible grouping was found (feasibility not decided)."""


@dataclass(frozen=True, eq=False)
class GroupingResult:
    """Outcome of :func:`diverse_groups`.

    Attributes:
        labels: ``labels[i]`` is the group of element ``i``: an index into the caller's ``bounds``
            list (read-only int64 array of length ``n``).
        objective: Sum of ``distance[i, j]`` over unordered pairs ``{i, j}`` in the same group
            (each pair counted once), recomputed from ``labels``.
        bound: Proven upper bound on the optimal objective, or ``None`` when unknown (heuristic).
        status: ``"optimal"`` (proven) or ``"feasible"`` (not proven best). Infeasible inputs never
            produce a result: they raise :class:`GroupingInfeasible`.
        method: ``"exact"`` or ``"heuristic"``: the method that produced ``labels``.
        seed: The seed used.
        time_s: Wall-clock seconds spent.
        iterations: Tabu-search iterations run (heuristic only).
    """

    labels: IntArray
    objective: float
    bound: float | None
    status: Literal["optimal", "feasible"]
    method: str
    seed: int
    time_s: float
    iterations: int | None = None

    @property
    def gap(self) -> float | None:
        """Relative gap ``(bound - objective) / |bound|``, or ``None`` without a bound."""
        if self.bound is None:
            return None
        return max(0.0, self.bound - self.objective) / max(abs(self.bound), 1e-9)

    def summary(self) -> str:
        """One line for humans."""
        parts = [
            f"{self.status} ({self.method}, seed {self.seed})",
            f"objective {self.objective:.6g}",
        ]
        if self.bound is not None:
            parts.append(f"bound {self.bound:.6g} (gap {100 * (self.gap or 0.0):.3f}%)")
        if self.iterations is not None:
            parts.append(f"{self.iterations} iterations")
        parts.append(f"{self.time_s:.2f} s")
        return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Objective and input preparation
# --------------------------------------------------------------------------------------------


def grouping_objective(distance: ArrayLike, labels: ArrayLike) -> float:
    """Sum of ``distance[i, j]`` over unordered pairs ``i < j`` with ``labels[i] == labels[j]``.

    Uses the upper triangle only, so the diagonal is ignored and each pair is counted once.
    """
    d = np.asarray(distance, dtype=np.float64)
    lab = np.asarray(labels)
    same = lab[:, None] == lab[None, :]
    return float(np.triu(np.where(same, d, 0.0), k=1).sum())


@dataclass(frozen=True)
class _Problem:
    """Validated, solver-ready data (never aliases the caller's arrays)."""

    d: FloatArray  # n x n, symmetric, zero diagonal
    lo: IntArray  # per-group minimum size
    hi: IntArray  # per-group maximum size, clipped to n
    cl_pairs: IntArray  # k x 2, i < j, unique
    cl: NDArray[np.bool_]  # n x n symmetric cannot-link matrix

    @property
    def n(self) -> int:
        return int(self.d.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.lo.shape[0])


def _prepare(
    distance: ArrayLike, bounds: Sequence[tuple[int, int]], cannot_link: ArrayLike | None
) -> _Problem:
    d = np.array(distance, dtype=np.float64, copy=True)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance must be a square n x n array, got shape {d.shape}.")
    n = d.shape[0]
    np.fill_diagonal(d, 0.0)
    if not np.all(np.isfinite(d)):
        bad = np.argwhere(~np.isfinite(d))[0]
        raise ValueError(f"distance must be finite; distance[{bad[0]}, {bad[1]}] is not.")
    scale = max(1.0, float(np.abs(d).max(initial=0.0)))
    asym = np.abs(d - d.T)
    if asym.max(initial=0.0) > 1e-9 * scale:
        i, j = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise ValueError(
            f"distance must be symmetric: distance[{i}, {j}] = {d[i, j]} but "
            f"distance[{j}, {i}] = {d[j, i]}. Try (distance + distance.T) / 2."
        )
    d = (d + d.T) / 2.0  # exact symmetry, so incremental updates agree with recomputation

    try:
        b = np.array([(int(lo), int(hi)) for lo, hi in bounds], dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bounds must be a list of (min, max) integer pairs: {exc}") from exc
    if b.shape[0] == 0:
        raise ValueError("bounds is empty: give one (min, max) pair per group.")
    for g, (lo, hi) in enumerate(b):
        if lo < 0 or hi < lo:
            raise ValueError(f"bounds[{g}] = ({lo}, {hi}) is invalid: need 0 <= min <= max.")
    lo_arr = b[:, 0].copy()
    hi_arr = np.minimum(b[:, 1], n).astype(np.int64)
    if int(lo_arr.sum()) > n:
        raise GroupingInfeasible(
            f"The group minimums add up to {int(lo_arr.sum())} but there are only {n} elements. "
            "Try lowering some minimum sizes or removing groups."
        )
    if int(hi_arr.sum()) < n:
        raise GroupingInfeasible(
            f"The group maximums add up to {int(b[:, 1].sum())} but there are {n} elements to "
            "place. Try raising some maximum sizes or adding groups."
        )

    cl = np.zeros((n, n), dtype=np.bool_)
    if cannot_link is not None:
        pairs = np.asarray(cannot_link, dtype=np.int64)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 2)
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(
                f"cannot_link must be a k x 2 array of index pairs, got shape {pairs.shape}."
            )
        bad_range = np.flatnonzero(((pairs < 0) | (pairs >= n)).any(axis=1))
        if bad_range.size:
            i, j = pairs[bad_range[0]]
            raise ValueError(f"cannot_link pair ({i}, {j}) is out of range for n = {n}.")
        selfs = np.flatnonzero(pairs[:, 0] == pairs[:, 1])
        if selfs.size:
            i, j = pairs[selfs[0]]
            raise ValueError(f"cannot_link pair ({i}, {j}) links an element to itself.")
        cl[pairs[:, 0], pairs[:, 1]] = True
        cl[pairs[:, 1], pairs[:, 0]] = True
    iu, ju = np.nonzero(np.triu(cl, k=1))
    cl_pairs = np.stack([iu, ju], axis=1).astype(np.int64).reshape(-1, 2)
    problem = _Problem(d=d, lo=lo_arr, hi=hi_arr, cl_pairs=cl_pairs, cl=cl)
    _check_cliques(problem)
    return problem


def _check_cliques(p: _Problem) -> None:
    """Raise if a greedily found cannot-link clique needs more groups than can hold anyone."""
    if len(p.cl_pairs) == 0:
        return
    usable = int(np.count_nonzero(p.hi > 0))
    deg = p.cl.sum(axis=1)
    for start in np.argsort(-deg, kind="stable")[: min(p.n, 50)]:
        clique = [int(start)]
        common = p.cl[start].copy()  # linked to every member so far
        cand = np.flatnonzero(common)
        for v in cand[np.argsort(-deg[cand], kind="stable")].tolist():
            if common[v]:
                clique.append(v)
                common &= p.cl[v]
        if len(clique) > usable:
            raise GroupingInfeasible(
                f"Elements {sorted(clique)} must all be in different groups (cannot-link), but "
                f"only {usable} groups can hold anyone. Try adding groups or dropping "
                "cannot-link pairs."
            )


def _canonical(labels: IntArray, lo: IntArray, hi: IntArray) -> IntArray:
    """Relabel interchangeable groups (equal bounds) in order of their smallest element.

    Groups with the same (min, max) bounds are interchangeable: permuting them keeps feasibility
    and objective. Fixing the order makes the output independent of search symmetry.
    """
    out = labels.copy()
    n_groups = lo.shape[0]
    first = np.full(n_groups, labels.shape[0], dtype=np.int64)
    for i in range(labels.shape[0] - 1, -1, -1):
        first[labels[i]] = i
    classes: dict[tuple[int, int], list[int]] = {}
    for g in range(n_groups):
        classes.setdefault((int(lo[g]), int(hi[g])), []).append(g)
    for members in classes.values():
        if len(members) < 2:
            continue
        order = sorted(members, key=lambda g: (int(first[g]), g))
        mapping = dict(zip(order, members, strict=True))
        for old, new in mapping.items():
            out[labels == old] = new
    return out


def _finish(
    p: _Problem,
    labels: IntArray,
    *,
    bound: float | None,
    status: Literal["optimal", "feasible"],
    method: str,
    seed: int,
    start: float,
    iterations: int | None = None,
) -> GroupingResult:
    lab = _canonical(np.asarray(labels, dtype=np.int64), p.lo, p.hi)
    _assert_feasible(p, lab)
    lab.setflags(write=False)
    return GroupingResult(
        labels=lab,
        objective=grouping_objective(p.d, lab),
        bound=bound,
        status=status,
        method=method,
        seed=seed,
        time_s=time.perf_counter() - start,
        iterations=iterations,
    )


def _assert_feasible(p: _Problem, labels: IntArray) -> None:
    """Internal safety net: a solver bug must fail loudly, never return a rule-breaking grouping."""
    sizes = np.bincount(labels, minlength=p.n_groups)
    if labels.min(initial=0) < 0 or np.any(sizes < p.lo) or np.any(sizes > p.hi):
        raise AssertionError(f"internal error: group sizes {sizes.tolist()} break the bounds")
    if len(p.cl_pairs) and np.any(labels[p.cl_pairs[:, 0]] == labels[p.cl_pairs[:, 1]]):
        raise AssertionError("internal error: a cannot-link pair shares a group")


def _check_initial(p: _Problem, initial: ArrayLike) -> IntArray:
    labels = np.array(initial, dtype=np.int64, copy=True).reshape(-1)
    if labels.shape[0] != p.n or (p.n and (labels.min() < 0 or labels.max() >= p.n_groups)):
        raise ValueError(f"initial must hold {p.n} labels in 0..{p.n_groups - 1}.")
    try:
        _assert_feasible(p, labels)
    except AssertionError as exc:
        raise ValueError(f"initial is not a feasible grouping: {exc}") from exc
    return labels
