"""solvers.grouping.patterns: the most elements grouped when each holds a set of resources.

Checked against brute force on small random inputs (every assignment of elements to groups),
for the rules on every returned grouping, and through the sets stage on a cohort whose
organisations the tabu search could not split (the mentor-match shape: few organisations,
hundreds of pairs)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from solvers.grouping import group_by_patterns


def _valid(resources: list[frozenset[int]], labels: np.ndarray, lo: int, hi: int) -> None:
    for g in range(int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0):
        members = np.flatnonzero(labels == g)
        assert lo <= len(members) <= hi, (g, members)
        used: set[int] = set()
        for i in members:
            assert not (resources[i] & used), f"group {g} shares a resource"
            used |= resources[i]


def _brute_force(resources: list[frozenset[int]], lo: int, hi: int) -> int:
    """Most elements in valid groups, over every labelling (n small)."""
    n = len(resources)
    best = 0
    for labels in itertools.product(range(-1, n // lo), repeat=n):
        sizes: dict[int, int] = {}
        ok = True
        used: dict[int, set[int]] = {}
        for i, g in enumerate(labels):
            if g < 0:
                continue
            sizes[g] = sizes.get(g, 0) + 1
            if resources[i] & used.setdefault(g, set()):
                ok = False
                break
            used[g] |= resources[i]
        if ok and all(lo <= s <= hi for s in sizes.values()):
            best = max(best, sum(sizes.values()))
    return best


@pytest.mark.parametrize("case", range(12))
def test_matches_brute_force_on_small_random_inputs(case: int) -> None:
    rng = random.Random(case)
    n = rng.randint(4, 7)
    orgs = rng.randint(3, 5)
    lo, hi = rng.choice([(2, 3), (2, 2), (3, 4)])
    resources = [frozenset(rng.sample(range(orgs), rng.randint(1, 2))) for _ in range(n)]
    found = group_by_patterns(resources, lo, hi)
    assert found is not None and found.proven
    _valid(resources, found.labels, lo, hi)
    assert int((found.labels >= 0).sum()) == _brute_force(resources, lo, hi)


def test_splits_everyone_where_a_split_exists_and_is_deterministic() -> None:
    # 6 organisations, 150 elements: 50 sets of three, each covering all six
    rng = random.Random(7)
    resources = []
    for _ in range(50):
        orgs = list(range(6))
        rng.shuffle(orgs)
        resources += [frozenset(orgs[k : k + 2]) for k in (0, 2, 4)]
    rng.shuffle(resources)
    first = group_by_patterns(resources, 3, 4, seed=3)
    again = group_by_patterns(resources, 3, 4, seed=3)
    assert first is not None and again is not None
    assert (first.labels >= 0).all() and first.proven
    assert np.array_equal(first.labels, again.labels)
    _valid(resources, first.labels, 3, 4)


def test_too_many_patterns_gives_none_and_bad_sizes_raise() -> None:
    resources = [frozenset({i}) for i in range(40)]  # every element its own organisation
    assert group_by_patterns(resources, 3, 4, max_patterns=100) is None
    with pytest.raises(ValueError, match="lo <= hi"):
        group_by_patterns(resources, 4, 3)
    empty = group_by_patterns([], 3, 4)
    assert empty is not None and empty.n_groups == 0


def test_sets_stage_groups_every_pair_the_patterns_allow() -> None:
    """A cohort of 60 pairs from 6 organisations where only one organisation per set holds:
    the sets stage groups all of them when a split exists (checked with the rules)."""
    from matcher.contract.instance import Instance
    from matcher.engine.sets import _by_patterns, form_sets

    rng = random.Random(11)
    people: list[dict[str, object]] = []
    orgs = ["a", "b", "c", "d", "e", "f"]
    pairs: list[tuple[str, str]] = []
    for _ in range(20):
        order = orgs[:]
        rng.shuffle(order)
        for k in (0, 2, 4):
            i = len(pairs)
            for pid, role, org in (
                (f"pl{i}", "patient_leader", order[k]),
                (f"cl{i}", "clinician", order[k + 1]),
            ):
                people.append(
                    {
                        "id": pid,
                        "role": role,
                        "organisation": org,
                        "organisation_type": "trust",
                        "system": "north",
                        "available_cohorts": ["c1"],
                    }
                )
            pairs.append((f"pl{i}", f"cl{i}"))
    instance = Instance.model_validate(
        {
            "schema_version": "1",
            "name": "orgs",
            "cohorts": [
                {
                    "id": "c1",
                    "name": "Cohort 1",
                    "mode": "online",
                    "sessions": ["2026-01-05"],
                    "capacity_pairs": 60,
                    "set_size": {"min_pairs": 3, "max_pairs": 4},
                }
            ],
            "participants": people,
        }
    )
    by_id = instance.participants_by_id()
    duos = [(by_id[a], by_id[b]) for a, b in pairs]
    exact = _by_patterns(instance, instance.cohorts[0], duos, seed=0)
    assert exact is not None and exact[0] == list(range(60)) and exact[2] == "exact"
    out = form_sets(instance, instance.cohorts[0], duos, seed=0)
    assert not out.dropped
    assert sorted(k for s in out.sets for k in s) == list(range(60))
    for group in out.sets:
        assert 3 <= len(group) <= 4
        seen: set[str] = set()
        for k in group:
            o = {duos[k][0].organisation, duos[k][1].organisation}
            assert not (o & seen)
            seen |= o
