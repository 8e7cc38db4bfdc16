"""Pairing objectives (total, fair, stable) against brute force and oracles; metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import matcher
from matcher import load_instance, parse_instance, solve, verify
from matcher.contract.solution import Metrics, Solution
from matcher.engine import objectives
from matcher.engine.metrics import MIN_GROUP, blocking_pairs, solution_metrics
from matcher.engine.objectives import Objective, Proposer
from matcher.engine.pairing import (
    TIE_TOLERANCE,
    _fair,
    _total,
    pair_lone_applicants,
    scan_lone,
)
from matcher.tools.generate import generate_instance
from tests.conftest import MAY2016, person
from tests.test_pipeline import cohort, instance


def metrics(sol: Solution) -> Metrics:
    """The plan's metrics (every solve computes them)."""
    assert sol.metrics is not None
    return sol.metrics


def as_candidates(
    scores: np.ndarray, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    ii, jj = np.nonzero(allowed)
    return ii, jj, scores[ii, jj], scores.shape


def all_matchings(allowed: np.ndarray) -> list[list[tuple[int, int]]]:
    n, m = allowed.shape
    out: list[list[tuple[int, int]]] = []

    def extend(i: int, used: frozenset[int], cur: list[tuple[int, int]]) -> None:
        if i == n:
            out.append(list(cur))
            return
        extend(i + 1, used, cur)
        for j in range(m):
            if allowed[i, j] and j not in used:
                extend(i + 1, used | {j}, [*cur, (i, j)])

    extend(0, frozenset(), [])
    return out


matrices = st.integers(0, 5).flatmap(
    lambda n: st.integers(0, 5).flatmap(
        lambda m: st.tuples(
            st.lists(
                st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=n * m, max_size=n * m
            ).map(lambda v: np.array(v).reshape(n, m)),
            st.lists(st.booleans(), min_size=n * m, max_size=n * m).map(
                lambda v: np.array(v, dtype=bool).reshape(n, m)
            ),
        )
    )
)


@settings(max_examples=200, deadline=None)
@given(matrices)
def test_fair_is_lexicographic_optimum(case: tuple[np.ndarray, np.ndarray]) -> None:
    scores, allowed = case
    got, floor = _fair(*as_candidates(scores, allowed))
    cands = all_matchings(allowed)
    best_k = max(len(c) for c in cands)
    top = [c for c in cands if len(c) == best_k]
    best_min = max((min(scores[i, j] for i, j in c) if c else np.inf) for c in top)
    top = [c for c in top if (min(scores[i, j] for i, j in c) if c else np.inf) == best_min]
    best_total = max(sum(scores[i, j] for i, j in c) for c in top)
    assert len(got) == best_k
    assert floor == (best_min if best_k else None)
    assert min((scores[i, j] for i, j in got), default=np.inf) == best_min
    total = sum(scores[i, j] for i, j in got)
    assert total == pytest.approx(best_total, abs=best_k * TIE_TOLERANCE + 1e-9)
    assert all(allowed[i, j] for i, j in got)


@settings(max_examples=200, deadline=None)
@given(matrices)
def test_total_against_scipy(case: tuple[np.ndarray, np.ndarray]) -> None:
    scores, allowed = case
    got = _total(*as_candidates(scores, allowed))
    cands = all_matchings(allowed)
    best_k = max(len(c) for c in cands)
    assert len(got) == best_k
    # scipy oracle: a forbidden pair costs more than any max-cardinality gain (nothing allowed:
    # both totals are 0)
    big = 1e6
    cost = np.where(allowed, -(scores + big), 0.0)
    r, c = linear_sum_assignment(cost)
    ref = sum(scores[i, j] for i, j in zip(r, c, strict=True) if allowed[i, j])
    assert sum(scores[i, j] for i, j in got) == pytest.approx(
        ref, abs=best_k * TIE_TOLERANCE + 1e-9
    )


def _instance_from(scores_people: list[dict[str, Any]], **extra: Any) -> Any:
    return parse_instance(instance([cohort("c1", 20, lo=1, hi=4)], scores_people, **extra))


def test_stable_has_no_blocking_pairs_and_honours_stated_preferences() -> None:
    people = [
        person("a1", "patient_leader", "o1", interests=["x", "y"], preferences=["b2", "b1"]),
        person("a2", "patient_leader", "o2", interests=["z"]),
        person("b1", "clinician", "o3", interests=["x", "y"]),
        person("b2", "clinician", "o4", interests=["z"], preferences=["a1", "a2"]),
    ]
    inst = _instance_from(people)
    total = solve(inst, objective="total")
    stable = solve(inst, objective="stable")
    assert verify(inst, stable).ok
    pairs = {(p.patient_leader, p.partner) for p in stable.pairs}
    assert ("a1", "b2") in pairs  # mutual first choices, whatever the scores say
    assert {(p.patient_leader, p.partner) for p in total.pairs} == {("a1", "b1"), ("a2", "b2")}


@pytest.mark.parametrize("proposer", ["patient_leader", "professional"])
def test_stable_on_generated_instance(proposer: Proposer) -> None:
    from matcher.tools.generate import generate_instance

    inst = parse_instance(generate_instance(120, seed=3))
    sol = solve(inst, objective="stable", proposer=proposer)
    assert verify(inst, sol).ok
    assert metrics(sol).blocking_pairs == 0
    assert blocking_pairs(inst, sol) == []


def test_objectives_on_may2016_and_prices() -> None:
    inst = load_instance(MAY2016)
    sols = {o: solve(inst, objective=o) for o in ("total", "fair", "stable")}
    for o, sol in sols.items():
        assert verify(inst, sol).ok, o
        assert sol.run.objective == o
    lone = {o: metrics(s).scores.lone_pairs.model_dump() for o, s in sols.items()}
    assert lone["total"]["total"] >= lone["fair"]["total"] - 1e-9
    assert lone["total"]["total"] >= lone["stable"]["total"] - 1e-9
    assert (lone["fair"]["min"] or 0) >= (lone["total"]["min"] or 0) - 1e-9
    assert lone["fair"]["count"] == lone["total"]["count"]


def test_unknown_objective_lists_valid_names() -> None:
    inst = load_instance(MAY2016)
    with pytest.raises(ValueError, match="total, fair, stable"):
        pair_lone_applicants(inst, objective="best")


# --- metrics ------------------------------------------------------------------------------


def test_metrics_hand_checked() -> None:
    inst = load_instance(MAY2016)
    sol = solve(inst)
    m = metrics(sol).model_dump()
    assert m["people"]["patient_leaders"] == {
        "participants": 28,
        "paired": 24,
        "placed": 24,
        "waitlisted": 0,
        "unmatched": 4,
    }
    assert m["people"]["professionals"]["unmatched"] == 0
    scores = [p.score for p in sol.pairs]
    assert m["scores"]["all_pairs"]["mean"] == pytest.approx(np.mean(scores), abs=1e-6)
    assert m["scores"]["all_pairs"]["min"] == pytest.approx(min(scores))
    assert m["cohort_fill"]["c1"]["capacity"] == 12
    assert m["sets"]["count"] == len(sol.learning_sets or [])
    for group in m["by_system"].values():
        assert group["mean_score"] == "suppressed" or group["people"] >= MIN_GROUP
    assert 0 <= m["top3_share"] <= 1


def test_blocking_pair_counted() -> None:
    people = [
        person("a1", "patient_leader", "o1", interests=["x"]),
        person("a2", "patient_leader", "o2", interests=["y"]),
        person("b1", "clinician", "o3", interests=["x"]),
        person("b2", "clinician", "o4", interests=["y"]),
    ]
    inst = _instance_from(people)
    sol = solve(inst)
    assert blocking_pairs(inst, sol) == []
    swapped = sol.model_copy(
        update={
            "pairs": [
                sol.pairs[0].model_copy(update={"partner": "b2"}),
                sol.pairs[1].model_copy(update={"partner": "b1"}),
            ]
        }
    )
    assert set(blocking_pairs(inst, swapped)) == {("a1", "b1"), ("a2", "b2")}


@pytest.mark.parametrize("objective", ["total", "stable"])
def test_blocking_pairs_from_the_scans_pairs_equal_scoring_again(objective: Objective) -> None:
    """The metrics read the blocking pairs off the pairing scan's pairs when it kept every
    allowed one (no second scoring of all lone pairs): the same list, in the same order, as
    scoring them again, for a plan with blocking pairs planted (partners rotated) and not."""
    inst = parse_instance(generate_instance(300, seed=2))
    sol = solve(inst, objective=objective)
    scan = scan_lone(inst)
    assert scan.every_allowed and len(scan.cand_rows) > 1000
    lone = [p for p in sol.pairs if not p.preformed]
    rotated = [
        p.model_copy(update={"partner": lone[(k + 1) % len(lone)].partner})
        for k, p in enumerate(lone)
    ]
    for plan in (sol, sol.model_copy(update={"pairs": rotated})):
        every = (scan.cand_rows, scan.cand_cols, scan.cand_scores)
        fast = blocking_pairs(inst, plan, sides=(scan.rows, scan.cols), all_allowed=every)
        assert fast == blocking_pairs(inst, plan, sides=(scan.rows, scan.cols))
    assert fast, "rotating the partners plants blocking pairs"
    assert solution_metrics(inst, sol, scan)["blocking_pairs"] == len(blocking_pairs(inst, sol))


def test_top3_share_counts_ties() -> None:
    people = [person(f"a{i}", "patient_leader", f"o{i}") for i in range(5)] + [
        person(f"b{i}", "clinician", f"q{i}") for i in range(5)
    ]
    sol = solve(_instance_from(people))
    assert metrics(sol).top3_share == 1.0  # all scores equal: everyone got a top choice


def test_brute_force_helper_sanity() -> None:
    assert len(all_matchings(np.ones((2, 2), dtype=bool))) == 7  # incl. the empty matching
    assert all_matchings(np.zeros((1, 1), dtype=bool)) == [[]]


@pytest.mark.parametrize("objective", ["total", "fair", "stable"])
def test_candidate_lists_path_on_large_intakes(
    monkeypatch: pytest.MonkeyPatch, objective: Objective
) -> None:
    """Forcing the candidate-list path (as on national-scale intakes) keeps every rule, stays
    maximal, and on `total` loses little score against the exact dense pairing."""
    import matcher.engine.pairing as pairing
    from matcher.tools.generate import generate_instance

    inst = parse_instance(generate_instance(400, seed=4, preformed_share=0.2))
    exact = solve(inst, objective=objective)
    monkeypatch.setattr(pairing, "DENSE_MAX_CELLS", 10)
    monkeypatch.setattr(pairing, "CANDIDATES_PER_PERSON", 5)
    sparse = solve(inst, objective=objective)
    assert verify(inst, sparse).ok  # includes: no two unmatched people who could be paired
    assert sparse.status == "feasible"
    assert any("best candidates" in n for n in sparse.run.notes)
    lone = lambda s: metrics(s).scores.lone_pairs.model_dump()  # noqa: E731
    if objective == "total":
        assert lone(sparse)["count"] >= lone(exact)["count"] - 2
        assert lone(sparse)["total"] >= 0.97 * lone(exact)["total"]


# --- the registry ---------------------------------------------------------------------------


def test_the_registry_is_the_objective_names_in_order() -> None:
    """The registry holds one object per name the library, CLI and benchmark accept, in their
    order; `total` is the reference the others are priced against."""
    assert tuple(objectives.REGISTRY) == objectives.OBJECTIVES
    assert all(o.name == name for name, o in objectives.REGISTRY.items())
    assert objectives.REFERENCE.name == "total" and objectives.REFERENCE.price_field is None
    prices = [o.price_field for o in objectives.REGISTRY.values() if o is not objectives.REFERENCE]
    assert prices == ["price_of_fairness_pct", "price_of_stability_pct"]
    with pytest.raises(ValueError, match="total, fair, stable"):
        objectives.objective_named("best")


@dataclass(frozen=True)
class OnePair:
    """A made-up objective: the fair matching's first pair only (to show the protocol)."""

    name: str = "one-pair"
    summary: str = "a single pair"
    why_not_paired: str = "only one pair is formed"
    always_exact: bool = False
    re_pairs: bool = False
    most_pairs: bool = False
    price_field: str | None = None

    def match(self, kernels: objectives.MatchingKernels, proposer: str) -> objectives.MatchResult:
        matched, worst, proven = kernels.most_pairs_best_worst()
        return objectives.MatchResult(matched[:1], worst, proven)


def test_an_objective_is_any_object_of_the_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pairing stage asks the registered object, never its name: a new objective in the
    registry pairs by its own `match`, and its words reach the unmatched reasons."""
    made_up: objectives.PairingObjective = OnePair()
    monkeypatch.setitem(objectives.REGISTRY, made_up.name, made_up)
    inst = load_instance(MAY2016)
    pairing = pair_lone_applicants(inst, objective=made_up.name)
    assert pairing.kind is made_up
    assert sum(not pre for *_, pre in pairing.pairs) == 1
    assert pairing.bottleneck is not None


#: Lines that use one of the words in another sense (a set-diversity rule, a score sum).
OTHER_SENSES = {
    ("matcher/contract/instance.py", 'set_diversity: Literal["total", "least_first"] = Field('),
    ("matcher/engine/metrics.py", '"total": round(sum(values), 6),'),
    (
        "matcher/engine/metrics.py",
        'return {"count": 0, "total": 0.0, "mean": None, "median": None, "min": None}',
    ),
    ("matcher/contract/instance.py", '"total",'),  # set_diversity's default, the line after
    ("matcher/intake/spreadsheet.py", '"rules.set_diversity": ("total", "least_first"),'),
}
#: numpy's sort order, taken out of a line before the search.
NUMPY_SORT = 'kind="stable"'

_NAMES = "|".join(objectives.OBJECTIVES)
#: An objective's name compared (==, !=, in, a tuple or set of names), indexed, used as a key,
#: or given as a default: each is a behaviour chosen by name.
NAME_USE = re.compile(
    rf"""(==|!=|\bin|\[|:|\bor|=|,)\s*[(\[{{]?\s*["']({_NAMES})["']"""
    rf"""|["']({_NAMES})["']\s*(==|!=|:|,)"""
)


@pytest.mark.parametrize(
    "line",
    [
        'if pairing.objective == "stable":',
        'balance_when_short=pairing.objective == "stable",',
        'if objective in ("total", "fair"):',
        "if r['objective'] != 'fair':",
        'return CHOICE["fair"]',
        'CHOICE = {"total": "pairing differently ...",',
        'baseline = ("default", "total")',
        'objective = form.get("objective") or "total"',
        'objective: str = "total"',
    ],
)
def test_the_search_finds_a_name_compared(line: str) -> None:
    """The search below can fail: each of these lines (the forms the old code had) is found."""
    assert NAME_USE.search(line)


def test_no_objective_name_is_compared_outside_the_registry() -> None:
    """A search of the package (code and page templates) for an objective's name compared,
    indexed, used as a key or as a default finds only the registry, the verifier's own
    independent restatement of `stable`, and the words used in other senses (listed)."""
    package = Path(matcher.__file__).parent  # the checkout's, or the installed wheel's
    found = []
    files = [*package.rglob("*.py"), *package.rglob("*.j2")]
    assert len(files) > 50
    for path in sorted(files):
        rel = path.relative_to(package.parent).as_posix()
        if rel in ("matcher/engine/objectives.py", "matcher/verification/verify.py"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0].replace(NUMPY_SORT, "")
            if NAME_USE.search(code) and (rel, line.strip()) not in OTHER_SENSES:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert found == []
