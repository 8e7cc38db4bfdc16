"""Why and why-not: counterfactual answers about a plan, by re-solving with a what-if lock.

The reasons attached to every plan are :mod:`matcher.engine.reasons`; they are re-exported here
for callers of the old names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from matcher.contract.instance import Instance, Participant
from matcher.contract.rules import pairing_rule_breaks
from matcher.contract.solution import Solution
from matcher.engine.reasons import CHOICE, pair_reasons, unmatched_reason
from matcher.engine.scoring import pair_scores
from matcher.engine.solve import solve
from matcher.errors import InvalidInstance, InvalidParameter
from matcher.intake.json_file import parse_instance

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
            f"placed {self.placed_before} -> {self.placed_after}, {self.changes} changes."
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
    alternatives: list[Alternative] = Field(default_factory=list)

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


def why_not(
    instance: Instance, x: str, y: str, plan: Solution | None = None, *, seed: int = 0
) -> WhyNot:
    """Why ``x`` and ``y`` are not paired in ``plan`` (solved afresh when not given): the
    hard rule that forbids it, or its price, from re-solving with the two locked together and
    the plan as the previous plan (so only what must move moves)."""
    a, b = _sides(instance, x, y)
    base = plan if plan is not None else solve(instance, seed=seed)
    if any(p.patient_leader == a.id and p.partner == b.id for p in base.pairs):
        return WhyNot(patient_leader=a.id, partner=b.id, paired=True)
    data = instance.model_dump(mode="json")
    data["locks"] = [
        lk for lk in data["locks"] if not {lk["patient_leader"], lk["partner"]} & {a.id, b.id}
    ] + [{"patient_leader": a.id, "partner": b.id, "cohort": None}]
    try:
        hypothetical = parse_instance(data, source="the pair")
    except InvalidInstance as exc:
        rules = [
            p.message for p in exc.problems if p.path.startswith("locks[") or "forbid" in p.path
        ]
        return WhyNot(patient_leader=a.id, partner=b.id, paired=False, forbidden_by=rules)
    other = solve(hypothetical, seed=seed, previous=base)
    placed = {p.patient_leader for p in base.pairs if p.cohort} | {
        p.partner for p in base.pairs if p.cohort
    }
    score = next(p.score for p in other.pairs if p.patient_leader == a.id)
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


def why(
    instance: Instance, x: str, plan: Solution | None = None, *, seed: int = 0, k: int = 3
) -> Why:
    """Why ``x`` is paired as in ``plan`` (solved afresh when not given): the pair, its
    breakdown and reasons, and ``x``'s ``k`` best-scoring alternatives with why each was not
    chosen (use :func:`why_not` for the price of one)."""
    people = instance.participants_by_id()
    if x not in people:
        raise InvalidParameter(f"unknown participant {x!r}")
    me = people[x]
    base = plan if plan is not None else solve(instance, seed=seed)
    mine = next((p for p in base.pairs if x in (p.patient_leader, p.partner)), None)
    partner_of = {}
    for p in base.pairs:
        partner_of[p.patient_leader], partner_of[p.partner] = p, p
    if mine is None:
        reason = next((u.reason for u in base.unmatched if u.participant == x), "withdrawn")
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
    alternatives = []
    for other, score in ranked:
        a, b = (me, other) if me.role == "patient_leader" else (other, me)
        breaks = pairing_rule_breaks(instance, a, b)
        if me.partner is not None and me.partner != other.id:
            breaks.insert(0, f"{x} applied with {me.partner} (pre-formed pairs are kept)")
        if other.partner is not None and people.get(other.partner, other).status == "active":
            breaks.append(f"{other.id} applied with {other.partner} (pre-formed pairs are kept)")
        if breaks:
            text = "; ".join(breaks)
        elif other.id in partner_of:
            theirs = partner_of[other.id]
            text = (
                f"{other.id} is paired with "
                f"{theirs.partner if theirs.patient_leader == other.id else theirs.patient_leader}"
                f" ({theirs.id}, score {theirs.score:.2f}); pairing differently would give fewer "
                "pairs placed or a lower total (ask --why-not for the price)"
            )
        else:
            text = "unmatched too; the pair would lower the plan's priorities (ask --why-not)"
        alternatives.append(
            Alternative(partner=other.id, score=round(float(score), 6), why_not=text)
        )
        if len(alternatives) >= k:
            break
    return Why(
        participant=x,
        pair=mine.id if mine else None,
        partner=None
        if mine is None
        else (mine.partner if mine.patient_leader == x else mine.patient_leader),
        score=mine.score if mine else None,
        breakdown=mine.breakdown if mine else {},
        reasons=mine.reasons if mine else [],
        standing=standing,
        alternatives=alternatives,
    )
