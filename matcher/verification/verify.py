"""The independent checker: re-checks every hard rule of a solution against its instance.

Written apart from the solvers, from :mod:`matcher.contract.rules` and from the vectorised scoring
in
:mod:`matcher.engine.scoring`: it recomputes each pair's score, each set's diversity and the plan's
metrics from the instance with plain set arithmetic (the scan of every lone pair for the
metrics and stability does a patient leader's row at once with numpy, same formula), so a bug
in either path shows up as a disagreement. Every solve path runs through it in the tests.

Each check builds its :class:`Violation` where it finds it, with the rule's name and the IDs
involved (participants, pairs, sets, cohorts; never names). The plan's structure is checked
first: every field of the plan must have its contract's type (a plan built with
``model_construct`` or edited in place may not), else the plan is reported as
``plan_structure`` violations naming the field and nothing else is checked. Past that point the
checks rely on the types alone (unknown IDs are violations, never errors), so any exception
inside the verifier is a bug in it and escapes as :class:`matcher.errors.InternalError`. The
rules:

``plan_structure``
    each field has its type (checked first; a plan off its types is reported by these alone);
    cohort and set IDs are unique and every reference (a pair's cohort and set, a cohort's or
    set's pairs) resolves.
``instance``
    the plan belongs to this instance: the same intake name and the same people (paired,
    unmatched or withdrawn). A plan of another intake (name and people differ) is this one
    violation, naming both intakes; nothing else is checked against it.
``withdrawn`` · ``each_participant_once`` · ``pair_ids`` · ``roles`` · ``preformed`` · ``locks``
    who takes part, once, in which pair.
``avoid`` · ``forbidden_pairs`` · ``same_organisation`` · ``local_system`` · ``attendance`` ·
``min_score`` · ``maximal_pairing``
    the hard pairing rules, and no two unmatched people who could have been paired.
``scores`` · ``set_diversity`` · ``metrics``
    stated figures that must recompute (``TOLERANCE``; figures the plan rounds to fewer decimals
    get half a unit of that rounding on top). Every figure of the metrics is recomputed; the
    blocking pairs and top-3 share only up to ``METRIC_SCAN_MAX_CELLS`` lone pairs (else
    :attr:`Report.skipped` says so).
``capacity`` · ``waitlist`` · ``set_size`` · ``one_organisation_per_set`` · ``plan_structure``
    placement and action-learning sets.
``stability``
    for ``run.objective == "stable"`` (fresh solves: a re-plan minimises changes instead): no
    lone patient leader and lone professional, allowed together, who both strictly prefer each
    other to their partners (or are unmatched). Preferences: each person's stated
    ``preferences`` among their allowed lone partners first, in the stated order, then the other
    allowed lone partners by score (equal scores are ties, never a strict preference). Pairs
    with a pre-formed or locked member are fixed by the programme and take no part. The engine
    guarantees this only while it pairs over every allowed pair (at most
    ``EXACT_PAIRING_MAX_CELLS`` lone patient leader x professional pairs, re-stated from
    :mod:`matcher.engine.pairing`); above that the check is skipped and :attr:`Report.skipped` says
    so.
``status``
    a returned plan is ``optimal`` or ``feasible``; ``optimal`` only when every stage was proven
    and no wait-listed pair could simply join a set with room in a cohort with room (placing
    the most pairs is the first priority, so such a plan is not optimal).
``changes``
    with ``previous``: kept pairs keep their IDs, new pairs take unused ones, and ``changes``
    counts what differs between the two plans.
"""

from __future__ import annotations

import functools
import math
import statistics
import types
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from matcher import embedding
from matcher.contract.instance import Cohort, Instance, Participant
from matcher.contract.solution import Pair, Solution
from matcher.errors import InternalError, InvalidParameter, VerificationFailed, Violation

if (
    TYPE_CHECKING
):  # numpy is imported where the lone pairs are scanned: `import matcher` stays light
    import numpy as np
    from numpy.typing import NDArray

TOLERANCE = 1e-6
#: The five criteria of a pair score, in the order of ``Weights``.
CRITERIA = ("interests", "project", "organisation", "system", "availability")
#: Score differences at or below this are ties (no strict preference) in the stability check.
TIE = 1e-9
#: Largest lone patient leader x professional count for which the engine pairs over every
#: allowed pair (``matcher.engine.pairing.DENSE_MAX_CELLS``, re-stated): stability holds up to here.
EXACT_PAIRING_MAX_CELLS = 4_000_000
#: Largest lone patient leader x professional count for which the blocking-pair and top-3
#: metrics are recomputed (one numpy row of scores per lone patient leader; measured 1.7 s for
#: the whole verification of a generated 5,000-participant intake with 960,000 lone pairs).
METRIC_SCAN_MAX_CELLS = 4_000_000
#: Groups smaller than this are suppressed in the metrics (re-stated from the metrics' docs).
MIN_GROUP = 5


def _v(rule: str, message: str, *ids: str | None) -> Violation:
    """A violation of ``rule`` naming ``ids`` (each once, in order; None left out)."""
    return Violation(rule, tuple(dict.fromkeys(x for x in ids if x is not None)), message)


@dataclass
class Report:
    """Violations found by :func:`verify`; ``ok`` when there are none. ``skipped`` names the
    checks not run on this plan and why (e.g. stability beyond the exact-pairing size)."""

    violations: list[Violation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def rules(self) -> set[str]:
        """The rules broken."""
        return {v.rule for v in self.violations}

    @property
    def ok(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        if self.ok:
            return "solution verified: every hard rule holds and every score recomputes"
        return "\n".join(["solution violates:", *(f"  - {v}" for v in self.violations)])


VerificationError = VerificationFailed


@functools.lru_cache(maxsize=65_536)
def _same(text: str) -> str:
    """Category values are one value when equal after NFKC, case-folding and turning every run
    of spaces, punctuation and underscores into one space (stated again here, apart from
    :mod:`matcher.contract.keys`, so the two can check each other). Cached: a plan's sets
    compare the same few thousand values millions of times (8.9 s of verifying 20,000
    participants was this function)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    words = "".join(ch if ch.isalnum() else " " for ch in folded).split()
    return " ".join(words) if words else " ".join(folded.split())


def _norm(items: list[str]) -> set[str]:
    return {_same(t) for t in items}


def _attends(p: Participant, c: Cohort) -> bool:
    if p.available_cohorts is not None and c.id not in p.available_cohorts:
        return False
    if p.unavailable_dates and any(d in p.unavailable_dates for d in c.sessions):
        return False
    modes = {"in_person", "online"} if p.attendance is None else set(p.attendance)
    if c.mode == "blended":
        return modes == {"in_person", "online"}
    return c.mode in modes


@dataclass(frozen=True)
class _Traits:
    """What the score and the pairing rules read of one person, normalised once."""

    person: Participant
    interests: frozenset[str]
    topics: frozenset[str]
    both: frozenset[str]  # interests | topics
    organisation: str
    system: str
    cohorts: int  # bit q set: can attend cohort q in full
    avoid: frozenset[str]
    vector: tuple[float, ...] | None = None  # unit vector of the project description


#: Project fit by meaning, re-stated from :mod:`matcher.engine.meaning`: a cosine of two
#: description vectors maps onto 0-1 between these two values, rounded to 6 decimals.
MEANING_FLOOR, MEANING_CEILING = 0.15, 0.65


def _description(p: Participant) -> str | None:
    text = p.project_description
    return " ".join(text.split()) if text is not None and text.strip() else None


def _similarity(x: tuple[float, ...], y: tuple[float, ...]) -> float:
    cosine = math.fsum(a * b for a, b in zip(x, y, strict=True))
    scaled = (cosine - MEANING_FLOOR) / (MEANING_CEILING - MEANING_FLOOR)
    return round(min(1.0, max(0.0, scaled)), 6)


def _traits(instance: Instance, p: Participant, vector: tuple[float, ...] | None = None) -> _Traits:
    ia, ta = frozenset(_norm(p.interests)), frozenset(_norm(p.project_topics))
    mask = sum(1 << q for q, c in enumerate(instance.cohorts) if _attends(p, c))
    org, system = _same(p.organisation), _same(p.system)
    return _Traits(p, ia, ta, ia | ta, org, system, mask, frozenset(p.avoid), vector)


class _Scorer:
    """The documented score formula and hard pairing rules, over :class:`_Traits`."""

    def __init__(self, instance: Instance, people: list[Participant] | None = None) -> None:
        self.instance = instance
        self.weights = instance.weights.model_dump()
        if instance.rules.local_system == "ignore":
            self.weights["system"] = 0.0
        self.weight_sum = sum(self.weights.values())
        self.forbidden = {frozenset(x) for x in instance.forbidden_pairs}
        self.n_cohorts = len(instance.cohorts)
        self._traits: dict[str, _Traits] = {}
        # The descriptions' vectors, all in one batch (the model is an input, like numpy: the
        # formula on top of it is re-stated here). Without the model nobody has one, as in the
        # engine.
        self.vectors: dict[str, tuple[float, ...]] = {}
        everyone = instance.participants if people is None else people
        described = [(p.id, t) for p in everyone if (t := _description(p))]
        if described:
            got = embedding.embed([t for _, t in described])
            if got is not None:
                self.vectors = {
                    pid: tuple(row) for (pid, _), row in zip(described, got.tolist(), strict=True)
                }

    def traits(self, p: Participant) -> _Traits:
        got = self._traits.get(p.id)
        if got is None or got.person is not p:
            vector = self.vectors.get(p.id) if _description(p) is not None else None
            got = self._traits[p.id] = _traits(self.instance, p, vector)
        return got

    def criteria(self, x: _Traits, y: _Traits) -> tuple[float, float, float, float, float]:
        """Interests, project, organisation, system and availability, each 0-1."""
        union = len(x.interests) + len(y.interests)
        shared = len(x.interests & y.interests)
        interests = shared / (union - shared) if union - shared else 0.0
        n_topics = len(x.topics) + len(y.topics)
        project = (len(x.topics & y.both) + len(y.topics & x.both)) / n_topics if n_topics else 0.0
        if x.vector is not None and y.vector is not None:
            # Both described their project: the similarity takes its share of project fit
            # (all of it when neither names a topic).
            m = self.instance.rules.project_meaning
            sim = _similarity(x.vector, y.vector)
            project = (1.0 - m) * project + m * sim if n_topics else sim
        same_org = x.organisation == y.organisation
        organisation = 0.0 if same_org and self.instance.rules.same_organisation != "allow" else 1.0
        system = 1.0 if x.system == y.system else 0.0
        availability = (x.cohorts & y.cohorts).bit_count() / self.n_cohorts
        return interests, project, organisation, system, availability

    def _weighted(self, criteria: tuple[float, ...]) -> float:
        return sum(w * c for w, c in zip(self.weights.values(), criteria, strict=True)) / (
            self.weight_sum
        )

    def score(self, x: _Traits, y: _Traits) -> float:
        """The weighted mean of the criteria."""
        return self._weighted(self.criteria(x, y))

    def parts(self, x: _Traits, y: _Traits) -> dict[str, float]:
        """Each criterion of the pair, plus ``"score"``."""
        criteria = self.criteria(x, y)
        parts = dict(zip(CRITERIA, criteria, strict=True))
        parts["score"] = self._weighted(criteria)
        return parts

    def breaks(self, x: _Traits, y: _Traits) -> list[tuple[str, str]]:
        """Hard pairing rules broken by pairing ``x`` with ``y`` (lone applicants), as
        (rule, words)."""
        a, b = x.person, y.person
        rules = self.instance.rules
        out = []
        if b.id in a.avoid or a.id in b.avoid:
            out.append(("avoid", "declared conflict"))
        if frozenset((a.id, b.id)) in self.forbidden:
            out.append(("forbidden_pairs", "a forbidden pair (forbidden_pairs)"))
        if rules.same_organisation == "forbid" and x.organisation == y.organisation:
            out.append(
                (
                    "same_organisation",
                    f"same organisation {a.organisation} (forbidden by the rules)",
                )
            )
        if rules.local_system == "require" and x.system != y.system:
            out.append(("local_system", "different local systems (the rules require the same)"))
        if not x.cohorts & y.cohorts:
            out.append(("attendance", "no cohort both can attend in full"))
        return out

    def allowed_score(self, x: _Traits, y: _Traits) -> float | None:
        """The pair's score when lone ``x`` and ``y`` may be paired (no hard rule broken, at or
        above ``rules.min_score``), else None. The same rules as :meth:`breaks`, without words:
        this runs once per lone pair."""
        a, b = x.person.id, y.person.id
        rules = self.instance.rules
        if b in x.avoid or a in y.avoid or not x.cohorts & y.cohorts:
            return None
        if self.forbidden and frozenset((a, b)) in self.forbidden:
            return None
        if rules.same_organisation == "forbid" and x.organisation == y.organisation:
            return None
        if rules.local_system == "require" and x.system != y.system:
            return None
        score = self.score(x, y)
        return score if score >= rules.min_score else None


def recompute_score(instance: Instance, a: Participant, b: Participant) -> dict[str, float]:
    """Each criterion of the pair (a, b), plus ``"score"``, from the instance alone."""
    scorer = _Scorer(instance, [a, b])
    return scorer.parts(scorer.traits(a), scorer.traits(b))


def verify(instance: Instance, solution: Solution, *, previous: Solution | None = None) -> Report:
    """Check ``solution`` against every hard rule of ``instance``, recompute its scores, set
    diversities and metrics, and (objective ``stable``) look for blocking pairs; with
    ``previous``, check that pair IDs and ``changes`` are consistent with it.

    The plan's structure comes first (:func:`structure`); a plan that fails it is reported by
    those violations alone. Raises :class:`InvalidParameter` when an argument is not an
    :class:`Instance` or :class:`Solution`, and :class:`InternalError` (the cause chained) when
    the verifier itself fails on a well-formed plan: a bug, never reported as a violation."""
    if not isinstance(instance, Instance):
        raise InvalidParameter(f"verify() takes an Instance, not {type(instance).__name__}")
    for name, plan in (("solution", solution), ("previous", previous)):
        if plan is not None and not isinstance(plan, Solution):
            raise InvalidParameter(f"verify()'s {name} is a Solution, not {type(plan).__name__}")
    report = Report()
    report.violations = structure(solution)  # types first: the checks below rely on them
    if previous is not None:
        report.violations += [
            _v(v.rule, f"previous plan: {v.message}", *v.ids) for v in structure(previous)
        ]
    if report.violations:
        return report
    try:
        report.violations = _Checker(instance, solution, report.skipped).run(previous)
    except MemoryError:
        raise
    except Exception as exc:  # past the structure check, an exception is a bug in the verifier
        raise InternalError(
            f"internal error in the verifier ({type(exc).__name__}); this is a bug"
        ) from exc
    return report


_MISSING = object()


def _kind(annotation: Any) -> str:
    """A type of the contract in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_kind(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is list:
        return "a list"
    if origin is dict:
        return "an object"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a {annotation.__name__}"
    return {str: "text", int: "an integer", float: "a number", bool: "true or false"}.get(
        annotation, str(annotation)
    )


@functools.cache
def _parts(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    """``get_origin`` and ``get_args`` of a contract annotation, asked once per annotation."""
    return get_origin(annotation), get_args(annotation)


def _off_shape(value: object, annotation: Any) -> tuple[str, str] | None:
    """Where ``value`` first departs from ``annotation`` (a field type of the solution
    contract), as (path below ``value``, e.g. ``[3] (p12).cohort``, and the expected type in
    words); None when it conforms. The path is built only for a departure. Values are never
    quoted (they may be free text)."""
    if value is _MISSING:
        return "", _kind(annotation) + " (missing)"
    if annotation is Any:
        return None
    if annotation is type(None):
        return None if value is None else ("", "null")
    origin, args = _parts(annotation)
    if origin in (Union, types.UnionType):
        found = [_off_shape(value, a) for a in args]
        if any(f is None for f in found):
            return None
        deeper = [f for f in found if f is not None and f[0]]
        return deeper[0] if deeper else ("", _kind(annotation))
    if origin is Literal:
        ok = any(type(value) is type(a) and value == a for a in args)
        return None if ok else ("", _kind(annotation))
    if origin is list:
        if not isinstance(value, list):
            return "", "a list"
        for i, item in enumerate(value):
            found_item = _off_shape(item, args[0])
            if found_item is not None:
                ident = getattr(item, "id", None)
                label = f"[{i}]" + (f" ({ident})" if isinstance(ident, str) else "")
                return label + found_item[0], found_item[1]
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return "", "an object"
        for key, item in value.items():
            if not isinstance(key, str):
                return " (a key)", "text"
            found_item = _off_shape(item, args[1])
            if found_item is not None:
                return f".{key}" + found_item[0], found_item[1]
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not isinstance(value, annotation):
            return "", _kind(annotation)
        for name, info in type(value).model_fields.items():
            found_field = _off_shape(getattr(value, name, _MISSING), info.annotation)
            if found_field is not None:
                return f".{name}" + found_field[0], found_field[1]
        return None
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, annotation)
    return None if ok else ("", _kind(annotation))


def structure(solution: Solution) -> list[Violation]:
    """The plan's shape, before any rule: each field of the solution contract has its type
    (section by section, the first departure in each). A plan that fails this is not checked
    further; every check after it relies on these types and on nothing else (unique IDs and
    references between the plan's parts are checked next, as violations)."""
    v: list[Violation] = []
    for name, info in Solution.model_fields.items():
        found = _off_shape(getattr(solution, name, _MISSING), info.annotation)
        if found is not None:
            below, kind = found
            v.append(_v("plan_structure", f"{name}{below}: should be {kind}"))
    return v


class _Checker:
    """One verification: the instance's active people, lone sides and scorer, built once."""

    def __init__(self, instance: Instance, solution: Solution, skipped: list[str]) -> None:
        self.instance = instance
        self.solution = solution
        self.skipped = skipped
        self.scorer = _Scorer(instance)
        self.withdrawn = {p.id for p in instance.participants if p.status == "withdrawn"}
        self.people = {p.id: p for p in instance.participants if p.id not in self.withdrawn}
        self.cohorts = instance.cohorts_by_id()
        self.locks = {(lk.patient_leader, lk.partner): lk.cohort for lk in instance.locks}
        self.locked = {x for key in self.locks for x in key}
        self.pairs = {p.id: p for p in solution.pairs}

    def partner_of(self, p: Participant) -> str | None:
        return p.partner if p.partner is not None and p.partner not in self.withdrawn else None

    def is_lone(self, p: Participant) -> bool:
        """Applied alone (or their pre-formed partner withdrew) and is in no lock."""
        return self.partner_of(p) is None and p.id not in self.locked

    def run(self, previous: Solution | None) -> list[Violation]:
        v, other_intake = self.belongs()
        if other_intake:
            return v  # another intake's plan: checking it person by person would only repeat it
        v = self.unique_ids() + v
        v += self.participants()
        v += self.pair_rules()
        v += self.schedule()
        v += self.status()
        v += self.metrics_and_stability()
        if previous is not None:
            v += self.changes(previous)
        return v

    def unique_ids(self) -> list[Violation]:
        """Pair IDs (rule ``pair_ids``), cohort and set IDs are each listed once; the references
        between them are checked with the rules they serve (``plan_structure``)."""
        solution = self.solution
        v: list[Violation] = []
        for pid, n in sorted(Counter(p.id for p in solution.pairs).items()):
            if n > 1:
                v.append(_v("pair_ids", f"{pid}: duplicate pair ID", pid))
        for label, ids in (
            ("cohorts", [c.id for c in solution.cohorts or []]),
            ("sets", [s.id for s in solution.learning_sets or []]),
        ):
            for ident, n in sorted(Counter(ids).items()):
                if n > 1:
                    v.append(_v("plan_structure", f"{label}: {ident} listed {n} times", ident))
        return v

    def belongs(self) -> tuple[list[Violation], bool]:
        """The plan is this instance's: the same intake name, and the same people (paired,
        unmatched or withdrawn) as the instance's participants. Second: whether the plan is
        another intake's (name and people differ)."""
        solution, instance = self.solution, self.instance
        mine = {p.id for p in instance.participants}
        theirs = {x for p in solution.pairs for x in (p.patient_leader, p.partner)}
        theirs |= {u.participant for u in solution.unmatched} | set(solution.withdrawn)
        other_name = solution.instance != instance.name
        missing, foreign = len(mine - theirs), len(theirs - mine)
        if not other_name and not missing and not foreign:
            return [], False
        people = (
            f"{foreign} of its {len(theirs)} people are not in the instance and {missing} of "
            f"the instance's {len(mine)} are not in the plan"
        )
        if other_name:
            what = f"the plan is for intake {solution.instance!r}, not {instance.name!r}"
            message = f"{what}; {people}" if missing or foreign else f"{what} (the same people)"
        else:
            message = f"the plan's people differ from those of intake {instance.name!r}: {people}"
        v = [_v("instance", message, solution.instance, instance.name)]
        return v, other_name and bool(missing or foreign)

    def participants(self) -> list[Violation]:
        """Every active participant appears exactly once: in a pair or in `unmatched`; the
        withdrawn appear nowhere but in `withdrawn`; pair IDs are unique; pre-formed pairs
        (both active) and locks are kept."""
        solution, people, withdrawn = self.solution, self.people, self.withdrawn
        v: list[Violation] = []
        seen = Counter(
            [x for p in solution.pairs for x in (p.patient_leader, p.partner)]
            + [u.participant for u in solution.unmatched]
        )
        for pid, n in sorted(seen.items()):
            if pid in withdrawn:
                v.append(_v("withdrawn", f"{pid}: withdrew but appears in the plan", pid))
            elif pid not in people:
                v.append(
                    _v("each_participant_once", f"{pid}: not a participant of the instance", pid)
                )
            elif n > 1:
                v.append(
                    _v(
                        "each_participant_once",
                        f"{pid}: appears {n} times (pairs and unmatched)",
                        pid,
                    )
                )
        for pid in people:
            if pid not in seen:
                v.append(
                    _v(
                        "each_participant_once",
                        f"{pid}: missing (neither paired nor unmatched)",
                        pid,
                    )
                )
        if set(solution.withdrawn) != withdrawn:
            v.append(
                _v(
                    "withdrawn",
                    f"withdrawn lists {sorted(solution.withdrawn)} but the instance withdrew "
                    f"{sorted(withdrawn)}",
                    *sorted(set(solution.withdrawn) ^ withdrawn),
                )
            )

        by_pair = {(p.patient_leader, p.partner): p for p in solution.pairs}
        for person in people.values():
            partner = self.partner_of(person)
            if person.role == "patient_leader" and partner is not None:
                kept = by_pair.get((person.id, partner))
                if kept is None:
                    v.append(
                        _v(
                            "preformed",
                            f"pre-formed pair {person.id}+{partner} was not kept",
                            person.id,
                            partner,
                        )
                    )
                elif not kept.preformed:
                    v.append(
                        _v(
                            "preformed",
                            f"{kept.id}: pre-formed pair not marked preformed",
                            kept.id,
                            person.id,
                            partner,
                        )
                    )
        for (a_id, b_id), cohort in self.locks.items():
            got = by_pair.get((a_id, b_id))
            if got is None:
                v.append(_v("locks", f"lock {a_id}+{b_id} was not kept", a_id, b_id))
            elif cohort is not None and got.cohort != cohort:
                v.append(
                    _v(
                        "locks",
                        f"lock {a_id}+{b_id}: placed in {got.cohort}, not in {cohort}",
                        a_id,
                        b_id,
                        got.id,
                        got.cohort,
                        cohort,
                    )
                )
        return v

    def pair_rules(self) -> list[Violation]:
        """Each pair: roles, pre-formed and lock flags, the hard pairing rules, min_score, its
        score and breakdown; then no two unmatched lone people who could have been paired."""
        instance, people, scorer = self.instance, self.people, self.scorer
        v: list[Violation] = []
        for pair in self.solution.pairs:
            a, b = people.get(pair.patient_leader), people.get(pair.partner)
            if a is None or b is None:
                continue
            key = (a.id, b.id)
            ids = (pair.id, a.id, b.id)
            if pair.locked != (key in self.locks):
                v.append(
                    _v(
                        "locks",
                        f"{pair.id}: lock flag {pair.locked} but the locks say {key in self.locks}",
                        *ids,
                    )
                )
            if a.role != "patient_leader":
                v.append(
                    _v("roles", f"{pair.id}: {a.id} is a {a.role}, not a patient leader", *ids)
                )
            if b.role == "patient_leader":
                v.append(
                    _v(
                        "roles",
                        f"{pair.id}: partner {b.id} is a patient leader, not a clinician or "
                        "manager",
                        *ids,
                    )
                )
            if pair.preformed and (self.partner_of(a) != b.id or self.partner_of(b) != a.id):
                v.append(
                    _v(
                        "preformed",
                        f"{pair.id}: marked pre-formed but {a.id} and {b.id} did not apply "
                        "together",
                        *ids,
                    )
                )
            x, y = scorer.traits(a), scorer.traits(b)
            if not pair.preformed:
                if self.partner_of(a) is not None or self.partner_of(b) is not None:
                    v.append(
                        _v(
                            "preformed",
                            f"{pair.id}: re-pairs someone who applied with a partner",
                            *ids,
                        )
                    )
                for rule, why in scorer.breaks(x, y):
                    v.append(_v(rule, f"{pair.id} ({a.id}+{b.id}): {why}", *ids))
            parts = scorer.parts(x, y)
            if (
                not pair.preformed
                and key not in self.locks
                and not parts["score"] >= instance.rules.min_score - TOLERANCE
            ):
                v.append(
                    _v(
                        "min_score",
                        f"{pair.id}: score {parts['score']:.4f} below rules.min_score",
                        *ids,
                    )
                )
            # written as `not (... <= tol)` so that a NaN anywhere is a violation
            if not abs(parts["score"] - pair.score) <= TOLERANCE:
                v.append(
                    _v(
                        "scores",
                        f"{pair.id}: score {pair.score} but recomputes to {parts['score']:.6f}",
                        *ids,
                    )
                )
            if set(pair.breakdown) != set(parts) - {"score"}:
                v.append(
                    _v(
                        "scores",
                        f"{pair.id}: breakdown criteria {sorted(pair.breakdown)} are not the five",
                        *ids,
                    )
                )
            for k, value in pair.breakdown.items():
                if k not in parts or not abs(parts[k] - value) <= TOLERANCE:
                    v.append(
                        _v(
                            "scores",
                            f"{pair.id}: breakdown {k}={value} but recomputes to {parts.get(k)}",
                            *ids,
                        )
                    )

        # Maximality: two unmatched lone people who could have been paired are a missed pair.
        alone = [people[u.participant] for u in self.solution.unmatched if u.participant in people]
        alone_pl = [p for p in alone if p.role == "patient_leader" and self.is_lone(p)]
        alone_pr = [p for p in alone if p.role != "patient_leader" and self.is_lone(p)]
        for a in alone_pl:
            for b in alone_pr:
                if scorer.allowed_score(scorer.traits(a), scorer.traits(b)) is not None:
                    v.append(
                        _v(
                            "maximal_pairing",
                            f"{a.id} and {b.id} are both unmatched but could be paired",
                            a.id,
                            b.id,
                        )
                    )
        return v

    def schedule(self) -> list[Violation]:
        """Cohort placement, wait-list and action-learning-set rules."""
        solution, people, cohorts, pairs = self.solution, self.people, self.cohorts, self.pairs
        v: list[Violation] = []
        waitlisted = Counter(w.pair for w in solution.waitlist)
        for pid, n in waitlisted.items():
            if pid not in pairs:
                v.append(_v("waitlist", f"waitlist: unknown pair {pid}", pid))
            elif n > 1:
                v.append(_v("waitlist", f"waitlist: {pid} listed {n} times", pid))
            elif pairs[pid].cohort is not None:
                v.append(
                    _v(
                        "waitlist",
                        f"waitlist: {pid} is placed in {pairs[pid].cohort} and also wait-listed",
                        pid,
                        pairs[pid].cohort,
                    )
                )
        if solution.cohorts is None:
            for p in solution.pairs:
                if p.cohort is not None or p.learning_set is not None:
                    v.append(
                        _v(
                            "plan_structure",
                            f"{p.id}: has a cohort or set but the solution lists no cohorts",
                            p.id,
                        )
                    )
            return v

        for p in solution.pairs:
            if p.cohort is None:
                if p.id not in waitlisted:
                    v.append(
                        _v(
                            "waitlist",
                            f"{p.id}: not placed in a cohort and not on the wait-list",
                            p.id,
                        )
                    )
                continue
            cohort = cohorts.get(p.cohort)
            if cohort is None:
                v.append(_v("plan_structure", f"{p.id}: unknown cohort {p.cohort}", p.id, p.cohort))
                continue
            for member in (p.patient_leader, p.partner):
                person = people.get(member)
                if person is not None and not _attends(person, cohort):
                    v.append(
                        _v(
                            "attendance",
                            f"{p.id}: {member} cannot attend cohort {cohort.id} in full",
                            p.id,
                            member,
                            cohort.id,
                        )
                    )

        # Capacity counted from the pairs themselves, whatever the cohort plans say.
        placed_in = Counter(p.cohort for p in solution.pairs if p.cohort is not None)
        for cid, n in sorted(placed_in.items()):
            if cid in cohorts and n > cohorts[cid].capacity_pairs:
                v.append(
                    _v(
                        "capacity",
                        f"cohort {cid}: {n} pairs over capacity {cohorts[cid].capacity_pairs}",
                        cid,
                    )
                )
        listed: Counter[str] = Counter()
        for plan in solution.cohorts:
            cohort = cohorts.get(plan.id)
            if cohort is None:
                v.append(_v("plan_structure", f"cohorts: unknown cohort {plan.id}", plan.id))
                continue
            for pid in plan.pairs:
                listed[pid] += 1
                if pid not in pairs or pairs[pid].cohort != plan.id:
                    v.append(
                        _v(
                            "plan_structure",
                            f"cohort {plan.id}: lists {pid}, whose cohort is not {plan.id}",
                            plan.id,
                            pid,
                        )
                    )
        for p in solution.pairs:
            if p.cohort is not None and listed[p.id] != 1:
                v.append(
                    _v(
                        "plan_structure",
                        f"{p.id}: listed {listed[p.id]} times in the cohort plans",
                        p.id,
                        p.cohort,
                    )
                )

        if solution.learning_sets is None:
            v += [
                _v(
                    "plan_structure",
                    f"{p.id}: names set {p.learning_set} but the solution lists no sets",
                    p.id,
                    p.learning_set,
                )
                for p in solution.pairs
                if p.learning_set is not None
            ]
            return v
        return v + self.sets()

    def sets(self) -> list[Violation]:
        """Each set: its size, its pairs in its cohort, one organisation per set, no declared
        conflict inside, and its diversity recomputed; each placed pair in exactly one set."""
        solution, people, pairs = self.solution, self.people, self.pairs
        assert solution.learning_sets is not None
        v: list[Violation] = []
        for p in solution.pairs:
            if p.cohort is None and p.learning_set is not None:
                v.append(
                    _v(
                        "waitlist",
                        f"{p.id}: wait-listed but names set {p.learning_set}",
                        p.id,
                        p.learning_set,
                    )
                )
        in_set: Counter[str] = Counter()
        for s in solution.learning_sets:
            cohort = self.cohorts.get(s.cohort)
            if cohort is None:
                v.append(
                    _v("plan_structure", f"set {s.id}: unknown cohort {s.cohort}", s.id, s.cohort)
                )
                continue
            size = cohort.set_size
            if not size.min_pairs <= len(s.pairs) <= size.max_pairs:
                v.append(
                    _v(
                        "set_size",
                        f"set {s.id}: {len(s.pairs)} pairs, outside "
                        f"{size.min_pairs}-{size.max_pairs}",
                        s.id,
                        s.cohort,
                    )
                )
            members: list[Participant] = []
            orgs: dict[str, list[str]] = {}
            for pid in s.pairs:
                in_set[pid] += 1
                pair = pairs.get(pid)
                if pair is None or pair.cohort != s.cohort:
                    v.append(
                        _v(
                            "plan_structure",
                            f"set {s.id}: pair {pid} is not in cohort {s.cohort}",
                            s.id,
                            pid,
                            s.cohort,
                        )
                    )
                    continue
                if pair.learning_set != s.id:
                    v.append(
                        _v(
                            "plan_structure",
                            f"set {s.id}: pair {pid} names set {pair.learning_set}",
                            s.id,
                            pid,
                            pair.learning_set,
                        )
                    )
                duo = [people[x] for x in (pair.patient_leader, pair.partner) if x in people]
                members += duo
                for org in {_same(m.organisation) for m in duo}:
                    orgs.setdefault(org, []).append(pid)
            if self.instance.rules.one_organisation_per_set == "hard":
                for org, holders in sorted(orgs.items()):
                    if len(holders) > 1:
                        v.append(
                            _v(
                                "one_organisation_per_set",
                                f"set {s.id}: {len(holders)} pairs from one organisation ({org})",
                                s.id,
                                *holders,
                            )
                        )
            ids = {m.id for m in members}
            for m in members:
                for other in m.avoid:
                    if other in ids:
                        v.append(
                            _v(
                                "avoid",
                                f"set {s.id}: declared conflict {m.id} / {other} in one set",
                                s.id,
                                m.id,
                                other,
                            )
                        )
            duos = self.duos(s.pairs)
            if s.diversity is not None and duos is not None:
                expected = _set_diversity(self.instance, duos)
                if not abs(expected - s.diversity) <= 1e-5:
                    v.append(
                        _v(
                            "set_diversity",
                            f"set {s.id}: diversity {s.diversity} but recomputes to {expected:.6f}",
                            s.id,
                        )
                    )
        for p in solution.pairs:
            if p.cohort is not None and in_set[p.id] != 1:
                v.append(
                    _v(
                        "plan_structure",
                        f"{p.id}: in {in_set[p.id]} action-learning sets (should be 1)",
                        p.id,
                    )
                )
        return v

    def duos(self, pair_ids: list[str]) -> list[tuple[Participant, Participant]] | None:
        """The people of these pairs, or None when one is unknown."""
        out = []
        for pid in pair_ids:
            pair = self.pairs.get(pid)
            if pair is None or pair.patient_leader not in self.people:
                return None
            if pair.partner not in self.people:
                return None
            out.append((self.people[pair.patient_leader], self.people[pair.partner]))
        return out

    def status(self) -> list[Violation]:
        """A returned plan is optimal or feasible; optimal only when every stage proved it and
        no wait-listed pair could simply join a set with room in a cohort with room."""
        solution = self.solution
        v = []
        if solution.status not in ("optimal", "feasible"):
            v.append(
                _v(
                    "status",
                    f"status {solution.status} on a returned plan (it should have been raised)",
                )
            )
        outcomes = solution.run.outcomes
        if solution.status == "optimal" and any(o != "optimal" for o in outcomes.values()):
            v.append(_v("status", f"status optimal but a stage was only feasible: {outcomes}"))
        if solution.status == "optimal":
            v += [
                _v(
                    "status",
                    f"status optimal but wait-listed pair {pid} fits set {sid} of cohort "
                    f"{cid} (room in both, no shared organisation, no conflict): a plan "
                    "placing one more pair exists",
                    pid,
                    sid,
                    cid,
                )
                for pid, sid, cid in self.room_for_waitlisted()
            ]
        return v

    def room_for_waitlisted(self) -> list[tuple[str, str, str]]:
        """(wait-listed pair, set, cohort) where the pair could join the set and keep every
        rule: both can attend the cohort, which is under capacity; the set is under its
        maximum; no shared organisation (hard rule) and no declared conflict with its pairs."""
        solution = self.solution
        if not solution.learning_sets:
            return []
        placed_in = Counter(p.cohort for p in solution.pairs if p.cohort is not None)
        hard = self.instance.rules.one_organisation_per_set == "hard"
        out = []
        for w in solution.waitlist:
            duo = self.duos([w.pair])
            if duo is None or self.pairs[w.pair].cohort is not None:
                continue
            (a, b) = duo[0]
            for s in solution.learning_sets:
                cohort = self.cohorts.get(s.cohort)
                others = self.duos(s.pairs)
                if cohort is None or others is None:
                    continue
                if placed_in[cohort.id] >= cohort.capacity_pairs:
                    continue
                if len(s.pairs) >= cohort.set_size.max_pairs:
                    continue
                if not (_attends(a, cohort) and _attends(b, cohort)):
                    continue
                lock = self.locks.get((a.id, b.id))
                if lock is not None and lock != cohort.id:
                    continue
                mine = {_same(a.organisation), _same(b.organisation)}
                theirs = {_same(m.organisation) for duo2 in others for m in duo2}
                if hard and mine & theirs:
                    continue
                ids = {m.id for duo2 in others for m in duo2}
                if (set(a.avoid) | set(b.avoid)) & ids or any(
                    {a.id, b.id} & set(m.avoid) for duo2 in others for m in duo2
                ):
                    continue
                out.append((w.pair, s.id, cohort.id))
                break
        return out

    def changes(self, previous: Solution) -> list[Violation]:
        """Pairs of the previous plan keep their IDs; new pairs get unused IDs; the change
        counts, and the items listed, agree with the two plans."""
        solution = self.solution
        v = []
        before = {(p.patient_leader, p.partner): p for p in previous.pairs}
        used = {p.id for p in previous.pairs}
        after = {(p.patient_leader, p.partner): p for p in solution.pairs}
        for key, p in after.items():
            if key in before and before[key].id != p.id:
                v.append(
                    _v(
                        "pair_ids",
                        f"{p.id}: kept pair {key[0]}+{key[1]} changed ID (was {before[key].id})",
                        p.id,
                        before[key].id,
                        *key,
                    )
                )
            if key not in before and p.id in used:
                v.append(
                    _v("pair_ids", f"{p.id}: new pair reuses an ID of the previous plan", p.id)
                )
        if solution.changes is None:
            return [*v, _v("changes", "re-plan without a list of changes")]
        kept = [k for k in after if k in before]
        was_paired = {x for k in before for x in k}
        expected = {
            "kept": len(kept),
            "dissolved": sum(1 for k in before if k not in after),
            "formed": sum(1 for k in after if k not in before),
            "moved_cohort": sum(1 for k in kept if before[k].cohort != after[k].cohort),
            "moved_set": sum(
                1
                for k in kept
                if before[k].cohort == after[k].cohort
                and after[k].cohort is not None
                and before[k].learning_set != after[k].learning_set
            ),
            "newly_unmatched": sum(1 for u in solution.unmatched if u.participant in was_paired),
            "newly_waitlisted": sum(
                1 for k in kept if before[k].cohort is not None and after[k].cohort is None
            ),
        }
        counts = solution.changes.counts.model_dump()
        for name, n in expected.items():
            if counts[name] != n:
                v.append(
                    _v("changes", f"changes: {name} is {counts[name]} but the plans differ by {n}")
                )
        # each counted kind is listed item by item
        kinds = Counter(c.kind for c in solution.changes.items)
        listed = {
            "dissolved": kinds["dissolved"],
            "formed": kinds["formed"],
            "moved_cohort": kinds["moved_cohort"]
            + kinds["newly_waitlisted"]
            + kinds["no_longer_waitlisted"],
            "moved_set": kinds["moved_set"],
            "newly_unmatched": kinds["newly_unmatched"],
            "newly_waitlisted": kinds["newly_waitlisted"],
        }
        for name, n in listed.items():
            if n != expected[name]:
                v.append(
                    _v(
                        "changes",
                        f"changes: {n} items of kind {name} but the plans differ by "
                        f"{expected[name]}",
                    )
                )
        if solution.changes.previous_instance != previous.instance:
            v.append(
                _v(
                    "changes",
                    f"changes: previous_instance {solution.changes.previous_instance!r} is not "
                    f"the previous plan's {previous.instance!r}",
                )
            )
        return v

    def metrics_and_stability(self) -> list[Violation]:
        """The stated metrics against their recomputation; for ``stable``, blocking pairs."""
        stable = self.solution.run.objective == "stable" and self.solution.changes is None
        metrics = self.solution.metrics
        rows = [p for p in self.people.values() if p.role == "patient_leader" and self.is_lone(p)]
        cols = [p for p in self.people.values() if p.role != "patient_leader" and self.is_lone(p)]
        cells = len(rows) * len(cols)
        scan = None
        if (metrics is not None and cells <= METRIC_SCAN_MAX_CELLS) or (
            stable and cells <= EXACT_PAIRING_MAX_CELLS
        ):
            scan = _LoneScan(self, rows, cols, stable=stable)
        elif metrics is not None:
            self.skipped.append(
                f"metrics: blocking_pairs and top3_share not recomputed ({cells} lone pairs > "
                f"{METRIC_SCAN_MAX_CELLS})"
            )
        v: list[Violation] = []
        if stable:
            if scan is None:
                self.skipped.append(
                    f"stability: not checked ({cells} lone pairs > {EXACT_PAIRING_MAX_CELLS}, "
                    "beyond which the engine pairs over candidate lists)"
                )
            else:
                v += [
                    _v(
                        "stability",
                        f"{a} and {b} would both rather be paired together than as they are "
                        "(a blocking pair under the stated preferences)",
                        a,
                        b,
                    )
                    for a, b in scan.unstable
                ]
        if metrics is not None:
            v += self.metrics(scan)
        return v

    def metrics(self, scan: _LoneScan | None) -> list[Violation]:
        """Re-state each figure of :class:`matcher.contract.solution.Metrics` from the instance and
        the
        plan, and compare (``TOLERANCE``, plus half a unit of the figure's rounding)."""
        solution = self.solution
        assert solution.metrics is not None
        m = solution.metrics
        v: list[Violation] = []

        def check(label: str, got: object, want: object, rounding: float = 0.0) -> None:
            if not _agrees(got, want, TOLERANCE + rounding):
                v.append(_v("metrics", f"metrics: {label} is {got!r} but recomputes to {want!r}"))

        pair_of: dict[str, Pair] = {}
        for p in solution.pairs:
            pair_of[p.patient_leader] = p
            pair_of[p.partner] = p
        waitlisted = {w.pair for w in solution.waitlist}
        if set(m.people) != {"patient_leaders", "professionals"}:
            check("people", sorted(m.people), ["patient_leaders", "professionals"])
        for side, members in (
            ("patient_leaders", [p for p in self.people.values() if p.role == "patient_leader"]),
            ("professionals", [p for p in self.people.values() if p.role != "patient_leader"]),
        ):
            counts = m.people.get(side)
            if counts is None:
                continue
            paired = [p for p in members if p.id in pair_of]
            check(f"people.{side}.participants", counts.participants, len(members))
            check(f"people.{side}.paired", counts.paired, len(paired))
            placed = sum(1 for p in paired if pair_of[p.id].cohort is not None)
            check(f"people.{side}.placed", counts.placed, placed)
            waiting = sum(1 for p in paired if pair_of[p.id].id in waitlisted)
            check(f"people.{side}.waitlisted", counts.waitlisted, waiting)
            check(f"people.{side}.unmatched", counts.unmatched, len(members) - len(paired))

        for name, stats, chosen in (
            ("all_pairs", m.scores.all_pairs, solution.pairs),
            ("lone_pairs", m.scores.lone_pairs, [p for p in solution.pairs if not p.preformed]),
        ):
            values = [p.score for p in chosen]
            check(f"scores.{name}.count", stats.count, len(values))
            check(f"scores.{name}.total", stats.total, math.fsum(values))
            check(f"scores.{name}.mean", stats.mean, statistics.fmean(values) if values else None)
            median = statistics.median(values) if values else None
            check(f"scores.{name}.median", stats.median, median)
            check(f"scores.{name}.min", stats.min, min(values) if values else None)

        # Mean pair score per role, organisation type and local system, person by person; a
        # group under MIN_GROUP people is suppressed; categories are shown as first spelt.
        groups: dict[str, dict[str, list[float]]] = {
            "by_role": {},
            "by_organisation_type": {},
            "by_system": {},
        }
        spelling: dict[str, str] = {}
        for pid, p in pair_of.items():
            person = self.people.get(pid)
            if person is None:
                continue
            org_type = spelling.setdefault(
                _same(person.organisation_type), person.organisation_type
            )
            system = spelling.setdefault(_same(person.system), person.system)
            groups["by_role"].setdefault(person.role, []).append(p.score)
            groups["by_organisation_type"].setdefault(org_type, []).append(p.score)
            groups["by_system"].setdefault(system, []).append(p.score)
        for name, group in groups.items():
            shown = getattr(m, name)
            if sorted(shown) != sorted(group):
                check(f"{name} groups", sorted(shown), sorted(group))
                continue
            for key, values in group.items():
                big = len(values) >= MIN_GROUP
                check(
                    f"{name}[{key}].people",
                    shown[key].people,
                    len(values) if big else f"<{MIN_GROUP}",
                )
                mean = statistics.fmean(values) if big else "suppressed"
                check(f"{name}[{key}].mean_score", shown[key].mean_score, mean)

        # Sets: count, mean and least diversity, each set's diversity recomputed.
        diversities = []
        for s in solution.learning_sets or []:
            duos = self.duos(s.pairs)
            if s.diversity is not None:
                diversities.append(
                    s.diversity if duos is None else _set_diversity(self.instance, duos)
                )
        check("sets.count", m.sets.count, len(solution.learning_sets or []))
        mean_div = statistics.fmean(diversities) if diversities else None
        check("sets.mean_diversity", m.sets.mean_diversity, mean_div, 1e-5)
        least = min(diversities) if diversities else None
        check("sets.least_diversity", m.sets.least_diversity, least, 1e-5)

        # Cohort fill: the cohorts the plan lists, pairs counted from the pairs themselves.
        listed = {plan.id for plan in solution.cohorts or []}
        placed_in = Counter(p.cohort for p in solution.pairs if p.cohort is not None)
        fill_ids = sorted(c.id for c in self.instance.cohorts if c.id in listed)
        if sorted(m.cohort_fill) != fill_ids:
            check("cohort_fill cohorts", sorted(m.cohort_fill), fill_ids)
        else:
            for cid in fill_ids:
                cap = self.cohorts[cid].capacity_pairs
                shown_fill = m.cohort_fill[cid]
                n = placed_in[cid]
                before = len(v)
                check(f"cohort_fill.{cid}.pairs", shown_fill.pairs, n)
                check(f"cohort_fill.{cid}.capacity", shown_fill.capacity, cap)
                check(f"cohort_fill.{cid}.fill", shown_fill.fill, n / cap if cap else None, 5e-5)
                v[before:] = [_v("metrics", x.message, cid) for x in v[before:]]

        if scan is not None:
            check("blocking_pairs", m.blocking_pairs, scan.blocking)
            check("top3_share", m.top3_share, scan.top3_share(), 5e-5)
        return v


def _agrees(got: object, want: object, slack: float) -> bool:
    """Equal, or both numbers within ``slack`` (NaN never agrees; a bool is not a number)."""
    numbers = (int, float)
    if (
        isinstance(got, numbers)
        and isinstance(want, numbers)
        and not isinstance(got, bool)
        and not isinstance(want, bool)
    ):
        if isinstance(got, int) and isinstance(want, int):
            return got == want
        return abs(float(got) - float(want)) <= slack
    return got == want and type(got) is type(want)


class _LoneScan:
    """One pass over every lone patient leader x lone professional pair that may be paired:
    each person's three best allowed scores, the blocking pairs by score (the metric), and,
    for ``stable``, the blocking pairs under the stated preferences.

    A patient leader's row of scores is computed at once with numpy over the professionals'
    topic incidence: the same formula and the same order of operations as :meth:`_Scorer.score`
    (so the same floats), without a Python call per pair (a plain loop took ~10 s per million
    lone pairs)."""

    def __init__(
        self,
        checker: _Checker,
        rows: list[Participant],
        cols: list[Participant],
        *,
        stable: bool,
    ) -> None:
        import numpy as np  # lazy: numpy; the verifier imports light

        scorer = checker.scorer
        instance = checker.instance
        row_ids, col_ids = {p.id for p in rows}, {p.id for p in cols}
        self.partner: dict[str, str] = {}
        #: lone person -> score of their pair with a lone partner (absent: no such pair)
        self.current: dict[str, float] = {}
        self.mates: list[str] = []  # lone people in a pair that is not pre-formed
        for p in checker.solution.pairs:
            self.partner[p.patient_leader], self.partner[p.partner] = p.partner, p.patient_leader
            if p.patient_leader in row_ids and p.partner in col_ids:
                a, b = checker.people[p.patient_leader], checker.people[p.partner]
                score = scorer.score(scorer.traits(a), scorer.traits(b))
                self.current[a.id] = self.current[b.id] = score
                if not p.preformed:
                    self.mates += [a.id, b.id]
        self.ranked = {
            p.id: {x: k for k, x in reversed(list(enumerate(p.preferences)))}
            for p in (*rows, *cols)
            if p.preferences
        }
        self.third: dict[str, float] = {}  # each person's third best allowed score (or best)
        self.blocking = 0
        self.unstable: list[tuple[str, str]] = []
        if not rows or not cols:
            return

        xs = [scorer.traits(a) for a in rows]
        ys = [scorer.traits(b) for b in cols]
        words: dict[str, int] = {}
        for t in (*xs, *ys):
            for word in t.both:
                words.setdefault(word, len(words))
        codes: dict[str, int] = {}

        def incidence(items: list[frozenset[str]]) -> NDArray[np.float64]:
            out = np.zeros((len(items), len(words)))
            for i, s in enumerate(items):
                out[i, [words[word] for word in s]] = 1.0
            return out

        def code(text: str) -> int:
            return codes.setdefault(text, len(codes))

        interests_c = incidence([y.interests for y in ys])
        topics_c = incidence([y.topics for y in ys])
        both_c = incidence([y.both for y in ys])
        n_int_c = interests_c.sum(axis=1)
        n_top_c = topics_c.sum(axis=1)
        org_c = np.array([code(y.organisation) for y in ys])
        sys_c = np.array([code(y.system) for y in ys])
        dim = len(next(iter(scorer.vectors.values()))) if scorer.vectors else 0
        vec_c = np.array([y.vector or (0.0,) * dim for y in ys], dtype=np.float64)
        has_c = np.array([y.vector is not None for y in ys], dtype=bool)
        n_cohorts = len(instance.cohorts)
        attend_c = np.array([[(y.cohorts >> q) & 1 for q in range(n_cohorts)] for y in ys])
        attend_c = attend_c.reshape(len(ys), n_cohorts).astype(np.float64)
        w = list(scorer.weights.values())
        rules = instance.rules
        col_index = {b.id: j for j, b in enumerate(cols)}
        none = -math.inf
        cur_c = np.array([self.current.get(b.id, none) for b in cols])
        col_top = np.full((3, len(cols)), none)
        plain_cols = np.array([b.id not in self.ranked for b in cols])
        ranked_cols = np.flatnonzero(~plain_cols)
        # pairs never allowed whatever the scores: declared conflicts (either way), forbidden
        blocked: dict[str, set[int]] = {}
        for b in cols:
            for other in b.avoid:
                blocked.setdefault(other, set()).add(col_index[b.id])
        for pair in instance.forbidden_pairs:
            for one, two in (pair, pair[::-1]):
                if two in col_index:
                    blocked.setdefault(one, set()).add(col_index[two])

        for a, x in zip(rows, xs, strict=True):
            v_int = np.zeros(len(words))
            v_int[[words[t] for t in x.interests]] = 1.0
            v_top = np.zeros(len(words))
            v_top[[words[t] for t in x.topics]] = 1.0
            v_both = np.zeros(len(words))
            v_both[[words[t] for t in x.both]] = 1.0
            shared = interests_c @ v_int
            union = len(x.interests) + n_int_c - shared
            interests = np.divide(shared, union, out=np.zeros(len(ys)), where=union > 0)
            n_topics = len(x.topics) + n_top_c
            fit = both_c @ v_top + topics_c @ v_both
            project = np.divide(fit, n_topics, out=np.zeros(len(ys)), where=n_topics > 0)
            if x.vector is not None and has_c.any():
                scaled = (vec_c @ np.array(x.vector) - MEANING_FLOOR) / (
                    MEANING_CEILING - MEANING_FLOOR
                )
                sim = np.round(np.clip(scaled, 0.0, 1.0), 6)
                m = rules.project_meaning
                mixed = np.where(n_topics > 0, (1.0 - m) * project + m * sim, sim)
                project = np.where(has_c, mixed, project)
            same_org = org_c == code(x.organisation)
            organisation = np.where(same_org & (rules.same_organisation != "allow"), 0.0, 1.0)
            same_system: NDArray[np.bool_] = sys_c == code(x.system)
            system = same_system.astype(np.float64)
            mask = [float((x.cohorts >> q) & 1) for q in range(n_cohorts)]
            common = attend_c @ np.array(mask, dtype=np.float64)
            availability = common / n_cohorts
            score = (
                w[0] * interests
                + w[1] * project
                + w[2] * organisation
                + w[3] * system
                + w[4] * availability
            ) / scorer.weight_sum
            allowed = (common > 0) & (score >= rules.min_score)
            if rules.same_organisation == "forbid":
                allowed &= ~same_org
            if rules.local_system == "require":
                allowed &= same_system
            never = [col_index[y] for y in a.avoid if y in col_index]
            never += list(blocked.get(a.id, ()))
            allowed[never] = False
            if not allowed.any():
                continue
            masked = np.where(allowed, score, none)
            best = np.sort(masked[allowed])[::-1][:3]
            self.third[a.id] = float(best[-1])
            low = np.argmin(col_top, axis=0)
            better = masked > col_top[low, np.arange(len(cols))]
            col_top[low[better], np.flatnonzero(better)] = masked[better]

            mine = self.current.get(a.id, none)
            self.blocking += int(
                np.count_nonzero(allowed & (score > mine + TIE) & (score > cur_c + TIE))
            )
            if not stable:
                continue
            if a.id in self.ranked:
                row_wants = np.array(
                    [
                        ok and self._prefers(a.id, b.id, s)
                        for ok, b, s in zip(allowed, cols, score, strict=True)
                    ]
                )
            elif a.id in self.current:
                row_wants = allowed & (score > mine + TIE)
            else:
                row_wants = allowed
            col_wants = plain_cols & (score > cur_c + TIE)
            for j in ranked_cols[row_wants[ranked_cols]]:
                col_wants[j] = self._prefers(cols[j].id, a.id, float(score[j]))
            for j in np.flatnonzero(row_wants & col_wants):
                self.unstable.append((a.id, cols[int(j)].id))
        finite = np.where(np.isfinite(col_top), col_top, math.inf).min(axis=0)
        for b, value in zip(cols, finite.tolist(), strict=True):
            if math.isfinite(value):
                self.third[b.id] = value

    def _prefers(self, pid: str, other: str, score: float) -> bool:
        """Whether ``pid`` strictly prefers ``other`` (allowed, at ``score``) to their current
        partner: stated preferences first, in order; then by score, ties being no preference."""
        if pid not in self.current:
            return True  # unmatched (or, invalidly, with someone not lone): any allowed partner
        now = self.partner[pid]
        stated = self.ranked.get(pid)
        if stated is not None:
            if other in stated:
                return now not in stated or stated[other] < stated[now]
            if now in stated:
                return False
        return score > self.current[pid] + TIE

    def top3_share(self) -> float | None:
        """Share of the lone people in a lone pair whose pair scores at least their third best
        allowed score (ties with the third count)."""
        hits = [
            pid in self.third and self.current[pid] >= self.third[pid] - 1e-12 for pid in self.mates
        ]
        return sum(hits) / len(hits) if hits else None


def _jaccard_distance(x: set[str], y: set[str]) -> float:
    union = x | y
    return 1.0 - (len(x & y) / len(union) if union else 1.0)


def _set_diversity(instance: Instance, duos: list[tuple[Participant, Participant]]) -> float:
    """Mean pairwise distance of a set's pairs, re-stated from the documented formula."""
    w = instance.diversity
    total = w.organisation_type + w.system + w.role_mix + w.interests
    dists = []
    for i, (a, b) in enumerate(duos):
        for c, d in duos[i + 1 :]:
            if total <= 0:
                dists.append(0.0)
                continue
            value = (
                w.organisation_type
                * _jaccard_distance(
                    _norm([a.organisation_type, b.organisation_type]),
                    _norm([c.organisation_type, d.organisation_type]),
                )
                + w.system
                * _jaccard_distance(_norm([a.system, b.system]), _norm([c.system, d.system]))
                + w.role_mix * (b.role != d.role)
                + w.interests
                * _jaccard_distance(
                    _norm([*a.interests, *b.interests]), _norm([*c.interests, *d.interests])
                )
            ) / total
            dists.append(value)
    return math.fsum(dists) / len(dists) if dists else 0.0


def check(instance: Instance, solution: Solution) -> None:
    """Raise :class:`VerificationError` when :func:`verify` finds any violation."""
    report = verify(instance, solution)
    if not report.ok:
        raise VerificationFailed(report.violations)
