"""Instance schema (schema_version "1"): the file format programme teams write.

The pydantic models here check *shape* (types, enumerations, unknown fields, dates,
non-negative numbers). Cross-references between records (duplicate IDs, partners, cohort
and conflict IDs, locks that break a rule) are checked by :mod:`matcher.contract.checks`, which
the :class:`Instance` model runs on itself; :mod:`matcher.intake.json_file` reports them together
with the shape errors of a file.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from matcher.contract.checks import instance_problems
from matcher.contract.rules import PROFESSIONAL_ROLES as PROFESSIONAL_ROLES  # 0.1 had it here
from matcher.errors import InvalidInstance

SCHEMA_VERSION = "1"
#: Validation context meaning "cross-references already checked" (by
#: :mod:`matcher.intake.json_file`, which reports them together with shape problems); without
#: it, building an :class:`Instance` checks them itself, so an Instance that exists is valid
#: whatever path built it.
CHECKED = {"cross_references_checked": True}

Role = Literal["patient_leader", "clinician", "manager"]
ParticipantStatus = Literal["active", "withdrawn"]
AttendanceMode = Literal["in_person", "online"]
CohortMode = Literal["in_person", "online", "blended"]


#: Session dates are accepted from this year to that one (a typo such as 0001-01-01 or 20216
#: fails loudly instead of placing nobody).
MIN_YEAR, MAX_YEAR = 2000, 2100
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date_text(value: object) -> object:
    """A session date is written as an ISO string (YYYY-MM-DD): never a number (a timestamp
    such as 1463011200 would be read as a date in 2016 without a word)."""
    if isinstance(value, dt.date):  # built in Python, not read from a file
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("a date must be written as a string YYYY-MM-DD")
    return value


def _sane_year(value: dt.date) -> dt.date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"the year must be between {MIN_YEAR} and {MAX_YEAR}")
    return value


SessionDate = Annotated[dt.date, BeforeValidator(_iso_date_text), AfterValidator(_sane_year)]


class _Strict(BaseModel):
    """Base: unknown fields are an error, so typos fail loudly; records are frozen, and a copy
    with changes is validated again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy. With ``update`` it is validated again as a new record would be (an
        :class:`Instance`: shape and cross-references), so a copy is never invalid: pydantic's
        ``ValidationError`` for a wrong shape or an unknown field, :class:`InvalidInstance` for
        a broken reference (e.g. a withdrawn person's partner left pointing at them)."""
        if not update:
            return super().model_copy(deep=deep)
        data = self.model_dump(exclude_unset=True)
        data.update({key: _plain(value) for key, value in update.items()})
        return self.model_validate(data)


def _plain(value: Any) -> Any:
    """``value`` with every record in it turned back into plain data (validated afresh)."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class SetSize(_Strict):
    """Size bounds of the action-learning sets in a cohort, in pairs."""

    min_pairs: int = Field(3, ge=1, le=1_000, strict=True, description="Fewest pairs in one set.")
    max_pairs: int = Field(4, ge=1, le=1_000, strict=True, description="Most pairs in one set.")


class Cohort(_Strict):
    """An intake with fixed workshop dates, a mode and a capacity in pairs."""

    id: str = Field(min_length=1, description="Unique cohort ID (e.g. c1).")
    name: str = Field("", description="A name people recognise (e.g. London, May 2016).")
    sessions: list[SessionDate] = Field(
        min_length=1, description="Workshop dates (ISO 8601). Attending a cohort means all of them."
    )
    capacity_pairs: int = Field(
        ge=0, le=100_000, strict=True, description="Most pairs the cohort can take."
    )
    mode: CohortMode = Field(
        description="in_person, online, or blended (blended needs both modes)."
    )
    set_size: SetSize = Field(
        default_factory=SetSize, description="Action-learning set sizes (default 3-4 pairs)."
    )
    venue: str | None = Field(None, description="Where the cohort meets (shown in reports).")


class Participant(_Strict):
    """One applicant. Holds functional needs only (e.g. online only), never diagnoses."""

    id: str = Field(min_length=1, description="Unique participant ID (e.g. pl01).")
    status: ParticipantStatus = Field(
        "active",
        description=(
            "active (default) or withdrawn. A withdrawn person takes no part: other records may "
            "still name them, and their pre-formed partner becomes a lone applicant."
        ),
    )
    name: str | None = Field(
        None,
        max_length=200,
        description=(
            "Personal data, optional: shown only in outputs meant for people (table, XLSX, "
            "HTML) and dropped by --redact; never in logs, errors or the JSON plan."
        ),
    )
    email: str | None = Field(
        None,
        max_length=320,
        description="Personal data, optional; treated like `name`.",
    )
    role: Role = Field(description="patient_leader, clinician or manager.")
    organisation: str = Field(
        min_length=1,
        description="Organisation; compared ignoring case, spaces and punctuation.",
    )
    organisation_type: str = Field(
        min_length=1, description="Kind of organisation (e.g. healthwatch, ccg, acute_ft)."
    )
    system: str = Field(min_length=1, description="Local system (STP footprint in 2016).")
    interests: list[str] = Field(default_factory=list, description="Topics they care about.")
    project_topics: list[str] = Field(
        default_factory=list, description="Topics of the local project they bring."
    )
    available_cohorts: list[str] | None = Field(
        None, description="Cohorts this person can attend in full; absent means all."
    )
    attendance: list[AttendanceMode] | None = Field(
        None, min_length=1, description="Modes this person can attend; absent means both."
    )
    partner: str | None = Field(None, description="ID of a pre-formed partner (mutual).")
    avoid: list[str] = Field(
        default_factory=list,
        description="Declared conflicts: never paired with, never in one set with, these IDs.",
    )
    preferences: list[str] | None = Field(
        None,
        description=(
            "Optional ranked partner preferences (IDs of the other side, most preferred first), "
            "used by the stable objective; absent means preferences follow the scores."
        ),
    )
    preferred_cohorts: list[str] = Field(
        default_factory=list, description="Soft preference among available cohorts."
    )
    project_description: str | None = Field(
        None,
        max_length=5_000,
        description=(
            "The local project in the applicant's own words, optional. Project fit compares "
            "two descriptions by meaning (a local model; never sent anywhere). Free text: "
            "shown only in outputs meant for people, like `name`; never in logs, errors or "
            "the JSON plan."
        ),
    )
    unavailable_dates: list[SessionDate] | None = Field(
        None,
        description=(
            "Dates (ISO 8601) this person cannot attend: no cohort with a session on one of "
            "them is open to them, whatever `available_cohorts` says."
        ),
    )

    @property
    def is_patient_leader(self) -> bool:
        return self.role == "patient_leader"

    @property
    def active(self) -> bool:
        return self.status == "active"


class Lock(_Strict):
    """A decision already taken: this pair is formed (and placed in ``cohort`` when given),
    whatever the objective."""

    patient_leader: str = Field(min_length=1, description="ID of the patient leader.")
    partner: str = Field(min_length=1, description="ID of the clinician or manager.")
    cohort: str | None = Field(None, description="Cohort the pair is placed in (optional).")


class Rules(_Strict):
    """Policy switches, with defaults that suit most intakes."""

    same_organisation: Literal["allow", "avoid", "forbid"] = Field(
        "avoid",
        description=(
            "Pairing two people from one organisation: allow (no effect), avoid (scores 0 on the "
            "organisation criterion) or forbid (never paired)."
        ),
    )
    local_system: Literal["require", "prefer", "ignore"] = Field(
        "prefer",
        description=(
            "Pairing across local systems: require (same system only), prefer (same system "
            "scores 1, else 0) or ignore (criterion dropped)."
        ),
    )
    one_organisation_per_set: Literal["hard", "soft"] = Field(
        "hard",
        description=(
            "Two pairs sharing an organisation in one action-learning set: hard (never) or soft "
            "(allowed at a penalty)."
        ),
    )
    set_diversity: Literal["total", "least_first"] = Field(
        "total",
        description=(
            "Action-learning sets: maximise the total diversity, or the least diverse set "
            "first (then the total)."
        ),
    )
    min_score: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        strict=True,
        description="Lone applicants are only paired at or above this score.",
    )
    project_meaning: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        strict=True,
        description=(
            "Share of project fit taken by the similarity of the two project descriptions "
            "when both people wrote one (the rest is the topic-tag fit; when neither names a "
            "topic the similarity is the whole of it)."
        ),
    )


class Weights(_Strict):
    """Weight of each compatibility criterion; the score is the weighted mean."""

    interests: float = Field(
        0.30,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of shared interests (Jaccard).",
    )
    project: float = Field(
        0.25,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of project fit.",
    )
    organisation: float = Field(
        0.10,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of organisation (different organisations score 1).",
    )
    system: float = Field(
        0.20,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of local system (same system scores 1).",
    )
    availability: float = Field(
        0.15,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of availability (share of cohorts both can attend).",
    )

    @model_validator(mode="after")
    def _not_all_zero(self) -> Weights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return self


#: The five criteria of a pair score, in the order of :class:`Weights` (a pair's ``breakdown``
#: keys). The one home of this list; the verifier re-states it (a drift test ties the two).
CRITERIA: tuple[str, ...] = tuple(Weights.model_fields)


class DiversityWeights(_Strict):
    """Weights of the pairwise distance used to make action-learning sets diverse."""

    organisation_type: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of different organisation types in set diversity.",
    )
    system: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of different local systems in set diversity.",
    )
    role_mix: float = Field(
        0.5,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of different clinician/manager mix in set diversity.",
    )
    interests: float = Field(
        1.0,
        ge=0.0,
        le=1000.0,
        allow_inf_nan=False,
        strict=True,
        description="Weight of different interests in set diversity.",
    )


class Instance(_Strict):
    """A whole intake: cohorts, participants, rules and weights."""

    schema_version: Literal["1"] = Field(description='Format version: "1".')
    name: str = Field(min_length=1, description="Name of the intake (e.g. may2016).")
    description: str = Field("", description="Free text about the intake.")
    cohorts: list[Cohort] = Field(min_length=1, description="The cohorts (at least one).")
    participants: list[Participant] = Field(description="Everyone who applied.")
    rules: Rules = Field(default_factory=Rules, description="Policy switches (see Rules).")
    weights: Weights = Field(default_factory=Weights, description="Criterion weights.")
    diversity: DiversityWeights = Field(
        default_factory=DiversityWeights, description="Set diversity weights."
    )
    locks: list[Lock] = Field(
        default_factory=list,
        description=(
            "Pairs already agreed, kept exactly (with their cohort when given). A lock that "
            "breaks a hard rule is an input error."
        ),
    )
    forbidden_pairs: list[tuple[str, str]] = Field(
        default_factory=list,
        description=(
            "Pairs of IDs (patient leader, clinician or manager, either order) never to be "
            "paired; unlike `avoid` they may share an action-learning set."
        ),
    )

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> Instance:
        if isinstance(info.context, dict) and info.context.get("cross_references_checked"):
            return self
        problems = instance_problems(self)
        if problems:
            # Not a ValueError: pydantic lets it through as it is, with every problem listed.
            raise InvalidInstance("instance", problems)
        return self

    def participants_by_id(self) -> dict[str, Participant]:
        return {p.id: p for p in self.participants}

    def cohorts_by_id(self) -> dict[str, Cohort]:
        return {c.id: c for c in self.cohorts}
