"""Compatibility scoring: how well a patient leader and a professional would work together.

Each criterion scores a (patient leader, professional) pair in [0, 1]:

``interests``
    Jaccard similarity of the two interest lists, ``|A ∩ B| / |A ∪ B|`` (0 when both empty).
``project``
    Project fit: the share of the two people's project topics that the *other* person holds
    as an interest or topic, ``(|Ta ∩ (Ib ∪ Tb)| + |Tb ∩ (Ia ∪ Ta)|) / (|Ta| + |Tb|)``
    (0 when neither names a topic).
``organisation``
    1 for two organisations. One organisation: 1 under ``rules.same_organisation = "allow"``,
    0 under ``"avoid"``; under ``"forbid"`` the pair is forbidden.
``system``
    1 for the same local system, 0 otherwise; ``rules.local_system = "require"`` forbids a
    cross-system pair and ``"ignore"`` drops the criterion (its weight counts as 0).
``availability``
    The share of all cohorts that *both* can attend in full, in a mode both can attend.

The score is the weighted mean ``Σ w_k s_k / Σ w_k`` with ``instance.weights``. Tags
(interests and topics) are compared case-insensitively after trimming spaces.

Hard rules make a pair *forbidden*: a declared conflict (``avoid``, either direction), one
organisation when forbidden, two systems when one is required, and no cohort that both can
attend in full, in a mode both can attend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matcher.schema import Cohort, Instance, Participant

CRITERIA: tuple[str, ...] = ("interests", "project", "organisation", "system", "availability")


def tag(text: str) -> str:
    """Normalise an interest or topic for comparison."""
    return " ".join(text.split()).casefold()


def can_attend(person: Participant, cohort: Cohort) -> bool:
    """Whether ``person`` can attend every session of ``cohort`` in its mode."""
    if person.available_cohorts is not None and cohort.id not in person.available_cohorts:
        return False
    modes = set(person.attendance) if person.attendance is not None else {"in_person", "online"}
    needed = {"in_person", "online"} if cohort.mode == "blended" else {cohort.mode}
    return needed <= modes


def attendance_matrix(instance: Instance, people: list[Participant]) -> NDArray[np.bool_]:
    """``A[i, c]``: person ``i`` can attend cohort ``c`` (in instance order) in full."""
    return np.array(
        [[can_attend(p, c) for c in instance.cohorts] for p in people], dtype=bool
    ).reshape(len(people), len(instance.cohorts))


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


def compatibility(instance: Instance, *, include_preformed: bool = False) -> Compatibility:
    """Score every patient leader against every professional.

    By default only people who applied alone are included (pre-formed pairs are kept as they
    are); ``include_preformed=True`` scores everyone.
    """
    keep = [p for p in instance.participants if include_preformed or p.partner is None]
    rows = [p for p in keep if p.role == "patient_leader"]
    cols = [p for p in keep if p.role != "patient_leader"]
    return _compatibility(instance, rows, cols)


def _compatibility(
    instance: Instance, rows: list[Participant], cols: list[Participant]
) -> Compatibility:
    n, m = len(rows), len(cols)
    vocab: dict[str, int] = {}
    for p in (*rows, *cols):
        for t in (*p.interests, *p.project_topics):
            vocab.setdefault(tag(t), len(vocab))

    ia = _incidence([p.interests for p in rows], vocab)
    ib = _incidence([p.interests for p in cols], vocab)
    ta = _incidence([p.project_topics for p in rows], vocab)
    tb = _incidence([p.project_topics for p in cols], vocab)

    inter = ia @ ib.T
    union = ia.sum(1)[:, None] + ib.sum(1)[None, :] - inter
    interests = np.divide(inter, union, out=np.zeros((n, m)), where=union > 0)

    held_a = np.minimum(ia + ta, 1.0)
    held_b = np.minimum(ib + tb, 1.0)
    covered = ta @ held_b.T + held_a @ tb.T
    n_topics = ta.sum(1)[:, None] + tb.sum(1)[None, :]
    project = np.divide(covered, n_topics, out=np.zeros((n, m)), where=n_topics > 0)

    org_code = {o: k for k, o in enumerate(sorted({p.organisation for p in (*rows, *cols)}))}
    sys_code = {s: k for k, s in enumerate(sorted({p.system for p in (*rows, *cols)}))}
    same_org = (
        np.array([org_code[p.organisation] for p in rows])[:, None]
        == np.array([org_code[p.organisation] for p in cols])[None, :]
    ).reshape(n, m)
    same_sys = (
        np.array([sys_code[p.system] for p in rows])[:, None]
        == np.array([sys_code[p.system] for p in cols])[None, :]
    ).reshape(n, m)

    rules = instance.rules
    organisation = np.ones((n, m))
    if rules.same_organisation != "allow":
        organisation[same_org] = 0.0
    system = same_sys.astype(np.float64)

    att_a = attendance_matrix(instance, rows).astype(np.int64)
    att_b = attendance_matrix(instance, cols).astype(np.int64)
    common = att_a @ att_b.T
    availability = common / max(len(instance.cohorts), 1)

    breakdown = {
        "interests": interests,
        "project": project,
        "organisation": organisation,
        "system": system,
        "availability": availability,
    }
    weights = active_weights(instance)
    total_w = sum(weights.values())
    scores = sum((weights[k] * breakdown[k] for k in CRITERIA), start=np.zeros((n, m))) / total_w

    row_index = {p.id: i for i, p in enumerate(rows)}
    col_index = {p.id: j for j, p in enumerate(cols)}
    conflict = np.zeros((n, m), dtype=bool)
    for i, p in enumerate(rows):
        for other in p.avoid:
            if other in col_index:
                conflict[i, col_index[other]] = True
    for j, q in enumerate(cols):
        for other in q.avoid:
            if other in row_index:
                conflict[row_index[other], j] = True

    forbidden = conflict | (common == 0)
    if rules.same_organisation == "forbid":
        forbidden |= same_org
    if rules.local_system == "require":
        forbidden |= ~same_sys

    return Compatibility(
        row_ids=[p.id for p in rows],
        col_ids=[p.id for p in cols],
        scores=scores,
        forbidden=forbidden,
        breakdown=breakdown,
        conflict=conflict,
        same_organisation=same_org,
        same_system=same_sys,
        common_cohorts=common,
    )


def pair_compatibility(instance: Instance, a: Participant, b: Participant) -> Compatibility:
    """The 1×1 compatibility of one patient leader ``a`` with one professional ``b``."""
    return _compatibility(instance, [a], [b])
