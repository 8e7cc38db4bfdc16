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

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _Package(ModuleType):
    """`verify` is both a submodule and the checker function, and the function must win:
    when the import system binds the submodule ``matcher.verify`` on the package (after running
    it), the function is bound instead. So `from matcher import verify` is the function
    whoever imported the submodule first, and `import matcher` does not load the verifier
    (and pydantic with it) until it is used."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "verify" and isinstance(value, ModuleType):
            value = value.verify
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
    from matcher.verify import Report, verify

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
    "Report": "matcher.verify",
    "verify": "matcher.verify",
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
