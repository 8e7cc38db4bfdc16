"""The workspace: every intake, its uploads, plan versions and decisions, in one SQLite file.

A workspace is a folder holding ``workspace.sqlite``. :class:`Workspace` is the only way in (the
web app and any admin script use it alike); nothing is ever overwritten: an upload is a new
revision, a re-plan a new version, a decision a new row that a later version marks as applied.

This layer sits above the intake readers, the engine's edit rules, rendering and comparison, and
below the front ends (``matcher.web``, ``matcher.cli``). It imports the layers below it only.
"""

from matcher.workspace.store import (
    SCHEMA_VERSION,
    Decision,
    DecisionRefused,
    IntakeSummary,
    PlanInput,
    Revision,
    StaleVersion,
    UnknownRecord,
    Version,
    Workspace,
    WorkspaceError,
)

__all__ = [
    "SCHEMA_VERSION",
    "Decision",
    "DecisionRefused",
    "IntakeSummary",
    "PlanInput",
    "Revision",
    "StaleVersion",
    "UnknownRecord",
    "Version",
    "Workspace",
    "WorkspaceError",
]
