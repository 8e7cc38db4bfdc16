"""Commands for analysts: `generate` (synthetic instances) and `bench` (benchmark runs)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from matcher.cli.group import (
    OutputPath,
    _emit,
    _fail,
    _guard,
    debug_option,
    err,
    main,
    output_option,
)
from matcher.engine.objectives import OBJECTIVES
from matcher.engine.runner import EXIT_INTERNAL


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
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from matcher.intake.json_file import parse_instance
    from matcher.tools.generate import generate_instance

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


# matcher.tools.bench loads only for `matcher bench` (fast --help); a test checks this equals its
# registry (bench.EXECUTORS).
BENCH_EXECUTORS = ("local", "dask")


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
    type=OutputPath(),
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
    # Loaded on use (start-up time): `matcher --help` and other commands skip it.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from matcher.tools.bench import (
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
        # Loaded on use (start-up time): `matcher --help` and other commands skip it.
        from matcher.render.report import bench_report

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
