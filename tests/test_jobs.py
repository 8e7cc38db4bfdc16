"""Background solves of the web app (matcher.web.jobs): a bounded pool, one job per intake,
Stop before the start, and nothing stored from a solve the server's shutdown stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from matcher.errors import MatcherError
from matcher.web.jobs import Job, Jobs
from matcher.workspace import Workspace
from tests.conftest import MAY2016


def wait(job: Job, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while job.state in ("queued", "running"):
        assert time.monotonic() < end, job.as_dict()
        time.sleep(0.05)


def intakes(ws: Workspace, n: int) -> list[int]:
    out = []
    for k in range(n):
        intake = ws.create_intake(f"may {k}", author="ana")
        ws.add_upload(intake, [("may2016.json", MAY2016.read_bytes())], author="ana")
        out.append(intake)
    return out


def test_several_intakes_queue_in_a_bounded_pool(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    a, b, c = intakes(ws, 3)
    jobs = Jobs(ws, workers=1)
    first = jobs.start(ws.plan_input(a), objective="total", time_limit=None, author="ana")
    second = jobs.start(ws.plan_input(b), objective="fair", time_limit=None, author="bo")
    third = jobs.start(ws.plan_input(c), objective="total", time_limit=None, author="bo")
    assert second.state == "queued"  # one worker: the others wait their turn
    with pytest.raises(MatcherError, match="already being solved"):
        jobs.start(ws.plan_input(b), objective="total", time_limit=None, author="bo")
    assert jobs.stop(c)  # stopped while still waiting
    for job in (first, second, third):
        wait(job)
    assert (first.state, first.version) == ("done", 1)
    assert (second.state, second.version) == ("done", 1)
    assert ws.version(b, 1).objective == "fair" and ws.version(b, 1).author == "bo"
    assert third.state == "failed" and "before it started" in third.error
    assert ws.versions(c) == []
    assert first.as_dict()["overall"] == 1.0
    jobs.shutdown()


def test_a_solve_stopped_by_shutdown_is_not_stored(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    (a,) = intakes(ws, 1)
    jobs = Jobs(ws, workers=1)
    job = jobs.start(ws.plan_input(a), objective="total", time_limit=None, author="ana")
    jobs.shutdown()
    wait(job)
    assert job.state == "failed"
    assert ws.versions(a) == []
