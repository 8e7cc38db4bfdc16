"""The one registry of pairing objectives and proposing sides: the library's parameter types,
the CLI's choices and the benchmark's runs all come from here."""

from __future__ import annotations

from typing import Literal, get_args

Objective = Literal["total", "fair", "stable"]
Proposer = Literal["patient_leader", "professional"]

#: total: most pairs, then highest total score; fair: best worst pair first; stable: no
#: blocking pair (Gale-Shapley). Details in :mod:`matcher.engine.pairing`.
OBJECTIVES: tuple[str, ...] = get_args(Objective)
PROPOSERS: tuple[str, ...] = get_args(Proposer)
