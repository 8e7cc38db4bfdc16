"""One cohort where one organisation per set is what keeps pairs out (the mentor-match shape):
the organisation-quota re-pairing places every pair, and the sets stage groups them all.

90 + 90 applicants, one online cohort: 90 pairs make at most 30 sets, so an organisation can be
in at most 30 pairs, while one organisation has 50 people (25 on each side). The optimal
matching pairs across organisations (the interests below reward it), so it places fewer; the
plan must pair at least 20 of that organisation's people with each other and place all 90."""

from __future__ import annotations

import random
from typing import Any

from matcher.contract.instance import Instance
from matcher.engine.solve import solve

ORGS = ["big", "b", "c", "d", "e", "f", "g"]


def _instance() -> Instance:
    rng = random.Random(4)
    people: list[dict[str, Any]] = []
    for side, role in (("pl", "patient_leader"), ("cl", "clinician")):
        orgs = ["big"] * 25 + [ORGS[1 + k % 6] for k in range(65)]
        for i, org in enumerate(orgs):
            people.append(
                {
                    "id": f"{side}{i:03d}",
                    "role": role,
                    "organisation": org,
                    "organisation_type": "trust",
                    "system": "north",
                    "interests": sorted(rng.sample(["a", "b", "c", "d", "e", "f"], 2)),
                    "available_cohorts": ["c1"],
                }
            )
    return Instance.model_validate(
        {
            "schema_version": "1",
            "name": "quota",
            "cohorts": [
                {
                    "id": "c1",
                    "name": "Online",
                    "mode": "online",
                    "sessions": ["2026-01-05"],
                    "capacity_pairs": 90,
                    "set_size": {"min_pairs": 3, "max_pairs": 3},
                }
            ],
            "rules": {"same_organisation": "avoid", "one_organisation_per_set": "hard"},
            "participants": people,
        }
    )


def test_every_pair_placed_and_grouped_when_the_quota_allows() -> None:
    instance = _instance()
    plan = solve(instance, seed=0)
    people = instance.participants_by_id()
    placed = [p for p in plan.pairs if p.cohort is not None]
    assert len(plan.pairs) == 90
    assert len(placed) == 90, plan.run.notes
    assert not plan.waitlist
    assert plan.run.bound == 90
    assert any(n.startswith("organisation quota") for n in plan.run.notes), plan.run.notes
    # at most 30 pairs touch the big organisation: at least 20 of its people paired inside it
    touching = [
        p
        for p in placed
        if "big" in {people[p.patient_leader].organisation, people[p.partner].organisation}
    ]
    assert len(touching) <= 30
    # every set holds one pair per organisation (the verifier checks it too)
    by_pair = {p.id: p for p in plan.pairs}
    assert plan.learning_sets is not None
    for s in plan.learning_sets:
        orgs: list[str] = []
        for pid in s.pairs:
            pair = by_pair[pid]
            orgs += sorted(
                {people[pair.patient_leader].organisation, people[pair.partner].organisation}
            )
        assert len(orgs) == len(set(orgs))
