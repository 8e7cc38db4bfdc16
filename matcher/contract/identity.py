"""Which intake a plan was made from (DESIGN.md §4): the plan records the SHA-256 of its
instance (``instance_sha256``) next to the intake's name, so that a plan is never read against
another intake by mistake.

Two checks, for two questions:

- :func:`check_same_intake` — is this previous plan from the same programme (the same intake
  name)? A re-plan's instance differs from the previous one on purpose (a withdrawal, a lock), so
  only the name is compared.
- :func:`check_made_from` — was this plan made from exactly this instance? Reports, explanations
  and change lists read the plan against the instance: a plan made from another version of the
  intake would show people missing or reasons that are not true.

Both raise :class:`matcher.errors.InvalidParameter` naming both intakes unless ``force``.
"""

from __future__ import annotations

import hashlib
import json

from matcher.contract.instance import Instance
from matcher.contract.solution import Solution
from matcher.errors import InvalidParameter


def instance_hash(instance: Instance) -> str:
    """SHA-256 (hex) of the instance's canonical JSON (sorted keys, no spaces, UTF-8): equal for
    equal contents whichever file or spreadsheet they were read from."""
    text = json.dumps(
        instance.model_dump(mode="json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class IntakeMismatch(InvalidParameter):
    """The plan belongs to another intake (or another version of this one)."""

    def __init__(self, message: str, plan_intake: str, intake: str) -> None:
        super().__init__(message)
        self.plan_intake = plan_intake
        self.intake = intake


def check_same_intake(
    plan: Solution, instance: Instance, *, what: str = "the previous plan", force: bool = False
) -> None:
    """Refuse ``plan`` when it was made from an intake of another name than ``instance``."""
    if force or plan.instance == instance.name:
        return
    raise IntakeMismatch(
        f"{what} was made from intake {plan.instance!r}, not from intake {instance.name!r}; "
        "give the plan of this intake (or force=True / --force if it is the same programme "
        "renamed)",
        plan.instance,
        instance.name,
    )


def check_made_from(
    plan: Solution, instance: Instance, *, what: str = "the plan", force: bool = False
) -> None:
    """Refuse ``plan`` unless it was made from exactly ``instance`` (same name and, when the
    plan records it, the same ``instance_sha256``). Plans written before the hash was recorded
    are checked by name only."""
    if force:
        return
    check_same_intake(plan, instance, what=what)
    if plan.instance_sha256 is not None and plan.instance_sha256 != instance_hash(instance):
        raise IntakeMismatch(
            f"{what} was made from another version of intake {instance.name!r} (the intake "
            "has changed since: someone withdrew, a lock or a cohort was edited); make a new "
            "plan from this intake (solve with the old plan as the previous plan), or "
            "force=True / --force to read it anyway",
            plan.instance,
            instance.name,
        )
