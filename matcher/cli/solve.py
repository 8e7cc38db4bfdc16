"""`matcher solve`: pair, place and group an instance, verify the plan, write it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from rich.console import Console

from matcher.cli.group import (
    MAX_SEED,
    PLAN_FORMATS,
    OutputPath,
    _cancellable,
    _emit,
    _fail,
    _guard,
    _load_checked,
    _people,
    _read_plan,
    _say,
    _StdoutConsole,
    _write_plan,
    _writing_stdout,
    check_order,
    debug_option,
    err,
    force_option,
    in_rows,
    main,
    plan_format,
    redact_option,
    refuse_other_intake,
)
from matcher.engine.objectives import DEFAULT, OBJECTIVES, PROPOSERS, Objective, Proposer
from matcher.engine.runner import EXIT_INFEASIBLE, EXIT_INTERNAL
from matcher.errors import Infeasible
from matcher.render.output import print_table, solution_csv, solution_json
from matcher.text import visible

if TYPE_CHECKING:
    from matcher.contract.instance import Instance
    from matcher.contract.solution import Solution


@main.command(short_help="Make a plan of INTAKE (table, or -o plan.xlsx / .json / .html).")
@click.argument("instance", metavar="INTAKE", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(PLAN_FORMATS),
    default=None,
    help="Output format (default: from -o's suffix, .json .csv .xlsx .html .txt; else table).",
)
@click.option(
    "-o",
    "--output",
    "outputs",
    type=OutputPath(),
    multiple=True,
    help=(
        "Write the plan to this file (atomically); the format follows the suffix (.json .csv "
        ".xlsx .html .txt). Repeat for several files: -o plan.xlsx -o plan.json writes both, "
        "every destination checked before the solve."
    ),
)
@redact_option
@click.option(
    "--seed",
    type=click.IntRange(0, MAX_SEED),
    default=0,
    show_default=True,
    help="Random seed (0 to 2^31-1).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0.01),
    default=None,
    help=(
        "Seconds for the whole solve, the intake's near-miss spelling check included (it "
        "gets at most a tenth; default: no limit). Start-up, reading the intake and "
        "verifying and writing the plan come on top (seconds at 20,000 participants)."
    ),
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default=DEFAULT,
    show_default=True,
    help="Pairing objective: total score, fair (best worst pair first), or stable.",
)
@click.option(
    "--proposer",
    type=click.Choice(PROPOSERS),
    default="patient_leader",
    show_default=True,
    help="Proposing side for --objective stable.",
)
@click.option(
    "--timings",
    is_flag=True,
    help="Record wall time in the output (makes JSON differ between runs).",
)
@click.option(
    "--previous",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "An earlier plan of this intake (.json or .xlsx from `matcher solve`) to change as "
        "little as possible; the new plan lists the changes, with reasons."
    ),
)
@force_option
@debug_option
@_guard
def solve(
    instance: Path,
    fmt: str | None,
    outputs: tuple[Path, ...],
    seed: int,
    time_limit: float | None,
    objective: str,
    proposer: str,
    timings: bool,
    previous: Path | None,
    force: bool,
    debug: bool,
    redact: bool,
) -> None:
    """Make a plan of INTAKE: pair, place in cohorts, split into sets, verify.

    INTAKE is the intake workbook (.xlsx) or its JSON. The plan goes to the terminal as a
    table, or to every file named with -o (plan.xlsx for colleagues, plan.json for matcher;
    the workbook carries the JSON plan too). With --previous PLAN the plan changes the earlier
    one as little as possible and lists every change with its reason."""
    from matcher.engine.solve import solve as run_solve  # lazy: the engine, once a solve runs
    from matcher.intake.spelling import seconds_within  # lazy: not for --help
    from matcher.verification.verify import verify  # lazy: pydantic; not for --help

    if len(outputs) > 1 and fmt is not None:
        raise click.UsageError("--format applies to one -o file; with several, each file's "
                               "suffix gives its format")  # fmt: skip
    formats = [plan_format(fmt, out) for out in outputs] or [plan_format(fmt, None)]
    check_order("solve", instance, previous, plan_arg="--previous ")
    # The spelling check runs within the time limit: its share (a tenth, at most 2 s), which
    # the solve then does without. Deterministic runs subtract the whole share, so the solve's
    # budgets stay fixed fractions of the limit, or what the check took when it ran over its
    # share (measured: 0.18-0.20 s of a 0.1 s share in a slow process); with --timings, what
    # it took.
    check_s = seconds_within(time_limit)
    if time_limit is not None:
        # Start-up, like reading the intake, comes on top of the limit (README): the engine's
        # modules load before its clock starts (0.2-0.3 s the solve used to spend importing).
        import matcher.engine.assemble  # noqa: F401  # lazy: the engine, once a solve runs
    data, checked_s = _load_checked(instance, check_s)
    spent = checked_s if timings else max(check_s, checked_s)  # of the limit, by the check
    if not any(p.active for p in data.participants):
        _say(f"{visible(instance)}: no active participants; the plan is empty", prefix="warning: ")
    before = _read_plan(previous) if previous is not None else None
    if before is not None and previous is not None:
        refuse_other_intake(
            previous, before, instance, data, force=force, exact=False, option="--previous "
        )
    try:
        solution = _cancellable(
            lambda progress: run_solve(
                data,
                seed=seed,
                time_limit=time_limit,
                objective=cast(Objective, objective),
                proposer=cast(Proposer, proposer),
                deterministic=not timings,
                previous=before,
                progress=progress,
                force=True,  # checked above, naming the files
                time_used=0.0 if time_limit is None else spent,
            ),
            show_progress=err.is_terminal,
        )
    except Infeasible as exc:
        # Locks and records by their workbook rows ("Locks!row 2"), never internal indices.
        _fail(
            f"{visible(instance)}: no plan meets the hard rules: {in_rows(instance, str(exc))}",
            EXIT_INFEASIBLE,
        )
    report = verify(data, solution, previous=before)
    if not report.ok:
        _fail(
            f"{visible(instance)}: the plan failed verification (a bug):\n{report}", EXIT_INTERNAL
        )
    inputs = [instance] + ([previous] if previous is not None else [])
    destinations: tuple[Path | None, ...] = outputs or (None,)
    for out, out_fmt in zip(destinations, formats, strict=True):
        _write_one(out_fmt, data, solution, out, inputs, redact=redact)


def _write_one(
    fmt: str,
    data: Instance,
    solution: Solution,
    output: Path | None,
    inputs: list[Path],
    *,
    redact: bool,
) -> None:
    """The plan in one format, to ``output`` (atomically) or standard output."""
    if fmt == "json":
        _emit(solution_json(solution), output, inputs)
    elif fmt == "csv":
        _emit(solution_csv(solution), output, inputs)
    elif fmt in ("xlsx", "html"):
        _write_plan(fmt, data, solution, output, inputs, redact=redact)
    elif output is not None:
        console = Console(record=True, width=140, file=io.StringIO())
        print_table(solution, console, _people(data, solution, redact))
        _emit(console.export_text(), output, inputs)
    else:
        with _writing_stdout():
            print_table(solution, _StdoutConsole(), _people(data, solution, redact))
