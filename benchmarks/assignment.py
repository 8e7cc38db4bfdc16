"""Speed and memory benchmark: solvers.assignment against scipy and raw OR-Tools.

Run from the repository root (scipy is a test dependency, used here only as a reference)::

    python benchmarks/assignment.py                # all cases, markdown table on stdout
    python benchmarks/assignment.py --quick        # the small cases only
    python benchmarks/assignment.py --cases dense-1000,dense-5000   # chosen cases, table
    python benchmarks/assignment.py --case dense-2000 --method ours   # one measurement, JSON
    python benchmarks/assignment.py --steady   # kernels against their references, one process

``--steady`` (the table in ``benchmarks/results/assignment.md``): dense 1,000^2, 2,000^2 and
1,500 x 3,000 against scipy's ``linear_sum_assignment``, sparse 50,000 per side (20 candidates
each) against OR-Tools' raw ``SimpleLinearSumAssignment`` on the same integer costs, all in this
one process after a warm-up call of each (steady state: imports done, numba's kernel loaded),
ours and the reference alternating, ``--repeat`` times; CPU time (``time.process_time``) and
wall time, medians, and their ratios. Every result is checked against the reference: the same
total (dense: within the rounding grid's documented bound, ``pairs x step``; sparse: the same
integer total exactly), else the run stops with an error.

Every (case, method) runs in its own subprocess, one after another, so peak memory
(``ru_maxrss``) is measured separately and only one CPU-heavy process runs at a time. Times are
wall-clock seconds for the whole call (input checks, arc construction, solve, extraction),
best of ``--repeat`` runs inside that subprocess. ``rss_base`` is the RSS once the interpreter,
libraries and input data are in memory (the peak mark is then reset through
``/proc/self/clear_refs``); ``rss_peak`` is the peak (VmHWM) at the end; their difference is what
the solve itself added. Before that baseline each method is called once on a tiny input (the
warm-up, timed separately): one-time costs such as imports and loading numba's compiled code
(our dense path) are then not counted as part of the solve, but shown in their own column.

Cases (random scores uniform in [0, 1), fixed seeds):

- ``dense-N`` / ``dense-NxM``: complete score matrix, no mask.
- ``dense-2000-masked``: 2000 x 2000 with 10% of pairs forbidden (our max-flow path; scipy gets
  forbidden pairs as a -1e9 penalty, which is only equivalent because a perfect matching exists).
- ``sparse-50k``: 50,000 per side, 20 distinct random candidate columns per row (~1M arcs).
- ``sparse-50k-unbalanced``: 50,000 rows x 60,000 columns, same candidates (no perfect
  assignment exists, so this exercises the general construction; raw OR-Tools and scipy's
  full-matching routine cannot take it as is).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
SCIPY_SPARSE_TIMEOUT_S = 60.0

Dense = tuple[NDArray[np.float64], NDArray[np.bool_] | None]
Sparse = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], tuple[int, int]]


def _dense(n: int, m: int, forbidden: float = 0.0) -> Dense:
    rng = np.random.default_rng(20160512)
    scores = rng.random((n, m))
    allowed = rng.random((n, m)) >= forbidden if forbidden > 0 else None
    return scores, allowed


def _sparse(n: int, m: int, per_row: int = 20) -> Sparse:
    """``per_row`` distinct random columns for every row, sorted by (row, col)."""
    rng = np.random.default_rng(20160616)
    rows = np.repeat(np.arange(n, dtype=np.int64), per_row)
    cols = rng.integers(0, m, size=n * per_row)
    key = np.unique(rows * m + cols)
    # Top up rows that lost candidates to collisions so every row keeps exactly per_row.
    while key.size < n * per_row:
        counts = np.bincount(key // m, minlength=n)
        short = np.repeat(np.arange(n), per_row - counts)
        key = np.unique(np.concatenate([key, short * m + rng.integers(0, m, size=short.size)]))
    rows, cols = np.divmod(key, m)
    return rows, cols, rng.random(rows.size), (n, m)


CASES: dict[str, Callable[[], Any]] = {
    "dense-1000": lambda: _dense(1000, 1000),
    "dense-1500x3000": lambda: _dense(1500, 3000),
    "dense-2000": lambda: _dense(2000, 2000),
    "dense-5000": lambda: _dense(5000, 5000),
    "dense-1000x2000": lambda: _dense(1000, 2000),
    "dense-2000-masked": lambda: _dense(2000, 2000, forbidden=0.1),
    "sparse-50k": lambda: _sparse(50_000, 50_000),
    "sparse-50k-unbalanced": lambda: _sparse(50_000, 60_000),
}

TINY: dict[str, Callable[[], Any]] = {
    "dense": lambda: (np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]]), None),
    "sparse": lambda: (np.array([0, 1]), np.array([1, 0]), np.array([1.0, 1.0]), (2, 2)),
}

QUICK = ["dense-1000", "dense-1000x2000", "sparse-50k"]


def _ours_dense(data: Dense) -> tuple[int, float]:
    from solvers.assignment import matching_total, max_weight_matching

    scores, allowed = data
    pairs = max_weight_matching(scores, allowed)
    return len(pairs), matching_total(scores, pairs)


def _scipy_dense(data: Dense) -> tuple[int, float]:
    from scipy.optimize import linear_sum_assignment

    scores, allowed = data
    profit = scores if allowed is None else np.where(allowed, scores, -1e9)
    r, c = linear_sum_assignment(profit, maximize=True)
    if allowed is not None:
        keep = allowed[r, c]
        r, c = r[keep], c[keep]
    return len(r), float(scores[r, c].sum())


def _ours_sparse(data: Sparse) -> tuple[int, float]:
    from solvers.assignment import max_weight_matching_sparse

    rows, cols, weights, shape = data
    pairs = max_weight_matching_sparse(rows, cols, weights, shape)
    # Totals from the candidate list (pairs are unique, sorted keys): no dense matrix anywhere.
    key = rows * shape[1] + cols
    idx = np.searchsorted(key, pairs[:, 0] * shape[1] + pairs[:, 1])
    return len(pairs), float(weights[idx].sum())


def _ortools_sparse(data: Sparse) -> tuple[int, float]:
    """Raw SimpleLinearSumAssignment on the arcs, scores scaled by 1e6 (needs a square,
    perfectly matchable input; no cardinality handling, no checks)."""
    from ortools.graph.python import linear_sum_assignment

    rows, cols, weights, shape = data
    solver = linear_sum_assignment.SimpleLinearSumAssignment()
    costs = -np.rint(weights * 1e6).astype(np.int64)
    solver.add_arcs_with_cost(rows.astype(np.int32), cols.astype(np.int32), costs)
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"OR-Tools status {status!r}")
    mates = np.array([solver.right_mate(i) for i in range(shape[0])], dtype=np.int64)
    key = rows * shape[1] + cols
    idx = np.searchsorted(key, np.arange(shape[0]) * shape[1] + mates)
    return len(mates), float(weights[idx].sum())


def _scipy_sparse(data: Sparse) -> tuple[int, float]:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    rows, cols, weights, shape = data
    # Shift by 1 so no weight is an explicit zero (scipy treats zeros as absent edges).
    graph = csr_matrix((weights + 1.0, (rows, cols)), shape=shape)
    r, c = min_weight_full_bipartite_matching(graph, maximize=True)
    return len(r), float(np.asarray(graph[r, c]).sum() - len(r))


METHODS: dict[str, dict[str, Callable[[Any], tuple[int, float]]]] = {
    "dense": {"ours": _ours_dense, "scipy": _scipy_dense},
    "sparse": {"ours": _ours_sparse, "ortools": _ortools_sparse, "scipy": _scipy_sparse},
}


def _kind(case: str) -> str:
    return case.split("-")[0]


def _methods(case: str) -> list[str]:
    if case == "sparse-50k-unbalanced":
        return ["ours"]
    return list(METHODS[_kind(case)])


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> float:
    """Reset the peak-RSS mark (Linux >= 4.0) and return the current RSS in MB.

    Without the reset, building the input (np.unique over a million keys...) would set a peak
    the solve never reaches, hiding what the solve itself adds.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    now = _status_mb("VmRSS")
    return now if now is not None else _peak_rss_mb()


def _peak_rss_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure(case: str, method: str, repeat: int) -> dict[str, Any]:
    """Run one (case, method) in this process and return its figures."""
    sys.path.insert(0, str(ROOT))
    fn = METHODS[_kind(case)][method]
    # Import the solver's libraries before the baseline so it only counts the solve.
    import ortools.graph.python.linear_sum_assignment  # noqa: F401

    # One call on a tiny input first: one-time costs (imports, loading numba's compiled code
    # for our dense path) are reported as the warm-up, not as part of the solve.
    t0 = time.perf_counter()
    fn(TINY[_kind(case)]())
    warmup = time.perf_counter() - t0
    data = CASES[case]()
    base = _reset_peak_rss()
    best = float("inf")
    result: tuple[int, float] = (0, 0.0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(data)
        best = min(best, time.perf_counter() - t0)
    return {
        "case": case,
        "method": method,
        "time_s": best,
        "warmup_s": warmup,
        "pairs": result[0],
        "total": result[1],
        "rss_base_mb": base,
        "rss_peak_mb": _peak_rss_mb(),
    }


def _run_child(case: str, method: str, repeat: int, timeout: float | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--case", case, "--method", method, "--repeat", str(repeat)]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=True, timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        return {"case": case, "method": method, "skipped": f"> {timeout:.0f} s"}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | method | time (s) | ours / ref | pairs | total | peak RSS (MB) "
        "| solve adds (MB) | warm-up (s) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ours = {r["case"]: r for r in results if r["method"] == "ours" and "time_s" in r}
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {r['method']} | skipped ({r['skipped']}) ||||||")
            continue
        mine = ours.get(r["case"])
        ratio = (
            "" if r["method"] == "ours" or mine is None else f"{mine['time_s'] / r['time_s']:.2f}"
        )
        lines.append(
            f"| {r['case']} | {r['method']} | {r['time_s']:.2f} | {ratio} | {r['pairs']} | "
            f"{r['total']:.4f} | {r['rss_peak_mb']:.0f} | "
            f"{r['rss_peak_mb'] - r['rss_base_mb']:.0f} | {r.get('warmup_s', 0.0):.2f} |"
        )
    return "\n".join(lines)


STEADY = ["dense-1000", "dense-2000", "dense-1500x3000", "sparse-50k"]
#: The goal per case: ours' CPU time at most this multiple of the reference's.
STEADY_GOAL = {"dense": 0.8, "sparse": 1.0}


def _grid_costs(weights: NDArray[np.float64], shape: tuple[int, int]) -> NDArray[np.int64]:
    """Our rounded integer costs of a candidate list (max cardinality, no tie-break at 50,000
    per side): what the raw reference solves, so that both solve one problem."""
    from solvers.assignment import grid_levels

    levels, tie_break = grid_levels(*shape)
    assert not tie_break
    lo, span = float(weights.min()), float(weights.max() - weights.min())
    return -np.rint((weights - lo) * (levels / span)).astype(np.int64)


def _raw_lsa(
    rows: NDArray[np.int64], cols: NDArray[np.int64], costs: NDArray[np.int64], n: int
) -> tuple[NDArray[np.int64], int]:
    """OR-Tools' assignment on the arcs as given: each row's column, and the optimal cost."""
    from ortools.graph.python import linear_sum_assignment

    solver = linear_sum_assignment.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(rows.astype(np.int32), cols.astype(np.int32), costs)
    if solver.solve() != solver.OPTIMAL:
        raise RuntimeError("OR-Tools assignment: not optimal")
    mates = np.array([solver.right_mate(i) for i in range(n)], dtype=np.int64)
    return mates, int(solver.optimal_cost())


class _Dense:
    """Ours and scipy on one score matrix; the check: same size, totals within the grid's
    bound (pairs x step)."""

    reference = "scipy linear_sum_assignment"

    def __init__(self, case: str, data: Dense) -> None:
        self.case, self.scores = case, data[0]

    def ours(self) -> Any:
        from solvers.assignment import max_weight_matching

        return max_weight_matching(self.scores)

    def ref(self) -> Any:
        from scipy.optimize import linear_sum_assignment

        return linear_sum_assignment(self.scores, maximize=True)

    def check(self, a: Any, b: Any) -> str:
        from solvers.assignment import grid_levels

        s = self.scores
        total_a = float(s[a[:, 0], a[:, 1]].sum())
        total_b = float(s[b[0], b[1]].sum())
        levels, _ = grid_levels(*s.shape)
        step = float(s.max() - s.min()) / levels
        if len(a) != len(b[0]) or abs(total_a - total_b) > len(a) * step:
            raise AssertionError(f"{self.case}: totals differ: {total_a!r} vs {total_b!r}")
        return f"{total_a:.6f} / {total_b:.6f}"


class _Sparse:
    """Ours and raw OR-Tools on one candidate list; the check: the same integer total."""

    reference = "OR-Tools SimpleLinearSumAssignment, same integer costs"

    def __init__(self, case: str, data: Sparse) -> None:
        from solvers.assignment import _auction_kernel

        # Compile or load the square problems' auction now: on a new install (numba's cache
        # without it) the solver itself would leave them to OR-Tools for the first 10M arcs.
        _auction_kernel()
        self.case, self.data = case, data
        rows, cols, weights, shape = data
        self.costs = _grid_costs(weights, shape)
        self.key = rows * shape[1] + cols

    def ours(self) -> Any:
        from solvers.assignment import max_weight_matching_sparse

        rows, cols, weights, shape = self.data
        return max_weight_matching_sparse(rows, cols, weights, shape)

    def ref(self) -> Any:
        rows, cols, _, shape = self.data
        return _raw_lsa(rows, cols, self.costs, shape[0])

    def check(self, a: Any, b: Any) -> str:
        m = self.data[3][1]
        idx = np.searchsorted(self.key, a[:, 0] * m + a[:, 1])
        total_a = int(self.costs[idx].sum())
        if len(a) != len(b[0]) or total_a != b[1]:
            raise AssertionError(f"{self.case}: integer totals differ: {total_a} vs {b[1]}")
        return f"{total_a} / {b[1]} (integer costs)"


def steady(cases: list[str], repeat: int) -> list[dict[str, Any]]:
    """Ours against the reference per case, in this process, alternating (see module doc)."""
    sys.path.insert(0, str(ROOT))
    out = []
    for case in cases:
        data = CASES[case]()
        pair: _Dense | _Sparse = (
            _Dense(case, data) if _kind(case) == "dense" else _Sparse(case, data)
        )
        same = pair.check(pair.ours(), pair.ref())  # warm-up, and the optimality check
        cpu: dict[str, list[float]] = {"ours": [], "ref": []}
        wall: dict[str, list[float]] = {"ours": [], "ref": []}
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            mine = pair.ours()
            cpu["ours"].append(time.process_time() - c0)
            wall["ours"].append(time.perf_counter() - w0)
            w0, c0 = time.perf_counter(), time.process_time()
            theirs = pair.ref()
            cpu["ref"].append(time.process_time() - c0)
            wall["ref"].append(time.perf_counter() - w0)
            pair.check(mine, theirs)
        med = {k: float(np.median(v)) for k, v in cpu.items()}
        medw = {k: float(np.median(v)) for k, v in wall.items()}
        out.append(
            {
                "case": case,
                "reference": pair.reference,
                "ours_cpu": med["ours"],
                "ref_cpu": med["ref"],
                "ratio_cpu": med["ours"] / med["ref"],
                "ours_wall": medw["ours"],
                "ref_wall": medw["ref"],
                "ratio_wall": medw["ours"] / medw["ref"],
                "goal": STEADY_GOAL[_kind(case)],
                "totals": same,
            }
        )
        print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def _steady_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | reference | ours CPU (s) | ref CPU (s) | ours / ref (CPU) | ours / ref (wall) "
        "| goal | totals (ours / ref) |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        met = "met" if r["ratio_cpu"] <= r["goal"] else "NOT met"
        lines.append(
            f"| {r['case']} | {r['reference']} | {r['ours_cpu']:.4f} | {r['ref_cpu']:.4f} | "
            f"**{r['ratio_cpu']:.2f}** | {r['ratio_wall']:.2f} | <= {r['goal']} ({met}) | "
            f"{r['totals']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--method", choices=["ours", "scipy", "ortools"])
    parser.add_argument("--repeat", type=int, default=None, help="best of N runs per case")
    parser.add_argument("--quick", action="store_true", help="small cases only")
    parser.add_argument(
        "--steady",
        action="store_true",
        help="kernels against their references in this one process (the recorded table)",
    )
    parser.add_argument(
        "--cases", help="comma-separated case names (default: all), e.g. dense-1000,dense-5000"
    )
    args = parser.parse_args()

    if args.steady:
        cases = args.cases.split(",") if args.cases else STEADY
        results = steady(cases, args.repeat or 7)
        print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}\n")
        print(_steady_table(results))
        return

    if args.case and args.method:
        print(json.dumps(measure(args.case, args.method, args.repeat or 1)))
        return

    if args.cases:
        cases = args.cases.split(",")
        unknown = sorted(set(cases) - set(CASES))
        if unknown:
            parser.error(f"unknown case(s) {unknown}; choose from {sorted(CASES)}")
    elif args.case:
        cases = [args.case]
    else:
        cases = QUICK if args.quick else list(CASES)
    results = []
    for case in cases:
        repeat = args.repeat or (1 if case in ("dense-5000",) else 3)
        for method in _methods(case):
            timeout = SCIPY_SPARSE_TIMEOUT_S if (method == "scipy" and "sparse" in case) else None
            r = _run_child(case, method, 1 if timeout else repeat, timeout)
            print(json.dumps(r), file=sys.stderr, flush=True)
            results.append(r)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}\n")
    print(_table(results))


if __name__ == "__main__":
    main()
