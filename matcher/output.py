"""Writing results: atomic files, JSON, CSV and the terminal table."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from matcher.solution import Solution

if TYPE_CHECKING:
    from matcher.plan_view import PlanView


class OutputError(Exception):
    """The output cannot be written where asked."""


def write_atomic(path: str | Path, text: str, *, protect: list[Path] | None = None) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename, so a crash never leaves a
    half-written file. Refuses to write over any of the ``protect`` paths (the inputs)."""
    target = Path(path)
    for p in protect or []:
        if target.exists() and p.exists() and target.resolve() == p.resolve():
            raise OutputError(f"{target}: refusing to overwrite the input file; choose another -o")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"{target}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def solution_json(solution: Solution) -> str:
    return solution.model_dump_json(indent=2) + "\n"


def solution_csv(solution: Solution) -> str:
    """One row per pair, then one per unmatched participant (spreadsheet friendly)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
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
    )
    waitlisted = {x.pair: x.reason for x in solution.waitlist}
    for p in solution.pairs:
        w.writerow(
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
        w.writerow(["", u.participant, "", "", "", "", "", "", "unmatched: " + u.reason])
    return buf.getvalue()


def _who(view: PlanView | None, pid: str) -> str:
    """``pl01 Alex Example`` / ``Healthwatch · hw-surrey`` under it (the ID alone without view)."""
    if view is None or pid not in view.people:
        return pid
    p = view.person(pid)
    return f"{p.label}\n{p.role}, {p.organisation}"


def print_table(solution: Solution, console: Console, view: PlanView | None = None) -> None:
    """The human-readable plan; with ``view``, names, roles, organisations and cohort names
    stand next to the IDs. Every column wraps at spaces and folds a word too long for it, so
    nothing is cut off at any width, on a terminal or in a pipe. Below 100 columns (a narrow
    terminal; a pipe is 80) each pair is a short block of lines instead of a table row."""
    console.print(f"[bold]{solution.summary()}[/bold]")
    if console.width < NARROW:
        _print_pairs_stacked(solution, console, view)
    else:
        _print_pairs_table(solution, console, view)
    _print_cohorts(solution, console, view)
    _print_reasons(console, "Wait-list", "pair", [(x.pair, x.reason) for x in solution.waitlist])
    _print_reasons(
        console,
        "Unmatched",
        "participant",
        [(_who(view, u.participant), u.reason) for u in solution.unmatched],
    )


#: Narrower consoles get the pairs as blocks of lines, not as a table of 8 columns.
NARROW = 100


def _print_pairs_stacked(solution: Solution, console: Console, view: PlanView | None) -> None:
    console.print("\n[bold]Pairs[/bold]")
    for p in solution.pairs:
        cohort = view.cohort(p.cohort) if view is not None else None
        where = f"{p.cohort} {cohort.name}".strip() if cohort else (p.cohort or "no cohort")
        lines = [
            f"{p.id}  score {p.score:.2f}  {'applied together' if p.preformed else 'matched'}"
            f"  {where}  set {p.learning_set or '-'}",
            "  patient leader: " + _who(view, p.patient_leader).replace("\n", ", "),
            "  partner: " + _who(view, p.partner).replace("\n", ", "),
            "  reasons: " + "; ".join(p.reasons[:2]),
        ]
        for line in lines:
            console.print(line, markup=False, highlight=False)


def _print_pairs_table(solution: Solution, console: Console, view: PlanView | None) -> None:
    table = Table(title="Pairs", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("pair", "patient leader", "partner", "kind", "score", "cohort", "set"):
        table.add_column(col, overflow="fold")
    table.add_column("strongest reasons", overflow="fold")
    for p in solution.pairs:
        cohort = view.cohort(p.cohort) if view is not None else None
        table.add_row(
            p.id,
            _who(view, p.patient_leader),
            _who(view, p.partner),
            "pre" if p.preformed else "new",
            f"{p.score:.2f}",
            f"{p.cohort}\n{cohort.name}" if cohort and cohort.name else (p.cohort or "-"),
            p.learning_set or "-",
            "; ".join(p.reasons[:2]),
        )
    console.print(table)


def _print_cohorts(solution: Solution, console: Console, view: PlanView | None) -> None:
    if solution.cohorts is not None:
        sets_by_cohort: dict[str, list[str]] = {}
        for s in solution.learning_sets or []:
            sets_by_cohort.setdefault(s.cohort, []).append(
                f"{s.id}: "
                + ", ".join(s.pairs)
                + (f" (diversity {s.diversity:.2f})" if s.diversity is not None else "")
            )
        ct = Table(title="Cohorts and action-learning sets", box=box.SIMPLE_HEAD)
        for col in ("cohort", "pairs", "sets"):
            ct.add_column(col, overflow="fold")
        for c in solution.cohorts:
            cap = f"/{c.capacity_pairs}" if c.capacity_pairs is not None else ""
            about = view.cohort(c.id) if view is not None else None
            label = f"{about.label}\n{about.when}" if about is not None else c.id
            ct.add_row(label, f"{len(c.pairs)}{cap}", "\n".join(sets_by_cohort.get(c.id, [])))
        console.print(ct)


def _print_reasons(console: Console, title: str, key: str, rows: list[tuple[str, str]]) -> None:
    """A two-column table of IDs and reasons (nothing when there are no rows)."""
    if not rows:
        return
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column(key, overflow="fold")
    table.add_column("reason", overflow="fold")
    for ident, reason in rows:
        table.add_row(ident, reason)
    console.print(table)
