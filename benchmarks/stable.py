"""Speed and memory benchmark: solvers.stable against a textbook Gale–Shapley and `matching`.

Run from the repository root (`matching` is a test dependency, used here only as a reference)::

    python benchmarks/stable.py                 # all cases, markdown table on stdout
    python benchmarks/stable.py --quick         # the small cases only
    python benchmarks/stable.py --case complete-2000 --method ours   # one measurement, JSON

Every (case, method) runs in its own subprocess, one after another, so peak memory
(``ru_maxrss``) is measured separately and only one CPU-heavy process runs at a time. Times are
wall-clock seconds for the whole call from Python lists (input checks, rank tables, proposals,
output), best of ``--repeat`` runs inside that subprocess, after one untimed warm-up call on a
tiny instance (so numba's compile or cache-load time is excluded; it is measured on its own by
the ``compile`` rows). ``rss_base`` is the peak RSS once the interpreter, libraries and input
lists are in memory; ``rss_peak`` the peak at the end; the difference is what the solve added.
Every method's matching is hashed and compared with the textbook one.

Cases (fixed seeds):

- ``complete-N``: N per side, complete uniformly random preference lists.
- ``correlated-2000``: 2,000 per side, every proposer has the same (random) list, receivers
  random: about n^2/2 proposals instead of about n ln n, so the proposal loop dominates.
- ``sparse-20000``: 20,000 per side, each proposer lists 50 distinct random receivers and each
  receiver ranks exactly the proposers that list it (mutual lists, 1M entries per side).

Methods: ``ours`` (``solvers.stable.gale_shapley`` on lists), ``ours-array`` (the same on 2-D
int arrays, when the lists have equal lengths), ``plain`` (the textbook version below, plain
Python), ``matching`` (``matching.games.StableMarriage``, complete lists only, killed after
``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Lists = list[list[int]]


def plain_gale_shapley(proposer_prefs: Lists, receiver_prefs: Lists) -> list[int]:
    """Textbook deferred acceptance in plain Python (the reference for the speed ratio)."""
    rank = [{p: i for i, p in enumerate(lst)} for lst in receiver_prefs]
    nxt = [0] * len(proposer_prefs)
    holder = [-1] * len(receiver_prefs)
    match = [-1] * len(proposer_prefs)
    free = list(range(len(proposer_prefs)))
    while free:
        p = free.pop()
        lst = proposer_prefs[p]
        while nxt[p] < len(lst):
            r = lst[nxt[p]]
            nxt[p] += 1
            rk = rank[r].get(p)
            if rk is None:
                continue
            h = holder[r]
            if h == -1 or rk < rank[r][h]:
                holder[r] = p
                match[p] = r
                if h != -1:
                    match[h] = -1
                    free.append(h)
                break
    return match


def instance(case: str) -> tuple[Lists, Lists]:
    kind, size = case.rsplit("-", 1)
    n = int(size)
    rng = np.random.default_rng(20160512)
    if kind == "complete":
        P = np.argsort(rng.random((n, n)), axis=1).tolist()
        R = np.argsort(rng.random((n, n)), axis=1).tolist()
    elif kind == "correlated":
        P = [rng.permutation(n).tolist()] * n
        R = np.argsort(rng.random((n, n)), axis=1).tolist()
    elif kind == "sparse":
        P = _sparse_rows(rng, n, 50).tolist()
        R_sets: list[list[int]] = [[] for _ in range(n)]
        for p, row in enumerate(P):
            for r in row:
                R_sets[r].append(p)
        R = [rng.permutation(ps).tolist() for ps in R_sets]
    else:
        raise ValueError(f"unknown case {case!r}")
    return P, R


def _sparse_rows(rng: np.random.Generator, n: int, k: int) -> NDArray[np.int64]:
    """``k`` distinct random columns per row without an n x n temporary."""
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        out[i] = rng.choice(n, size=k, replace=False)
    return out


def _digest(match: Any) -> str:
    return hashlib.sha1(np.asarray(match, dtype=np.int64).tobytes()).hexdigest()[:12]


def _matching_package(P: Lists, R: Lists) -> list[int]:
    from matching.games import StableMarriage

    game = StableMarriage.create_from_dictionaries(dict(enumerate(P)), dict(enumerate(R)))
    out = [-1] * len(P)
    for suitor, reviewer in game.solve(optimal="suitor").items():
        out[suitor.name] = reviewer.name
    return out


def measure(case: str, method: str, repeat: int) -> dict[str, Any]:
    from solvers.stable import gale_shapley

    # numba: compile or load from cache, untimed (both input kinds: their arrays differ in type)
    gale_shapley([[0]], [[0]])
    gale_shapley(np.zeros((1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64))
    P, R = instance(case)
    args: tuple[Any, Any] = (P, R)
    if method == "ours-array":
        args = (np.array(P), np.array(R))
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    solve = {
        "ours": gale_shapley,
        "ours-array": gale_shapley,
        "plain": plain_gale_shapley,
        "matching": _matching_package,
    }[method]
    best = float("inf")
    match: Any = None
    for _ in range(repeat):
        t = time.perf_counter()
        match = solve(*args)
        best = min(best, time.perf_counter() - t)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "case": case,
        "method": method,
        "time_s": best,
        "rss_base_mb": rss_base / 1024,
        "rss_peak_mb": rss_peak / 1024,
        "matched": int(np.sum(np.asarray(match) >= 0)),
        "digest": _digest(match),
    }


def measure_compile(cache_dir: str) -> dict[str, Any]:
    """Time of the first gale_shapley call in a fresh process (numba compile or cache load)."""
    t = time.perf_counter()
    from solvers.stable import gale_shapley

    t_import = time.perf_counter() - t
    t = time.perf_counter()
    gale_shapley([[0]], [[0]])
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    gale_shapley([[0]], [[0]])
    return {
        "import_s": t_import,
        "first_call_s": t_first,
        "second_call_s": time.perf_counter() - t,
        "cache_dir": cache_dir,
    }


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        out = subprocess.run(
            [sys.executable, __file__, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    result: dict[str, Any] = json.loads(out.stdout)
    return result


CASES_QUICK: list[tuple[str, list[str]]] = [
    ("complete-40", ["ours", "ours-array", "plain", "matching"]),
    ("complete-100", ["ours", "ours-array", "plain", "matching"]),
    ("complete-300", ["ours", "ours-array", "plain", "matching"]),
]
CASES_FULL: list[tuple[str, list[str]]] = [
    *CASES_QUICK,
    ("complete-2000", ["ours", "ours-array", "plain"]),
    ("correlated-2000", ["ours", "ours-array", "plain"]),
    ("sparse-20000", ["ours", "plain"]),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases only")
    ap.add_argument("--case", help="run one case in this process and print JSON")
    ap.add_argument("--method", default="ours")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="per-run limit (seconds)")
    ap.add_argument("--compile", metavar="CACHE_DIR", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.compile:
        print(json.dumps(measure_compile(a.compile)))
        return
    if a.case:
        print(json.dumps(measure(a.case, a.method, a.repeat)))
        return

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")  # fmt: skip
    print()
    print("| case | method | time (s) | time / plain | RSS base (MB) | RSS peak (MB) | matched |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for case, methods in CASES_QUICK if a.quick else CASES_FULL:
        rows = {m: _run(["--case", case, "--method", m, "--repeat", str(a.repeat)], a.timeout)
                for m in methods}  # fmt: skip
        plain = rows.get("plain", {})
        for m, r in rows.items():
            if "error" in r:
                print(f"| {case} | {m} | {r['error']} | | | | |")
                continue
            ok = "" if r["digest"] == plain.get("digest") else " (DIFFERS from plain!)"
            ratio = (
                f"{r['time_s'] / plain['time_s']:.3f}" if "time_s" in plain and m != "plain" else ""
            )
            print(
                f"| {case} | {m}{ok} | {r['time_s']:.4f} | {ratio} | {r['rss_base_mb']:.0f} "
                f"| {r['rss_peak_mb']:.0f} | {r['matched']} |"
            )
    print()
    with tempfile.TemporaryDirectory() as cold:
        env = {**os.environ, "NUMBA_CACHE_DIR": cold}
        first = _run(["--compile", cold], a.timeout, env)
        warm = _run(["--compile", cold], a.timeout, env)
    for label, r in (("cold (empty numba cache)", first), ("warm (cache on disk)", warm)):
        if "error" in r:
            print(f"numba {label}: {r['error']}")
        else:
            print(
                f"numba {label}: import {r['import_s']:.3f} s, "
                f"first call {r['first_call_s']:.2f} s, "
                f"second call {r['second_call_s'] * 1e3:.2f} ms"
            )


if __name__ == "__main__":
    main()
