"""The library contract for admin tools (issue 9): valid-by-construction instances, one error
family, typed parameters, progress and cancel, logging, an immutable and truthful result."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import matcher
from matcher import (
    Infeasible,
    InvalidInstance,
    InvalidParameter,
    MatcherError,
    NoPlanInTime,
    ProgressEvent,
    load_instance,
    parse_instance,
    solve,
    verify,
)
from matcher.contract.instance import Instance
from matcher.contract.solution import Solution
from tests.conftest import MAY2016, tiny_data
from tests.test_pipeline import random_instances

Data = dict[str, Any]


# --- valid by construction ------------------------------------------------------------------


def test_instance_built_directly_is_checked() -> None:
    """Regression: an Instance built directly with a non-mutual partner used to solve as
    `optimal`; duplicate IDs and unknown partners used to raise KeyError inside solve."""
    data = tiny_data()
    data["participants"][0]["partner"] = "pr1"  # pl0 names pr1, pr1 names nobody
    with pytest.raises(InvalidInstance) as caught:
        Instance.model_validate(data)
    assert any("not mutual" in p.message for p in caught.value.problems)
    data = tiny_data()
    data["participants"][3]["id"] = "pl1"
    with pytest.raises(InvalidInstance, match="duplicate ID"):
        Instance(**data)
    data = tiny_data()
    data["participants"][2]["avoid"] = ["ghost"]
    with pytest.raises(InvalidInstance, match="unknown participant 'ghost'"):
        Instance.model_validate(data)


def test_errors_are_one_family() -> None:
    for kind in (InvalidInstance, InvalidParameter, Infeasible, NoPlanInTime):
        assert issubclass(kind, MatcherError)
    assert issubclass(matcher.VerificationFailed, MatcherError)
    assert matcher.InstanceError is InvalidInstance  # kept for older callers


@pytest.mark.parametrize(
    "kwargs",
    [
        {"objective": "best"},
        {"proposer": "both"},
        {"seed": -1},
        {"seed": True},
        {"seed": 2**31},
        {"time_limit": 0},
        {"time_limit": float("nan")},
        {"time_limit": "5"},
        {"time_limit": 5, "time_used": -1},
        {"time_limit": 5, "time_used": float("inf")},
        {"time_limit": 5, "time_used": True},
    ],
)
def test_bad_parameters_are_usage_errors(kwargs: Data) -> None:
    with pytest.raises(InvalidParameter):
        solve(load_instance(MAY2016), **kwargs)


def test_time_used_is_taken_from_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``time_used`` (the CLI's spelling check, run within the limit) is taken off the limit the
    stages share, never below MIN_LEFT_S; the plan records the caller's limit."""
    import matcher.engine.assemble as assemble
    from matcher.engine.solve import MIN_LEFT_S

    seen: list[float | None] = []
    real = assemble.make_plan

    def plan(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["time_limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(assemble, "make_plan", plan)
    instance = load_instance(MAY2016)
    assert solve(instance, time_limit=30, time_used=1.5).run.time_limit == 30
    with contextlib.suppress(NoPlanInTime):  # 10 ms may be too little on a loaded machine
        assert solve(instance, time_limit=30, time_used=40).run.time_limit == 30
    assert solve(instance, time_used=3).run.time_limit is None
    assert seen == [28.5, MIN_LEFT_S, None]


def test_solve_refuses_what_is_not_an_instance() -> None:
    with pytest.raises(InvalidParameter, match="takes an Instance"):
        solve(tiny_data())  # type: ignore[arg-type]


# --- no other exception type escapes ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@st.composite
def mutated_instances(draw: st.DrawFn) -> Any:
    """The tiny intake with one field somewhere replaced by arbitrary JSON."""
    data: Any = tiny_data()
    node = data
    for _ in range(draw(st.integers(0, 3))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            if isinstance(node[key], dict | list) and node[key] and draw(st.booleans()):
                node = node[key]
                continue
            node[key] = draw(json_values)
            return data
        if isinstance(node, list) and node:
            i = draw(st.integers(0, len(node) - 1))
            if isinstance(node[i], dict | list) and draw(st.booleans()):
                node = node[i]
                continue
            node[i] = draw(json_values)
            return data
    return draw(json_values) if draw(st.booleans()) else data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_instances())
def test_parse_raises_only_invalid_instance(data: Any) -> None:
    try:
        parse_instance(copy.deepcopy(data))
    except InvalidInstance as exc:
        assert exc.problems and all(p.path and p.message for p in exc.problems)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_instances())
def test_solve_raises_only_matcher_errors_and_plans_verify(data: Data) -> None:
    inst = parse_instance(copy.deepcopy(data))
    try:
        sol = solve(inst)
    except Infeasible as exc:
        assert exc.solution is not None and exc.message
        return
    assert verify(inst, sol).ok


@st.composite
def tampered_plans(draw: st.DrawFn) -> Data:
    doc: Data = json.loads(_plan())
    section = draw(st.sampled_from(["pairs", "unmatched", "waitlist", "cohorts", "learning_sets"]))
    items = doc[section]
    if items:
        item = items[draw(st.integers(0, len(items) - 1))]
        key = draw(st.sampled_from(sorted(item)))
        value = item[key]
        if isinstance(value, str):
            item[key] = draw(st.sampled_from(["pl01", "pr01", "c1", "c1-s1", "pair-01", "x"]))
        elif isinstance(value, list) and value:
            value.pop(draw(st.integers(0, len(value) - 1)))
        elif isinstance(value, float):
            item[key] = draw(st.floats(allow_nan=True, allow_infinity=True))
    return doc


_PLAN: list[str] = []


def _plan() -> str:
    if not _PLAN:
        _PLAN.append(solve(load_instance(MAY2016)).model_dump_json())
    return _PLAN[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tampered_plans())
def test_verify_never_raises(doc: Data) -> None:
    inst = load_instance(MAY2016)
    try:
        plan = Solution.model_validate(doc)
    except ValidationError:
        return  # not a plan at all: rejected by the schema
    report = verify(inst, plan)
    assert all(v.rule and v.message for v in report.violations)


# --- progress and cancel ------------------------------------------------------------------


def test_progress_reports_every_stage() -> None:
    events: list[ProgressEvent] = []
    solve(load_instance(MAY2016), progress=events.append)
    stages = [e.stage for e in events]
    for stage in ("pairing", "placement", "learning_sets", "metrics"):
        assert stage in stages
    assert all(e.fraction is None or 0 <= e.fraction <= 1 for e in events)
    assert all("@" not in e.message for e in events)


def test_cancel_before_placement_raises_no_plan_in_time() -> None:
    with pytest.raises(NoPlanInTime, match="cancelled"):
        solve(load_instance(MAY2016), progress=lambda e: e.stage != "placement")


def test_cancel_during_sets_returns_the_plan_so_far() -> None:
    """Stopping once the sets stage starts still returns a verified plan."""
    inst = load_instance(MAY2016)
    sol = solve(inst, progress=lambda e: e.stage != "learning_sets")
    assert verify(inst, sol).ok


# --- logging, immutability, run info -----------------------------------------------------


def test_library_never_configures_logging_or_prints(capsys: pytest.CaptureFixture[str]) -> None:
    solve(load_instance(MAY2016))
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    # Only the NullHandler the Python docs recommend for libraries (issue 20): records go
    # nowhere unless the application adds a handler, never to the last-resort stderr one.
    handlers = logging.getLogger("matcher").handlers
    assert handlers and all(type(h) is logging.NullHandler for h in handlers)


def test_solution_is_immutable_and_tells_the_truth() -> None:
    sol = solve(load_instance(MAY2016))
    with pytest.raises(ValidationError):
        sol.status = "feasible"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        sol.pairs[0].score = 1.0  # type: ignore[misc]
    run = sol.run
    assert run.objective == "total" and run.proposer == "patient_leader" and run.deterministic
    assert set(run.versions) == {"matcher", "ortools", "numpy"}
    assert run.outcomes == {"placement": "optimal", "learning_sets": "optimal"}
    placed = sum(p.cohort is not None for p in sol.pairs)
    assert run.bound == placed and run.gap == 0.0  # proven at the max-flow ceiling


def test_cli_verbose_logs_stages_with_ids_only() -> None:
    from click.testing import CliRunner

    from matcher.cli import main

    result = CliRunner().invoke(main, ["-v", "solve", str(MAY2016), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "matcher: placement: optimal" in result.stderr
    logging.getLogger("matcher").handlers.clear()  # the CLI's handler, added for this run
