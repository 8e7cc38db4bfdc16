"""Running a solve for a front end: in a worker thread, cancellable, with progress to poll, and
the one mapping from an exception to an exit code and a message.

The command line and a web front end share this module::

    job = SolveJob(lambda progress: solve(instance, seed=0, progress=progress))
    while not job.wait(0.1):
        show(job.progress)          # the latest ProgressEvent (stage, fraction, message) or None
    plan = job.result()             # the plan, or the solve's own exception raised here

``job.cancel()`` asks the solve to stop: the progress callback answers ``False`` the next time
the solve reports (at every stage boundary and at least about every
:data:`matcher.engine.progress.TICK_S` seconds: its checks, or the heartbeat that re-sends the
latest event while a long step runs), and the solve acts on it at its next check and returns the
best plan found so far (status ``feasible``, with a note) or raises
:class:`matcher.errors.NoPlanInTime` when it has none. Nothing here touches signals, a terminal or
standard output: that is the front end's business.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from matcher.engine.progress import ProgressCallback, ProgressEvent
from matcher.errors import (
    MAX_PROBLEMS_SHOWN,
    Infeasible,
    InvalidInstance,
    MatcherError,
    OutOfMemory,
)
from matcher.files import OutputError
from matcher.text import visible

T = TypeVar("T")

#: Exit codes (DESIGN.md §5): 0 solved; 1 internal error; 2 usage error; 3 invalid input;
#: 4 proven infeasible; 5 nothing found within the time limit; 6 out of memory.
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INVALID, EXIT_INFEASIBLE, EXIT_TIMEOUT = range(6)
EXIT_MEMORY = OutOfMemory.exit_code
#: Exit codes for the signals that end a run: 128 + the signal number, as shells report them.
EXIT_SIGNAL = {signal.SIGHUP: 129, signal.SIGINT: 130, signal.SIGTERM: 143}
#: Longest line of an error message (one problem); longer ones are cut with their length.
MAX_LINE = 300


class Interrupted(BaseException):
    """A signal (SIGINT, SIGTERM or SIGHUP) asked the run to end; raised in the main thread by
    the front end's handler. A BaseException, so that ``except Exception`` in a library does not
    swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_SIGNAL.get(signal.Signals(self.signum), 128 + self.signum)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class SolveJob(Generic[T]):
    """``work(progress)`` running in a daemon worker thread, started at once.

    Every method is safe to call from any thread while the work runs: :attr:`progress` is the
    latest event the work reported, :meth:`cancel` asks it to stop (the callback returns
    ``False`` from then on), :meth:`wait` waits for it to end, :meth:`result` returns its value
    or raises its exception (any exception, ``BaseException`` included, is handed over here
    rather than lost in the worker)."""

    def __init__(self, work: Callable[[ProgressCallback], T], *, name: str = "matcher-solve"):
        self._work = work
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latest: ProgressEvent | None = None
        self._value: T | None = None
        self._error: BaseException | None = None
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _report(self, event: ProgressEvent) -> bool:
        with self._lock:
            self._latest = event
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            value = self._work(self._report)
        except BaseException as exc:  # handed to whoever asks for the result
            with self._lock:
                self._error = exc
        else:
            with self._lock:
                self._value = value

    @property
    def progress(self) -> ProgressEvent | None:
        """The latest progress event, or None before the first."""
        with self._lock:
            return self._latest

    @property
    def elapsed(self) -> float:
        """Seconds since the job started."""
        return time.monotonic() - self.started

    def cancel(self) -> None:
        """Ask the work to stop at its next progress report; it keeps the best plan found."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait at most ``timeout`` seconds (None: until the end); True once the work ended.
        In the main thread a short timeout keeps signal handlers running promptly."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The exception the work raised, once it ended (None while it runs or if it returned)."""
        if not self.done:
            return None
        with self._lock:
            return self._error

    def result(self, timeout: float | None = None) -> T:
        """The work's value, after waiting for it; its exception is raised here.
        :class:`TimeoutError` when it has not ended within ``timeout`` seconds."""
        if not self.wait(timeout):
            raise TimeoutError(f"the solve is still running after {timeout} s")
        with self._lock:
            if self._error is not None:
                raise self._error
            return self._value  # type: ignore[return-value]


@dataclass(frozen=True)
class Failure:
    """What a front end tells the user about an exception: the exit code and the message.

    ``problem_list`` is True for an invalid input, whose message is a heading naming the source
    and one line per problem (shown without an "error:" prefix). Messages carry IDs, paths and
    counts only; an unexpected exception's own text is never shown (it may quote input)."""

    exit_code: int
    message: str
    problem_list: bool = False

    @property
    def internal(self) -> bool:
        return self.exit_code == EXIT_INTERNAL


def invalid_message(exc: InvalidInstance) -> str:
    """The problems of an invalid file, at most MAX_PROBLEMS_SHOWN of them, each on one line of
    at most MAX_LINE characters, then the count of the rest."""
    n = len(exc.problems)
    lines = [f"{visible(exc.source)}: {n} problem{'s' if n != 1 else ''} found"]
    lines += [f"  - {visible(str(p), MAX_LINE)}" for p in exc.problems[:MAX_PROBLEMS_SHOWN]]
    if n > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {n - MAX_PROBLEMS_SHOWN:,} more")
    return "\n".join(lines)


def describe_failure(exc: Exception) -> Failure:
    """The exit code and message for an exception that ended a command or request."""
    if isinstance(exc, InvalidInstance):
        return Failure(EXIT_INVALID, invalid_message(exc), problem_list=True)
    if isinstance(exc, OutputError):
        return Failure(EXIT_USAGE, str(exc))
    if isinstance(exc, Infeasible):
        return Failure(
            EXIT_INFEASIBLE,
            f"{visible(exc.source or 'instance')}: no plan meets the hard rules: {exc}",
        )
    if isinstance(exc, MatcherError):
        return Failure(exc.exit_code, str(exc))
    if isinstance(exc, MemoryError):
        return Failure(
            EXIT_MEMORY, "ran out of memory; free memory or run it on a machine with more"
        )
    return Failure(
        EXIT_INTERNAL,
        f"internal error ({type(exc).__name__}). This is a bug in matcher; "
        "re-run with --debug for the traceback and report it.",
    )
