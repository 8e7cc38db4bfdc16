"""The solution contract (DESIGN.md §4): what `matcher solve --format json` writes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["optimal", "feasible", "infeasible", "timeout"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pair(_Out):
    id: str
    patient_leader: str
    partner: str
    score: float
    preformed: bool
    locked: bool = Field(False, description="Formed (and placed) by a lock in the instance.")
    cohort: str | None = None
    learning_set: str | None = None
    breakdown: dict[str, float] = Field(default_factory=dict)
    reasons: list[str] = Field(
        default_factory=list, description="The strongest reasons for this pair, best first."
    )


class Unmatched(_Out):
    participant: str
    reason: str


class Waitlisted(_Out):
    pair: str
    reason: str


class CohortPlan(_Out):
    id: str
    pairs: list[str]
    capacity_pairs: int | None = None


class LearningSet(_Out):
    id: str
    cohort: str
    pairs: list[str]
    diversity: float | None = None


class RunInfo(_Out):
    """How the plan was made: solver, settings, proofs and versions."""

    solver: str = Field(description="The solvers used, stage by stage.")
    objective: str = Field(description="Pairing objective: total, fair or stable.")
    proposer: str = Field("patient_leader", description="Proposing side (stable objective).")
    seed: int = Field(description="Random seed.")
    deterministic: bool = Field(
        True, description="Deterministic budgets (byte-identical output run to run)."
    )
    time_s: float | None = Field(None, description="Wall seconds (only with timings on).")
    stages: dict[str, float] | None = Field(
        None, description="Wall seconds per stage (only with timings on)."
    )
    version: str = Field(description="matcher's version.")
    versions: dict[str, str] = Field(
        default_factory=dict, description="Versions of matcher, ortools and numpy."
    )
    time_limit: float | None = Field(None, description="The caller's wall-clock limit (s).")
    bound: float | None = Field(
        None,
        description=(
            "Upper bound on the pairs that any plan can place, re-pairing allowed, whatever "
            "the objective (the same for total, fair and stable on one intake): the "
            "smaller of two maximum flows of pre-formed pairs and one side's lone applicants "
            "into the cohorts they can attend, within capacities cut to counts that split "
            "into sets (the set-diversity and conflict rules are left out)."
        ),
    )
    gap: float | None = Field(
        None,
        description="(bound - pairs placed) / bound, after the sets stage; 0: no plan places more.",
    )
    outcomes: dict[str, str] = Field(
        default_factory=dict,
        description="Per stage: optimal (proven) or feasible (best found); decides `status`.",
    )
    notes: list[str] = Field(default_factory=list, description="What ran, in words.")


class SideCounts(_Out):
    """One side (patient leaders or clinicians/managers) of the intake."""

    participants: int = Field(description="Active participants on this side.")
    paired: int = Field(description="In a pair (placed or wait-listed).")
    placed: int = Field(description="In a pair placed in a cohort.")
    waitlisted: int = Field(description="In a pair no cohort could take.")
    unmatched: int = Field(description="Without a partner.")


class ScoreStats(_Out):
    """Pair-score statistics (scores are 0-1)."""

    count: int = Field(description="Pairs counted.")
    total: float = Field(description="Sum of their scores.")
    mean: float | None = Field(description="Mean score (null without pairs).")
    median: float | None = Field(description="Median score.")
    min: float | None = Field(description="Lowest score.")


class Scores(_Out):
    all_pairs: ScoreStats = Field(description="Every pair, pre-formed included.")
    lone_pairs: ScoreStats = Field(description="Pairs formed from lone applicants.")


#: Groups (by role, organisation type, local system) of fewer people than this are suppressed in
#: the metrics and not charted: small groups could identify people. The one home of the figure;
#: the verifier re-states it (a drift test ties the two).
MIN_GROUP = 5


class GroupMean(_Out):
    """Mean pair score of one group; groups under 5 people are suppressed (shown as '<5')."""

    people: int | str = Field(description="People in the group, or '<5' when suppressed.")
    mean_score: float | str = Field(description="Their mean pair score, or 'suppressed'.")


class GroupOutcome(_Out):
    """How one group of people fared: one row per (field, value). A group under the
    suppression threshold keeps its field and value, ``suppressed`` is true and every figure is
    null (never text in a numeric field)."""

    field: str = Field(description="Participant field grouped by (role, organisation_type, ...).")
    value: str = Field(description="The group's value of that field (as first spelt).")
    suppressed: bool = Field(
        description="True when the group has fewer people than the threshold: figures are null."
    )
    people: int | None = Field(description="Active participants in the group.")
    placed: int | None = Field(description="Of them, in a pair placed in a cohort.")
    waitlisted: int | None = Field(description="Of them, in a pair no cohort could take.")
    unpaired: int | None = Field(description="Of them, without a partner.")
    placed_share: float | None = Field(description="placed / people (0-1).")
    waitlisted_share: float | None = Field(description="waitlisted / people (0-1).")
    unpaired_share: float | None = Field(description="unpaired / people (0-1).")
    mean_score_placed: float | None = Field(
        description="Mean pair score (0-1) of the placed people in the group (null: none placed)."
    )


class SetStats(_Out):
    count: int = Field(description="Action-learning sets.")
    mean_diversity: float | None = Field(description="Mean set diversity (0-1).")
    least_diversity: float | None = Field(description="Diversity of the least diverse set.")


class CohortFill(_Out):
    pairs: int = Field(description="Pairs placed in the cohort.")
    capacity: int = Field(description="Its capacity in pairs.")
    fill: float | None = Field(description="pairs / capacity (null for capacity 0).")


class Metrics(_Out):
    """Quality figures of a plan, computed from the instance and the plan alone."""

    people: dict[str, SideCounts] = Field(
        description="Per side: patient_leaders and professionals."
    )
    scores: Scores
    top3_share: float | None = Field(
        description=(
            "Share of the paired lone applicants who got one of their 3 highest-scoring "
            "allowed candidates (ties with the third count)."
        )
    )
    blocking_pairs: int = Field(
        description="Lone pairs who would both rather be together than with their partners."
    )
    by_role: dict[str, GroupMean] = Field(description="Mean pair score by role.")
    by_organisation_type: dict[str, GroupMean] = Field(
        description="Mean pair score by organisation type."
    )
    by_system: dict[str, GroupMean] = Field(description="Mean pair score by local system.")
    groups: list[GroupOutcome] = Field(
        default_factory=list,
        description=(
            "Per role, organisation type and local system: people, share placed, wait-listed "
            "and left unpaired, mean score of the placed; groups under 5 people suppressed "
            "(null figures, suppressed true). Supersedes by_role, by_organisation_type and "
            "by_system, which average the paired only and are kept for older readers."
        ),
    )
    sets: SetStats
    cohort_fill: dict[str, CohortFill] = Field(description="Per cohort: pairs, capacity, fill.")


ChangeKind = Literal[
    "dissolved",
    "formed",
    "moved_cohort",
    "moved_set",
    "newly_unmatched",
    "newly_waitlisted",
    "no_longer_unmatched",
    "no_longer_waitlisted",
    "left",
]


class Change(_Out):
    """One difference between a previous plan and this one, with its reason."""

    kind: ChangeKind = Field(
        description=(
            "dissolved / formed: a pair of the previous plan is gone / a pair is new; "
            "moved_cohort / moved_set: a kept pair changed cohort (or left the wait-list for "
            "one) / set; newly_unmatched, newly_waitlisted and their opposites: people or pairs "
            "whose standing changed; left: a person of the previous plan is withdrawn or gone."
        )
    )
    pair: str | None = Field(None, description="The pair's ID (in this plan, or the previous).")
    participants: list[str] = Field(default_factory=list, description="IDs of the people.")
    before: str | None = Field(None, description="Cohort or set before (null: none).")
    after: str | None = Field(None, description="Cohort or set now (null: none).")
    reason: str = Field(description="Why, in words, with IDs.")


class ChangeCounts(_Out):
    """How much a re-plan disturbed the previous plan."""

    kept: int = Field(description="Pairs of the previous plan kept (same two people).")
    dissolved: int = Field(description="Pairs of the previous plan no longer formed.")
    formed: int = Field(description="Pairs that are new.")
    moved_cohort: int = Field(description="Kept pairs in another cohort (or wait-list) now.")
    moved_set: int = Field(description="Kept pairs in the same cohort but another set.")
    newly_unmatched: int = Field(description="People paired before and unmatched now.")
    newly_waitlisted: int = Field(description="Kept pairs placed before, wait-listed now.")


class Changes(_Out):
    """What changed against the previous plan (DESIGN.md §4)."""

    previous_instance: str = Field(description="The `instance` name of the previous plan.")
    counts: ChangeCounts
    items: list[Change] = Field(default_factory=list)
    minimal: bool = Field(
        description=(
            "True when the fewest changes are proven (exact model); false when the plan is "
            "the best found in the time or size limits."
        )
    )


class Solution(_Out):
    schema_version: Literal["1"] = "1"
    instance: str
    instance_sha256: str | None = Field(
        None,
        description=(
            "SHA-256 of the instance the plan was made from (its canonical JSON: sorted keys, "
            "no spaces, UTF-8, fields at their default left out); reports, explanations and "
            "change lists refuse a plan read against another instance. Absent in plans "
            "written before matcher recorded it."
        ),
        pattern=r"^[0-9a-f]{64}$",
    )
    status: Status
    pairs: list[Pair]
    unmatched: list[Unmatched]
    waitlist: list[Waitlisted]
    cohorts: list[CohortPlan] | None = None
    learning_sets: list[LearningSet] | None = None
    metrics: Metrics | None = Field(None, description="Quality figures of the plan.")
    run: RunInfo
    withdrawn: list[str] = Field(
        default_factory=list, description="IDs of withdrawn participants (they take no part)."
    )
    changes: Changes | None = Field(
        None, description="Against the previous plan, when the solve was given one."
    )

    def summary(self) -> str:
        """One line for humans."""
        placed = sum(1 for p in self.pairs if p.cohort is not None)
        n = len(self.pairs)
        return (
            f"{self.instance}: {self.status}; {n} pair{'s' if n != 1 else ''} "
            f"({sum(p.preformed for p in self.pairs)} pre-formed), {placed} placed, "
            f"{len(self.waitlist)} wait-listed, {len(self.unmatched)} unmatched"
        )
