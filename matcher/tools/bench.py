"""Benchmark runs: instances × objectives × seeds, measured, verified and compared.

A *task* is one ``(instance path, objective, seed)``; :func:`run_task` solves it in
deterministic mode, times the solve, verifies the plan with :func:`matcher.verification.verify` and
flattens
``solution.metrics`` (:mod:`matcher.engine.metrics`) into one row, plus one row per cohort.
:func:`run_bench` runs every task on an executor and adds the figures that need several runs:
the price of fairness and of stability per (instance, seed), and a summary across seeds.

Executors (:data:`EXECUTORS`, a plain registry; an unknown name raises ``ValueError``):

- ``local``: a process pool on this machine (``jobs`` processes; ``jobs=1`` runs in-process).
- ``dask``: a Dask cluster (optional extra, ``pip install '.[dask]'``): the scheduler at
  ``scheduler`` if given, else a local cluster of ``jobs`` single-threaded worker processes.

Cores: a deterministic solve uses one CP-SAT worker, numba code is not parallel, and the pools
start their workers with one BLAS/OpenMP thread, so ``jobs`` parallel tasks use about ``jobs``
cores (the default, ``os.cpu_count()``). With a remote scheduler the cluster's owner decides:
start workers with ``--nthreads 1`` per core to keep the same budget.

Times (``time_s``) are wall-clock seconds of :func:`matcher.solve` alone (no file reading, no
verification); ``peak_rss_mb`` is the peak resident memory of the process that ran the task,
so far, which bounds the task's own peak from above (a pool worker may have run earlier tasks).
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import numbers
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

from matcher.engine.objectives import OBJECTIVES, Objective
from matcher.text import cell, csv_cell

#: Columns of a run row, in CSV order.
RUN_COLUMNS = (
    "instance",
    "file",
    "objective",
    "seed",
    "status",
    "verified",
    "violations",
    "time_s",
    "peak_rss_mb",
    "participants",
    "patient_leaders",
    "professionals",
    "pairs",
    "lone_pairs",
    "placed",
    "waitlisted",
    "unmatched",
    "unmatched_patient_leaders",
    "unmatched_professionals",
    "score_total",
    "score_mean",
    "score_median",
    "score_min",
    "lone_score_total",
    "lone_score_mean",
    "lone_score_median",
    "lone_score_min",
    "top3_share",
    "blocking_pairs",
    "sets",
    "set_diversity_mean",
    "set_diversity_least",
    "price_of_fairness",
    "price_of_stability",
)

#: Columns of a cohort row, in CSV order.
COHORT_COLUMNS = (
    "instance",
    "file",
    "objective",
    "seed",
    "cohort",
    "pairs",
    "capacity",
    "fill",
    "score_mean",
    "sets",
    "set_diversity_mean",
    "set_diversity_least",
)

#: Figures summarised across seeds (mean and std) per (instance, objective).
SUMMARY_FIGURES = (
    "time_s",
    "pairs",
    "placed",
    "waitlisted",
    "unmatched",
    "score_total",
    "score_mean",
    "score_min",
    "top3_share",
    "blocking_pairs",
    "set_diversity_mean",
    "set_diversity_least",
    "price_of_fairness",
    "price_of_stability",
)

#: Environment for worker processes: one thread per BLAS/OpenMP/numba pool, so that ``jobs``
#: processes stay within ``jobs`` cores. Set only where the caller has not chosen a value.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


class Task(NamedTuple):
    """One benchmark run: the instance file, the pairing objective and the seed."""

    path: str
    objective: str
    seed: int


Row = dict[str, Any]
Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each finished task."""


class ExecutorUnavailable(RuntimeError):
    """The chosen executor cannot run here (a missing optional package, an unreachable
    scheduler); the message says what to do."""


class Executor(Protocol):
    """Runs :func:`run_task` on every task and returns the results in task order."""

    def __call__(
        self,
        tasks: Sequence[Task],
        *,
        jobs: int,
        scheduler: str | None,
        progress: Progress | None,
    ) -> list[dict[str, Any]]: ...


def _peak_rss_mb() -> float | None:
    try:
        # Loaded on use: Unix only.
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _plain(value: Any) -> Any:
    """Python scalars for numpy ones, so rows print, pickle and serialise the same everywhere."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(float(x), digits)


def run_task(task: Task | tuple[str, str, int]) -> dict[str, Any]:
    """Solve one task and return ``{"run": row, "cohorts": [row, ...]}``.

    Top level and free of closures, so process pools and Dask can ship it. The plan is always
    verified; ``verified`` is ``False`` (and ``violations`` counts the broken rules) when
    :func:`matcher.verification.verify` finds anything, so a bad plan shows up in every output.
    """
    # Loaded on use (start-up time): the solver loads where the runs execute.
    from matcher.engine.solve import solve
    from matcher.intake.json_file import load_instance
    from matcher.verification.verify import verify

    path, objective, seed = task
    instance = load_instance(path)
    start = time.perf_counter()
    solution = solve(instance, seed=seed, objective=cast(Objective, objective), deterministic=True)
    elapsed = time.perf_counter() - start
    report = verify(instance, solution)

    m = solution.metrics
    assert m is not None  # solve always computes them
    pls, pros = m.people["patient_leaders"], m.people["professionals"]
    every, lone, sets = m.scores.all_pairs, m.scores.lone_pairs, m.sets
    run: Row = {
        "instance": instance.name,
        "file": str(path),
        "objective": objective,
        "seed": seed,
        "status": solution.status,
        "verified": report.ok,
        "violations": len(report.violations),
        "time_s": round(elapsed, 4),
        "peak_rss_mb": _peak_rss_mb(),
        "participants": len(instance.participants),
        "patient_leaders": pls.participants,
        "professionals": pros.participants,
        "pairs": len(solution.pairs),
        "lone_pairs": lone.count,
        # Every pair has exactly one patient leader, so the patient-leader side counts pairs.
        "placed": pls.placed,
        "waitlisted": pls.waitlisted,
        "unmatched": len(solution.unmatched),
        "unmatched_patient_leaders": pls.unmatched,
        "unmatched_professionals": pros.unmatched,
        "score_total": every.total,
        "score_mean": every.mean,
        "score_median": every.median,
        "score_min": every.min,
        "lone_score_total": lone.total,
        "lone_score_mean": lone.mean,
        "lone_score_median": lone.median,
        "lone_score_min": lone.min,
        "top3_share": m.top3_share,
        "blocking_pairs": m.blocking_pairs,
        "sets": sets.count,
        "set_diversity_mean": sets.mean_diversity,
        "set_diversity_least": sets.least_diversity,
        "price_of_fairness": None,
        "price_of_stability": None,
    }

    run = {k: _plain(v) for k, v in run.items()}

    score_of = {p.id: p.score for p in solution.pairs}
    fill = m.cohort_fill
    cohorts: list[Row] = []
    for plan in solution.cohorts or []:
        own_sets = [s for s in solution.learning_sets or [] if s.cohort == plan.id]
        divs = [s.diversity for s in own_sets if s.diversity is not None]
        scores = [score_of[p] for p in plan.pairs]
        f = fill.get(plan.id)
        cohorts.append(
            {
                "instance": instance.name,
                "file": str(path),
                "objective": objective,
                "seed": seed,
                "cohort": plan.id,
                "pairs": len(plan.pairs),
                "capacity": plan.capacity_pairs,
                "fill": f.fill if f is not None else None,
                "score_mean": _round(statistics.fmean(scores)) if scores else None,
                "sets": len(own_sets),
                "set_diversity_mean": _round(statistics.fmean(divs)) if divs else None,
                "set_diversity_least": _round(min(divs)) if divs else None,
            }
        )
    cohorts = [{k: _plain(v) for k, v in c.items()} for c in cohorts]
    return {"run": run, "cohorts": cohorts}


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Child processes started inside the block get :data:`SINGLE_THREAD_ENV` (their numpy is
    imported after they start, so the setting takes). The parent's environment is restored."""
    saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
    for k, v in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def _run_local(
    tasks: Sequence[Task], *, jobs: int, scheduler: str | None, progress: Progress | None
) -> list[dict[str, Any]]:
    """A process pool of ``jobs`` workers (``jobs=1``: in this process, in order)."""
    if scheduler is not None:
        raise ValueError("scheduler is for the dask executor; the local executor has none")
    total = len(tasks)
    if jobs == 1 or total <= 1:
        out = []
        for done, task in enumerate(tasks, 1):
            out.append(run_task(task))
            if progress:
                progress(done, total)
        return out

    # Loaded on use (start-up time): only the local executor runs processes.
    import concurrent.futures as cf
    import multiprocessing

    # Spawned (not forked) workers: a fresh interpreter reads SINGLE_THREAD_ENV before numpy
    # starts its BLAS threads, and no lock held by a parent thread is copied half-taken.
    context = multiprocessing.get_context("spawn")
    results: list[dict[str, Any] | None] = [None] * total
    with (
        _single_threaded_children(),
        cf.ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=context) as pool,
    ):
        # Every worker is spawned by these submits, inside the environment block.
        futures = {pool.submit(run_task, task): k for k, task in enumerate(tasks)}
        for done, fut in enumerate(cf.as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if progress:
                progress(done, total)
    return [r for r in results if r is not None]


def _run_dask(
    tasks: Sequence[Task], *, jobs: int, scheduler: str | None, progress: Progress | None
) -> list[dict[str, Any]]:
    """Dask: the scheduler at ``scheduler``, or a local cluster of ``jobs`` single-threaded
    worker processes (Dask's nannies start workers with one BLAS/OpenMP thread)."""
    try:
        # Loaded on use: an optional dependency (the dask extra).
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ExecutorUnavailable(
            "the dask executor needs Dask's distributed scheduler, which is not installed; "
            "install the optional extra with `pip install '.[dask]'` (from the matcher source "
            "tree) or use --executor local"
        ) from exc

    total = len(tasks)
    results: list[dict[str, Any] | None] = [None] * total
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=min(jobs, total),
                    threads_per_worker=1,
                    processes=True,
                    # Local only: the scheduler and workers listen on the loopback interface,
                    # and no dashboard is served (it would listen on every interface).
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout="20s"))
            except OSError as exc:
                raise ExecutorUnavailable(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc}); check the address "
                    "(e.g. tcp://host:8786) and that the scheduler is running"
                ) from exc
        # Unique keys: a shared scheduler must never hand back another bench's result.
        batch = uuid.uuid4().hex[:12]
        futures = [
            client.submit(run_task, task, key=f"matcher-bench-{batch}-{k}")
            for k, task in enumerate(tasks)
        ]
        index = {f.key: k for k, f in enumerate(futures)}
        for done, fut in enumerate(as_completed(futures), 1):
            results[index[fut.key]] = fut.result()
            if progress:
                progress(done, total)
    return [r for r in results if r is not None]


#: Executors by name. Add one by adding an entry; the CLI's choices are taken from here.
EXECUTORS: dict[str, Executor] = {"local": _run_local, "dask": _run_dask}


@dataclass(frozen=True)
class BenchResult:
    """Run rows (one per task) and cohort rows (one per cohort of each run), both ordered by
    instance (as given), objective (as given), seed, then cohort (as in the instance)."""

    runs: list[Row]
    cohorts: list[Row]

    @property
    def all_verified(self) -> bool:
        return all(r["verified"] for r in self.runs)

    def summary(self) -> list[Row]:
        """Per (instance, objective): runs, verified runs, and the mean and std (sample, across
        seeds; ``None`` with one seed) of each of :data:`SUMMARY_FIGURES`."""
        groups: dict[tuple[str, str, str], list[Row]] = {}
        for r in self.runs:
            groups.setdefault((r["file"], r["instance"], r["objective"]), []).append(r)
        out = []
        for (file, name, objective), rows in groups.items():
            row: Row = {
                "instance": name,
                "file": file,
                "objective": objective,
                "runs": len(rows),
                "verified": sum(bool(r["verified"]) for r in rows),
                "statuses": ",".join(sorted({r["status"] for r in rows})),
            }
            for fig in SUMMARY_FIGURES:
                values = [float(r[fig]) for r in rows if r[fig] is not None]
                row[f"{fig}_mean"] = _round(statistics.fmean(values)) if values else None
                row[f"{fig}_std"] = _round(statistics.stdev(values)) if len(values) > 1 else None
            out.append(row)
        return out

    def cohort_summary(self) -> list[Row]:
        """Per (instance, cohort, objective): mean across seeds of pairs, fill, mean pair score
        and least set diversity — for comparing the cohorts of one intake."""
        groups: dict[tuple[str, str, str, str], list[Row]] = {}
        for r in self.cohorts:
            groups.setdefault((r["file"], r["instance"], r["cohort"], r["objective"]), []).append(r)
        out = []
        for (file, name, cohort, objective), rows in groups.items():
            row: Row = {
                "instance": name,
                "file": file,
                "cohort": cohort,
                "objective": objective,
                "capacity": rows[0]["capacity"],
            }
            for fig in ("pairs", "fill", "score_mean", "set_diversity_least"):
                values = [float(r[fig]) for r in rows if r[fig] is not None]
                row[fig] = _round(statistics.fmean(values)) if values else None
            out.append(row)
        # Group by instance (as given), then cohort (as in the instance), then objective.
        first = {
            key: k for k, key in enumerate(dict.fromkeys((r["file"], r["cohort"]) for r in out))
        }
        return sorted(out, key=lambda r: first[(r["file"], r["cohort"])])

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "summary": self.summary(), "cohorts": self.cohorts}


def _price(base: float | None, other: float | None) -> float | None:
    """Relative loss of total pair score against the ``total`` objective's plan."""
    if base is None or other is None or not base > 0:
        return None
    return round((base - other) / base, 6)


def add_prices(runs: list[Row]) -> None:
    """Fill ``price_of_fairness`` (on ``fair`` rows) and ``price_of_stability`` (on ``stable``
    rows): (total score under ``total`` − total score under that objective) / total score
    under ``total``, for the same instance and seed; ``None`` when ``total`` was not run."""
    base = {(r["file"], r["seed"]): r["score_total"] for r in runs if r["objective"] == "total"}
    for r in runs:
        key = (r["file"], r["seed"])
        if r["objective"] == "fair":
            r["price_of_fairness"] = _price(base.get(key), r["score_total"])
        elif r["objective"] == "stable":
            r["price_of_stability"] = _price(base.get(key), r["score_total"])


def make_tasks(
    paths: Sequence[str | Path], objectives: Sequence[str], seeds: Sequence[int] | int
) -> list[Task]:
    """The task grid, ordered by instance, objective, seed (each as given, duplicates dropped)."""
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; valid: {', '.join(OBJECTIVES)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    return [
        Task(str(p), o, int(s))
        for p in dict.fromkeys(str(p) for p in paths)
        for o in dict.fromkeys(objectives)
        for s in dict.fromkeys(seed_list)
    ]


def run_bench(
    paths: Sequence[str | Path],
    objectives: Sequence[str] = OBJECTIVES,
    seeds: Sequence[int] | int = 3,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> BenchResult:
    """Run every (instance, objective, seed) and collect the rows.

    ``seeds`` is a list of seeds or a count ``N`` (seeds ``0..N-1``). Every instance is loaded
    and validated here first, so a bad file raises :class:`matcher.InstanceError` before any
    work starts. ``jobs`` defaults to ``os.cpu_count()``; see the module docstring for how the
    cores are shared.
    """
    # Loaded on use (start-up time): the solver loads where the runs execute.
    from matcher.intake.json_file import load_instance

    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    tasks = make_tasks(paths, objectives, seeds)
    for path in dict.fromkeys(t.path for t in tasks):
        load_instance(path)
    results = EXECUTORS[executor](tasks, jobs=jobs, scheduler=scheduler, progress=progress)
    runs = [r["run"] for r in results]
    cohorts = [c for r in results for c in r["cohorts"]]
    add_prices(runs)
    return BenchResult(runs=runs, cohorts=cohorts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        return repr(float(value))
    return str(value)


def rows_csv(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header of ``columns`` (empty cells for ``None``; file names and
    IDs through :func:`matcher.text.csv_cell`, so no cell runs as a spreadsheet formula)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(c) for c in columns])
    for r in rows:
        w.writerow([csv_cell(_cell(r.get(c))) for c in columns])
    return buf.getvalue()


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None:
        return "–"
    return format(value, spec)


def _mean_std(row: Row, fig: str, spec: str = ".3f") -> str:
    mean, std = row[f"{fig}_mean"], row[f"{fig}_std"]
    if mean is None:
        return "–"
    return _fmt(mean, spec) if not std else f"{_fmt(mean, spec)} ± {_fmt(std, spec)}"


def bench_tables(result: BenchResult) -> list[Any]:
    """Rich tables: one row per (instance, objective) with means across seeds; then, for each
    instance with more than one cohort, its cohorts side by side."""
    from rich import box  # on use: only `matcher bench` prints tables (start-up time)
    from rich.table import Table

    runs = Table(
        title="Benchmark: mean across seeds (± sample std)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    runs.add_column("instance", no_wrap=True)
    runs.add_column("objective", no_wrap=True)
    for name in (
        "verified",
        "time (s)",
        "pairs",
        "unmatched",
        "wait-listed",
        "mean score",
        "min score",
        "top-3 share",
        "blocking pairs",
        "least set div.",
        "price of fairness",
        "price of stability",
    ):
        runs.add_column(name, justify="right")
    for r in result.summary():
        ok = r["verified"] == r["runs"]
        runs.add_row(
            cell(r["instance"]),  # instance names and cohort IDs come from the files
            r["objective"],
            f"{r['verified']}/{r['runs']}" if ok else f"[bold red]{r['verified']}/{r['runs']}[/]",
            _mean_std(r, "time_s", ".2f"),
            _mean_std(r, "pairs", ".1f"),
            _mean_std(r, "unmatched", ".1f"),
            _mean_std(r, "waitlisted", ".1f"),
            _mean_std(r, "score_mean"),
            _mean_std(r, "score_min"),
            _mean_std(r, "top3_share"),
            _mean_std(r, "blocking_pairs", ".1f"),
            _mean_std(r, "set_diversity_least"),
            _mean_std(r, "price_of_fairness", ".2%"),
            _mean_std(r, "price_of_stability", ".2%"),
        )
    tables: list[Any] = [runs]

    rows = result.cohort_summary()
    by_file: dict[str, list[Row]] = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    multi = {f: rs for f, rs in by_file.items() if len({r["cohort"] for r in rs}) > 1}
    if multi:
        cohorts = Table(
            title="Cohorts within each instance: mean across seeds",
            box=box.SIMPLE_HEAD,
            title_justify="left",
        )
        for name in ("instance", "cohort", "objective"):
            cohorts.add_column(name, no_wrap=True)
        for name in ("pairs", "capacity", "fill", "mean score", "least set div."):
            cohorts.add_column(name, justify="right")
        for f, rs in multi.items():
            for k, r in enumerate(rs):
                cohorts.add_row(
                    cell(r["instance"]),
                    cell(r["cohort"]),
                    r["objective"],
                    _fmt(r["pairs"], ".1f"),
                    _fmt(r["capacity"], "d"),
                    _fmt(r["fill"], ".0%"),
                    _fmt(r["score_mean"]),
                    _fmt(r["set_diversity_least"]),
                    end_section=k == len(rs) - 1 and f != list(multi)[-1],
                )
        tables.append(cohorts)
    return tables
