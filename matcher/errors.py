"""One error family for everything the library raises on purpose (DESIGN.md §5).

An admin tool catches :class:`MatcherError`; the CLI maps each kind to its exit code::

    MatcherError
    ├── InvalidInstance     the input cannot be used (exit 3); ``.problems`` lists every reason
    ├── InvalidParameter    a bad argument to a library call (exit 2)
    ├── Infeasible          proven: no plan meets the hard rules (exit 4); ``.diagnosis``
    ├── NoPlanInTime        nothing found within the time limit, or cancelled first (exit 5)
    ├── OutOfMemory         the machine ran out of memory (exit 6)
    ├── VerificationFailed  a plan broke a hard rule (a bug, exit 1); ``.violations``
    └── InternalError       a bug in matcher (exit 1), the cause chained

An exception raised by the caller's own code (a progress callback) is not wrapped: it
propagates as itself.

Messages carry IDs and JSON paths only, never names or other free text from the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class MatcherError(Exception):
    """Base of every error the library raises on purpose."""

    #: The CLI's exit code for this kind of error.
    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an instance: where (JSON path), what, and the IDs involved."""

    path: str
    message: str
    ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        # "$" (the whole file) means nothing to a reader: the message stands alone
        if self.path in ("", "$"):
            return self.message
        return f"{self.path}: {self.message}"


#: Problems printed in full by ``str()``; the rest are counted (a file with 2,000 identical
#: mistakes must not print 2,000 lines).
MAX_PROBLEMS_SHOWN = 50


class InvalidInstance(MatcherError):
    """The instance cannot be used; ``problems`` lists every reason."""

    exit_code = 3

    def __init__(self, source: str, problems: list[Problem] | None = None) -> None:
        self.source = source
        self.problems: list[Problem] = list(problems or [])
        super().__init__(source, self.problems)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{self.source}: {n} problem{'s' if n != 1 else ''} found"
        shown = [f"  - {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        if n > MAX_PROBLEMS_SHOWN:
            shown.append(f"  ... and {n - MAX_PROBLEMS_SHOWN} more")
        return "\n".join([head, *shown])


class InvalidParameter(MatcherError, ValueError):
    """A library call got an argument outside its documented range (a usage error)."""

    exit_code = 2


@dataclass(frozen=True)
class Conflict:
    """One part of an infeasibility diagnosis: a rule, lock or capacity, in words with IDs."""

    kind: str  # e.g. "lock", "capacity", "one_organisation_per_set", "set_size", "attendance"
    message: str
    ids: tuple[str, ...] = ()
    remedy: str = ""

    def __str__(self) -> str:
        return self.message + (f" (to fix: {self.remedy})" if self.remedy else "")


class Infeasible(MatcherError):
    """Proven: no plan meets the hard rules. ``diagnosis`` names the conflicting parts."""

    exit_code = 4

    def __init__(
        self,
        message: str,
        diagnosis: list[Conflict] | None = None,
        *,
        source: str = "",
        solution: Any = None,
    ) -> None:
        self.message = message
        self.diagnosis: list[Conflict] = list(diagnosis or [])
        self.source = source  # the instance file, when the caller knows it
        #: the plan with every pair wait-listed (status ``infeasible``), when there is one
        self.solution = solution
        super().__init__(message)

    def __str__(self) -> str:
        return "\n".join([self.message, *(f"  - {c}" for c in self.diagnosis)])


class NoPlanInTime(MatcherError):
    """No plan was found within the time limit (or the solve was cancelled before one)."""

    exit_code = 5


class OutOfMemory(MatcherError, MemoryError):
    """The machine ran out of memory (Python's ``MemoryError``) while matcher worked: not a
    verdict on the instance. Free memory, or run it on a machine with more."""

    exit_code = 6


@dataclass(frozen=True)
class Violation:
    """One hard rule a plan breaks: which rule (e.g. ``"capacity"``), the IDs involved (people,
    pairs, sets, cohorts, intakes; never names) and the message. Found by
    :func:`matcher.verification.verify.verify`."""

    rule: str
    ids: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return self.message

    def __contains__(self, text: str) -> bool:  # `"missing" in violation`, as for strings
        return text in self.message


class VerificationFailed(MatcherError):
    """A plan breaks a hard rule or misreports a score: a bug in a solver. ``violations``
    holds each :class:`Violation` (rule, IDs, message); the message lists their messages."""

    exit_code = 1

    def __init__(self, violations: list[Violation]) -> None:
        self.violations: list[Violation] = list(violations)
        super().__init__(
            "\n".join(["the plan failed verification:", *(str(v) for v in self.violations)])
        )

    def rules(self) -> set[str]:
        """The rules broken."""
        return {v.rule for v in self.violations}


class InternalError(MatcherError):
    """A bug in matcher (the cause is chained, for --debug)."""

    exit_code = 1
