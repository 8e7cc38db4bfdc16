"""Plain-language reasons: why a pair was formed, why someone was left unmatched."""

from __future__ import annotations

from matcher.contract.instance import Instance, Participant
from matcher.contract.rules import organisation_key
from matcher.engine.objectives import REGISTRY
from matcher.engine.pairing import SideStats
from matcher.engine.scoring import active_weights, people_by_id, similarity, tag
from matcher.words import count


def pair_reasons(
    instance: Instance, a: Participant, b: Participant, breakdown: dict[str, float], k: int = 3
) -> list[str]:
    """The ``k`` criteria that contribute most to the pair's score, in words."""
    weights = active_weights(instance)
    n_cohorts = len(instance.cohorts)
    phrases: list[tuple[float, str]] = []
    shared = sorted({tag(t) for t in a.interests} & {tag(t) for t in b.interests})
    # Compared by their normalised key, shown as the patient leader typed them.
    spelled = {
        tag(t): t for t in (*b.project_topics, *b.interests, *a.project_topics, *a.interests)
    }
    if shared:
        phrases.append(
            (
                weights["interests"] * breakdown["interests"],
                "shared interests: " + ", ".join(spelled[t] for t in shared),
            )
        )
    topics_a, topics_b = {tag(t) for t in a.project_topics}, {tag(t) for t in b.project_topics}
    held_a = {tag(t) for t in a.interests} | topics_a
    held_b = {tag(t) for t in b.interests} | topics_b
    fit = sorted((topics_a & held_b) | (topics_b & held_a))
    # Project fit by meaning: its share of the project criterion (all of it without topics).
    alike = similarity(instance, a, b)
    meaning_share = 0.0
    if alike is not None:
        meaning_share = instance.rules.project_meaning if topics_a | topics_b else 1.0
        if alike > 0:
            phrases.append(
                (
                    weights["project"] * meaning_share * alike,
                    f"similar projects ({alike:.2f})",
                )
            )
    if fit:
        tag_fit = (breakdown["project"] - meaning_share * (alike or 0.0)) / max(
            1.0 - meaning_share, 1e-9
        )
        phrases.append(
            (
                weights["project"] * (1.0 - meaning_share) * tag_fit,
                "project fit: " + ", ".join(spelled[t] for t in fit),
            )
        )
    if breakdown["system"] > 0 and weights["system"] > 0:
        phrases.append((weights["system"] * breakdown["system"], f"same local system ({a.system})"))
    if breakdown["organisation"] > 0 and organisation_key(a) != organisation_key(b):
        phrases.append(
            (weights["organisation"] * breakdown["organisation"], "different organisations")
        )
    common = round(breakdown["availability"] * n_cohorts)
    if common:
        phrases.append(
            (
                weights["availability"] * breakdown["availability"],
                f"both can attend {common} of {n_cohorts} cohorts",
            )
        )
    phrases.sort(key=lambda t: -t[0])
    return [text for _, text in phrases[:k]]


#: How each objective chose among the compatible partners, for "why unmatched" messages (a view
#: of the registry, :mod:`matcher.engine.objectives`).
CHOICE = {name: kind.why_not_paired for name, kind in REGISTRY.items()}


def unmatched_reason(
    objective: str,
    stats: SideStats,
    index: int,
    *,
    is_row: bool,
    n_rows: int,
    n_cols: int,
    min_score: float,
) -> str:
    """Why lone person ``index`` (a row = patient leader, or a column = professional) is alone,
    from the per-person counts gathered while scoring
    (:class:`matcher.engine.pairing.SideStats`)."""
    other = "clinician or manager" if is_row else "patient leader"
    others = "clinicians or managers" if is_row else "patient leaders"
    n_other = n_cols if is_row else n_rows
    if n_other == 0:
        return f"no lone {other} applied"
    allowed = int(stats.allowed[index])
    conflicts = int(stats.conflict[index])
    if allowed:
        extra = f"; {count(conflicts, 'other')} declared a conflict" if conflicts else ""
        if allowed == 1:
            taken = f"the only compatible lone {other} was paired with someone else"
        elif allowed == 2:
            taken = f"both compatible lone {others} were paired with others"
        else:
            taken = f"all {allowed} compatible lone {others} were paired with others"
        return (
            f"{taken}{extra}; {CHOICE[objective]} "
            f"({count(n_rows, 'lone patient leader')}, "
            f"{count(n_cols, 'lone clinician/manager', 'lone clinicians/managers')})"
        )
    # (singular, plural) wording of each cause, so that one person reads "1 is ...".
    counts = {
        (
            "shares no cohort in a mode both can attend",
            "share no cohort in a mode both can attend",
        ): int(stats.no_cohort[index]),
        ("is a declared conflict", "are declared conflicts"): conflicts,
        (
            "is excluded by the organisation or local-system rule or a forbidden pair",
            "are excluded by the organisation or local-system rule or a forbidden pair",
        ): int(stats.rule[index]),
        (
            f"scores below the minimum {min_score:g}",
            f"score below the minimum {min_score:g}",
        ): int(stats.low[index]),
    }
    parts = [f"{n} {one if n == 1 else many}" for (one, many), n in counts.items() if n]
    return f"no lone {others} can be paired: of {n_other}, " + "; ".join(parts)


def partner_gone_reason(
    original: Instance,
    pid: str,
    reason: str,
    previous_partner: str | None = None,
) -> str:
    """``reason`` for unmatched ``pid``, led by what happened to them when the partner they
    applied with (or, in a re-plan, their partner in the previous plan) withdrew or left the
    intake: "partner pr05 withdrew; no compatible partner was free: ...". People are looked up
    in ``original``'s index (:func:`matcher.engine.scoring.people_by_id`, built once per
    instance: building it per call took 44 s over the 1,600 unmatched of a 20,000-participant
    intake)."""
    people = people_by_id(original)
    me = people.get(pid)
    candidates = [x for x in (me.partner if me else None, previous_partner) if x]
    for partner in candidates:
        other = people.get(partner)
        if other is None:
            what = f"partner {partner} is no longer in the intake"
        elif other.status == "withdrawn":
            what = f"partner {partner} withdrew"
        else:
            continue
        if reason.startswith(("all ", "both compatible", "the only compatible")):
            return f"{what}; no compatible partner was free: {reason}"
        return f"{what}; {reason}"
    return reason
