"""Cold start: CLI start-up, first solve without a numba cache, and numba's place, in figures.

Rows (each a fresh process, best of ``--repeat`` unless said otherwise):
  - baselines: ``python -c pass`` and ``python -c "import numpy"`` (so the CLI's figures can be
    read as ratios on a loaded machine),
  - ``matcher --help`` and ``matcher validate`` on a generated 200-participant intake, with
    bytecode cached as in an installed package (and also without, when the environment sets
    ``PYTHONDONTWRITEBYTECODE``),
  - ``matcher solve`` on it: cold (an empty NUMBA_CACHE_DIR: the numpy set-search kernel, or a
    compile; bytecode written first by one solve with a throwaway cache, as pip compiles it)
    and warm (the same cache dir, second run), with the solve's per-stage times (``--timings``),
  - the set-search kernel's first call in a fresh process with an empty cache (numba import +
    compile) against a warm call,
  - in this process, exact dense assignment (n x n complete, random scores): our numba kernel
    (warm), OR-Tools' ``SimpleLinearSumAssignment`` and scipy's ``linear_sum_assignment`` on
    the same integer costs, as ratios to scipy,
  - in this process, the set search on one 60-pair cohort-like instance with the numba kernel
    and the numpy kernel (identical labels), as a ratio.

Usage:
  python benchmarks/cold_start.py            # prints a markdown table
  python benchmarks/cold_start.py --cli-only --repeat 5   # baselines, import, --help, validate
  python benchmarks/cold_start.py --fresh-install         # pip install into a new venv, solve
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env or ENV, check=True, capture_output=True)
    return time.perf_counter() - t0


def best(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    return min(timed(cmd, env) for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--fresh-install",
        action="store_true",
        help="only: install this checkout into a new virtual environment (pip, no extras, as "
        "the README's first command) and time `matcher solve` on a generated 200 there",
    )
    ap.add_argument(
        "--cli-only",
        action="store_true",
        help="only the baselines, `import matcher`, `matcher --help` and `matcher validate`",
    )
    args = ap.parse_args()
    if args.fresh_install:
        _print(fresh_install_rows(args.repeat))
        return
    py = sys.executable
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        inst = Path(tmp) / "g200.json"
        subprocess.run(
            [py, "-m", "matcher", "generate", "-n", "200", "--seed", "0", "-o", str(inst)],
            env=ENV,
            check=True,
            capture_output=True,
        )
        if ENV.get("PYTHONDONTWRITEBYTECODE"):
            # An installed package has its bytecode compiled; this environment may say not to
            # write it (every module compiled from source at every start). The CLI rows are
            # measured both ways, the cached one as a user would have it.
            no_cache = [
                (
                    f"{what}, no bytecode cache",
                    f"{best(cmd, args.repeat):.2f}",
                    "PYTHONDONTWRITEBYTECODE=1: every matcher module compiled at start",
                )
                for what, cmd in (
                    ("matcher --help", [py, "-m", "matcher", "--help"]),
                    ("matcher validate g200.json", [py, "-m", "matcher", "validate", str(inst)]),
                )
            ]
            ENV.pop("PYTHONDONTWRITEBYTECODE")
            ENV["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        else:
            no_cache = []
        rows.append(("python -c pass", f"{best([py, '-c', 'pass'], args.repeat):.2f}", ""))
        rows.append(
            (
                'python -c "import numpy"',
                f"{best([py, '-c', 'import numpy'], args.repeat):.2f}",
                "",
            )
        )
        rows.append(
            (
                "matcher --help",
                f"{best([py, '-m', 'matcher', '--help'], args.repeat):.2f}",
                "imports click and rich; not pydantic, numpy, numba, ortools "
                "or matcher.tools.bench",
            )
        )
        rows.append(
            (
                'python -c "import matcher"',
                f"{best([py, '-c', 'import matcher'], args.repeat):.2f}",
                "names load on first use",
            )
        )
        rows.append(
            (
                "matcher validate g200.json",
                f"{best([py, '-m', 'matcher', 'validate', str(inst)], args.repeat):.2f}",
                "imports pydantic (the schema) and rapidfuzz; not numpy",
            )
        )
        rows += no_cache
        if args.cli_only:
            _print(rows)
            return
        cache = Path(tmp) / "numba-cache"
        cache.mkdir()
        env = {**ENV, "NUMBA_CACHE_DIR": str(cache)}
        out = Path(tmp) / "plan.json"
        solve = [py, "-m", "matcher", "solve", str(inst), "--format", "json", "-o", str(out)]
        # Bytecode as an installed package has it (pip compiles it at install time): one solve
        # with a throwaway numba cache writes it for numpy, OR-Tools, pandas and the engine, so
        # the cold row measures an empty numba cache alone, not Python compiling every module.
        throwaway = Path(tmp) / "numba-cache-throwaway"
        throwaway.mkdir()
        timed(solve, {**ENV, "NUMBA_CACHE_DIR": str(throwaway)})
        cold = timed([*solve, "--timings"], env)
        stages_cold = json.loads(out.read_text())["run"].get("stages")
        warm = min(timed([*solve, "--timings"], env) for _ in range(args.repeat))
        stages_warm = json.loads(out.read_text())["run"].get("stages")
        rows.append(
            ("matcher solve g200.json, cold (empty numba cache)", f"{cold:.2f}", str(stages_cold))
        )
        rows.append(("matcher solve g200.json, warm", f"{warm:.2f}", str(stages_warm)))

        kernel = (
            "import time, numpy as np; t = time.perf_counter(); "
            "import solvers.grouping.kernels as g; g.NUMPY_FIRST_WORK = 0; "
            "from solvers.grouping import diverse_groups; "
            "d = np.random.default_rng(0).random((40, 40)); d = (d + d.T) / 2; "
            "diverse_groups(d, [(3, 4)] * 11, method='heuristic', max_iters=10); "
            "print(time.perf_counter() - t)"
        )
        cache2 = Path(tmp) / "numba-cache-2"
        cache2.mkdir()
        env2 = {**ENV, "NUMBA_CACHE_DIR": str(cache2)}
        first = subprocess.run(
            [py, "-c", kernel], env=env2, check=True, capture_output=True, text=True
        )
        second = subprocess.run(
            [py, "-c", kernel], env=env2, check=True, capture_output=True, text=True
        )
        rows.append(
            (
                "set-search kernel, first call (numba import + compile)",
                f"{float(first.stdout):.2f}",
                "fresh process, empty cache",
            )
        )
        rows.append(
            (
                "set-search kernel, first call with the cache on disk",
                f"{float(second.stdout):.2f}",
                "numba import + cache load",
            )
        )

    rows += first_call_rows(args.repeat)
    rows += assignment_rows()
    rows += kernel_rows()
    _print(rows)


def _print(rows: list[tuple[str, str, str]]) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    print(f"commit {commit}, {' '.join(sys.argv[1:]) or 'all rows'}\n")
    print("| what | seconds | notes |")
    print("| --- | ---: | --- |")
    for what, secs, note in rows:
        print(f"| {what} | {secs} | {note} |")


def assignment_rows() -> list[tuple[str, str, str]]:
    """Dense assignment, whole calls on float scores (ours: rounding and search in numba's one
    specialisation), against scipy, and OR-Tools' assignment on ours' integer costs."""
    from ortools.graph.python import linear_sum_assignment
    from scipy.optimize import linear_sum_assignment as scipy_lsa

    from solvers.assignment import _assignment_kernel, max_weight_matching

    out = []
    _assignment_kernel()  # compile or load (small problems skip it: plain Python)
    for n in (500, 1000, 2000):
        rng = np.random.default_rng(n)
        scores = rng.random((n, n))
        t = time.perf_counter()
        pairs = max_weight_matching(scores)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        r, c = scipy_lsa(scores, maximize=True)
        sp = time.perf_counter() - t
        cost = -np.rint(scores * 1e6).astype(np.int64)
        solver = linear_sum_assignment.SimpleLinearSumAssignment()
        t = time.perf_counter()
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        solver.add_arcs_with_cost(ii.ravel(), jj.ravel(), cost.ravel())
        solver.solve()
        ot = time.perf_counter() - t
        same = bool(abs(scores[pairs[:, 0], pairs[:, 1]].sum() - scores[r, c].sum()) < 1e-6)
        out.append(
            (
                f"dense assignment {n} x {n}: ours (numba) / OR-Tools / scipy",
                f"{ours:.3f} / {ot:.3f} / {sp:.3f}",
                f"ratio to scipy {ours / sp:.2f} / {ot / sp:.2f}; same optimum: {same}",
            )
        )
    return out


FIRST_CALLS = (
    "import sys, time; import numpy as np; rng = np.random.default_rng(0); "
    "from solvers.assignment import max_weight_matching; out = []\n"
    "for shape in [(150, 200), (500, 500), (1000, 1000), (2000, 2000), (1500, 3000)]:\n"
    "    s = rng.random(shape); t = time.perf_counter(); max_weight_matching(s)\n"
    "    out.append(f'{time.perf_counter() - t:.3f}')\n"
    "print(' / '.join(out))"
)


def fresh_install_rows(repeat: int) -> list[tuple[str, str, str]]:
    """A new virtual environment with this checkout installed by pip (no extras: no scipy, as a
    user has it; pip compiles the bytecode; numba's cache empty), then `matcher solve` on a
    generated 200-participant intake, run from outside the checkout: the first solve, and the
    best of ``repeat`` more (each also without a compiled set-search kernel: a 200-participant
    solve never compiles it)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        venv, src = Path(tmp) / "venv", Path(tmp) / "src"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(src)], check=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", str(src)], check=True, capture_output=True
        )
        rows.append(("pip install . (new environment)", f"{time.perf_counter() - t0:.1f}", ""))
        matcher = str(venv / "bin" / "matcher")
        inst, out = Path(tmp) / "g200.json", Path(tmp) / "plan.json"
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp}
        subprocess.run(
            [matcher, "generate", "-n", "200", "--seed", "0", "-o", str(inst)],
            check=True,
            capture_output=True,
            env=env,
            cwd=tmp,
        )
        solve = [matcher, "solve", str(inst), "-o", str(out)]
        first = timed(solve, env)
        again = [timed(solve, env) for _ in range(repeat)]
        rows.append(("matcher solve g200.json, first after install", f"{first:.2f}", ""))
        rows.append(
            (
                "matcher solve g200.json, again",
                f"{min(again):.2f}",
                "runs: " + " / ".join(f"{t:.2f}" for t in again),
            )
        )
    return rows


def first_call_rows(repeat: int) -> list[tuple[str, str, str]]:
    """Dense pairings of growing sizes in one fresh process (numba's cache on disk): the first
    call pays numba's import and the kernel's load, the others nothing more (one
    specialisation)."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", FIRST_CALLS], env=ENV, check=True, capture_output=True, text=True
        ).stdout.strip()
        for _ in range(repeat)
    ]
    return [
        (
            "dense pairing in a fresh process, in turn 150x200 / 500² / 1,000² / 2,000² / "
            "1,500x3,000",
            runs[-1],
            "every run: " + "; ".join(runs),
        )
    ]


def kernel_rows() -> list[tuple[str, str, str]]:
    import solvers.grouping as grouping
    import solvers.grouping.kernels as kernels

    rng = np.random.default_rng(0)
    n = 60
    d = np.round(rng.random((n, n)), 2)
    d = (d + d.T) / 2
    bounds = [(3, 4)] * 16
    saved = kernels._tabu_kernel(np.iinfo(np.int64).max)  # the compiled kernel
    out = []
    times = {}
    labels = {}
    for name, kernel in (("numba", saved), ("numpy", kernels._tabu_steps_numpy)):
        kernels._KERNEL = kernel
        grouping.diverse_groups(d, bounds, method="heuristic", max_iters=5, seed=0)  # warm up
        t = time.perf_counter()
        res = grouping.diverse_groups(d, bounds, method="heuristic", max_iters=2000, seed=0)
        times[name] = time.perf_counter() - t
        labels[name] = res.labels.tolist()
    kernels._KERNEL = saved
    out.append(
        (
            "set search, 60 elements, 2,000 iterations: numba / numpy kernel",
            f"{times['numba']:.3f} / {times['numpy']:.3f}",
            f"numpy {times['numpy'] / times['numba']:.1f}x the numba time; identical labels: "
            f"{labels['numba'] == labels['numpy']}",
        )
    )
    return out


if __name__ == "__main__":
    main()
