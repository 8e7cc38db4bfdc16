"""The sets stage's cohorts in worker processes, when the cores and the work allow.

Each cohort's sets are independent of every other's (:func:`matcher.engine.sets.form_sets` sees
only that cohort's pairs), so on a machine with more than one core the cohorts of a large intake
run in a process pool (``concurrent.futures.ProcessPoolExecutor``, ``forkserver`` context where
the platform has it, else ``spawn``: never ``fork``, which copies a process that may hold
CP-SAT's or the web app's threads). The results are the serial run's, byte for byte: each
cohort's search depends on its pairs, its seed and its iteration budget alone, and the results
are taken back in cohort order.

The pool is started by :func:`start` at the beginning of a solve that will need it (a large
intake, several cores), so that the workers' start-up (importing numpy and the engine, loading
the compiled search kernel: 0.3-1 s each) overlaps pairing and placement; :func:`form_all`
then decides from the real work whether to use it. Serial (no pool) is the rule otherwise: one
core, a small intake, a re-plan, or a platform without process support.

A worker never calls back into the parent: the time limit reaches it as a wall-clock deadline
(``time.monotonic``, one clock for every process on the machine), a cancel as an event set by
the parent, which polls the caller's progress callback every ``POLL_S`` seconds while it waits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing import get_all_start_methods, get_context
from typing import TYPE_CHECKING, Any, cast

from solvers.grouping import compiled_loaded

if TYPE_CHECKING:
    from matcher.contract.instance import Cohort, Instance, Participant
    from matcher.engine.sets import CohortSets

log = logging.getLogger("matcher")

#: Intakes with at least this many participants start the pool at the beginning of the solve
#: (when the machine has more than one core) for the searches' own work: 20,000 participants
#: have 50 cohorts of 118-257 pairs (3 s of CPU).
POOL_MIN_PARTICIPANTS = 4_000
#: Intakes from this size start it too while this process has not loaded the compiled search
#: kernel (a fresh ``matcher solve``): loading it (numba's import and the kernel's code) takes
#: 0.8-1 s, and the workers do it on another core while this process pairs and places. Their
#: searches then run there only if this process would have loaded the kernel for them
#: (:func:`worth_it`). Measured on the 2-core machine against the serial run
#: (``MATCHER_SET_WORKERS=0``), alternately, 3 runs each: a generated 2,000 (seed 0) 2.70-2.82 s
#: against 3.25-3.54 s, the many-cohorts shape of ``benchmarks/shapes.py`` 1.95-2.37 s against
#: 2.46-3.06 s.
POOL_LOAD_PARTICIPANTS = 1_500
#: Under a time limit, the least time for the searches with which the pool is started: its
#: workers' start-up (0.3-1 s each, on the cores the solve itself runs on) would take more
#: than a shorter limit's set searches get. Measured: 5,000 participants under `--time-limit 1`
#: (0.2 s of searches) took 2.8-3.9 s with the pool.
POOL_MIN_SEARCH_S = 3.0
#: Fewest cohorts (each run whole in one worker) for the pool to be worth it for the searches'
#: own work.
POOL_MIN_COHORTS = 4
#: Work (the sum over cohorts of pairs squared: a search iteration is O(pairs^2)) below which the
#: cohorts run serially even when a pool was started: 20,000 participants are ~1.9 M.
POOL_MIN_WORK = 200_000
#: Most worker processes (each holds numpy, the engine and the kernel: up to ~170 MB).
POOL_MAX_WORKERS = 4
#: Modules the forkserver imports before it forks the workers (the last one freezes the
#: collector's view of them: see its docstring).
PRELOAD = (
    "matcher.engine.sets",
    "solvers.grouping.kernels",
    "numba",
    "matcher.engine.forkserver_ready",
)
#: Seconds between the parent's progress checks while workers run.
POLL_S = 0.2
#: Signals the server and workers start with blocked (see SetPool._start_workers).
_BLOCKED_IN_HELPERS = {signal.SIGINT, signal.SIGTERM}


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return os.cpu_count() or 1


@dataclass(frozen=True)
class SetTask:
    """One cohort's sets to form: what :func:`matcher.engine.sets.form_sets` takes."""

    cohort: Cohort
    duos: list[tuple[Participant, Participant]]
    time_limit: float | None


class SetPool:
    """A started process pool for the sets stage (or None from :func:`start`)."""

    def __init__(self, workers: int) -> None:
        method = "forkserver" if "forkserver" in get_all_start_methods() else "spawn"
        ctx = get_context(method)
        if method == "forkserver":
            # the server imports these once and forks each worker from itself, so the workers
            # share the imports (numpy, pydantic, the engine, numba: ~0.8 s) and only load the
            # compiled kernel each (effective only before the process's forkserver first starts)
            ctx.set_forkserver_preload(list(PRELOAD))
        self.workers = workers
        self.cancel = ctx.Event()
        self.deadline = ctx.Value("d", 0.0)  # monotonic deadline; 0: none
        # Only this process holds the writing end: when it ends, however abruptly (a signal
        # ends the command with os._exit), the workers read end-of-file and end too, so none
        # is left waiting for work that will never come (holding the server, and the caller's
        # output pipes, open).
        parent_alive, self._alive = ctx.Pipe(duplex=False)
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(self.cancel, self.deadline, parent_alive),
        )
        # start every worker now: each loads what the searches need while the parent pairs
        # and places. From a thread: starting a forkserver worker waits for the server's
        # preload (~0.6 s), which the solve need not wait for
        self._warm: list[Future[Any]] = []
        self._lock = threading.Lock()
        self._started = self._closed = False
        self._starting = threading.Thread(
            target=self._start_workers, name="matcher-set-pool", daemon=True
        )
        self._starting.start()

    def _start_workers(self) -> None:
        # The server and the workers start with SIGINT and SIGTERM blocked (a thread's signal
        # mask is inherited by the processes it starts, as multiprocessing's resource tracker
        # does it): a Ctrl-C reaches the whole process group, and only this process handles it
        # (it cancels the searches and ends; the workers follow, see _end_with_parent). Without
        # it a Ctrl-C during the server's preload printed a KeyboardInterrupt traceback.
        if hasattr(signal, "pthread_sigmask"):  # POSIX (Windows has no process groups)
            signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED_IN_HELPERS)
        try:
            self._submit_warm()
        finally:
            with self._lock:
                self._started = True
                closed = self._closed
            if closed:  # closed while the workers were starting: close() left this to us
                self.executor.shutdown(wait=False, cancel_futures=True)

    def _submit_warm(self) -> None:
        # each submit starts a worker (waiting for the server's preload the first time)
        self._warm = [self.executor.submit(_warm) for _ in range(self.workers)]

    def ready(self) -> None:
        """Wait until every worker has been started (not until it has warmed up)."""
        self._starting.join()

    def started(self) -> bool:
        """Whether every worker has been started (the server's preload is done); no wait."""
        with self._lock:
            return self._started

    def close(self) -> None:
        """Cancel the searches and let the workers go, without waiting for them (nor for
        their start, which the starting thread then ends)."""
        self.cancel.set()
        with self._lock:
            self._closed = True
            started = self._started
        if started:
            self.executor.shutdown(wait=False, cancel_futures=True)


def _main_is_guarded() -> bool:
    """Whether a worker process may import this process's main module: the ``matcher``
    command (``python -m matcher`` or its console script) or an interactive session. A
    library caller's script is re-run by ``spawn`` and ``forkserver`` workers unless it
    guards its work with ``if __name__ == "__main__":``, which cannot be known from here."""
    main = sys.modules.get("__main__")
    if main is None or not getattr(main, "__file__", None):
        return True
    spec = getattr(main, "__spec__", None)
    if getattr(spec, "name", None) == "matcher.__main__":
        return True
    run = getattr(main, "run", None)  # the console script: `from matcher.__main__ import run`
    return getattr(run, "__module__", None) == "matcher.__main__"


def start(
    n_participants: int, n_cohorts: int, *, replan: bool, search_s: float | None = None
) -> SetPool | None:
    """A pool for the sets stage of a fresh plan of ``n_participants`` in ``n_cohorts`` on a
    machine with more than one core, run from the ``matcher`` command, with no time limit or
    one that gives the searches at least ``POOL_MIN_SEARCH_S`` (``search_s``), and either a
    large intake or a mid-size one in a process that has not loaded the compiled search kernel;
    else None (serial). One worker per cohort at most, and one in all for a mid-size intake.
    ``MATCHER_SET_WORKERS`` (a number) overrides the choice: ``0`` or ``1`` forces serial, ``2``
    or more that many workers whatever the intake's size and whoever calls (a script that
    sets it must guard its work with ``if __name__ == "__main__":``, as multiprocessing asks)."""
    forced = os.environ.get("MATCHER_SET_WORKERS", "").strip()
    if replan:
        return None
    if forced.isdigit():
        workers = int(forced)
        if workers <= 1:
            return None
    else:
        if not _main_is_guarded():
            return None
        cores = usable_cores()
        if cores < 2 or n_participants < POOL_LOAD_PARTICIPANTS:
            return None
        if n_participants < POOL_MIN_PARTICIPANTS and compiled_loaded():
            return None
        if search_s is not None and search_s < POOL_MIN_SEARCH_S:
            return None
        workers = min(cores, POOL_MAX_WORKERS, max(1, n_cohorts))
        if n_participants < POOL_MIN_PARTICIPANTS:
            # one worker: its start-up (the server's preload and the kernel's load, ~1.5 s of
            # CPU) fits the core this process leaves free; two slowed placement by 0.2-0.5 s
            workers = 1
    try:
        return SetPool(workers)
    except (OSError, ImportError, NotImplementedError) as exc:  # no process support here
        log.info("sets: no worker processes (%s); serial", type(exc).__name__)
        return None


def worth_it(pool: SetPool | None, tasks: Sequence[SetTask], *, loads_kernel: bool) -> bool:
    """Whether to run ``tasks`` in ``pool`` rather than serially: when this process would
    load the compiled kernel for them (``loads_kernel``) and the workers are past the server's
    preload (left: at most their own load of the kernel, ~0.5 s, less than this process's
    0.8-1 s; a solve that reaches its sets sooner, e.g. one cohort of pre-formed pairs, went
    0.3-1 s slower waiting for them), or they are enough work to share out."""
    if pool is None or not tasks:
        return False
    forced = os.environ.get("MATCHER_SET_WORKERS", "").strip()
    if forced.isdigit() or (loads_kernel and pool.started()):
        return True
    return len(tasks) >= POOL_MIN_COHORTS and sum(len(t.duos) ** 2 for t in tasks) >= POOL_MIN_WORK


def form_all(
    pool: SetPool,
    instance: Instance,
    tasks: Sequence[SetTask],
    *,
    seed: int,
    deterministic: bool,
    deadline: float | None,
    keep_going: Callable[[float], bool],
) -> list[CohortSets]:
    """Every task's sets, in task order, from the pool's workers. ``deadline``: a
    ``time.monotonic()`` value after which the searches stop at their next check (None: none);
    ``keep_going(fraction done)`` is called every ``POLL_S`` seconds and after each cohort, and
    a False from it cancels the searches (each returns its best sets so far)."""
    pool.ready()
    pool.deadline.value = deadline or 0.0
    # only what form_sets reads of the instance travels: its rules and diversity weights
    rules_only = _SetRules(instance.rules, instance.diversity)
    # largest cohorts first, so that no worker is left with a big one at the end
    order = sorted(range(len(tasks)), key=lambda i: -len(tasks[i].duos))
    futures: dict[Future[Any], int] = {
        pool.executor.submit(
            _form_one, rules_only, t.cohort, t.duos, seed, t.time_limit, deterministic
        ): i
        for i in order
        for t in (tasks[i],)
    }
    results: list[CohortSets | None] = [None] * len(tasks)
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
        for f in done:
            results[futures[f]] = f.result()
        finished = len(tasks) - len(pending)
        if not keep_going(finished / len(tasks)):
            pool.cancel.set()
    return [r for r in results if r is not None]


@dataclass(frozen=True)
class _SetRules:
    """The two parts of an instance that :func:`matcher.engine.sets.form_sets` reads (a whole
    20,000-participant instance would be pickled once per cohort)."""

    rules: Any
    diversity: Any


# ---- in the worker --------------------------------------------------------------------------

_cancel: Any = None
_deadline: Any = None


def _init_worker(cancel: Any, deadline: Any, parent_alive: Any) -> None:
    global _cancel, _deadline
    # one BLAS thread per worker: the workers are the parallelism (the parent's setting, e.g.
    # the CLI's, is inherited; a library caller's numpy may not have one)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # Ctrl-C reaches the whole process group: the parent handles it (it cancels the searches
    # and ends), a worker must not print a KeyboardInterrupt traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_end_with_parent, args=(parent_alive,), name="matcher-parent-watch", daemon=True
    ).start()
    _cancel, _deadline = cancel, deadline


def _end_with_parent(parent_alive: Any) -> None:
    """Wait for the parent's end of the pipe to close (nothing is ever sent on it), then end
    this worker at once: its results have nowhere to go."""
    with suppress(EOFError, OSError):
        parent_alive.recv_bytes()
    os._exit(0)


def _warm() -> bool:
    """Import what the searches need and load the compiled kernel (when cached)."""
    import matcher.engine.sets  # noqa: F401  # lazy: in the worker, the import is the warm-up
    from solvers.grouping import warm_up  # lazy: in the worker, part of the warm-up

    return warm_up()


def _should_stop() -> bool:
    if _cancel is not None and _cancel.is_set():
        return True
    until = _deadline.value if _deadline is not None else 0.0
    return bool(until) and time.monotonic() >= until


def _form_one(
    instance: _SetRules,
    cohort: Cohort,
    duos: list[tuple[Participant, Participant]],
    seed: int,
    time_limit: float | None,
    deterministic: bool,
) -> CohortSets:
    from matcher.engine.sets import form_sets  # lazy: workers load the sets stage in _warm

    return form_sets(
        cast("Instance", instance),
        cohort,
        duos,
        seed=seed,
        time_limit=time_limit,
        deterministic=deterministic,
        should_stop=_should_stop,
    )
