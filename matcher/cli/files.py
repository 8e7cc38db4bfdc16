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
    _read_plan,
    _warn_all,
    _write_plan,
    check_order,
    debug_option,
    err,
    force_option,
    main,
    plan_fits,
    plan_format,
    redact_option,
    refuse_other_intake,
)
from matcher.files import write_atomic
from matcher.text import visible
from matcher.words import count


@main.command("import", short_help="Turn a workbook or CSV files into an intake JSON file.")
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
    from matcher.intake.spelling import near_duplicates  # lazy: not for --help
    from matcher.intake.spreadsheet import (  # lazy: not for --help
        is_workbook,
        read_csv_files,
        read_workbook,
    )
    from matcher.intake.spreadsheet import load_mapping as read_mapping  # lazy: not for --help
    from matcher.jsonio import read_bytes  # lazy: not for --help

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
    from matcher.contract.instance import Instance  # lazy: pydantic; not for --help

    instance = Instance.model_validate(data)
    notes.extend(str(near) for near in near_duplicates(instance, notes=notes))
    _warn_all(notes)
    inputs = [p for p in (source, cohorts_file, rules_file, mapping) if p is not None]
    _emit(json.dumps(data, indent=1, ensure_ascii=False) + "\n", output, inputs)
    lone = sum(p.partner is None for p in instance.participants if p.active)
    err.print(
        f"{count(len(instance.participants), 'participant')} ({lone} applied alone), "
        f"{count(len(instance.cohorts), 'cohort')}",
        markup=False,
    )


@main.command(short_help="Write a blank intake workbook to fill in (or one from an intake).")
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
    """Write an intake workbook to fill in: sheets, headers (required columns dark), an
    example row to overwrite or delete, drop-down lists and a Notes sheet explaining every
    column. The intake is named after the workbook's file unless the Rules sheet names it."""
    from matcher.intake.template import build_workbook  # lazy: openpyxl (~0.4 s)
    from matcher.render.workbook import fixed_zip  # lazy: openpyxl (~0.4 s)

    if output.suffix.lower() != ".xlsx":
        raise click.UsageError(f"-o {output}: name the workbook .xlsx")
    data = None
    if source is not None:
        data = _load(source).model_dump(mode="json", exclude_unset=True)
    buf = io.BytesIO()
    build_workbook(data).save(buf)
    write_atomic(output, fixed_zip(buf.getvalue()), protect=[source] if source else [])
    err.print(f"wrote {output}", markup=False)


@main.command(short_help="Write the report page (.html) or workbook (.xlsx) of a plan.")
@click.argument("instance", metavar="INTAKE", type=click.Path(path_type=Path))
@click.argument("plan", metavar="PLAN", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "outputs",
    type=OutputPath(),
    multiple=True,
    help="File to write (.html or .xlsx; atomically). Repeat for both.",
)
@redact_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "xlsx"]),
    default=None,
    help="Report format (default: from -o's suffix; html without -o).",
)
@force_option
@debug_option
@_guard
def report(
    instance: Path,
    plan: Path,
    outputs: tuple[Path, ...],
    redact: bool,
    fmt: str | None,
    force: bool,
    debug: bool,
) -> None:
    """Write the report of PLAN for INTAKE: a self-contained HTML page (or the XLSX
    workbook) for the programme team.

    INTAKE is the workbook or JSON the plan was made from; PLAN is the .json or .xlsx file
    written by `matcher solve`. A plan made from another intake, or from an older version of
    this one (someone has withdrawn since), is refused (exit 3) unless --force."""
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.

    if len(outputs) > 1 and fmt is not None:
        raise click.UsageError("--format applies to one -o file; with several, each file's "
                               "suffix gives its format")  # fmt: skip
    chosen = [plan_format(fmt, out) for out in outputs] or [fmt or "html"]
    for out, kind in zip(outputs or (None,), chosen, strict=True):
        if kind not in ("html", "xlsx"):
            raise click.UsageError(f"-o {out}: a report is .html or .xlsx")
    check_order("report", instance, plan)
    data = _load(instance)
    solution = _read_plan(plan)
    refuse_other_intake(plan, solution, instance, data, force=force)
    plan_fits(plan, solution, data)
    for out, kind in zip(outputs or (None,), chosen, strict=True):
        _write_plan(kind, data, solution, out, [plan, instance], redact=redact)
