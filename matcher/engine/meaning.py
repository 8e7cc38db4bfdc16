"""Project fit by meaning: how alike two people's project descriptions are.

Each participant may describe their project in their own words (``project_description``).
The descriptions of everyone in a solve are embedded once, in batches, by the packaged model of
:mod:`matcher.embedding` (cached by text hash, in memory and in the workspace's store when one
is set). Two people's *similarity* is the cosine of their vectors mapped onto 0-1::

    similarity = clip((cosine - FLOOR) / (CEILING - FLOOR), 0, 1)

because this model's cosines between unrelated descriptions sit around 0.1-0.2 and between
descriptions of one project theme around 0.4-0.7 (``benchmarks/project_fit.py`` measures
both): the mapping makes 0 mean "nothing in common" and 1 "the same project", so the number
reads right in a pair's reasons and mixes fairly with the tag-based part of project fit
(:func:`matcher.engine.scoring._criteria` states how).

A person without a description (or with only spaces) has no vector, and any pair with such a
person has no similarity: its project fit is the tag-based one, exactly as before descriptions
existed. When the model is not installed, nobody has a vector (a warning says fit by meaning
is off).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from matcher import embedding
from matcher.contract.instance import Instance, Participant

#: Cosine at or below which two descriptions count as unrelated (similarity 0).
FLOOR = 0.15
#: Cosine at or above which two descriptions count as the same project (similarity 1).
CEILING = 0.65


def description(p: Participant) -> str | None:
    """The person's project description, or None when absent or blank."""
    text = p.project_description
    if text is None or not text.strip():
        return None
    return " ".join(text.split())


def vectors(people: Sequence[Participant]) -> tuple[NDArray[np.float32] | None, NDArray[np.bool_]]:
    """Unit vectors of the people's descriptions (a zero row for none) and which people have
    one; ``(None, all False)`` when nobody has a description or the model is unavailable."""
    texts = [description(p) for p in people]
    has = np.array([t is not None for t in texts], dtype=bool)
    if not has.any():
        return None, has
    got = embedding.embed([t for t in texts if t is not None])
    if got is None:
        return None, np.zeros(len(people), dtype=bool)
    out = np.zeros((len(people), got.shape[1]), dtype=np.float32)
    out[has] = got
    return out, has


def calibrate(cosine: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cosines mapped onto 0-1 similarities (module docstring)."""
    return np.clip((cosine - FLOOR) / (CEILING - FLOOR), 0.0, 1.0)


def similarity(u: NDArray[np.floating], v: NDArray[np.floating]) -> float:
    """The similarity of two descriptions' unit vectors: their cosine, calibrated."""
    cosine = float(np.dot(u.astype(np.float64), v.astype(np.float64)))
    return float(calibrate(np.array(cosine)))


def pair_similarity(a: Participant, b: Participant) -> float | None:
    """The similarity of two people's descriptions, or None when either has none (or the model
    is unavailable)."""
    vec, has = vectors([a, b])
    if vec is None or not has.all():
        return None
    return similarity(vec[0], vec[1])


def meaning_notes(instance: Instance) -> list[str]:
    """The plan's note on project fit by meaning (none when nobody described a project): which
    model compared how many descriptions, or why it was off."""
    described = [p for p in instance.participants if description(p) is not None]
    n = len(described)
    if not n:
        return []
    reason = embedding.unavailable_reason()
    if reason is not None:
        return [f"project fit by meaning is off: {reason}; project topics only"]
    sides = {p.role == "patient_leader" for p in described}
    if len(sides) == 1:
        who = "patient leaders" if True in sides else "clinicians and managers"
        return [
            f"project fit by meaning: {n} project descriptions, all from {who}: no pair has "
            "two, so project fit uses project topics only"
        ]
    return [
        f"project fit by meaning: {n} project descriptions compared with {embedding.MODEL_ID} "
        "(a local model; share rules.project_meaning = "
        f"{instance.rules.project_meaning:g})"
    ]
