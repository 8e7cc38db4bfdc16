"""Output safety: untrusted text on terminals and in CSV, the output writer, standard output.

Regressions are named after the defects of issue 11 (D1 rich markup, D5 unwritable outputs,
D6 special and protected files, D8 control characters, D10 long values, D14 temp files,
D15 CSV formulas, D16 small things)."""

from __future__ import annotations

import copy
import csv
import io
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from matcher import files as output
from matcher.cli import main
from matcher.engine.pairing import SideStats
from matcher.explain import unmatched_reason
from matcher.files import OutputError, check_destination, write_atomic
from matcher.text import csv_cell, cut, json_visible, visible
from matcher.tools.bench import rows_csv
from tests.conftest import MAY2016, REPO, tiny_data, write
from tests.test_pipeline import cohort, instance, lone_pairs

ESC_TITLE = "\u001b]0;pwned\u0007\u001b[2J"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def cli(*args: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.run(
        [sys.executable, "-m", "matcher", *args],
        env=env,
        stderr=subprocess.PIPE,
        timeout=120,
        **kw,
    )


def raw_controls(text: str) -> list[str]:
    """Control characters other than newline that would reach the terminal as they are."""
    return [ch for ch in text if (ord(ch) < 32 and ch != "\n") or 0x7F <= ord(ch) <= 0x9F]


# --- matcher.text -------------------------------------------------------------------------------


def test_visible_escapes_every_control_class() -> None:
    """ESC, BEL, CR, NUL, DEL, a C1 CSI, a bidi override and a lone surrogate all become
    visible escapes; markup and backslashes print as they are."""
    shown = visible("a\x1b[2J\x07\r\x00\x7f\x9b\u202eb[/]\\\ud800")
    assert shown == "a\\x1b[2J\\x07\\r\\x00\\x7f\\x9b\\u202eb[/]\\\\ud800"
    assert not raw_controls(shown)
    shown.encode("utf-8")  # no lone surrogate left


def test_cut_gives_the_length() -> None:
    assert cut("x" * 10_000_000, 5) == "xxxxx…(10,000,000 chars)"
    assert cut("short", 5) == "short"


def test_csv_cell_neutralises_formulas_but_not_numbers() -> None:
    """OWASP: a cell starting with = + - @ tab or CR is prefixed with a single quote."""
    for bad in ("=1+1", "+cmd", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(bad).startswith("'"), bad
    assert csv_cell("-0.5") == "-0.5" and csv_cell("+3") == "+3" and csv_cell("1e-3") == "1e-3"
    assert csv_cell("pl01") == "pl01"


def test_json_visible_keeps_the_data() -> None:
    import json

    doc = json.dumps({"id": "a\x85\u202eb"}, ensure_ascii=False)
    safe = json_visible(doc)
    assert not raw_controls(safe) and "\u202e" not in safe
    assert json.loads(safe) == {"id": "a\x85\u202eb"}


# --- D1: rich markup ----------------------------------------------------------------------------


def test_d1_markup_in_name_and_id_prints_as_in_the_data(tmp_path: Path) -> None:
    """An instance named "[/]" and a participant "[/]a" used to crash the table (exit 1);
    markup that did not crash was interpreted ("[bold]x" printed as x)."""
    data = tiny_data()
    data["name"] = "[/]"
    data["participants"][2]["id"] = "[/]a"  # pl1, referenced by nobody
    data["participants"][5]["id"] = "[bold]pr1"
    code, out, err = invoke("solve", str(write(tmp_path, data)))
    assert code == 0, err
    assert out.startswith("[/]: optimal")
    assert "[/]a" in out and "[bold]pr1" in out


def test_d1_markup_in_input_path_of_an_infeasible_file(tmp_path: Path) -> None:
    """The exit-4 message names the file; a path holding "[/]" crashed the error handler."""
    people = lone_pairs(3)
    for k in range(3):
        people[2 * k + 1]["organisation"] = "big-trust"
    folder = tmp_path / "x["
    folder.mkdir()
    path = write(folder, instance([cohort("c1", 8, lo=3, hi=4)], people), name="]y.json")
    code, _, err = invoke("solve", str(path))
    assert code == 4, err
    assert "x[/]y.json" in err and "Traceback" not in err


def test_d1_markup_in_output_path(tmp_path: Path) -> None:
    code, _, err = invoke("solve", str(MAY2016), "-o", str(tmp_path / "nope[/]" / "x.json"))
    assert code == 2
    assert "nope[/]" in err and "does not exist" in err


# --- D8: control characters ---------------------------------------------------------------------


def test_d8_control_characters_never_reach_the_terminal(tmp_path: Path) -> None:
    """A name that retitles the window and clears the screen, and an ID with CR and a bidi
    override, are shown escaped in the table, the CSV and error messages."""
    data = tiny_data()
    data["name"] = ESC_TITLE
    data["participants"][2]["id"] = "pl1\r\u202eevil"
    path = write(tmp_path, data)
    for fmt in ("table", "csv", "json"):
        code, out, err = invoke("solve", str(path), "--format", fmt)
        assert code == 0, err
        assert not raw_controls(out) and "\u202e" not in out, fmt
    code, out, _ = invoke("solve", str(path))
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out and "pl1\\r\\u202eevil" in out
    data["participants"][2]["avoid"] = ["nobody\x1b[2J"]
    code, _, err = invoke("validate", str(write(tmp_path, data)))
    assert code == 3
    assert "nobody\\x1b[2J" in err and not raw_controls(err)


# --- D10: long values ---------------------------------------------------------------------------


def test_d10_long_name_is_cut_in_the_table(tmp_path: Path) -> None:
    """A 9,000-character name (under the reading limit) prints as 200 characters and its
    length; a 10 MB one is refused when the file is read (see test_hostile)."""
    data = tiny_data()
    data["name"] = "n" * 9_000
    code, out, err = invoke("solve", str(write(tmp_path, data)))
    assert code == 0, err
    assert "…(9,000 chars): optimal" in out
    assert len(out) < 20_000


# --- D15: CSV formulas --------------------------------------------------------------------------


def test_d15_csv_formula_injection_neutralised(tmp_path: Path) -> None:
    """IDs starting with = + - @ went into the solution and scores CSV unchanged."""
    data = tiny_data()
    data["participants"][2]["id"] = '=HYPERLINK("http://x","y")'
    data["participants"][5]["id"] = "@SUM(A1)"
    path = write(tmp_path, data)
    code, out, err = invoke("solve", str(path), "--format", "csv")
    assert code == 0, err
    cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
    assert '\'=HYPERLINK("http://x","y")' in cells and "'@SUM(A1)" in cells
    assert not any(c.startswith(("=", "+", "@")) for c in cells)
    code, out, _ = invoke("scores", str(path), "--format", "csv")
    cells = [c for row in csv.reader(io.StringIO(out)) for c in row]
    assert code == 0 and "'@SUM(A1)" in cells
    bench = rows_csv([{"file": "=cmd|' /C calc'!A0", "gap": -0.5}], ["file", "gap"])
    assert bench.splitlines()[1] == "'=cmd|' /C calc'!A0,-0.5"


# --- D5, D6, D16: the output destination, checked before the solve --------------------------


@pytest.fixture
def no_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the solve fail loudly, to prove a refusal comes before any work."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the solve ran before the output was checked")

    monkeypatch.setattr("matcher.engine.solve.solve", boom)


def test_d5_proc_output_refused_before_the_solve(no_solve: None) -> None:
    code, _, err = invoke("solve", str(MAY2016), "-o", "/proc/plan.json")
    assert code == 2 and "refusing to write under /proc/" in err


def test_d5_empty_output_refused(no_solve: None) -> None:
    code, _, err = invoke("solve", str(MAY2016), "-o", "")
    assert code == 2 and "output path is empty" in err


def test_d16_output_newdir_slash_refused(tmp_path: Path, no_solve: None) -> None:
    """`-o newdir/` wrote a file named newdir."""
    code, _, err = invoke("solve", str(MAY2016), "-o", str(tmp_path / "newdir") + "/")
    assert code == 2 and "names a directory" in err
    assert not (tmp_path / "newdir").exists()


def test_d5_unwritable_directory_refused_before_the_solve(
    tmp_path: Path, no_solve: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory where no file can be created (read-only for us; root bypasses modes, so
    the probe is made to fail as on a read-only mount)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(output.tempfile, "mkstemp", refuse)
    code, _, err = invoke("solve", str(MAY2016), "-o", str(tmp_path / "plan.json"))
    assert code == 2 and "cannot write in" in err and "Read-only file system" in err


def test_d5_output_is_a_directory(tmp_path: Path, no_solve: None) -> None:
    code, _, err = invoke("solve", str(MAY2016), "-o", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_d6_character_device_refused(tmp_path: Path, no_solve: None) -> None:
    """`mknod fakenull c 1 3; matcher solve ... -o fakenull` replaced the device."""
    dev = tmp_path / "fakenull"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("mknod needs privileges")
    code, _, err = invoke("solve", str(MAY2016), "-o", str(dev))
    assert code == 2 and "a character device" in err
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_d6_fifo_and_socket_refused(tmp_path: Path, no_solve: None) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = invoke("solve", str(MAY2016), "-o", str(fifo))
    assert code == 2 and "a named pipe (FIFO)" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_d6_symlink_to_a_proc_fd_refused(tmp_path: Path, no_solve: None) -> None:
    """A symlink to /proc/self/fd/N used to be replaced (or written through to whatever that
    descriptor was); the file behind the descriptor must stay as it was."""
    scratch = tmp_path / "scratch.txt"
    scratch.write_text("keep")
    with scratch.open("a") as fh:
        link = tmp_path / "lnk"
        link.symlink_to(f"/proc/self/fd/{fh.fileno()}")
        code, _, err = invoke("solve", str(MAY2016), "-o", str(link))
    assert code == 2 and "refusing to write under /proc/" in err
    assert link.is_symlink() and scratch.read_text() == "keep"


def test_d6_read_only_file_refused(tmp_path: Path, no_solve: None) -> None:
    """A chmod 444 file was replaced (root ignores the mode; we do not)."""
    target = tmp_path / "plan.json"
    target.write_text("old")
    target.chmod(0o444)
    code, _, err = invoke("solve", str(MAY2016), "-o", str(target))
    assert code == 2 and "read-only" in err
    assert target.read_text() == "old"


def test_d6_new_file_honours_the_umask(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; the plan gets what the umask gives, like any new file."""
    for mask, mode in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
        old = os.umask(mask)
        try:
            target = tmp_path / f"new-{mask:o}.json"
            write_atomic(target, "{}\n")
        finally:
            os.umask(old)
        assert stat.S_IMODE(target.stat().st_mode) == mode


def test_d6_replaced_file_keeps_mode_and_owner(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    target.write_text("old")
    target.chmod(0o640)
    owner = (target.stat().st_uid, target.stat().st_gid)
    if os.geteuid() == 0:
        os.chown(target, 1000, 1000)
        owner = (1000, 1000)
    write_atomic(target, "new")
    st = target.stat()
    assert target.read_text() == "new"
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == owner


def test_d6_symlink_to_a_regular_file_writes_the_file(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_d6_input_never_overwritten_through_a_symlink(tmp_path: Path, no_solve: None) -> None:
    path = tmp_path / "in.json"
    shutil.copy(MAY2016, path)
    link = tmp_path / "out.json"
    link.symlink_to(path)
    code, _, err = invoke("solve", str(path), "-o", str(link))
    assert code == 2 and "refusing to overwrite the input file" in err


def test_d14_fsync_and_no_temp_file_left_by_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM between the temp write and the rename left a hidden temp file holding the plan.
    Here the "signal" arrives in os.replace: the CLI's handler calls remove_pending (as it
    does), the exception unwinds, and neither a temp file nor a changed target remains."""
    target = tmp_path / "plan.json"
    target.write_text("old")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(output.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))

    def signal_in_rename(src: Any, dst: Any) -> None:
        assert output._pending  # the temp file is known to the handler
        output.remove_pending()
        raise KeyboardInterrupt

    monkeypatch.setattr(output.os, "replace", signal_in_rename)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "secret plan")
    assert [p.name for p in tmp_path.iterdir()] == ["plan.json"]
    assert target.read_text() == "old" and synced  # the data was synced before the rename
    monkeypatch.undo()
    write_atomic(target, "new")
    assert target.read_text() == "new" and not output._pending


def test_d5_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    """A full file system: exit 2 with "no space left", the old file kept, no temp file.
    Needs a small tmpfs (root); skipped where mounting is not allowed."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        target = mnt / "plan.json"
        target.write_text("old")
        with pytest.raises(OutputError, match="no space left"):
            write_atomic(target, "x" * 1_000_000)
        assert target.read_text() == "old" and [p.name for p in mnt.iterdir()] == ["plan.json"]
        code, _, err = invoke("generate", "-n", "2000", "-o", str(target))
        assert code == 2 and "no space left" in err
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_check_destination_returns_the_real_file(tmp_path: Path) -> None:
    assert check_destination(tmp_path / "new.json") == (tmp_path / "new.json").resolve()
    with pytest.raises(OutputError, match="does not exist"):
        check_destination(tmp_path / "missing" / "x.json")


# --- D16: standard output, seed, empty intake, wording ------------------------------------------


def test_d16_stdout_full_is_an_error() -> None:
    """`> /dev/full` said "internal error"."""
    with open("/dev/full", "wb") as full:
        done = cli("solve", str(MAY2016), "--format", "json", stdout=full)
    assert done.returncode == 2
    assert b"No space left on device" in done.stderr and b"Traceback" not in done.stderr


def test_d16_stdout_closed_is_an_error() -> None:
    """With stdout closed (`>&-`) the plan was lost and the exit code was 0."""
    done = cli("solve", str(MAY2016), "--format", "json", preexec_fn=lambda: os.close(1))
    assert done.returncode == 2
    assert b"standard output is closed" in done.stderr


def test_d16_closed_pipe_ends_quietly() -> None:
    """`matcher solve ... | head -1` said "internal error" (exit 1)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for fmt in ("table", "json"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "matcher", "solve", str(MAY2016), "--format", fmt],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err
        assert err == b"", err


def test_d16_seed_out_of_range_is_a_usage_error() -> None:
    code, _, err = invoke("solve", str(MAY2016), "--seed", "99999999999")
    assert code == 2 and "--seed" in err
    code, _, err = invoke("solve", str(MAY2016), "--seed", "-1")
    assert code == 2


def test_d16_empty_intake_says_so(tmp_path: Path) -> None:
    data = copy.deepcopy(tiny_data())
    data["participants"] = []
    code, out, err = invoke("solve", str(write(tmp_path, data)), "--format", "json")
    assert "warning: " in err and "no active participants" in err
    assert code == 0 and '"pairs": []' in out


def test_d16_one_conflict_is_singular() -> None:
    """ "1 are declared conflicts" read wrongly."""
    stats = SideStats.empty(1)
    stats.conflict[0] = 1
    stats.no_cohort[0] = 2
    text = unmatched_reason("total", stats, 0, is_row=True, n_rows=1, n_cols=3, min_score=0.0)
    assert "1 is a declared conflict" in text and "2 share no cohort" in text
    assert isinstance(stats.conflict, np.ndarray)
