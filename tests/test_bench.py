"""`matcher bench` and matcher.tools.bench: rows, verification, prices, order, executors, CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher.cli import main
from matcher.tools.bench import (
    COHORT_COLUMNS,
    OBJECTIVES,
    RUN_COLUMNS,
    BenchResult,
    make_tasks,
    run_bench,
)
from matcher.tools.generate import generate_instance
from tests.conftest import MAY2016, write


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-participant synthetic intake (matcher.tools.generate, seed 1)."""
    return write(tmp_path_factory.mktemp("bench"), generate_instance(40, seed=1), "small.json")


@pytest.fixture(scope="module")
def result(small: Path) -> BenchResult:
    return run_bench([MAY2016, small], OBJECTIVES, seeds=2, jobs=1)


def test_rows_complete_and_verified(result: BenchResult, small: Path) -> None:
    assert len(result.runs) == 2 * 3 * 2
    for row in result.runs:
        assert set(row) == set(RUN_COLUMNS)
        assert row["verified"] is True and row["violations"] == 0
        assert row["status"] in ("optimal", "feasible")
        assert row["time_s"] > 0 and row["pairs"] > 0
        assert row["placed"] + row["waitlisted"] <= row["pairs"]
    may = [r for r in result.runs if r["instance"] == "may2016"]
    assert {(r["pairs"], r["unmatched"], r["patient_leaders"]) for r in may} == {(24, 4, 28)}
    assert result.all_verified
    for row in result.cohorts:
        assert set(row) == set(COHORT_COLUMNS)
    # Every pair placed in a cohort is counted in exactly one cohort row.
    for run in result.runs:
        mine = [
            c
            for c in result.cohorts
            if (c["file"], c["objective"], c["seed"])
            == (run["file"], run["objective"], run["seed"])
        ]
        assert sum(c["pairs"] for c in mine) == run["placed"]
    assert {c["cohort"] for c in result.cohorts if c["instance"] == "may2016"} == {"c1", "c2", "c3"}


def test_prices_computed_from_totals(result: BenchResult) -> None:
    rows = {(r["file"], r["objective"], r["seed"]): r for r in result.runs}
    for (file, objective, seed), row in rows.items():
        base = rows[(file, "total", seed)]["score_total"]
        if objective == "fair":
            assert row["price_of_fairness"] == pytest.approx(
                (base - row["score_total"]) / base, abs=1e-6
            )
            assert row["price_of_stability"] is None
        elif objective == "stable":
            assert row["price_of_stability"] == pytest.approx(
                (base - row["score_total"]) / base, abs=1e-6
            )
            assert row["price_of_fairness"] is None
        else:
            assert row["price_of_fairness"] is None and row["price_of_stability"] is None


def test_prices_need_the_total_objective(small: Path) -> None:
    only = run_bench([small], ["fair"], seeds=[0], jobs=1)
    assert only.runs[0]["price_of_fairness"] is None


def test_deterministic_row_order(result: BenchResult, small: Path) -> None:
    keys = [(r["file"], r["objective"], r["seed"]) for r in result.runs]
    assert keys == [
        (str(t.path), t.objective, t.seed) for t in make_tasks([MAY2016, small], OBJECTIVES, 2)
    ]
    assert keys[0] == (str(MAY2016), "total", 0) and keys[-1] == (str(small), "stable", 1)
    summary = result.summary()
    assert [(s["instance"], s["objective"]) for s in summary][:3] == [
        ("may2016", "total"),
        ("may2016", "fair"),
        ("may2016", "stable"),
    ]
    assert all(s["runs"] == 2 == s["verified"] for s in summary)
    assert summary[0]["time_s_std"] is not None


def test_unknown_executor_names_the_valid_ones(small: Path) -> None:
    with pytest.raises(ValueError, match="valid executors: local, dask"):
        run_bench([small], ["total"], seeds=1, executor="slurm")


def test_unknown_objective(small: Path) -> None:
    with pytest.raises(ValueError, match="valid: total, fair, stable"):
        run_bench([small], ["greedy"], seeds=1, jobs=1)


def test_dask_executor_against_a_local_cluster(small: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        got = run_bench(
            [small],
            ["total", "fair"],
            seeds=1,
            executor="dask",
            scheduler=cluster.scheduler_address,
        )
    local = run_bench([small], ["total", "fair"], seeds=1, jobs=1)
    assert [r["objective"] for r in got.runs] == ["total", "fair"]
    assert all(r["verified"] for r in got.runs)
    drop = ("time_s", "peak_rss_mb")
    assert [{k: v for k, v in r.items() if k not in drop} for r in got.runs] == [
        {k: v for k, v in r.items() if k not in drop} for r in local.runs
    ]
    assert got.cohorts == local.cohorts


def test_cli_writes_csv_and_json(tmp_path: Path, small: Path) -> None:
    out_csv, out_json, cohorts = tmp_path / "b.csv", tmp_path / "b.json", tmp_path / "c.csv"
    args = ["bench", str(small), "--seeds", "1", "--jobs", "1", "--objective", "total"]
    res = CliRunner().invoke(main, [*args, "--objective", "fair", "-o", str(out_csv)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [r["objective"] for r in rows] == ["total", "fair"]
    assert list(rows[0]) == list(RUN_COLUMNS)
    assert rows[0]["verified"] == "true" and rows[1]["price_of_fairness"] != ""
    assert "price of fairness" in res.output

    res = CliRunner().invoke(main, [*args, "-o", str(out_json), "--cohorts-output", str(cohorts)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out_json.read_text())
    assert set(doc) == {"runs", "summary", "cohorts"}
    assert doc["runs"][0]["verified"] is True and doc["summary"][0]["runs"] == 1
    assert next(iter(csv.DictReader(io.StringIO(cohorts.read_text()))))["cohort"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_bad_instance_exits_3(tmp_path: Path, tiny: dict) -> None:
    tiny["cohorts"][0]["capacity_pairs"] = -1
    bad = write(tmp_path, tiny, "bad.json")
    res = CliRunner().invoke(main, ["bench", str(bad), "--jobs", "1", "--seeds", "1"])
    assert res.exit_code == 3
    assert "capacity_pairs" in res.output


def test_cli_refuses_unknown_extension_and_the_input(tmp_path: Path, small: Path) -> None:
    base = ["bench", str(small), "--jobs", "1", "--seeds", "1", "--objective", "total"]
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "out.txt")])
    assert res.exit_code == 2 and "--format" in res.output
    res = CliRunner().invoke(main, [*base, "-o", str(small), "--format", "json"])
    assert res.exit_code == 2 and "refusing to overwrite" in res.output
    res = CliRunner().invoke(main, [*base, "--executor", "slurm"])
    assert res.exit_code == 2 and "local" in res.output and "dask" in res.output
