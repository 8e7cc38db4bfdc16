"""Stable matching (Gale–Shapley deferred acceptance), with incomplete lists and unequal sides.

Entry points, numpy in and numpy out:

- :func:`gale_shapley` -- the proposer-optimal stable matching;
- :func:`stable_matching` -- the proposer- or the receiver-optimal one (the latter by running
  Gale–Shapley with the roles swapped);
- :func:`blocking_pairs` -- the pairs that block a given matching (empty iff it is stable);
- :func:`prefs_from_scores` -- ranked lists for both sides from one score matrix and a mask.

Preferences
-----------
``proposer_prefs[p]`` ranks receivers for proposer ``p``, most preferred first;
``receiver_prefs[r]`` ranks proposers for receiver ``r``. A list need not be complete: a person
who is not on ``p``'s list is unacceptable to ``p`` (``p`` prefers staying unmatched). The two
sides may have different sizes. Each of the two arguments may be a sequence of rows (lists,
tuples or 1-D integer numpy arrays, possibly of different lengths) or a 2-D integer array (rows of
equal length).

**One-sided entries.** A pair ``(p, r)`` is *acceptable* only if each lists the other. An entry
that is not reciprocated (``p`` lists ``r`` but ``r`` does not list ``p``, or the reverse) is
silently treated as unacceptable: it never forms a pair and never blocks. The inputs are not
required to be mutual and are never modified.

**Errors.** ``ValueError`` for an index out of range (naming the list, the position and the valid
range), for an index listed twice in one list, and for a row that is not a 1-D list of integers.

Guarantee: exact
----------------
:func:`gale_shapley` returns *the* proposer-optimal stable matching: it is stable (every pair is
mutually acceptable, and no mutually acceptable pair prefers each other to their partners, being
unmatched counting as worst) and every proposer gets the best partner it has in any stable
matching (Gale and Shapley, 1962; with incomplete lists, Gusfield and Irving, 1989, §1.4.2). The
proposer-optimal matching is unique, so the result does not depend on the order of proposals and
is deterministic. By the rural hospitals theorem (Roth, 1984; Gale and Sotomayor, 1985) the same
proposers and the same receivers are matched in *every* stable matching, so
``stable_matching(..., optimal="receiver")`` matches exactly the same people, possibly to
different partners.

Method and cost
---------------
The lists are flattened into CSR arrays (``indptr``, ``indices``); each list is checked for
repeated indices. The proposal loop needs nothing but arrays: a stack of free proposers, a
next-proposal pointer per proposer and, per receiver, the rank of the proposer it holds. It makes
at most ``L_p`` proposals (``L_p`` = total length of the proposers' lists; about
``n ln n`` for random complete lists, up to ``n**2 / 2`` for correlated ones).

How a receiver ranks a proposer is read from a dense ``int32`` matrix (``4 * n_receivers *
n_proposers`` bytes: 16 MB at 2,000 per side) when it has at most :data:`DENSE_MAX_CELLS` cells
(64 MiB) or at most four times as many cells as the receivers' lists have entries. Otherwise
(large, sparse lists, e.g. 20,000 per side with 50 candidates each, where the matrix would take
1.6 GB) the rank of each proposer-list entry is precomputed in ``O(L + n_p + n_r)`` time and
``O(L)`` memory by bucketing the entries by receiver.

The loops are compiled with numba (imported lazily on the first call, so importing this module
stays cheap; compiled code is cached on disk, so only the first call on a machine pays the
compile time). Without numba, the checks and the rank tables use numpy (sorting,
``O(L log L)``) and the proposal loop runs as plain Python on lists; the results are identical.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DENSE_MAX_CELLS",
    "Prefs",
    "blocking_pairs",
    "gale_shapley",
    "prefs_from_scores",
    "stable_matching",
]

IntArray = NDArray[np.int64]
Prefs = Sequence[Sequence[int]] | Sequence[NDArray[np.integer[Any]]] | NDArray[np.integer[Any]]
"""Ranked lists, one per person, most preferred first (see the module docstring)."""

DENSE_MAX_CELLS = 1 << 24
"""Largest ``n_receivers * n_proposers`` for which a dense int32 rank matrix is always used
(64 MiB); beyond it only when the matrix is at most four times the total list length."""

OPTIMAL_SIDES = ("proposer", "receiver")


# ---------------------------------------------------------------------------------------------
# Public API


def gale_shapley(proposer_prefs: Prefs, receiver_prefs: Prefs) -> IntArray:
    """The proposer-optimal stable matching.

    Returns an int64 array with one entry per proposer: the index of its receiver, or -1 when it
    is unmatched. One-sided entries (``p`` lists ``r`` but ``r`` does not list ``p``) are treated
    as unacceptable. Exact; see the module docstring for the guarantee.

    >>> gale_shapley([[0, 1], [0, 1]], [[1, 0], [0, 1]]).tolist()
    [1, 0]
    """
    n_p, n_r = len(proposer_prefs), len(receiver_prefs)
    p_indptr, p_indices = _to_csr(proposer_prefs, n_r, "proposer_prefs", "receiver")
    r_indptr, r_indices = _to_csr(receiver_prefs, n_p, "receiver_prefs", "proposer")
    _check_unique(p_indptr, p_indices, n_r, "proposer_prefs", "receiver")
    _check_unique(r_indptr, r_indices, n_p, "receiver_prefs", "proposer")
    ranks, dense = _receiver_ranks(p_indptr, p_indices, r_indptr, r_indices, n_p, n_r)
    return _propose(p_indptr, p_indices, ranks, dense, n_r)


def stable_matching(
    proposer_prefs: Prefs,
    receiver_prefs: Prefs,
    *,
    optimal: Literal["proposer", "receiver"] = "proposer",
) -> IntArray:
    """The proposer-optimal or the receiver-optimal stable matching.

    Always returns the matching seen from the proposers (index of each proposer's receiver, or
    -1), whichever side it is optimal for. The receiver-optimal matching is Gale–Shapley with the
    receivers proposing; it is the worst stable matching for every proposer. Both match the same
    people (rural hospitals theorem).
    """
    if optimal == "proposer":
        return gale_shapley(proposer_prefs, receiver_prefs)
    if optimal == "receiver":
        by_receiver = gale_shapley(receiver_prefs, proposer_prefs)
        match = np.full(len(proposer_prefs), -1, dtype=np.int64)
        matched = np.flatnonzero(by_receiver >= 0)
        match[by_receiver[matched]] = matched
        return match
    raise ValueError(f"optimal={optimal!r} is not one of {', '.join(map(repr, OPTIMAL_SIDES))}")


def blocking_pairs(
    proposer_prefs: Prefs, receiver_prefs: Prefs, match: ArrayLike
) -> list[tuple[int, int]]:
    """The pairs ``(p, r)`` that block ``match``.

    A pair blocks when it is mutually acceptable (each lists the other), they are not matched to
    each other, ``p`` prefers ``r`` to its partner and ``r`` prefers ``p`` to its partner (being
    unmatched is worse than any acceptable partner). ``match`` gives, per proposer, its receiver or
    -1. The result is sorted by proposer, then by the proposer's preference; it is empty exactly
    when ``match`` is stable.

    Raises ``ValueError`` when ``match`` is not a matching (wrong length, index out of range, a
    receiver used twice) or pairs people who are not mutually acceptable: such a matching is not
    individually rational, and there is no blocking *pair* to report for it.
    """
    n_p, n_r = len(proposer_prefs), len(receiver_prefs)
    p_indptr, p_indices = _to_csr(proposer_prefs, n_r, "proposer_prefs", "receiver")
    r_indptr, r_indices = _to_csr(receiver_prefs, n_p, "receiver_prefs", "proposer")
    _check_unique(p_indptr, p_indices, n_r, "proposer_prefs", "receiver")
    _check_unique(r_indptr, r_indices, n_p, "receiver_prefs", "proposer")
    m = _check_match(match, n_p, n_r)
    rank_at = _receiver_rank_at(p_indptr, p_indices, r_indptr, r_indices, n_p, n_r)

    lengths = np.diff(p_indptr)
    rows = np.repeat(np.arange(n_p, dtype=np.int64), lengths)
    pos = np.arange(len(p_indices), dtype=np.int64) - np.repeat(p_indptr[:-1], lengths)

    # The entry of each matched pair in its proposer's list: it must exist and be mutual.
    is_partner = p_indices == m[rows]
    matched = np.flatnonzero(m >= 0)
    has_entry = np.zeros(n_p, dtype=bool)
    has_entry[rows[is_partner & (rank_at >= 0)]] = True
    bad = matched[~has_entry[matched]]
    if len(bad):
        p = int(bad[0])
        raise ValueError(
            f"match pairs proposer {p} with receiver {int(m[p])}, who are not mutually "
            f"acceptable (each must list the other); {len(bad)} such pair(s) in all"
        )

    # Position of the partner in the proposer's list / rank of the partner at the receiver;
    # "unmatched" is one past the end of any list.
    big = np.iinfo(np.int64).max
    p_cur = np.full(n_p, big, dtype=np.int64)
    p_cur[rows[is_partner]] = pos[is_partner]
    r_cur = np.full(n_r, big, dtype=np.int64)
    r_cur[p_indices[is_partner]] = rank_at[is_partner]

    blocks = (rank_at >= 0) & (pos < p_cur[rows]) & (rank_at < r_cur[p_indices])
    return [(int(p), int(r)) for p, r in zip(rows[blocks], p_indices[blocks], strict=True)]


def prefs_from_scores(
    scores: ArrayLike,
    allowed: ArrayLike | None = None,
    *,
    tie_break: Literal["index"] = "index",
) -> tuple[list[IntArray], list[IntArray]]:
    """Ranked lists for rows and columns from an ``n x m`` score matrix (higher is better).

    Row ``i`` ranks the columns ``j`` with ``allowed[i, j]`` by decreasing ``scores[i, j]``;
    column ``j`` ranks the rows ``i`` with ``allowed[i, j]`` by decreasing ``scores[i, j]``
    (``allowed=None`` allows every pair). Both sides get the same mask, so acceptability is
    mutual. Ties go to the lower index (``tie_break="index"``, the only rule so far): a stable
    sort, so the lists are deterministic. Scores are compared as float64.

    Returns ``(row_prefs, col_prefs)``: ``n`` and ``m`` lists, each a 1-D int64 array (views
    into one flat array per side), ready for :func:`gale_shapley`.
    """
    if tie_break != "index":
        raise ValueError(f"tie_break={tie_break!r} is not one of 'index'")
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D n x m array; got shape {s.shape}")
    if allowed is None:
        mask = np.ones(s.shape, dtype=bool)
    else:
        mask = np.asarray(allowed)
        if mask.dtype != np.bool_ or mask.shape != s.shape:
            raise ValueError(
                f"allowed must be a boolean array of the same shape as scores {s.shape}; "
                f"got dtype {mask.dtype}, shape {mask.shape}"
            )
    nan = np.isnan(s) & mask
    if nan.any():
        i, j = np.argwhere(nan)[0]
        raise ValueError(
            f"scores[{i}, {j}] is NaN; give every allowed pair a number, or forbid it in allowed"
        )
    return _ranked_rows(s, mask), _ranked_rows(s.T, mask.T)


# ---------------------------------------------------------------------------------------------
# Input checks and preprocessing


def _to_csr(prefs: Prefs, n_other: int, name: str, what: str) -> tuple[IntArray, IntArray]:
    """Flatten ranked lists into ``(indptr, indices)``, checking the index range."""
    if isinstance(prefs, np.ndarray):
        if prefs.ndim != 2 or (prefs.size and prefs.dtype.kind not in "iu"):
            raise ValueError(
                f"{name} as an array must be 2-D with integer entries; "
                f"got shape {prefs.shape}, dtype {prefs.dtype}"
            )
        n, k = prefs.shape
        indptr = np.arange(n + 1, dtype=np.int64) * k
        indices = np.ascontiguousarray(prefs, dtype=np.int64).reshape(-1)
    else:
        n = len(prefs)
        indptr = np.zeros(n + 1, dtype=np.int64)
        if n:
            np.cumsum([len(row) for row in prefs], out=indptr[1:])
        arrays = [row for row in prefs if isinstance(row, np.ndarray)]
        if n and len(arrays) == n:
            for i, row in enumerate(arrays):
                if row.ndim != 1 or (row.size and row.dtype.kind not in "iu"):
                    raise ValueError(
                        f"{name}[{i}] must be a 1-D list of integer indices; "
                        f"got shape {row.shape}, dtype {row.dtype}"
                    )
            indices = np.concatenate(arrays).astype(np.int64, copy=False)
        else:
            # array.array rejects floats and strings, which np.fromiter would truncate or parse;
            # fromlist is its fast path for lists.
            flat = array.array("q")
            try:
                for seq in prefs:
                    if type(seq) is list:
                        flat.fromlist(seq)
                    else:
                        flat.extend(seq)
            except (TypeError, OverflowError):
                _raise_bad_row(prefs, name)
                raise  # pragma: no cover - _raise_bad_row always raises
            indices = np.frombuffer(flat, dtype=np.int64) if len(flat) else np.zeros(0, np.int64)
    out = (indices < 0) | (indices >= n_other)
    if out.any():
        k = int(np.argmax(out))
        i = int(np.searchsorted(indptr, k, side="right")) - 1
        valid = f"valid: 0..{n_other - 1}" if n_other else "there are none"
        raise ValueError(
            f"{name}[{i}][{k - int(indptr[i])}] = {int(indices[k])} is not a {what} index "
            f"({n_other} {what}s; {valid})"
        )
    return indptr, indices


def _raise_bad_row(prefs: Sequence[Any], name: str) -> None:
    for i, row in enumerate(prefs):
        for j, x in enumerate(row):
            try:
                array.array("q", [x])
            except (TypeError, OverflowError):
                raise ValueError(
                    f"{name}[{i}][{j}] = {x!r} is not an integer index "
                    "(preference lists hold person indices)"
                ) from None
    raise ValueError(f"{name} must be a sequence of lists of integer indices")


def _use_dense(n_rows: int, n_cols: int, nnz: int) -> bool:
    cells = n_rows * n_cols
    return cells <= DENSE_MAX_CELLS or cells <= 4 * nnz


def _check_unique(indptr: IntArray, indices: IntArray, n_other: int, name: str, what: str) -> None:
    """Raise if some list names the same index twice."""
    k = int(_kernels().first_repeat(indptr, indices, n_other))
    if k < 0:
        return
    i = int(np.searchsorted(indptr, k, side="right")) - 1
    row = indices[indptr[i] : indptr[i + 1]]
    first, again = np.flatnonzero(row == indices[k])[:2].tolist()
    raise ValueError(
        f"{name}[{i}] lists {what} {int(indices[k])} twice (positions {first} and {again}); "
        "each list must rank distinct indices"
    )


def _first_repeat_sorted(indptr: IntArray, indices: IntArray, n_other: int) -> int:
    """An entry whose index occurs earlier in the same list, or -1 (numpy, O(L log L))."""
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    keys = rows * n_other + indices
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order[1:]] == keys[order[:-1]])
    return int(order[same[0] + 1]) if len(same) else -1


def _first_repeat_loop(indptr: Any, indices: Any, n_other: int) -> int:
    """The first entry whose index occurs earlier in the same list, or -1 (numba, O(L))."""
    stamp = np.full(n_other, -1, dtype=np.int64)
    for i in range(len(indptr) - 1):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if stamp[j] == i:
                return k
            stamp[j] = i
    return -1


def _check_match(match: ArrayLike, n_p: int, n_r: int) -> IntArray:
    m = np.asarray(match)
    if m.shape != (n_p,) or (m.size and m.dtype.kind not in "iu"):
        raise ValueError(
            f"match must be a 1-D integer array with one entry per proposer ({n_p}); "
            f"got shape {m.shape}, dtype {m.dtype}"
        )
    m = m.astype(np.int64)
    out = (m < -1) | (m >= n_r)
    if out.any():
        p = int(np.argmax(out))
        raise ValueError(f"match[{p}] = {int(m[p])}: use a receiver index 0..{n_r - 1} or -1")
    taken = np.bincount(m[m >= 0], minlength=n_r)
    if (taken > 1).any():
        r = int(np.argmax(taken > 1))
        ps = np.flatnonzero(m == r).tolist()
        raise ValueError(f"receiver {r} is matched to several proposers {ps}")
    return m


def _receiver_ranks(
    p_indptr: IntArray,
    p_indices: IntArray,
    r_indptr: IntArray,
    r_indices: IntArray,
    n_p: int,
    n_r: int,
) -> tuple[NDArray[np.int32], bool]:
    """How receivers rank proposers (-1: not on the list), dense or aligned with ``p_indices``.

    Dense (``True``): a flat ``n_r * n_p`` matrix, ``ranks[r * n_p + p]``. Otherwise: one entry
    per proposer-list entry ``k`` (``p -> r``), the rank ``r`` gives ``p``.
    """
    if _use_dense(n_r, n_p, len(r_indices)):
        return _kernels().dense_ranks(r_indptr, r_indices, n_p), True
    return _kernels().sparse_ranks(p_indptr, p_indices, r_indptr, r_indices), False


def _sparse_ranks_sorted(
    p_indptr: IntArray, p_indices: IntArray, r_indptr: IntArray, r_indices: IntArray
) -> NDArray[np.int32]:
    """Receiver ranks aligned with ``p_indices`` by one sort (numpy, O(L log L))."""
    n_p, n_r = len(p_indptr) - 1, len(r_indptr) - 1
    rank_at = np.full(len(p_indices), -1, dtype=np.int32)
    # Join the proposer entries (r, p) with the receiver entries (r, p): sort the keys of both
    # (unique within each side, made unique across sides by the last bit) and pair equal
    # neighbours; in each pair the receiver entry (even key) sorts first.
    r_lengths = np.diff(r_indptr)
    r_rows = np.repeat(np.arange(n_r, dtype=np.int64), r_lengths)
    r_pos = np.arange(len(r_indices), dtype=np.int64) - np.repeat(r_indptr[:-1], r_lengths)
    p_rows = np.repeat(np.arange(n_p, dtype=np.int64), np.diff(p_indptr))
    keys = np.concatenate([(r_rows * n_p + r_indices) * 2, (p_indices * n_p + p_rows) * 2 + 1])
    order = np.argsort(keys)
    pair = np.flatnonzero((keys[order[1:]] >> 1) == (keys[order[:-1]] >> 1))
    rank_at[order[pair + 1] - len(r_indices)] = r_pos[order[pair]]
    return rank_at


def _sparse_ranks_loop(p_indptr: Any, p_indices: Any, r_indptr: Any, r_indices: Any) -> Any:
    """Receiver ranks aligned with ``p_indices`` in O(L + n_p + n_r) (numba).

    Bucket the proposer entries by receiver (counting sort); then for each receiver, stamp the
    ranks of the proposers on its list and read them back for the entries in its bucket.
    """
    n_p, n_r, n_entries = len(p_indptr) - 1, len(r_indptr) - 1, len(p_indices)
    start = np.zeros(n_r + 1, dtype=np.int64)
    for k in range(n_entries):
        start[p_indices[k] + 1] += 1
    for r in range(n_r):
        start[r + 1] += start[r]
    fill = start[:n_r].copy()
    entry = np.empty(n_entries, dtype=np.int64)
    owner = np.empty(n_entries, dtype=np.int64)
    for p in range(n_p):
        for k in range(p_indptr[p], p_indptr[p + 1]):
            r = p_indices[k]
            entry[fill[r]] = k
            owner[fill[r]] = p
            fill[r] += 1
    rank_at = np.full(n_entries, -1, dtype=np.int32)
    stamp = np.full(n_p, -1, dtype=np.int64)
    rank_of = np.zeros(n_p, dtype=np.int64)
    for r in range(n_r):
        first = r_indptr[r]
        for j in range(first, r_indptr[r + 1]):
            stamp[r_indices[j]] = r
            rank_of[r_indices[j]] = j - first
        for t in range(start[r], start[r + 1]):
            if stamp[owner[t]] == r:
                rank_at[entry[t]] = rank_of[owner[t]]
    return rank_at


def _receiver_rank_at(
    p_indptr: IntArray,
    p_indices: IntArray,
    r_indptr: IntArray,
    r_indices: IntArray,
    n_p: int,
    n_r: int,
) -> NDArray[np.int32]:
    """For each proposer-list entry ``p -> r``: the rank ``r`` gives ``p``, or -1 if none."""
    ranks, dense = _receiver_ranks(p_indptr, p_indices, r_indptr, r_indices, n_p, n_r)
    if not dense:
        return ranks
    p_rows = np.repeat(np.arange(n_p, dtype=np.int64), np.diff(p_indptr))
    return ranks[p_indices * n_p + p_rows]


def _dense_ranks_numpy(indptr: IntArray, indices: IntArray, n_p: int) -> NDArray[np.int32]:
    n_r = len(indptr) - 1
    lengths = np.diff(indptr)
    rows = np.repeat(np.arange(n_r, dtype=np.int64), lengths)
    ranks = np.full(n_r * n_p, -1, dtype=np.int32)
    ranks[rows * n_p + indices] = np.arange(len(indices)) - np.repeat(indptr[:-1], lengths)
    return ranks


def _dense_ranks_loop(indptr: Any, indices: Any, n_p: int) -> Any:
    n_r = len(indptr) - 1
    ranks = np.full(n_r * n_p, -1, dtype=np.int32)
    for r in range(n_r):
        base = r * n_p
        start = indptr[r]
        for k in range(start, indptr[r + 1]):
            ranks[base + indices[k]] = k - start
    return ranks


def _ranked_rows(s: NDArray[np.float64], mask: NDArray[np.bool_]) -> list[IntArray]:
    n = s.shape[0]
    if n == 0:
        return []
    order = np.argsort(-s, axis=1, kind="stable")
    keep = np.take_along_axis(mask, order, axis=1)
    flat = order[keep].astype(np.int64)
    ends = np.cumsum(keep.sum(axis=1))
    return np.split(flat, ends[:-1])


# ---------------------------------------------------------------------------------------------
# The proposal loop


def _propose(
    indptr: IntArray, indices: IntArray, ranks: NDArray[np.int32], dense: bool, n_r: int
) -> IntArray:
    n_p = len(indptr) - 1
    match = np.full(n_p, -1, dtype=np.int64)
    if n_p == 0 or n_r == 0 or len(indices) == 0:
        return match
    k = _kernels()
    if not k.compiled:
        # Plain Python: lists index much faster than numpy arrays element by element.
        buf = match.tolist()
        _deferred_acceptance(
            indptr.tolist(), indices.tolist(), ranks.tolist(), dense,
            [-1] * n_r, [0] * n_r, buf, list(range(n_p)),
        )  # fmt: skip
        return np.asarray(buf, dtype=np.int64)
    k.deferred_acceptance(
        indptr, indices, ranks, dense,
        np.full(n_r, -1, dtype=np.int64), np.zeros(n_r, dtype=np.int64), match,
        np.arange(n_p, dtype=np.int64),
    )  # fmt: skip
    return match


@dataclass(frozen=True)
class _Kernels:
    compiled: bool
    first_repeat: Callable[[IntArray, IntArray, int], int]
    dense_ranks: Callable[[IntArray, IntArray, int], NDArray[np.int32]]
    sparse_ranks: Callable[[IntArray, IntArray, IntArray, IntArray], NDArray[np.int32]]
    deferred_acceptance: Callable[..., int]


_KERNELS: _Kernels | None = None


def _kernels() -> _Kernels:
    """The compiled loops (numba, cached on disk), or numpy / plain-Python equivalents."""
    global _KERNELS
    if _KERNELS is None:
        try:
            from numba import njit
        except ImportError:  # pragma: no cover - numba is installed in CI
            _KERNELS = _python_kernels()
        else:
            jit = njit(cache=True, nogil=True)
            _KERNELS = _Kernels(
                compiled=True,
                first_repeat=jit(_first_repeat_loop),
                dense_ranks=jit(_dense_ranks_loop),
                sparse_ranks=jit(_sparse_ranks_loop),
                deferred_acceptance=jit(_deferred_acceptance),
            )
    return _KERNELS


def _python_kernels() -> _Kernels:
    """Without numba: vectorised numpy checks and the proposal loop on Python lists."""
    return _Kernels(
        compiled=False,
        first_repeat=_first_repeat_sorted,
        dense_ranks=_dense_ranks_numpy,
        sparse_ranks=_sparse_ranks_sorted,
        deferred_acceptance=_deferred_acceptance,
    )


# Written in the numba-compatible subset of Python; runs unchanged on lists or on arrays.
def _deferred_acceptance(
    indptr: Any,
    indices: Any,
    ranks: Any,
    dense: bool,
    holder: Any,
    held_rank: Any,
    match: Any,
    free: Any,
) -> int:
    """Deferred acceptance on CSR lists; fills ``match`` and returns the number of proposals.

    The rank receiver ``r = indices[k]`` gives the proposer ``p`` owning entry ``k`` is
    ``ranks[r * n_p + p]`` when ``dense``, else ``ranks[k]`` (-1: ``p`` is unacceptable to
    ``r``). ``holder[r]`` is the proposer ``r`` holds (-1: none), ``held_rank[r]`` its rank
    there. ``free`` starts as the stack of all proposers. Each proposer proposes down its list
    from its pointer ``nxt[p]``, never twice to the same receiver.
    """
    n_p = len(indptr) - 1
    nxt = indptr[:n_p].copy()
    top = n_p
    proposals = 0
    while top > 0:
        p = free[top - 1]
        k = nxt[p]
        if k == indptr[p + 1]:
            top -= 1  # list exhausted: p stays unmatched
            continue
        nxt[p] = k + 1
        proposals += 1
        r = indices[k]
        rk = ranks[r * n_p + p] if dense else ranks[k]
        if rk < 0:
            continue  # r does not list p
        old = holder[r]
        if old >= 0 and held_rank[r] <= rk:
            continue  # r keeps the proposer it holds
        holder[r] = p
        held_rank[r] = rk
        match[p] = r
        if old >= 0:
            match[old] = -1
            free[top - 1] = old  # p leaves the stack, the rejected one takes its place
        else:
            top -= 1
    return proposals
