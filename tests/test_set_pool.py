"""The sets stage in worker processes (matcher.engine.set_pool): the same plan as a serial run,
byte for byte, and serial whenever the pool would not pay or could not be used safely."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from matcher.engine import set_pool
from matcher.intake.json_file import load_instance
from tests.conftest import pythonpath


def _cli(*args: str, workers: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": pythonpath(), "MATCHER_SET_WORKERS": workers}
    return subprocess.run(
        [sys.executable, "-m", "matcher", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_plan_from_the_worker_processes_is_the_serial_plan_byte_for_byte(tmp_path: Path) -> None:
    """`matcher solve` with the sets in two worker processes writes the very file a serial run
    writes (same intake, same seed), and says in its log that the workers ran."""
    intake = tmp_path / "intake.json"
    made = _cli(
        "generate", "-n", "600", "--seed", "4", "-o", str(intake), workers="1", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    pooled = _cli(
        "-v", "solve", str(intake), "--seed", "3", "-o", "pool.json", workers="2", cwd=tmp_path
    )
    assert pooled.returncode == 0, pooled.stderr
    assert "in 2 worker processes" in pooled.stderr
    serial = _cli(
        "-v", "solve", str(intake), "--seed", "3", "-o", "serial.json", workers="1", cwd=tmp_path
    )
    assert serial.returncode == 0, serial.stderr
    assert "worker processes" not in serial.stderr
    assert (tmp_path / "pool.json").read_bytes() == (tmp_path / "serial.json").read_bytes()


def test_serial_for_a_replan_a_forced_one_and_a_small_intake(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MATCHER_SET_WORKERS", "2")
    assert set_pool.start(100, 4, replan=True) is None  # a re-plan keeps its sets one by one
    monkeypatch.setenv("MATCHER_SET_WORKERS", "1")
    assert set_pool.start(50_000, 50, replan=False) is None
    monkeypatch.delenv("MATCHER_SET_WORKERS")
    assert set_pool.start(set_pool.POOL_LOAD_PARTICIPANTS - 1, 4, replan=False) is None


def test_no_pool_when_a_time_limit_leaves_the_searches_less_than_its_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Workers take 0.3-1 s each to start, on the cores the solve runs on: a limit whose set
    searches get less than POOL_MIN_SEARCH_S runs them serially (5,000 participants under
    `--time-limit 1` took 2.8-3.9 s with the pool)."""
    monkeypatch.delenv("MATCHER_SET_WORKERS", raising=False)
    monkeypatch.setattr(set_pool, "_main_is_guarded", lambda: True)
    monkeypatch.setattr(set_pool, "usable_cores", lambda: 2)
    started: list[int] = []

    def pool(workers: int) -> str:
        started.append(workers)
        return "pool"

    monkeypatch.setattr(set_pool, "SetPool", pool)
    n = set_pool.POOL_MIN_PARTICIPANTS
    assert set_pool.start(n, 50, replan=False, search_s=0.2) is None
    assert set_pool.start(n, 50, replan=False, search_s=set_pool.POOL_MIN_SEARCH_S - 0.01) is None
    assert not started
    assert set_pool.start(n, 50, replan=False, search_s=set_pool.POOL_MIN_SEARCH_S) == "pool"
    assert set_pool.start(n, 50, replan=False) == "pool"  # no limit
    assert started == [2, 2]


def test_no_pool_under_an_unguarded_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library caller's script would be re-run by each worker unless it guards its work
    with `if __name__ == "__main__":`: only the matcher command (or an interactive session)
    gets the pool without asking."""
    monkeypatch.delenv("MATCHER_SET_WORKERS", raising=False)
    script = types.ModuleType("__main__")
    script.__file__ = "/somewhere/their_script.py"
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert not set_pool._main_is_guarded()
    assert set_pool.start(50_000, 50, replan=False) is None
    console = types.ModuleType("__main__")
    console.__file__ = "/venv/bin/matcher"
    from matcher.__main__ import run

    console.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "__main__", console)
    assert set_pool._main_is_guarded()
    interactive = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", interactive)
    assert set_pool._main_is_guarded()


def test_small_work_stays_serial_even_with_a_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATCHER_SET_WORKERS", raising=False)
    instance = load_instance(Path(__file__).resolve().parents[1] / "instances" / "may2016.json")
    cohort = instance.cohorts[0]
    duo = (instance.participants[0], instance.participants[1])
    pool = object.__new__(set_pool.SetPool)  # never started: only its presence matters here
    pool.started = lambda: True  # type: ignore[method-assign]  # its workers are up
    few = [set_pool.SetTask(cohort, [duo] * 20, None)] * (set_pool.POOL_MIN_COHORTS - 1)
    assert not set_pool.worth_it(pool, few, loads_kernel=False)
    small = [set_pool.SetTask(cohort, [duo] * 20, None)] * 40  # 2,000 participants' shape
    assert not set_pool.worth_it(pool, small, loads_kernel=False)
    large = [set_pool.SetTask(cohort, [duo] * 200, None)] * 50  # 20,000 participants' shape
    assert set_pool.worth_it(pool, large, loads_kernel=False)
    assert not set_pool.worth_it(None, large, loads_kernel=False)
    # work this process would load the compiled kernel for goes to the workers, which have it
    assert set_pool.worth_it(pool, few, loads_kernel=True)
    assert set_pool.worth_it(pool, few[:1], loads_kernel=True)
    assert not set_pool.worth_it(None, few, loads_kernel=True)
    assert not set_pool.worth_it(pool, [], loads_kernel=True)
    # workers still starting (the server preloading): this process loads the kernel sooner
    pool.started = lambda: False  # type: ignore[method-assign]
    assert not set_pool.worth_it(pool, few, loads_kernel=True)
    assert set_pool.worth_it(pool, large, loads_kernel=False)  # shared-out work waits for them


def test_a_mid_size_intake_starts_workers_only_while_the_kernel_is_not_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From POOL_LOAD_PARTICIPANTS, a process that has not loaded the compiled kernel (a
    fresh `matcher solve`) starts one worker, which loads it while the command pairs and
    places; a process that has it (the web app after a solve) stays serial below
    POOL_MIN_PARTICIPANTS. Larger intakes get a worker per core, one per cohort at most."""
    monkeypatch.delenv("MATCHER_SET_WORKERS", raising=False)
    monkeypatch.setattr(set_pool, "_main_is_guarded", lambda: True)
    monkeypatch.setattr(set_pool, "usable_cores", lambda: 4)
    monkeypatch.setattr(set_pool, "SetPool", lambda workers: workers)
    loaded = [False]
    monkeypatch.setattr(set_pool, "compiled_loaded", lambda: loaded[0])
    mid = set_pool.POOL_LOAD_PARTICIPANTS
    large = set_pool.POOL_MIN_PARTICIPANTS
    assert set_pool.start(mid - 1, 40, replan=False) is None
    assert set_pool.start(mid, 40, replan=False) == 1  # its start-up fits the free core
    assert set_pool.start(large - 1, 40, replan=False) == 1
    assert set_pool.start(large, 40, replan=False) == 4
    assert set_pool.start(large, 3, replan=False) == 3  # one cohort per worker at most
    assert set_pool.start(large, 0, replan=False) == 1
    loaded[0] = True
    assert set_pool.start(mid, 40, replan=False) is None
    assert set_pool.start(large, 40, replan=False) == 4


def test_starting_the_pool_does_not_wait_for_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a forkserver worker waits for the server's preload (~0.6 s): the workers are
    started from a thread, so the solve goes on pairing meanwhile, and the sets stage waits
    (``ready``) only when it needs them."""
    import threading

    release = threading.Event()
    started: list[int] = []

    def slow_start(self: set_pool.SetPool) -> None:
        release.wait(30)
        started.append(self.workers)

    monkeypatch.setattr(set_pool.SetPool, "_submit_warm", slow_start)
    pool = set_pool.SetPool(1)
    try:
        assert started == []  # the constructor returned while the workers were starting
        assert not pool.started()
        release.set()
        pool.ready()
        assert started == [1]
        assert pool.started()
    finally:
        release.set()
        pool.close()


def test_form_all_reports_progress_and_a_cancel_still_returns_every_cohorts_sets() -> None:
    """The parent polls ``keep_going`` while the workers run; a False from it cancels the
    searches, which still hand back valid sets for every cohort, in cohort order."""
    from matcher.engine.sets import form_sets
    from matcher.intake.json_file import parse_instance
    from matcher.tools.generate import generate_instance

    instance = parse_instance(generate_instance(400, seed=2, preformed_share=1.0))
    people = instance.participants_by_id()
    tasks = []
    for cohort in instance.cohorts:
        ids = [p.id for p in instance.participants if p.partner and p.role == "patient_leader"]
        duos = [(people[i], people[people[i].partner or ""]) for i in ids][: cohort.capacity_pairs]
        tasks.append(set_pool.SetTask(cohort, duos, None))
    pool = set_pool.SetPool(2)
    try:
        seen: list[float] = []

        def cancel_at_once(fraction: float) -> bool:
            seen.append(fraction)
            return False

        results = set_pool.form_all(
            pool,
            instance,
            tasks,
            seed=1,
            deterministic=True,
            deadline=None,
            keep_going=cancel_at_once,
        )
    finally:
        pool.close()
    assert seen and seen[-1] == 1.0
    assert len(results) == len(tasks)
    for task, got in zip(tasks, results, strict=True):
        grouped = sorted(i for s in got.sets for i in s) + sorted(got.dropped)
        assert sorted(grouped) == list(range(len(task.duos)))
        lo, hi = task.cohort.set_size.min_pairs, task.cohort.set_size.max_pairs
        assert all(lo <= len(s) <= hi for s in got.sets)
    # uncancelled, one cohort in the pool gives the serial search's sets
    serial = form_sets(instance, tasks[0].cohort, tasks[0].duos, seed=1)
    pool = set_pool.SetPool(2)
    try:
        again = set_pool.form_all(
            pool,
            instance,
            tasks[:1],
            seed=1,
            deterministic=True,
            deadline=None,
            keep_going=lambda fraction: True,
        )
    finally:
        pool.close()
    assert again[0].sets == serial.sets and again[0].diversity == serial.diversity


def test_the_workers_come_from_a_frozen_forkserver() -> None:
    """The forkserver freezes the collector's view of what it preloaded before it forks the
    workers (``matcher.engine.forkserver_ready``): they share those pages and skip them in
    their collections, and the server exits quickly when the solve ends."""
    import gc

    pool = set_pool.SetPool(1)
    try:
        pool.ready()
        frozen = pool.executor.submit(gc.get_freeze_count).result(timeout=120)
    finally:
        pool.close()
    assert frozen > 1_000  # numpy, numba, the engine: tens of thousands of objects
