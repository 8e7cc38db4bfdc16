"""Diverse grouping: the Maximally Diverse Grouping Problem (MDGP) with side constraints.

Split ``n`` elements into groups, one per ``(min, max)`` size bound, so that the sum of the
distances between elements that share a group is as large as possible. Each unordered pair
``{i, j}`` in the same group contributes ``distance[i, j]`` once. Optional *cannot-link* pairs
must never share a group (a hard rule).

Entry point: :func:`diverse_groups`, which returns a :class:`GroupingResult`; when not every
element can be grouped, :func:`largest_grouping` with the bound of :func:`grouping_bound`; and
:func:`maximin_groups` for the least diverse group first; :func:`warm_up` loads the compiled
search kernel ahead of the first search (e.g. in a worker process), and
:func:`expect_searches` lets a caller announce a batch of searches small enough to run without
loading it (:func:`would_load_compiled` tells, beforehand, whether a batch would load it;
:func:`compiled_loaded`, whether it is loaded).

Modules, in the order the data flows: ``problem`` (validated input, result, errors, objective),
``api`` (:func:`diverse_groups`), ``exact`` (the exact method: ``subsets``, dynamic
programming over subsets, where the groups are interchangeable and the input small, else the
CP-SAT model) and ``feasibility`` (CP-SAT pieces it shares with the heuristic), ``search``
(starts and the iterated tabu search),
``kernels`` (the search's inner loop in plain Python/numba and in numpy, side by side),
``bound`` and ``packing`` (the largest grouping), ``patterns`` (the largest grouping by
counting set patterns, when elements are sets of resources), ``maximin``. Only the names
below are public.

Guarantees
----------
- ``method="exact"``: ``status == "optimal"`` is a proof of optimality: by enumeration when
  every group has the same size bounds (minimum at least 1) and there are at most 16 elements
  (``subsets``: every partition is covered, distances as given), else by CP-SAT (up to the
  rounding of distances to integers, see :func:`diverse_groups`); when CP-SAT is cut short,
  ``status == "feasible"`` and ``bound`` is a proven upper bound on the optimum.
- ``method="heuristic"`` (iterated tabu search): a feasible grouping with no optimality
  proof (``bound`` is ``None``). On the MDGPLIB literature benchmark it is within a fraction of a
  per cent of the best published values; see ``benchmarks/results/mdgp.md``.
- Every returned grouping satisfies every size bound and every cannot-link pair. Proven
  infeasible inputs raise :class:`GroupingInfeasible`; nothing is ever silently relaxed.

The heuristic's inner loop is compiled with numba when it is installed (imported lazily, on the
first heuristic call; compiled code is cached on disk; the rare perturbation step stays in Python,
which keeps the compile short). Without numba, a numpy version of the same iterations runs
instead: identical results (tested), about 3-10x slower on 30-200 elements; the plain-Python loop
is the reference both are tested against. See ``benchmarks/results/cold_start.md``.
"""

from __future__ import annotations

from solvers.grouping.api import diverse_groups
from solvers.grouping.bound import grouping_bound
from solvers.grouping.kernels import compiled_loaded, expect_searches, would_load_compiled
from solvers.grouping.maximin import maximin_groups
from solvers.grouping.packing import PartialGrouping, largest_grouping
from solvers.grouping.patterns import group_by_patterns
from solvers.grouping.problem import (
    AUTO_EXACT_MAX_N,
    METHODS,
    GroupingInfeasible,
    GroupingNotFound,
    GroupingResult,
    Method,
    grouping_objective,
)
from solvers.grouping.search import warm_up

__all__ = [
    "AUTO_EXACT_MAX_N",
    "METHODS",
    "GroupingInfeasible",
    "GroupingNotFound",
    "GroupingResult",
    "Method",
    "PartialGrouping",
    "compiled_loaded",
    "diverse_groups",
    "expect_searches",
    "group_by_patterns",
    "grouping_bound",
    "grouping_objective",
    "largest_grouping",
    "maximin_groups",
    "warm_up",
    "would_load_compiled",
]
