"""Progress reports and cancellation for callers of :func:`matcher.solve` (DESIGN.md §5).

``solve(..., progress=callback)`` calls ``callback(event)`` with a :class:`ProgressEvent` at
every stage boundary and, during long searches, about every ``TICK_S`` seconds. The callback may
be called from a worker thread while CP-SAT searches. Returning ``False`` asks the solve to stop
at the next check: it returns the best plan so far (status ``feasible``, with a note) or raises
:class:`matcher.errors.NoPlanInTime` when there is none. Messages carry IDs only.
"""

from __future__ import annotations

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
