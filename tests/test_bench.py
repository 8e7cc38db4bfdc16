"""`matcher bench` and matcher.tools.bench: rows, verification, prices, order, executors, CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher.cli import main
from matcher.errors import InvalidInstance
from matcher.tools import bench
from matcher.tools.bench import (
    COHORT_COLUMNS,
    GROUP_COLUMNS,
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


def test_a_run_is_judged_in_its_row(result: BenchResult) -> None:
    for row in result.runs:
        assert row["placed"] + row["waitlisted"] == row["pairs"]
        assert row["left_out"] == row["unmatched"] + 2 * row["waitlisted"]
        assert row["bound"] is not None and row["placed"] <= row["bound"]
        assert row["gap"] == pytest.approx((row["bound"] - row["placed"]) / row["bound"], abs=1e-6)
        assert row["outcome_placement"] in ("optimal", "feasible")
        assert row["outcome_learning_sets"] in ("optimal", "feasible")
        assert isinstance(row["notes"], int) and row["notes"] >= 1
        assert row["variant"] == "default" and row["score_weights"] == "own"
        assert row["error"] is None


def test_group_rows_are_tidy_and_suppressed_cells_empty(result: BenchResult) -> None:
    assert result.groups and all(set(g) == set(GROUP_COLUMNS) for g in result.groups)
    keys = {(g["file"], g["objective"], g["seed"], g["field"], g["value"]) for g in result.groups}
    assert len(keys) == len(result.groups)  # one row per run x field x value
    assert {g["field"] for g in result.groups} == {"role", "organisation_type", "system"}
    for g in result.groups:
        figures = [g[c] for c in GROUP_COLUMNS[GROUP_COLUMNS.index("people") :]]
        if g["suppressed"]:
            assert all(v is None for v in figures)
        else:
            assert g["people"] >= 5
            assert g["placed"] + g["waitlisted"] + g["unpaired"] == g["people"]
            assert g["placed_share"] == pytest.approx(g["placed"] / g["people"], abs=1e-6)
    # may2016: 28 patient leaders, 4 without a partner (the runs' unmatched)
    pl = [
        g
        for g in result.groups
        if g["instance"] == "may2016" and g["field"] == "role" and g["value"] == "patient_leader"
    ]
    assert pl and all((g["people"], g["unpaired"]) == (28, 4) for g in pl)
    frame = result.dataframe("groups")
    assert list(frame.columns) == list(GROUP_COLUMNS)
    numeric = frame[["people", "placed_share", "unpaired_share", "mean_score_placed"]]
    assert all(str(t).startswith(("float", "int", "Int", "Float")) for t in numeric.dtypes)
    assert frame.loc[frame["suppressed"], "people"].isna().all()


def test_dataframe_has_the_csv_columns(result: BenchResult) -> None:
    runs = result.dataframe()
    assert list(runs.columns) == list(RUN_COLUMNS) and len(runs) == len(result.runs)
    assert len(result.dataframe("comparisons")) == len(result.comparisons())
    with pytest.raises(ValueError, match="valid: runs, cohorts"):
        result.dataframe("nope")


def test_group_by_any_field_and_threshold(small: Path) -> None:
    got = run_bench(
        [small], ["total"], seeds=[0], jobs=1, group_by=["applied", "role"], min_group=0
    )
    assert {g["field"] for g in got.groups} == {"applied", "role"}
    assert not any(g["suppressed"] for g in got.groups)
    applied = {g["value"]: g for g in got.groups if g["field"] == "applied"}
    assert set(applied) <= {"alone", "with a partner"}
    assert sum(g["people"] for g in applied.values()) == got.runs[0]["participants"]
    with pytest.raises(ValueError, match="cannot group by"):
        run_bench([small], ["total"], seeds=[0], jobs=1, group_by=["email"])


def test_a_run_without_a_plan_is_recorded_and_the_rest_go_on(small: Path) -> None:
    tasks = [
        bench.Task(str(small), "total", 0),
        bench.Task(str(small), "total", 0, variant="broken", rules={"min_score": 2.0}),
        bench.Task(str(small), "fair", 0),
    ]
    with pytest.raises(InvalidInstance):  # a bad variant is refused before any work
        bench.run_tasks(tasks, jobs=1)
    seen: list[bench.BenchProgress] = []
    ok = [tasks[0], tasks[2]]
    got = bench.run_tasks(ok, jobs=1, progress=seen.append)
    assert seen[-1] == bench.BenchProgress(2, 0, 0, 2)
    # a solve that raises mid-study: recorded as failed, the next run still runs
    real = bench.apply_variant

    def explode(instance: object, rules: object, weights: object, **kw: object) -> object:
        if rules:
            raise RuntimeError("boom")
        return real(instance, rules, weights, **kw)  # type: ignore[arg-type]

    import unittest.mock as mock

    with (
        mock.patch.object(bench, "apply_variant", explode),
        mock.patch.object(bench, "_check_tasks", lambda tasks: None),
    ):
        got = bench.run_tasks(tasks, jobs=1, progress=seen.append)
    assert got.runs[1]["status"] == "failed" and got.runs[1]["variant"] == "broken"
    assert {got.runs[0]["status"], got.runs[2]["status"]} <= {"optimal", "feasible"}
    assert "RuntimeError" in got.runs[1]["error"] and "boom" not in got.runs[1]["error"]
    assert got.failed == [got.runs[1]] and seen[-1].failed == 1


def test_study_file_variants_rescore_and_dates(tmp_path: Path, small: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(
        f"""
seeds = 1
baseline = "default"
rescore_with = "default"
group_by = ["role"]

[[intakes]]
path = "{small}"
date = 2016-05-12

[[intakes]]
path = "{MAY2016}"

[[variants]]
name = "default"

[[variants]]
name = "interests-heavy"
weights = {{ interests = 3 }}
time_limit = 60

[[variants]]
name = "fair-soft"
objective = "fair"
rules = {{ one_organisation_per_set = "soft" }}
"""
    )
    got = bench.run_study(study, jobs=1)
    assert [(r["variant"], r["objective"]) for r in got.runs[:3]] == [
        ("default", "total"),
        ("interests-heavy", "total"),
        ("fair-soft", "fair"),
    ]
    assert got.baseline == ("default", "total")
    assert {r["intake_date"] for r in got.runs} == {"2016-05-12"} | {
        r["intake_date"] for r in got.runs if r["instance"] == "may2016"
    }
    may_date = next(r["intake_date"] for r in got.runs if r["instance"] == "may2016")
    assert may_date and may_date.startswith("2016")  # its first session
    assert all(r["score_weights"] == "default" for r in got.runs)
    assert next(r for r in got.runs if r["variant"] == "interests-heavy")["time_limit"] == 60.0
    # re-scored under one weighting: the same plan scores the same whatever the variant
    own = bench.run_study(study, jobs=1, rescore_with="interests-heavy")
    assert all(r["score_weights"] == "interests-heavy" for r in own.runs)
    assert {g["field"] for g in got.groups} == {"role"}
    assert {(c["variant"], c["objective"]) for c in got.comparisons()} == {
        ("interests-heavy", "total"),
        ("fair-soft", "fair"),
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = 1\n", "intakes"),
        ('[[intakes]]\npath = "nope.json"\n', "no such file"),
        ('[[intakes]]\npath = "X"\n[[variants]]\nname = "a"\nobjective = "best"\n', "objective"),
        ('[[intakes]]\npath = "X"\nbaseline = "zzz"\n', "baseline"),
        ('[[intakes]]\npath = "X"\ncolour = 1\n', "unknown key"),
        ('[[intakes]]\npath = "X"\ndate = "12/05/2016"\n', "YYYY-MM-DD"),
    ],
)
def test_bad_study_files_name_the_key(tmp_path: Path, small: Path, text: str, message: str) -> None:
    study = tmp_path / "study.toml"
    study.write_text(text.replace("X", str(small)))
    with pytest.raises(bench.StudyError, match=message):
        bench.load_study(study)


def test_prices_computed_from_totals(result: BenchResult) -> None:
    rows = {(r["file"], r["objective"], r["seed"]): r for r in result.runs}
    for (file, objective, seed), row in rows.items():
        base = rows[(file, "total", seed)]
        lost = 100 * (base["score_total"] - row["score_total"]) / base["score_total"]
        if objective == "fair":
            assert row["price_of_fairness_pct"] == pytest.approx(lost, abs=1e-3)
            assert row["price_of_stability_pct"] is None
        elif objective == "stable":
            assert row["price_of_stability_pct"] == pytest.approx(lost, abs=1e-3)
            assert row["price_of_fairness_pct"] is None
        else:
            assert row["price_of_fairness_pct"] is None and row["price_of_stability_pct"] is None
            assert row["placed_vs_baseline"] is None and row["baseline"] == "default/total"
            continue
        # people count in every comparison: placed and left out, against the same baseline
        assert row["placed_vs_baseline"] == row["placed"] - base["placed"]
        assert row["left_out_vs_baseline"] == row["left_out"] - base["left_out"]


def test_comparisons_side_by_side(result: BenchResult) -> None:
    rows = result.comparisons()
    runs = {(r["file"], r["objective"], r["seed"]): r for r in result.runs}
    measures = {m for m, _, _ in bench.MEASURES}
    assert {r["measure"] for r in rows} == measures
    for r in rows:
        assert (r["baseline_variant"], r["baseline_objective"]) == ("default", "total")
        assert r["objective"] != "total"
        column = {m: c for m, c, _ in bench.MEASURES}[r["measure"]]
        assert r["value"] == runs[(r["file"], r["objective"], r["seed"])][column]
        assert r["baseline_value"] == runs[(r["file"], "total", r["seed"])][column]
        if r["value"] is not None and r["baseline_value"] is not None:
            assert r["difference"] == pytest.approx(r["value"] - r["baseline_value"], abs=1e-6)


def test_prices_need_the_total_objective(small: Path) -> None:
    only = run_bench([small], ["fair"], seeds=[0], jobs=1)
    assert only.runs[0]["price_of_fairness_pct"] is None
    assert only.baseline == ("default", "fair") and only.comparisons() == []


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


def test_dask_local_cluster_prints_its_dashboard_on_localhost(small: Path) -> None:
    pytest.importorskip("distributed")
    links: list[str] = []
    got = run_bench([small], ["total"], seeds=1, executor="dask", jobs=1, on_dashboard=links.append)
    assert got.runs[0]["verified"]
    assert len(links) == 1 and links[0].startswith("http://127.0.0.1:")


def test_cli_writes_csv_and_json(tmp_path: Path, small: Path) -> None:
    out_csv, out_json, cohorts = tmp_path / "b.csv", tmp_path / "b.json", tmp_path / "c.csv"
    args = ["bench", str(small), "--seeds", "1", "--jobs", "1", "--objective", "total"]
    res = CliRunner().invoke(main, [*args, "--objective", "fair", "-o", str(out_csv)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [r["objective"] for r in rows] == ["total", "fair"]
    assert list(rows[0]) == list(RUN_COLUMNS)
    assert rows[0]["verified"] == "true" and rows[1]["price_of_fairness_pct"] != ""
    assert "price of fairness" in res.output

    res = CliRunner().invoke(main, [*args, "-o", str(out_json), "--cohorts-output", str(cohorts)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out_json.read_text())
    assert set(doc) == {"baseline", "runs", "summary", "comparisons", "cohorts", "groups"}
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
