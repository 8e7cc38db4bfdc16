"""The solution contract (DESIGN.md §4): what `matcher solve --format json` writes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["optimal", "feasible", "infeasible", "timeout"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pair(_Out):
    id: str
    patient_leader: str
    partner: str
    score: float
    preformed: bool
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
    solver: str
    objective: str
    seed: int
    time_s: float | None = None
    stages: dict[str, float] | None = Field(
        None, description="Wall seconds per stage (only with timings on)."
    )
    version: str
    time_limit: float | None = None
    bound: float | None = None
    gap: float | None = None
    notes: list[str] = Field(default_factory=list)


class Solution(_Out):
    schema_version: Literal["1"] = "1"
    instance: str
    status: Status
    pairs: list[Pair]
    unmatched: list[Unmatched]
    waitlist: list[Waitlisted]
    cohorts: list[CohortPlan] | None = None
    learning_sets: list[LearningSet] | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    run: RunInfo

    def summary(self) -> str:
        """One line for humans."""
        placed = sum(1 for p in self.pairs if p.cohort is not None)
        return (
            f"{self.instance}: {self.status}; {len(self.pairs)} pairs "
            f"({sum(p.preformed for p in self.pairs)} pre-formed), {placed} placed, "
            f"{len(self.waitlist)} wait-listed, {len(self.unmatched)} unmatched"
        )
