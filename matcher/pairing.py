"""Pairing: keep pre-formed pairs, pair lone applicants by the chosen objective.

Objectives (``--objective``), all over the lone pairs that no hard rule forbids and that reach
``rules.min_score``:

``total`` (default)
    The most pairs, then the highest total score: an exact maximum-weight matching
    (:func:`solvers.assignment.max_weight_matching`). Between matchings whose totals differ by
    less than ``TIE_TOLERANCE`` per pair, the one whose pairs rank each other higher is preferred
    (fewer blocking pairs, as a tie-break: not a guarantee).
``fair``
    The most pairs, then the best possible *worst* pair (egalitarian), then the highest total.
    Exact: the bottleneck is found by a binary search over the distinct scores, each step a
    maximum-cardinality matching on the pairs at or above the threshold.
``stable``
    No blocking pair: Gale–Shapley (:func:`solvers.stable.gale_shapley`), patient leaders
    proposing by default (``proposer="professional"`` for the other side). Preferences are each
    person's stated ranked ``preferences`` when given (only allowed partners count; unlisted
    allowed partners follow in score order), otherwise their scores. A stable matching may have
    fewer pairs than the ``total`` one; the price is reported in the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.schema import Instance
from matcher.scoring import Compatibility, compatibility
from solvers.assignment import max_weight_matching

OBJECTIVES: tuple[str, ...] = ("total", "fair", "stable")
PROPOSERS: tuple[str, ...] = ("patient_leader", "professional")

#: Score differences below this, per pair, count as ties for the `total` tie-break.
TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Pairing:
    """Pairs as (patient leader ID, professional ID, pre-formed?), plus the lone-side data."""

    pairs: list[tuple[str, str, bool]]
    compat: Compatibility
    allowed: NDArray[np.bool_]
    matched_rows: NDArray[np.int64]
    matched_cols: NDArray[np.int64]
    objective: str
    bottleneck: float | None = None


def preformed_pairs(instance: Instance) -> list[tuple[str, str, bool]]:
    """Pre-formed pairs, as (patient leader, professional, True), in file order."""
    return [
        (p.id, p.partner, True)
        for p in instance.participants
        if p.role == "patient_leader" and p.partner is not None
    ]


def allowed_mask(instance: Instance, compat: Compatibility) -> NDArray[np.bool_]:
    """Lone pairs that the hard rules and the minimum score allow."""
    return ~compat.forbidden & (compat.scores >= instance.rules.min_score)


def _ranks(scores: NDArray[np.float64], allowed: NDArray[np.bool_]) -> NDArray[np.float64]:
    """``r[i, j]``: rank of ``j`` in row ``i``'s list plus rank of ``i`` in column ``j``'s list
    (0 = best; ties broken by index), over allowed pairs."""
    masked = np.where(allowed, scores, -np.inf)
    n, m = scores.shape
    row_rank = np.empty((n, m))
    col_rank = np.empty((n, m))
    if n and m:
        order = np.argsort(-masked, axis=1, kind="stable")
        np.put_along_axis(row_rank, order, np.arange(m, dtype=float)[None, :].repeat(n, 0), 1)
        order = np.argsort(-masked, axis=0, kind="stable")
        np.put_along_axis(col_rank, order, np.arange(n, dtype=float)[:, None].repeat(m, 1), 0)
    return row_rank + col_rank


def _total(scores: NDArray[np.float64], allowed: NDArray[np.bool_]) -> NDArray[np.int64]:
    n, m = scores.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), dtype=np.int64)
    # Tie-break: a bonus below TIE_TOLERANCE for pairs that rank each other high.
    bonus = TIE_TOLERANCE * (1.0 - _ranks(scores, allowed) / (n + m))
    return max_weight_matching(scores + bonus, allowed, max_cardinality=True)


def _fair(
    scores: NDArray[np.float64], allowed: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], float | None]:
    """Most pairs, then the highest worst pair, then the highest total."""
    if not allowed.any():
        return np.zeros((0, 2), dtype=np.int64), None
    ones = np.ones_like(scores)
    target = len(max_weight_matching(ones, allowed, max_cardinality=True))
    levels = np.unique(scores[allowed])
    lo, hi = 0, len(levels) - 1  # levels[lo] always achieves the target cardinality
    while lo < hi:
        mid = (lo + hi + 1) // 2
        ok = allowed & (scores >= levels[mid])
        if len(max_weight_matching(ones, ok, max_cardinality=True)) == target:
            lo = mid
        else:
            hi = mid - 1
    floor = float(levels[lo])
    return _total(scores, allowed & (scores >= floor)), floor


def _preference_lists(
    instance: Instance, compat: Compatibility, allowed: NDArray[np.bool_]
) -> tuple[list[list[int]], list[list[int]]]:
    """Ranked index lists for rows and columns: stated preferences first, then by score."""
    people = instance.participants_by_id()
    col_index = {pid: j for j, pid in enumerate(compat.col_ids)}
    row_index = {pid: i for i, pid in enumerate(compat.row_ids)}

    def lists(
        ids: list[str],
        index_other: dict[str, int],
        mat: NDArray[np.float64],
        ok: NDArray[np.bool_],
    ) -> list[list[int]]:
        out = []
        for i, pid in enumerate(ids):
            stated = [index_other[x] for x in people[pid].preferences or [] if x in index_other]
            stated = [j for j in dict.fromkeys(stated) if ok[i, j]]
            rest = [int(j) for j in np.argsort(-mat[i], kind="stable") if ok[i, j]]
            seen = set(stated)
            out.append(stated + [j for j in rest if j not in seen])
        return out

    return (
        lists(compat.row_ids, col_index, compat.scores, allowed),
        lists(compat.col_ids, row_index, compat.scores.T, allowed.T),
    )


def _stable(
    instance: Instance, compat: Compatibility, allowed: NDArray[np.bool_], proposer: str
) -> NDArray[np.int64]:
    from solvers.stable import gale_shapley

    row_prefs, col_prefs = _preference_lists(instance, compat, allowed)
    if proposer == "patient_leader":
        match = gale_shapley(row_prefs, col_prefs)
        pairs = [(i, int(j)) for i, j in enumerate(match) if j >= 0]
    else:
        match = gale_shapley(col_prefs, row_prefs)
        pairs = sorted((int(i), j) for j, i in enumerate(match) if i >= 0)
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def pair_lone_applicants(
    instance: Instance, *, objective: str = "total", proposer: str = "patient_leader"
) -> Pairing:
    """Pre-formed pairs as they are, plus the lone applicants paired by ``objective``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    if proposer not in PROPOSERS:
        raise ValueError(f"unknown proposer {proposer!r}; choose from {', '.join(PROPOSERS)}")
    compat = compatibility(instance)
    allowed = allowed_mask(instance, compat)
    bottleneck = None
    if objective == "total":
        matched = _total(compat.scores, allowed)
    elif objective == "fair":
        matched, bottleneck = _fair(compat.scores, allowed)
    else:
        matched = _stable(instance, compat, allowed, proposer)
    pairs = preformed_pairs(instance) + [
        (compat.row_ids[i], compat.col_ids[j], False) for i, j in matched
    ]
    return Pairing(
        pairs=pairs,
        compat=compat,
        allowed=allowed,
        matched_rows=matched[:, 0].astype(np.int64),
        matched_cols=matched[:, 1].astype(np.int64),
        objective=objective,
        bottleneck=bottleneck,
    )
