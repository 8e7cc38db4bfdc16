"""matcher: collaborative pairs, cohorts and action-learning sets for leadership programmes.

Public surface::

    from matcher import load_instance, solve, verify, compatibility
    instance = load_instance("instances/may2016.json")
    solution = solve(instance, seed=0)
    assert verify(instance, solution).ok
    print(solution.model_dump_json(indent=2))
"""

from matcher.schema import Instance
from matcher.scoring import Compatibility, compatibility
from matcher.solution import Solution
from matcher.solve import solve
from matcher.validation import InstanceError, Problem, load_instance, parse_instance
from matcher.verify import Report, verify

__all__ = [
    "Compatibility",
    "Instance",
    "InstanceError",
    "Problem",
    "Report",
    "Solution",
    "compatibility",
    "load_instance",
    "parse_instance",
    "solve",
    "verify",
]
