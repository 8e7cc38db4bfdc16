"""Shared fixtures: every solve in the suite verified, a tiny hand-checkable intake and helpers
to write instance files."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
MAY2016 = REPO / "instances" / "may2016.json"


def pythonpath() -> str:
    """PYTHONPATH for a subprocess: the tests' root first (for ``tests`` imports, and the
    checkout's matcher when the suite runs from a checkout), then the caller's own."""
    return os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])


def pytest_report_header() -> str:
    """Which matcher is under test: the checkout, or (in CI) the installed package."""
    import matcher

    return f"matcher under test: {Path(matcher.__file__).parent}"


def verifying(make_plan: Callable[..., Any], seen: list[object]) -> Callable[..., Any]:
    """``make_plan`` with each plan it returns checked by the independent verifier (with the
    previous plan, for a re-plan), and the all-wait-listed plan an
    :class:`matcher.errors.Infeasible` carries (only its status may be off). A plan that fails
    fails the test with the verifier's report, through the library's own error guard
    (``pytest.fail`` raises no ``Exception``). Plans verified are appended to ``seen``."""
    from matcher.engine.replan import load_previous
    from matcher.errors import Infeasible
    from matcher.verification.verify import verify

    def verified(instance: Any, **kwargs: Any) -> Any:
        try:
            plan = make_plan(instance, **kwargs)
        except Infeasible as exc:
            if exc.solution is not None:
                report = verify(instance, exc.solution)
                if not report.rules() <= {"status"}:
                    pytest.fail(f"the plan of an Infeasible error fails verification:\n{report}")
                seen.append(exc.solution)
            raise
        previous = kwargs.get("previous")
        report = verify(
            instance, plan, previous=None if previous is None else load_previous(previous)
        )
        if not report.ok:
            pytest.fail(f"solve() returned a plan that fails verification:\n{report}")
        seen.append(plan)
        return plan

    return verified


@pytest.fixture(autouse=True)
def every_solve_verified(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every plan that :func:`matcher.solve` returns in any test is verified (:func:`verifying`).

    The wrapper sits on ``matcher.engine.assemble.make_plan``, which ``solve`` looks up on each
    call: every reference to ``solve`` (``from matcher import solve``, the CLI run in-process,
    the engine's module) goes through it, where patching ``solve`` itself would miss a test
    module that already holds the function. Returns the plans verified so far, in order."""
    from matcher.engine import assemble

    seen: list[object] = []
    monkeypatch.setattr(assemble, "make_plan", verifying(assemble.make_plan, seen))
    return seen


def person(pid: str, role: str, org: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": pid,
        "role": role,
        "organisation": org,
        "organisation_type": kw.pop("organisation_type", "ccg"),
        "system": kw.pop("system", "surrey-heartlands"),
        "interests": kw.pop("interests", []),
        "project_topics": kw.pop("project_topics", []),
        "partner": kw.pop("partner", None),
        "avoid": kw.pop("avoid", []),
    }
    base.update(kw)
    return base


def tiny_data() -> dict[str, Any]:
    """Two cohorts (one online), one pre-formed pair, three lone patient leaders and two lone
    professionals. pl3 can attend online only and no lone professional can: pl3 is unmatched.
    pl1 and pr1 share two interests and a system; pl2 and pr2 share one interest."""
    return {
        "schema_version": "1",
        "name": "tiny",
        "cohorts": [
            {
                "id": "c1",
                "sessions": ["2016-05-12", "2016-06-16"],
                "capacity_pairs": 4,
                "mode": "in_person",
                "set_size": {"min_pairs": 1, "max_pairs": 4},
            },
            {
                "id": "c2",
                "sessions": ["2016-05-19"],
                "capacity_pairs": 4,
                "mode": "online",
                "set_size": {"min_pairs": 1, "max_pairs": 4},
            },
        ],
        "participants": [
            person("pl0", "patient_leader", "hw-a", partner="pr0", interests=["carers"]),
            person("pr0", "clinician", "trust-a", partner="pl0", interests=["carers"]),
            person("pl1", "patient_leader", "ppg-b", interests=["diabetes", "frailty"]),
            person("pl2", "patient_leader", "hw-c", interests=["dementia"], system="frimley"),
            person(
                "pl3",
                "patient_leader",
                "hw-d",
                attendance=["online"],
                interests=["diabetes", "frailty"],
            ),
            person(
                "pr1",
                "manager",
                "ccg-e",
                interests=["diabetes", "frailty"],
                attendance=["in_person"],
            ),
            person(
                "pr2",
                "clinician",
                "trust-f",
                interests=["dementia", "maternity"],
                attendance=["in_person"],
            ),
        ],
    }


@pytest.fixture
def tiny() -> dict[str, Any]:
    return copy.deepcopy(tiny_data())


def write(tmp_path: Path, data: Any, name: str = "inst.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path
