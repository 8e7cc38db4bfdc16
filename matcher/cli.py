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

from matcher.errors import Infeasible, InvalidParameter, MatcherError
from matcher.output import (
    OutputError,
    print_table,
    solution_csv,
    solution_json,
    write_atomic,
)
from matcher.schema import Instance
from matcher.solution import Solution
from matcher.validation import InstanceError, load_instance

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
        except Infeasible as exc:
            err.print(
                f"error: {exc.source or 'instance'}: no plan meets the hard rules: {exc}",
                markup=False,
                soft_wrap=True,
            )
            sys.exit(EXIT_INFEASIBLE)
        except MatcherError as exc:
            if debug and exc.exit_code == EXIT_INTERNAL:
                raise
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
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
output_option = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of standard output.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="matcher")
def main() -> None:
    """Form collaborative pairs, place them in cohorts and action-learning sets."""


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@output_option
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
) -> None:
    """Solve INSTANCE: pair, place and group, then verify the plan."""
    from matcher.pipeline import solve as run_solve
    from matcher.replan import load_previous
    from matcher.verify import verify

    data = load_instance(instance)
    try:
        solution = run_solve(
            data,
            seed=seed,
            time_limit=time_limit,
            objective=objective,
            proposer=proposer,
            deterministic=not timings,
            previous=previous,
        )
    except Infeasible as exc:
        exc.source = str(instance)
        raise
    report = verify(data, solution, previous=load_previous(previous) if previous else None)
    if not report.ok:
        _fail(f"{instance}: the plan failed verification (a bug):\n{report}", EXIT_INTERNAL)
    if fmt == "json":
        _emit(solution_json(solution), output, [instance])
    elif fmt == "csv":
        _emit(solution_csv(solution), output, [instance])
    elif output is not None:
        console = Console(record=True, width=140, file=io.StringIO())
        print_table(solution, console)
        _emit(console.export_text(), output, [instance])
    else:
        print_table(solution, Console())


@main.command()
@click.argument("instance", type=click.Path(path_type=Path))
@debug_option
@_guard
def validate(instance: Path, debug: bool) -> None:
    """Check INSTANCE and list every problem (exit 3 if any)."""
    data = load_instance(instance)
    lone = sum(p.partner is None for p in data.participants)
    click.echo(
        f"{instance}: valid ({len(data.participants)} participants, {lone} applied alone, "
        f"{len(data.cohorts)} cohorts)"
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
    from matcher.diff import plan_changes, score_change
    from matcher.replan import load_previous

    before, after = load_previous(old), load_previous(new)
    data = load_instance(instance_path) if instance_path is not None else None
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
    lines = [
        f"{old} -> {new}",
        f"pairs kept {c.kept}, dissolved {c.dissolved}, new {c.formed}; moved cohort "
        f"{c.moved_cohort}, moved set {c.moved_set}; newly unmatched {c.newly_unmatched}, newly "
        f"wait-listed {c.newly_waitlisted}",
        f"total score {scores.total_before:.3f} -> {scores.total_after:.3f} "
        f"({scores.total_after - scores.total_before:+.3f})",
    ]
    for item in changes.items:
        where = (
            f" {item.before or '-'} -> {item.after or '-'}"
            if item.before is not None or item.after is not None
            else ""
        )
        who = "+".join(item.participants)
        lines.append(f"  {item.kind:<20} {item.pair or '':<9} {who:<14}{where}: {item.reason}")
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
    from matcher.explain import why, why_not
    from matcher.replan import load_previous

    if (why_not_ids is None) == (why_id is None):
        raise click.UsageError("give exactly one of --why-not A B and --why A")
    data = load_instance(instance)
    base = load_previous(plan) if plan is not None else None
    try:
        answer = (
            why_not(data, *why_not_ids, base, seed=seed)
            if why_not_ids is not None
            else why(data, why_id or "", base, seed=seed)
        )
    except InvalidParameter as exc:
        raise click.UsageError(str(exc)) from None
    if fmt == "json":
        click.echo(answer.model_dump_json(indent=2))
    else:
        click.echo(answer.summary())


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
    from matcher.scoring import CRITERIA, compatibility  # numpy: only for this command

    data = load_instance(instance)
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


# matcher.bench loads only for `matcher bench` (fast --help); tests check these names equal
# its registries (bench.OBJECTIVES, bench.EXECUTORS).
BENCH_OBJECTIVES = ("total", "fair", "stable")
BENCH_EXECUTORS = ("local", "dask")


@main.command()
@click.argument("instances", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--objective",
    "objectives",
    type=click.Choice(BENCH_OBJECTIVES),
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
    type=click.Choice(BENCH_EXECUTORS),
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
) -> None:
    """Run INSTANCE... × objectives × seeds; compare intakes and the cohorts within each.

    Every plan is verified; a run that fails verification is shown in red and makes the
    command exit 1 (after writing the outputs).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from matcher.bench import (
        COHORT_COLUMNS,
        OBJECTIVES,
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
