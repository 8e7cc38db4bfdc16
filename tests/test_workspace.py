"""The workspace (matcher.workspace) on a real SQLite file: revisions and versions are never
overwritten, two writers never lose a decision, a stale re-plan is refused naming the newer
version, and a process killed during a write leaves every earlier version intact."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from matcher import load_instance, solve, verify
from matcher.intake.template import build_workbook
from matcher.workspace import (
    SCHEMA_VERSION,
    DecisionRefused,
    StaleVersion,
    Workspace,
    WorkspaceError,
)
from tests.conftest import MAY2016, REPO, pythonpath

MAY_BYTES = MAY2016.read_bytes()


def first_plan(ws: Workspace, intake: int) -> int:
    plan = ws.plan_input(intake)
    solution = solve(plan.instance, seed=0, previous=plan.previous)
    return ws.add_version(plan, solution, author="ana", objective="total", seed=0, time_limit=None)


def test_new_workspace_has_the_schema_and_wal(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert ws.schema_version() == SCHEMA_VERSION
    con = sqlite3.connect(ws.db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (ws.db.stat().st_mode & 0o777) == 0o600
    # opening again migrates nothing and keeps the data
    intake = ws.create_intake("May 2016", author="ana")
    assert [i.id for i in Workspace(tmp_path / "ws").intakes()] == [intake]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    con = sqlite3.connect(ws.db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(WorkspaceError, match="newer matcher"):
        Workspace(tmp_path / "ws")


def test_a_version_1_workspace_is_migrated_with_its_data(tmp_path: Path) -> None:
    """A file made at schema 1 (before the versions' count columns) opens at the current
    schema, its counts filled from the stored plans."""
    from matcher.workspace.store import MIGRATIONS

    db = tmp_path / "old" / "workspace.sqlite"
    db.parent.mkdir()
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    plan = solve(load_instance(MAY2016), seed=0)
    con.execute("INSERT INTO intakes VALUES (1, 'may', '2026-01-01T00:00:00+00:00', 'ana')")
    con.execute("INSERT INTO instances VALUES (1, 'x', ?)", (MAY_BYTES.decode(),))
    con.execute(
        "INSERT INTO versions VALUES (1, 1, 1, 1, 1, ?, 'optimal', 'total', 0, NULL, "
        "'2026-01-01T00:00:00+00:00', 'ana')",
        (plan.model_dump_json(),),
    )
    con.commit()
    con.close()
    ws = Workspace(db.parent)
    assert ws.schema_version() == SCHEMA_VERSION >= 2
    v = ws.version(1, 1)
    assert (v.pairs, v.placed, v.waitlisted, v.unmatched) == (
        len(plan.pairs),
        sum(1 for p in plan.pairs if p.cohort),
        len(plan.waitlist),
        len(plan.unmatched),
    )
    assert ws.integrity() == "ok"


def test_uploads_are_revisions_kept_byte_for_byte(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    intake = ws.create_intake("May 2016", author="ana")
    data = json.loads(MAY_BYTES)
    data["participants"][0]["role"] = "surgeon"
    data["cohorts"][1]["capacity_pairs"] = -3
    bad = json.dumps(data).encode()
    first = ws.add_upload(intake, [("may.json", bad)], author="ana")
    assert not first.valid and first.number == 1
    paths = " ".join(p.path for p in first.problems)
    assert "participants[0]" in paths and "cohorts[1]" in paths
    book = io.BytesIO()
    build_workbook(json.loads(MAY_BYTES)).save(book)
    second = ws.add_upload(intake, [("may.xlsx", book.getvalue())], author="bo")
    assert second.valid and second.number == 2 and second.kind == "workbook"
    assert ws.upload_bytes(intake, 1) == ("may.json", bad)
    assert ws.upload_bytes(intake, 2)[1] == book.getvalue()
    assert [r.number for r in ws.revisions(intake)] == [1, 2]
    assert ws.plan_input(intake).revision == 2
    assert second.summary.startswith("52 participants")
    assert not any("cannot be split" in w for w in second.warnings)
    # valid, with what it will cost said at once: c2 takes 5 pairs in sets of 3-4
    data = json.loads(MAY_BYTES)
    data["cohorts"][1]["capacity_pairs"] = 5
    third = ws.add_upload(intake, [("may.json", json.dumps(data).encode())], author="ana")
    assert third.valid and any("cohort c2" in w and "cannot be split" in w for w in third.warnings)


def test_a_csv_pair_is_one_revision(tmp_path: Path) -> None:
    import csv

    from matcher.intake.spreadsheet import COHORT_COLUMNS, PARTICIPANT_COLUMNS, rows_of

    data = json.loads(MAY_BYTES)
    files = []
    for name, records, columns in (
        ("people.csv", data["participants"], PARTICIPANT_COLUMNS),
        ("cohorts.csv", [{**c, **c.get("set_size", {})} for c in data["cohorts"]], COHORT_COLUMNS),
    ):
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([c.header for c in columns])
        writer.writerows(rows_of(records, columns))
        files.append((name, buf.getvalue().encode()))
    ws = Workspace(tmp_path / "ws")
    intake = ws.create_intake("May 2016", author="ana")
    rev = ws.add_upload(intake, files, author="ana")
    assert rev.valid, rev.problems
    assert rev.kind == "csv" and [f[1] for f in rev.files] == ["people.csv", "cohorts.csv"]
    assert len(ws.plan_input(intake).instance.participants) == len(data["participants"])
    assert ws.upload_bytes(intake, 1, "cohorts") == files[1]
    one = ws.add_upload(intake, files[:1], author="ana")
    assert not one.valid and "two files" in one.problems[0].message


def test_workbook_problems_name_sheet_row_and_column(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    intake = ws.create_intake("May 2016", author="ana")
    data = json.loads(MAY_BYTES)
    data["participants"][3]["role"] = "surgeon"
    book = io.BytesIO()
    build_workbook(data).save(book)
    rev = ws.add_upload(intake, [("may.xlsx", book.getvalue())], author="ana")
    assert not rev.valid
    text = " ".join(str(p) for p in rev.problems)
    assert "Participants" in text and "Role" in text and "5" in text, text
    assert "matcher-upload" not in text  # no temporary paths


def test_versions_decisions_and_change_lists(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    intake = ws.create_intake("May 2016", author="ana")
    ws.add_upload(intake, [("may2016.json", MAY_BYTES)], author="ana")
    assert first_plan(ws, intake) == 1
    with pytest.raises(DecisionRefused, match="no cohort both can attend"):
        ws.decide(intake, "lock", {"a": "pl24", "b": "pr20"}, author="ana")
    d = ws.decide(intake, "withdraw", {"participant": "pl01"}, author="bo")
    assert d.state == "pending" and d.words == "withdraw pl01"
    plan = ws.plan_input(intake)
    assert plan.latest == 1 and plan.pending == [d.id]
    solution = solve(plan.instance, seed=0, previous=plan.previous)
    assert verify(plan.instance, solution).ok
    assert (
        ws.add_version(plan, solution, author="bo", objective="total", seed=0, time_limit=None) == 2
    )
    assert [x.state for x in ws.decisions(intake)] == ["applied"]
    assert ws.versions(intake)[1].decisions == ["withdraw pl01"]
    changes = ws.changes(intake, 2)
    assert changes is not None and any("pl01" in c.participants for c in changes.items)
    instance, stored = ws.solution(intake, 2)
    assert stored == solution and not instance.participants_by_id()["pl01"].active
    # version 1 is untouched
    assert ws.solution(intake, 1)[0].participants_by_id()["pl01"].active


def test_decisions_are_replayed_on_a_new_upload(tmp_path: Path) -> None:
    """A corrected file uploaded after decisions: the decisions apply to it; one that no
    longer fits is named with the rule and cancelled by the next version, not applied."""
    ws = Workspace(tmp_path / "ws")
    intake = ws.create_intake("May 2016", author="ana")
    ws.add_upload(intake, [("may2016.json", MAY_BYTES)], author="ana")
    first_plan(ws, intake)
    kept = ws.decide(intake, "withdraw", {"participant": "pl19"}, author="ana")
    lost = ws.decide(intake, "lock", {"a": "pl20", "b": "pr20"}, author="ana")
    data = json.loads(MAY_BYTES)
    for p in data["participants"]:
        if p["id"] == "pr20":
            p["available_cohorts"] = ["c2"]  # pl20 can attend c1 only: the lock cannot hold
    ws.add_upload(intake, [("may2016.json", json.dumps(data).encode())], author="bo")
    plan = ws.plan_input(intake)
    assert plan.revision == 2 and plan.pending == [kept.id]
    assert [(d.id, "no cohort both can attend" in why) for d, why in plan.dropped] == [
        (lost.id, True)
    ]
    assert not plan.instance.participants_by_id()["pl19"].active
    solution = solve(plan.instance, seed=0, previous=plan.previous)
    ws.add_version(plan, solution, author="bo", objective="total", seed=0, time_limit=None)
    states = {d.id: (d.state, d.version) for d in ws.decisions(intake)}
    assert states == {kept.id: ("applied", 2), lost.id: ("cancelled", None)}


def test_stale_replan_is_refused_naming_the_newer_version(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    intake = ws.create_intake("May 2016", author="ana")
    ws.add_upload(intake, [("may2016.json", MAY_BYTES)], author="ana")
    first_plan(ws, intake)
    tab_a = ws.plan_input(intake)
    tab_b = ws.plan_input(intake)
    s = solve(tab_b.instance, seed=0, previous=tab_b.previous)
    ws.add_version(tab_b, s, author="bo", objective="total", seed=0, time_limit=None)
    with pytest.raises(StaleVersion, match="version 2 has been made"):
        ws.add_version(tab_a, s, author="ana", objective="total", seed=0, time_limit=None)
    assert [v.number for v in ws.versions(intake)] == [1, 2]


def test_two_writers_never_lose_a_decision(tmp_path: Path) -> None:
    """Two Workspace objects (two connections each call) decide at once from threads; then a
    decision that contradicts the other tab's is refused, not silently stored."""
    path = tmp_path / "ws"
    first = Workspace(path)
    intake = first.create_intake("May 2016", author="ana")
    first.add_upload(intake, [("may2016.json", MAY_BYTES)], author="ana")
    tabs = [Workspace(path), Workspace(path)]
    people = [["pl19", "pl21", "pl22"], ["pl25", "pl27", "pl28"]]
    errors: list[BaseException] = []

    def work(ws: Workspace, ids: list[str]) -> None:
        try:
            for pid in ids:
                ws.decide(intake, "withdraw", {"participant": pid}, author="tab")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(t, p)) for t, p in zip(tabs, people, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    kept = sorted(d.payload["participant"] for d in first.decisions(intake))
    assert kept == sorted(people[0] + people[1])
    tabs[0].decide(intake, "lock", {"a": "pl20", "b": "pr20"}, author="ana")
    with pytest.raises(DecisionRefused, match="contradiction"):
        tabs[1].decide(intake, "forbid", {"a": "pl20", "b": "pr20"}, author="bo")
    working = first.plan_input(intake).instance
    assert sum(not p.active for p in working.participants) == 6


WRITER = textwrap.dedent(
    """
    import sys
    from matcher import solve
    from matcher.workspace import Workspace
    ws = Workspace(sys.argv[1])
    intake = int(sys.argv[2])
    data = open(sys.argv[3], "rb").read()
    plan = ws.plan_input(intake)
    solution = solve(plan.instance, seed=0, previous=plan.previous)
    print("ready", flush=True)
    while True:
        ws.add_upload(intake, [("big.json", data + b" " * 4_000_000)], author="loop")
        plan = ws.plan_input(intake)
        ws.add_version(plan, solution, author="loop", objective="total", seed=0, time_limit=None)
        print("wrote", flush=True)
    """
)


def test_killed_during_writes_keeps_every_earlier_version(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    ws = Workspace(path)
    intake = ws.create_intake("May 2016", author="ana")
    ws.add_upload(intake, [("may2016.json", MAY_BYTES)], author="ana")
    first_plan(ws, intake)
    ws.decide(intake, "withdraw", {"participant": "pl19"}, author="ana")
    before = ws.solution(intake, 1)[1]
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(intake), str(MAY2016)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": pythonpath()},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        # Two revisions and versions written (counted, not timed), the next one under way.
        for _ in range(2):
            assert proc.stdout.readline().strip() == b"wrote"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    again = Workspace(path)
    assert again.integrity() == "ok"
    assert again.solution(intake, 1)[1] == before
    revisions = again.revisions(intake)
    versions = again.versions(intake)
    assert len(revisions) >= 2 and len(versions) >= 2  # the loop did write
    assert [r.number for r in revisions] == list(range(1, len(revisions) + 1))
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    for r in revisions[1:]:
        assert len(again.upload_bytes(intake, r.number)[1]) == len(MAY_BYTES) + 4_000_000
    decisions = again.decisions(intake)
    assert [d.payload for d in decisions] == [{"participant": "pl19"}]
    assert decisions[0].state == "applied" and decisions[0].version == 2
