"""The library's entry point: :func:`solve` checks its arguments, runs the plan
(:mod:`matcher.engine.assemble`, imported on first call so that ``from matcher import solve`` stays
light) and keeps every error in one family (:mod:`matcher.errors`).

The caller verifies the solution (:func:`matcher.verification.verify.verify`); the CLI always does.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from matcher.contract.identity import check_same_intake
from matcher.contract.instance import Instance
from matcher.engine.objectives import DEFAULT, OBJECTIVES, PROPOSERS, Objective, Proposer
from matcher.errors import InternalError, InvalidParameter, MatcherError, OutOfMemory

if TYPE_CHECKING:
    from matcher.contract.solution import Solution
    from matcher.engine.progress import ProgressCallback, ProgressEvent
    from matcher.engine.replan import PreviousPlan

log = logging.getLogger("matcher")


#: Largest seed accepted (CP-SAT takes a 32-bit signed seed).
MAX_SEED = 2**31 - 1

#: The least time a solve is given when ``time_used`` leaves less of ``time_limit`` (s).
MIN_LEFT_S = 0.01


def _check_parameters(
    instance: object,
    seed: object,
    time_limit: object,
    objective: object,
    proposer: object,
    time_used: object = 0.0,
) -> None:
    """Reject bad arguments with a usage error (:class:`InvalidParameter`)."""
    if not isinstance(instance, Instance):
        raise InvalidParameter(
            "solve() takes an Instance (from load_instance, parse_instance or Instance(...)), "
            f"not {type(instance).__name__}"
        )
    if objective not in OBJECTIVES:
        raise InvalidParameter(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    if proposer not in PROPOSERS:
        raise InvalidParameter(f"unknown proposer {proposer!r}; valid: {', '.join(PROPOSERS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidParameter(f"seed must be an integer from 0 to {MAX_SEED}")
    if time_limit is not None and (
        isinstance(time_limit, bool)
        or not isinstance(time_limit, int | float)
        or not math.isfinite(time_limit)
        or time_limit <= 0
    ):
        raise InvalidParameter("time_limit must be a positive number of seconds (or None)")
    if (
        isinstance(time_used, bool)
        or not isinstance(time_used, int | float)
        or not math.isfinite(time_used)
        or time_used < 0
    ):
        raise InvalidParameter("time_used must be a number of seconds, 0 or more")


def solve(
    instance: Instance,
    *,
    objective: Objective = DEFAULT,
    proposer: Proposer = "patient_leader",
    seed: int = 0,
    time_limit: float | None = None,
    previous: PreviousPlan | None = None,
    progress: ProgressCallback | None = None,
    deterministic: bool = True,
    force: bool = False,
    time_used: float = 0.0,
) -> Solution:
    """Pair the lone applicants, place every pair in a cohort, split cohorts into sets.

    ``previous``: an earlier plan (a :class:`Solution`, its JSON, or a path) to disturb as
    little as possible (:mod:`matcher.engine.replan`); the solution then carries ``changes``.
    ``progress``: called with :class:`matcher.engine.progress.ProgressEvent`; returning False stops
    the
    solve with the best plan so far (``feasible``, noted) or :class:`NoPlanInTime`.
    ``time_limit``: wall-clock seconds for the whole call.
    ``time_used``: seconds of ``time_limit`` the caller has already spent on this solve (the
    CLI's near-miss spelling check runs within ``solve --time-limit``); the solve gets the rest
    (at least :data:`MIN_LEFT_S`) and the plan records ``time_limit`` as given.
    ``force``: accept a ``previous`` plan made from an intake of another name (refused by
    default with :class:`InvalidParameter` naming both intakes: a plan of another programme
    would be "kept" as if it were this one's).

    Guarantees are in :mod:`matcher.engine.placement.model` (pairing and placement) and
    :mod:`matcher.engine.sets` (sets); ``status`` is ``optimal`` only when every stage proved
    optimality. With ``deterministic`` (the default) and no ``time_limit`` the result is a
    function of the instance and the seed alone (solvers run on deterministic budgets) and wall
    time is not recorded (``run.time_s`` is null), so repeated runs give byte-identical JSON.

    Raises :class:`InvalidParameter` for bad arguments, :class:`Infeasible` when the hard rules
    and locks are proven to admit no plan that places a pair (``.diagnosis`` names the
    conflicting parts), :class:`NoPlanInTime` when nothing was found in time,
    :class:`OutOfMemory` when the machine ran out of memory, :class:`InternalError` for a bug;
    an exception raised by ``progress`` itself stops the solve and propagates unchanged.
    """
    _check_parameters(instance, seed, time_limit, objective, proposer, time_used)
    relay = _CallerProgress(progress) if progress is not None else None
    failure: BaseException | None = None
    try:
        solution = _plan(
            instance,
            objective=objective,
            proposer=proposer,
            seed=seed,
            time_limit=None if time_limit is None else max(MIN_LEFT_S, time_limit - time_used),
            previous=previous,
            progress=relay,
            deterministic=deterministic,
            force=force,
        )
    except BaseException as exc:
        failure = exc
    # Raised here, outside the handler, so that it carries no unrelated context.
    if relay is not None and relay.error is not None:
        raise relay.error
    if failure is not None:
        raise failure
    if time_limit is not None and solution.run.time_limit != time_limit:
        run = solution.run.model_copy(update={"time_limit": time_limit})
        solution = solution.model_copy(update={"run": run})
    return solution


class _CallerProgress:
    """The caller's progress callback, guarded: an exception it raises (in whatever thread the
    solve calls it from) stops the solve and is raised by :func:`solve` as itself, never
    reported as a matcher bug."""

    def __init__(self, callback: ProgressCallback) -> None:
        self.callback = callback
        self.error: BaseException | None = None

    def __call__(self, event: ProgressEvent) -> bool | None:
        if self.error is not None:
            return False
        try:
            return self.callback(event)
        except BaseException as exc:  # the caller's own: handed back by solve()
            if self.error is None:
                self.error = exc
            return False


def _plan(
    instance: Instance,
    *,
    objective: Objective,
    proposer: Proposer,
    seed: int,
    time_limit: float | None,
    previous: PreviousPlan | None,
    progress: ProgressCallback | None,
    deterministic: bool,
    force: bool,
) -> Solution:
    """``make_plan``, with every error kept in the family: running out of memory is
    :class:`OutOfMemory`, anything unexpected an :class:`InternalError` (a bug)."""
    try:
        from matcher.engine.assemble import make_plan  # lazy: `import matcher` stays light
        from matcher.engine.replan import load_previous  # lazy: `import matcher` stays light

        if previous is not None:
            previous = load_previous(previous)
            check_same_intake(previous, instance, force=force)

        return make_plan(
            instance,
            objective=objective,
            proposer=proposer,
            seed=seed,
            time_limit=time_limit,
            previous=previous,
            progress=progress,
            deterministic=deterministic,
        )
    except MatcherError:
        raise
    except MemoryError:
        n = len(instance.participants)
        raise OutOfMemory(
            f"ran out of memory while solving ({n:,} participants); free memory or run it on "
            "a machine with more"
        ) from None
    except Exception as exc:  # a bug: keep one error family, and the cause for --debug
        log.exception("internal error in solve")
        raise InternalError(f"internal error ({type(exc).__name__}); this is a bug") from exc
