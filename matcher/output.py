"""Writing results: atomic files, JSON, CSV and the terminal table."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import stat
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from matcher.text import cell, csv_cell, json_visible, visible

if TYPE_CHECKING:
    from matcher.plan_view import PlanView
    from matcher.solution import Solution


class OutputError(Exception):
    """The output cannot be written where asked (a usage error: exit 2)."""


#: Trees that hold no user files: writing a plan there is always a mistake.
_SYSTEM_TREES = ("/proc", "/sys", "/dev")

# Temporary files being written right now, removed by :func:`remove_pending` when a signal
# ends the process between the write and the rename.
_pending: set[str] = set()
_umask_lock = threading.Lock()


def _shown(path: str | Path) -> str:
    return visible(os.fspath(path))


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _in_system_tree(path: Path) -> bool:
    text = os.fspath(path)
    return any(text == t or text.startswith(t + "/") for t in _SYSTEM_TREES)


def _link_chain(raw: str) -> list[Path]:
    """``raw`` and every path its symlinks lead through, made absolute (a link to
    /proc/self/fd/1 must be seen as such, not only as the file that fd happens to be)."""
    hops = [Path(os.path.abspath(raw))]
    for _ in range(40):  # the kernel's own limit on a chain of links
        here = hops[-1]
        parent = Path(os.path.realpath(here.parent))
        try:
            link = os.readlink(parent / here.name)
        except OSError:  # not a link (or missing): the chain ends here
            break
        hops.append(Path(os.path.abspath(parent / link)))
    return hops


def check_destination(
    path: str | Path, *, protect: Sequence[str | Path] = (), probe: bool = True
) -> Path:
    """Check that ``path`` can take an output file, before any work starts.

    Returns the file to write: ``path`` itself, or the regular file a symlink points to (the
    link is kept). Raises :class:`OutputError` naming the problem when ``path`` is empty, names
    a directory (``newdir/``), is a directory, a device, a FIFO, a socket (or a symlink to one),
    lies under /proc, /sys or /dev, is read-only, is one of the ``protect`` files (the inputs),
    or its directory is missing or not writable (tested by creating and removing a file there
    when ``probe``)."""
    raw = os.fspath(path)
    if raw == "":
        raise OutputError("the output path is empty; give a file name, e.g. -o plan.json")
    if raw.endswith(("/", os.sep)):
        raise OutputError(f"{_shown(raw)} names a directory; give a file name inside it")
    for hop in _link_chain(raw):
        if _in_system_tree(hop):
            raise OutputError(f"{_shown(raw)}: refusing to write under /{hop.parts[1]}/")
    target = Path(os.path.realpath(raw))  # follow symlinks: write the file they point to
    if _in_system_tree(target):
        raise OutputError(f"{_shown(raw)}: refusing to write under /{target.parts[1]}/")
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(f"{_shown(raw)}: cannot check it ({exc.strerror})") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind is not None:
            via = " (through a symlink)" if os.path.islink(raw) else ""
            raise OutputError(f"{_shown(raw)} is {kind}{via}; only a regular file is ever replaced")
        if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise OutputError(
                f"{_shown(raw)} is read-only; choose another file or make it writable"
            )
        for p in protect:
            try:
                same = os.path.samefile(target, p)
            except OSError:
                same = False
            if same:
                raise OutputError(
                    f"{_shown(raw)}: refusing to overwrite the input file; choose another -o"
                )
    directory = target.parent
    if not directory.is_dir():
        raise OutputError(f"{_shown(raw)}: directory {_shown(directory)} does not exist")
    if probe:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".matcher-probe.", dir=directory)
        except OSError as exc:
            raise OutputError(
                f"{_shown(raw)}: cannot write in {_shown(directory)} ({exc.strerror})"
            ) from None
        os.close(fd)
        os.unlink(tmp)
    return target


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process umask."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def remove_pending() -> None:
    """Remove every temporary output file still being written (called on SIGINT/SIGTERM)."""
    for tmp in list(_pending):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _pending.discard(tmp)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        # Some file systems cannot sync a directory; the rename is atomic all the same.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: str | Path,
    text: str | bytes,
    *,
    protect: Sequence[str | Path] = (),
) -> None:
    """Write ``text`` (or bytes: a workbook) to ``path`` so that a crash, a full disk or a
    signal never leaves a half-written or stray file: a temporary file in the same directory,
    ``fsync``, an atomic rename, ``fsync`` of the directory.

    The destination is checked again first (:func:`check_destination`): special files,
    directories, read-only files and the ``protect`` paths (the inputs) are refused. A new file
    gets the mode the umask gives (0o666 less the umask); a replaced regular file keeps its mode
    and, where the process may set it, its owner and group. Errors are :class:`OutputError`."""
    target = check_destination(path, protect=protect, probe=False)
    try:
        old: os.stat_result | None = os.stat(target)
    except OSError:
        old = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"{_shown(path)}: cannot write ({exc.strerror})") from None
    _pending.add(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
            if old is None:
                os.fchmod(fh.fileno(), _new_file_mode())
            else:
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode))
                # Not allowed to give the file away: it keeps our own ownership.
                with contextlib.suppress(OSError):
                    os.fchown(fh.fileno(), old.st_uid, old.st_gid)
        os.replace(tmp, target)
        _pending.discard(tmp)
        _fsync_directory(target.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        _pending.discard(tmp)
        if exc.errno == errno.ENOSPC:
            raise OutputError(
                f"{_shown(path)}: no space left on the device; nothing was written "
                "(an existing file is unchanged)"
            ) from None
        raise OutputError(
            f"{_shown(path)}: cannot write ({exc.strerror}); an existing file is unchanged"
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        _pending.discard(tmp)
        raise


def solution_json(solution: Solution) -> str:
    """The plan as JSON; characters JSON leaves raw (C1, bidi) are written as escapes."""
    return json_visible(solution.model_dump_json(indent=2)) + "\n"


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV, every cell through :func:`matcher.text.csv_cell` (formula prefixes
    neutralised, control characters shown): the one CSV writer of the package."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")  # quotes cells holding commas, quotes, newlines
    for row in rows:
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def solution_csv(solution: Solution) -> str:
    """One row per pair, then one per unmatched participant (spreadsheet friendly)."""
    waitlisted = {x.pair: x.reason for x in solution.waitlist}
    rows: list[list[object]] = [
        [
            "pair",
            "patient_leader",
            "partner",
            "preformed",
            "score",
            "cohort",
            "learning_set",
            "waitlisted",
            "reasons",
        ]
    ]
    for p in solution.pairs:
        rows.append(
            [
                p.id,
                p.patient_leader,
                p.partner,
                "yes" if p.preformed else "no",
                f"{p.score:.4f}",
                p.cohort or "",
                p.learning_set or "",
                waitlisted.get(p.id, ""),
                "; ".join(p.reasons),
            ]
        )
    for u in solution.unmatched:
        rows.append(["", u.participant, "", "", "", "", "", "", "unmatched: " + u.reason])
    return csv_text(rows)


def _who(view: PlanView | None, pid: str) -> Text:
    """``pl01 Alex Example`` with ``role, organisation`` under it (the ID alone without view);
    every part rendered safely (:func:`matcher.text.visible`)."""
    if view is None or pid not in view.people:
        return cell(pid)
    p = view.person(pid)
    return Text(f"{visible(p.label)}\n{visible(p.role)}, {visible(p.organisation)}")


def _summary(solution: Solution) -> Text:
    summary = solution.summary()  # "<instance name>: ...": the name may be long or hostile
    name = solution.instance
    rest = summary[len(name) :] if summary.startswith(name) else summary
    return Text(visible(name) + visible(rest, limit=None), style="bold")


def print_table(solution: Solution, console: Console, view: PlanView | None = None) -> None:
    """The human-readable plan; with ``view``, names, roles, organisations and cohort names
    stand next to the IDs. Every column wraps at spaces and folds a word too long for it, so
    nothing is cut off at any width, on a terminal or in a pipe. Below 100 columns (a narrow
    terminal; a pipe is 80) each pair is a short block of lines instead of a table row. All
    text from the input is rendered by :mod:`matcher.text` (no markup, no control characters)."""
    console.print(_summary(solution))
    if console.width < NARROW:
        _print_pairs_stacked(solution, console, view)
    else:
        _print_pairs_table(solution, console, view)
    _print_cohorts(solution, console, view)
    _print_reasons(
        console, "Wait-list", "pair", [(cell(x.pair), x.reason) for x in solution.waitlist]
    )
    _print_reasons(
        console,
        "Unmatched",
        "participant",
        [(_who(view, u.participant), u.reason) for u in solution.unmatched],
    )


#: Narrower consoles get the pairs as blocks of lines, not as a table of 8 columns.
NARROW = 100


def _print_pairs_stacked(solution: Solution, console: Console, view: PlanView | None) -> None:
    console.print(Text("\nPairs", style="bold"))
    for p in solution.pairs:
        cohort = view.cohort(p.cohort) if view is not None else None
        where = f"{p.cohort} {cohort.name}".strip() if cohort else (p.cohort or "no cohort")
        lines = [
            f"{visible(p.id)}  score {p.score:.2f}  "
            f"{'applied together' if p.preformed else 'matched'}  {visible(where)}  "
            f"set {visible(p.learning_set or '-')}",
            "  patient leader: " + _who(view, p.patient_leader).plain.replace("\n", ", "),
            "  partner: " + _who(view, p.partner).plain.replace("\n", ", "),
            "  reasons: " + visible("; ".join(p.reasons[:2]), limit=400),
        ]
        for line in lines:
            console.print(Text(line), highlight=False)


def _print_pairs_table(solution: Solution, console: Console, view: PlanView | None) -> None:
    table = Table(title="Pairs", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("pair", "patient leader", "partner", "kind", "score", "cohort", "set"):
        table.add_column(col, overflow="fold")
    table.add_column("strongest reasons", overflow="fold")
    for p in solution.pairs:
        cohort = view.cohort(p.cohort) if view is not None else None
        table.add_row(
            cell(p.id),
            _who(view, p.patient_leader),
            _who(view, p.partner),
            "pre" if p.preformed else "new",
            f"{p.score:.2f}",
            Text(f"{visible(p.cohort)}\n{visible(cohort.name)}")
            if cohort and cohort.name
            else cell(p.cohort or "-"),
            cell(p.learning_set or "-"),
            cell("; ".join(p.reasons[:2]), limit=400),
        )
    console.print(table)


def _print_cohorts(solution: Solution, console: Console, view: PlanView | None) -> None:
    if solution.cohorts is not None:
        sets_by_cohort: dict[str, list[str]] = {}
        for s in solution.learning_sets or []:
            sets_by_cohort.setdefault(s.cohort, []).append(
                f"{visible(s.id)}: "
                + ", ".join(visible(p) for p in s.pairs)
                + (f" (diversity {s.diversity:.2f})" if s.diversity is not None else "")
            )
        ct = Table(title="Cohorts and action-learning sets", box=box.SIMPLE_HEAD)
        for col in ("cohort", "pairs", "sets"):
            ct.add_column(col, overflow="fold")
        for c in solution.cohorts:
            cap = f"/{c.capacity_pairs}" if c.capacity_pairs is not None else ""
            about = view.cohort(c.id) if view is not None else None
            label = (
                Text(f"{visible(about.label)}\n{visible(about.when)}")
                if about is not None
                else cell(c.id)
            )
            ct.add_row(label, f"{len(c.pairs)}{cap}", Text("\n".join(sets_by_cohort.get(c.id, []))))
        console.print(ct)


def _print_reasons(console: Console, title: str, key: str, rows: list[tuple[Text, str]]) -> None:
    """A two-column table of IDs and reasons (nothing when there are no rows)."""
    if not rows:
        return
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column(key, overflow="fold")
    table.add_column("reason", overflow="fold")
    for ident, reason in rows:
        table.add_row(ident, cell(reason, limit=400))
    console.print(table)
