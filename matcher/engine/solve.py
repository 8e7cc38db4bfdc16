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
from matcher.engine.objectives import OBJECTIVES, PROPOSERS, Objective, Proposer
from matcher.errors import InternalError, InvalidParameter, MatcherError, NoPlanInTime

if TYPE_CHECKING:
    from matcher.contract.solution import Solution
    from matcher.engine.progress import ProgressCallback
    from matcher.engine.replan import PreviousPlan

log = logging.getLogger("matcher")


#: Largest seed accepted (CP-SAT takes a 32-bit signed seed).
MAX_SEED = 2**31 - 1


def _check_parameters(
    instance: object,
    seed: object,
    time_limit: object,
    objective: object,
    proposer: object,
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


def solve(
    instance: Instance,
    *,
    objective: Objective = "total",
    proposer: Proposer = "patient_leader",
    seed: int = 0,
    time_limit: float | None = None,
    previous: PreviousPlan | None = None,
    progress: ProgressCallback | None = None,
    deterministic: bool = True,
    force: bool = False,
) -> Solution:
    """Pair the lone applicants, place every pair in a cohort, split cohorts into sets.

    ``previous``: an earlier plan (a :class:`Solution`, its JSON, or a path) to disturb as
    little as possible (:mod:`matcher.engine.replan`); the solution then carries ``changes``.
    ``progress``: called with :class:`matcher.engine.progress.ProgressEvent`; returning False stops
    the
    solve with the best plan so far (``feasible``, noted) or :class:`NoPlanInTime`.
    ``time_limit``: wall-clock seconds for the whole call.
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
    conflicting parts), :class:`NoPlanInTime` when nothing was found in time; nothing else.
    """
    _check_parameters(instance, seed, time_limit, objective, proposer)
    try:
        # Loaded on use (start-up time): importing solve loads no numpy or OR-Tools.
        from matcher.engine.assemble import make_plan
        from matcher.engine.replan import load_previous

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
        raise NoPlanInTime(
            "the solve ran out of memory; try a time limit or fewer cohorts"
        ) from None
    except Exception as exc:  # a bug: keep one error family, and the cause for --debug
        log.exception("internal error in solve")
        raise InternalError(f"internal error ({type(exc).__name__}); this is a bug") from exc
