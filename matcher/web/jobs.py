"""Solves in the background: a bounded pool of worker threads, one job per intake at a time,
each with live progress and a Stop that keeps the best plan found so far.

A job reads its input from the workspace (:meth:`Workspace.plan_input`), runs
:func:`matcher.solve` in the engine's cancellable :class:`~matcher.engine.runner.SolveJob`
(Stop cancels it: the solve returns the best plan found so far, DESIGN.md §5) and stores the
plan as the next version; nothing is stored until the plan is complete, so a server killed
mid-solve loses no earlier version. Logs carry intake and version numbers only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from matcher.contract.instance import Instance
from matcher.contract.solution import Solution
from matcher.engine.runner import SolveJob, describe_failure
from matcher.engine.solve import solve
from matcher.errors import MatcherError
from matcher.verification.verify import verify
from matcher.workspace import PlanInput, Workspace

log = logging.getLogger("matcher")

#: Seconds between looks at a running solve's progress (and at the Stop button).
POLL_S = 0.2

State = Literal["queued", "running", "done", "failed"]

#: Stages in the order a solve runs them, to show "stage 2 of 5".
STAGES = ("prepare", "pairing", "placement", "learning_sets", "metrics", "verify")
STAGE_WORDS = {
    "prepare": "Reading the intake",
    "pairing": "Pairing lone applicants",
    "placement": "Placing pairs in cohorts",
    "learning_sets": "Forming action-learning sets",
    "metrics": "Measuring the plan",
    "verify": "Checking every rule",
}


@dataclass
class Job:
    """One solve of one intake; read by the progress page, written by its worker."""

    intake: int
    replan: bool
    objective: str
    time_limit: float | None
    author: str
    state: State = "queued"
    stage: str = "prepare"
    fraction: float | None = None
    message: str = ""
    version: int | None = None
    error: str = ""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def stopping(self) -> bool:
        return self.stop.is_set() and self.state in ("queued", "running")

    def overall(self) -> float:
        """Progress over the whole solve (0 to 1): stages done plus the current stage's part."""
        if self.state == "done":
            return 1.0
        i = STAGES.index(self.stage) if self.stage in STAGES else 0
        return min(0.99, (i + (self.fraction or 0.0)) / len(STAGES))

    def as_dict(self) -> dict[str, object]:
        return {
            "state": self.state,
            "stage": self.stage,
            "stage_words": STAGE_WORDS.get(self.stage, self.stage),
            "fraction": self.fraction,
            "overall": round(self.overall(), 3),
            "stopping": self.stopping,
            "version": self.version,
            "error": self.error,
            "elapsed": round((self.finished or time.monotonic()) - self.started, 1),
        }


class Jobs:
    """At most ``workers`` solves at once (others queue); one job per intake at a time."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        workers: int = 2,
        on_stored: Callable[[int, int, Instance, Solution], None] | None = None,
    ) -> None:
        self.workspace = workspace
        #: told of each stored version (intake, number, instance, plan): the app keeps it ready
        self.on_stored = on_stored
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="matcher-solve")
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        #: set at shutdown: a solve stopped by it is not stored (the user did not ask to stop)
        self._closing = threading.Event()

    def get(self, intake: int) -> Job | None:
        with self._lock:
            return self._jobs.get(intake)

    def running(self, intake: int) -> bool:
        job = self.get(intake)
        return job is not None and job.state in ("queued", "running")

    def start(
        self,
        plan: PlanInput,
        *,
        objective: str,
        time_limit: float | None,
        author: str,
        seed: int = 0,
    ) -> Job:
        """Queue a solve of ``plan``; refused while the intake already has one running."""
        with self._lock:
            current = self._jobs.get(plan.intake)
            if current is not None and current.state in ("queued", "running"):
                raise MatcherError(f"intake {plan.intake} is already being solved")
            job = Job(plan.intake, plan.previous is not None, objective, time_limit, author)
            self._jobs[plan.intake] = job
        self._pool.submit(self._run, job, plan, seed)
        return job

    def stop(self, intake: int) -> bool:
        job = self.get(intake)
        if job is None or job.state not in ("queued", "running"):
            return False
        job.stop.set()
        return True

    def _run(self, job: Job, plan: PlanInput, seed: int) -> None:
        """The pool worker: runs the solve as the engine's :class:`SolveJob` (cancellable,
        progress to poll), verifies the plan and stores it as the next version."""
        if job.stop.is_set():
            job.state, job.error = "failed", "stopped before it started"
            job.finished = time.monotonic()
            return
        job.state = "running"
        log.info("intake %d solve started", job.intake)
        running = SolveJob(
            lambda progress: solve(
                plan.instance,
                objective=job.objective,  # type: ignore[arg-type]
                seed=seed,
                time_limit=job.time_limit,
                previous=plan.previous,
                progress=progress,
            ),
            name=f"matcher-solve-{job.intake}",
        )
        try:
            while not running.wait(POLL_S):
                event = running.progress
                if event is not None:
                    job.stage, job.fraction, job.message = (
                        event.stage,
                        event.fraction,
                        event.message,
                    )
                if job.stop.is_set() and not running.cancelled:
                    running.cancel()
            solution = running.result()
            if self._closing.is_set():
                job.state, job.error = "failed", "the server stopped; nothing was stored"
                return
            job.stage, job.fraction = "verify", None
            if not verify(plan.instance, solution).ok:
                raise MatcherError("the plan failed verification; this is a bug in matcher")
            job.version = self.workspace.add_version(
                plan,
                solution,
                author=job.author,
                objective=job.objective,
                seed=seed,
                time_limit=job.time_limit,
            )
            if self.on_stored is not None:
                try:
                    self.on_stored(job.intake, job.version, plan.instance, solution)
                except Exception:  # only a cache: the version is stored whatever happens here
                    log.error("intake %d version %d not kept ready", job.intake, job.version)
            job.state = "done"
            log.info("intake %d solve stored as version %d", job.intake, job.version)
        except Exception as exc:
            failure = describe_failure(exc)
            if failure.internal:
                log.error("intake %d solve failed (%s)", job.intake, type(exc).__name__)
                job.error = f"internal error ({type(exc).__name__}); this is a bug in matcher"
            else:
                job.error = failure.message
            job.state = "failed"
        finally:
            job.finished = time.monotonic()

    def shutdown(self) -> None:
        """Stop every solve; none of them is stored."""
        self._closing.set()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for job in jobs:
            if job.state == "queued":  # never started (its future was cancelled)
                job.state, job.error = "failed", "the server stopped; nothing was stored"
                job.finished = time.monotonic()
