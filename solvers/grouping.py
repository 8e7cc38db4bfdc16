"""Diverse grouping: the Maximally Diverse Grouping Problem (MDGP) with side constraints.

Split ``n`` elements into groups, one per ``(min, max)`` size bound, so that the sum of the
distances between elements that share a group is as large as possible. Each unordered pair
``{i, j}`` in the same group contributes ``distance[i, j]`` once. Optional *cannot-link* pairs
must never share a group (a hard rule).

Entry point: :func:`diverse_groups`, which returns a :class:`GroupingResult`.

Guarantees
----------
- ``method="exact"`` (CP-SAT): ``status == "optimal"`` is a proof of optimality (up to the
  rounding of distances to integers, see :func:`diverse_groups`); otherwise ``status ==
  "feasible"`` and ``bound`` is a proven upper bound on the optimum.
- ``method="heuristic"`` (iterated tabu search): a feasible grouping with no optimality
  proof (``bound`` is ``None``). On the MDGPLIB literature benchmark it is within a fraction of a
  per cent of the best published values; see ``benchmarks/results/mdgp.md``.
- Every returned grouping satisfies every size bound and every cannot-link pair. Proven
  infeasible inputs raise :class:`GroupingInfeasible`; nothing is ever silently relaxed.

The heuristic's inner loop is compiled with numba when it is installed (imported lazily, on the
first heuristic call; compiled code is cached on disk; the rare perturbation step stays in Python,
which keeps the compile short). Without numba, a numpy version of the same iterations runs
instead: identical results (tested), about 5-15x slower on 30-200 elements; the plain-Python loop
is the reference both are tested against. See ``benchmarks/results/cold_start.md``.
"""

from __future__ import annotations

import itertools
import math
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GroupingInfeasible",
    "GroupingNotFound",
    "GroupingResult",
    "PartialGrouping",
    "diverse_groups",
    "grouping_bound",
    "grouping_objective",
    "largest_grouping",
]

Method = Literal["auto", "exact", "heuristic"]
METHODS: tuple[str, ...] = ("auto", "exact", "heuristic")

#: ``method="auto"`` uses the exact CP-SAT model up to this many elements.
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


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def diverse_groups(
    distance: ArrayLike,
    bounds: Sequence[tuple[int, int]],
    *,
    cannot_link: ArrayLike | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    method: Method = "auto",
    max_iters: int | None = None,
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
            ``"feasible"`` with a proven ``bound``). Heuristic: the search stops at the first
            check after this time; the result then depends on machine speed, so it is not
            reproducible run to run. ``None``: no limit.
        seed: Seed for all randomness (numpy ``Generator`` / CP-SAT ``random_seed``).
        method: ``"exact"`` (CP-SAT, for small ``n``, up to about 30), ``"heuristic"`` (iterated
            tabu search) or ``"auto"`` (exact when ``n <= 14``, heuristic otherwise).
        max_iters: Heuristic iteration budget (tabu moves). With ``max_iters`` and no
            ``time_limit`` the result is identical on every run and machine (byte-identical
            labels). If neither is given, the heuristic uses ``max(20_000, 400 * n)`` iterations.
        num_workers: CP-SAT workers (exact only). With 1 worker and no time limit the exact
            method is deterministic; keep it at most the number of cores.
        initial: Optional feasible grouping (``n`` labels into ``bounds``) to start from: the
            heuristic improves it (e.g. the labels of :func:`largest_grouping` on the kept
            elements), the exact method uses it as a hint. An infeasible one raises ValueError.
        should_stop: Optional callable, polled about every 20 ms of search (exact: by a
            watcher thread, so it must be safe to call from another thread); when it returns
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
        start=start,
        initial=start_labels,
        should_stop=should_stop,
    )


def _check_initial(p: _Problem, initial: ArrayLike) -> IntArray:
    labels = np.array(initial, dtype=np.int64, copy=True).reshape(-1)
    if labels.shape[0] != p.n or (p.n and (labels.min() < 0 or labels.max() >= p.n_groups)):
        raise ValueError(f"initial must hold {p.n} labels in 0..{p.n_groups - 1}.")
    try:
        _assert_feasible(p, labels)
    except AssertionError as exc:
        raise ValueError(f"initial is not a feasible grouping: {exc}") from exc
    return labels


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


# --------------------------------------------------------------------------------------------
# Exact: CP-SAT
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Heuristic: iterated tabu search
# --------------------------------------------------------------------------------------------


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
        for placed in range(n + 1):
            if value[g, placed] == -np.inf:
                continue
            for size in range(int(p.lo[g]), min(int(p.hi[g]), n - placed) + 1):
                v = value[g, placed] + mean * size * (size - 1) / 2
                if v > value[g + 1, placed + size]:
                    value[g + 1, placed + size] = v
                    choice[g + 1, placed + size] = size
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
    for _ in range(tries):
        order = np.lexsort((rng.random(n), -deg))
        labels = np.full(n, -1, dtype=np.int64)
        sizes = np.zeros(n_groups, dtype=np.int64)
        gain = np.zeros((n, n_groups), dtype=np.float64)  # gain[k, g]: distance from k to g
        blocked = np.zeros((n, n_groups), dtype=np.int64)
        ok = True
        for pos, i in enumerate(order):
            deficit = np.maximum(p.lo - sizes, 0)
            remaining = n - pos
            allowed = (sizes < caps) & (blocked[i] == 0)
            if remaining <= int(deficit.sum()):
                allowed &= deficit > 0
            cand = np.flatnonzero(allowed)
            if cand.size == 0:
                ok = False
                break
            # Prefer groups below their minimum, then the largest gain, random tie-break.
            key = gain[i, cand] + 1e12 * (deficit[cand] > 0) + 1e-9 * rng.random(cand.size)
            g = int(cand[int(np.argmax(key))])
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
) -> GroupingResult:
    rng = np.random.default_rng(seed)
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

    kernel = _tabu_kernel(np.iinfo(np.int64).max if max_iters is None else max_iters * p.n * p.n)
    state = _TabuState.create(p, labels0, rng)
    deadline = None if time_limit is None else start + time_limit
    budget = max_iters if max_iters is not None else np.iinfo(np.int64).max
    chunk = 64
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
        c = p.cl.astype(np.int64) @ onehot.astype(np.int64)
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


_KERNEL: Callable[..., int] | None = None
#: Work (iterations x elements^2) a process gives the numpy kernel before it loads the compiled
#: one, when numba's cache does not hold it yet: small searches on a new machine never pay the
#: compile (3-5 s).
#: Both kernels give identical groupings (tested), so only the speed depends on it. Measured on
#: a 200-participant intake (four cohorts of ~23 pairs, 4.2 M): the first solve on a new
#: machine 9.4 s -> 2.7-3.1 s; with numba's cache warm, 2.0 s -> 2.7-3.1 s.
NUMPY_FIRST_WORK = 6_000_000
_numpy_work = 0
_CACHED: bool | None = None


def _compiled_on_disk() -> bool:
    """Whether numba's cache holds a compiled tabu kernel (then loading it takes under a second
    and the numpy kernel would only be slower). Looks where numba writes it: the source's
    ``__pycache__`` or ``NUMBA_CACHE_DIR``; a stale entry only costs a compile, as without."""
    import os
    from pathlib import Path

    pattern = f"{Path(__file__).stem}._tabu_steps-*.nbi"
    if os.environ.get("NUMBA_CACHE_DIR"):  # numba then writes there only
        places = [Path(os.environ["NUMBA_CACHE_DIR"])]
    else:  # beside the source, or the user's cache when the package is read-only
        home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        places = [Path(__file__).parent / "__pycache__", Path(home) / "numba"]
    try:
        return any(
            next(iter(place.rglob(pattern)), None) is not None for place in places if place.is_dir()
        )
    except OSError:
        return False


def _tabu_kernel(work: int = 0) -> Callable[..., int]:
    """The kernel for a search of ``work`` (iterations x elements^2): the compiled one (numba)
    when numba's cache already holds it; otherwise the numpy one while this process's searches
    stay within ``NUMPY_FIRST_WORK`` in total, then the compiled one (compiled and cached now);
    the numpy one without numba."""
    global _KERNEL, _numpy_work, _CACHED
    if _CACHED is None:
        _CACHED = _compiled_on_disk()
    if _KERNEL is None and not _CACHED and _numpy_work + work <= NUMPY_FIRST_WORK:
        _numpy_work += work
        return _tabu_steps_numpy
    if _KERNEL is None:
        try:
            from numba import njit
        except ImportError:  # pragma: no cover - numba is installed in CI
            _KERNEL = _tabu_steps_numpy
        else:
            # Compile copies of the helpers that see each other's compiled versions, so that
            # importing this module never imports numba.
            scope: dict[str, Any] = {"np": np, "__name__": __name__}
            for f in (_rand_below, _move, _tabu_steps):
                copy = types.FunctionType(f.__code__, scope, f.__name__)
                scope[f.__name__] = njit(cache=True, nogil=True)(copy)
            _KERNEL = scope["_tabu_steps"]
    return _KERNEL


# The functions below are written in the numba-compatible subset of Python (loops, scalars, numpy
# arrays). Random numbers come from a 31-bit Park-Miller generator whose state lives in
# ints[2]: int64 arithmetic that never overflows, so numba and plain Python agree bit for bit.

_RNG_MOD = 2147483647


def _rand_below(ints: IntArray, k: int) -> int:
    s = (ints[2] * 48271) % 2147483647
    ints[2] = s
    return int(s % k)


def _move(
    d: FloatArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    i: int,
    b: int,
) -> None:
    a = labels[i]
    n = d.shape[0]
    for k in range(n):
        m[k, a] -= d[k, i]
        m[k, b] += d[k, i]
    if has_cl:
        for k in range(n):
            if cl[k, i]:
                c[k, a] -= 1
                c[k, b] += 1
    labels[i] = b
    sizes[a] -= 1
    sizes[b] += 1


def _tabu_steps(
    d: FloatArray,
    lo: IntArray,
    hi: IntArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    tabu: IntArray,
    best_labels: IntArray,
    floats: FloatArray,
    ints: IntArray,
    params: IntArray,
    steps: int,
) -> int:
    """Run up to ``steps`` iterations of iterated tabu search. Returns 0 after ``steps``
    iterations, 1 if no move exists at all, 2 right after an iteration that calls for a
    perturbation (the caller runs :func:`_perturb` and continues: keeping it out of the
    compiled code halves numba's compile time, and it runs once per ``depth`` iterations).

    Each iteration makes the best admissible move among all relocations (element to another
    group, within bounds) and all swaps (two elements of different groups). A move is admissible
    unless it puts an element back in a group it left within the tabu tenure, except when it
    yields a new overall best (aspiration). Moves that would put a cannot-link pair together are
    never considered. After ``depth`` iterations without improving the best since the last
    perturbation, the search restarts from the overall best with ``strength`` random swaps.
    """
    n = d.shape[0]
    n_groups = lo.shape[0]
    depth = params[0]
    tmin = params[2]
    tspan = params[3]
    for _ in range(steps):
        it = ints[0]
        cur = floats[0]
        best = floats[1]
        eps = 1e-9 * (1.0 + abs(best))
        best_delta = -np.inf
        bi = -1
        bj = -1
        bg = -1
        ties = 0
        n_moves = 0
        # Relocations: i from group a to group g.
        for i in range(n):
            a = labels[i]
            if sizes[a] <= lo[a]:
                continue
            for g in range(n_groups):
                if g == a or sizes[g] >= hi[g]:
                    continue
                if has_cl and c[i, g] > 0:
                    continue
                n_moves += 1
                delta = m[i, g] - m[i, a]
                if tabu[i, g] > it and cur + delta <= best + eps:
                    continue
                if delta > best_delta:
                    best_delta = delta
                    bi = i
                    bj = -1
                    bg = g
                    ties = 1
                elif delta == best_delta:
                    ties += 1
                    if _rand_below(ints, ties) == 0:
                        bi = i
                        bj = -1
                        bg = g
        # Swaps: i (in a) and j (in b) exchange groups.
        for i in range(n):
            a = labels[i]
            for j in range(i + 1, n):
                b = labels[j]
                if a == b:
                    continue
                if has_cl:
                    link = 1 if cl[i, j] else 0
                    if c[i, b] - link > 0 or c[j, a] - link > 0:
                        continue
                n_moves += 1
                delta = m[i, b] - m[i, a] + m[j, a] - m[j, b] - 2.0 * d[i, j]
                if (tabu[i, b] > it or tabu[j, a] > it) and cur + delta <= best + eps:
                    continue
                if delta > best_delta:
                    best_delta = delta
                    bi = i
                    bj = j
                    bg = -1
                    ties = 1
                elif delta == best_delta:
                    ties += 1
                    if _rand_below(ints, ties) == 0:
                        bi = i
                        bj = j
                        bg = -1
        if n_moves == 0:
            return 1
        if bi >= 0:
            if bj < 0:
                a = labels[bi]
                _move(d, cl, has_cl, labels, sizes, m, c, int(bi), int(bg))
                tabu[bi, a] = it + tmin + _rand_below(ints, tspan)
            else:
                a = labels[bi]
                b = labels[bj]
                _move(d, cl, has_cl, labels, sizes, m, c, int(bi), int(b))
                _move(d, cl, has_cl, labels, sizes, m, c, int(bj), int(a))
                tabu[bi, a] = it + tmin + _rand_below(ints, tspan)
                tabu[bj, b] = it + tmin + _rand_below(ints, tspan)
            cur += best_delta
            floats[0] = cur
        ints[0] = it + 1
        if cur > best + eps:
            floats[1] = cur
            for k in range(n):
                best_labels[k] = labels[k]
        if cur > floats[2] + eps:
            floats[2] = cur
            ints[1] = 0
        else:
            ints[1] += 1
        if ints[1] >= depth:
            return 2
    return 0


def _perturb(
    d: FloatArray,
    lo: IntArray,
    hi: IntArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    tabu: IntArray,
    best_labels: IntArray,
    floats: FloatArray,
    ints: IntArray,
    strength: int,
) -> None:
    """Restart from the overall best and apply ``strength`` random feasible swaps/relocations."""
    n = d.shape[0]
    n_groups = lo.shape[0]
    # Recompute from scratch: also clears floating-point drift of the incremental updates.
    # (Explicit loops rather than slice assignments: numba compiles them several times faster.)
    for i in range(n):
        labels[i] = best_labels[i]
    for g in range(n_groups):
        sizes[g] = 0
    for i in range(n):
        sizes[labels[i]] += 1
    for k in range(n):
        for g in range(n_groups):
            m[k, g] = 0.0
            c[k, g] = 0
    for i in range(n):
        for k in range(n):
            m[k, labels[i]] += d[k, i]
            if has_cl and cl[k, i]:
                c[k, labels[i]] += 1
    done = 0
    attempts = 0
    while done < strength and attempts < 50 * strength:
        attempts += 1
        i = _rand_below(ints, n)
        a = labels[i]
        if _rand_below(ints, 2) == 0:
            g = _rand_below(ints, n_groups)
            if g == a or sizes[a] <= lo[a] or sizes[g] >= hi[g]:
                continue
            if has_cl and c[i, g] > 0:
                continue
            _move(d, cl, has_cl, labels, sizes, m, c, i, g)
        else:
            j = _rand_below(ints, n)
            b = labels[j]
            if a == b:
                continue
            if has_cl:
                link = 1 if cl[i, j] else 0
                if c[i, b] - link > 0 or c[j, a] - link > 0:
                    continue
            _move(d, cl, has_cl, labels, sizes, m, c, i, b)
            _move(d, cl, has_cl, labels, sizes, m, c, j, a)
        done += 1
    obj = 0.0
    for i in range(n):
        obj += m[i, labels[i]]
    floats[0] = obj / 2.0
    floats[2] = floats[0]
    ints[1] = 0
    for k in range(n):
        for g in range(n_groups):
            tabu[k, g] = 0


# --------------------------------------------------------------------------------------------
# The most elements that can be grouped, when the rules cannot hold for all of them
# --------------------------------------------------------------------------------------------


def grouping_bound(
    n: int, lo: int, hi: int, cliques: Sequence[Sequence[int]] = ()
) -> tuple[int, int]:
    """Upper bound on how many of ``n`` elements fit in groups of ``lo..hi`` elements.

    ``cliques`` lists sets of elements of which a group may hold at most one (every two of them
    are cannot-link). With ``s`` groups a kept set ``S`` has ``|S ∩ C| <= min(|C|, s)`` for
    every clique ``C``; summed over a family ``T`` of cliques, each kept element counts once per
    clique of ``T`` it is in, so ``|S|`` is at most the elements in no clique of ``T`` plus the
    most elements whose clique counts fit in ``Σ min(|C|, s)`` (smallest counts first). The
    bound is the best such value over the families of the largest cliques, capped by ``s * hi``,
    maximised over the ``s`` with ``s * lo`` at most that value. O(K * (n / lo) + K * n) for K
    cliques (at most 64 are used). Returns ``(bound, s)``: the bound and the number of groups
    at which it is reached (the largest such ``s``); ``(0, 0)`` when no group can be formed.
    """
    if n <= 0 or lo <= 0 or hi < lo or n < lo:
        return 0, 0
    sets = [np.unique(np.asarray(c, dtype=np.int64)) for c in cliques]
    sets = [c for c in sets if c.size > 1]
    sets.sort(key=lambda c: (-c.size, c.tolist()[:1]))
    sets = sets[:64]
    mult = np.zeros(n, dtype=np.int64)
    families: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []  # (clique sizes, histogram)
    for k in range(len(sets) + 1):
        if k:
            mult[sets[k - 1]] += 1
        hist = np.bincount(mult, minlength=2)
        sizes = np.array([c.size for c in sets[:k]], dtype=np.int64)
        families.append((sizes, hist))
    # every number of groups s at once (vectorised over s; was a Python loop per s)
    s_all = np.arange(1, n // lo + 1, dtype=np.int64)
    value = np.minimum(n, s_all * hi)
    for sizes, hist in families:
        budget = (
            np.minimum(sizes[None, :], s_all[:, None]).sum(axis=1)
            if sizes.size
            else np.zeros_like(s_all)
        )
        m = np.full_like(s_all, int(hist[0]))
        active = np.ones(s_all.shape, dtype=bool)  # still taking whole multiplicity classes
        for t in range(1, hist.shape[0]):
            take = np.where(active, np.minimum(int(hist[t]), budget // t), 0)
            m += take
            budget -= take * t
            active &= take >= hist[t]
        value = np.minimum(value, m)
    valid = value >= s_all * lo
    if not valid.any():
        return 0, 0
    best = int(value[valid].max())
    best_s = int(s_all[valid & (value == best)].max())
    return best, best_s


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
    rng = np.random.default_rng(seed)
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


# --------------------------------------------------------------------------------------------
# The same tabu iterations, vectorised with numpy (no compilation)
# --------------------------------------------------------------------------------------------


def _tabu_steps_numpy(
    d: FloatArray,
    lo: IntArray,
    hi: IntArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    tabu: IntArray,
    best_labels: IntArray,
    floats: FloatArray,
    ints: IntArray,
    params: IntArray,
    steps: int,
) -> int:
    """:func:`_tabu_steps` with each iteration's move evaluation in numpy: same moves, same
    random draws, same floating-point operations per move, hence identical results (tested).

    The best move is picked as the loop picks it: moves in loop order (relocations by element
    then group, then swaps by (i, j)); a move above the running maximum becomes the choice, one
    equal to it is a tie, and each tie draws ``rand_below(ties)`` (ties counted since the last
    new maximum) and becomes the choice on 0. Only the draws' count and order matter for the
    generator state, so they are replayed in order on the tie positions alone.
    """
    n = d.shape[0]
    depth, tmin, tspan = int(params[0]), int(params[2]), int(params[3])
    rows = np.arange(n)
    iu, ju = np.triu_indices(n, k=1)
    cl_pairs = cl[iu, ju] if has_cl else None
    for _ in range(steps):
        it = int(ints[0])
        cur = float(floats[0])
        best = float(floats[1])
        eps = 1e-9 * (1.0 + abs(best))
        a_of = labels
        # Relocations: i from its group a to group g.
        ok = (sizes[a_of] > lo[a_of])[:, None] & (sizes < hi)[None, :]
        ok[rows, a_of] = False
        if has_cl:
            ok &= c == 0
        n_moves = int(np.count_nonzero(ok))
        m_own = m[rows, a_of]
        reloc_delta = m - m_own[:, None]
        admit = ok & ~((tabu > it) & (cur + reloc_delta <= best + eps))
        # Swaps: i (in a) and j (in b), i < j, exchange groups.
        a, b = a_of[iu], a_of[ju]
        ok_s = a != b
        if has_cl:
            link = cl_pairs.astype(np.int64)  # type: ignore[union-attr]
            ok_s &= (c[iu, b] - link <= 0) & (c[ju, a] - link <= 0)
        n_moves += int(np.count_nonzero(ok_s))
        if n_moves == 0:
            return 1
        swap_delta = m[iu, b] - m[iu, a] + m[ju, a] - m[ju, b] - 2.0 * d[iu, ju]
        admit_s = ok_s & ~(
            ((tabu[iu, b] > it) | (tabu[ju, a] > it)) & (cur + swap_delta <= best + eps)
        )
        r_idx = np.flatnonzero(admit.ravel())
        s_idx = np.flatnonzero(admit_s)
        deltas = np.concatenate([reloc_delta.ravel()[r_idx], swap_delta[s_idx]])
        bi = bj = bg = -1
        best_delta = -np.inf
        if deltas.size:
            before = np.empty_like(deltas)
            before[0] = -np.inf
            np.maximum.accumulate(deltas[:-1], out=before[1:])
            rises = deltas > before
            ties_at = np.flatnonzero(deltas == before)
            best_delta = float(deltas.max())
            pick = int(np.flatnonzero(rises & (deltas == best_delta))[0])
            if ties_at.size:
                segment = np.cumsum(rises, dtype=np.int64)
                within = _ties_within_segment(ties_at, segment)
                state = int(ints[2])
                for pos, k in zip(ties_at.tolist(), within.tolist(), strict=True):
                    state = (state * 48271) % 2147483647
                    if state % k == 0 and pos > pick:
                        pick = pos
                ints[2] = state
            if pick < r_idx.size:
                flat = int(r_idx[pick])
                bi, bg = flat // lo.shape[0], flat % lo.shape[0]
            else:
                s = int(s_idx[pick - r_idx.size])
                bi, bj = int(iu[s]), int(ju[s])
        if bi >= 0:
            if bj < 0:
                a0 = int(labels[bi])
                _move_numpy(d, cl, has_cl, labels, sizes, m, c, bi, bg)
                tabu[bi, a0] = it + tmin + _rand_below(ints, tspan)
            else:
                a0, b0 = int(labels[bi]), int(labels[bj])
                _move_numpy(d, cl, has_cl, labels, sizes, m, c, bi, b0)
                _move_numpy(d, cl, has_cl, labels, sizes, m, c, bj, a0)
                tabu[bi, a0] = it + tmin + _rand_below(ints, tspan)
                tabu[bj, b0] = it + tmin + _rand_below(ints, tspan)
            cur += best_delta
            floats[0] = cur
        ints[0] = it + 1
        if cur > best + eps:
            floats[1] = cur
            best_labels[:] = labels
        if cur > floats[2] + eps:
            floats[2] = cur
            ints[1] = 0
        else:
            ints[1] += 1
        if ints[1] >= depth:
            return 2
    return 0


def _ties_within_segment(ties_at: IntArray, segment: IntArray) -> IntArray:
    """For each tie position, the loop's ``ties`` counter when it is met: 1 for the segment's
    maximum plus the ties of the same segment up to and including this one."""
    seg = segment[ties_at]
    first = np.r_[True, seg[1:] != seg[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(seg.size), 0))
    return (np.arange(seg.size) - group_start + 2).astype(np.int64)


def _move_numpy(
    d: FloatArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    i: int,
    b: int,
) -> None:
    """:func:`_move` vectorised (the same per-element operations)."""
    a = int(labels[i])
    m[:, a] -= d[:, i]
    m[:, b] += d[:, i]
    if has_cl:
        c[:, a] -= cl[:, i]
        c[:, b] += cl[:, i]
    labels[i] = b
    sizes[a] -= 1
    sizes[b] += 1
