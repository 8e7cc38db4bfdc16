"""The command line: formats, files, exit codes, the committed schema."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher.cli import main
from matcher.cli.inspect import instance_json_schema, solution_json_schema
from matcher.contract.solution import Solution
from tests.conftest import MAY2016, REPO, write
from tests.test_pipeline import cohort, instance, lone_pairs


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_solve_table() -> None:
    code, out = invoke("solve", str(MAY2016))
    assert code == 0, out
    assert "may2016: optimal; 24 pairs (17 pre-formed)" in out
    for heading in ("Pairs", "Cohorts and action-learning sets", "Unmatched"):
        assert heading in out
    assert "c1-s1" in out and "pl18" in out


def test_solve_json_is_the_contract_and_deterministic(tmp_path: Path) -> None:
    out1, out2 = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke("solve", str(MAY2016), "--format", "json", "-o", str(out1))[0] == 0
    assert invoke("solve", str(MAY2016), "--format", "json", "-o", str(out2), "--seed", "0")[0] == 0
    assert out1.read_bytes() == out2.read_bytes()
    doc = json.loads(out1.read_text())
    sol = Solution.model_validate(doc)
    assert sol.schema_version == "1" and sol.instance == "may2016"
    assert {"pairs", "unmatched", "waitlist", "cohorts", "learning_sets", "metrics", "run"} <= set(
        doc
    )
    assert doc["run"]["time_s"] is None
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".*.tmp"))


def test_solve_timings_records_time() -> None:
    code, out = invoke("solve", str(MAY2016), "--format", "json", "--timings")
    assert code == 0
    assert json.loads(out)["run"]["time_s"] > 0


def test_solve_csv() -> None:
    code, out = invoke("solve", str(MAY2016), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 24 + 4
    assert rows[0]["pair"] == "pair-01" and rows[0]["cohort"]


def test_output_never_overwrites_input(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(MAY2016.read_bytes())
    before = path.read_bytes()
    code, out = invoke("solve", str(path), "--format", "json", "-o", str(path))
    assert code == 2
    assert "refusing to overwrite the input file" in out
    assert path.read_bytes() == before


def test_output_into_missing_directory(tmp_path: Path) -> None:
    code, out = invoke("solve", str(MAY2016), "-o", str(tmp_path / "no" / "x.json"))
    assert code == 2 and "does not exist" in out


def test_infeasible_exit_4(tmp_path: Path) -> None:
    people = lone_pairs(3)
    for k in range(3):
        people[2 * k + 1]["organisation"] = "big-trust"
    path = write(tmp_path, instance([cohort("c1", 8, lo=3, hi=4)], people))
    code, out = invoke("solve", str(path))
    assert code == 4
    assert "no plan meets the hard rules" in out
    assert "Traceback" not in out


def test_usage_error_exit_2() -> None:
    assert invoke("solve", str(MAY2016), "--format", "xml")[0] == 2
    assert invoke("solve")[0] == 2


def test_committed_schemas_are_current() -> None:
    committed = json.loads((REPO / "schemas" / "instance.schema.json").read_text())
    assert committed == instance_json_schema(), (
        "run: matcher schema -o schemas/instance.schema.json"
    )
    committed = json.loads((REPO / "schemas" / "solution.schema.json").read_text())
    assert committed == solution_json_schema(), (
        "run: matcher schema --solution -o schemas/solution.schema.json"
    )


def test_schema_command_prints_json_schema() -> None:
    code, out = invoke("schema")
    assert code == 0
    doc = json.loads(out)
    assert doc["title"] == "Instance" and "participants" in doc["properties"]


def test_scores_csv_and_json() -> None:
    code, out = invoke("scores", str(MAY2016))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 11 * 7  # lone patient leaders x lone professionals
    pair = next(r for r in rows if r["patient_leader"] == "pl23" and r["professional"] == "pr21")
    assert pair["forbidden"] == "true"  # declared conflict
    code, out = invoke("scores", str(MAY2016), "--format", "json", "--all")
    doc = json.loads(out)
    assert len(doc["rows"]) == 28 and len(doc["columns"]) == 24


def test_a_command_freezes_its_long_lived_heap_after_reading_the_intake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the `matcher` command's own process, what exists once the intake is read and checked
    lives until the process ends: it is frozen out of the collector's full passes
    (``gc.freeze``), which then walk only what the solve creates. A caller running commands
    in its own process (like these tests) keeps its collector as it was."""
    import gc

    from matcher.cli import group

    gc.unfreeze()
    try:
        data, _ = group._load_checked(MAY2016)
        assert data.participants
        assert gc.get_freeze_count() == 0  # not the command's own process
        monkeypatch.setattr(group, "ONE_SHOT", True)
        group._load_checked(MAY2016)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
