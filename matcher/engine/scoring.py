"""Compatibility scoring: how well a patient leader and a professional would work together.

Each criterion scores a (patient leader, professional) pair in [0, 1]:

``interests``
    Jaccard similarity of the two interest lists, ``|A ∩ B| / |A ∪ B|`` (0 when both empty).
``project``
    Project fit. Its tag part is the share of the two people's project topics that the
    *other* person holds as an interest or topic, ``(|Ta ∩ (Ib ∪ Tb)| + |Tb ∩ (Ia ∪ Ta)|) /
    (|Ta| + |Tb|)`` (0 when neither names a topic). When *both* people describe their project
    in words (``project_description``), the similarity of the two descriptions by meaning
    (:mod:`matcher.engine.meaning`, 0-1) joins it: project fit is ``(1 - m) * tags + m *
    similarity`` with ``m = rules.project_meaning`` (0.5 by default), or the similarity alone
    when neither names a topic. Without two descriptions it is the tag part alone, as before.
``organisation``
    1 for two organisations. One organisation: 1 under ``rules.same_organisation = "allow"``,
    0 under ``"avoid"``; under ``"forbid"`` the pair is forbidden.
``system``
    1 for the same local system, 0 otherwise; ``rules.local_system = "require"`` forbids a
    cross-system pair and ``"ignore"`` drops the criterion (its weight counts as 0).
``availability``
    The share of all cohorts that *both* can attend in full, in a mode both can attend.

The score is the weighted mean ``Σ w_k s_k / Σ w_k`` with ``instance.weights``. Tags
(interests and topics), organisations and local systems are compared after normalising case,
spaces and punctuation (:func:`matcher.contract.keys.category_key`: "Surrey Heartlands" is
``surrey-heartlands``).

Hard rules make a pair *forbidden*: a declared conflict (``avoid``, either direction), one
organisation when forbidden, two systems when one is required, and no cohort that both can
attend in full, in a mode both can attend.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from matcher.contract.instance import CRITERIA as CRITERIA  # re-exported; its home
from matcher.contract.instance import Instance, Participant
from matcher.contract.keys import category_key
from matcher.contract.rules import organisation_key
from matcher.engine import meaning


def tag(text: str) -> str:
    """Normalise a category value (interest, topic, organisation, system) for comparison."""
    return category_key(text)


def attendance_matrix(instance: Instance, people: list[Participant]) -> NDArray[np.bool_]:
    """``A[i, c]``: person ``i`` can attend cohort ``c`` (in instance order) in full.

    The rule of :func:`matcher.contract.rules.can_attend`, vectorised over cohorts: only the listed
    ``available_cohorts``, no cohort with a session on one of the ``unavailable_dates``, and no
    cohort whose mode needs a mode the person cannot attend
    (``blended`` needs both)."""
    cohorts = instance.cohorts
    n_c = len(cohorts)
    index = {c.id: q for q, c in enumerate(cohorts)}
    on_day: dict[object, NDArray[np.bool_]] = {}  # a date -> the cohorts meeting that day
    for q, c in enumerate(cohorts):
        for day in c.sessions:
            on_day.setdefault(day, np.zeros(n_c, dtype=bool))[q] = True
    # the cohorts a set of attendance modes rules out (blended needs both modes)
    needs_in_person = np.array([c.mode != "online" for c in cohorts], dtype=bool)
    needs_online = np.array([c.mode != "in_person" for c in cohorts], dtype=bool)
    ruled_out: dict[frozenset[str], NDArray[np.bool_]] = {}
    out = np.ones((len(people), n_c), dtype=bool)
    for i, p in enumerate(people):
        row = out[i]
        if p.available_cohorts is not None:
            listed = np.zeros(n_c, dtype=bool)
            listed[[index[c] for c in p.available_cohorts if c in index]] = True
            row &= listed
        if p.unavailable_dates:
            for day in set(p.unavailable_dates):
                if (meets := on_day.get(day)) is not None:
                    row &= ~meets
        if p.attendance is not None:
            modes = frozenset(p.attendance)
            if (off := ruled_out.get(modes)) is None:
                off = np.zeros(n_c, dtype=bool)
                if "in_person" not in modes:
                    off |= needs_in_person
                if "online" not in modes:
                    off |= needs_online
                ruled_out[modes] = off
            row &= ~off
    return out


def active_weights(instance: Instance) -> dict[str, float]:
    """Criterion weights after the rules: ``local_system = "ignore"`` drops the system term."""
    w = instance.weights.model_dump()
    if instance.rules.local_system == "ignore":
        w["system"] = 0.0
    return w


@dataclass(frozen=True)
class Compatibility:
    """Patient-leader × professional compatibility.

    ``scores[i, j]`` is the weighted score of ``row_ids[i]`` with ``col_ids[j]``;
    ``breakdown[k][i, j]`` its criterion-``k`` part; ``forbidden[i, j]`` marks pairs a hard rule
    excludes (their score is still computed, for explanations).
    """

    row_ids: list[str]
    col_ids: list[str]
    scores: NDArray[np.float64]
    forbidden: NDArray[np.bool_]
    breakdown: dict[str, NDArray[np.float64]]
    conflict: NDArray[np.bool_]
    same_organisation: NDArray[np.bool_]
    same_system: NDArray[np.bool_]
    common_cohorts: NDArray[np.int64]


def _incidence(lists: list[list[str]], vocab: dict[str, int]) -> NDArray[np.float64]:
    out = np.zeros((len(lists), len(vocab)), dtype=np.float64)
    for i, items in enumerate(lists):
        for t in items:
            out[i, vocab[tag(t)]] = 1.0
    return out


@dataclass(frozen=True)
class Side:
    """One side's features, coded in a space shared with the other side."""

    people: list[Participant]
    ids: list[str]
    index: dict[str, int]
    interests: NDArray[np.float64]  # n x V incidence
    topics: NDArray[np.float64]  # n x V incidence
    organisation: NDArray[np.int64]
    system: NDArray[np.int64]
    attend: NDArray[np.int64]  # n x C, 1 = can attend that cohort in full
    #: n x d unit vectors of the project descriptions (zero rows for none), or None when
    #: nobody on either side has one (or the model is unavailable)
    meaning: NDArray[np.float64] | None = None
    described: NDArray[np.bool_] | None = None  # n: has a description with a vector


def _code(instance: Instance, people: list[Participant]) -> Side:
    """The people's features in one coding: tags, organisations and systems numbered in the
    order first met, descriptions embedded in one batch."""
    vocab: dict[str, int] = {}
    orgs: dict[str, int] = {}
    systems: dict[str, int] = {}
    for p in people:
        for t in (*p.interests, *p.project_topics):
            vocab.setdefault(tag(t), len(vocab))
        orgs.setdefault(organisation_key(p), len(orgs))
        systems.setdefault(tag(p.system), len(systems))
    vec, has = meaning.vectors(people)
    return Side(
        people=people,
        ids=[p.id for p in people],
        index={p.id: i for i, p in enumerate(people)},
        interests=_incidence([p.interests for p in people], vocab),
        topics=_incidence([p.project_topics for p in people], vocab),
        organisation=np.array([orgs[organisation_key(p)] for p in people], dtype=np.int64),
        system=np.array([systems[tag(p.system)] for p in people], dtype=np.int64),
        attend=attendance_matrix(instance, people).astype(np.int64),
        meaning=None if vec is None else vec.astype(np.float64),
        described=None if vec is None else has,
    )


#: id(instance) -> everyone's coded features; an entry goes when its instance is collected
_CODED: dict[int, Side] = {}
#: id(instance) -> its participants by ID (read-only); likewise
_PEOPLE: dict[int, Mapping[str, Participant]] = {}
_T = TypeVar("_T")


def _once(cache: dict[int, _T], instance: Instance, make: Callable[[], _T]) -> _T:
    """``make()`` once per instance object, kept in ``cache`` while the instance lives."""
    key = id(instance)
    got = cache.get(key)
    if got is None:
        got = cache[key] = make()
        weakref.finalize(instance, cache.pop, key, None)
    return got


def coded(instance: Instance) -> Side:
    """Every participant's features in the file's order, coded once per instance object and
    kept while it lives: the pairing, the placement, the plan's records and its metrics all
    score people of one intake, and coding them took a third of a 5,000-person solve's
    tail. Instances are frozen records, so the coding cannot go stale."""
    return _once(_CODED, instance, lambda: _code(instance, list(instance.participants)))


def people_by_id(instance: Instance) -> Mapping[str, Participant]:
    """The instance's participants by ID, read-only, built once per instance object (as
    :func:`coded`): every stage looks people up, and building the index took 2 ms a time at
    5,000 participants, a dozen times a solve."""
    return _once(_PEOPLE, instance, lambda: MappingProxyType(instance.participants_by_id()))


def _take(whole: Side, people: list[Participant], rows: NDArray[np.intp], vec: bool) -> Side:
    return Side(
        people=people,
        ids=[p.id for p in people],
        index={p.id: i for i, p in enumerate(people)},
        interests=whole.interests[rows],
        topics=whole.topics[rows],
        organisation=whole.organisation[rows],
        system=whole.system[rows],
        attend=whole.attend[rows],
        meaning=None if not vec or whole.meaning is None else whole.meaning[rows],
        described=None if not vec or whole.described is None else whole.described[rows],
    )


def _own_rows(instance: Instance, whole: Side, people: list[Participant]) -> list[int] | None:
    """The people's rows in the instance's coding ``whole``, or None when one of them is not
    the instance's own record (a copy, or someone else's)."""
    mine = instance.participants
    rows = [whole.index.get(p.id, -1) for p in people]
    if all(i >= 0 and mine[i] is p for i, p in zip(rows, people, strict=True)):
        return rows
    return None


def sides(
    instance: Instance, rows: list[Participant], cols: list[Participant]
) -> tuple[Side, Side]:
    """Feature arrays of both sides (shared tag vocabulary and organisation/system codes),
    taken from the instance's coding (:func:`coded`); people who are not the instance's own
    records are coded on the spot."""
    whole = coded(instance)
    ri, ci = _own_rows(instance, whole, rows), _own_rows(instance, whole, cols)
    if ri is not None and ci is not None:
        r, c = np.array(ri, dtype=np.intp), np.array(ci, dtype=np.intp)
    else:
        whole = _code(instance, [*rows, *cols])
        r = np.arange(len(rows), dtype=np.intp)
        c = np.arange(len(rows), len(rows) + len(cols), dtype=np.intp)
    # The descriptions count only when both sides have one: otherwise no pair can have two,
    # and the scores are exactly as without any.
    has = whole.described
    vec = has is not None and bool(has[r].any()) and bool(has[c].any())
    return _take(whole, rows, r, vec), _take(whole, cols, c, vec)


def lone_sides(instance: Instance, *, include_preformed: bool = False) -> tuple[Side, Side]:
    """Patient leaders (rows) and professionals (columns), by default only lone applicants."""
    keep = [p for p in instance.participants if include_preformed or p.partner is None]
    rows = [p for p in keep if p.role == "patient_leader"]
    cols = [p for p in keep if p.role != "patient_leader"]
    return sides(instance, rows, cols)


def compatibility(instance: Instance, *, include_preformed: bool = False) -> Compatibility:
    """Score every patient leader against every professional (a dense matrix).

    By default only people who applied alone are included (pre-formed pairs are kept as they
    are); ``include_preformed=True`` scores everyone. For large intakes use
    :func:`iter_blocks`, which never holds the whole matrix.
    """
    a, b = lone_sides(instance, include_preformed=include_preformed)
    return block(instance, a, b, 0, len(a.ids))


def iter_blocks(
    instance: Instance, a: Side, b: Side, *, max_cells: int = 2_000_000
) -> Iterator[tuple[int, Compatibility]]:
    """The compatibility of ``a`` × ``b`` in blocks of whole rows, ``(first row, block)``, each
    of at most about ``max_cells`` entries: memory stays bounded whatever the intake's size."""
    step = max(1, max_cells // max(len(b.ids), 1))
    for start in range(0, len(a.ids), step):
        yield start, block(instance, a, b, start, min(start + step, len(a.ids)))


def _weighted(instance: Instance, breakdown: dict[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    weights = active_weights(instance)
    total_w = sum(weights.values())
    out = np.zeros_like(breakdown["interests"])
    for k in CRITERIA:
        if weights[k]:
            out += weights[k] * breakdown[k]
    return out / total_w


def _criteria(
    instance: Instance,
    *,
    shared: NDArray[np.float64],
    held: tuple[NDArray[np.float64], NDArray[np.float64]],
    covered: NDArray[np.float64],
    n_topics: NDArray[np.float64],
    same_org: NDArray[np.bool_],
    same_sys: NDArray[np.bool_],
    common: NDArray[np.int64],
    similarity: tuple[NDArray[np.float64], NDArray[np.bool_]] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """The five criteria (module docstring), the one statement of the score formula, from
    counts of any shape (a block of rows x columns, or pairs element by element): ``shared``
    interests and each side's interest count ``held``, topics ``covered`` by the other person
    out of ``n_topics``, same organisation / system, cohorts both can attend, and (when anyone
    described a project) the descriptions' similarity with where both people wrote one."""
    union = held[0] + held[1] - shared
    shape = np.broadcast(shared, union).shape
    organisation = np.ones(shape)
    if instance.rules.same_organisation != "allow":
        organisation[np.broadcast_to(same_org, shape)] = 0.0
    project = np.divide(covered, n_topics, out=np.zeros(shape), where=n_topics > 0)
    if similarity is not None:
        # Project fit by meaning joins the tag fit only where both people described a project.
        sim, both = similarity
        m = instance.rules.project_meaning
        mixed = np.where(n_topics > 0, (1.0 - m) * project + m * sim, sim)
        project = np.where(both, mixed, project)
    return {
        "interests": np.divide(shared, union, out=np.zeros(shape), where=union > 0),
        "project": project,
        "organisation": organisation,
        "system": np.broadcast_to(same_sys, shape).astype(np.float64),
        "availability": common / max(len(instance.cohorts), 1),
    }


def block(instance: Instance, a: Side, b: Side, start: int, stop: int) -> Compatibility:
    """Compatibility of rows ``start:stop`` of ``a`` with every row of ``b``."""
    ia, ta = a.interests[start:stop], a.topics[start:stop]
    ib, tb = b.interests, b.topics
    n, m = ia.shape[0], ib.shape[0]

    held_a = np.minimum(ia + ta, 1.0)
    held_b = np.minimum(ib + tb, 1.0)
    same_org = a.organisation[start:stop, None] == b.organisation[None, :]
    same_sys = a.system[start:stop, None] == b.system[None, :]
    rules = instance.rules
    # cohorts both can attend, counted by a float product (BLAS; exact for counts this small)
    # and kept as integers: numpy multiplies int64 matrices without BLAS, 4-9x slower here
    both = a.attend[start:stop].astype(np.float64) @ b.attend.T.astype(np.float64)
    common = both.astype(np.int64)
    similarity = None
    if a.meaning is not None and b.meaning is not None:
        assert a.described is not None and b.described is not None
        similarity = (
            _similarity(a.meaning[start:stop] @ b.meaning.T),
            a.described[start:stop, None] & b.described[None, :],
        )
    breakdown = _criteria(
        instance,
        shared=ia @ ib.T,
        held=(ia.sum(1)[:, None], ib.sum(1)[None, :]),
        covered=ta @ held_b.T + held_a @ tb.T,
        n_topics=ta.sum(1)[:, None] + tb.sum(1)[None, :],
        same_org=same_org,
        same_sys=same_sys,
        common=common,
        similarity=similarity,
    )

    conflict = np.zeros((n, m), dtype=bool)
    for i, p in enumerate(a.people[start:stop]):
        for other in p.avoid:
            if other in b.index:
                conflict[i, b.index[other]] = True
    for j, q in enumerate(b.people):
        for other in q.avoid:
            row = a.index.get(other)
            if row is not None and start <= row < stop:
                conflict[row - start, j] = True

    # forbidden_pairs: never paired (unlike `avoid`, they may still share a set)
    banned = np.zeros((n, m), dtype=bool)
    for x, y in instance.forbidden_pairs:
        for pl, pr in ((x, y), (y, x)):
            row, col = a.index.get(pl), b.index.get(pr)
            if row is not None and col is not None and start <= row < stop:
                banned[row - start, col] = True

    forbidden = conflict | banned | (common == 0)
    if rules.same_organisation == "forbid":
        forbidden |= same_org
    if rules.local_system == "require":
        forbidden |= ~same_sys

    return Compatibility(
        row_ids=a.ids[start:stop],
        col_ids=b.ids,
        scores=_weighted(instance, breakdown),
        forbidden=forbidden,
        breakdown=breakdown,
        conflict=conflict,
        same_organisation=same_org,
        same_system=same_sys,
        common_cohorts=common,
    )


def _similarity(cosine: NDArray[np.float64]) -> NDArray[np.float64]:
    """Calibrated similarities, rounded to 6 decimals so that a pair scores the same whether
    computed in a block (a matrix product) or on its own (a dot product)."""
    return np.round(meaning.calibrate(cosine), 6)


def pair_similarities(a: Side, b: Side) -> NDArray[np.float64] | None:
    """Row ``k`` of ``a`` with row ``k`` of ``b``: the similarity of the two descriptions (NaN
    where either has none), or None when no pair has two."""
    if a.meaning is None or b.meaning is None:
        return None
    assert a.described is not None and b.described is not None
    sim = _similarity((a.meaning * b.meaning).sum(1))
    return np.where(a.described & b.described, sim, np.nan)


def similarity(instance: Instance, a: Participant, b: Participant) -> float | None:
    """:func:`matcher.engine.meaning.pair_similarity` of two of the instance's people, from its
    coding (:func:`coded`) rather than embedding lookups per pair: the same number."""
    whole = coded(instance)
    own = _own_rows(instance, whole, [a, b])
    if own is None:
        return meaning.pair_similarity(a, b)
    i, j = own
    if whole.meaning is None or whole.described is None:
        return None
    if not (whole.described[i] and whole.described[j]):
        return None
    return meaning.similarity(whole.meaning[i], whole.meaning[j])


def pair_scores(
    instance: Instance, pairs: list[tuple[str, str]]
) -> tuple[NDArray[np.float64], dict[str, NDArray[np.float64]]]:
    """Score and breakdown of each (patient leader, professional) pair, element by element."""
    people = people_by_id(instance)
    a, b = sides(instance, [people[x] for x, _ in pairs], [people[y] for _, y in pairs])
    sim = pair_similarities(a, b)
    held_a = np.minimum(a.interests + a.topics, 1.0)
    held_b = np.minimum(b.interests + b.topics, 1.0)
    breakdown = _criteria(
        instance,
        shared=(a.interests * b.interests).sum(1),
        held=(a.interests.sum(1), b.interests.sum(1)),
        covered=(a.topics * held_b).sum(1) + (held_a * b.topics).sum(1),
        n_topics=a.topics.sum(1) + b.topics.sum(1),
        same_org=a.organisation == b.organisation,
        same_sys=a.system == b.system,
        common=(a.attend * b.attend).sum(1),
        similarity=None if sim is None else (np.nan_to_num(sim), ~np.isnan(sim)),
    )
    return _weighted(instance, breakdown), breakdown
