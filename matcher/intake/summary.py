"""What `matcher validate` says about a valid intake: one line that acknowledges what the
administrator set (people, withdrawals, pre-formed pairs, locks, forbidden pairs, cohorts) and
warnings about settings that are valid but will turn pairs away (a capacity that cannot be split
into action-learning sets of the allowed sizes, a closed cohort)."""

from __future__ import annotations

from matcher.contract.instance import Instance
from matcher.contract.rules import set_counts, usable_capacity
from matcher.words import count


def summary_line(instance: Instance) -> str:
    """``15 participants (1 withdrawn), 9 applied alone, 2 locked pairs, 3 cohorts``."""
    people = instance.participants
    withdrawn = sum(not p.active for p in people)
    active = {p.id for p in people if p.active}
    lone = sum(1 for p in people if p.active and (p.partner is None or p.partner not in active))
    parts = [
        count(len(people), "participant") + (f" ({withdrawn} withdrawn)" if withdrawn else ""),
        f"{lone} applied alone",
    ]
    if instance.locks:
        parts.append(count(len(instance.locks), "locked pair"))
    if instance.forbidden_pairs:
        parts.append(count(len(instance.forbidden_pairs), "forbidden pair"))
    parts.append(count(len(instance.cohorts), "cohort"))
    return ", ".join(parts)


def intake_warnings(instance: Instance) -> list[str]:
    """Valid settings that will turn pairs away, each with its figures and what to change."""
    out = []
    for c in instance.cohorts:
        lo, hi = c.set_size.min_pairs, c.set_size.max_pairs
        if c.capacity_pairs == 0:
            out.append(f"cohort {c.id} is closed (capacity 0): no pair will be placed in it")
            continue
        usable = usable_capacity(c)
        if usable < c.capacity_pairs:
            bigger = c.capacity_pairs + 1
            while not set_counts(lo, hi, bigger):
                bigger += 1
            held = f"it holds at most {count(usable, 'pair')}" if usable else "it holds no pair"
            out.append(
                f"cohort {c.id}: {count(c.capacity_pairs, 'pair')} cannot be split into "
                f"action-learning sets of {lo}-{hi} pairs, so {held}; set its capacity to "
                + (f"{usable} or {bigger}" if usable else str(bigger))
                + " or change its set sizes"
            )
    return out
