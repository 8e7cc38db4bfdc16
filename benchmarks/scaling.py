"""Whole-pipeline time and peak memory from 20 to 20,000 participants, with peers in the same run.

For each size: a seeded synthetic intake (`matcher generate`, seed 0) is solved end to end
(validate, score, pair, place, group, verify) in a fresh process, which reports its wall time
and peak resident memory. The growth exponent is fitted by least squares on log(time) against
log(participants) over sizes >= 200.

Peers on the same machine in the same run (pairing stage only, on the lone applicants):
  - our `max_weight_matching` and scipy `linear_sum_assignment` on the same dense lone score
    matrix (scipy: forbidden pairs at -1e6); "pairing stage" also includes scoring,
  - networkx `max_weight_matching(maxcardinality=True)` where it finishes (<= 500 people),
  - the score the candidate-list path (used above 4 M lone pairs) gives up against the exact
    dense optimum, measured on sizes where the dense one fits.

Usage:
  python benchmarks/scaling.py                 # the table (takes a few minutes)
  python benchmarks/scaling.py --sizes 20 200  # a subset
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = [20, 50, 200, 500, 2000, 5000, 20000]


def one(n: int, path: str) -> None:
    """Child process: solve and verify one intake, print time and peak memory as JSON."""
    from matcher import load_instance, solve, verify

    t0 = time.perf_counter()
    inst = load_instance(path)
    sol = solve(inst)
    ok = verify(inst, sol).ok
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "n": n,
                "time_s": wall,
                "peak_mb": peak_mb,
                "verified": ok,
                "status": sol.status,
                "pairs": len(sol.pairs),
                "waitlisted": len(sol.waitlist),
                "unmatched": len(sol.unmatched),
                "notes": sol.run.notes,
            }
        )
    )


def peers(n: int, path: str) -> dict[str, float | None]:
    """Pairing stage of ours vs scipy / networkx on the same lone score matrix."""
    import networkx as nx
    from scipy.optimize import linear_sum_assignment

    import matcher.engine.pairing as pairing
    from matcher import compatibility, load_instance

    inst = load_instance(path)
    out: dict[str, float | None] = {}
    t = time.perf_counter()
    exact = pairing.pair_lone_applicants(inst)
    out["ours_pairing_s"] = time.perf_counter() - t
    out["ours_exact"] = float(exact.scan.dense)
    comp = compatibility(inst)
    allowed = ~comp.forbidden & (comp.scores >= inst.rules.min_score)
    if comp.scores.size:
        from solvers.assignment import max_weight_matching

        t = time.perf_counter()
        max_weight_matching(comp.scores, allowed)
        out["ours_matching_s"] = time.perf_counter() - t
        t = time.perf_counter()
        cost = np.where(allowed, -(comp.scores + 1e6), 0.0)
        linear_sum_assignment(cost)
        out["scipy_lsa_s"] = time.perf_counter() - t
    if n <= 500:
        g = nx.Graph()
        ii, jj = np.nonzero(allowed)
        for i, j in zip(ii, jj, strict=True):
            g.add_edge(("r", int(i)), ("c", int(j)), weight=float(comp.scores[i, j]))
        t = time.perf_counter()
        nx.max_weight_matching(g, maxcardinality=True)
        out["networkx_s"] = time.perf_counter() - t
    # score lost by candidate lists against the exact dense optimum
    if exact.scan.dense and len(exact.matched_rows):
        saved = pairing.DENSE_MAX_CELLS
        pairing.DENSE_MAX_CELLS = 0
        try:
            sparse = pairing.pair_lone_applicants(inst)
        finally:
            pairing.DENSE_MAX_CELLS = saved

        def total(p: pairing.Pairing) -> tuple[int, float]:
            s = comp.scores[p.matched_rows, p.matched_cols]
            return len(s), float(s.sum())

        (k_d, t_d), (k_s, t_s) = total(exact), total(sparse)
        out["sparse_pairs_lost"] = k_d - k_s
        out["sparse_score_lost_pct"] = 100 * (t_d - t_s) / t_d if t_d else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    ap.add_argument("--one", nargs=2, metavar=("N", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(int(args.one[0]), args.one[1])
        return
    from matcher.tools.generate import generate_instance

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"gen{n}.json"
            path.write_text(json.dumps(generate_instance(n, seed=0)))
            res = subprocess.run(
                [sys.executable, __file__, "--one", str(n), str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row.update(peers(n, str(path)) if n <= 5000 else {})
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    fit = [(math.log(r["n"]), math.log(r["time_s"])) for r in rows if r["n"] >= 200]
    xs, ys = [x for x, _ in fit], [y for _, y in fit]
    slope = float(np.polyfit(xs, ys, 1)[0]) if len(fit) >= 2 else float("nan")
    print(
        "| participants | status | pairs | wait-listed | unmatched | time (s) | peak (MB) "
        "| verified | pairing stage (s) | our matching (s) | scipy LSA (s) | networkx (s) | "
        "candidate lists: "
        "pairs lost / score lost |"
    )
    print(
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    )

    def f(x: float | None, fmt: str = "{:.3f}") -> str:
        return "–" if x is None else fmt.format(x)

    for r in rows:
        lost = (
            f"{r['sparse_pairs_lost']} / {r['sparse_score_lost_pct']:.3f}%"
            if "sparse_pairs_lost" in r
            else "–"
        )
        print(
            f"| {r['n']} | {r['status']} | {r['pairs']} | {r['waitlisted']} | "
            f"{r['unmatched']} | {r['time_s']:.2f} | {r['peak_mb']:.0f} | {r['verified']} | "
            f"{f(r.get('ours_pairing_s'))} | {f(r.get('ours_matching_s'))} | "
            f"{f(r.get('scipy_lsa_s'))} | "
            f"{f(r.get('networkx_s'))} | {lost} |"
        )
    print(f"\nfitted growth exponent (time ~ n^k, sizes >= 200): k = {slope:.2f}")


if __name__ == "__main__":
    main()
