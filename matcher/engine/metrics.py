"""Quality metrics of a solution, computed from the instance and the solution alone.

Every figure is documented in :func:`solution_metrics`. Group breakdowns (by role,
organisation type, local system) suppress groups of fewer than ``MIN_GROUP`` people, so that
no figure describes an identifiable handful of participants.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from matcher.contract.instance import Instance, Participant
from matcher.contract.keys import category_key
from matcher.contract.solution import MIN_GROUP as MIN_GROUP  # re-exported; its home
from matcher.contract.solution import Pair, Solution
from matcher.engine.pairing import FloatArray, IntArray, LoneScan, scan_lone
from matcher.engine.scoring import Side, iter_blocks, lone_sides, pair_scores, people_by_id


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "total": 0.0, "mean": None, "median": None, "min": None}
    return {
        "count": len(values),
        "total": round(sum(values), 6),
        "mean": round(statistics.fmean(values), 6),
        "median": round(statistics.median(values), 6),
        "min": round(min(values), 6),
    }


def blocking_pairs(
    instance: Instance,
    solution: Solution,
    tick: Callable[[str], object] | None = None,
    *,
    sides: tuple[Side, Side] | None = None,
    all_allowed: tuple[IntArray, IntArray, FloatArray] | None = None,
) -> list[tuple[str, str]]:
    """Lone patient leader and professional who could be paired and would both rather be
    together than with their partner (or alone), preferences taken from the scores.

    Only people who applied alone count: pre-formed pairs are fixed by the programme. Scored
    block by block, so memory stays bounded on large intakes. ``sides``: the intake's
    :func:`matcher.engine.scoring.lone_sides`, when the caller has them (the pairing's scan
    does: building them again took ~1 s at 20,000 participants). ``all_allowed``: every allowed
    lone pair (row and column into ``sides``, score) in row-major order, when the caller has
    them all (:attr:`matcher.engine.pairing.LoneScan.every_allowed`): then nothing is scored
    again (0.1 s at 5,000 participants).
    """
    a, b = sides if sides is not None else lone_sides(instance)
    partner: dict[str, str] = {}
    for p in solution.pairs:
        partner[p.patient_leader], partner[p.partner] = p.partner, p.patient_leader
    lone_pairs = [(x, partner[x]) for x in a.ids if partner.get(x) in b.index]
    if tick is not None:
        tick(f"blocking pairs, scores of {len(lone_pairs)} lone pairs")
    current = dict(zip(lone_pairs, pair_scores(instance, lone_pairs)[0].tolist(), strict=True))
    cur_row = np.array([current.get((x, partner.get(x, "")), -np.inf) for x in a.ids])
    cur_col = np.array([current.get((partner.get(y, ""), y), -np.inf) for y in b.ids])
    eps = 1e-9
    if all_allowed is not None:
        r, c, sc = all_allowed
        hit = (sc > cur_row[r] + eps) & (sc > cur_col[c] + eps)
        return [(a.ids[i], b.ids[j]) for i, j in zip(r[hit].tolist(), c[hit].tolist(), strict=True)]
    out: list[tuple[str, str]] = []
    for start, comp in iter_blocks(instance, a, b):
        if tick is not None:
            tick(f"blocking pairs, {start} of {len(a.ids)} rows")
        rows = cur_row[start : start + comp.scores.shape[0]]
        allowed = ~comp.forbidden & (comp.scores >= instance.rules.min_score)
        block = allowed & (comp.scores > rows[:, None] + eps) & (comp.scores > cur_col + eps)
        ii, jj = np.nonzero(block)
        out += [(a.ids[start + i], b.ids[j]) for i, j in zip(ii, jj, strict=True)]
    return out


#: Participant fields the plan's metrics group by (``groups``).
GROUP_FIELDS: tuple[str, ...] = ("role", "organisation_type", "system")
#: A derived grouping field: whether the person applied with a partner or alone.
APPLIED = "applied"
#: Participant fields that hold personal data or IDs of others: never grouped by.
_NOT_GROUPABLE = frozenset(
    {"id", "name", "email", "partner", "avoid", "preferences", "status", "project_description"}
)


def groupable_fields() -> tuple[str, ...]:
    """Fields :func:`group_outcomes` accepts: the participant's category and list fields (a
    person with several interests counts in each), and ``applied`` (alone / with a partner)."""
    return (
        *sorted(f for f in Participant.model_fields if f not in _NOT_GROUPABLE),
        APPLIED,
    )


def _values(person: Any, field: str) -> list[str]:
    if field == APPLIED:
        return ["with a partner" if person.partner else "alone"]
    value = getattr(person, field)
    if value is None:
        return ["(not given)"]
    if isinstance(value, list | tuple):
        return [str(v) for v in value] or ["(none)"]
    return [str(value)]


def group_outcomes(
    instance: Instance,
    solution: Solution,
    fields: tuple[str, ...] | list[str] = GROUP_FIELDS,
    *,
    min_group: int = MIN_GROUP,
    scores: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per (field, value) over the active participants: people, placed, wait-listed
    and unpaired (counts and shares of the group's people) and the mean pair score of the
    placed. Groups of fewer than ``min_group`` people (``0``: none) keep their field and value
    with ``suppressed`` true and every figure None. Values are grouped by the one category
    rule (case, spaces and punctuation ignored) and shown as first spelt; rows are ordered by
    field (as given), then value. ``scores`` (pair ID -> score) replaces the plan's pair
    scores, e.g. to compare plans re-scored under one weighting."""
    known = groupable_fields()
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise ValueError(f"cannot group by {unknown}; valid fields: {', '.join(known)}")
    if min_group < 0:
        raise ValueError(f"min_group must be 0 or more, got {min_group}")
    pair_of: dict[str, Pair] = {}
    for p in solution.pairs:
        pair_of[p.patient_leader] = pair_of[p.partner] = p
    waitlisted = {w.pair for w in solution.waitlist}
    out: list[dict[str, Any]] = []
    for field in dict.fromkeys(fields):
        spelling: dict[str, str] = {}
        members: dict[str, list[str]] = defaultdict(list)
        for person in instance.participants:
            if not person.active:
                continue
            for v in dict.fromkeys(_values(person, field)):
                key = category_key(v) if field != APPLIED else v
                members[spelling.setdefault(key, v)].append(person.id)
        for value in sorted(members):
            ids = members[value]
            n = len(ids)
            if n < min_group:
                out.append(
                    {
                        "field": field,
                        "value": value,
                        "suppressed": True,
                        **dict.fromkeys(GROUP_FIGURES),
                    }
                )
                continue
            pairs = [pair_of.get(x) for x in ids]
            placed = [
                p.score if scores is None else scores[p.id]
                for p in pairs
                if p is not None and p.cohort is not None
            ]
            wait = sum(1 for p in pairs if p is not None and p.id in waitlisted)
            alone = sum(1 for p in pairs if p is None)
            out.append(
                {
                    "field": field,
                    "value": value,
                    "suppressed": False,
                    "people": n,
                    "placed": len(placed),
                    "waitlisted": wait,
                    "unpaired": alone,
                    "placed_share": round(len(placed) / n, 6),
                    "waitlisted_share": round(wait / n, 6),
                    "unpaired_share": round(alone / n, 6),
                    "mean_score_placed": round(statistics.fmean(placed), 6) if placed else None,
                }
            )
    return out


#: The figures of a group row, in order (None when the group is suppressed); the bench's group
#: columns end with them.
GROUP_FIGURES = (
    "people",
    "placed",
    "waitlisted",
    "unpaired",
    "placed_share",
    "waitlisted_share",
    "unpaired_share",
    "mean_score_placed",
)


def solution_metrics(
    instance: Instance,
    solution: Solution,
    scan: LoneScan | None = None,
    *,
    tick: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Quality figures of ``solution``.

    - ``people``: per side (patient leaders, professionals): participants, paired, placed in a
      cohort, wait-listed (paired but no cohort), unmatched.
    - ``scores``: count, total, mean, median and minimum pair score, for all pairs and for the
      pairs formed from lone applicants.
    - ``top3_share``: share of the lone applicants who were paired who got one of their
      ``TOP_K`` highest-scoring allowed candidates (ties with the third count as top 3).
      ``scan`` (from the pairing) saves scoring the intake again.
    - ``blocking_pairs``: number of lone pairs who would both rather be together
      (:func:`blocking_pairs`).
    - ``by_role`` / ``by_organisation_type`` / ``by_system``: mean pair score of the people in
      each group (groups under ``MIN_GROUP`` people are suppressed).
    - ``groups``: :func:`group_outcomes` by role, organisation type and local system (people,
      shares placed, wait-listed and unpaired, mean score of the placed; small groups
      suppressed with null figures and a flag).
    - ``sets``: number of sets, mean and least set diversity.
    - ``cohort_fill``: pairs placed, capacity and fill ratio per cohort.

    ``tick`` (optional) is called between the parts with what comes next, for progress reports.
    """
    people = people_by_id(instance)
    pair_of: dict[str, Pair] = {}
    for p in solution.pairs:
        pair_of[p.patient_leader] = pair_of[p.partner] = p
    waitlisted = {w.pair for w in solution.waitlist}

    sides: dict[str, dict[str, int]] = {}
    for side, members in (
        ("patient_leaders", [p for p in instance.participants if p.role == "patient_leader"]),
        ("professionals", [p for p in instance.participants if p.role != "patient_leader"]),
    ):
        paired = [p for p in members if p.id in pair_of]
        sides[side] = {
            "participants": len(members),
            "paired": len(paired),
            "placed": sum(1 for p in paired if pair_of[p.id].cohort is not None),
            "waitlisted": sum(1 for p in paired if pair_of[p.id].id in waitlisted),
            "unmatched": len(members) - len(paired),
        }

    if tick is not None:
        tick("top-3 share")
    if scan is None:
        scan = scan_lone(instance, candidates=False)
    hits: list[bool] = []
    for own, stats in ((scan.rows, scan.row_stats), (scan.cols, scan.col_stats)):
        mates = []
        for pid in own.ids:
            pair = pair_of.get(pid)
            if pair is not None and not pair.preformed:
                mates.append(
                    (pid, pair.partner if pair.patient_leader == pid else pair.patient_leader)
                )
        if not mates:
            continue
        duo = [(x, y) if own is scan.rows else (y, x) for x, y in mates]
        got = pair_scores(instance, duo)[0]
        for (pid, _), score in zip(mates, got.tolist(), strict=True):
            top = stats.top[own.index[pid]]
            finite = top[np.isfinite(top)]
            hits.append(bool(finite.size) and score >= finite[-1] - 1e-12)

    if tick is not None:
        tick("score breakdowns")
    groups: dict[str, dict[str, list[float]]] = {
        "by_role": defaultdict(list),
        "by_organisation_type": defaultdict(list),
        "by_system": defaultdict(list),
    }
    # category values are grouped by the one comparison rule (case, spaces and punctuation
    # ignored) and shown as first spelt
    spelling: dict[str, str] = {}

    def label(text: str) -> str:
        return spelling.setdefault(category_key(text), text)

    for pid, p in pair_of.items():
        person = people[pid]
        groups["by_role"][person.role].append(p.score)
        groups["by_organisation_type"][label(person.organisation_type)].append(p.score)
        groups["by_system"][label(person.system)].append(p.score)
    breakdown = {
        name: {
            key: (
                {"people": len(v), "mean_score": round(statistics.fmean(v), 6)}
                if len(v) >= MIN_GROUP
                else {"people": f"<{MIN_GROUP}", "mean_score": "suppressed"}
            )
            for key, v in sorted(g.items())
        }
        for name, g in groups.items()
    }

    diversities = [s.diversity for s in solution.learning_sets or [] if s.diversity is not None]
    fill = {
        c.id: {
            "pairs": len(plan.pairs),
            "capacity": c.capacity_pairs,
            "fill": round(len(plan.pairs) / c.capacity_pairs, 4) if c.capacity_pairs else None,
        }
        for c in instance.cohorts
        for plan in solution.cohorts or []
        if plan.id == c.id
    }
    return {
        "people": sides,
        "scores": {
            "all_pairs": _stats([p.score for p in solution.pairs]),
            "lone_pairs": _stats([p.score for p in solution.pairs if not p.preformed]),
        },
        "top3_share": round(sum(hits) / len(hits), 4) if hits else None,
        "blocking_pairs": len(
            blocking_pairs(
                instance,
                solution,
                tick,
                sides=(scan.rows, scan.cols),
                all_allowed=(scan.cand_rows, scan.cand_cols, scan.cand_scores)
                if scan.every_allowed
                else None,
            )
        ),
        **breakdown,
        "groups": group_outcomes(instance, solution),
        "sets": {
            "count": len(solution.learning_sets or []),
            "mean_diversity": round(statistics.fmean(diversities), 6) if diversities else None,
            "least_diversity": round(min(diversities), 6) if diversities else None,
        },
        "cohort_fill": fill,
    }
