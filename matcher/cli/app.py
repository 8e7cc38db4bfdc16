"""The `matcher` command line.

Exit codes (DESIGN.md §5): 0 solved; 1 internal error; 2 usage error; 3 invalid input;
4 proven infeasible; 5 nothing found within the time limit.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click
from rich.console import Console
from rich.text import Text

from matcher.engine.objectives import OBJECTIVES, PROPOSERS, Objective, Proposer
from matcher.engine.progress import ProgressCallback, ProgressEvent
from matcher.errors import (
    MAX_PROBLEMS_SHOWN,
    Infeasible,
    InvalidInstance,
    InvalidParameter,
    MatcherError,
)
from matcher.files import OutputError, check_destination, remove_pending, write_atomic
from matcher.render.output import csv_text, print_table, solution_csv, solution_json
from matcher.text import cut, visible, visible_lines

if TYPE_CHECKING:  # imported where used: `--help` never loads pydantic or the models
    from matcher.contract.instance import Instance
    from matcher.contract.solution import Solution
    from matcher.render.view import PlanView

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INVALID, EXIT_INFEASIBLE, EXIT_TIMEOUT = range(6)
#: Exit codes for the signals that end a run: 128 + the signal number, as shells report them.
EXIT_SIGNAL = {signal.SIGHUP: 129, signal.SIGINT: 130, signal.SIGTERM: 143}
#: Seconds a cancelled solve gets to return before the process ends without it.
CANCEL_GRACE_S = 0.8
#: Longest line of an error message (one problem); longer ones are cut with their length.
MAX_LINE = 300
#: Longest error message printed; the rest is cut with its length.
MAX_MESSAGE = 8_000
#: Largest --seed: CP-SAT takes a 32-bit seed.
MAX_SEED = 2**31 - 1

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
err = Console(stderr=True, highlight=False)


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived (raised in the main thread by the handler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_SIGNAL.get(signal.Signals(self.signum), 128 + self.signum)


def _say(message: str, *, prefix: str = "error: ") -> None:
    """Print a message on stderr with every control character shown escaped, never as markup;
    the program's own line breaks are kept and the whole is cut at MAX_MESSAGE characters."""
    body = visible_lines(cut(message, MAX_MESSAGE))
    text = Text(prefix, style="red") + Text(body) if prefix else Text(body)
    err.print(text, soft_wrap=True)


def _fail(message: str, code: int) -> NoReturn:
    _say(message)
    sys.exit(code)


def _invalid_message(exc: InvalidInstance) -> str:
    """The problems of an invalid file, at most MAX_PROBLEMS_SHOWN of them, each on one line of
    at most MAX_LINE characters, then the count of the rest."""
    n = len(exc.problems)
    lines = [f"{visible(exc.source)}: {n} problem{'s' if n != 1 else ''} found"]
    lines += [f"  - {visible(str(p), MAX_LINE)}" for p in exc.problems[:MAX_PROBLEMS_SHOWN]]
    if n > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {n - MAX_PROBLEMS_SHOWN:,} more")
    return "\n".join(lines)


def _quiet_stdout() -> None:
    """Point file descriptor 1 at /dev/null so the interpreter's final flush cannot fail."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@contextmanager
def _writing_stdout() -> Iterator[None]:
    """Writes to standard output: a write error (closed, /dev/full) is an OutputError; a reader
    that went away (`| head`) raises BrokenPipeError, which ends the run quietly."""
    if sys.stdout is None:
        raise OutputError("standard output is closed; write the result to a file with -o FILE")
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _quiet_stdout()
        raise OutputError(
            f"cannot write to standard output ({exc.strerror or exc}); nothing usable was "
            "written: use -o FILE"
        ) from None


def _stdout_usable() -> None:
    """Fail before any work when the result would go to a closed standard output."""
    if sys.stdout is None:
        raise OutputError("standard output is closed; write the result to a file with -o FILE")
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return  # not a real file (a test runner's buffer): nothing to check
    try:
        os.fstat(fd)
    except OSError:
        raise OutputError(
            "standard output is closed; write the result to a file with -o FILE"
        ) from None


#: Keyword arguments of commands that name output files (checked before the command runs).
_OUTPUT_PARAMS = ("output", "cohorts_output")


def _paths(value: Any) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, Path)]
    return []


def _preflight(kwargs: dict[str, Any]) -> None:
    """Check every output destination (and standard output) before any work starts."""
    inputs = [p for k, v in kwargs.items() if k not in _OUTPUT_PARAMS for p in _paths(v)]
    outputs = [kwargs[k] for k in _OUTPUT_PARAMS if kwargs.get(k) is not None]
    for out in outputs:
        check_destination(out, protect=inputs)
    if kwargs.get("output") is None:
        _stdout_usable()


#: The last exit signal received: a library that turns the Interrupted exception into
#: another one (an import guarded by `except Exception`) must not make Ctrl-C an internal error.
_received: list[int] = []


def _raise_interrupted(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise Interrupted(signum)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread while a command
    runs (outside the main thread, e.g. an embedding tool, the handlers are left alone)."""
    global _handlers_active
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in EXIT_SIGNAL}
    _handlers_active = True
    try:
        yield
    finally:
        _handlers_active = False
        for s, handler in previous.items():
            signal.signal(s, handler)


_handlers_active = False


def _reclaim_signals() -> None:
    """Install our handlers again. CP-SAT, unless told otherwise (``catch_sigint_signal``),
    puts its own SIGINT handler in place while it searches (it stops the search and carries
    on: a different plan, exit 0) and leaves SIG_DFL behind; the wait loop undoes that."""
    if _handlers_active and threading.current_thread() is threading.main_thread():
        for s in EXIT_SIGNAL:
            signal.signal(s, _raise_interrupted)


def _end_interrupted(exc: Interrupted) -> NoReturn:
    remove_pending()
    name = signal.Signals(exc.signum).name
    _say(f"interrupted ({name}); stopped, nothing written", prefix="")
    sys.exit(exc.exit_code)


#: A progress bar appears on a terminal once a solve has run this long (seconds).
PROGRESS_AFTER_S = 2.0


def _cancellable(work: Callable[[ProgressCallback], T], *, show_progress: bool = False) -> T:
    """Run ``work(progress)`` in a worker thread so that a signal stops it within a second.

    The main thread waits in short joins, so the signal handler runs at once; it then asks the
    solve to stop (the progress callback returns False), waits CANCEL_GRACE_S for it, and ends
    the process with ``os._exit`` after removing temporary files: a solve stuck in native code
    can never hang it, and nothing of the cancelled solve is written. With ``show_progress``
    (a terminal on stderr), a transient progress bar shows the stage once the solve has run
    ``PROGRESS_AFTER_S`` seconds."""
    stop = threading.Event()
    box: dict[str, Any] = {}
    latest: list[ProgressEvent] = []

    def progress(event: ProgressEvent) -> bool:
        latest[:] = [event]
        return not stop.is_set()

    def target() -> None:
        try:
            box["value"] = work(progress)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="matcher-solve", daemon=True)
    started = time.monotonic()
    worker.start()
    bar: Any = None
    task: Any = None
    try:
        while worker.is_alive():
            _reclaim_signals()
            worker.join(0.1)
            if show_progress and time.monotonic() - started >= PROGRESS_AFTER_S and latest:
                if bar is None:
                    from rich.progress import BarColumn, Progress, TimeElapsedColumn

                    bar = Progress(
                        *Progress.get_default_columns()[:1],
                        BarColumn(),
                        TimeElapsedColumn(),
                        console=err,
                        transient=True,
                    )
                    bar.start()
                    task = bar.add_task("solving", total=1.0)
                event = latest[0]
                stage = event.stage.replace("_", " ")
                bar.update(
                    task,
                    description=f"{stage}: {visible(event.message, limit=60)}",
                    completed=event.fraction or 0.0,
                )
        _reclaim_signals()
    except Interrupted as exc:
        stop.set()
        if bar is not None:
            bar.stop()
        worker.join(CANCEL_GRACE_S)
        remove_pending()
        name = signal.Signals(exc.signum).name
        _say(f"interrupted ({name}); stopped, nothing written", prefix="")
        with suppress(Exception):
            sys.stderr.flush()
        # Not sys.exit: native solver threads still winding down can abort the interpreter's
        # shutdown (std::terminate); nothing is left to write or clean up.
        os._exit(exc.exit_code)
    finally:
        if bar is not None:
            bar.stop()
    if "error" in box:
        raise box["error"]
    return cast(T, box["value"])


def _guard(fn: F) -> F:
    """Turn known errors into messages and exit codes; tracebacks only with --debug.

    Before the command runs, every output destination is checked (exit 2); while it runs,
    SIGINT/SIGTERM end it with exit 130/143 and no output; a reader closing the pipe ends it
    quietly."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug"))
        try:
            with _signals_interrupt():
                _preflight(kwargs)
                return fn(*args, **kwargs)
        except Interrupted as exc:
            _end_interrupted(exc)
        except InvalidInstance as exc:
            _say(_invalid_message(exc), prefix="")
            _say("Fix the listed fields and run `matcher validate` again.", prefix="")
            sys.exit(EXIT_INVALID)
        except OutputError as exc:
            _fail(str(exc), EXIT_USAGE)
        except Infeasible as exc:
            _fail(
                f"{visible(exc.source or 'instance')}: no plan meets the hard rules: {exc}",
                EXIT_INFEASIBLE,
            )
        except MatcherError as exc:
            if debug and exc.exit_code == EXIT_INTERNAL:
                raise
            _fail(str(exc), exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`matcher solve ... | head`): it has what it wanted.
            _quiet_stdout()
            sys.exit(EXIT_OK)
        except (SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # the last resort: say so, keep the traceback for --debug
            if _received:  # a signal arrived and something re-raised it as another error
                _end_interrupted(Interrupted(_received[-1]))
            if debug:
                raise
            # The exception's text is not shown: it may quote input values (personal data).
            _fail(
                f"internal error ({type(exc).__name__}). This is a bug in matcher; "
                "re-run with --debug for the traceback and report it.",
                EXIT_INTERNAL,
            )

    return wrapper  # type: ignore[return-value]


def _emit(text: str, output: Path | None, inputs: list[Path]) -> None:
    if output is None:
        with _writing_stdout():
            click.echo(text, nl=False)
    else:
        write_atomic(output, text, protect=inputs)
        _say(f"wrote {visible(output)}", prefix="")


class _StdoutConsole(Console):
    """Rich's console for standard output, except that a reader closing the pipe ends the run
    through :func:`_guard` (quietly, exit 0) instead of rich's own exit 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


class OutputPath(click.Path):
    """An output file name; an empty name or one ending in "/" (a directory) is refused here,
    everything else about the destination by :func:`matcher.render.output.check_destination` before
    the command runs."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Path):
            return value
        raw = os.fspath(value)
        if raw == "":
            self.fail("the output path is empty; give a file name, e.g. -o plan.json", param, ctx)
        if raw.endswith(("/", os.sep)):
            self.fail(f"{visible(raw)} names a directory; give a file name inside it", param, ctx)
        return Path(raw)


debug_option = click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
redact_option = click.option(
    "--redact", is_flag=True, help="Leave names and emails out of the table, XLSX and HTML."
)
output_option = click.option(
    "-o",
    "--output",
    type=OutputPath(),
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
    from matcher.contract.keys import near_duplicates
    from matcher.intake.spreadsheet import load_any

    def warn(text: str) -> None:
        err.print(f"warning: {text}", markup=False, soft_wrap=True)

    data = load_any(path, warn=warn)
    for near in near_duplicates(data):
        warn(str(near))
    return data


def _people(data: Instance, solution: Solution, redact: bool) -> PlanView:
    from matcher.render.view import PlanView

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
    from matcher.render.view import PlanView

    view = PlanView(data, solution, redact=redact)
    if fmt == "xlsx":
        from matcher.render.workbook import plan_workbook

        assert output is not None  # plan_format requires it
        write_atomic(output, plan_workbook(view), protect=inputs)
        err.print(f"wrote {output}", markup=False)
    else:
        from matcher.render.report import plan_report

        _emit(plan_report(view), output, inputs)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="matcher")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log what the solve does to standard error (IDs only); -vv for more detail.",
)
def main(verbose: int) -> None:
    """Form collaborative pairs, place them in cohorts and action-learning sets."""
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        logger = logging.getLogger("matcher")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


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
    from matcher.compare.diff import plan_changes, score_change
    from matcher.engine.replan import load_previous

    before, after = load_previous(old), load_previous(new)
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
    from matcher.engine.replan import load_previous
    from matcher.explain import why, why_not

    if (why_not_ids is None) == (why_id is None):
        raise click.UsageError("give exactly one of --why-not A B and --why A")
    data = _load(instance)
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
    from matcher.contract.instance import Instance

    return Instance.model_json_schema()


def solution_json_schema() -> dict[str, Any]:
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
    from matcher.contract.checks import parse_instance
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
    from matcher.contract.keys import near_duplicates
    from matcher.intake.spreadsheet import is_workbook, read_csv_files, read_workbook
    from matcher.intake.spreadsheet import load_mapping as read_mapping

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
    from matcher.contract.instance import Instance

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
    import io as _io

    from matcher.intake.template import build_workbook
    from matcher.render.workbook import fixed_zip

    if output.suffix.lower() != ".xlsx":
        raise click.UsageError(f"-o {output}: name the workbook .xlsx")
    data = None
    if source is not None:
        data = _load(source).model_dump(mode="json", exclude_unset=True)
    buf = _io.BytesIO()
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
    from pydantic import ValidationError

    from matcher.contract.solution import Solution
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


# `matcher serve` lives in its own module (the web app's front door).
from matcher.cli.serve import serve as _serve  # noqa: E402

main.add_command(_serve)
