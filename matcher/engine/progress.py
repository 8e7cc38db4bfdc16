"""Progress reports and cancellation for callers of :func:`matcher.solve` (DESIGN.md §5).

``solve(..., progress=callback)`` calls ``callback(event)`` with a :class:`ProgressEvent` at
every stage boundary, from the long loops and searches about every ``TICK_S`` seconds, and, when
nothing else was reported for ``HEARTBEAT_S`` seconds (a model being built, a long call into a
compiled solver), a *heartbeat*: the latest event sent again, unchanged (same stage, fraction
and message: nothing is invented), from a thread of its own (:meth:`Reporter.heartbeat`). So
the events are less than 0.5 s apart whatever the solve is doing, with or without a time
limit, as long as no single call holds the interpreter longer than about 0.3 s: Python code
and CP-SAT's search let the heartbeat run; the OR-Tools min-cost flow of an exact matching, a
large numpy operation or a garbage collection of a large heap hold it while they run (measured
at 20,000 participants: up to about 0.3 s).

The callback may be called from a worker thread (the heartbeat, or a CP-SAT watcher while
CP-SAT searches), never from two threads at once. Returning ``False`` asks the solve to stop:
the searches (CP-SAT, the set searches) and the long loops see it at their next check, normally
within ``TICK_S`` seconds; a step that cannot be interrupted ends first (the exact matching's
min-cost flow, a model's presolve, a block of the pairing scan: up to about 0.7 s at 20,000
participants, ``benchmarks/results/time_limits.md``). The solve then returns the best
plan so far (status ``feasible``, with a note) or raises :class:`matcher.errors.NoPlanInTime`
when there is none. Messages carry IDs only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

Stage = Literal["prepare", "pairing", "placement", "learning_sets", "metrics", "verify"]

#: Seconds between progress events during a long search.
TICK_S = 0.25
#: Seconds without an event after which the heartbeat sends the latest one again: shorter
#: than ``TICK_S``, so that a call holding the interpreter for a while (a garbage collection
#: of a large heap, 0.2 s at 20,000 participants; a compiled solver's call) still leaves the
#: events less than 0.5 s apart.
HEARTBEAT_S = 0.15


@dataclass(frozen=True)
class ProgressEvent:
    """Where a solve is: its stage, the fraction done where known, and a message (IDs only)."""

    stage: Stage
    fraction: float | None
    message: str


#: A progress callback: return ``False`` to stop the solve early (``None`` or ``True``: go on).
ProgressCallback = Callable[[ProgressEvent], bool | None]


class Reporter:
    """Hands events to the caller's callback, one at a time whatever the thread, and remembers
    a request to stop (the flag only ever goes from False to True)."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.cancelled = False
        self._lock = threading.Lock()
        self._latest: ProgressEvent | None = None
        self._sent = time.monotonic()

    def report(self, stage: Stage, fraction: float | None, message: str) -> bool:
        """Send one event; False once the caller has asked to stop."""
        if self.callback is not None and not self.cancelled:
            event = ProgressEvent(stage, fraction, message)
            with self._lock:
                self._latest = event
                self._send(event)
        return not self.cancelled

    def _send(self, event: ProgressEvent) -> None:
        """Call the callback (the lock held)."""
        self._sent = time.monotonic()
        if self.callback is not None and not self.cancelled and self.callback(event) is False:
            self.cancelled = True

    @contextmanager
    def heartbeat(self, every: float = HEARTBEAT_S) -> Iterator[None]:
        """While the block runs, a thread sends the latest event again whenever nothing was
        reported for ``every`` seconds (a False from the callback cancels, as any report's).
        Nothing happens without a callback."""
        if self.callback is None:
            yield
            return
        done = threading.Event()

        def beat() -> None:
            while True:
                with self._lock:
                    due = self._sent + every
                if done.wait(max(0.005, due - time.monotonic())):
                    return
                with self._lock:
                    latest = self._latest
                    if latest is not None and time.monotonic() - self._sent >= every:
                        self._send(latest)

        thread = threading.Thread(target=beat, name=HEARTBEAT_THREAD, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()


#: The name of the heartbeat's thread (a callback may tell its events from the others by it).
HEARTBEAT_THREAD = "matcher-progress-heartbeat"


class Stop:
    """When a search must stop: a wall-clock deadline (``time.monotonic()`` value) and the
    caller's cancel. ``check`` is polled by the searches (a CP-SAT watcher thread, the set
    search loop, the long loops); at most every ``TICK_S`` seconds it reports progress through
    ``tick`` (stage, message), and a ``False`` from it cancels. ``cancelled_by``: a cancel
    noticed elsewhere (the reporter's heartbeat), seen at every check."""

    def __init__(
        self,
        deadline: float | None = None,
        tick: Callable[[Stage, str], bool] | None = None,
        stage: Stage = "placement",
        cancelled_by: Callable[[], bool] | None = None,
    ) -> None:
        self.deadline = deadline
        self.tick = tick
        self.stage = stage
        self.cancelled_by = cancelled_by
        self.cancelled = False
        self._last_tick = 0.0

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def within(self, seconds: float | None, stage: Stage | None = None) -> Stop:
        """A stop for one stage: at most ``seconds`` from now (never past this one's deadline),
        cancelled with this one."""
        until = None if seconds is None else time.monotonic() + seconds
        if until is None:
            deadline = self.deadline
        else:
            deadline = until if self.deadline is None else min(until, self.deadline)
        return Stop(deadline, self.tick, stage or self.stage, self.cancelled_by)

    def check(self, message: str) -> bool:
        """False once the caller has cancelled or the deadline has passed."""
        if self.cancelled or (self.cancelled_by is not None and self.cancelled_by()):
            self.cancelled = True
            return False
        now = time.monotonic()
        if self.tick is not None and now - self._last_tick >= 0.8 * TICK_S:
            self._last_tick = now
            if self.tick(self.stage, message) is False:
                self.cancelled = True
        return not self.cancelled and (self.deadline is None or now < self.deadline)
