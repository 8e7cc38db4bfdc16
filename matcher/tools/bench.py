"""Benchmark runs: intakes × variants × objectives × seeds, measured, verified and compared.

A *task* (:class:`Task`) is one intake file solved once: an objective, a seed and a *variant*
(a named set of rule and weight overrides, a proposing side and a time limit; ``default``
changes nothing). :func:`run_task` solves it in deterministic mode, times the solve, verifies
the plan with :func:`matcher.verification.verify` and returns one *run row*, one row per
cohort and one *group row* per (group field, value) (:func:`matcher.engine.metrics.
group_outcomes`). A run that raises (no plan in its time limit, an infeasible variant, a bug)
is recorded with its status and the error's kind, and the others go on.

:func:`run_bench` runs every task on an executor and adds what needs several runs: each run
against the *baseline* run of the same intake and seed (pairs placed, people left out, score,
worst new pair, blocking pairs: :meth:`BenchResult.comparisons`; the price of fairness and of
stability in percent) and summaries across seeds. :func:`run_study` reads a study file
(:func:`load_study`, format in ``docs/bench.md``). Every column is documented, with its unit,
in ``docs/bench.md`` (a test checks that each column of every table is there).

Executors (:data:`EXECUTORS`, a plain registry; an unknown name raises ``ValueError``):

- ``local``: a process pool on this machine (``jobs`` processes; ``jobs=1`` runs in-process).
- ``dask``: a Dask cluster (optional extra, ``pip install '.[dask]'``): the scheduler at
  ``scheduler`` if given, else a local cluster of ``jobs`` single-threaded worker processes
  bound to 127.0.0.1, whose dashboard link is handed to ``on_dashboard``.

Cores: a deterministic solve uses one CP-SAT worker, numba code is not parallel, and the pools
start their workers with one BLAS/OpenMP thread, so ``jobs`` parallel tasks use about ``jobs``
cores (the default, ``os.cpu_count()``). With a remote scheduler the cluster's owner decides:
start workers with ``--nthreads 1`` per core to keep the same budget.

Times (``time_s``) are wall-clock seconds of :func:`matcher.solve` alone (no file reading, no
verification); ``peak_rss_mb`` is the peak resident memory of the process that ran the task,
so far, which bounds the task's own peak from above (a pool worker may have run earlier tasks).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import datetime as dt
import io
import math
import multiprocessing
import numbers
import os
import statistics
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol, cast

from rich import box
from rich.table import Table

from matcher.engine.metrics import (
    GROUP_FIELDS,
    GROUP_FIGURES,
    MIN_GROUP,
    group_outcomes,
    groupable_fields,
)
from matcher.engine.objectives import (
    DEFAULT,
    OBJECTIVES,
    PROPOSERS,
    REFERENCE,
    REGISTRY,
    Objective,
    Proposer,
)
from matcher.engine.scoring import pair_scores
from matcher.engine.solve import solve
from matcher.errors import Infeasible, InvalidInstance, MatcherError, NoPlanInTime
from matcher.intake.json_file import load_instance, parse_instance
from matcher.text import cell, csv_cell
from matcher.verification.verify import verify

#: The stages whose outcome (optimal / feasible) a run row carries, as ``outcome_<stage>``.
STAGES = ("placement", "learning_sets")

#: Columns of a run row, in CSV order.
RUN_COLUMNS = (
    "instance",
    "file",
    "intake_date",
    "variant",
    "objective",
    "proposer",
    "seed",
    "time_limit",
    "status",
    "error",
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
    "left_out",
    "unmatched_patient_leaders",
    "unmatched_professionals",
    "bound",
    "gap",
    *(f"outcome_{s}" for s in STAGES),
    "notes",
    "score_weights",
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
    "baseline",
    "placed_vs_baseline",
    "left_out_vs_baseline",
    "score_total_vs_baseline_pct",
    "price_of_fairness_pct",
    "price_of_stability_pct",
)

#: The columns that say which run a row belongs to (in every table).
KEY_COLUMNS = ("instance", "file", "intake_date", "variant", "objective", "seed")

#: Columns of a cohort row, in CSV order.
COHORT_COLUMNS = (
    *KEY_COLUMNS,
    "cohort",
    "pairs",
    "capacity",
    "fill",
    "score_mean",
    "sets",
    "set_diversity_mean",
    "set_diversity_least",
)

#: Columns of a group row (tidy: one row per run × group field × group value), in CSV order.
GROUP_COLUMNS = (
    *KEY_COLUMNS,
    "field",
    "value",
    "suppressed",
    *GROUP_FIGURES,
)

#: Columns of a comparison row (one per run × measure, against the baseline run).
COMPARISON_COLUMNS = (
    "instance",
    "file",
    "intake_date",
    "seed",
    "baseline_variant",
    "baseline_objective",
    "variant",
    "objective",
    "measure",
    "unit",
    "baseline_value",
    "value",
    "difference",
)

#: What a comparison sets side by side: (measure, run column, unit). Differences are
#: ``value - baseline_value`` in the measure's unit (more pairs placed: positive).
MEASURES = (
    ("pairs placed", "placed", "pairs"),
    ("people left out", "left_out", "people"),
    ("total score", "score_total", "score points"),
    ("mean score", "score_mean", "score (0-1)"),
    ("worst new pair", "lone_score_min", "score (0-1)"),
    ("blocking pairs", "blocking_pairs", "pairs"),
)

#: Figures summarised across seeds (mean and std) per (intake, variant, objective).
SUMMARY_FIGURES = (
    "time_s",
    "pairs",
    "placed",
    "waitlisted",
    "unmatched",
    "left_out",
    "bound",
    "gap",
    "notes",
    "score_total",
    "score_mean",
    "score_min",
    "lone_score_min",
    "top3_share",
    "blocking_pairs",
    "set_diversity_mean",
    "set_diversity_least",
    "placed_vs_baseline",
    "left_out_vs_baseline",
    "score_total_vs_baseline_pct",
    "price_of_fairness_pct",
    "price_of_stability_pct",
)

#: Environment for worker processes: one thread per BLAS/OpenMP/numba pool, so that ``jobs``
#: processes stay within ``jobs`` cores. Set only where the caller has not chosen a value.
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}

#: Status of a run that raised instead of returning a plan (beside the plan statuses optimal,
#: feasible, infeasible and timeout).
FAILED = "failed"


class Task(NamedTuple):
    """One benchmark run. ``rules`` and ``weights`` override the intake's (a variant);
    ``rescore`` re-scores the plan under ``(label, weights)`` (``weights`` None: the intake's
    own); ``group_by`` and ``min_group`` shape the group rows."""

    path: str
    objective: str
    seed: int
    variant: str = "default"
    proposer: str = "patient_leader"
    rules: Mapping[str, Any] | None = None
    weights: Mapping[str, Any] | None = None
    time_limit: float | None = None
    rescore: tuple[str, Mapping[str, Any] | None] | None = None
    group_by: tuple[str, ...] = GROUP_FIELDS
    min_group: int = MIN_GROUP
    intake_date: str | None = None


Row = dict[str, Any]


@dataclass(frozen=True)
class BenchProgress:
    """Where a bench stands: runs finished (``done``, failed ones included), running now,
    failed (no plan, or a plan that failed verification) and in all."""

    done: int
    running: int
    failed: int
    total: int


Progress = Callable[[BenchProgress], None]
"""Called with a :class:`BenchProgress` whenever a run starts or ends."""


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
        on_dashboard: Callable[[str], None] | None,
    ) -> list[dict[str, Any]]: ...


def _peak_rss_mb() -> float | None:
    try:
        import resource  # lazy: Unix only (absent on Windows)
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


def apply_variant(
    instance: Any,
    rules: Mapping[str, Any] | None,
    weights: Mapping[str, Any] | None,
    *,
    source: str = "<instance>",
) -> Any:
    """``instance`` with ``rules`` and ``weights`` laid over its own (validated like a file:
    an unknown rule or a bad value raises :class:`matcher.errors.InvalidInstance`). Whole
    numbers given as weights count as floats (TOML writes ``1`` for ``1.0``)."""
    if not rules and not weights:
        return instance

    data = instance.model_dump(mode="json", exclude_none=True)
    data["rules"] = {**data.get("rules", {}), **dict(rules or {})}
    data["weights"] = {
        **data.get("weights", {}),
        **{
            k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in (weights or {}).items()
        },
    }
    return parse_instance(data, source=source)


def _failed_row(task: Task, instance_name: str, status: str, error: str) -> Row:
    row: Row = dict.fromkeys(RUN_COLUMNS)
    row.update(
        instance=instance_name,
        file=task.path,
        intake_date=task.intake_date,
        variant=task.variant,
        objective=task.objective,
        proposer=task.proposer,
        seed=task.seed,
        time_limit=task.time_limit,
        status=status,
        error=error,
        verified=False,
        notes=0,
    )
    return row


def _nothing(run: Row) -> dict[str, Any]:
    return {"run": run, "cohorts": [], "groups": []}


def _score_stats(values: list[float]) -> tuple[float, float | None, float | None, float | None]:
    if not values:
        return 0.0, None, None, None
    return (
        round(sum(values), 6),
        _round(statistics.fmean(values)),
        _round(statistics.median(values)),
        _round(min(values)),
    )


def run_task(task: Task | tuple[Any, ...]) -> dict[str, Any]:
    """Solve one task and return ``{"run": row, "cohorts": [...], "groups": [...]}``.

    Top level and free of closures, so process pools and Dask can ship it. The plan is always
    verified; ``verified`` is ``False`` (and ``violations`` counts the broken rules) when
    :func:`matcher.verification.verify` finds anything, so a bad plan shows up in every output.
    A solve that raises gives a run row with status ``timeout`` (no plan in the time limit),
    ``infeasible``, ``invalid`` (the variant breaks the instance format) or ``failed`` (a bug)
    and the error's kind in ``error``; it never stops the other runs.
    """
    task = task if isinstance(task, Task) else Task(*task)
    base = load_instance(task.path)
    try:
        instance = apply_variant(
            base, task.rules, task.weights, source=f"{task.path} (variant {task.variant})"
        )
        start = time.perf_counter()
        solution = solve(
            instance,
            seed=task.seed,
            objective=cast(Objective, task.objective),
            proposer=cast(Proposer, task.proposer),
            time_limit=task.time_limit,
            deterministic=True,
        )
        elapsed = time.perf_counter() - start
    except NoPlanInTime:
        return {
            "run": _failed_row(task, base.name, "timeout", "no plan within the time limit"),
            "cohorts": [],
            "groups": [],
        }
    except Infeasible as exc:
        kind = f"proven infeasible: {exc}".splitlines()[0][:300]
        return {
            "run": _failed_row(task, base.name, "infeasible", kind),
            "cohorts": [],
            "groups": [],
        }
    except InvalidInstance as exc:
        kind = f"variant does not give a valid instance: {exc}".splitlines()[0][:300]
        return {"run": _failed_row(task, base.name, "invalid", kind), "cohorts": [], "groups": []}
    except MatcherError as exc:  # messages carry IDs only (project rule)
        kind = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        return {"run": _failed_row(task, base.name, FAILED, kind), "cohorts": [], "groups": []}
    except Exception as exc:  # a bug: recorded by kind only (no data in it)
        kind = f"{type(exc).__name__} (a bug in matcher; re-run this task alone with --debug)"
        return {"run": _failed_row(task, base.name, FAILED, kind), "cohorts": [], "groups": []}
    report = verify(instance, solution)

    m = solution.metrics
    assert m is not None  # solve always computes them
    pls, pros = m.people["patient_leaders"], m.people["professionals"]
    every, lone, sets = m.scores.all_pairs, m.scores.lone_pairs, m.sets
    weights_label = "own"
    rescored: dict[str, float] | None = None
    all_stats = (every.total, every.mean, every.median, every.min)
    lone_stats = (lone.total, lone.mean, lone.median, lone.min)
    if task.rescore is not None:
        label, weights = task.rescore
        judge = apply_variant(base, None, weights, source=f"{task.path} (weights {label})")
        pairs = [(p.patient_leader, p.partner) for p in solution.pairs]
        scores = pair_scores(judge, pairs)[0].tolist() if pairs else []
        all_stats = _score_stats(scores)
        lone_stats = _score_stats(
            [s for s, p in zip(scores, solution.pairs, strict=True) if not p.preformed]
        )
        weights_label = label
        rescored = {p.id: float(x) for p, x in zip(solution.pairs, scores, strict=True)}
    run = {
        "instance": instance.name,
        "file": task.path,
        "intake_date": task.intake_date,
        "variant": task.variant,
        "objective": task.objective,
        "proposer": task.proposer,
        "seed": task.seed,
        "time_limit": task.time_limit,
        "status": solution.status,
        "error": None,
        "verified": report.ok,
        "violations": len(report.violations),
        "time_s": round(elapsed, 4),
        "peak_rss_mb": _peak_rss_mb(),
        "participants": sum(1 for p in instance.participants if p.active),
        "patient_leaders": pls.participants,
        "professionals": pros.participants,
        "pairs": len(solution.pairs),
        "lone_pairs": lone.count,
        # Every pair has exactly one patient leader, so the patient-leader side counts pairs.
        "placed": pls.placed,
        "waitlisted": pls.waitlisted,
        "unmatched": len(solution.unmatched),
        "left_out": len(solution.unmatched) + 2 * pls.waitlisted,
        "unmatched_patient_leaders": pls.unmatched,
        "unmatched_professionals": pros.unmatched,
        "bound": solution.run.bound,
        "gap": solution.run.gap,
        **{f"outcome_{s}": solution.run.outcomes.get(s) for s in STAGES},
        "notes": len(solution.run.notes),
        "score_weights": weights_label,
        "score_total": all_stats[0],
        "score_mean": all_stats[1],
        "score_median": all_stats[2],
        "score_min": all_stats[3],
        "lone_score_total": lone_stats[0],
        "lone_score_mean": lone_stats[1],
        "lone_score_median": lone_stats[2],
        "lone_score_min": lone_stats[3],
        "top3_share": m.top3_share,
        "blocking_pairs": m.blocking_pairs,
        "sets": sets.count,
        "set_diversity_mean": sets.mean_diversity,
        "set_diversity_least": sets.least_diversity,
        **dict.fromkeys(RUN_COLUMNS[RUN_COLUMNS.index("baseline") :]),
    }
    run = {k: _plain(v) for k, v in run.items()}
    key = {k: run[k] for k in KEY_COLUMNS}

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
                **key,
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
    groups = [
        {**key, **g}
        for g in group_outcomes(
            instance, solution, task.group_by, min_group=task.min_group, scores=rescored
        )
    ]
    return {"run": run, "cohorts": cohorts, "groups": groups}


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


def _is_failure(result: dict[str, Any]) -> bool:
    run = result["run"]
    return run["status"] not in ("optimal", "feasible") or not run["verified"]


def _lost(task: Task, exc: BaseException) -> dict[str, Any]:
    """The result of a task whose worker died or whose result never came back."""
    kind = f"{type(exc).__name__}: the worker running this task stopped"
    return {
        "run": _failed_row(task, Path(task.path).stem, FAILED, kind),
        "cohorts": [],
        "groups": [],
    }


def _run_local(
    tasks: Sequence[Task],
    *,
    jobs: int,
    scheduler: str | None,
    progress: Progress | None,
    on_dashboard: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """A process pool of ``jobs`` workers (``jobs=1``: in this process, in order)."""
    if scheduler is not None:
        raise ValueError("scheduler is for the dask executor; the local executor has none")
    total = len(tasks)
    failed = 0
    if jobs == 1 or total <= 1:
        out = []
        for done, task in enumerate(tasks):
            if progress:
                progress(BenchProgress(done, 1, failed, total))
            result = run_task(task)
            failed += _is_failure(result)
            out.append(result)
        if progress:
            progress(BenchProgress(total, 0, failed, total))
        return out

    # Spawned (not forked) workers: a fresh interpreter reads SINGLE_THREAD_ENV before numpy
    # starts its BLAS threads, and no lock held by a parent thread is copied half-taken.
    context = multiprocessing.get_context("spawn")
    with (
        _single_threaded_children(),
        cf.ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=context) as pool,
    ):
        # Every worker is spawned by these submits, inside the environment block.
        futures = {pool.submit(run_task, task): k for k, task in enumerate(tasks)}

        def wait_some(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            finished, left = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            return set(finished), set(left)

        return _collect(
            tasks,
            futures,
            wait_some,
            lambda pending: min(sum(f.running() for f in pending), jobs),
            progress,
        )


def _collect(
    tasks: Sequence[Task],
    futures: dict[Any, int],
    wait_some: Callable[[set[Any]], tuple[set[Any], set[Any]]],
    running: Callable[[set[Any]], int],
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """The results of ``futures`` (future -> task index) in task order, whichever executor runs
    them: ``wait_some`` returns the finished and the pending futures within about half a second,
    ``running`` how many are running (for progress). A task whose worker died or was lost gets a
    failed row of its own; the others are kept."""
    total = len(tasks)
    results: list[dict[str, Any] | None] = [None] * total
    pending = set(futures)
    done = failed = 0
    while pending:
        if progress:
            progress(BenchProgress(done, running(pending), failed, total))
        finished, pending = wait_some(pending)
        for fut in finished:
            k = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # a dead or lost worker fails its task only
                result = _lost(tasks[k], exc)
            results[k] = result
            failed += _is_failure(result)
            done += 1
    if progress:
        progress(BenchProgress(done, 0, failed, total))
    return [r for r in results if r is not None]


def _run_dask(
    tasks: Sequence[Task],
    *,
    jobs: int,
    scheduler: str | None,
    progress: Progress | None,
    on_dashboard: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Dask: the scheduler at ``scheduler``, or a local cluster of ``jobs`` single-threaded
    worker processes bound to 127.0.0.1 (Dask's nannies start workers with one BLAS/OpenMP
    thread). The dashboard link goes to ``on_dashboard``."""
    try:
        from distributed import Client, LocalCluster, wait  # lazy: optional (dask extra)
    except ImportError as exc:
        raise ExecutorUnavailable(
            "the dask executor needs Dask's distributed scheduler, which is not installed; "
            "install the optional extra with `pip install '.[dask]'` (from the matcher source "
            "tree) or use --executor local"
        ) from exc

    total = len(tasks)
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            workers = min(jobs, total)
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    # Local only: the scheduler, workers and dashboard listen on the
                    # loopback interface (the dashboard on a free port, its link printed).
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",
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
            workers = max(len(client.scheduler_info().get("workers", {})), 1)
        if on_dashboard is not None:
            with contextlib.suppress(Exception):  # no dashboard (bokeh missing): no link
                link = client.dashboard_link
                if link:
                    on_dashboard(str(link))
        # Unique keys: a shared scheduler must never hand back another bench's result.
        batch = uuid.uuid4().hex[:12]
        futures = [
            client.submit(run_task, task, key=f"matcher-bench-{batch}-{k}", pure=False)
            for k, task in enumerate(tasks)
        ]
        index = {f: k for k, f in enumerate(futures)}

        def wait_some(pending: set[Any]) -> tuple[set[Any], set[Any]]:
            try:
                finished, left = wait(list(pending), timeout=0.5, return_when="FIRST_COMPLETED")
            except TimeoutError:  # Dask's wait raises when nothing finished in time
                return set(), pending
            return set(finished), set(left)

        return _collect(
            tasks, index, wait_some, lambda pending: min(workers, len(pending)), progress
        )


#: Executors by name. Add one by adding an entry; the CLI's choices are taken from here.
EXECUTORS: dict[str, Executor] = {"local": _run_local, "dask": _run_dask}


def _summarise(rows: list[Row], keys: Sequence[str], figures: Sequence[str]) -> list[Row]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        row: Row = dict(zip(keys, key, strict=True))
        row["runs"] = len(members)
        for fig in figures:
            values = [float(r[fig]) for r in members if r.get(fig) is not None]
            row[f"{fig}_mean"] = _round(statistics.fmean(values)) if values else None
            row[f"{fig}_std"] = _round(statistics.stdev(values)) if len(values) > 1 else None
        out.append(row)
    return out


@dataclass(frozen=True)
class BenchResult:
    """Run rows (one per task), cohort rows (one per cohort of each run) and group rows (one
    per run × group field × value), each ordered by intake (as given), variant, objective,
    seed (as given), then cohort or group. ``baseline`` is the (variant, objective) every run
    is compared with (:meth:`comparisons`)."""

    runs: list[Row]
    cohorts: list[Row]
    groups: list[Row] = field(default_factory=list)
    baseline: tuple[str, str] | None = None

    @property
    def all_verified(self) -> bool:
        """Every run that produced a plan passed the checker."""
        return all(r["verified"] for r in self.runs if r["status"] in ("optimal", "feasible"))

    @property
    def measures(self) -> tuple[tuple[str, str, str], ...]:
        """What :meth:`comparisons` sets side by side (:data:`MEASURES`)."""
        return MEASURES

    @property
    def failed(self) -> list[Row]:
        """Runs without a plan (timeout, infeasible, invalid variant, failed)."""
        return [r for r in self.runs if r["status"] not in ("optimal", "feasible")]

    def summary(self) -> list[Row]:
        """Per (intake, variant, objective): runs, verified runs, statuses, and the mean and
        std (sample, across seeds; ``None`` with one seed) of each of :data:`SUMMARY_FIGURES`
        over the runs that produced a plan."""
        keys = ("instance", "file", "intake_date", "variant", "objective")
        out = _summarise(
            [r for r in self.runs if r["status"] in ("optimal", "feasible")],
            keys,
            SUMMARY_FIGURES,
        )
        by_key = {tuple(r[k] for k in keys): r for r in out}
        ordered = []
        for key in dict.fromkeys(tuple(r[k] for k in keys) for r in self.runs):
            mine = [r for r in self.runs if tuple(r[k] for k in keys) == key]
            row = by_key.get(key) or {
                **dict(zip(keys, key, strict=True)),
                **{f"{f}_{s}": None for f in SUMMARY_FIGURES for s in ("mean", "std")},
            }
            row["runs"] = len(mine)
            row["verified"] = sum(bool(r["verified"]) for r in mine)
            row["statuses"] = ",".join(sorted({r["status"] for r in mine}))
            ordered.append(row)
        return ordered

    def cohort_summary(self) -> list[Row]:
        """Per (intake, cohort, variant, objective): mean across seeds of pairs, fill, mean pair
        score and least set diversity — for comparing the cohorts of one intake."""
        keys = ("instance", "file", "cohort", "variant", "objective")
        groups: dict[tuple[Any, ...], list[Row]] = {}
        for r in self.cohorts:
            groups.setdefault(tuple(r[k] for k in keys), []).append(r)
        out = []
        for key, rows in groups.items():
            row: Row = dict(zip(keys, key, strict=True))
            row["capacity"] = rows[0]["capacity"]
            for fig in ("pairs", "fill", "score_mean", "set_diversity_least"):
                values = [float(r[fig]) for r in rows if r[fig] is not None]
                row[fig] = _round(statistics.fmean(values)) if values else None
            out.append(row)
        first = {
            key: k for k, key in enumerate(dict.fromkeys((r["file"], r["cohort"]) for r in out))
        }
        return sorted(out, key=lambda r: first[(r["file"], r["cohort"])])

    def group_summary(self) -> list[Row]:
        """Per (intake, variant, objective, field, value): mean across seeds of people, shares
        placed, wait-listed and unpaired and the mean score of the placed; ``suppressed`` when
        the group was suppressed in any run (its figures are then None)."""
        keys = ("instance", "file", "intake_date", "variant", "objective", "field", "value")
        groups: dict[tuple[Any, ...], list[Row]] = {}
        for r in self.groups:
            groups.setdefault(tuple(r[k] for k in keys), []).append(r)
        out = []
        for key, rows in groups.items():
            row: Row = dict(zip(keys, key, strict=True))
            row["runs"] = len(rows)
            row["suppressed"] = any(r["suppressed"] for r in rows)
            for fig in (
                "people",
                "placed_share",
                "waitlisted_share",
                "unpaired_share",
                "mean_score_placed",
            ):
                values = [float(r[fig]) for r in rows if r[fig] is not None]
                ok = values and not row["suppressed"]
                row[fig] = _round(statistics.fmean(values)) if ok else None
            out.append(row)
        return out

    def comparisons(self) -> list[Row]:
        """Each run against the baseline run of the same intake and seed, measure by measure
        (:data:`MEASURES`): both values and ``value - baseline_value``, in the measure's unit.
        Runs without a plan, and intakes and seeds without a baseline run, are left out."""
        if self.baseline is None:
            return []
        bv, bo = self.baseline
        base = {
            (r["file"], r["seed"]): r
            for r in self.runs
            if (r["variant"], r["objective"]) == (bv, bo) and r["status"] in ("optimal", "feasible")
        }
        out: list[Row] = []
        for r in self.runs:
            b = base.get((r["file"], r["seed"]))
            if b is None or b is r or r["status"] not in ("optimal", "feasible"):
                continue
            for measure, column, unit in MEASURES:
                x, y = b[column], r[column]
                out.append(
                    {
                        "instance": r["instance"],
                        "file": r["file"],
                        "intake_date": r["intake_date"],
                        "seed": r["seed"],
                        "baseline_variant": bv,
                        "baseline_objective": bo,
                        "variant": r["variant"],
                        "objective": r["objective"],
                        "measure": measure,
                        "unit": unit,
                        "baseline_value": x,
                        "value": y,
                        "difference": None if x is None or y is None else _round(y - x),
                    }
                )
        return out

    def comparison_summary(self) -> list[Row]:
        """Per (intake, variant, objective, measure): the mean over seeds of the baseline
        value, the value and the difference."""
        keys = ("instance", "file", "variant", "objective", "measure", "unit")
        groups: dict[tuple[Any, ...], list[Row]] = {}
        for r in self.comparisons():
            groups.setdefault(tuple(r[k] for k in keys), []).append(r)
        out = []
        for key, rows in groups.items():
            row: Row = dict(zip(keys, key, strict=True))
            row["runs"] = len(rows)
            for fig in ("baseline_value", "value", "difference"):
                values = [float(r[fig]) for r in rows if r[fig] is not None]
                row[fig] = _round(statistics.fmean(values)) if values else None
            out.append(row)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": list(self.baseline) if self.baseline else None,
            "runs": self.runs,
            "summary": self.summary(),
            "comparisons": self.comparisons(),
            "cohorts": self.cohorts,
            "groups": self.groups,
        }

    def dataframe(self, table: str = "runs") -> Any:
        """One table as a pandas DataFrame (``runs``, ``cohorts``, ``groups``, ``comparisons``,
        ``summary``), columns in CSV order; needs pandas (in the ``test`` extra, or
        ``pip install pandas``). Empty cells are ``None``/NaN, never text."""
        try:
            import pandas as pd  # lazy: optional (the test extra); the error below says so
        except ImportError as exc:  # pragma: no cover - pandas is in the test extra
            raise ImportError(
                "BenchResult.dataframe needs pandas: pip install pandas (or use .runs, "
                ".groups, ... which are lists of dicts)"
            ) from exc
        tables: dict[str, tuple[list[Row], Sequence[str] | None]] = {
            "runs": (self.runs, RUN_COLUMNS),
            "cohorts": (self.cohorts, COHORT_COLUMNS),
            "groups": (self.groups, GROUP_COLUMNS),
            "comparisons": (self.comparisons(), COMPARISON_COLUMNS),
            "summary": (self.summary(), None),
        }
        if table not in tables:
            raise ValueError(f"unknown table {table!r}; valid: {', '.join(tables)}")
        rows, columns = tables[table]
        return pd.DataFrame(rows, columns=list(columns) if columns else None)


def _pct(base: float | None, other: float | None) -> float | None:
    """(other - base) / base in percent; None without a positive base."""
    if base is None or other is None or not base > 0:
        return None
    return round(100.0 * (other - base) / base, 4)


def add_prices(runs: list[Row], baseline: tuple[str, str] | None) -> None:
    """Fill the ``*_vs_baseline`` columns of every run that has a baseline run (same intake
    and seed; not on the baseline's own row) and, when the baseline's objective is ``total``,
    ``price_of_fairness_pct`` on ``fair`` runs and ``price_of_stability_pct`` on ``stable``
    runs: the total score given up against the baseline, in percent of its total (negative:
    the run scores more, which happens when it places other or more people)."""
    if baseline is None:
        return
    base = {
        (r["file"], r["seed"]): r
        for r in runs
        if (r["variant"], r["objective"]) == baseline and r["status"] in ("optimal", "feasible")
    }
    for r in runs:
        b = base.get((r["file"], r["seed"]))
        if b is None or r["status"] not in ("optimal", "feasible"):
            continue
        r["baseline"] = f"{baseline[0]}/{baseline[1]}"
        if b is r:
            continue
        r["placed_vs_baseline"] = r["placed"] - b["placed"]
        r["left_out_vs_baseline"] = r["left_out"] - b["left_out"]
        change = _pct(b["score_total"], r["score_total"])
        r["score_total_vs_baseline_pct"] = change
        kind = REGISTRY.get(r["objective"])
        price = kind.price_field if kind is not None else None
        if baseline[1] == REFERENCE.name and change is not None and price is not None:
            r[price] = round(-change, 4) + 0.0


def make_tasks(
    paths: Sequence[str | Path],
    objectives: Sequence[str],
    seeds: Sequence[int] | int,
    *,
    time_limit: float | None = None,
    group_by: Sequence[str] = GROUP_FIELDS,
    min_group: int = MIN_GROUP,
    rescore: tuple[str, Mapping[str, Any] | None] | None = None,
) -> list[Task]:
    """The task grid, ordered by intake, objective, seed (each as given, duplicates dropped),
    all under the ``default`` variant."""
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {unknown}; valid: {', '.join(OBJECTIVES)}")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    return [
        Task(
            str(p),
            o,
            int(s),
            time_limit=time_limit,
            group_by=tuple(group_by),
            min_group=min_group,
            rescore=rescore,
        )
        for p in dict.fromkeys(str(p) for p in paths)
        for o in dict.fromkeys(objectives)
        for s in dict.fromkeys(seed_list)
    ]


def _check_tasks(tasks: Sequence[Task]) -> None:
    """Every intake and variant is read and validated before any work starts: a bad file or
    a bad override raises :class:`matcher.errors.InvalidInstance`; a bad group field,
    objective or proposer raises ``ValueError``."""
    loaded = {}
    for path in dict.fromkeys(t.path for t in tasks):
        loaded[path] = load_instance(path)
    known = groupable_fields()
    seen = set()
    for t in tasks:
        if t.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {t.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if t.proposer not in PROPOSERS:
            raise ValueError(f"unknown proposer {t.proposer!r}; valid: {', '.join(PROPOSERS)}")
        bad = [f for f in t.group_by if f not in known]
        if bad:
            raise ValueError(f"cannot group by {bad}; valid fields: {', '.join(known)}")
        if t.min_group < 0:
            raise ValueError(f"min_group must be 0 or more, got {t.min_group}")
        if t.time_limit is not None and not t.time_limit > 0:
            raise ValueError(f"time limit must be above 0 seconds, got {t.time_limit}")
        key = (t.path, t.variant)
        if key in seen:
            continue
        seen.add(key)
        src = f"{t.path} (variant {t.variant})"
        apply_variant(loaded[t.path], t.rules, t.weights, source=src)
        if t.rescore is not None:
            apply_variant(loaded[t.path], None, t.rescore[1], source=f"{t.path} (rescore)")


def run_tasks(
    tasks: Sequence[Task],
    *,
    baseline: tuple[str, str] | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    on_dashboard: Callable[[str], None] | None = None,
) -> BenchResult:
    """Run ``tasks`` (validated first: :func:`_check_tasks`) and collect the rows; compare
    each run with ``baseline`` (variant, objective), by default the ``default`` variant under
    the default objective when some task has it, else the first task's."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if jobs is None:
        jobs = os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    _check_tasks(tasks)
    if baseline is None and tasks:
        arms = [(t.variant, t.objective) for t in tasks]
        reference = ("default", DEFAULT)
        baseline = reference if reference in arms else arms[0]
    results = EXECUTORS[executor](
        tasks, jobs=jobs, scheduler=scheduler, progress=progress, on_dashboard=on_dashboard
    )
    runs = [r["run"] for r in results]
    cohorts = [c for r in results for c in r["cohorts"]]
    groups = [g for r in results for g in r["groups"]]
    add_prices(runs, baseline)
    return BenchResult(runs=runs, cohorts=cohorts, groups=groups, baseline=baseline)


def run_bench(
    paths: Sequence[str | Path],
    objectives: Sequence[str] = OBJECTIVES,
    seeds: Sequence[int] | int = 3,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    time_limit: float | None = None,
    group_by: Sequence[str] = GROUP_FIELDS,
    min_group: int = MIN_GROUP,
    on_dashboard: Callable[[str], None] | None = None,
) -> BenchResult:
    """Run every (intake, objective, seed) and collect the rows.

    ``seeds`` is a list of seeds or a count ``N`` (seeds ``0..N-1``); ``time_limit`` is each
    run's limit in seconds (``solve(time_limit=...)``); ``group_by`` the participant fields of
    the group rows, ``min_group`` their suppression threshold. Every intake is loaded and
    validated first, so a bad file raises :class:`matcher.errors.InvalidInstance` before any
    work starts. ``jobs`` defaults to ``os.cpu_count()``; see the module docstring for how the
    cores are shared. Runs are compared with the ``total`` objective's run when there is one.
    """
    tasks = make_tasks(
        paths,
        objectives,
        seeds,
        time_limit=time_limit,
        group_by=group_by,
        min_group=min_group,
    )
    return run_tasks(
        tasks,
        executor=executor,
        scheduler=scheduler,
        jobs=jobs,
        progress=progress,
        on_dashboard=on_dashboard,
    )


# --------------------------------------------------------------------------- study files


class StudyError(ValueError):
    """A study file that cannot be run: the message names the file, the key and what to do."""


@dataclass(frozen=True)
class Variant:
    """A named way to solve: objective, proposer, rule and weight overrides, time limit."""

    name: str
    objective: str = DEFAULT
    proposer: str = "patient_leader"
    rules: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, Any] = field(default_factory=dict)
    time_limit: float | None = None


@dataclass(frozen=True)
class Intake:
    """One intake of a study: its file, and its date (for quality over time)."""

    path: str
    date: str | None = None


@dataclass(frozen=True)
class Study:
    intakes: list[Intake]
    variants: list[Variant]
    seeds: list[int]
    baseline: str
    rescore_with: str | None = None
    group_by: tuple[str, ...] = GROUP_FIELDS
    min_group: int = MIN_GROUP

    def tasks(self, *, rescore_with: str | None = None) -> list[Task]:
        """Intakes × variants × seeds, in that order; ``rescore_with`` (a variant's name, or
        ``default``: the intake's own weights) overrides the file's."""
        name = rescore_with if rescore_with is not None else self.rescore_with
        rescore: tuple[str, Mapping[str, Any] | None] | None = None
        if name is not None:
            by_name = {v.name: v for v in self.variants}
            if name in by_name:
                rescore = (name, dict(by_name[name].weights) or None)
            elif name == "default":
                rescore = ("default", None)
            else:
                valid = ", ".join(["default", *by_name])
                raise StudyError(f"--rescore-with {name!r}: not a variant; valid: {valid}")
        return [
            Task(
                intake.path,
                v.objective,
                s,
                variant=v.name,
                proposer=v.proposer,
                rules=dict(v.rules) or None,
                weights=dict(v.weights) or None,
                time_limit=v.time_limit,
                rescore=rescore,
                group_by=self.group_by,
                min_group=self.min_group,
                intake_date=intake.date,
            )
            for intake in self.intakes
            for v in self.variants
            for s in self.seeds
        ]


_STUDY_KEYS = {"intakes", "variants", "seeds", "baseline", "rescore_with", "group_by", "min_group"}
_INTAKE_KEYS = {"path", "date"}
_VARIANT_KEYS = {"name", "objective", "proposer", "rules", "weights", "time_limit"}


def _first_session(path: str) -> str | None:
    dates = [d for c in load_instance(path).cohorts for d in c.sessions]
    return str(min(dates)) if dates else None


def load_study(path: str | Path, *, time_limit: float | None = None) -> Study:
    """Read a study file (TOML; format in ``docs/bench.md``). Intake paths are relative to the
    file. An intake without ``date`` is dated by its earliest cohort session. ``time_limit``
    applies to variants that set none. Raises :class:`StudyError` naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"{path}: cannot read the study file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: not a valid TOML file ({exc})") from None

    def fail(key: str, message: str) -> StudyError:
        return StudyError(f"{path}: {key}: {message}")

    extra = sorted(set(data) - _STUDY_KEYS)
    if extra:
        raise fail(extra[0], f"unknown key; valid keys: {', '.join(sorted(_STUDY_KEYS))}")
    raw_intakes = data.get("intakes")
    if not isinstance(raw_intakes, list) or not raw_intakes:
        raise fail("intakes", 'give at least one [[intakes]] table with path = "file.json"')
    intakes = []
    for k, item in enumerate(raw_intakes):
        where = f"intakes[{k}]"
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise fail(where, 'each intake needs path = "file.json"')
        extra = sorted(set(item) - _INTAKE_KEYS)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown key; valid: {', '.join(_INTAKE_KEYS)}")
        file = Path(item["path"])
        file = file if file.is_absolute() else path.parent / file
        date = item.get("date")
        if isinstance(date, dt.date):
            date = date.isoformat()
        elif date is not None:
            try:
                date = dt.date.fromisoformat(str(date)).isoformat()
            except ValueError:
                raise fail(f"{where}.date", "give the date as YYYY-MM-DD") from None
        if not file.is_file():
            raise fail(f"{where}.path", f"no such file: {file}")
        intakes.append(Intake(str(file), date))
    raw_variants = data.get("variants", [{"name": "default"}])
    if not isinstance(raw_variants, list) or not raw_variants:
        raise fail("variants", 'give [[variants]] tables, each with name = "..."')
    variants: list[Variant] = []
    for k, item in enumerate(raw_variants):
        where = f"variants[{k}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise fail(where, 'each variant needs name = "..."')
        extra = sorted(set(item) - _VARIANT_KEYS)
        if extra:
            raise fail(f"{where}.{extra[0]}", f"unknown key; valid: {', '.join(_VARIANT_KEYS)}")
        if item["name"] in {v.name for v in variants}:
            raise fail(f"{where}.name", f"{item['name']!r} is used twice")
        objective = item.get("objective", DEFAULT)
        if objective not in OBJECTIVES:
            raise fail(f"{where}.objective", f"valid: {', '.join(OBJECTIVES)}")
        proposer = item.get("proposer", "patient_leader")
        if proposer not in PROPOSERS:
            raise fail(f"{where}.proposer", f"valid: {', '.join(PROPOSERS)}")
        for key in ("rules", "weights"):
            if not isinstance(item.get(key, {}), dict):
                raise fail(f"{where}.{key}", "give a table, e.g. {{ interests = 0.5 }}")
        limit = item.get("time_limit", time_limit)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0
        ):
            raise fail(f"{where}.time_limit", "give seconds above 0")
        variants.append(
            Variant(
                item["name"],
                objective,
                proposer,
                item.get("rules", {}),
                item.get("weights", {}),
                None if limit is None else float(limit),
            )
        )
    seeds_raw = data.get("seeds", 1)
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool) and seeds_raw >= 1:
        seeds = list(range(seeds_raw))
    elif isinstance(seeds_raw, list) and seeds_raw and all(isinstance(s, int) for s in seeds_raw):
        seeds = list(dict.fromkeys(seeds_raw))
    else:
        raise fail("seeds", "give a count (seeds 0..N-1) or a list of seeds")
    baseline = data.get("baseline", variants[0].name)
    if baseline not in {v.name for v in variants}:
        raise fail("baseline", f"not a variant; valid: {', '.join(v.name for v in variants)}")
    rescore = data.get("rescore_with")
    if rescore is not None and rescore != "default" and rescore not in {v.name for v in variants}:
        raise fail("rescore_with", "give default or a variant's name")
    group_by = data.get("group_by", list(GROUP_FIELDS))
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise fail("group_by", 'give a list of participant fields, e.g. ["role", "system"]')
    min_group = data.get("min_group", MIN_GROUP)
    if isinstance(min_group, bool) or not isinstance(min_group, int) or min_group < 0:
        raise fail("min_group", "give a whole number of people, 0 or more")
    dated = [
        Intake(i.path, i.date if i.date is not None else _first_session(i.path)) for i in intakes
    ]
    return Study(dated, variants, seeds, baseline, rescore, tuple(group_by), min_group)


def run_study(
    study: Study | str | Path,
    *,
    rescore_with: str | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    on_dashboard: Callable[[str], None] | None = None,
) -> BenchResult:
    """Run a study (a :class:`Study` or the path of a study file): intakes × variants ×
    seeds, each run labelled by its variant and compared with the baseline variant's run."""
    if not isinstance(study, Study):
        study = load_study(study)
    tasks = study.tasks(rescore_with=rescore_with)
    base = next(v for v in study.variants if v.name == study.baseline)
    return run_tasks(
        tasks,
        baseline=(base.name, base.objective),
        executor=executor,
        scheduler=scheduler,
        jobs=jobs,
        progress=progress,
        on_dashboard=on_dashboard,
    )


# --------------------------------------------------------------------------- output


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


#: Groups per field in the terminal's "placed least" table.
GROUPS_SHOWN = 3


def _signed(value: Any, spec: str) -> str:
    if value is None:
        return "–"
    return format(value, "+" + spec)


def bench_tables(result: BenchResult) -> list[Any]:
    """Rich tables: one row per (intake, variant, objective) with means across seeds; the
    comparison with the baseline; groups; then, for each intake with more than one cohort,
    its cohorts side by side."""
    variants = len({r["variant"] for r in result.runs}) > 1
    runs = Table(
        title="Benchmark: mean across seeds (± sample std)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    runs.add_column("intake", no_wrap=True)
    if variants:
        runs.add_column("variant", no_wrap=True)
    runs.add_column("objective", no_wrap=True)
    for name in (
        "verified",
        "time (s)",
        "placed (pairs)",
        "bound (pairs)",
        "wait-listed (pairs)",
        "unmatched (people)",
        "left out (people)",
        "mean score",
        "worst new pair",
        "blocking pairs",
        "least set div.",
        "price of fairness (%)",
        "price of stability (%)",
    ):
        runs.add_column(name, justify="right")
    for r in result.summary():
        ok = r["verified"] == r["runs"]
        runs.add_row(
            cell(r["instance"]),  # intake names come from the files
            *([cell(r["variant"])] if variants else []),
            r["objective"],
            f"{r['verified']}/{r['runs']}" if ok else f"[bold red]{r['verified']}/{r['runs']}[/]",
            _mean_std(r, "time_s", ".2f"),
            _mean_std(r, "placed", ".1f"),
            _mean_std(r, "bound", ".1f"),
            _mean_std(r, "waitlisted", ".1f"),
            _mean_std(r, "unmatched", ".1f"),
            _mean_std(r, "left_out", ".1f"),
            _mean_std(r, "score_mean"),
            _mean_std(r, "lone_score_min"),
            _mean_std(r, "blocking_pairs", ".1f"),
            _mean_std(r, "set_diversity_least"),
            _mean_std(r, "price_of_fairness_pct", ".2f"),
            _mean_std(r, "price_of_stability_pct", ".2f"),
        )
    tables: list[Any] = [runs]

    comparisons = result.comparison_summary()
    if comparisons and result.baseline is not None:
        bv, bo = result.baseline
        t = Table(
            title=f"Against the baseline ({bv}, {bo}), mean across seeds: this run (difference "
            "= this run - baseline)",
            box=box.SIMPLE_HEAD,
            title_justify="left",
        )
        for name in ("intake", *(["variant"] if variants else []), "objective"):
            t.add_column(name, no_wrap=True)
        for measure, _, unit in MEASURES:
            t.add_column(f"{measure} ({unit})", justify="right")
        arms: dict[tuple[str, str, str], dict[str, Row]] = {}
        for r in comparisons:
            arms.setdefault((r["instance"], r["variant"], r["objective"]), {})[r["measure"]] = r
        for (name, variant, objective), cells in arms.items():
            shown = []
            for measure, _, unit in MEASURES:
                got = cells.get(measure)
                spec = ".1f" if unit in ("pairs", "people") else ".3f"
                if got is None:
                    shown.append("–")
                    continue
                value, diff = _fmt(got["value"], spec), _signed(got["difference"], spec)
                shown.append(f"{value} ({diff})")
            t.add_row(cell(name), *([cell(variant)] if variants else []), objective, *shown)
        tables.append(t)

    groups = [r for r in result.group_summary() if not r["suppressed"]]
    if groups:
        t = Table(
            title=f"Groups placed least: the {GROUPS_SHOWN} lowest shares placed per field "
            "(mean across seeds; every group is in the groups output and the report)",
            box=box.SIMPLE_HEAD,
            title_justify="left",
        )
        for name in ("intake", *(["variant"] if variants else []), "objective", "field", "value"):
            t.add_column(name, no_wrap=True)
        for name in ("people", "placed", "wait-listed", "unpaired", "mean score placed"):
            t.add_column(name, justify="right")
        by_arm: dict[tuple[str, str, str, str], list[Row]] = {}
        for r in groups:
            by_arm.setdefault((r["file"], r["variant"], r["objective"], r["field"]), []).append(r)
        for rows_ in by_arm.values():
            worst = sorted(rows_, key=lambda r: (r["placed_share"] or 0.0, r["value"]))
            for r in worst[:GROUPS_SHOWN]:
                t.add_row(
                    cell(r["instance"]),
                    *([cell(r["variant"])] if variants else []),
                    r["objective"],
                    r["field"],
                    cell(r["value"]),
                    _fmt(r["people"], ".0f"),
                    _fmt(r["placed_share"], ".1%"),
                    _fmt(r["waitlisted_share"], ".1%"),
                    _fmt(r["unpaired_share"], ".1%"),
                    _fmt(r["mean_score_placed"]),
                )
        tables.append(t)

    rows = result.cohort_summary()
    by_file: dict[str, list[Row]] = {}
    for r in rows:
        by_file.setdefault(r["file"], []).append(r)
    multi = {f: rs for f, rs in by_file.items() if len({r["cohort"] for r in rs}) > 1}
    if multi:
        cohorts = Table(
            title="Cohorts within each intake: mean across seeds",
            box=box.SIMPLE_HEAD,
            title_justify="left",
        )
        for name in ("intake", "cohort", *(["variant"] if variants else []), "objective"):
            cohorts.add_column(name, no_wrap=True)
        for name in ("pairs", "capacity", "fill", "mean score", "least set div."):
            cohorts.add_column(name, justify="right")
        for f, rs in multi.items():
            for k, r in enumerate(rs):
                cohorts.add_row(
                    cell(r["instance"]),
                    cell(r["cohort"]),
                    *([cell(r["variant"])] if variants else []),
                    r["objective"],
                    _fmt(r["pairs"], ".1f"),
                    _fmt(r["capacity"], "d"),
                    _fmt(r["fill"], ".0%"),
                    _fmt(r["score_mean"]),
                    _fmt(r["set_diversity_least"]),
                    end_section=k == len(rs) - 1 and f != list(multi)[-1],
                )
        tables.append(cohorts)
    failed = result.failed
    if failed:
        t = Table(title="Runs without a plan", box=box.SIMPLE_HEAD, title_justify="left")
        for name in ("intake", "variant", "objective", "seed", "status", "error"):
            t.add_column(name)
        for r in failed:
            t.add_row(
                cell(r["instance"]),
                cell(r["variant"]),
                r["objective"],
                str(r["seed"]),
                r["status"],
                cell(r["error"] or ""),
            )
        tables.append(t)
    return tables
