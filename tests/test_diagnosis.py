"""A plan that places nobody is never a success, and the reason given is the real one
(issue 11's D2 and D13; issue 7's named infeasibility)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from matcher import Infeasible, parse_instance, solve
from matcher.cli import main
from matcher.tools.generate import generate_instance
from tests.conftest import MAY2016, person
from tests.test_pipeline import cohort, instance, lone_pairs


def kinds(data: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(Infeasible) as caught:
        solve(parse_instance(data), **kw)
    assert caught.value.solution is not None
    assert not any(p.cohort for p in caught.value.solution.pairs)
    return [c.kind for c in caught.value.diagnosis]


@pytest.mark.parametrize("objective", ["total", "fair", "stable"])
def test_d2_every_capacity_zero_is_infeasible_under_every_objective(objective: str) -> None:
    data = json.loads(MAY2016.read_text())
    for c in data["cohorts"]:
        c["capacity_pairs"] = 0
    assert set(kinds(data, objective=objective)) == {"capacity"}


def test_d2_generated_intake_with_no_room_exits_4(tmp_path: Path) -> None:
    data = generate_instance(500, seed=0)
    for c in data["cohorts"]:
        c["capacity_pairs"] = 0
    path = tmp_path / "closed.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["solve", str(path), "--format", "json"])
    assert result.exit_code == 4
    assert "capacity 0" in result.output and "raise" in result.output


def test_d13_everyone_in_one_organisation_blames_the_organisation_rule() -> None:
    people = lone_pairs(3)
    for p in people:
        p["organisation"] = "one-trust"
    data = instance([cohort("c1", 8, lo=2, hi=4)], people)
    assert kinds(data) == ["one_organisation_per_set"]


def test_d13_two_pairs_with_sets_of_three_blames_the_set_size() -> None:
    data = instance([cohort("c1", 8, lo=3, hi=4)], lone_pairs(2))
    with pytest.raises(Infeasible) as caught:
        solve(parse_instance(data))
    [conflict] = caught.value.diagnosis
    assert conflict.kind == "set_size"
    assert "only 2 pairs can go there, fewer than one set of 3-4" in conflict.message


def test_d13_three_pairs_in_mutual_conflict_blame_the_conflicts() -> None:
    people = lone_pairs(3)
    people[0]["avoid"] = ["a1", "a2"]
    people[2]["avoid"] = ["a2"]
    data = instance([cohort("c1", 8, lo=2, hi=4)], people)
    assert kinds(data) == ["conflicts"]


def test_d13_no_common_cohort_blames_attendance() -> None:
    people = [
        person("a0", "patient_leader", "o1", partner="b0", attendance=["online"]),
        person("b0", "clinician", "o2", partner="a0"),
    ]
    data = instance([cohort("c1", 8, mode="in_person")], people)
    assert kinds(data) == ["attendance"]
