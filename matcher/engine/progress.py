"""Progress reports and cancellation for callers of :func:`matcher.solve` (DESIGN.md §5).

``solve(..., progress=callback)`` calls ``callback(event)`` with a :class:`ProgressEvent` at
every stage boundary and, during long searches, about every ``TICK_S`` seconds. The callback may
be called from a worker thread while CP-SAT searches. Returning ``False`` asks the solve to stop
at the next check: it returns the best plan so far (status ``feasible``, with a note) or raises
:class:`matcher.errors.NoPlanInTime` when there is none. Messages carry IDs only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Stage = Literal["prepare", "pairing", "placement", "learning_sets", "metrics", "verify"]

#: Seconds between progress events during a long search.
TICK_S = 0.25


@dataclass(frozen=True)
class ProgressEvent:
    """Where a solve is: its stage, the fraction done where known, and a message (IDs only)."""

    stage: Stage
    fraction: float | None
    message: str


#: A progress callback: return ``False`` to stop the solve early (``None`` or ``True``: go on).
ProgressCallback = Callable[[ProgressEvent], bool | None]


class Reporter:
    """Hands events to the caller's callback and remembers a request to stop.

    Thread-safe enough for its use: the flag only ever goes from False to True.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.cancelled = False

    def report(self, stage: Stage, fraction: float | None, message: str) -> bool:
        """Send one event; False once the caller has asked to stop."""
        if (
            self.callback is not None
            and not self.cancelled
            and self.callback(ProgressEvent(stage, fraction, message)) is False
        ):
            self.cancelled = True
        return not self.cancelled


class Stop:
    """When a search must stop: a wall-clock deadline (``time.monotonic()`` value) and the
    caller's cancel. ``check`` is polled by the searches (a CP-SAT watcher thread, the set
    search loop); at most every ``TICK_S`` seconds it reports progress through ``tick`` (stage,
    message), and a ``False`` from it cancels."""

    def __init__(
        self,
        deadline: float | None = None,
        tick: Callable[[Stage, str], bool] | None = None,
        stage: Stage = "placement",
    ) -> None:
        self.deadline = deadline
        self.tick = tick
        self.stage = stage
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
        return Stop(deadline, self.tick, stage or self.stage)

    def check(self, message: str) -> bool:
        """False once the caller has cancelled or the deadline has passed."""
        if self.cancelled:
            return False
        now = time.monotonic()
        if self.tick is not None and now - self._last_tick >= 0.8 * TICK_S:
            self._last_tick = now
            if self.tick(self.stage, message) is False:
                self.cancelled = True
        return not self.cancelled and (self.deadline is None or now < self.deadline)
