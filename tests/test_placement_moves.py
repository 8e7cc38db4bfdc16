"""Wait-listed pairs placed by moving placed pairs to other cohorts they can attend
(matcher.engine.placement.ceiling.place_by_moves): the augmenting path of the pairs-into-cohorts
flow, kept only when the set rules still hold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matcher.engine.placement.ceiling import place_by_moves
from matcher.engine.placement.model import Candidate, Placement
from matcher.intake.json_file import parse_instance
from tests.conftest import person


def _instance(orgs: dict[str, str]) -> Any:
    cohort = {"sessions": ["2026-05-12"], "capacity_pairs": 4, "mode": "in_person"}
    people = []
    for tag, org in orgs.items():
        people.append(person(f"pl{tag}", "patient_leader", f"{org}-a", partner=f"pr{tag}"))
        people.append(person(f"pr{tag}", "clinician", f"{org}-b", partner=f"pl{tag}"))
    return parse_instance(
        {
            "schema_version": "1",
            "name": "moves",
            "cohorts": [
                {"id": "c1", **cohort, "set_size": {"min_pairs": 3, "max_pairs": 4}},
                {"id": "c2", **cohort, "set_size": {"min_pairs": 3, "max_pairs": 4}},
            ],
            "participants": people,
        }
    )


def _plan(tags: str, options: Mapping[str, tuple[int, ...]], where: dict[str, int | None]) -> Any:
    cands = [Candidate(f"pl{t}", f"pr{t}", True, 0.5, options[t]) for t in tags]
    placement = Placement(
        formed=list(range(len(tags))),
        cohort_of={k: where[t] for k, t in enumerate(tags)},
        sets_in={},
        status="feasible",
        objective=None,
        bound=None,
        levels={"placed": sum(q is not None for q in where.values())},
    )
    return cands, placement


def test_a_waitlisted_pair_is_placed_by_moving_one_that_can_go_elsewhere() -> None:
    """c1 is full (a, b, c, d); e can attend only c1 and waits. a can attend c2 too, which
    holds three and has room for a fourth: a moves to c2 and e takes its place."""
    tags = "abcdfghe"
    instance = _instance({t: f"org{t}" for t in tags})
    options = {t: (0,) for t in "bcde"} | {"a": (0, 1)} | {t: (1,) for t in "fgh"}
    where: dict[str, int | None] = {t: 0 for t in "abcd"} | {t: 1 for t in "fgh"} | {"e": None}
    cands, placement = _plan(tags, options, where)
    after, note = place_by_moves(instance, cands, placement)
    got = {tags[k]: q for k, q in after.cohort_of.items()}
    assert got["e"] == 0 and got["a"] == 1
    assert sorted(t for t, q in got.items() if q == 0) == ["b", "c", "d", "e"]
    assert sorted(t for t, q in got.items() if q == 1) == ["a", "f", "g", "h"]
    assert after.levels["placed"] == 8
    assert note is not None and "1 wait-listed pairs placed by moving 1 placed pairs" in note


def test_no_move_that_would_break_one_organisation_per_set() -> None:
    """The same, but a shares an organisation with f: c2's four pairs would form one set
    holding both, so nothing moves and e stays wait-listed."""
    tags = "abcdfghe"
    orgs = {t: f"org{t}" for t in tags} | {"a": "shared", "f": "shared"}
    instance = _instance(orgs)
    options = {t: (0,) for t in "bcde"} | {"a": (0, 1)} | {t: (1,) for t in "fgh"}
    where: dict[str, int | None] = {t: 0 for t in "abcd"} | {t: 1 for t in "fgh"} | {"e": None}
    cands, placement = _plan(tags, options, where)
    after, note = place_by_moves(instance, cands, placement)
    assert after == placement and note is None


def test_nothing_waitlisted_nothing_changes() -> None:
    tags = "abc"
    instance = _instance({t: f"org{t}" for t in tags})
    cands, placement = _plan(tags, dict.fromkeys(tags, (0,)), dict.fromkeys(tags, 0))
    assert place_by_moves(instance, cands, placement) == (placement, None)
