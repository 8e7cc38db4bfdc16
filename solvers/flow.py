"""Capacitated assignment of items to bins as one min-cost maximum flow.

Entry point: :func:`bin_flow`. Items (``units`` and ``singles``) each go to at most one bin they
are allowed in; bin ``b`` takes at most ``room[b]`` items; the singles together take at most
``singles_cap``. Among the assignments that place the most items, the one of least total cost is
returned (each allowed (item, bin) arc carries a small non-negative integer cost).

Guarantee: optimal (OR-Tools' ``SimpleMinCostFlow.solve_max_flow_with_min_cost``; network flow
problems with integer capacities have integral optimal flows, so the maximum is exact).
Time: polynomial, O(arcs) memory; about a second for a few hundred thousand arcs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

IntArray = NDArray[np.int64]
#: The source and sink nodes of every network here.
_SOURCE, _SINK = 0, 1


class FlowError(RuntimeError):
    """The flow solver reported something other than an optimal flow (a bug in the input)."""


@dataclass(frozen=True)
class BinFlow:
    """The most items placed (``value``), and where: ``unit_bin[u]`` / ``single_bin[s]`` is the
    bin of each item, or -1 when it is not placed."""

    value: int
    unit_bin: IntArray
    single_bin: IntArray
    cost: int


def bin_flow(
    n_units: int,
    unit_arcs: tuple[ArrayLike, ArrayLike, ArrayLike],
    n_singles: int,
    single_arcs: tuple[ArrayLike, ArrayLike, ArrayLike],
    room: ArrayLike,
    singles_cap: int,
) -> BinFlow:
    """Place the most items, then at least cost.

    Args:
        n_units, n_singles: numbers of items of each kind.
        unit_arcs, single_arcs: ``(item, bin, cost)`` arrays of equal length: item ``item[e]``
            may go to bin ``bin[e]`` at cost ``cost[e]`` (integers >= 0).
        room: 1-D integer array, the capacity of each bin (>= 0).
        singles_cap: most singles placed in total (>= 0).

    Raises:
        ValueError: on arrays of unequal length, indices out of range or negative numbers.
        FlowError: if the solver does not report an optimal flow.
    """
    room_a = np.asarray(room, dtype=np.int64)
    n_bins = len(room_a)
    if np.any(room_a < 0) or singles_cap < 0 or n_units < 0 or n_singles < 0:
        raise ValueError("capacities and counts must be >= 0")
    ua = _checked_arcs(unit_arcs, n_units, n_bins)
    sa = _checked_arcs(single_arcs, n_singles, n_bins)
    # nodes: 0 source, 1 sink, 2 hub of the singles, then units, singles, bins
    source, sink, hub = _SOURCE, _SINK, 2
    u0 = 3
    s0 = u0 + n_units
    b0 = s0 + n_singles
    tails = [
        np.zeros(n_units, dtype=np.int64),
        np.array([source]),
        np.full(n_singles, hub, dtype=np.int64),
        u0 + ua[0],
        s0 + sa[0],
        b0 + np.arange(n_bins, dtype=np.int64),
    ]
    heads = [
        u0 + np.arange(n_units, dtype=np.int64),
        np.array([hub]),
        s0 + np.arange(n_singles, dtype=np.int64),
        b0 + ua[1],
        b0 + sa[1],
        np.full(n_bins, sink, dtype=np.int64),
    ]
    caps = [
        np.ones(n_units, dtype=np.int64),
        np.array([singles_cap]),
        np.ones(n_singles, dtype=np.int64),
        np.ones(len(ua[0]), dtype=np.int64),
        np.ones(len(sa[0]), dtype=np.int64),
        room_a,
    ]
    costs = [
        np.zeros(n_units, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        np.zeros(n_singles, dtype=np.int64),
        ua[2],
        sa[2],
        np.zeros(n_bins, dtype=np.int64),
    ]
    flows, cost = _max_flow_min_cost(
        tails, heads, caps, costs, n_units + min(singles_cap, n_singles)
    )
    start = n_units + 1 + n_singles
    unit_bin = _bin_of(n_units, ua, flows[start : start + len(ua[0])])
    start += len(ua[0])
    single_bin = _bin_of(n_singles, sa, flows[start : start + len(sa[0])])
    value = int((unit_bin >= 0).sum() + (single_bin >= 0).sum())
    return BinFlow(value, unit_bin, single_bin, cost)


@dataclass(frozen=True)
class PairFlow:
    """The most (row, column) pairs sharing a bin (``value``): ``row_bin[i]`` / ``col_bin[j]``
    is the bin of each, or -1; each bin holds as many rows as columns."""

    value: int
    row_bin: IntArray
    col_bin: IntArray
    cost: int


def pair_flow(
    n_rows: int,
    row_arcs: tuple[ArrayLike, ArrayLike, ArrayLike],
    n_cols: int,
    col_arcs: tuple[ArrayLike, ArrayLike, ArrayLike],
    room: ArrayLike,
) -> PairFlow:
    """Put the most rows and columns into bins in equal numbers, then at least cost.

    A row may go to a bin along ``row_arcs`` ``(row, bin, cost)``, a column along ``col_arcs``;
    bin ``b`` takes at most ``room[b]`` rows (and as many columns). One maximum flow, source ->
    row -> bin -> column -> sink; which row pairs with which column inside a bin is left to the
    caller. Same guarantee and errors as :func:`bin_flow`.
    """
    room_a = np.asarray(room, dtype=np.int64)
    n_bins = len(room_a)
    if np.any(room_a < 0) or n_rows < 0 or n_cols < 0:
        raise ValueError("capacities and counts must be >= 0")
    ra = _checked_arcs(row_arcs, n_rows, n_bins)
    ca = _checked_arcs(col_arcs, n_cols, n_bins)
    # nodes: 0 source, 1 sink, rows, columns, bins in, bins out
    r0, c0 = 2, 2 + n_rows
    b_in = c0 + n_cols
    b_out = b_in + n_bins
    bins = np.arange(n_bins, dtype=np.int64)
    tails = [
        np.full(n_rows, _SOURCE, np.int64),
        r0 + ra[0],
        b_in + bins,
        b_out + ca[1],
        c0 + np.arange(n_cols),
    ]
    heads = [
        r0 + np.arange(n_rows),
        b_in + ra[1],
        b_out + bins,
        c0 + ca[0],
        np.full(n_cols, _SINK, np.int64),
    ]
    caps = [
        np.ones(n_rows, np.int64),
        np.ones(len(ra[0]), np.int64),
        room_a,
        np.ones(len(ca[0]), np.int64),
        np.ones(n_cols, np.int64),
    ]
    costs = [
        np.zeros(n_rows, np.int64),
        ra[2],
        np.zeros(n_bins, np.int64),
        ca[2],
        np.zeros(n_cols, np.int64),
    ]
    flows, cost = _max_flow_min_cost(tails, heads, caps, costs, min(n_rows, n_cols))
    start = n_rows
    row_bin = _bin_of(n_rows, ra, flows[start : start + len(ra[0])])
    start += len(ra[0]) + n_bins
    col_bin = _bin_of(n_cols, ca, flows[start : start + len(ca[0])])
    return PairFlow(int((row_bin >= 0).sum()), row_bin, col_bin, cost)


def _checked_arcs(
    arcs: tuple[ArrayLike, ArrayLike, ArrayLike], n_items: int, n_bins: int
) -> list[IntArray]:
    """``(item, bin, cost)`` as int64 arrays, checked: equal lengths, indices in range, costs
    >= 0 (ValueError otherwise)."""
    item, b, cost = (np.asarray(x, dtype=np.int64) for x in arcs)
    if not (len(item) == len(b) == len(cost)):
        raise ValueError("arc arrays must have equal lengths")
    if len(item) and (
        item.min() < 0
        or item.max() >= n_items
        or b.min() < 0
        or b.max() >= n_bins
        or cost.min() < 0
    ):
        raise ValueError("arc index out of range or negative cost")
    return [item, b, cost]


def _max_flow_min_cost(
    tails: list[IntArray],
    heads: list[IntArray],
    caps: list[IntArray],
    costs: list[IntArray],
    most: int,
) -> tuple[IntArray, int]:
    """The flow on each arc (in the order given) of a maximum flow of least cost from _SOURCE
    (offering ``most`` units) to _SINK, and that cost."""
    from ortools.graph.python import min_cost_flow

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(tails).astype(np.int64),
        np.concatenate(heads).astype(np.int64),
        np.concatenate(caps),
        np.concatenate(costs),
    )
    # the source offers every item, the sink takes them all; the solver sends the most it can
    flow.set_node_supply(_SOURCE, most)
    flow.set_node_supply(_SINK, -most)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise FlowError(f"min-cost flow status {status}")
    return flow.flows(np.arange(flow.num_arcs())), int(flow.optimal_cost())


def _bin_of(n_items: int, arcs: list[IntArray], arc_flows: IntArray) -> IntArray:
    """Each item's bin from the flows on its (item, bin) arcs, -1 when it carries none."""
    out = np.full(n_items, -1, dtype=np.int64)
    on = arc_flows > 0
    out[arcs[0][on]] = arcs[1][on]
    return out
