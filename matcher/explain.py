"""Why and why-not: counterfactual answers about a plan, by re-solving with a what-if lock.

The reasons attached to every plan are :mod:`matcher.engine.reasons`; they are re-exported here
for callers of the old names."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from matcher.contract.identity import check_made_from
from matcher.contract.instance import Instance, Participant
from matcher.contract.rules import pairing_rule_breaks
from matcher.contract.solution import Pair, Solution
from matcher.engine.reasons import CHOICE, pair_reasons, unmatched_reason
from matcher.engine.scoring import pair_scores
from matcher.engine.solve import solve
from matcher.errors import Infeasible, InvalidInstance, InvalidParameter
from matcher.intake.json_file import parse_instance
from matcher.words import count

__all__ = ["CHOICE", "Why", "WhyNot", "pair_reasons", "unmatched_reason", "why", "why_not"]


# --- counterfactuals: "why not A with B?" and "why A's pair?" ------------------------------


class WhyNot(BaseModel):
    """The answer to "why were A and B not paired?", from re-solving with A–B locked."""

    model_config = ConfigDict(frozen=True)

    patient_leader: str
    partner: str
    paired: bool = Field(description="They are paired in the plan already.")
    forbidden_by: list[str] = Field(
        default_factory=list, description="Hard rules that forbid the pair, in words with IDs."
    )
    score: float | None = Field(None, description="The pair's compatibility score.")
    total_before: float | None = Field(None, description="Sum of pair scores in the plan.")
    total_after: float | None = Field(None, description="... with A and B paired.")
    placed_before: int | None = None
    placed_after: int | None = None
    newly_unmatched: list[str] = Field(default_factory=list)
    newly_waitlisted: list[str] = Field(default_factory=list)
    changes: int | None = Field(None, description="Changes to the plan the pairing would cost.")

    def summary(self) -> str:
        a, b = self.patient_leader, self.partner
        if self.paired:
            return f"{a} and {b} are paired in this plan."
        if self.forbidden_by:
            return f"{a} and {b} cannot be paired: " + "; ".join(self.forbidden_by) + "."
        assert self.total_before is not None and self.total_after is not None
        lines = [
            f"{a} and {b} could be paired (score {self.score:.2f}); the best plan with them "
            f"together changes the total score {self.total_before:.3f} -> "
            f"{self.total_after:.3f} ({self.total_after - self.total_before:+.3f}), pairs "
            f"placed {self.placed_before} -> {self.placed_after}, "
            f"{count(self.changes or 0, 'change')}."
        ]
        if self.newly_unmatched:
            lines.append("Unmatched instead: " + ", ".join(self.newly_unmatched) + ".")
        if self.newly_waitlisted:
            lines.append("Wait-listed instead: " + ", ".join(self.newly_waitlisted) + ".")
        return "\n".join(lines)


class Alternative(BaseModel):
    model_config = ConfigDict(frozen=True)

    partner: str
    score: float
    why_not: str


class Why(BaseModel):
    """The answer to "why is A paired as they are?": A's pair and A's best alternatives."""

    model_config = ConfigDict(frozen=True)

    participant: str
    pair: str | None
    partner: str | None
    score: float | None
    breakdown: dict[str, float] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    standing: str = Field(description="paired and placed, wait-listed, or unmatched (reason).")
    alternatives: list[Alternative] = Field(
        default_factory=list,
        description="Compatible people of the other side, best score first, with where they went.",
    )
    incompatible: int = Field(
        0, description="People of the other side who can never be paired with this one."
    )

    def summary(self) -> str:
        head = f"{self.participant}: {self.standing}" + (
            f" with {self.partner} ({self.pair}, score {self.score:.2f})" if self.pair else ""
        )
        lines = [head]
        if self.breakdown:
            lines.append(
                "  breakdown: " + ", ".join(f"{k} {v:.2f}" for k, v in self.breakdown.items())
            )
        lines += [f"  reason: {r}" for r in self.reasons]
        for alt in self.alternatives:
            lines.append(f"  alternative {alt.partner} (score {alt.score:.2f}): {alt.why_not}")
        if not self.alternatives:
            lines.append("  no compatible alternative in this intake")
        if self.incompatible:
            lines.append(
                f"  {count(self.incompatible, 'other person', 'other people')} of the other "
                "side can never be paired with them (hard rules, pre-formed pairs, locks)"
            )
        return "\n".join(lines)


def _sides(instance: Instance, x: str, y: str) -> tuple[Participant, Participant]:
    people = instance.participants_by_id()
    for pid in (x, y):
        if pid not in people:
            raise InvalidParameter(f"unknown participant {pid!r}")
    a, b = people[x], people[y]
    if (a.role == "patient_leader") == (b.role == "patient_leader"):
        raise InvalidParameter(
            f"{x} and {y} are on the same side; a pair is a patient leader and a clinician "
            "or manager"
        )
    return (a, b) if a.role == "patient_leader" else (b, a)


def _blockers(instance: Instance, a: Participant, b: Participant, score: float) -> list[str]:
    """Why patient leader ``a`` and ``b`` can never be paired in this intake, in words with IDs
    (empty when they can): the hard pairing rules, withdrawals, pre-formed pairs, the admin's
    locks and the minimum score. Stated from the intake alone: the what-if lock that
    :func:`why_not` adds to re-solve never appears here."""

    people = instance.participants_by_id()
    out = [f"{p.id} has withdrawn" for p in (a, b) if p.status != "active"]
    out += pairing_rule_breaks(instance, a, b)
    for me, other in ((a, b), (b, a)):
        partner = me.partner
        if partner is not None and partner != other.id and people[partner].status == "active":
            out.append(f"{me.id} applied with {partner} (pre-formed pairs are kept)")
    for lk in instance.locks:
        pair = (lk.patient_leader, lk.partner)
        if pair == (a.id, b.id):
            continue
        for p in (a, b):
            if p.id in pair:
                other_id = pair[1] if p.id == pair[0] else pair[0]
                out.append(f"{p.id} is locked with {other_id} (locks)")
    if not out and score < instance.rules.min_score:
        out.append(
            f"their score {score:.2f} is below the minimum {instance.rules.min_score:g} "
            "(rules.min_score)"
        )
    return out


def _check_plan(instance: Instance, plan: Solution | None, force: bool) -> None:
    if plan is not None:
        check_made_from(plan, instance, force=force)


def why_not(
    instance: Instance,
    x: str,
    y: str,
    plan: Solution | None = None,
    *,
    seed: int = 0,
    force: bool = False,
) -> WhyNot:
    """Why ``x`` and ``y`` are not paired in ``plan`` (solved afresh when not given): the
    hard rule that forbids it, or its price, from re-solving with the two held together and
    the plan as the previous plan (so only what must move moves). The what-if is internal: the
    answer speaks of the intake's own rules and decisions only.

    ``plan`` must have been made from ``instance`` (:func:`matcher.contract.identity.
    check_made_from`; ``force=True`` reads it anyway)."""
    a, b = _sides(instance, x, y)
    _check_plan(instance, plan, force)
    base = plan if plan is not None else solve(instance, seed=seed)
    if any(p.patient_leader == a.id and p.partner == b.id for p in base.pairs):
        return WhyNot(patient_leader=a.id, partner=b.id, paired=True)
    score = round(float(pair_scores(instance, [(a.id, b.id)])[0][0]), 6)
    blockers = _blockers(instance, a, b, score)
    if blockers:
        return WhyNot(
            patient_leader=a.id, partner=b.id, paired=False, forbidden_by=blockers, score=score
        )
    data = instance.model_dump(mode="json")
    data["locks"] = [*data["locks"], {"patient_leader": a.id, "partner": b.id, "cohort": None}]
    try:
        hypothetical = parse_instance(data, source="the pair")
        other = solve(hypothetical, seed=seed, previous=base, force=True)
    except InvalidInstance as exc:  # a rule _blockers does not state: said without the what-if
        rules = [_without_what_if(p.message, a.id, b.id) for p in exc.problems]
        return WhyNot(patient_leader=a.id, partner=b.id, paired=False, forbidden_by=rules)
    except Infeasible:
        return WhyNot(
            patient_leader=a.id,
            partner=b.id,
            paired=False,
            score=score,
            forbidden_by=[
                f"no plan can place {a.id} and {b.id} together in a cohort under the capacities "
                "and the set rules (set sizes, one organisation per set, declared conflicts)"
            ],
        )
    placed = {p.patient_leader for p in base.pairs if p.cohort} | {
        p.partner for p in base.pairs if p.cohort
    }
    changes = other.changes
    return WhyNot(
        patient_leader=a.id,
        partner=b.id,
        paired=False,
        score=score,
        total_before=round(sum(p.score for p in base.pairs), 6),
        total_after=round(sum(p.score for p in other.pairs), 6),
        placed_before=sum(1 for p in base.pairs if p.cohort),
        placed_after=sum(1 for p in other.pairs if p.cohort),
        newly_unmatched=sorted(
            u.participant
            for u in other.unmatched
            if u.participant not in {v.participant for v in base.unmatched}
        ),
        newly_waitlisted=sorted(
            x
            for p in other.pairs
            if p.cohort is None
            for x in (p.patient_leader, p.partner)
            if x in placed
        ),
        changes=None
        if changes is None
        else changes.counts.dissolved + changes.counts.moved_cohort + changes.counts.moved_set,
    )


def _without_what_if(message: str, a: str, b: str) -> str:
    """A validation message about the what-if lock, said of the pair instead."""
    text = re.sub(r"\block(?:s)?\[\d+\]\s*", "", message)
    text = re.sub(rf"\block {re.escape(a)}\+{re.escape(b)}\b", f"pairing {a} with {b}", text)
    text = text.replace("is both locked and", "is").replace("both locked and ", "")
    return re.sub(r";?\s*remove the lock\b", "", text).strip()


def why(
    instance: Instance,
    x: str,
    plan: Solution | None = None,
    *,
    seed: int = 0,
    k: int = 3,
    force: bool = False,
) -> Why:
    """Why ``x`` is paired as in ``plan`` (solved afresh when not given): the pair, its
    breakdown and reasons, and up to ``k`` alternatives: the compatible people of the other
    side, best score first, with where each went and what pairing them with ``x`` would cost
    in pair score (use :func:`why_not` for the price to the whole plan). People who can never be
    paired with ``x`` are counted, not listed as alternatives.

    ``plan`` must have been made from ``instance`` (``force=True`` reads it anyway)."""
    people = instance.participants_by_id()
    if x not in people:
        raise InvalidParameter(f"unknown participant {x!r}")
    _check_plan(instance, plan, force)
    me = people[x]
    base = plan if plan is not None else solve(instance, seed=seed)
    mine = next((p for p in base.pairs if x in (p.patient_leader, p.partner)), None)
    partner_of = {}
    for p in base.pairs:
        partner_of[p.patient_leader], partner_of[p.partner] = p, p
    if me.status != "active":
        standing = "withdrawn (takes no part)"
    elif mine is None:
        reason = next((u.reason for u in base.unmatched if u.participant == x), "not in the plan")
        standing = f"unmatched ({reason})"
    elif mine.cohort is None:
        standing = "paired, wait-listed"
    else:
        standing = f"paired, placed in {mine.cohort}" + (
            f", set {mine.learning_set}" if mine.learning_set else ""
        )
    others = [
        p
        for p in instance.participants
        if p.status == "active"
        and (p.role == "patient_leader") != (me.role == "patient_leader")
        and (mine is None or p.id not in (mine.patient_leader, mine.partner))
    ]
    keys = [(x, p.id) if me.role == "patient_leader" else (p.id, x) for p in others]
    scores: list[float] = pair_scores(instance, keys)[0].tolist() if keys else []
    ranked = sorted(zip(others, scores, strict=True), key=lambda t: (-t[1], t[0].id))
    alternatives: list[Alternative] = []
    never = 0
    for other, score in ranked:
        a, b = (me, other) if me.role == "patient_leader" else (other, me)
        if me.status != "active" or _blockers(instance, a, b, score):
            never += 1
            continue
        if len(alternatives) >= k:
            continue
        theirs = partner_of.get(other.id)
        if theirs is not None:
            with_whom = (
                theirs.partner if theirs.patient_leader == other.id else theirs.patient_leader
            )
            cost = [f"score {score:.2f} with {x}"]
            if mine is not None:
                cost.append(f"in place of {mine.score:.2f} for {x}")
            cost.append(f"in place of {theirs.score:.2f} for {other.id} ({theirs.id})")
            text = (
                f"compatible; went to {with_whom} ({theirs.id}, score {theirs.score:.2f}). "
                f"Pairing them: {', '.join(cost)}, and {with_whom} "
                + (
                    "would need a new partner"
                    if mine is None
                    else f"and {_other(mine, x)} would need new partners"
                )
                + f" (ask --why-not {a.id} {b.id} for the price to the whole plan)"
            )
        else:
            text = (
                f"compatible and unmatched too (score {score:.2f} together); pairing them "
                "would lower the plan's priorities (pairs placed, then total score); ask "
                f"--why-not {a.id} {b.id} for the price"
            )
        alternatives.append(
            Alternative(partner=other.id, score=round(float(score), 6), why_not=text)
        )
    return Why(
        participant=x,
        pair=mine.id if mine else None,
        partner=None if mine is None else _other(mine, x),
        score=mine.score if mine else None,
        breakdown=mine.breakdown if mine else {},
        reasons=mine.reasons if mine else [],
        standing=standing,
        alternatives=alternatives,
        incompatible=never,
    )


def _other(pair: Pair, x: str) -> str:
    return pair.partner if pair.patient_leader == x else pair.patient_leader
