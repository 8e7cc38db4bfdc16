"""Commands that turn files into files: `import` (spreadsheets to an instance), `template`
(the intake workbook) and `report` (a plan as HTML or XLSX)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click

from matcher.cli.group import (
    OutputPath,
    _emit,
    _guard,
    _load,
    _warn_all,
    _write_plan,
    debug_option,
    err,
    main,
    output_option,
    plan_format,
    redact_option,
)
from matcher.errors import InvalidInstance, Problem
from matcher.files import write_atomic
from matcher.text import visible


@main.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--cohorts",
    "cohorts_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Cohorts CSV (when SOURCE is a participants CSV).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rules CSV of key,value rows (when SOURCE is a participants CSV).",
)
@click.option(
    "--mapping",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file mapping a form export's headers (and sheet names) onto the template's.",
)
@click.option(
    "-o",
    "--output",
    type=OutputPath(),
    required=True,
    help="Instance JSON to write (atomically; nothing is written when there is a problem).",
)
@debug_option
@_guard
def import_(
    source: Path,
    cohorts_file: Path | None,
    rules_file: Path | None,
    mapping: Path | None,
    output: Path,
    debug: bool,
) -> None:
    """Turn a workbook (sheets Participants, Cohorts, optional Rules, Locks, Forbidden pairs)
    or a participants CSV with --cohorts into an instance JSON file.

    Every problem is listed with its sheet, row and column (exit 3); names and other cell
    text are never repeated in messages.
    """
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.intake.spelling import near_duplicates
    from matcher.intake.spreadsheet import is_workbook, read_csv_files, read_workbook
    from matcher.intake.spreadsheet import load_mapping as read_mapping
    from matcher.jsonio import read_bytes

    if output.suffix.lower() != ".json":
        raise click.UsageError(f"-o {output}: the instance is written as JSON; name it .json")
    maps = read_mapping(mapping) if mapping is not None else None
    notes: list[str] = []
    if source.suffix.lower() in (".csv", ".tsv", ".txt"):
        if cohorts_file is None:
            raise click.UsageError(
                "a participants CSV needs --cohorts COHORTS.csv (or use a workbook: "
                "`matcher template -o intake.xlsx`)"
            )
        data = read_csv_files(source, cohorts_file, mapping=maps, rules=rules_file, warnings=notes)
    else:
        raw = read_bytes(source, what="an intake workbook")  # once: a pipe works too
        if not is_workbook(source, raw):
            raise click.UsageError(
                f"{visible(source)}: give an .xlsx workbook or a participants .csv (old .xls: "
                "save as .xlsx)"
            )
        if cohorts_file or rules_file:
            raise click.UsageError("--cohorts and --rules are for CSV input; a workbook has sheets")
        data = read_workbook(source, mapping=maps, warnings=notes, raw=raw)
    from matcher.contract.instance import Instance

    instance = Instance.model_validate(data)
    notes.extend(str(near) for near in near_duplicates(instance, notes=notes))
    _warn_all(notes)
    inputs = [p for p in (source, cohorts_file, rules_file, mapping) if p is not None]
    _emit(json.dumps(data, indent=1, ensure_ascii=False) + "\n", output, inputs)
    lone = sum(p.partner is None for p in instance.participants)
    err.print(
        f"{len(instance.participants)} participants ({lone} applied alone), "
        f"{len(instance.cohorts)} cohorts",
        markup=False,
    )


@main.command()
@click.option(
    "-o",
    "--output",
    type=OutputPath(),
    required=True,
    help="Workbook to write (.xlsx).",
)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    default=None,
    help="Fill the workbook from this instance (JSON or workbook) instead of an example row.",
)
@debug_option
@_guard
def template(output: Path, source: Path | None, debug: bool) -> None:
    """Write an intake workbook to fill in: sheets, headers, an example row, drop-down lists
    and a Notes sheet explaining every column."""
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.intake.template import build_workbook
    from matcher.render.workbook import fixed_zip

    if output.suffix.lower() != ".xlsx":
        raise click.UsageError(f"-o {output}: name the workbook .xlsx")
    data = None
    if source is not None:
        data = _load(source).model_dump(mode="json", exclude_unset=True)
    buf = io.BytesIO()
    build_workbook(data).save(buf)
    write_atomic(output, fixed_zip(buf.getvalue()), protect=[source] if source else [])
    err.print(f"wrote {output}", markup=False)


@main.command()
@click.argument("plan", type=click.Path(path_type=Path))
@click.argument("instance", type=click.Path(path_type=Path))
@output_option
@redact_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "xlsx"]),
    default=None,
    help="Report format (default: from -o's suffix; html without -o).",
)
@debug_option
@_guard
def report(
    plan: Path,
    instance: Path,
    output: Path | None,
    redact: bool,
    fmt: str | None,
    debug: bool,
) -> None:
    """Write the report of PLAN (a JSON plan from `matcher solve`) for INSTANCE: a
    self-contained HTML page (or the XLSX workbook) for the programme team."""
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.contract.plan_file import instance_problems, load_plan
    from matcher.text import shown_id

    chosen = plan_format(fmt, output) if output is not None else (fmt or "html")
    if chosen not in ("html", "xlsx"):
        raise click.UsageError(f"-o {output}: a report is .html or .xlsx")
    data = _load(instance)
    solution = load_plan(plan)  # as strictly as an instance file: exit 3 naming the problem
    if solution.instance != data.name:
        raise InvalidInstance(
            str(plan),
            [Problem("$", f"this plan is for instance {shown_id(solution.instance)}, not "
                          f"{shown_id(data.name)}")],
        )  # fmt: skip
    problems = instance_problems(
        solution, {p.id for p in data.participants}, {c.id for c in data.cohorts}
    )
    if problems:
        raise InvalidInstance(str(plan), problems)
    _write_plan(chosen, data, solution, output, [plan, instance], redact=redact)
