"""Set rules under pressure: few organisations, bounds in numbers, never an internal error.

Fixtures are pre-formed pairs in one cohort whose organisations are chosen so the arithmetic can
be checked by hand: with sets of 3 pairs and one organisation per set, an organisation in ``c``
pairs needs at least ``c`` sets, and ``n`` pairs make at most ``n // 3`` sets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from matcher import load_instance, solve, verify
from matcher.engine.sets import check_set_rules, form_sets
from matcher.intake.json_file import parse_instance
from tests.conftest import REPO, person

Data = dict[str, Any]


def one_cohort(pl_orgs: list[str], pro_orgs: list[str], *, hard: bool = True) -> Data:
    """Pre-formed pairs ``pl<i>``-``pr<i>``; patient leader i from ``pl_orgs[i]``, partner from
    ``pro_orgs[i]``; one online cohort with room for all, sets of exactly 3 pairs."""
    people = []
    for i, (a, b) in enumerate(zip(pl_orgs, pro_orgs, strict=True)):
        people.append(person(f"pl{i:03d}", "patient_leader", a, partner=f"pr{i:03d}"))
        people.append(person(f"pr{i:03d}", "clinician", b, partner=f"pl{i:03d}"))
    return {
        "schema_version": "1",
        "name": "few-orgs",
        "cohorts": [
            {
                "id": "c1",
                "sessions": ["2016-05-12"],
                "capacity_pairs": len(pl_orgs),
                "mode": "online",
                "set_size": {"min_pairs": 3, "max_pairs": 3},
            }
        ],
        "participants": people,
        "rules": {"one_organisation_per_set": "hard" if hard else "soft"},
    }


def duos_of(data: Data) -> tuple[Any, list[Any]]:
    inst = parse_instance(data)
    people = inst.participants_by_id()
    n = len(inst.participants) // 2
    return inst, [(people[f"pl{i:03d}"], people[f"pr{i:03d}"]) for i in range(n)]


def test_check_set_rules_counts_organisations_and_sets() -> None:
    """12 pairs, organisation X in 6 of them (others distinct): 12 pairs make at most 4 sets of
    3, so at most 4 X-pairs fit, and at most 4 + 6 = 10 pairs, but 10 pairs make 3 sets, so
    3 X-pairs + 6 = 9 pairs in 3 sets."""
    pl = ["x"] * 6 + [f"o{i}" for i in range(6)]
    pro = [f"p{i}" for i in range(12)]
    inst, duos = duos_of(one_cohort(pl, pro))
    check = check_set_rules(inst, inst.cohorts[0], duos)
    assert check.busiest == ("x", 6)
    assert check.most_sets == 4
    assert check.bound == 9 and check.groups == 3


def test_form_sets_drops_to_the_bound_with_the_reason_in_numbers() -> None:
    """Same 12 pairs: 9 are grouped in 3 sets (the bound, so proven the most), 3 X-pairs are
    dropped, and the reason gives the organisation, its count, the bound and the remedy."""
    pl = ["x"] * 6 + [f"o{i}" for i in range(6)]
    pro = [f"p{i}" for i in range(12)]
    inst, duos = duos_of(one_cohort(pl, pro))
    result = form_sets(inst, inst.cohorts[0], duos)
    assert len(result.sets) == 3 and all(len(s) == 3 for s in result.sets)
    assert len(result.dropped) == 3 and all(pl[i] == "x" for i in result.dropped)
    for members in result.sets:
        assert sum(pl[i] == "x" for i in members) <= 1
    reason = next(iter(result.dropped.values()))
    assert "organisation x is in 6 of them" in reason
    assert "at most 9 of the 12 pairs can be grouped (9 grouped, the most possible)" in reason
    assert "one_organisation_per_set to 'soft'" in reason


def test_form_sets_soft_rule_groups_everyone() -> None:
    """The same pairs under the soft rule: no pair is dropped."""
    pl = ["x"] * 6 + [f"o{i}" for i in range(6)]
    pro = [f"p{i}" for i in range(12)]
    inst, duos = duos_of(one_cohort(pl, pro, hard=False))
    result = form_sets(inst, inst.cohorts[0], duos)
    assert result.dropped == {} and sum(len(s) for s in result.sets) == 12


def test_form_sets_large_few_organisation_cohort_is_bounded() -> None:
    """300 pairs, two organisations per side (sets of 3 can hold at most 2 pairs: no valid set
    at all): everything is dropped at once by the bound, with no search."""
    rng = np.random.default_rng(0)
    pl = [f"a{int(v)}" for v in rng.integers(2, size=300)]
    pro = [f"b{int(v)}" for v in rng.integers(2, size=300)]
    inst, duos = duos_of(one_cohort(pl, pro))
    check = check_set_rules(inst, inst.cohorts[0], duos)
    assert check.bound == 0
    result = form_sets(inst, inst.cohorts[0], duos)
    assert result.sets == [] and len(result.dropped) == 300


def few_orgs_data(pairs: int, seed: int = 0) -> Data:
    """``pairs`` pre-formed pairs, three organisations per side, one taking about half."""
    rng = np.random.default_rng(seed)
    pick = [0.52, 0.24, 0.24]
    pl = [f"pl-org-{int(rng.choice(3, p=pick))}" for _ in range(pairs)]
    pro = [f"pro-org-{int(rng.choice(3, p=pick))}" for _ in range(pairs)]
    data = one_cohort(pl, pro)
    data["cohorts"][0]["set_size"] = {"min_pairs": 3, "max_pairs": 4}
    return data


def test_few_organisations_no_internal_error_no_grouping_found(tmp_path: Path) -> None:
    """Regression: a cohort of pairs from three organisations per side exited 1 with
    "internal error: no grouping found for N pairs". Now `matcher solve` exits 0 with a
    verified plan; the wait-listed pairs' reasons name the organisation and the count, and
    suggest the soft rule."""
    path = tmp_path / "few.json"
    path.write_text(json.dumps(few_orgs_data(90)))
    out = tmp_path / "plan.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, "-m", "matcher", "solve", str(path), "--format", "json", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "internal error" not in res.stderr
    plan = json.loads(out.read_text())
    placed = [p for p in plan["pairs"] if p["cohort"]]
    assert placed and all(p["learning_set"] for p in placed)
    assert plan["waitlist"], "three organisations per side cannot fill sets of 4: some wait"
    for item in plan["waitlist"]:
        assert "one_organisation_per_set to 'soft'" in item["reason"]
        assert "a set holds at most one pair per organisation" in item["reason"]
    inst = load_instance(path)
    from matcher.contract.solution import Solution

    assert verify(inst, Solution.model_validate(plan)).ok


def test_few_organisations_library_solve_verified() -> None:
    """The same shape through the library, 150 pairs: verified, every placed pair in a set,
    no set with two pairs of one organisation."""
    inst = parse_instance(few_orgs_data(150, seed=1))
    sol = solve(inst)
    assert verify(inst, sol).ok
    people = inst.participants_by_id()
    orgs: dict[str, list[str]] = {}
    for p in sol.pairs:
        if p.learning_set:
            for pid in (p.patient_leader, p.partner):
                orgs.setdefault(p.learning_set, []).append(people[pid].organisation)
    assert orgs and all(len(v) == len(set(v)) for v in orgs.values())


def test_few_organisations_bound_is_the_set_rule_bound() -> None:
    """Only pre-formed pairs can reach the cohort, so the ceiling holds them to what one
    organisation per set allows (the same figure the wait-list reasons give): the plan places
    exactly that many, so the gap is 0: no plan places more."""
    inst = parse_instance(few_orgs_data(150, seed=1))
    sol = solve(inst)
    placed = sum(p.cohort is not None for p in sol.pairs)
    assert placed < 150
    assert sol.run.bound == placed
    assert sol.run.gap == 0
    bounds = {int(m) for w in sol.waitlist for m in re.findall(r"at most (\d+) of the", w.reason)}
    assert bounds == {placed}


def test_complete_pairing_pairs_people_a_cut_budget_left_unpaired() -> None:
    """Regression (mentor-match 500 + 500): the repair model, cut by its budget, left people
    unpaired who could be paired and the plan failed verification. complete_pairing forms an
    optimal matching among the unpaired lone applicants; the new pairs are wait-listed and the
    placement is otherwise unchanged. Here nothing was formed: the tiny intake's lone applicants
    (pl1, pl2 with pr1, pr2) are all paired, none placed."""
    from matcher.engine.pairing import pair_lone_applicants
    from matcher.engine.placement.ceiling import complete_pairing
    from matcher.engine.placement.model import Placement
    from tests.conftest import tiny_data

    inst = parse_instance(tiny_data())
    pairing = pair_lone_applicants(inst)
    empty = Placement([], {}, {}, "optimal", None, None)
    cands, placement, note = complete_pairing(inst, pairing, [], empty)
    assert note is not None and placement.status == "feasible"
    pairs = {(c.patient_leader, c.partner) for c in cands}
    assert len(pairs) == len(pairing.matched_rows) == 2
    assert all(placement.cohort_of[k] is None for k in placement.formed)
    # nothing more to add once everyone who can be paired is
    again = complete_pairing(inst, pairing, cands, placement)
    assert again[2] is None and again[1] is placement


def test_help_and_validate_import_no_heavy_module(tmp_path: Path) -> None:
    """Fast first experience: `matcher --help` imports neither numpy, numba, OR-Tools, the
    bench module nor pydantic and the models; `matcher validate` none of numpy, numba, OR-Tools,
    pandas or the bench module, while it does run rapidfuzz's near-duplicate check (tiny.json
    has several organisations to compare). Measured in benchmarks/results/cold_start.md."""
    path = tmp_path / "tiny.json"
    from tests.conftest import tiny_data

    path.write_text(json.dumps(tiny_data()))
    probe = (
        "import sys\n"
        "from matcher.cli import main\n"
        "sys.argv = ['matcher', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "watched = ['numpy', 'numba', 'ortools', 'pandas', 'matcher.tools.bench', 'pydantic',\n"
        "           'matcher.contract.instance', 'matcher.verification.verify', 'rapidfuzz']\n"
        "print('LOADED', [m for m in watched if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    expected = {
        "--help": "[]",
        "validate": "['pydantic', 'matcher.contract.instance', 'rapidfuzz']",
    }
    for args in (["--help"], ["validate", str(path)]):
        res = subprocess.run(
            [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True
        )
        assert f"LOADED {expected[args[0]]}" in res.stdout, (args, res.stdout, res.stderr)


def test_bench_choices_match_the_bench_registries() -> None:
    """The CLI lists the bench executors without importing matcher.tools.bench: the names must stay
    those of its registry."""
    from matcher.cli import tools as cli
    from matcher.tools import bench

    assert tuple(cli.BENCH_EXECUTORS) == tuple(bench.EXECUTORS)
