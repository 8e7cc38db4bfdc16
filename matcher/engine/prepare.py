"""Data prepared once before any model: who takes part, which pairs are decided, what is
forbidden (DESIGN.md §3's admin decisions turned into the form every stage reads).

The stages (pairing, placement, sets, metrics) read :attr:`Prepared.effective`, an instance in
which

* withdrawn people are gone, their pre-formed partners apply alone, and nobody's ``avoid``
  names them any more;
* a locked pair is held together exactly like a pre-formed pair (its members name each other
  in ``partner``), so no stage can split it; :attr:`Prepared.locks` says which pairs are locked
  and in which cohort (``None`` = any cohort both can attend);
* ``forbidden_pairs`` name active people only.

and what every stage would otherwise derive again from it, computed once: the people by ID
(:attr:`Prepared.people`), each person's place in the file (:attr:`Prepared.order`, the plan's
order) and who can attend which cohort (:attr:`Prepared.attend`).

The independent verifier reads the original instance, never this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from matcher.contract.instance import Instance, Participant
from matcher.engine.scoring import coded, people_by_id


@dataclass(frozen=True)
class Prepared:
    """An instance with the admin's decisions applied (see the module docstring)."""

    original: Instance
    effective: Instance
    withdrawn: tuple[str, ...]
    #: (patient leader, partner) -> cohort index the lock places the pair in, or None
    locks: dict[tuple[str, str], int | None]
    #: (patient leader, partner) of the pairs that applied together (both active)
    preformed: frozenset[tuple[str, str]]
    #: the effective instance's people by ID
    people: Mapping[str, Participant]
    #: each effective person's index in the file (and in ``attend``'s rows)
    order: dict[str, int]
    #: ``attend[i, q]``: effective person ``i`` can attend cohort ``q`` in full
    #: (:func:`matcher.contract.rules.can_attend`, vectorised)
    attend: NDArray[np.bool_]


def prepare(instance: Instance) -> Prepared:
    """Apply withdrawals and locks (see the module docstring)."""
    withdrawn = tuple(p.id for p in instance.participants if p.status == "withdrawn")
    gone = set(withdrawn)
    cohort_index = {c.id: q for q, c in enumerate(instance.cohorts)}
    locks = {
        (lk.patient_leader, lk.partner): (None if lk.cohort is None else cohort_index[lk.cohort])
        for lk in instance.locks
    }
    locked_partner = {a: b for a, b in locks} | {b: a for a, b in locks}
    preformed = frozenset(
        (p.id, p.partner)
        for p in instance.participants
        if p.role == "patient_leader"
        and p.partner is not None
        and p.partner not in gone
        and p.id not in gone
    )
    people: list[Participant] = []
    for p in instance.participants:
        if p.id in gone:
            continue
        partner = p.partner if p.partner not in gone else None
        partner = locked_partner.get(p.id, partner)
        avoid = [x for x in p.avoid if x not in gone]
        if partner != p.partner or avoid != p.avoid:
            p = p.model_copy(update={"partner": partner, "avoid": avoid})
        people.append(p)
    forbidden = [(a, b) for a, b in instance.forbidden_pairs if a not in gone and b not in gone]
    if gone or locks or forbidden != instance.forbidden_pairs:
        # The engine's own derived view (withdrawn people gone, locks as partners), built from
        # a valid instance: copied without Instance.model_copy's re-validation (1.3 s at
        # 20,000 participants).
        effective = BaseModel.model_copy(
            instance, update={"participants": people, "forbidden_pairs": forbidden}
        )
    else:
        effective = instance
    return Prepared(
        original=instance,
        effective=effective,
        withdrawn=withdrawn,
        locks=locks,
        preformed=preformed,
        people=people_by_id(effective),
        order={p.id: k for k, p in enumerate(effective.participants)},
        attend=coded(effective).attend != 0,
    )
