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

import logging
import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from matcher import _moved

# The library never prints: without a handler of the application's, its log records (even
# `log.exception`) go nowhere rather than to Python's last-resort handler on stderr.
logging.getLogger("matcher").addHandler(logging.NullHandler())


class _Package(ModuleType):
    """`verify` is both a submodule and the checker function, and the function must win:
    when the import system binds the submodule ``matcher.verification.verify`` on the package
    (after running
    it), the function is bound instead. So `from matcher import verify` is the function
    whoever imported the submodule first, and `import matcher` does not load the verifier
    (and pydantic with it) until it is used."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "verify" and isinstance(value, ModuleType):
            value = value.verify
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

# Old module paths keep working for one release (matcher._moved.MOVED lists them).
_moved.install()

if TYPE_CHECKING:
    from matcher.compare.diff import plan_changes
    from matcher.contract.instance import Instance
    from matcher.contract.solution import Changes, Solution
    from matcher.engine.progress import ProgressEvent
    from matcher.engine.scoring import Compatibility, compatibility
    from matcher.engine.solve import solve
    from matcher.errors import (
        Infeasible,
        InvalidInstance,
        InvalidParameter,
        MatcherError,
        NoPlanInTime,
        Problem,
        VerificationFailed,
    )
    from matcher.explain import why, why_not
    from matcher.intake.json_file import InstanceError, load_instance, parse_instance
    from matcher.verification.verify import Report, verify

_EXPORTS = {
    "Changes": "matcher.contract.solution",
    "Infeasible": "matcher.errors",
    "InvalidInstance": "matcher.errors",
    "InvalidParameter": "matcher.errors",
    "MatcherError": "matcher.errors",
    "NoPlanInTime": "matcher.errors",
    "ProgressEvent": "matcher.engine.progress",
    "VerificationFailed": "matcher.errors",
    "plan_changes": "matcher.compare.diff",
    "why": "matcher.explain",
    "why_not": "matcher.explain",
    "Compatibility": "matcher.engine.scoring",
    "Instance": "matcher.contract.instance",
    "InstanceError": "matcher.intake.json_file",
    "Problem": "matcher.errors",
    "Solution": "matcher.contract.solution",
    "compatibility": "matcher.engine.scoring",
    "load_instance": "matcher.intake.json_file",
    "parse_instance": "matcher.intake.json_file",
    "solve": "matcher.engine.solve",
    "Report": "matcher.verification.verify",
    "verify": "matcher.verification.verify",
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
