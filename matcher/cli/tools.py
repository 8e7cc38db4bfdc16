"""Commands for analysts: `generate` (synthetic instances) and `bench` (benchmark runs)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

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
from matcher.engine.runner import EXIT_INTERNAL, EXIT_INVALID


@main.command(short_help="Write a synthetic intake (seeded) for trials and benchmarks.")
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
    """Write a seeded synthetic instance (its distributions: the docstring of the module
    matcher.tools.generate)."""
    from matcher.intake.json_file import parse_instance  # lazy: pydantic; not for --help
    from matcher.tools.generate import generate_instance  # lazy: numpy, for generate only

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


@main.command(short_help="Benchmark solvers and objectives on intakes (quality and time).")
@click.argument("instances", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--study",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A study file (TOML): intakes x named variants (rules, weights, proposer, time "
    "limit, objective) x seeds; instead of INSTANCE... (docs/bench.md).",
)
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
    default=None,
    help="Run seeds 0..N-1 (default 3; with --study, overrides the file's).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Each run's time limit (a run with no plan in time is recorded as timeout; with "
    "--study, for variants that set none).",
)
@click.option(
    "--rescore-with",
    default=None,
    metavar="VARIANT",
    help="Re-score every plan under one weighting: 'default' (the intake's own weights) or a "
    "study variant's name, so that variants with other weights compare.",
)
@click.option(
    "--group-by",
    "group_by",
    multiple=True,
    metavar="FIELD",
    help="Also report groups by this participant field (repeat; role, organisation type and "
    "local system always), e.g. organisation, interests, applied.",
)
@click.option(
    "--min-group",
    type=click.IntRange(min=0),
    default=None,
    help="Groups with fewer people are suppressed: empty figures, suppressed=true (default 5).",
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
    help="Dask scheduler address (e.g. tcp://host:8786); without it, a local Dask cluster on "
    "127.0.0.1 (its dashboard link is printed).",
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
    "--groups-output",
    type=OutputPath(),
    default=None,
    help="Also write one row per run x group field x group value (.csv or .json).",
)
@click.option(
    "--comparisons-output",
    type=OutputPath(),
    default=None,
    help="Also write one row per run x measure against the baseline run (.csv or .json).",
)
@click.option(
    "--report",
    "report_output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write an HTML report (.html): runs, comparisons against the baseline, groups, "
    "variants, quality over time, cohorts.",
)
@debug_option
@_guard
def bench(
    instances: tuple[Path, ...],
    study: Path | None,
    objectives: tuple[str, ...],
    seeds: int | None,
    time_limit: float | None,
    rescore_with: str | None,
    group_by: tuple[str, ...],
    min_group: int | None,
    jobs: int | None,
    executor: str,
    scheduler: str | None,
    output: Path | None,
    fmt: str | None,
    cohorts_output: Path | None,
    groups_output: Path | None,
    comparisons_output: Path | None,
    debug: bool,
    report_output: Path | None = None,
) -> None:
    """Run INSTANCE... x objectives x seeds (or a --study file); judge every run, compare it
    with the baseline, and break outcomes down by group.

    Every plan is verified; a run that fails verification, or fails with a bug, is shown in
    red and makes the command exit 1 (after writing the outputs). A run with no plan in its
    time limit, or an infeasible variant, is recorded with its status and the others go on.
    Columns and units: docs/bench.md.
    """
    from rich.progress import (  # lazy: for bench only
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from matcher.engine.metrics import GROUP_FIELDS, MIN_GROUP  # lazy: numpy, for bench only
    from matcher.tools.bench import (  # lazy: for bench only
        COHORT_COLUMNS,
        COMPARISON_COLUMNS,
        FAILED,
        GROUP_COLUMNS,
        RUN_COLUMNS,
        BenchProgress,
        BenchResult,
        ExecutorUnavailable,
        StudyError,
        bench_tables,
        load_study,
        make_tasks,
        rows_csv,
        run_tasks,
    )

    def file_format(path: Path, given: str | None, option: str) -> str:
        if given:
            return given
        suffix = path.suffix.lower().lstrip(".")
        if suffix in ("csv", "json"):
            return suffix
        raise click.UsageError(f"{option} {path}: name it .csv or .json, or pass --format")

    extra_outputs = {
        "--cohorts-output": (cohorts_output, COHORT_COLUMNS, "cohorts"),
        "--groups-output": (groups_output, GROUP_COLUMNS, "groups"),
        "--comparisons-output": (comparisons_output, COMPARISON_COLUMNS, "comparisons"),
    }
    out_fmt = file_format(output, fmt, "-o") if output else None
    formats = {
        opt: file_format(path, None, opt)
        for opt, (path, _, _) in extra_outputs.items()
        if path is not None
    }
    named = [p.resolve() for p in (output, *(v[0] for v in extra_outputs.values())) if p]
    if len(set(named)) < len(named):
        raise click.UsageError("two output options name the same file")
    if report_output is not None and report_output.suffix.lower() not in (".html", ".htm"):
        raise click.UsageError(f"--report {report_output}: name the report .html")
    if scheduler and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    if study is not None and (instances or objectives):
        raise click.UsageError(
            "give either INSTANCE... (with --objective) or --study FILE: a study names its "
            "intakes and each variant's objective"
        )
    if study is None and not instances:
        raise click.UsageError("give INSTANCE... to benchmark, or --study FILE")
    fields = tuple(dict.fromkeys((*GROUP_FIELDS, *group_by)))
    threshold = MIN_GROUP if min_group is None else min_group
    if study is not None:
        try:
            plan = load_study(study, time_limit=time_limit)
            if seeds is not None:
                plan = replace(plan, seeds=list(range(seeds)))
            if group_by:
                plan = replace(plan, group_by=tuple(dict.fromkeys((*plan.group_by, *group_by))))
            if min_group is not None:
                plan = replace(plan, min_group=min_group)
            tasks = plan.tasks(rescore_with=rescore_with)
        except StudyError as exc:
            _fail(str(exc), EXIT_INVALID)
        base = next(v for v in plan.variants if v.name == plan.baseline)
        baseline: tuple[str, str] | None = (base.name, base.objective)
        inputs = [study, *(Path(i.path) for i in plan.intakes)]
    else:
        if rescore_with not in (None, "default"):
            raise click.UsageError(
                "--rescore-with without --study takes only 'default' (the intakes' own weights)"
            )
        tasks = make_tasks(
            [str(p) for p in instances],
            objectives or OBJECTIVES,
            3 if seeds is None else seeds,
            time_limit=time_limit,
            group_by=fields,
            min_group=threshold,
            rescore=("default", None) if rescore_with else None,
        )
        baseline = None
        inputs = list(instances)

    def dashboard(link: str) -> None:
        err.print(f"Dask dashboard: {link}", soft_wrap=True)

    def run(progress: Callable[[BenchProgress], None] | None) -> BenchResult:
        try:
            return run_tasks(
                tasks,
                baseline=baseline,
                executor=executor,
                scheduler=scheduler,
                jobs=jobs,
                progress=progress,
                on_dashboard=dashboard,
            )
        except ExecutorUnavailable as exc:
            raise click.UsageError(str(exc)) from exc
        except ValueError as exc:  # a bad group field, proposer or time limit
            raise click.UsageError(str(exc)) from exc

    if sys.stderr.isatty():
        columns = (
            TextColumn("benchmark runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[running]} running, {task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=err, transient=True) as bar:
            job = bar.add_task("runs", total=len(tasks), running=0, failed=0)

            def show(state: BenchProgress) -> None:
                bar.update(
                    job,
                    completed=state.done,
                    total=state.total,
                    running=state.running,
                    failed=state.failed,
                )

            result = run(show)
    else:
        result = run(None)

    if output is not None:
        if out_fmt == "json":
            text = json.dumps(result.to_json(), indent=1) + "\n"
        else:
            text = rows_csv(result.runs, RUN_COLUMNS)
        _emit(text, output, inputs)
    for opt, (path, columns_, table) in extra_outputs.items():
        if path is None:
            continue
        rows = result.comparisons() if table == "comparisons" else getattr(result, table)
        if formats[opt] == "json":
            text = json.dumps(rows, indent=1) + "\n"
        else:
            text = rows_csv(rows, columns_)
        _emit(text, path, inputs)
    if report_output is not None:
        from matcher.render.report import bench_report  # lazy: jinja2, matplotlib: HTML only

        _emit(bench_report(result), report_output, inputs)

    # Off a terminal (a pipe, a file) the tables are not squeezed into 80 columns.
    # (COLUMNS, when set, is the width either way.)
    width = os.environ.get("COLUMNS", "")
    console = Console(width=int(width) if width.isdigit() else None if sys.stdout.isatty() else 200)
    for table_ in bench_tables(result):
        console.print(table_)
    others = [r for r in result.failed if r["status"] != FAILED]
    if others:
        err.print(
            f"{len(others)} run(s) without a plan (timeout, infeasible or invalid variant): "
            "recorded with their status; see the table above",
            soft_wrap=True,
        )
    bad = [
        r
        for r in result.runs
        if r["status"] == FAILED or (r["status"] in ("optimal", "feasible") and not r["verified"])
    ]
    if bad:
        listed = ", ".join(
            f"{r['file']} {r['variant']} {r['objective']} seed {r['seed']}" for r in bad
        )
        _fail(
            f"{len(bad)} run(s) failed or failed verification (a bug in matcher): {listed}; "
            "re-run `matcher solve FILE --objective OBJ --seed N` on one of them to see why",
            EXIT_INTERNAL,
        )
