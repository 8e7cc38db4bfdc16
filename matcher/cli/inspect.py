"""Commands that read and explain: `validate`, `diff`, `explain`, `schema`, `scores`."""

from __future__ import annotations

import json
from itertools import chain
from pathlib import Path
from typing import Any

import click

from matcher.cli.group import (
    _emit,
    _fail,
    _guard,
    _load,
    _read_plan,
    _writing_stdout,
    check_order,
    debug_option,
    file_kind,
    force_option,
    main,
    output_option,
    plan_fits,
    refuse_other_intake,
)
from matcher.engine.runner import EXIT_INVALID
from matcher.errors import InvalidParameter
from matcher.render.output import csv_text
from matcher.text import json_visible, visible, visible_lines


@main.command(short_help="Check INTAKE and list every problem, with its row (exit 3 if any).")
@click.argument("instance", metavar="INTAKE", type=click.Path(path_type=Path))
@debug_option
@_guard
def validate(instance: Path, debug: bool) -> None:
    """Check INTAKE (XLSX workbook or JSON) and list every problem, each with its sheet, row
    and column (exit 3 if any). A valid intake is summed up (people, withdrawals, locks,
    forbidden pairs, cohorts) and warnings name cohorts whose capacity cannot be split into
    action-learning sets of the allowed sizes."""
    from matcher.intake.summary import (  # lazy: pydantic; not for --help
        intake_warnings,
        summary_line,
    )

    data = _load(instance)
    notes = intake_warnings(data)
    with _writing_stdout():
        click.echo(f"{visible(instance)}: valid ({summary_line(data)})")
        for note in notes:
            click.echo(f"warning: {visible(note, limit=None)}")


@main.command(short_help="Compare two plans: pairs ended and new, moves, and why.")
@click.argument("old", metavar="OLD_PLAN", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("new", metavar="NEW_PLAN", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--instance",
    "instance_path",
    metavar="INTAKE",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The intake NEW_PLAN was made from: adds the reason for each change.",
)
@force_option
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
    force: bool,
    debug: bool,
) -> None:
    """Compare two plans of one intake (each a .json or .xlsx file from `matcher solve`):
    pairs formed and dissolved, moves between cohorts and sets, people newly unmatched or
    wait-listed, score changes. With --instance INTAKE (the intake NEW_PLAN was made from),
    each change has its reason; a plan of another intake is refused (exit 3) unless --force."""
    from matcher.compare.diff import plan_changes, score_change  # lazy: pydantic; not for --help

    for path in (old, new):
        if file_kind(path) == "intake":
            raise click.UsageError(
                f"{visible(path)} is an intake, not a plan: `matcher diff` takes two plans, "
                "OLD_PLAN NEW_PLAN, and the intake as --instance INTAKE"
            )
    before, after = _read_plan(old), _read_plan(new)
    data = None
    if instance_path is not None:
        check_order("diff --instance", instance_path, None)
        data = _load(instance_path)
        refuse_other_intake(new, after, instance_path, data, force=force)
        refuse_other_intake(old, before, instance_path, data, force=force, exact=False)
    elif before.instance != after.instance and not force:
        _fail(
            f"{visible(old)} is a plan of intake {visible(before.instance)!r} and "
            f"{visible(new)} of intake {visible(after.instance)!r}: compare plans of one intake "
            "(or --force)",
            EXIT_INVALID,
        )
    changes = plan_changes(before, after, data, force=True)
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


@main.command(short_help="Why is A paired so? Why were A and B not paired?")
@click.argument("instance", metavar="INTAKE", type=click.Path(dir_okay=False, path_type=Path))
@click.argument(
    "plan", metavar="[PLAN]", required=False, type=click.Path(dir_okay=False, path_type=Path)
)
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
@force_option
@debug_option
@_guard
def explain(
    instance: Path,
    plan: Path | None,
    why_not_ids: tuple[str, str] | None,
    why_id: str | None,
    seed: int,
    fmt: str,
    force: bool,
    debug: bool,
) -> None:
    """Explain PLAN of INTAKE (or a fresh solve of INTAKE without PLAN): --why A (A's pair,
    and the compatible people who went to someone else, with what pairing them would cost) or
    --why-not A B (the rule that forbids the pair, or its price to the whole plan). A plan of
    another intake, or of an older version of this one, is refused (exit 3) unless --force."""
    from matcher.explain import why, why_not  # lazy: the engine, for explain only

    if (why_not_ids is None) == (why_id is None):
        raise click.UsageError("give exactly one of --why-not A B and --why A")
    check_order("explain", instance, plan)
    data = _load(instance)
    base = _read_plan(plan) if plan is not None else None
    if base is not None and plan is not None:
        refuse_other_intake(plan, base, instance, data, force=force)
        plan_fits(plan, base, data)
    try:
        answer = (
            why_not(data, *why_not_ids, base, seed=seed, force=True)
            if why_not_ids is not None
            else why(data, why_id or "", base, seed=seed, force=True)
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
    from matcher.contract.instance import Instance  # lazy: pydantic; not for --help

    return Instance.model_json_schema()


def solution_json_schema() -> dict[str, Any]:
    from matcher.contract.solution import Solution  # lazy: pydantic; not for --help

    return Solution.model_json_schema()


@main.command(short_help="Print the JSON Schema of intake files (or of plans).")
@click.option("--solution", is_flag=True, help="Print the solution schema instead.")
@output_option
@debug_option
@_guard
def schema(solution: bool, output: Path | None, debug: bool) -> None:
    """Print the JSON Schema of instance files (or of solutions)."""
    doc = solution_json_schema() if solution else instance_json_schema()
    _emit(json.dumps(doc, indent=2, sort_keys=True) + "\n", output, [])


@main.command(short_help="Write every patient leader x professional compatibility score.")
@click.argument("instance", metavar="INTAKE", type=click.Path(path_type=Path))
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
    from matcher.engine.scoring import CRITERIA, compatibility  # lazy: numpy, for scores only

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
