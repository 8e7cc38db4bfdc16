"""matcher: collaborative pairs, cohorts and action-learning sets for leadership programmes.

Public surface::

    from matcher import load_instance, solve, verify, compatibility
    instance = load_instance("instances/may2016.json")
    solution = solve(instance, seed=0)
    assert verify(instance, solution).ok
    print(solution.model_dump_json(indent=2))

Names are imported on first use (PEP 562), so `matcher validate` does not pay for the solvers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# `verify` is both a submodule and the checker function: bind the function eagerly so that
# importing the submodule elsewhere never shadows it (it only needs the schema).
from matcher.verify import Report, verify

if TYPE_CHECKING:
    from matcher.diff import plan_changes
    from matcher.errors import (
        Infeasible,
        InvalidInstance,
        InvalidParameter,
        MatcherError,
        NoPlanInTime,
        VerificationFailed,
    )
    from matcher.explain import why, why_not
    from matcher.pipeline import solve
    from matcher.progress import ProgressEvent
    from matcher.schema import Instance
    from matcher.scoring import Compatibility, compatibility
    from matcher.solution import Changes, Solution
    from matcher.validation import InstanceError, Problem, load_instance, parse_instance

_EXPORTS = {
    "Changes": "matcher.solution",
    "Infeasible": "matcher.errors",
    "InvalidInstance": "matcher.errors",
    "InvalidParameter": "matcher.errors",
    "MatcherError": "matcher.errors",
    "NoPlanInTime": "matcher.errors",
    "ProgressEvent": "matcher.progress",
    "VerificationFailed": "matcher.errors",
    "plan_changes": "matcher.diff",
    "why": "matcher.explain",
    "why_not": "matcher.explain",
    "Compatibility": "matcher.scoring",
    "Instance": "matcher.schema",
    "InstanceError": "matcher.validation",
    "Problem": "matcher.validation",
    "Solution": "matcher.solution",
    "compatibility": "matcher.scoring",
    "load_instance": "matcher.validation",
    "parse_instance": "matcher.validation",
    "solve": "matcher.pipeline",
}

__all__ = [
    "Changes",
    "Compatibility",
    "Infeasible",
    "Instance",
    "InstanceError",
    "InvalidInstance",
    "InvalidParameter",
    "MatcherError",
    "NoPlanInTime",
    "Problem",
    "ProgressEvent",
    "Report",
    "Solution",
    "VerificationFailed",
    "compatibility",
    "load_instance",
    "parse_instance",
    "plan_changes",
    "solve",
    "verify",
    "why",
    "why_not",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'matcher' has no attribute {name!r}")
    return getattr(import_module(module), name)
