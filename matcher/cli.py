"""The `matcher` command line.

Exit codes (DESIGN.md §5): 0 solved; 1 internal error; 2 usage error; 3 invalid input;
4 proven infeasible; 5 nothing found within the time limit.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from matcher.errors import MatcherError
from matcher.output import (
    OutputError,
    print_table,
    solution_csv,
    solution_json,
    write_atomic,
)
from matcher.plan_view import PlanView, write_bytes_atomic
from matcher.schema import Instance
from matcher.scoring import CRITERIA, compatibility
from matcher.solution import Solution
from matcher.validation import InstanceError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INVALID, EXIT_INFEASIBLE, EXIT_TIMEOUT = range(6)

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    sys.exit(code)


def _guard(fn: F) -> F:
    """Turn known errors into messages and exit codes; tracebacks only with --debug."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            return fn(*args, **kwargs)
        except InstanceError as exc:
            err.print(str(exc), markup=False, soft_wrap=True)
            err.print("Fix the listed fields and run `matcher validate` again.", markup=False)
            sys.exit(EXIT_INVALID)
        except OutputError as exc:
            _fail(str(exc), EXIT_USAGE)
        except MatcherError as exc:  # spreadsheet import problems (InvalidInstance), ...
            err.print(str(exc), markup=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except (SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # the last resort: say so, keep the traceback for --debug
            if debug:
                raise
            _fail(
                f"internal error ({type(exc).__name__}): {exc}. This is a bug in matcher; "
                "re-run with --debug for the traceback and report it.",
                EXIT_INTERNAL,
            )

    return wrapper  # type: ignore[return-value]


def _emit(text: str, output: Path | None, inputs: list[Path]) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text, protect=inputs)
        err.print(f"wrote {output}", markup=False)


debug_option = click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
redact_option = click.option(
    "--redact", is_flag=True, help="Leave names and emails out of the table, XLSX and HTML."
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of standard output.",
)

#: Plan formats, and the -o suffixes that pick them.
PLAN_FORMATS = ["table", "json", "csv", "xlsx", "html"]
PLAN_SUFFIXES = {
    ".json": "json",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
    ".txt": "table",
}


def plan_format(given: str | None, output: Path | None) -> str:
    """The format of a plan: --format, else -o's suffix, else the table. An unknown suffix, or
    one that contradicts --format, is a usage error (never a silent text table in plan.xlsx)."""
    inferred = PLAN_SUFFIXES.get(output.suffix.lower()) if output is not None else None
    if output is not None and inferred is None:
        raise click.UsageError(
            f"-o {output}: unknown suffix {output.suffix or '(none)'!r}; name the file "
            f"{', '.join(PLAN_SUFFIXES)} or pass --format"
        )
    if given and inferred and given != inferred:
        raise click.UsageError(f"-o {output} is a .{inferred} name but --format is {given}")
    fmt = given or inferred or "table"
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs -o FILE.xlsx (a workbook is not text)")
    return fmt


def _load(path: Path) -> Instance:
    """An instance from JSON or a workbook; near-miss spellings are warned about on stderr."""
    from matcher.normalise import near_duplicates
    from matcher.spreadsheet import load_any

    def warn(text: str) -> None:
        err.print(f"warning: {text}", markup=False, soft_wrap=True)

    data = load_any(path, warn=warn)
    for near in near_duplicates(data):
        warn(str(near))
    return data


def _people(data: Instance, solution: Solution, redact: bool) -> PlanView:
    return PlanView(data, solution, redact=redact)


def _write_plan(
    fmt: str,
    data: Instance,
    solution: Solution,
    output: Path | None,
    inputs: list[Path],
    *,
    redact: bool,
) -> None:
    """The people-facing plan: an XLSX workbook or the HTML report."""
    view = PlanView(data, solution, redact=redact)
    if fmt == "xlsx":
        from matcher.xlsx_out import plan_workbook

        assert output is not None  # plan_format requires it
        write_bytes_atomic(output, plan_workbook(view), protect=inputs)
        err.print(f"wrote {output}", markup=False)
    else:
        from matcher.report import plan_report

        _emit(plan_report(view), output, inputs)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="matcher")
def main() -> None:
    """Form collaborative pairs, place them in cohorts and action-learning sets."""


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
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0.01),
    default=None,
    help="Seconds for the whole solve (default: no limit).",
)
@click.option(
    "--objective",
    type=click.Choice(["total", "fair", "stable"]),
    default="total",
    show_default=True,
    help="Pairing objective: total score, fair (best worst pair first), or stable.",
)
@click.option(
    "--proposer",
    type=click.Choice(["patient_leader", "professional"]),
    default="patient_leader",
    show_default=True,
    help="Proposing side for --objective stable.",
)
@click.option(
    "--timings",
    is_flag=True,
    help="Record wall time in the output (makes JSON differ between runs).",
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
    debug: bool,
    redact: bool,
) -> None:
    """Solve INSTANCE (JSON or XLSX workbook): pair, place and group, then verify the plan."""
    from matcher.pipeline import solve as run_solve
    from matcher.verify import verify

    fmt = plan_format(fmt, output)
    data = _load(instance)
    solution = run_solve(
        data,
        seed=seed,
        time_limit=time_limit,
        objective=objective,
        proposer=proposer,
        deterministic=not timings,
    )
    report = verify(data, solution)
    if not report.ok:
        _fail(f"{instance}: the plan failed verification (a bug):\n{report}", EXIT_INTERNAL)
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
        print_table(solution, Console(), _people(data, solution, redact))
    _exit_for(solution, instance)


def _exit_for(solution: Solution, instance: Path) -> None:
    if solution.status == "infeasible":
        _fail(
            f"{instance}: no plan meets the hard rules. {'; '.join(solution.run.notes)}",
            EXIT_INFEASIBLE,
        )
    if solution.status == "timeout":
        _fail(f"{instance}: nothing found within the time limit; raise --time-limit.", EXIT_TIMEOUT)


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@debug_option
@_guard
def validate(instance: Path, debug: bool) -> None:
    """Check INSTANCE (JSON or XLSX workbook) and list every problem (exit 3 if any)."""
    data = _load(instance)
    lone = sum(p.partner is None for p in data.participants)
    click.echo(
        f"{instance}: valid ({len(data.participants)} participants, {lone} applied alone, "
        f"{len(data.cohorts)} cohorts)"
    )


def instance_json_schema() -> dict[str, Any]:
    return Instance.model_json_schema()


def solution_json_schema() -> dict[str, Any]:
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
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")  # quotes IDs holding commas or quotes
        out.writerow(["patient_leader", "professional", "score", "forbidden", *CRITERIA])
        for i, a in enumerate(comp.row_ids):
            for j, b in enumerate(comp.col_ids):
                out.writerow(
                    [
                        a,
                        b,
                        f"{comp.scores[i, j]:.6f}",
                        str(bool(comp.forbidden[i, j])).lower(),
                        *(f"{comp.breakdown[k][i, j]:.6f}" for k in CRITERIA),
                    ]
                )
        text = buf.getvalue()
    _emit(text, output, [instance])


@main.command()
@click.option(
    "--participants",
    "-n",
    type=click.IntRange(2, 20_000),
    required=True,
    help="Number of participants (2-20,000).",
)
@click.option(
    "--cohorts",
    type=click.IntRange(1, 50),
    default=None,
    help="Number of cohorts (default: participants // 50, 1-50).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--preformed-share",
    type=click.FloatRange(0, 1),
    default=0.6,
    show_default=True,
    help="Share of participants who arrive as pre-formed pairs.",
)
@click.option(
    "--lone-patient-share",
    type=click.FloatRange(0.01, 0.99),
    default=0.6,
    show_default=True,
    help="Share of lone applicants who are patient leaders.",
)
@click.option("--name", default=None, help="Instance name (default synthetic-n<N>-s<SEED>).")
@output_option
@debug_option
@_guard
def generate(
    participants: int,
    cohorts: int | None,
    seed: int,
    preformed_share: float,
    lone_patient_share: float,
    name: str | None,
    output: Path | None,
    debug: bool,
) -> None:
    """Write a seeded synthetic instance (distributions documented in matcher/generate.py)."""
    from matcher.generate import generate_instance
    from matcher.validation import parse_instance

    data = generate_instance(
        participants,
        cohorts=cohorts,
        seed=seed,
        preformed_share=preformed_share,
        lone_patient_share=lone_patient_share,
        name=name,
    )
    parse_instance(data, source="generated instance")  # never write an invalid file
    _emit(json.dumps(data, indent=1) + "\n", output, [])


from matcher.bench import EXECUTORS, OBJECTIVES  # noqa: E402  (kept with the bench command)


@main.command()
@click.argument("instances", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--objective",
    "objectives",
    type=click.Choice(OBJECTIVES),
    multiple=True,
    help="Pairing objective to run (repeat for several; default: all three).",
)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Run seeds 0..N-1.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Runs in parallel (default: the number of CPU cores; each run uses one core).",
)
@click.option(
    "--executor",
    type=click.Choice(list(EXECUTORS)),
    default="local",
    show_default=True,
    help="Where runs execute: local processes, or a Dask cluster (pip install '.[dask]').",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDR",
    help="Dask scheduler address (e.g. tcp://host:8786); without it, a local Dask cluster.",
)
@output_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default=None,
    help="Format of -o (default: from its extension, .csv or .json).",
)
@click.option(
    "--cohorts-output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write one row per cohort of each run (.csv or .json).",
)
@click.option(
    "--report",
    "report_output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write an HTML report (.html): objectives and seeds side by side, quality per "
    "cohort, price of fairness and stability.",
)
@debug_option
@_guard
def bench(
    instances: tuple[Path, ...],
    objectives: tuple[str, ...],
    seeds: int,
    jobs: int | None,
    executor: str,
    scheduler: str | None,
    output: Path | None,
    fmt: str | None,
    cohorts_output: Path | None,
    debug: bool,
    report_output: Path | None = None,
) -> None:
    """Run INSTANCE... × objectives × seeds; compare intakes and the cohorts within each.

    Every plan is verified; a run that fails verification is shown in red and makes the
    command exit 1 (after writing the outputs).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from matcher.bench import (
        COHORT_COLUMNS,
        RUN_COLUMNS,
        ExecutorUnavailable,
        bench_tables,
        rows_csv,
        run_bench,
    )

    def file_format(path: Path, given: str | None, option: str) -> str:
        if given:
            return given
        suffix = path.suffix.lower().lstrip(".")
        if suffix in ("csv", "json"):
            return suffix
        raise click.UsageError(f"{option} {path}: name it .csv or .json, or pass --format")

    out_fmt = file_format(output, fmt, "-o") if output else None
    cohorts_fmt = file_format(cohorts_output, None, "--cohorts-output") if cohorts_output else None
    if output and cohorts_output and output.resolve() == cohorts_output.resolve():
        raise click.UsageError("-o and --cohorts-output name the same file")
    if report_output is not None and report_output.suffix.lower() not in (".html", ".htm"):
        raise click.UsageError(f"--report {report_output}: name the report .html")
    if scheduler and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    inputs = list(instances)

    def run(progress: Callable[[int, int], None] | None) -> Any:
        try:
            return run_bench(
                inputs,
                objectives or OBJECTIVES,
                seeds,
                executor=executor,
                scheduler=scheduler,
                jobs=jobs,
                progress=progress,
            )
        except ExecutorUnavailable as exc:
            raise click.UsageError(str(exc)) from exc

    if sys.stderr.isatty():
        columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task("benchmark runs", total=None)
            result = run(lambda done, total: bar.update(task, completed=done, total=total))
    else:
        result = run(None)

    if output is not None:
        if out_fmt == "json":
            text = json.dumps(result.to_json(), indent=1) + "\n"
        else:
            text = rows_csv(result.runs, RUN_COLUMNS)
        _emit(text, output, inputs)
    if cohorts_output is not None:
        if cohorts_fmt == "json":
            text = json.dumps(result.cohorts, indent=1) + "\n"
        else:
            text = rows_csv(result.cohorts, COHORT_COLUMNS)
        _emit(text, cohorts_output, inputs)
    if report_output is not None:
        from matcher.report import bench_report

        _emit(bench_report(result), report_output, inputs)

    # Off a terminal (a pipe, a file) the tables are not squeezed into 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    for table in bench_tables(result):
        console.print(table)
    bad = [r for r in result.runs if not r["verified"]]
    if bad:
        listed = ", ".join(f"{r['file']} {r['objective']} seed {r['seed']}" for r in bad)
        _fail(
            f"{len(bad)} run(s) failed verification (a bug in matcher): {listed}; re-run "
            "`matcher solve FILE --objective OBJ --seed N` on one of them to see the violations",
            EXIT_INTERNAL,
        )


# --------------------------------------------------------------------------- spreadsheets


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
    type=click.Path(dir_okay=False, path_type=Path),
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
    from matcher.normalise import near_duplicates
    from matcher.spreadsheet import is_workbook, read_csv_files, read_workbook
    from matcher.spreadsheet import load_mapping as read_mapping

    if output.suffix.lower() != ".json":
        raise click.UsageError(f"-o {output}: the instance is written as JSON; name it .json")
    maps = read_mapping(mapping) if mapping is not None else None
    notes: list[str] = []
    if is_workbook(source):
        if cohorts_file or rules_file:
            raise click.UsageError("--cohorts and --rules are for CSV input; a workbook has sheets")
        data = read_workbook(source, mapping=maps, warnings=notes)
    elif source.suffix.lower() in (".csv", ".tsv", ".txt"):
        if cohorts_file is None:
            raise click.UsageError(
                "a participants CSV needs --cohorts COHORTS.csv (or use a workbook: "
                "`matcher template -o intake.xlsx`)"
            )
        data = read_csv_files(source, cohorts_file, mapping=maps, rules=rules_file, warnings=notes)
    else:
        raise click.UsageError(
            f"{source}: give an .xlsx workbook or a participants .csv (old .xls: save as .xlsx)"
        )
    instance = Instance.model_validate(data)
    for note in notes:
        err.print(f"warning: {note}", markup=False, soft_wrap=True)
    for near in near_duplicates(instance):
        err.print(f"warning: {near}", markup=False, soft_wrap=True)
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
    type=click.Path(dir_okay=False, path_type=Path),
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
    import io as _io

    from matcher.template import build_workbook
    from matcher.xlsx_out import fixed_zip

    if output.suffix.lower() != ".xlsx":
        raise click.UsageError(f"-o {output}: name the workbook .xlsx")
    data = None
    if source is not None:
        data = _load(source).model_dump(mode="json", exclude_unset=True)
    buf = _io.BytesIO()
    build_workbook(data).save(buf)
    write_bytes_atomic(output, fixed_zip(buf.getvalue()), protect=[source] if source else [])
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
    from pydantic import ValidationError

    from matcher.errors import InvalidInstance, Problem

    chosen = plan_format(fmt, output) if output is not None else (fmt or "html")
    if chosen not in ("html", "xlsx"):
        raise click.UsageError(f"-o {output}: a report is .html or .xlsx")
    data = _load(instance)
    try:
        solution = Solution.model_validate_json(plan.read_bytes())
    except FileNotFoundError:
        raise InvalidInstance(str(plan), [Problem("$", "file not found")]) from None
    except ValidationError as exc:
        problems = [
            Problem(".".join(map(str, e["loc"])) or "$", e["msg"])
            for e in exc.errors(include_url=False)
        ]
        raise InvalidInstance(str(plan), problems) from None
    known = {p.id for p in data.participants}
    missing = sorted({x for p in solution.pairs for x in (p.patient_leader, p.partner)} - known)
    if missing or solution.instance != data.name:
        raise InvalidInstance(
            str(plan),
            [Problem("$", f"this plan is for instance {solution.instance!r}, not {data.name!r}"
                     + (f"; unknown participants: {', '.join(missing[:10])}" if missing else ""))],
        )  # fmt: skip
    _write_plan(chosen, data, solution, output, [plan, instance], redact=redact)
