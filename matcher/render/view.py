"""The plan as people read it: names, roles, organisations and cohort dates next to the IDs.

The JSON plan holds IDs only. Outputs meant for people (the terminal table, the XLSX workbook,
the HTML report) join it with the instance through :class:`PlanView`, which is the one place
that reads ``name``, ``email`` and ``project_description`` (free text in the applicant's words);
with ``redact=True`` they are left out everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.keys import category_key
from matcher.contract.solution import Pair, Solution
from matcher.words import count

ROLE_LABELS = {"patient_leader": "Patient leader", "clinician": "Clinician", "manager": "Manager"}
MODE_LABELS = {"in_person": "in person", "online": "online", "blended": "blended"}
CRITERION_LABELS = {
    "interests": "Shared interests",
    "project": "Project fit",
    "organisation": "Organisation",
    "system": "Local system",
    "availability": "Availability",
}


#: Change kinds (``changes.items[].kind``) as a programme team reads them.
CHANGE_LABELS = {
    "dissolved": "Pair ended",
    "formed": "New pair",
    "moved_cohort": "Moved cohort",
    "moved_set": "Moved set",
    "newly_unmatched": "Now unmatched",
    "newly_waitlisted": "Now wait-listed",
    "no_longer_unmatched": "Now paired",
    "no_longer_waitlisted": "Off the wait-list",
    "left": "Left the programme",
}


@dataclass(frozen=True)
class ChangeRow:
    """One change of a re-plan, for people: what, which pair, who (with names), from, to, why."""

    kind: str
    pair: str
    people: tuple[PersonView, ...]
    before: str
    after: str
    reason: str


def day(d: dt.date) -> str:
    """12 May 2016 (no leading zero, on every platform)."""
    return f"{d.day} {d:%B %Y}"


@dataclass(frozen=True)
class PersonView:
    id: str
    name: str | None
    email: str | None
    role: str
    organisation: str
    organisation_type: str
    system: str
    project_description: str | None = None

    @property
    def label(self) -> str:
        """``pl01 Alex Example``, or the ID alone when there is no name (or it is redacted)."""
        return f"{self.id} {self.name}" if self.name else self.id


@dataclass(frozen=True)
class CohortView:
    id: str
    name: str
    sessions: tuple[dt.date, ...]
    venue: str | None
    mode: str
    capacity: int

    @property
    def dates(self) -> str:
        return "; ".join(day(d) for d in self.sessions)

    @property
    def when(self) -> str:
        first, last = min(self.sessions), max(self.sessions)
        n = len(self.sessions)
        span = day(first) if first == last else f"{day(first)} to {day(last)}"
        return f"{span} ({n} session{'s' if n != 1 else ''})"

    @property
    def label(self) -> str:
        where = f", {self.venue}" if self.venue else ""
        return f"{self.id} {self.name}".strip() + f" ({self.mode}{where})"


class PlanView:
    """A solution joined with its instance for people-facing outputs."""

    def __init__(self, instance: Instance, solution: Solution, *, redact: bool = False) -> None:
        self.instance = instance
        self.solution = solution
        self.redact = redact
        self.people = {p.id: self._person(p) for p in instance.participants}
        self.cohorts = {c.id: self._cohort(c) for c in instance.cohorts}
        self.pairs = {p.id: p for p in solution.pairs}
        self.waitlisted = {w.pair: w.reason for w in solution.waitlist}
        #: Whether any name / email is shown (their columns are left out otherwise).
        self.has_names = any(p.name for p in self.people.values())
        self.has_emails = any(p.email for p in self.people.values())
        self.has_descriptions = any(p.project_description for p in self.people.values())
        self.sets_by_cohort: dict[str, list[str]] = defaultdict(list)
        for s in solution.learning_sets or []:
            self.sets_by_cohort[s.cohort].append(s.id)

    def _person(self, p: Participant) -> PersonView:
        return PersonView(
            id=p.id,
            name=None if self.redact else p.name,
            email=None if self.redact else p.email,
            role=ROLE_LABELS[p.role],
            organisation=p.organisation,
            organisation_type=p.organisation_type,
            system=p.system,
            project_description=None if self.redact else p.project_description,
        )

    @staticmethod
    def _cohort(c: Cohort) -> CohortView:
        return CohortView(
            id=c.id,
            name=c.name,
            sessions=tuple(sorted(c.sessions)),
            venue=c.venue,
            mode=MODE_LABELS[c.mode],
            capacity=c.capacity_pairs,
        )

    def person(self, pid: str) -> PersonView:
        return self.people[pid]

    def cohort(self, cid: str | None) -> CohortView | None:
        return self.cohorts.get(cid) if cid else None

    def members(self, pair: Pair) -> tuple[PersonView, PersonView]:
        return self.people[pair.patient_leader], self.people[pair.partner]

    def summary_sentences(self) -> list[str]:
        """The plan in words, for the Summary sheet and the report's first section."""
        s = self.solution
        placed = [p for p in s.pairs if p.cohort]
        new = [p for p in s.pairs if not p.preformed]
        status = {
            "optimal": "The plan is proven best for the chosen objective.",
            "feasible": "The plan meets every hard rule; it is not proven best.",
            "infeasible": "No plan meets the hard rules.",
            "timeout": "No plan was found within the time limit.",
        }[s.status]
        people = len(self.instance.participants)
        withdrawn = sum(not p.active for p in self.instance.participants)
        out = [
            f"Intake {s.instance}: {count(people, 'person', 'people')}"
            + (f" ({withdrawn} withdrawn)" if withdrawn else "")
            + f", {count(len(self.instance.cohorts), 'cohort')}.",
            f"{count(len(s.pairs), 'pair')}: {len(s.pairs) - len(new)} applied together and "
            f"{len(new)} {'was' if len(new) == 1 else 'were'} matched; "
            f"{count(len(placed), 'pair')} {'is' if len(placed) == 1 else 'are'} placed in a "
            "cohort.",
        ]
        if new:
            mean = sum(p.score for p in new) / len(new)
            out.append(
                f"Matched pairs score {mean:.2f} on average (0 to 1), the lowest "
                f"{min(p.score for p in new):.2f}."
            )
        w, u = len(s.waitlist), len(s.unmatched)
        if w or u:
            out.append(
                f"{count(w, 'pair')} {'is' if w == 1 else 'are'} on the wait-list and "
                f"{count(u, 'person', 'people')} {'is' if u == 1 else 'are'} unmatched; each "
                "has a reason below."
            )
        else:
            out.append("Every pair is placed and everybody is in a pair.")
        if s.learning_sets:
            out.append(
                f"Cohorts are split into {count(len(s.learning_sets), 'action-learning set')}."
            )
        out.append(status)
        return out

    def change_rows(self) -> list[ChangeRow]:
        """The plan's changes against the previous plan (empty without one), for people."""
        changes = self.solution.changes
        if changes is None:
            return []
        rows = []
        for c in changes.items:
            people = tuple(
                self.people.get(pid)
                or PersonView(pid, None, None, "", "(no longer in the intake)", "", "")
                for pid in c.participants
            )
            rows.append(
                ChangeRow(
                    kind=CHANGE_LABELS.get(c.kind, c.kind),
                    pair=c.pair or "",
                    people=people,
                    before=self._place(c.before),
                    after=self._place(c.after),
                    reason=c.reason,
                )
            )
        return rows

    def _place(self, where: str | None) -> str:
        """A cohort (with its name), a set or a person, as stored in a change; "" for none."""
        if where is None:
            return ""
        cohort = self.cohorts.get(where)
        if cohort is not None and cohort.name:
            return f"{where} ({cohort.name})"
        return where

    def change_sentences(self) -> list[str]:
        """The change list in words, for the top of every output made by a re-plan."""
        changes = self.solution.changes
        if changes is None:
            return []
        n = changes.counts
        out = [
            f"Re-planned against the previous plan of {changes.previous_instance}: "
            f"{count(n.kept, 'pair')} kept, {count(n.dissolved, 'pair')} ended, "
            f"{count(n.formed, 'new pair')}, {count(n.moved_cohort, 'pair')} moved cohort, "
            f"{count(n.moved_set, 'pair')} moved set, "
            f"{count(n.newly_unmatched, 'person', 'people')} newly unmatched, "
            f"{count(n.newly_waitlisted, 'pair')} newly wait-listed."
        ]
        if not changes.items:
            out.append("Nothing changed: every pair keeps its cohort and set.")
        elif not changes.minimal:
            out.append(
                "These are the fewest changes found within the time and size limits, not "
                "proven the fewest."
            )
        return out

    def group_key(self, text: str) -> str:
        return category_key(text)
