"""Commands that read and explain: `validate`, `diff`, `explain`, `schema`, `scores`."""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path
from typing import Any

import click

from matcher.cli.group import (
    _emit,
    _guard,
    _load,
    _writing_stdout,
    debug_option,
    main,
    output_option,
)
from matcher.errors import InvalidParameter
from matcher.render.output import csv_text
from matcher.text import json_visible, visible, visible_lines


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@debug_option
@_guard
def validate(instance: Path, debug: bool) -> None:
    """Check INSTANCE (JSON or XLSX workbook) and list every problem (exit 3 if any)."""
    data = _load(instance)
    lone = sum(p.partner is None for p in data.participants)
    with _writing_stdout():
        click.echo(
            f"{visible(instance)}: valid ({len(data.participants)} participants, {lone} applied "
            f"alone, {len(data.cohorts)} cohorts)"
        )


@main.command()
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--instance",
    "instance_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The NEW plan's instance: adds the reason for each change.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@output_option
@debug_option
@_guard
def diff(
    old: Path,
    new: Path,
    instance_path: Path | None,
    fmt: str,
    output: Path | None,
    debug: bool,
) -> None:
    """Compare two plans (JSON) of one programme: pairs formed and dissolved, moves between
    cohorts and sets, people newly unmatched or wait-listed, score changes."""
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.compare.diff import plan_changes, score_change
    from matcher.contract.plan_file import load_plan

    before, after = load_plan(old), load_plan(new)
    data = _load(instance_path) if instance_path is not None else None
    changes = plan_changes(before, after, data)
    scores = score_change(before, after)
    if fmt == "json":
        doc = {
            "old": str(old),
            "new": str(new),
            "changes": changes.model_dump(mode="json"),
            "scores": {
                "total_before": scores.total_before,
                "total_after": scores.total_after,
                "mean_before": scores.mean_before,
                "mean_after": scores.mean_after,
            },
        }
        _emit(json.dumps(doc, indent=2) + "\n", output, [old, new])
        return
    c = changes.counts
    # Every value from the plans (IDs, reasons) is untrusted: shown through `visible`.
    lines = [
        f"{visible(old)} -> {visible(new)}",
        f"pairs kept {c.kept}, dissolved {c.dissolved}, new {c.formed}; moved cohort "
        f"{c.moved_cohort}, moved set {c.moved_set}; newly unmatched {c.newly_unmatched}, newly "
        f"wait-listed {c.newly_waitlisted}",
        f"total score {scores.total_before:.3f} -> {scores.total_after:.3f} "
        f"({scores.total_after - scores.total_before:+.3f})",
    ]
    for item in changes.items:
        where = (
            f" {visible(item.before or '-')} -> {visible(item.after or '-')}"
            if item.before is not None or item.after is not None
            else ""
        )
        who = visible("+".join(item.participants))
        pair = visible(item.pair or "")
        lines.append(f"  {item.kind:<20} {pair:<9} {who:<14}{where}: {visible(item.reason, None)}")
    _emit("\n".join(lines) + "\n", output, [old, new])


@main.command()
@click.argument("instance", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("plan", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--why-not",
    "why_not_ids",
    nargs=2,
    default=None,
    metavar="A B",
    help="Why were A and B not paired? (the rule, or the price of pairing them)",
)
@click.option(
    "--why",
    "why_id",
    default=None,
    metavar="A",
    help="Why is A paired as they are? (the pair and A's best alternatives)",
)
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@debug_option
@_guard
def explain(
    instance: Path,
    plan: Path | None,
    why_not_ids: tuple[str, str] | None,
    why_id: str | None,
    seed: int,
    fmt: str,
    debug: bool,
) -> None:
    """Explain a plan of INSTANCE (PLAN, or a fresh solve): --why-not A B or --why A."""
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.contract.plan_file import load_plan
    from matcher.explain import why, why_not

    if (why_not_ids is None) == (why_id is None):
        raise click.UsageError("give exactly one of --why-not A B and --why A")
    data = _load(instance)
    base = load_plan(plan) if plan is not None else None
    if base is not None:
        from matcher.contract.plan_file import instance_problems
        from matcher.errors import InvalidInstance

        problems = instance_problems(
            base, {p.id for p in data.participants}, {c.id for c in data.cohorts}
        )
        if problems:
            raise InvalidInstance(str(plan), problems)
    try:
        answer = (
            why_not(data, *why_not_ids, base, seed=seed)
            if why_not_ids is not None
            else why(data, why_id or "", base, seed=seed)
        )
    except InvalidParameter as exc:
        raise click.UsageError(str(exc)) from None
    # Answers quote IDs and interests from the files: escaped for the terminal (the JSON keeps
    # the data, with C1 and bidi characters as \u escapes).
    if fmt == "json":
        click.echo(json_visible(answer.model_dump_json(indent=2)))
    else:
        click.echo(visible_lines(answer.summary()))


def instance_json_schema() -> dict[str, Any]:
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.contract.instance import Instance

    return Instance.model_json_schema()


def solution_json_schema() -> dict[str, Any]:
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.contract.solution import Solution

    return Solution.model_json_schema()


@main.command()
@click.option("--solution", is_flag=True, help="Print the solution schema instead.")
@output_option
@debug_option
@_guard
def schema(solution: bool, output: Path | None, debug: bool) -> None:
    """Print the JSON Schema of instance files (or of solutions)."""
    doc = solution_json_schema() if solution else instance_json_schema()
    _emit(json.dumps(doc, indent=2, sort_keys=True) + "\n", output, [])


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--all",
    "include_preformed",
    is_flag=True,
    help="Include people who applied as pre-formed pairs.",
)
@output_option
@debug_option
@_guard
def scores(
    instance: Path, fmt: str, include_preformed: bool, output: Path | None, debug: bool
) -> None:
    """Write the patient-leader × professional compatibility scores of INSTANCE."""
    from matcher.engine.scoring import CRITERIA, compatibility  # numpy: only for this command

    data = _load(instance)
    comp = compatibility(data, include_preformed=include_preformed)
    if fmt == "json":
        doc = {
            "instance": data.name,
            "rows": comp.row_ids,
            "columns": comp.col_ids,
            "scores": comp.scores.round(6).tolist(),
            "forbidden": comp.forbidden.tolist(),
            "breakdown": {k: comp.breakdown[k].round(6).tolist() for k in CRITERIA},
        }
        text = json.dumps(doc, indent=1) + "\n"
    else:
        header = ["patient_leader", "professional", "score", "forbidden", *CRITERIA]
        text = csv_text(
            chain(
                [header],
                (
                    [
                        a,
                        b,
                        f"{comp.scores[i, j]:.6f}",
                        str(bool(comp.forbidden[i, j])).lower(),
                        *(f"{comp.breakdown[k][i, j]:.6f}" for k in CRITERIA),
                    ]
                    for i, a in enumerate(comp.row_ids)
                    for j, b in enumerate(comp.col_ids)
                ),
            )
        )
    _emit(text, output, [instance])
