"""Moved to :mod:`solvers.grouping.maximin` (this path re-exports it for one release)."""

from __future__ import annotations

import warnings

from solvers.grouping.maximin import maximin_groups

warnings.warn(
    "solvers.maximin_grouping moved to solvers.grouping (import maximin_groups from there)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["maximin_groups"]
