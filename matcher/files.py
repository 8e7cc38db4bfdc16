"""File safety: destination checks and atomic writes (no rendering here)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from matcher.text import visible


class OutputError(Exception):
    """The output cannot be written where asked (a usage error: exit 2)."""


#: Trees that hold no user files: writing a plan there is always a mistake.
_SYSTEM_TREES = ("/proc", "/sys", "/dev")

# Temporary files being written right now, removed by :func:`remove_pending` when a signal
# ends the process between the write and the rename.
_pending: set[str] = set()
_umask_lock = threading.Lock()
# Outputs renamed into place (or being renamed: the flag is set just before the rename, a
# single system call that no Python signal handler can interrupt). From then on the run has
# succeeded: a signal arriving after it must not report "nothing written".
_committed: list[str] = []
_renaming: list[str] = []


def output_committed() -> bool:
    """Whether an output has been (or is being) renamed into place in this process: a signal
    handler consults it to let a run that has written its result end with success."""
    return bool(_committed or _renaming)


def forget_committed() -> None:
    """Start a new run (an embedding program running several commands in one process)."""
    _committed.clear()
    _renaming.clear()


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
    and, where the process may set it, its owner and group. Errors are :class:`OutputError`.

    Signals: before the rename nothing is replaced (the temporary file is removed); from the
    rename on, :func:`output_committed` is true and the CLI's handlers let the run succeed."""
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
        _renaming.append(tmp)
        try:
            os.replace(tmp, target)
        except BaseException:
            _renaming.remove(tmp)
            raise
        _committed.append(os.fspath(target))
        _renaming.remove(tmp)
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
