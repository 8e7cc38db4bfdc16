"""The `matcher` command group and what its commands share: options, output to files or
standard output, loading an instance, signals, and the error guard that turns exceptions into
messages and exit codes (the mapping itself is :func:`matcher.engine.runner.describe_failure`).

Exit codes (DESIGN.md §5): 0 solved; 1 internal error; 2 usage error; 3 invalid input;
4 proven infeasible; 5 nothing found within the time limit; 6 out of memory.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.text import Text

from matcher.engine.progress import ProgressCallback
from matcher.engine.runner import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_SIGNAL,
    Interrupted,
    SolveJob,
    describe_failure,
)
from matcher.errors import MAX_PROBLEMS_SHOWN, InvalidInstance, MatcherError
from matcher.files import (
    OutputError,
    check_destination,
    forget_committed,
    output_committed,
    remove_pending,
    write_atomic,
)
from matcher.text import cut, visible, visible_lines

if TYPE_CHECKING:  # imported where used: `--help` never loads pydantic or the models
    from matcher.contract.instance import Instance
    from matcher.contract.solution import Solution
    from matcher.render.view import PlanView

#: Seconds a cancelled solve gets to return before the process ends without it.
CANCEL_GRACE_S = 0.8
#: Longest error message printed; the rest is cut with its length.
MAX_MESSAGE = 8_000
#: Largest --seed: CP-SAT takes a 32-bit seed.
MAX_SEED = 2**31 - 1

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
err = Console(stderr=True, highlight=False)


def _say(message: str, *, prefix: str = "error: ") -> None:
    """Print a message on stderr with every control character shown escaped, never as markup;
    the program's own line breaks are kept and the whole is cut at MAX_MESSAGE characters."""
    body = visible_lines(cut(message, MAX_MESSAGE))
    text = Text(prefix, style="red") + Text(body) if prefix else Text(body)
    err.print(text, soft_wrap=True)


def _fail(message: str, code: int) -> NoReturn:
    _say(message)
    sys.exit(code)


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
_OUTPUT_PARAMS = ("output", "outputs", "cohorts_output")


def _paths(value: Any) -> list[Path]:
    if isinstance(value, Path):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, Path)]
    return []


def _preflight(kwargs: dict[str, Any]) -> None:
    """Check every output destination (and standard output) before any work starts: each file
    of a repeated ``-o`` too, and no file named twice."""
    inputs = [p for k, v in kwargs.items() if k not in _OUTPUT_PARAMS for p in _paths(v)]
    outputs = [p for k in _OUTPUT_PARAMS for p in _paths(kwargs.get(k))]
    seen: set[str] = set()
    for out in outputs:
        key = os.path.normcase(os.path.abspath(out))
        if key in seen:
            raise click.UsageError(f"-o {visible(out)} is named twice; name each file once")
        seen.add(key)
        check_destination(out, protect=inputs)
    if not (_paths(kwargs.get("output")) or _paths(kwargs.get("outputs"))):
        _stdout_usable()


#: The last exit signal received: a library that turns the Interrupted exception into
#: another one (an import guarded by `except Exception`) must not make Ctrl-C an internal error.
_received: list[int] = []


def _raise_interrupted(signum: int, frame: Any) -> None:
    if output_committed():
        # The result is in place: the run has succeeded, whatever arrives now (exit 0).
        return
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
    forget_committed()
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
    _say(f"interrupted ({exc.signal_name}); stopped, nothing written", prefix="")
    sys.exit(exc.exit_code)


#: A progress bar appears on a terminal once a solve has run this long (seconds).
PROGRESS_AFTER_S = 2.0


def _cancellable(work: Callable[[ProgressCallback], T], *, show_progress: bool = False) -> T:
    """Run ``work(progress)`` as a :class:`~matcher.engine.runner.SolveJob` so that a signal
    stops it within a second.

    The main thread waits in short joins, so the signal handler runs at once; it then cancels
    the job (the progress callback returns False), waits CANCEL_GRACE_S for it, and ends
    the process with ``os._exit`` after removing temporary files: a solve stuck in native code
    can never hang it, and nothing of the cancelled solve is written. With ``show_progress``
    (a terminal on stderr), a transient progress bar shows the stage once the solve has run
    ``PROGRESS_AFTER_S`` seconds."""
    job = SolveJob(work)
    bar: Any = None
    task: Any = None
    try:
        while True:
            _reclaim_signals()
            if job.wait(0.1):
                break
            event = job.progress
            if show_progress and job.elapsed >= PROGRESS_AFTER_S and event is not None:
                if bar is None:
                    from rich.progress import (  # lazy: only once a bar is shown
                        BarColumn,
                        Progress,
                        TimeElapsedColumn,
                    )

                    bar = Progress(
                        *Progress.get_default_columns()[:1],
                        BarColumn(),
                        TimeElapsedColumn(),
                        console=err,
                        transient=True,
                    )
                    bar.start()
                    task = bar.add_task("solving", total=1.0)
                stage = event.stage.replace("_", " ")
                bar.update(
                    task,
                    description=f"{stage}: {visible(event.message, limit=60)}",
                    completed=event.fraction or 0.0,
                )
        _reclaim_signals()
    except Interrupted as exc:
        job.cancel()
        if bar is not None:
            bar.stop()
        job.wait(CANCEL_GRACE_S)
        remove_pending()
        _say(f"interrupted ({exc.signal_name}); stopped, nothing written", prefix="")
        with suppress(Exception):
            sys.stderr.flush()
        _release_process_resources()
        # Not sys.exit: native solver threads still winding down can abort the interpreter's
        # shutdown (std::terminate); nothing is left to write or clean up.
        os._exit(exc.exit_code)
    finally:
        if bar is not None:
            bar.stop()
    return job.result()


def _release_process_resources() -> None:
    """Before ``os._exit``: release what a normal exit's multiprocessing clean-up would (the
    sets stage's worker pool holds named semaphores; its resource tracker would otherwise
    remove them itself and print a warning about leaked objects). The workers end on their own
    once this process has ended (they watch it). Nothing to do when no pool was started."""
    mp_util = sys.modules.get("multiprocessing.util")
    run_finalizers = getattr(mp_util, "_run_finalizers", None)
    if run_finalizers is not None:
        with suppress(Exception):
            run_finalizers(0)  # exit-time finalizers of priority >= 0: semaphores, queues


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
        except (MatcherError, OutputError) as exc:
            failure = describe_failure(exc)
            if failure.problem_list:
                _say(failure.message, prefix="")
                footer = _footer(exc)
                if footer:
                    _say(footer, prefix="")
                sys.exit(EXIT_INVALID)
            if debug and failure.internal:
                raise
            _fail(failure.message, failure.exit_code)
        except BrokenPipeError:
            # The reader went away (`matcher solve ... | head`): it has what it wanted.
            _quiet_stdout()
            sys.exit(EXIT_OK)
        except (SystemExit, click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:  # the last resort: say so, keep the traceback for --debug
            if _received:  # a signal arrived and something re-raised it as another error
                _end_interrupted(Interrupted(_received[-1]))
            failure = describe_failure(exc)  # out of memory (exit 6), else a bug (exit 1)
            if debug and failure.internal:
                raise
            # The exception's text is not shown: it may quote input values (personal data).
            _fail(failure.message, failure.exit_code)

    return wrapper  # type: ignore[return-value]


def _footer(exc: Exception) -> str:
    """The line under a list of problems, fitting them: fields to fix, or a file to find."""
    problems = exc.problems if isinstance(exc, InvalidInstance) else []
    if any(p.path not in ("", "$") for p in problems):
        return "Fix the listed fields and run `matcher validate` again."
    if any("not found" in p.message for p in problems):
        return "Check the file's name and the folder you run matcher in."
    return ""


# --------------------------------------------------------------------------- plans and intakes
#
# Every command that reads an intake and a plan takes them in one order: INTAKE first, then
# PLAN (`matcher report INTAKE PLAN`, `matcher explain INTAKE [PLAN]`, `matcher solve INTAKE
# --previous PLAN`, `matcher diff OLD_PLAN NEW_PLAN --instance INTAKE`). Files are recognised by
# what they hold, so a wrong order gets a message with the right one.


def file_kind(path: Path) -> str | None:
    """``"plan"``, ``"intake"`` or None (unreadable, or neither), from the file's content: a
    workbook by its sheets (a plan workbook carries a very hidden plan sheet), JSON by its keys,
    CSV is an intake."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
        if head == b"PK\x03\x04":
            with zipfile.ZipFile(path) as z:
                names = z.read("xl/workbook.xml").decode("utf-8", "replace").casefold()
            if 'name="matcher-plan"' in names:
                return "plan"
            return "intake" if 'name="participants"' in names else None
        if path.suffix.lower() in (".csv", ".tsv", ".txt"):
            return "intake"
        if path.stat().st_size > 64 * 1024 * 1024:  # only a hint: never slow a big solve
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, RecursionError):
        return None
    if isinstance(doc, dict):
        if "participants" in doc and "cohorts" in doc:
            return "intake"
        if "pairs" in doc and "run" in doc:
            return "plan"
    return None


def check_order(command: str, intake: Path, plan: Path | None, *, plan_arg: str = "") -> None:
    """Usage error (exit 2) with the right order when the intake and the plan are swapped, or a
    plan stands where the intake goes (or the other way round)."""
    got_intake = file_kind(intake)
    got_plan = file_kind(plan) if plan is not None else None
    a, b = visible(intake), visible(plan) if plan is not None else ""
    if plan is not None and got_intake == "plan" and got_plan == "intake":
        raise click.UsageError(
            f"{a} is a plan and {b} an intake: `matcher {command}` takes the INTAKE first, "
            f"then the PLAN: matcher {command} {b} {plan_arg}{a}"
        )
    if got_intake == "plan":
        raise click.UsageError(
            f"{a} is a plan, not an intake: `matcher {command}` takes the INTAKE (the workbook "
            "or JSON the plan was made from) first, then the PLAN"
        )
    if plan is not None and got_plan == "intake":
        raise click.UsageError(
            f"{b} is an intake, not a plan: `matcher {command}` takes the INTAKE first, then "
            f"{plan_arg}PLAN (a .json or .xlsx file written by `matcher solve`)"
        )


def _read_plan(path: Path) -> Solution:
    """A plan file: the JSON plan, or a plan workbook (which carries its JSON plan), read as
    strictly as an instance file (exit 3 naming the problem)."""
    from matcher.contract.plan_file import load_plan  # lazy: pydantic; not for --help

    return load_plan(path)


def refuse_other_intake(
    plan_path: Path,
    plan: Solution,
    intake_path: Path,
    data: Instance,
    *,
    force: bool,
    exact: bool = True,
    option: str = "",
) -> None:
    """Exit 3, naming both files, when ``plan`` was not made from ``data``: another intake
    (another name), or with ``exact`` another version of it (the fingerprint the plan
    records). ``--force`` reads it anyway."""
    from matcher.contract.identity import instance_hash  # lazy: pydantic; not for --help

    if force:
        return
    p, i = f"{option}{visible(plan_path)}", visible(intake_path)
    if plan.instance != data.name:
        _fail(
            f"{p} is a plan of intake {visible(plan.instance)!r}, but {i} is intake "
            f"{visible(data.name)!r}: give a plan of {i} (or --force if it is the same "
            "programme renamed)",
            EXIT_INVALID,
        )
    stale = (
        exact and plan.instance_sha256 is not None and plan.instance_sha256 != instance_hash(data)
    )
    if exact and plan.instance_sha256 is None:
        # a plan written before the fingerprint: every active person must be in it somewhere
        named = {x for p in plan.pairs for x in (p.patient_leader, p.partner)}
        named |= {u.participant for u in plan.unmatched}
        stale = any(p.active and p.id not in named for p in data.participants)
    if stale:
        _fail(
            f"{p} was made from another version of {i} (intake {visible(data.name)!r} has "
            "changed since: a withdrawal, a lock or an edit): make a new plan with "
            f"`matcher solve {i} --previous {visible(plan_path)} -o NEW.xlsx` (or --force to "
            "read this plan anyway)",
            EXIT_INVALID,
        )


def plan_fits(plan_path: Path, plan: Solution, data: Instance) -> None:
    """Exit 3 when the plan names people or cohorts the intake does not hold: a page or an
    explanation shows the plan through the intake, so it cannot be read even with --force."""
    from matcher.contract.plan_file import instance_problems  # lazy: pydantic; not for --help

    problems = instance_problems(
        plan, {p.id for p in data.participants}, {c.id for c in data.cohorts}
    )
    if problems:
        raise InvalidInstance(str(plan_path), problems)


force_option = click.option(
    "--force",
    is_flag=True,
    help="Read a plan made from another intake, or another version of this one, anyway.",
)


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


#: Longest warning printed (characters); the rest is cut with its length.
MAX_WARNING = 2_000


def _load(path: Path) -> Instance:
    """An instance from JSON or a workbook; unused columns and near-miss spellings are warned
    about on stderr, like problems: each through `visible` (they quote the file), at most
    MAX_PROBLEMS_SHOWN of them, then the count of the rest."""
    return _load_checked(path)[0]


def _load_checked(path: Path, check_seconds: float | None = None) -> tuple[Instance, float]:
    """:func:`_load`, its near-miss spelling check given ``check_seconds`` (default: the
    check's own budget), with the seconds that check took."""
    from matcher.intake.spelling import BUDGET_S, check_spellings  # lazy: not for --help
    from matcher.intake.spreadsheet import load_any  # lazy: not for --help

    notes: list[str] = []
    origins: dict[str, str] = {}
    data = load_any(path, warn=notes.append, origins=origins)
    ORIGINS[path] = origins
    started = time.monotonic()
    check = check_spellings(
        data, notes=notes, seconds=BUDGET_S if check_seconds is None else check_seconds
    )
    spent = time.monotonic() - started
    notes.extend(str(near) for near in check.found)
    _warn_all(notes)
    if ONE_SHOT:
        # What exists now (the modules, the intake) lives until the process ends with the
        # command: the collector's full passes stop walking it (0.12-0.2 s of a 2,000-
        # participant solve's 3-4 full passes). Not for a caller running commands in its own
        # process (tests, a script calling `main`): frozen objects are never collected.
        gc.freeze()
    return data, spent


#: Set by the `matcher` command's entry point (``matcher.__main__.run``): this process runs one
#: command and ends with it.
ONE_SHOT = False


def _warn_all(notes: list[str]) -> None:
    """Print warnings on stderr like problems: each through `visible` and cut at MAX_WARNING
    characters, at most MAX_PROBLEMS_SHOWN of them, then the count of the rest."""
    for text in notes[:MAX_PROBLEMS_SHOWN]:
        err.print(Text(f"warning: {visible(text, MAX_WARNING)}"), soft_wrap=True)
    if len(notes) > MAX_PROBLEMS_SHOWN:
        err.print(f"warning: ... and {len(notes) - MAX_PROBLEMS_SHOWN:,} more warnings")


#: Per intake file read by :func:`_load`: where each record came from in a workbook.
ORIGINS: dict[Path, dict[str, str]] = {}


def in_rows(path: Path, text: str) -> str:
    """``text`` with the records it names (``locks[0]``) as the workbook ``path`` shows them
    (``Locks!row 2``); unchanged for a JSON intake, whose paths are what its reader sees."""
    origins = ORIGINS.get(path)
    if not origins:
        return text
    return re.sub(
        r"\b(?:participants|cohorts|locks|forbidden_pairs)\[\d+\]",
        lambda m: origins.get(m.group(0), m.group(0)),
        text,
    )


def _people(data: Instance, solution: Solution, redact: bool) -> PlanView:
    from matcher.render.view import PlanView  # lazy: pydantic; not for --help

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
    from matcher.render.view import PlanView  # lazy: pydantic; not for --help

    view = PlanView(data, solution, redact=redact)
    if fmt == "xlsx":
        from matcher.render.workbook import plan_workbook  # lazy: openpyxl (~0.4 s)

        assert output is not None  # plan_format requires it
        write_atomic(output, plan_workbook(view), protect=inputs)
        err.print(f"wrote {output}", markup=False)
    else:
        from matcher.render.report import plan_report  # lazy: jinja2, matplotlib: HTML only

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
    """Form collaborative pairs, place them in cohorts and action-learning sets.

    \b
    INTAKE is the intake workbook (.xlsx, from `matcher template`) or its JSON.
    PLAN is a plan written by `matcher solve` (.xlsx for people, .json; either works).
    Every command takes the INTAKE first, then the PLAN:
      matcher validate INTAKE
      matcher solve INTAKE [--previous PLAN] -o plan.xlsx -o plan.json
      matcher report INTAKE PLAN -o page.html
      matcher explain INTAKE [PLAN] --why A | --why-not A B
      matcher diff OLD_PLAN NEW_PLAN [--instance INTAKE]
    """
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        logger = logging.getLogger("matcher")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
