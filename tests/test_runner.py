"""matcher.engine.runner: the solve runner and error mapping that every front end shares."""

from __future__ import annotations

import threading

import pytest

from matcher.contract.instance import Instance
from matcher.engine.progress import ProgressCallback, ProgressEvent
from matcher.engine.runner import (
    EXIT_INFEASIBLE,
    EXIT_INTERNAL,
    EXIT_INVALID,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    SolveJob,
    describe_failure,
)
from matcher.engine.solve import solve
from matcher.errors import Infeasible, InvalidInstance, NoPlanInTime, Problem
from matcher.files import OutputError
from matcher.intake.json_file import load_instance
from matcher.verification.verify import verify
from tests.conftest import MAY2016, tiny_data


def test_a_job_returns_the_solve_and_its_last_progress() -> None:
    inst = Instance.model_validate(tiny_data())
    job = SolveJob(lambda progress: solve(inst, seed=0, progress=progress))
    plan = job.result(timeout=120)
    assert job.done and job.error is None
    assert verify(inst, plan).ok
    assert plan == solve(inst, seed=0)  # the thread changes nothing
    last = job.progress
    assert last is not None and last.stage in ("metrics", "verify")


def test_progress_is_the_latest_event_and_cancel_is_seen_by_the_work() -> None:
    gate = threading.Event()
    first = ProgressEvent("pairing", 0.25, "lone applicants")

    def work(progress: ProgressCallback) -> tuple[bool | None, bool | None]:
        before = progress(first)
        gate.wait(30)
        after = progress(ProgressEvent("placement", 0.5, "cohorts"))
        return before, after

    job = SolveJob(work)
    while job.progress is None:
        job.wait(0.01)
    assert job.progress == first and not job.done
    with pytest.raises(TimeoutError):
        job.result(timeout=0.01)
    job.cancel()
    gate.set()
    assert job.result(timeout=30) == (True, False)
    assert job.cancelled
    assert job.progress is not None and job.progress.stage == "placement"


def test_cancel_stops_a_real_solve_with_the_library_s_outcome() -> None:
    """Cancelled before a plan exists, the solve raises NoPlanInTime; the job hands it over."""
    inst = load_instance(MAY2016)
    job = SolveJob(lambda progress: solve(inst, seed=0, progress=progress))
    job.cancel()
    with pytest.raises(NoPlanInTime, match="cancelled"):
        job.result(timeout=120)
    assert isinstance(job.error, NoPlanInTime)


def test_the_work_s_own_exception_is_raised_by_result() -> None:
    boom = ValueError("from the caller's code")

    def work(progress: ProgressCallback) -> None:
        raise boom

    job = SolveJob(work)
    with pytest.raises(ValueError) as caught:
        job.result(timeout=30)
    assert caught.value is boom and job.error is boom


def test_failures_map_to_exit_codes_and_messages_without_input_text() -> None:
    invalid = describe_failure(
        InvalidInstance("in.json", [Problem("participants[0].id", "duplicate ID 'p1'")])
    )
    assert invalid.exit_code == EXIT_INVALID and invalid.problem_list
    assert invalid.message.splitlines() == [
        "in.json: 1 problem found",
        "  - participants[0].id: duplicate ID 'p1'",
    ]
    assert describe_failure(OutputError("cannot write")).exit_code == EXIT_USAGE
    infeasible = describe_failure(Infeasible("locks clash", source="may.json"))
    assert infeasible.exit_code == EXIT_INFEASIBLE
    assert infeasible.message.startswith("may.json: no plan meets the hard rules: locks clash")
    assert describe_failure(NoPlanInTime("nothing in 1 s")).exit_code == EXIT_TIMEOUT
    bug = describe_failure(KeyError("Jane Example"))
    assert bug.exit_code == EXIT_INTERNAL and bug.internal
    assert "KeyError" in bug.message and "Jane" not in bug.message
