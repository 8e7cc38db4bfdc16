"""Pairing: keep pre-formed pairs, pair lone applicants optimally.

Guarantee: the lone applicants are paired by an exact maximum-weight matching
(:func:`solvers.assignment.max_weight_matching`): the most pairs first, then the highest
total compatibility score, among pairs no hard rule forbids and at or above
``rules.min_score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.schema import Instance
from matcher.scoring import Compatibility, compatibility
from solvers.assignment import max_weight_matching


@dataclass(frozen=True)
class Pairing:
    """Pairs as (patient leader ID, professional ID, pre-formed?), plus the lone-side data."""

    pairs: list[tuple[str, str, bool]]
    compat: Compatibility
    allowed: NDArray[np.bool_]
    matched_rows: NDArray[np.int64]
    matched_cols: NDArray[np.int64]


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


def pair_lone_applicants(instance: Instance) -> Pairing:
    """Pre-formed pairs as they are, plus an optimal matching of the lone applicants."""
    compat = compatibility(instance)
    allowed = allowed_mask(instance, compat)
    matched = max_weight_matching(compat.scores, allowed, max_cardinality=True)
    pairs = preformed_pairs(instance) + [
        (compat.row_ids[i], compat.col_ids[j], False) for i, j in matched
    ]
    return Pairing(
        pairs=pairs,
        compat=compat,
        allowed=allowed,
        matched_rows=matched[:, 0].astype(np.int64),
        matched_cols=matched[:, 1].astype(np.int64),
    )
