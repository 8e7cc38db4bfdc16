"""`matcher solve`: pair, place and group an instance, verify the plan, write it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import click
from rich.console import Console

from matcher.cli.group import (
    MAX_SEED,
    PLAN_FORMATS,
    _cancellable,
    _emit,
    _fail,
    _guard,
    _load,
    _people,
    _say,
    _StdoutConsole,
    _write_plan,
    _writing_stdout,
    debug_option,
    err,
    main,
    output_option,
    plan_format,
    redact_option,
)
from matcher.engine.objectives import OBJECTIVES, PROPOSERS, Objective, Proposer
from matcher.engine.runner import EXIT_INTERNAL
from matcher.errors import Infeasible
from matcher.render.output import print_table, solution_csv, solution_json
from matcher.text import visible


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(PLAN_FORMATS),
    default=None,
    help="Output format (default: from -o's suffix, .json .csv .xlsx .html .txt; else table).",
)
@output_option
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
    help="Seconds for the whole solve (default: no limit).",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default="total",
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
    help="An earlier plan (JSON) to change as little as possible; the plan lists the changes.",
)
@debug_option
@_guard
def solve(
    instance: Path,
    fmt: str,
    output: Path | None,
    seed: int,
    time_limit: float | None,
    objective: str,
    proposer: str,
    timings: bool,
    previous: Path | None,
    debug: bool,
    redact: bool,
) -> None:
    """Solve INSTANCE (JSON or XLSX workbook): pair, place and group, then verify the plan."""
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.engine.replan import load_previous
    from matcher.engine.solve import solve as run_solve
    from matcher.verification.verify import verify

    fmt = plan_format(fmt, output)
    data = _load(instance)
    if not any(p.active for p in data.participants):
        _say(f"{visible(instance)}: no active participants; the plan is empty", prefix="warning: ")
    before = load_previous(previous) if previous is not None else None
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
            ),
            show_progress=err.is_terminal,
        )
    except Infeasible as exc:
        exc.source = str(instance)
        raise
    report = verify(data, solution, previous=before)
    if not report.ok:
        _fail(
            f"{visible(instance)}: the plan failed verification (a bug):\n{report}", EXIT_INTERNAL
        )
    if fmt == "json":
        _emit(solution_json(solution), output, [instance])
    elif fmt == "csv":
        _emit(solution_csv(solution), output, [instance])
    elif fmt in ("xlsx", "html"):
        _write_plan(fmt, data, solution, output, [instance], redact=redact)
    elif output is not None:
        console = Console(record=True, width=140, file=io.StringIO())
        print_table(solution, console, _people(data, solution, redact))
        _emit(console.export_text(), output, [instance])
    else:
        with _writing_stdout():
            print_table(solution, _StdoutConsole(), _people(data, solution, redact))
