"""Seeded synthetic intakes, from 20 to 20,000 participants and up to 50 cohorts.

Distributions (all drawn from one ``numpy.random.Generator`` seeded by ``seed``):

- **Local systems**: ``max(3, n // 40)`` systems; people are spread over them with Zipf-like
  weights ``1 / (rank + 1)^0.7`` (a few big systems, a long tail).
- **Organisations**: each system has organisations of each type; professionals' types
  (weights) CCG 0.25, acute FT 0.30, mental-health FT 0.15, community FT 0.10, primary care
  0.10, clinical research network 0.05, local authority 0.05; patient leaders' types
  Healthwatch 0.35, patient participation group 0.25, lay member 0.15, third sector 0.25.
  A system has about one organisation of a type per 12 people of that type (at least one).
- **Pre-formed pairs**: ``preformed_share`` of participants (default 0.6) arrive as pairs, both
  members in one system. Of the lone applicants, ``lone_patient_share`` (default 0.6) are
  patient leaders. Professionals are clinicians (65%) or managers (35%).
- **Interests**: 2–4 of 20 themes, with popularity weights ``1 / (rank + 1)^0.5``; 0–2 project
  topics, mostly from one's own interests; pre-formed partners share at least one theme.
- **Cohorts**: ``cohorts`` intakes (default ``clip(n // 50, 1, 50)``), every fourth online,
  the rest in person; five session dates a month apart; capacity in pairs so that the total is
  about 1.1 × the expected number of pairs, split unevenly (±30%).
- **Availability**: each person can attend 1–3 of the in-person cohorts (all of them, with
  probability 0.3, when there are three or fewer) and every online one; 10% online only, 15%
  in person only.
- **Conflicts**: 2% of people declare one conflict with someone in their own system.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

THEMES = (
    "mental health",
    "carers",
    "diabetes",
    "frailty",
    "end of life care",
    "shared decision making",
    "self-management",
    "children and young people",
    "learning disabilities",
    "primary care access",
    "patient experience",
    "co-production",
    "dementia",
    "maternity",
    "health inequalities",
    "digital access",
    "social prescribing",
    "cancer",
    "stroke",
    "urgent care",
)
PRO_TYPES = {
    "ccg": 0.25,
    "acute_ft": 0.30,
    "mental_health_ft": 0.15,
    "community_ft": 0.10,
    "primary_care": 0.10,
    "clinical_research_network": 0.05,
    "local_authority": 0.05,
}
PL_TYPES = {
    "healthwatch": 0.35,
    "patient_participation_group": 0.25,
    "lay_member": 0.15,
    "third_sector": 0.25,
}

MIN_PARTICIPANTS, MAX_PARTICIPANTS, MAX_COHORTS = 2, 20_000, 50


def _pick(rng: np.random.Generator, table: dict[str, float]) -> str:
    keys = list(table)
    p = np.array([table[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def generate_instance(
    participants: int,
    *,
    cohorts: int | None = None,
    seed: int = 0,
    preformed_share: float = 0.6,
    lone_patient_share: float = 0.6,
    name: str | None = None,
) -> dict[str, Any]:
    """A synthetic instance as JSON-ready data (validate with :func:`matcher.parse_instance`)."""
    if not MIN_PARTICIPANTS <= participants <= MAX_PARTICIPANTS:
        raise ValueError(
            f"participants must be between {MIN_PARTICIPANTS} and {MAX_PARTICIPANTS}, "
            f"got {participants}"
        )
    if cohorts is not None and not 1 <= cohorts <= MAX_COHORTS:
        raise ValueError(f"cohorts must be between 1 and {MAX_COHORTS}, got {cohorts}")
    if not 0 <= preformed_share <= 1 or not 0 < lone_patient_share < 1:
        raise ValueError("preformed_share must be in [0, 1] and lone_patient_share in (0, 1)")
    rng = np.random.default_rng(seed)
    n = participants
    n_cohorts = cohorts if cohorts is not None else int(np.clip(n // 50, 1, MAX_COHORTS))

    n_systems = max(3, n // 40)
    sys_w = 1.0 / (np.arange(n_systems) + 1.0) ** 0.7
    sys_w /= sys_w.sum()
    theme_w = 1.0 / (np.arange(len(THEMES)) + 1.0) ** 0.5
    theme_w /= theme_w.sum()

    n_pairs = int(n * preformed_share) // 2
    n_lone = n - 2 * n_pairs
    n_lone_pl = round(n_lone * lone_patient_share)
    expected_pairs = n_pairs + min(n_lone_pl, n_lone - n_lone_pl)

    # Cohorts: every fourth online; five monthly sessions from a Thursday in 2016.
    start = dt.date(2016, 5, 12)
    weights = rng.uniform(0.7, 1.3, size=n_cohorts)
    caps = np.maximum(4, np.round(1.1 * expected_pairs * weights / weights.sum())).astype(int)
    cohort_list = []
    for k in range(n_cohorts):
        first = start + dt.timedelta(weeks=k % 20)
        mode = "online" if k % 4 == 3 else "in_person"
        cohort_list.append(
            {
                "id": f"c{k + 1:02d}",
                "name": f"Cohort {k + 1} ({mode.replace('_', ' ')})",
                "sessions": [(first + dt.timedelta(weeks=4 * s)).isoformat() for s in range(5)],
                "capacity_pairs": int(caps[k]),
                "mode": mode,
                "set_size": {"min_pairs": 3, "max_pairs": 4},
            }
        )
    in_person = [str(c["id"]) for c in cohort_list if c["mode"] == "in_person"]

    def organisation(system: int, kind: str) -> str:
        per = max(1, int(n * sys_w[system] * 0.5 * (PRO_TYPES | PL_TYPES)[kind] / 12))
        return f"s{system:03d}-{kind.replace('_', '-')}-{int(rng.integers(per)) + 1}"

    def interests(shared: list[str] | None = None) -> list[str]:
        k = int(rng.integers(2, 5))
        picked = list(rng.choice(len(THEMES), size=k, replace=False, p=theme_w))
        out = [THEMES[i] for i in picked]
        if shared:
            out = list(dict.fromkeys([*shared[:1], *out]))[:4]
        return sorted(out)

    def availability() -> tuple[list[str] | None, list[str] | None]:
        u = rng.random()
        attendance = ["online"] if u < 0.10 else ["in_person"] if u < 0.25 else None
        if len(in_person) <= 3 and rng.random() < 0.3:
            return None, attendance
        k = int(rng.integers(1, 4))
        picks = rng.choice(len(in_person), size=min(k, len(in_person)), replace=False)
        chosen = [in_person[int(i)] for i in picks]
        online = [str(c["id"]) for c in cohort_list if c["mode"] == "online"]
        return sorted({*chosen, *online}), attendance

    people: list[dict[str, Any]] = []

    def person(pid: str, role: str, system: int, shared: list[str] | None) -> dict[str, Any]:
        kind = _pick(rng, PL_TYPES if role == "patient_leader" else PRO_TYPES)
        own = interests(shared)
        topics = sorted({str(t) for t in rng.choice(own, size=int(rng.integers(0, 3)))})
        available, attendance = availability()
        rec: dict[str, Any] = {
            "id": pid,
            "role": role,
            "organisation": organisation(system, kind),
            "organisation_type": kind,
            "system": f"system-{system:03d}",
            "interests": own,
            "project_topics": topics,
            "partner": None,
            "avoid": [],
        }
        if available is not None:
            rec["available_cohorts"] = available
        if attendance is not None:
            rec["attendance"] = attendance
        return rec

    def professional_role() -> str:
        return "clinician" if rng.random() < 0.65 else "manager"

    width = len(str(n))
    for k in range(n_pairs):
        system = int(rng.choice(n_systems, p=sys_w))
        a = person(f"pl{k:0{width}d}", "patient_leader", system, None)
        b = person(f"pr{k:0{width}d}", professional_role(), system, a["interests"])
        # Pre-formed partners can attend the same cohorts: the professional takes the
        # patient leader's availability.
        for key in ("available_cohorts", "attendance"):
            b.pop(key, None)
            if key in a:
                b[key] = list(a[key])
        a["partner"], b["partner"] = b["id"], a["id"]
        people += [a, b]
    for k in range(n_lone):
        system = int(rng.choice(n_systems, p=sys_w))
        role = "patient_leader" if k < n_lone_pl else professional_role()
        prefix = "pl" if role == "patient_leader" else "pr"
        people.append(person(f"{prefix}{n_pairs + k:0{width}d}", role, system, None))

    by_system: dict[str, list[int]] = {}
    for i, p in enumerate(people):
        by_system.setdefault(p["system"], []).append(i)
    for i, p in enumerate(people):
        if rng.random() < 0.02:
            pool = [j for j in by_system[p["system"]] if j != i and people[j]["id"] != p["partner"]]
            if pool:
                p["avoid"] = [people[int(rng.choice(pool))]["id"]]
    return {
        "schema_version": "1",
        "name": name or f"synthetic-n{n}-s{seed}",
        "description": f"Synthetic intake from `matcher generate` (seed {seed}); fictional.",
        "cohorts": cohort_list,
        "participants": people,
    }
