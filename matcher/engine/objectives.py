"""The one registry of pairing objectives and proposing sides: the library's parameter types,
the CLI's choices, the benchmark's runs and every place the engine behaves differently by
objective all come from here. Nothing outside this module compares an objective's name.

Each objective is an object implementing :class:`PairingObjective`: what it asks of the
matching (:meth:`PairingObjective.match`, over the matching kernels the pairing stage provides,
:class:`MatchingKernels`) and the facts the later stages read (whether it is always run in
full, whether placement may re-pair its lone pairs, its words for an unmatched person). Adding
an objective is one class here plus, when it needs one, a kernel in
:mod:`matcher.engine.pairing`.

Light on purpose (no numpy): ``solve``'s argument checks and the CLI's choices import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol, get_args

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Objective = Literal["total", "fair", "stable"]
Proposer = Literal["patient_leader", "professional"]

#: total: most pairs, then highest total score; fair: best worst pair first; stable: no
#: blocking pair (Gale-Shapley). Details in :mod:`matcher.engine.pairing`.
OBJECTIVES: tuple[str, ...] = get_args(Objective)
PROPOSERS: tuple[str, ...] = get_args(Proposer)


@dataclass(frozen=True)
class MatchResult:
    """Lone pairs matched (k x 2: row index, column index into the lone sides), the proven
    worst pair when the objective keeps one (``bottleneck``; later stages never re-pair below
    it), whether the result is the objective's proven optimum, and a note when it is not."""

    matched: NDArray[np.int64]
    bottleneck: float | None = None
    proven: bool = True
    note: str = ""


class MatchingKernels(Protocol):
    """The matchings the pairing stage can run over its candidate lone pairs."""

    def most_pairs_best_total(self) -> NDArray[np.int64]:
        """Most pairs, then the highest total score (ties: pairs that rank each other high)."""
        ...

    def most_pairs_best_worst(self) -> tuple[NDArray[np.int64], float | None, bool]:
        """Most pairs, then the highest worst pair, then the highest total; the worst pair and
        whether it is proven best (a deadline may cut the search)."""
        ...

    def stable(self, proposer: str) -> NDArray[np.int64]:
        """Gale-Shapley with ``proposer``'s side proposing."""
        ...


class PairingObjective(Protocol):
    """A pairing objective: its matching and what the later stages need to know of it."""

    @property
    def name(self) -> str:
        """The name users choose it by (``--objective``, ``solve(objective=...)``,
        ``run.objective``)."""
        ...

    @property
    def summary(self) -> str:
        """What it favours, in a few words (the web app's objective menu)."""
        ...

    @property
    def why_not_paired(self) -> str:
        """How it chose among compatible partners, for "why is this person unmatched"."""
        ...

    @property
    def always_exact(self) -> bool:
        """Run in full even under a deadline (a shortened candidate list would change the
        result)."""
        ...

    @property
    def re_pairs(self) -> bool:
        """Placement may re-pair its lone pairs to place more (False: re-pairing would undo
        what it guarantees)."""
        ...

    @property
    def most_pairs(self) -> bool:
        """Its matching forms the most lone pairs possible (False: a plan that places every
        pair formed may still place fewer than another pairing would, so the run's bound comes
        from the flow ceiling)."""
        ...

    @property
    def price_field(self) -> str | None:
        """The benchmark's row field for its price against :data:`REFERENCE`'s total score
        (None: it is the reference)."""
        ...

    def match(self, kernels: MatchingKernels, proposer: str) -> MatchResult:
        """The lone pairs this objective forms."""
        ...


@dataclass(frozen=True)
class Total:
    name: str = "total"
    summary: str = "the highest total score"
    why_not_paired: str = "pairing differently would give fewer pairs or a lower total score"
    always_exact: bool = False
    re_pairs: bool = True
    most_pairs: bool = True
    price_field: str | None = None

    def match(self, kernels: MatchingKernels, proposer: str) -> MatchResult:
        return MatchResult(kernels.most_pairs_best_total())


@dataclass(frozen=True)
class Fair:
    name: str = "fair"
    summary: str = "the best worst pair first"
    why_not_paired: str = "pairing differently would give fewer pairs or a worse lowest pair score"
    always_exact: bool = False
    re_pairs: bool = True
    most_pairs: bool = True
    price_field: str | None = "price_of_fairness_pct"

    def match(self, kernels: MatchingKernels, proposer: str) -> MatchResult:
        matched, worst, proven = kernels.most_pairs_best_worst()
        note = (
            ""
            if proven
            else "time limit: the fair objective's search for the best worst pair stopped "
            f"early; the worst pair is the best proven so far ({worst:.3f})"
        )
        return MatchResult(matched, worst, proven, note)


@dataclass(frozen=True)
class Stable:
    name: str = "stable"
    summary: str = "no two people prefer each other"
    why_not_paired: str = (
        "each is paired with someone they rank higher, or who ranks them higher (stable matching)"
    )
    #: shortened preference lists would change which pairs block
    always_exact: bool = True
    #: re-pairing to place more would create blocking pairs: pairs no cohort takes wait
    re_pairs: bool = False
    #: a stable matching may form fewer pairs than the most possible
    most_pairs: bool = False
    price_field: str | None = "price_of_stability_pct"

    def match(self, kernels: MatchingKernels, proposer: str) -> MatchResult:
        return MatchResult(kernels.stable(proposer))


#: Every objective by name, in :data:`OBJECTIVES` order.
REGISTRY: dict[str, PairingObjective] = {o.name: o for o in (Total(), Fair(), Stable())}
#: The default objective's name (``solve``, the CLI, the web app, the benchmark's variants).
DEFAULT: Final[Objective] = "total"
#: The objective the others are priced against (the default).
REFERENCE: PairingObjective = REGISTRY[DEFAULT]


def objective_named(name: str) -> PairingObjective:
    """The objective called ``name``; :class:`ValueError` naming the valid ones otherwise."""
    found = REGISTRY.get(name)
    if found is None:
        raise ValueError(f"unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
    return found
