"""Library guards: the caller's own exceptions, running out of memory, copies that cannot be
invalid, and readers that take binary streams (uploads) as well as paths."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from matcher.cli import main
from matcher.contract.instance import Instance
from matcher.engine.progress import ProgressEvent
from matcher.engine.solve import solve
from matcher.errors import InvalidInstance, InvalidParameter, MatcherError, OutOfMemory
from matcher.intake.json_file import load_instance
from matcher.intake.spreadsheet import load_any, read_csv_files, read_workbook
from matcher.intake.template import build_workbook
from matcher.verification.verify import verify
from tests.conftest import MAY2016, tiny_data


class CallersOwn(Exception):
    """An exception of the caller's code, not matcher's."""


# --- the progress callback's exception ---------------------------------------------------------


@pytest.mark.parametrize("stage", ["pairing", "placement", "learning_sets", "metrics"])
def test_an_exception_from_the_progress_callback_propagates_as_itself(stage: str) -> None:
    mine = CallersOwn("stop here")
    calls: list[str] = []

    def progress(event: ProgressEvent) -> bool:
        calls.append(event.stage)
        if event.stage == stage:
            raise mine
        return True

    with pytest.raises(CallersOwn) as caught:
        solve(load_instance(MAY2016), progress=progress)
    assert caught.value is mine
    assert not isinstance(caught.value, MatcherError)
    assert calls.count(stage) == 1  # the solve stopped asking once the callback failed


def test_a_failing_callback_on_a_search_tick_also_propagates() -> None:
    """Ticks during a CP-SAT search come from a watcher thread; the exception still reaches
    the caller (not lost in that thread, not reported as a bug)."""
    seen = {"n": 0}

    def progress(event: ProgressEvent) -> bool:
        seen["n"] += 1
        if seen["n"] == 3:
            raise CallersOwn(event.stage)
        return True

    with pytest.raises(CallersOwn):
        solve(load_instance(MAY2016), progress=progress)


# --- running out of memory ---------------------------------------------------------------------


def _no_memory(*args: object, **kwargs: object) -> None:
    raise MemoryError


def test_memory_error_is_out_of_memory_not_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("matcher.engine.assemble.make_plan", _no_memory)
    with pytest.raises(OutOfMemory) as caught:
        solve(Instance.model_validate(tiny_data()))
    assert caught.value.exit_code == 6
    assert isinstance(caught.value, MemoryError)  # `except MemoryError` still catches it
    assert "ran out of memory" in str(caught.value)
    assert "time limit" not in str(caught.value)


def test_cli_says_out_of_memory_with_its_own_exit_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("matcher.engine.assemble.make_plan", _no_memory)
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(main, ["solve", str(MAY2016), "-o", str(out)])
    assert result.exit_code == 6, result.output
    assert "ran out of memory" in result.stderr
    assert "time limit" not in result.stderr and "bug" not in result.stderr
    assert not out.exists()


def test_cli_out_of_memory_outside_the_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("matcher.cli.inspect._load", _no_memory)
    result = CliRunner().invoke(main, ["validate", str(MAY2016)])
    assert result.exit_code == 6, result.output
    assert result.stderr.startswith("error: ran out of memory")


# --- copies of an Instance -----------------------------------------------------------------------


def test_model_copy_refuses_a_dangling_partner() -> None:
    """Removing one of a pre-formed pair leaves the other's partner pointing at no one."""
    inst = load_instance(MAY2016)
    pair = next(p for p in inst.participants if p.partner is not None)
    others = [p for p in inst.participants if p.id != pair.id]
    with pytest.raises(InvalidInstance) as caught:
        inst.model_copy(update={"participants": others})
    assert any(pair.id in p.ids or pair.id in p.message for p in caught.value.problems)


def test_model_copy_refuses_a_wrong_shape_and_unknown_fields() -> None:
    inst = Instance.model_validate(tiny_data())
    with pytest.raises(ValidationError):
        inst.model_copy(update={"nmae": "typo"})
    with pytest.raises(ValidationError):
        inst.model_copy(update={"cohorts": []})  # at least one cohort
    person = inst.participants[0]
    with pytest.raises(ValidationError):
        person.model_copy(update={"role": "surgeon"})


def test_model_copy_with_a_valid_change_gives_a_validated_instance() -> None:
    """Withdrawing both members of a pre-formed pair is a valid edit; the copy solves and
    verifies, and the original is untouched."""
    inst = load_instance(MAY2016)
    a = next(p for p in inst.participants if p.partner is not None)
    gone = {a.id, a.partner}
    people = [
        p.model_copy(update={"status": "withdrawn"}) if p.id in gone else p
        for p in inst.participants
    ]
    edited = inst.model_copy(update={"participants": people})
    assert isinstance(edited, Instance)
    assert {p.id for p in edited.participants if p.status == "withdrawn"} >= gone
    assert all(p.status == "active" for p in inst.participants if p.id in gone)
    plan = solve(edited)
    assert verify(edited, plan).ok
    assert not gone & {x for pair in plan.pairs for x in (pair.patient_leader, pair.partner)}
    assert inst.model_copy() == inst


# --- readers take binary streams -----------------------------------------------------------------


def test_load_instance_reads_a_binary_stream() -> None:
    with MAY2016.open("rb") as fh:
        from_file = load_instance(fh)
    assert from_file == load_instance(MAY2016)
    from_bytes = load_instance(io.BytesIO(MAY2016.read_bytes()))
    assert from_bytes == from_file


def test_a_stream_is_named_in_messages() -> None:
    bad = io.BytesIO(b'{"schema_version": "1", "name": "x", "cohorts": [], "participants": []}')
    with pytest.raises(InvalidInstance) as caught:
        load_instance(bad)
    assert caught.value.source == "<upload>"
    bad.seek(0)
    with pytest.raises(InvalidInstance) as caught:
        load_instance(bad, name="intake.json (upload)")
    assert caught.value.source == "intake.json (upload)"


def test_a_text_stream_is_the_caller_s_mistake() -> None:
    with pytest.raises(InvalidParameter, match="binary"):
        load_instance(io.StringIO("{}"))  # type: ignore[arg-type]


def test_a_stream_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("matcher.jsonio.MAX_FILE_BYTES", 1000)
    with pytest.raises(InvalidInstance, match="larger than"):
        load_instance(io.BytesIO(MAY2016.read_bytes()))


def test_workbook_and_csv_readers_take_streams(tmp_path: Path) -> None:
    original = load_instance(MAY2016)
    path = tmp_path / "may2016.xlsx"
    build_workbook(original.model_dump(mode="json", exclude_unset=True)).save(path)
    from_path = read_workbook(path)
    upload = io.BytesIO(path.read_bytes())
    from_stream = read_workbook(upload, name="may2016.xlsx")
    assert from_stream == from_path
    assert not upload.closed  # the caller's stream is left open
    upload.seek(0)
    upload.name = "may2016.xlsx"  # as an upload framework sets it
    assert load_any(upload) == Instance.model_validate(from_path)

    people = tmp_path / "people.csv"
    cohorts = tmp_path / "cohorts.csv"
    people.write_text(
        "ID,Role,Name,Organisation,Organisation type,Local system\n"
        "pl1,Patient leader,A,Trust A,NHS trust,North\n"
        "pr1,Clinician,B,Trust B,NHS trust,North\n",
        encoding="utf-8",
    )
    cohorts.write_text(
        "ID,Name,Sessions,Capacity (pairs),Mode,Min pairs per set\nc1,One,2016-05-12,4,Online,1\n",
        encoding="utf-8",
    )
    with people.open("rb") as p, cohorts.open("rb") as c:
        from_files = read_csv_files(p, c)
    assert from_files == read_csv_files(people, cohorts)


@pytest.mark.parametrize(
    ("raw", "messages"),
    [
        (
            b'{"a": [1, {"b": "x", "b": 2}], "c d": {"e": "\\ud800"}}',
            [
                "<key>.e: invalid Unicode (a lone surrogate \\uD8xx escape)",
                "a[1]: duplicate key 'b': JSON keys must be unique in an object",
            ],
        ),
        (b'[{"id": "' + b"x" * 300 + b'"}]', ["$[0].id: an ID of 300 characters; at most 200"]),
        (
            b'{"participants": [{"id": "p1", "name": "caf\\u00e9 \\udc00"}]}',
            ["participants[0].name: invalid Unicode (a lone surrogate \\uD8xx escape)"],
        ),
    ],
)
def test_json_value_problems_name_the_path(raw: bytes, messages: list[str]) -> None:
    """The strict JSON reader's value checks name each problem by its path (spelled out only
    for a problem): object keys, list indices, keys that are not plain names as <key>."""
    from matcher.jsonio import parse_json

    with pytest.raises(InvalidInstance) as caught:
        parse_json(raw, "t.json")
    assert [f"{p.path}: {p.message}" for p in caught.value.problems] == messages
