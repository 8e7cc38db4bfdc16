"""The most elements that can be grouped when the rules cannot hold for all of them: a proven
bound."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


def grouping_bound(
    n: int, lo: int, hi: int, cliques: Sequence[Sequence[int]] = ()
) -> tuple[int, int]:
    """Upper bound on how many of ``n`` elements fit in groups of ``lo..hi`` elements.

    ``cliques`` lists sets of elements of which a group may hold at most one (every two of them
    are cannot-link). With ``s`` groups a kept set ``S`` has ``|S ∩ C| <= min(|C|, s)`` for
    every clique ``C``; summed over a family ``T`` of cliques, each kept element counts once per
    clique of ``T`` it is in, so ``|S|`` is at most the elements in no clique of ``T`` plus the
    most elements whose clique counts fit in ``Σ min(|C|, s)`` (smallest counts first). The
    bound is the best such value over the families of the largest cliques, capped by ``s * hi``,
    maximised over the ``s`` with ``s * lo`` at most that value. O(K * (n / lo) + K * n) for K
    cliques (at most 64 are used). Returns ``(bound, s)``: the bound and the number of groups
    at which it is reached (the largest such ``s``); ``(0, 0)`` when no group can be formed.
    """
    if n <= 0 or lo <= 0 or hi < lo or n < lo:
        return 0, 0
    sets = [np.array(sorted({int(x) for x in c}), dtype=np.int64) for c in cliques]
    sets = [c for c in sets if c.size > 1]
    sets.sort(key=lambda c: (-c.size, c.tolist()[:1]))
    sets = sets[:64]
    mult = np.zeros(n, dtype=np.int64)
    families: list[tuple[NDArray[np.int64], NDArray[np.int64]]] = []  # (clique sizes, histogram)
    for k in range(len(sets) + 1):
        if k:
            mult[sets[k - 1]] += 1
        hist = np.bincount(mult, minlength=2)
        sizes = np.array([c.size for c in sets[:k]], dtype=np.int64)
        families.append((sizes, hist))
    # every number of groups s at once (vectorised over s; was a Python loop per s)
    s_all = np.arange(1, n // lo + 1, dtype=np.int64)
    value = np.minimum(n, s_all * hi)
    for sizes, hist in families:
        budget = (
            np.minimum(sizes[None, :], s_all[:, None]).sum(axis=1)
            if sizes.size
            else np.zeros_like(s_all)
        )
        m = np.full_like(s_all, int(hist[0]))
        active = np.ones(s_all.shape, dtype=bool)  # still taking whole multiplicity classes
        for t in range(1, hist.shape[0]):
            take = np.where(active, np.minimum(int(hist[t]), budget // t), 0)
            m += take
            budget -= take * t
            active &= take >= hist[t]
        value = np.minimum(value, m)
    valid = value >= s_all * lo
    if not valid.any():
        return 0, 0
    best = int(value[valid].max())
    best_s = int(s_all[valid & (value == best)].max())
    return best, best_s
