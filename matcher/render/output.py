"""Rendering a plan as JSON, CSV and the terminal table."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from matcher.text import cell, csv_cell, json_visible, visible

if TYPE_CHECKING:
    from matcher.contract.solution import Solution
    from matcher.render.view import PlanView


def solution_json(solution: Solution) -> str:
    """The plan as JSON; characters JSON leaves raw (C1, bidi) are written as escapes."""
    return json_visible(solution.model_dump_json(indent=2)) + "\n"


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV, every cell through :func:`matcher.text.csv_cell` (formula prefixes
    neutralised, control characters shown): the one CSV writer of the package."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # quotes cells holding commas, quotes, newlines
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def solution_csv(solution: Solution) -> str:
    """One row per pair, then one per unmatched participant (spreadsheet friendly)."""
    waitlisted = {x.pair: x.reason for x in solution.waitlist}
    rows: list[list[object]] = [
        [
            "pair",
            "patient_leader",
            "partner",
            "preformed",
            "score",
            "cohort",
            "learning_set",
            "waitlisted",
            "reasons",
        ]
    ]
    for p in solution.pairs:
        rows.append(
            [
                p.id,
                p.patient_leader,
                p.partner,
                "yes" if p.preformed else "no",
                f"{p.score:.4f}",
                p.cohort or "",
                p.learning_set or "",
                waitlisted.get(p.id, ""),
                "; ".join(p.reasons),
            ]
        )
    for u in solution.unmatched:
        rows.append(["", u.participant, "", "", "", "", "", "", "unmatched: " + u.reason])
    return csv_text(rows)


def _who(view: PlanView | None, pid: str) -> Text:
    """``pl01 Alex Example`` with ``role, organisation`` under it (the ID alone without view);
    every part rendered safely (:func:`matcher.text.visible`)."""
    if view is None or pid not in view.people:
        return cell(pid)
    p = view.person(pid)
    return Text(f"{visible(p.label)}\n{visible(p.role)}, {visible(p.organisation)}")


def _summary(solution: Solution) -> Text:
    summary = solution.summary()  # "<instance name>: ...": the name may be long or hostile
    name = solution.instance
    rest = summary[len(name) :] if summary.startswith(name) else summary
    return Text(visible(name) + visible(rest, limit=None), style="bold")


def print_table(solution: Solution, console: Console, view: PlanView | None = None) -> None:
    """The human-readable plan; with ``view``, names, roles, organisations and cohort names
    stand next to the IDs. Every column wraps at spaces and folds a word too long for it, so
    nothing is cut off at any width, on a terminal or in a pipe. Below 100 columns (a narrow
    terminal; a pipe is 80) each pair is a short block of lines instead of a table row. All
    text from the input is rendered by :mod:`matcher.text` (no markup, no control characters)."""
    console.print(_summary(solution))
    _print_changes(solution, console, view)
    if console.width < NARROW:
        _print_pairs_stacked(solution, console, view)
    else:
        _print_pairs_table(solution, console, view)
    _print_cohorts(solution, console, view)
    _print_reasons(
        console, "Wait-list", "pair", [(cell(x.pair), x.reason) for x in solution.waitlist]
    )
    _print_reasons(
        console,
        "Unmatched",
        "participant",
        [(_who(view, u.participant), u.reason) for u in solution.unmatched],
    )


def _print_changes(solution: Solution, console: Console, view: PlanView | None) -> None:
    """A re-plan's "What changed": the counts in words, then one line per change (kind, pair,
    people, from -> to, reason); nothing for a plan made without a previous plan."""
    changes = solution.changes
    if changes is None:
        return
    console.print(Text("\nWhat changed", style="bold"))
    if view is not None:
        lines = view.change_sentences()
        rows = [
            (r.kind, r.pair, ", ".join(p.label for p in r.people), r.before, r.after, r.reason)
            for r in view.change_rows()
        ]
    else:
        lines = [f"Re-planned against the previous plan of {changes.previous_instance}."]
        rows = [
            (c.kind, c.pair or "", ", ".join(c.participants), c.before or "", c.after or "",
             c.reason)
            for c in changes.items
        ]  # fmt: skip
    for line in lines:
        console.print(Text(visible(line, limit=None)), highlight=False)
    for kind, pair, people, before, after, reason in rows:
        move = f" {before or '-'} -> {after or '-'}" if before or after else ""
        head = f"  {kind}" + (f" {pair}" if pair else "") + f": {people}{move}"
        console.print(Text(visible(head, limit=400) + "; " + visible(reason, limit=400)))


#: Narrower consoles get the pairs as blocks of lines, not as a table of 8 columns.
NARROW = 100


def _print_pairs_stacked(solution: Solution, console: Console, view: PlanView | None) -> None:
    console.print(Text("\nPairs", style="bold"))
    for p in solution.pairs:
        cohort = view.cohort(p.cohort) if view is not None else None
        where = f"{p.cohort} {cohort.name}".strip() if cohort else (p.cohort or "no cohort")
        lines = [
            f"{visible(p.id)}  score {p.score:.2f}  "
            f"{'applied together' if p.preformed else 'matched'}  {visible(where)}  "
            f"set {visible(p.learning_set or '-')}",
            "  patient leader: " + _who(view, p.patient_leader).plain.replace("\n", ", "),
            "  partner: " + _who(view, p.partner).plain.replace("\n", ", "),
            "  reasons: " + visible("; ".join(p.reasons[:2]), limit=400),
        ]
        for line in lines:
            console.print(Text(line), highlight=False)


def _print_pairs_table(solution: Solution, console: Console, view: PlanView | None) -> None:
    table = Table(title="Pairs", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("pair", "patient leader", "partner", "kind", "score", "cohort", "set"):
        table.add_column(col, overflow="fold")
    table.add_column("strongest reasons", overflow="fold")
    for p in solution.pairs:
        cohort = view.cohort(p.cohort) if view is not None else None
        table.add_row(
            cell(p.id),
            _who(view, p.patient_leader),
            _who(view, p.partner),
            "pre" if p.preformed else "new",
            f"{p.score:.2f}",
            Text(f"{visible(p.cohort)}\n{visible(cohort.name)}")
            if cohort and cohort.name
            else cell(p.cohort or "-"),
            cell(p.learning_set or "-"),
            cell("; ".join(p.reasons[:2]), limit=400),
        )
    console.print(table)


def _print_cohorts(solution: Solution, console: Console, view: PlanView | None) -> None:
    if solution.cohorts is not None:
        sets_by_cohort: dict[str, list[str]] = {}
        for s in solution.learning_sets or []:
            sets_by_cohort.setdefault(s.cohort, []).append(
                f"{visible(s.id)}: "
                + ", ".join(visible(p) for p in s.pairs)
                + (f" (diversity {s.diversity:.2f})" if s.diversity is not None else "")
            )
        ct = Table(title="Cohorts and action-learning sets", box=box.SIMPLE_HEAD)
        for col in ("cohort", "pairs", "sets"):
            ct.add_column(col, overflow="fold")
        for c in solution.cohorts:
            cap = f"/{c.capacity_pairs}" if c.capacity_pairs is not None else ""
            about = view.cohort(c.id) if view is not None else None
            label = (
                Text(f"{visible(about.label)}\n{visible(about.when)}")
                if about is not None
                else cell(c.id)
            )
            ct.add_row(label, f"{len(c.pairs)}{cap}", Text("\n".join(sets_by_cohort.get(c.id, []))))
        console.print(ct)


def _print_reasons(console: Console, title: str, key: str, rows: list[tuple[Text, str]]) -> None:
    """A two-column table of IDs and reasons (nothing when there are no rows)."""
    if not rows:
        return
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column(key, overflow="fold")
    table.add_column("reason", overflow="fold")
    for ident, reason in rows:
        table.add_row(ident, cell(reason, limit=400))
    console.print(table)
