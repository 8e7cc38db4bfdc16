"""The tabu search's inner loop, twice, side by side: the plain-Python reference (compiled with
numba when it is installed) and the same iterations vectorised with numpy (no compilation); and
the choice between them."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from solvers.grouping.problem import FloatArray, IntArray
from solvers.numba_cache import compile_kernel, compiled_on_disk

_KERNEL: Callable[..., int] | None = None
#: Work (iterations x elements^2) a process gives the numpy kernel before it loads the compiled
#: one, when numba's cache does not hold it yet: small searches on a new machine never pay the
#: compile (3-5 s).
#: Both kernels give identical groupings (tested), so only the speed depends on it. Measured on
#: a 200-participant intake (four cohorts of ~23 pairs, 4.2 M): the first solve on a new
#: machine 9.4 s -> 2.7-3.1 s; with numba's cache warm, 2.0 s -> 2.7-3.1 s.
NUMPY_FIRST_WORK = 6_000_000
_numpy_work = 0
_CACHED: bool | None = None
#: The numpy kernel's cost per iteration on ``n`` elements, about ``NUMPY_ITER_S + NUMPY_PAIR_S
#: * n^2`` seconds (measured on 8-100 elements, perturbations included: 54 us at 8, 65 at 23,
#: 103 at 46, 354 at 100).
NUMPY_ITER_S = 60e-6
NUMPY_PAIR_S = 35e-9
#: Searches announced (:func:`expect_searches`) run on the numpy kernel, even when numba's
#: cache holds the compiled one, while the numpy time estimated for every batch granted in this
#: process stays under this: loading the compiled kernel in a fresh process (numba's import and
#: target set-up) takes 0.45-0.7 s, more than they would. Past it the compiled kernel is loaded,
#: once: a long-lived process (the web app) then stops paying the numpy kernel's time on every
#: small solve (a rent-or-buy rule: at most twice the better of the two).
NUMPY_BATCH_S = 0.45
#: The same when numba is already imported (only the kernel itself is then loaded).
NUMPY_BATCH_LOADED_S = 0.1
#: Work (iterations x elements^2) the announced batch may still run on the numpy kernel.
_numpy_allowance = 0
#: Estimated numpy seconds of the batches granted so far in this process.
_numpy_granted_s = 0.0


def search_work(iterations: int, elements: int) -> int:
    """The work of a tabu search in the units the kernel choice counts: each iteration weighs
    every move, O(elements^2)."""
    return iterations * elements * elements


def _numpy_batch(searches: list[tuple[int, int]], within: float | None) -> float | None:
    """The numpy seconds to grant the batch ``searches`` (see :func:`expect_searches`), or
    None when it should run on the compiled kernel."""
    if _KERNEL is not None:
        return None
    seconds = sum(it * (NUMPY_ITER_S + NUMPY_PAIR_S * n * n) for it, n in searches)
    if within is not None:
        seconds = min(seconds, within)
    limit = NUMPY_BATCH_LOADED_S if "numba" in sys.modules else NUMPY_BATCH_S
    # Searches that must stop within twice the load: loading the compiled kernel (which
    # cannot be cut short) would take half their time or more, or overrun it.
    short = within is not None and within < 2 * limit
    return seconds if short or _numpy_granted_s + seconds <= limit else None


def expect_searches(searches: list[tuple[int, int]], within: float | None = None) -> None:
    """Announce the tabu searches about to run, as (iterations, elements) each, and, under a
    time limit, the seconds ``within`` which they will all have stopped: when the compiled
    kernel is not loaded yet and the numpy kernel would do them, with the batches already
    granted in this process, in less time than loading it takes, they run on the numpy kernel
    (identical results for the same iterations); otherwise nothing changes. Searches past the
    announced work choose as before."""
    global _numpy_allowance, _numpy_granted_s
    _numpy_allowance = 0
    seconds = _numpy_batch(searches, within)
    if seconds is not None:
        _numpy_granted_s += seconds
        _numpy_allowance = sum(search_work(it, n) for it, n in searches)


def would_load_compiled(searches: list[tuple[int, int]], within: float | None = None) -> bool:
    """Whether the searches announced as in :func:`expect_searches` would make this process
    load the compiled kernel (numba's import and the kernel's code, 0.8-1 s in a fresh
    process): it is not loaded yet and they are more than the numpy kernel does faster.
    Nothing is granted or loaded."""
    return _KERNEL is None and bool(searches) and _numpy_batch(searches, within) is None


def _compiled_on_disk() -> bool:
    """Whether numba's cache holds a compiled tabu kernel (then loading it takes under a second
    and the numpy kernel would only be slower). Looks where numba writes it: the source's
    ``__pycache__`` or ``NUMBA_CACHE_DIR``; a stale entry only costs a compile, as without."""
    return compiled_on_disk(__file__, "_tabu_steps")


def _tabu_kernel(work: int = 0) -> Callable[..., int]:
    """The kernel for a search of ``work`` (iterations x elements^2): the numpy one within an
    announced batch that it does faster than the compiled one loads (:func:`expect_searches`);
    the compiled one (numba) when numba's cache already holds it; otherwise the numpy one
    while this process's searches stay within ``NUMPY_FIRST_WORK`` in total, then the
    compiled one (compiled and cached now); the numpy one without numba."""
    global _KERNEL, _numpy_work, _CACHED, _numpy_allowance
    if _KERNEL is None and 0 < work <= _numpy_allowance:
        _numpy_allowance -= work
        return _tabu_steps_numpy
    if _CACHED is None:
        _CACHED = _compiled_on_disk()
    if _KERNEL is None and not _CACHED and _numpy_work + work <= NUMPY_FIRST_WORK:
        _numpy_work += work
        return _tabu_steps_numpy
    if _KERNEL is None:
        compiled = compile_kernel(_tabu_steps, (_rand_below, _move), {"np": np}, cache_helpers=True)
        _KERNEL = compiled if compiled is not None else _tabu_steps_numpy
    return _KERNEL


def load_compiled() -> bool:
    """Load the compiled kernel now when numba's cache holds it; never compiles. Returns
    whether the compiled kernel is loaded (numba reads its code on the first call:
    :func:`solvers.grouping.search.warm_up` makes that call too)."""
    global _CACHED
    if _CACHED is None:
        _CACHED = _compiled_on_disk()
    if _CACHED:
        _tabu_kernel(np.iinfo(np.int64).max)
    return compiled_loaded()


def compiled_loaded() -> bool:
    """Whether this process has loaded the compiled kernel."""
    return _KERNEL is not None and _KERNEL is not _tabu_steps_numpy


# The functions below are written in the numba-compatible subset of Python (loops, scalars, numpy
# arrays). Random numbers come from a 31-bit Park-Miller generator whose state lives in
# ints[2]: int64 arithmetic that never overflows, so numba and plain Python agree bit for bit.

_RNG_MOD = 2147483647


def _rand_below(ints: IntArray, k: int) -> int:
    s = (ints[2] * 48271) % 2147483647
    ints[2] = s
    return int(s % k)


def _move(
    d: FloatArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    mt: FloatArray,
    ct: IntArray,
    i: int,
    b: int,
) -> None:
    """Move ``i`` to group ``b``, keeping ``m`` and ``c`` and their transposes ``mt`` and
    ``ct`` up to date."""
    a = labels[i]
    n = d.shape[0]
    for k in range(n):
        x = d[k, i]
        m[k, a] -= x
        m[k, b] += x
        mt[a, k] -= x
        mt[b, k] += x
    if has_cl:
        for k in range(n):
            if cl[k, i]:
                c[k, a] -= 1
                c[k, b] += 1
                ct[a, k] -= 1
                ct[b, k] += 1
    labels[i] = b
    sizes[a] -= 1
    sizes[b] += 1


def _tabu_steps(
    d: FloatArray,
    lo: IntArray,
    hi: IntArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    tabu: IntArray,
    best_labels: IntArray,
    floats: FloatArray,
    ints: IntArray,
    params: IntArray,
    steps: int,
) -> int:
    """Run up to ``steps`` iterations of iterated tabu search. Returns 0 after ``steps``
    iterations, 1 if no move exists at all, 2 right after an iteration that calls for a
    perturbation (the caller runs :func:`_perturb` and continues: keeping it out of the
    compiled code halves numba's compile time, and it runs once per ``depth`` iterations).

    Each iteration makes the best admissible move among all relocations (element to another
    group, within bounds) and all swaps (two elements of different groups). A move is admissible
    unless it puts an element back in a group it left within the tabu tenure, except when it
    yields a new overall best (aspiration). Moves that would put a cannot-link pair together are
    never considered. After ``depth`` iterations without improving the best since the last
    perturbation, the search restarts from the overall best with ``strength`` random swaps.
    """
    n = d.shape[0]
    n_groups = lo.shape[0]
    depth = params[0]
    tmin = params[2]
    tspan = params[3]
    # Two speed-ups that leave every value, and so every move, the same:
    # - the swap scan reads column a of m, c and tabu for every j: row-major transposes (kept
    #   in step with them) make those reads contiguous, and own[j] = m[j, labels[j]] is read
    #   once per iteration (2x faster at 920 elements, whose columns are far apart in memory);
    # - each move's delta comes first, and one below the best so far is passed over before
    #   its checks (size, group, cannot-link, tabu): it could neither win nor tie. A move is
    #   skipped only once best_delta > -inf, i.e. after a move was counted, so "no move at
    #   all" (n_moves == 0) is found exactly as before (another 2x at 920 elements).
    mt = np.ascontiguousarray(m.T)
    ct = np.ascontiguousarray(c.T)
    tabut = np.ascontiguousarray(tabu.T)
    own = np.empty(n)
    for _ in range(steps):
        it = ints[0]
        cur = floats[0]
        best = floats[1]
        eps = 1e-9 * (1.0 + abs(best))
        best_delta = -np.inf
        bi = -1
        bj = -1
        bg = -1
        ties = 0
        n_moves = 0
        # Relocations: i from group a to group g.
        for i in range(n):
            a = labels[i]
            if sizes[a] <= lo[a]:
                continue
            mia = m[i, a]
            for g in range(n_groups):
                delta = m[i, g] - mia
                if delta < best_delta:
                    continue  # neither a better move nor a tie: its checks cannot matter
                if g == a or sizes[g] >= hi[g]:
                    continue
                if has_cl and c[i, g] > 0:
                    continue
                n_moves += 1
                if tabu[i, g] > it and cur + delta <= best + eps:
                    continue
                if delta > best_delta:
                    best_delta = delta
                    bi = i
                    bj = -1
                    bg = g
                    ties = 1
                elif delta == best_delta:
                    ties += 1
                    if _rand_below(ints, ties) == 0:
                        bi = i
                        bj = -1
                        bg = g
        # Swaps: i (in a) and j (in b) exchange groups.
        for j in range(n):
            own[j] = m[j, labels[j]]
        for i in range(n):
            a = labels[i]
            mia = m[i, a]
            for j in range(i + 1, n):
                b = labels[j]
                delta = m[i, b] - mia + mt[a, j] - own[j] - 2.0 * d[i, j]
                if delta < best_delta:
                    continue
                if a == b:
                    continue
                if has_cl:
                    link = 1 if cl[i, j] else 0
                    if c[i, b] - link > 0 or ct[a, j] - link > 0:
                        continue
                n_moves += 1
                if (tabu[i, b] > it or tabut[a, j] > it) and cur + delta <= best + eps:
                    continue
                if delta > best_delta:
                    best_delta = delta
                    bi = i
                    bj = j
                    bg = -1
                    ties = 1
                elif delta == best_delta:
                    ties += 1
                    if _rand_below(ints, ties) == 0:
                        bi = i
                        bj = j
                        bg = -1
        if n_moves == 0:
            return 1
        if bi >= 0:
            if bj < 0:
                a = labels[bi]
                _move(d, cl, has_cl, labels, sizes, m, c, mt, ct, int(bi), int(bg))
                tabu[bi, a] = tabut[a, bi] = it + tmin + _rand_below(ints, tspan)
            else:
                a = labels[bi]
                b = labels[bj]
                _move(d, cl, has_cl, labels, sizes, m, c, mt, ct, int(bi), int(b))
                _move(d, cl, has_cl, labels, sizes, m, c, mt, ct, int(bj), int(a))
                tabu[bi, a] = tabut[a, bi] = it + tmin + _rand_below(ints, tspan)
                tabu[bj, b] = tabut[b, bj] = it + tmin + _rand_below(ints, tspan)
            cur += best_delta
            floats[0] = cur
        ints[0] = it + 1
        if cur > best + eps:
            floats[1] = cur
            for k in range(n):
                best_labels[k] = labels[k]
        if cur > floats[2] + eps:
            floats[2] = cur
            ints[1] = 0
        else:
            ints[1] += 1
        if ints[1] >= depth:
            return 2
    return 0


def _perturb(
    d: FloatArray,
    lo: IntArray,
    hi: IntArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    tabu: IntArray,
    best_labels: IntArray,
    floats: FloatArray,
    ints: IntArray,
    strength: int,
) -> None:
    """Restart from the overall best and apply ``strength`` random feasible swaps/relocations.

    Plain Python and numpy (it runs once per ``depth`` iterations, never compiled), with the
    floating-point operations of the loop it replaced, in the same order: each ``m[k, g]`` is
    the sum of ``d[k, i]`` over the members ``i`` of ``g`` in increasing ``i``."""
    n = d.shape[0]
    n_groups = lo.shape[0]
    # Recompute from scratch: also clears floating-point drift of the incremental updates.
    labels[:] = best_labels
    sizes[:] = np.bincount(labels, minlength=n_groups)
    m[:] = 0.0
    # m[:, labels[i]] += d[:, i] for i = 0, 1, ... (ufunc.at applies them in this order)
    np.add.at(m.T, labels, d.T)
    c[:] = 0
    if has_cl:
        np.add.at(c.T, labels, cl.T.astype(c.dtype))
    done = 0
    attempts = 0
    while done < strength and attempts < 50 * strength:
        attempts += 1
        i = _rand_below(ints, n)
        a = int(labels[i])
        if _rand_below(ints, 2) == 0:
            g = _rand_below(ints, n_groups)
            if g == a or sizes[a] <= lo[a] or sizes[g] >= hi[g]:
                continue
            if has_cl and c[i, g] > 0:
                continue
            _move_numpy(d, cl, has_cl, labels, sizes, m, c, i, g)
        else:
            j = _rand_below(ints, n)
            b = int(labels[j])
            if a == b:
                continue
            if has_cl:
                link = 1 if cl[i, j] else 0
                if c[i, b] - link > 0 or c[j, a] - link > 0:
                    continue
            _move_numpy(d, cl, has_cl, labels, sizes, m, c, i, b)
            _move_numpy(d, cl, has_cl, labels, sizes, m, c, j, a)
        done += 1
    obj = 0.0
    for i in range(n):  # in order, as the loop kernel sums (never sum(): Python 3.12 compensates)
        obj += float(m[i, labels[i]])
    floats[0] = obj / 2.0
    floats[2] = floats[0]
    ints[1] = 0
    tabu[:] = 0


# --------------------------------------------------------------------------------------------
# The same tabu iterations, vectorised with numpy (no compilation)
# --------------------------------------------------------------------------------------------


def _tabu_steps_numpy(
    d: FloatArray,
    lo: IntArray,
    hi: IntArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    tabu: IntArray,
    best_labels: IntArray,
    floats: FloatArray,
    ints: IntArray,
    params: IntArray,
    steps: int,
) -> int:
    """:func:`_tabu_steps` with each iteration's move evaluation in numpy: same moves, same
    random draws, same floating-point operations per move, hence identical results (tested).

    The best move is picked as the loop picks it: moves in loop order (relocations by element
    then group, then swaps by (i, j)); a move above the running maximum becomes the choice, one
    equal to it is a tie, and each tie draws ``rand_below(ties)`` (ties counted since the last
    new maximum) and becomes the choice on 0. Only the draws' count and order matter for the
    generator state, so they are replayed in order on the tie positions alone.
    """
    n = d.shape[0]
    n_groups = lo.shape[0]
    depth, tmin, tspan = int(params[0]), int(params[2]), int(params[3])
    rows = np.arange(n)
    # Swaps are the pairs i < j; with ``X = x[:, labels]`` (X[i, j] = x[i, group of j]) the
    # values a swap reads are X[i, j] (i's entry for j's group) and X[j, i], so each is one
    # ``take`` of a flat index: ``tri`` (i * n + j) and ``tri_t`` (j * n + i).
    iu, ju = np.triu_indices(n, k=1)
    tri = iu * n + ju
    tri_t = ju * n + iu
    d2 = 2.0 * d.ravel().take(tri)  # 2.0 * d[i, j], exactly as the loop computes it
    link = cl.ravel().take(tri).astype(np.int64) if has_cl else None
    for _ in range(steps):
        it = int(ints[0])
        cur = float(floats[0])
        best = float(floats[1])
        eps = 1e-9 * (1.0 + abs(best))
        # Relocations: i from its group a to group g.
        ok = (sizes > lo).take(labels)[:, None] & (sizes < hi)[None, :]
        ok[rows, labels] = False
        if has_cl:
            ok &= c == 0
        mx = m.take(labels, axis=1)
        m_own = mx.diagonal()
        reloc_delta = m - m_own[:, None]
        barred = tabu > it
        barred &= cur + reloc_delta <= best + eps
        admit = ok > barred  # ok and not barred
        # Swaps: i (in a) and j (in b), i < j, exchange groups.
        lab_i, lab_j = labels.take(iu), labels.take(ju)
        ok_s = lab_i != lab_j
        if has_cl:
            cx = c.take(labels, axis=1).ravel()
            ok_s &= (cx.take(tri) - link <= 0) & (cx.take(tri_t) - link <= 0)
        if not ok_s.any() and not ok.any():
            return 1
        mf = mx.ravel()
        swap_delta = mf.take(tri) - m_own.take(iu) + mf.take(tri_t) - m_own.take(ju) - d2
        tx = (tabu.take(labels, axis=1) > it).ravel()
        barred_s = tx.take(tri) | tx.take(tri_t)
        barred_s &= cur + swap_delta <= best + eps
        admit_s = ok_s > barred_s
        r_idx = admit.ravel().nonzero()[0]
        s_idx = admit_s.nonzero()[0]
        deltas = np.concatenate([reloc_delta.ravel().take(r_idx), swap_delta.take(s_idx)])
        bi = bj = bg = -1
        best_delta = -np.inf
        if deltas.size:
            before = np.empty_like(deltas)
            before[0] = -np.inf
            np.maximum.accumulate(deltas[:-1], out=before[1:])
            rises = deltas > before
            ties_at = (deltas == before).nonzero()[0]
            # the first occurrence of the maximum is where the loop first meets it (a rise)
            pick = int(deltas.argmax())
            best_delta = float(deltas[pick])
            if ties_at.size:
                segment = np.cumsum(rises, dtype=np.int64)
                within = _ties_within_segment(ties_at, segment)
                state = int(ints[2])
                for pos, k in zip(ties_at.tolist(), within.tolist(), strict=True):
                    state = (state * 48271) % 2147483647
                    if state % k == 0 and pos > pick:
                        pick = pos
                ints[2] = state
            if pick < r_idx.size:
                flat = int(r_idx[pick])
                bi, bg = flat // n_groups, flat % n_groups
            else:
                s = int(s_idx[pick - r_idx.size])
                bi, bj = int(iu[s]), int(ju[s])
        if bi >= 0:
            if bj < 0:
                a0 = int(labels[bi])
                _move_numpy(d, cl, has_cl, labels, sizes, m, c, bi, bg)
                tabu[bi, a0] = it + tmin + _rand_below(ints, tspan)
            else:
                a0, b0 = int(labels[bi]), int(labels[bj])
                _move_numpy(d, cl, has_cl, labels, sizes, m, c, bi, b0)
                _move_numpy(d, cl, has_cl, labels, sizes, m, c, bj, a0)
                tabu[bi, a0] = it + tmin + _rand_below(ints, tspan)
                tabu[bj, b0] = it + tmin + _rand_below(ints, tspan)
            cur += best_delta
            floats[0] = cur
        ints[0] = it + 1
        if cur > best + eps:
            floats[1] = cur
            best_labels[:] = labels
        if cur > floats[2] + eps:
            floats[2] = cur
            ints[1] = 0
        else:
            ints[1] += 1
        if ints[1] >= depth:
            return 2
    return 0


def _ties_within_segment(ties_at: IntArray, segment: IntArray) -> IntArray:
    """For each tie position, the loop's ``ties`` counter when it is met: 1 for the segment's
    maximum plus the ties of the same segment up to and including this one."""
    seg = segment[ties_at]
    first = np.r_[True, seg[1:] != seg[:-1]]
    group_start = np.maximum.accumulate(np.where(first, np.arange(seg.size), 0))
    return (np.arange(seg.size) - group_start + 2).astype(np.int64)


def _move_numpy(
    d: FloatArray,
    cl: NDArray[np.bool_],
    has_cl: bool,
    labels: IntArray,
    sizes: IntArray,
    m: FloatArray,
    c: IntArray,
    i: int,
    b: int,
) -> None:
    """:func:`_move` vectorised (the same per-element operations)."""
    a = int(labels[i])
    m[:, a] -= d[:, i]
    m[:, b] += d[:, i]
    if has_cl:
        c[:, a] -= cl[:, i]
        c[:, b] += cl[:, i]
    labels[i] = b
    sizes[a] -= 1
    sizes[b] += 1
