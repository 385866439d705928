"""Where units of work run: in this process, on a local Dask cluster of worker processes, or on a remote scheduler.

Units are pure functions of their arguments (a config, market data, a seed); they return result objects and
never open the store. The driver loads market data once, scatters it, submits the units and writes what comes
back, one unit at a time as it arrives. The same code runs in every mode, so the answers are identical.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from covcall.errors import ConfigError, CovcallError

Mode = Literal["serial", "local", "remote"]
CONNECT_TIMEOUT_S = 5.0
# Starting a local cluster and warming its workers costs about 1.5 s (installed with bytecode). Measured break-even
# on 2 cores, cold, in estimated seconds of work (covcall.batch.run_seconds): about 2.4 s (1h runs: 1.2 s of work
# serial 2.2 s / local 2.6 s, 2.4 s: 3.35 / 3.17, 4.1 s: 5.0 / 4.3; eight 1d runs, 2.35 s: 2.66 / 2.62). Below this
# much work the default stays serial.
LOCAL_MIN_WORK_S = 2.5
# Once this process has started a local cluster its fork server is warm and the next cluster starts in ~0.1 s:
# then a second of work already pays for it.
LOCAL_MIN_WORK_S_WARM = 1.0
_forkserver_warm = False


@dataclass(frozen=True)
class ComputeSpec:
    """How to run: `serial`, `local` (a LocalCluster of `workers` processes) or `remote` (a scheduler address)."""

    mode: Mode
    workers: int = 1
    address: str | None = None
    worker_wait_s: float = 20.0  # remote: how long to wait for a first worker

    def describe(self) -> str:
        if self.mode == "remote":
            return f"Dask scheduler {self.address}"
        if self.mode == "local":
            return f"local Dask cluster, {self.workers} worker processes"
        return "serial (this process)"


# A cold local cluster's start on this project's 2-core machine (fork server imports, workers up), docs/scale.md
LOCAL_START_S = 1.5


def sweep_plan(spec: ComputeSpec, n_units: int, work_s: float | None, warm: bool | None = None) -> dict[str, Any]:
    """What a sweep is before it runs: its units, the estimated seconds of its backtests on one core
    (covcall.batch.run_seconds) and where it would run, with the least wall time that takes (the backtests over the
    workers, plus a cold local cluster's start; saving runs, training models and imports come on top; none for a
    remote cluster, whose workers this process cannot count in advance). `warm`: whether this process's fork
    server is up already (a cluster then starts in 0.1 s; None: as it is now).

    >>> sweep_plan(ComputeSpec("local", 2), 24, 10.0, warm=False)["wall_s_at_least"]
    6.5
    >>> sweep_plan(ComputeSpec("serial"), 3, 1.2)["runs_on"]
    'serial (this process)'
    """
    if work_s is None:
        wall = None
    elif spec.mode == "serial":
        wall = work_s
    elif spec.mode == "local":
        warm = _forkserver_warm if warm is None else warm
        wall = work_s / max(spec.workers, 1) + (0.1 if warm else LOCAL_START_S)
    else:
        wall = None
    return {"units": int(n_units), "work_s_one_core": None if work_s is None else round(float(work_s), 1),
            "runs_on": spec.describe(), "workers": spec.workers if spec.mode != "serial" else 1,
            "wall_s_at_least": None if wall is None else round(float(wall), 1)}


def plan_words(plan: dict[str, Any]) -> str:
    """A `sweep_plan` in words (the CLI's --plan and the pages say the same).

    >>> plan_words(sweep_plan(ComputeSpec("serial"), 3, 1.2))
    '3 units, about 1.2 s of backtests on one core; runs on: serial (this process), 1.2 s at least'
    """
    work = "" if plan["work_s_one_core"] is None else f"about {plan['work_s_one_core']:g} s of backtests on one core; "
    least = "" if plan["wall_s_at_least"] is None else f", {plan['wall_s_at_least']:g} s at least"
    return f"{plan['units']} units, {work}runs on: {plan['runs_on']}{least}"


def check_workers(workers: Any) -> int | None:
    """None or a whole number >= 1."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1; got {workers!r}")
    return int(workers)


def check_address(address: str | None) -> str | None:
    if address is None or not str(address).strip():
        return None
    a = str(address).strip()
    host = a.split("://", 1)[-1]
    if "://" in a and not a.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://")):
        raise ConfigError(f"scheduler address {a!r} has an unknown protocol; use tcp://HOST:PORT")
    if ":" not in host:
        raise ConfigError(f"scheduler address {a!r} has no port; use tcp://HOST:PORT (the scheduler's port, "
                          "8786 by default)")
    return a if "://" in a else f"tcp://{a}"


def plan(compute: str | None = None, workers: int | None = None, scheduler: str | None = None, *,
         n_units: int = 2, cores: int | None = None, work_s: float | None = None,
         warm: bool | None = None) -> ComputeSpec:
    """Choose the mode: a scheduler address wins; `serial` or one worker is serial; `local` or a worker count
    above 1 is a local cluster; left to itself, a local cluster when there is more than one unit, more than
    one core and enough work (`work_s`, the units' estimated seconds on one core, at least LOCAL_MIN_WORK_S, or
    LOCAL_MIN_WORK_S_WARM once this process's fork server is warm; `warm` overrides that) to pay for starting it.

    >>> plan(n_units=1, cores=8).mode, plan("serial", n_units=9, cores=8).mode, plan(n_units=9, cores=2).workers
    ('serial', 'serial', 2)
    >>> plan(workers=1, n_units=9, cores=8).mode, plan(scheduler="10.0.0.5:8786").address
    ('serial', 'tcp://10.0.0.5:8786')
    >>> plan(n_units=9, cores=2, work_s=2.0, warm=False).mode, plan(n_units=9, cores=2, work_s=2.0, warm=True).mode
    ('serial', 'local')
    """
    workers = check_workers(workers)
    address = check_address(scheduler)
    if compute not in (None, "", "serial", "local"):
        raise ConfigError(f"COMPUTE must be serial or local; got {compute!r}")
    if address:
        return ComputeSpec("remote", workers or 0, address)
    cores = cores or os.cpu_count() or 1
    if compute == "serial" or workers == 1:
        return ComputeSpec("serial", 1)
    n = workers or cores
    if compute == "local" or workers is not None:
        return ComputeSpec("local", n)
    floor = LOCAL_MIN_WORK_S_WARM if (_forkserver_warm if warm is None else warm) else LOCAL_MIN_WORK_S
    if n_units > 1 and n > 1 and (work_s is None or work_s >= floor):
        return ComputeSpec("local", min(n, n_units))
    return ComputeSpec("serial", 1)


@dataclass
class UnitFailure:
    """A unit that raised (after its retry): the error line and the traceback."""

    error: str
    detail: str = ""


def _where() -> str:
    """Where a unit ran: the Dask worker's address, or this process (a serial sweep, which never imports Dask:
    0.2 s a command)."""
    if "distributed" not in sys.modules:  # no Dask loaded in this process: certainly not a worker
        return f"local:{socket.gethostname()}:{os.getpid()}"
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"local:{socket.gethostname()}:{os.getpid()}"


def _bare_main() -> Any:
    """Replace `__main__` with a bare module and return the real one (see Executor.__enter__)."""
    import types

    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    return saved


def _warm() -> None:
    """Import the engine on a worker while the driver is still loading data (the first unit then starts at once)."""
    import covcall.backtest  # noqa: F401


# What the fork server imports once, so every worker forked from it starts with the engine already loaded
# (covcall.forkserver first: the server's quick exit).
FORKSERVER_PRELOAD = ("covcall.forkserver", "distributed", "numpy", "pandas", "scipy.special", "covcall.backtest",
                      "covcall.sensitivity", "covcall.walker")


def _has_forkserver() -> bool:
    import multiprocessing

    return "forkserver" in multiprocessing.get_all_start_methods()


def _configure_local() -> str:
    """Dask settings of a local cluster, set for the process (a worker restarted later gets the same); returns
    how workers start.

    A dead worker's unit is retried once, then recorded as failed; one unit per worker at a time, so a worker's
    death never counts against units merely queued on it. Workers are never forked from this threaded process
    (DuckDB, Streamlit and Dask threads): a forked child can deadlock on a lock another thread held at fork time.
    They come from the fork server (see _preload_forkserver), or are spawned where there is none (Windows).
    """
    import dask

    method = "forkserver" if _has_forkserver() else "spawn"
    dask.config.set({"distributed.scheduler.allowed-failures": 1,
                     "distributed.scheduler.worker-saturation": 1.0,
                     "distributed.worker.multiprocessing-method": method,
                     "distributed.logging.distributed": "error",
                     # the worker's statistical profiler samples the running unit's stack every 10 ms and
                     # costs 10-15 % of a unit's time (bench/bench_units.py); nobody reads it here
                     "distributed.worker.profile.enabled": False,
                     # Dask asks glibc to hand freed memory back at once (for its memory accounting); units run
                     # in a worker thread, where that tripled page faults (3,700 vs 1,200 a 1h run-year)
                     "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                     # the event loops of the scheduler and every worker woke 50 times a second to time themselves
                     # and twice a second to sample the system; each wake takes the GIL from the running unit.
                     # Seldom enough here: units alone 1.75x -> 2.0x on 2 cores (bench/bench_units.py)
                     "distributed.admin.tick.interval": "1s",
                     "distributed.admin.system-monitor.interval": "5s",
                     "distributed.worker.memory.monitor-interval": "1s"})
    if method == "forkserver":
        _preload_forkserver()
    return method


# What Dask's nanny puts in the environment before it starts a worker (distributed.yaml's
# `distributed.nanny.pre-spawn-environ`, less the malloc trim _configure_local turns off; a variable already set
# wins, as in Dask).
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def start_early(compute: str | None, workers: int | None, scheduler: str | None) -> bool:
    """Start the fork server now when a local cluster is certain (COMPUTE=local or more than one worker asked
    for, no scheduler), so its imports (about 3 s: pandas, distributed, the engine) run on another core while
    this process imports and loads data, instead of after. Returns whether it started one.

    The CLI calls it before its own heavy imports; the cluster started later forks its workers from this server.
    Only the server gets the workers' environment (WORKER_ENV): this process keeps its own threads.
    """
    # certain = local whatever the amount of work (plan with none goes local only when asked to)
    if plan(compute, workers, scheduler, work_s=0, warm=False).mode != "local":
        return False
    if _forkserver_warm or not _has_forkserver():
        return False
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))
    added = [k for k in WORKER_ENV if k not in os.environ]
    saved_main = _bare_main()
    try:
        os.environ.update({k: WORKER_ENV[k] for k in added})
        forkserver.ensure_running()  # spawns the server with this environment and returns; it imports on its own
    finally:
        for k in added:
            os.environ.pop(k, None)
        sys.modules["__main__"] = saved_main
    return True


def _preload_forkserver() -> None:
    """Workers are forked from multiprocessing's fork server: a fresh single-threaded process (started like a
    spawned one, so no lock of this threaded driver is inherited) that imports FORKSERVER_PRELOAD once and forks
    each worker from there, engine imported and warm. It lives as long as this process, so later clusters (the
    dashboard's next sweep) start in a fraction of a second. The preload is set after Dask's own, which it
    replaces, and before the server starts."""
    import multiprocessing

    from distributed.utils import get_mp_context

    get_mp_context()  # Dask's preload list, set once per process; ours replaces it below
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(FORKSERVER_PRELOAD))


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, str]:
    return fn(*args), _where()


class Executor:
    """Runs units in the chosen mode. Use as a context manager; `map` yields (index, result, where) as units finish."""

    def __init__(self, spec: ComputeSpec) -> None:
        self.spec = spec
        self.client: Any = None
        self._cluster: Any = None
        self._warming: list[Any] = []
        self._main: Any = None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None

    def __enter__(self) -> Executor:
        if self.spec.mode == "serial":
            return self
        if self.spec.mode == "local":
            # A spawned worker (and the fork server) re-imports the parent's `__main__` file. Under Streamlit
            # (and after AppTest) that is a page, which would run again in every worker, and a worker restarted
            # after a crash never came up in the suite. So `__main__` is a bare module while the cluster lives;
            # units are covcall functions or closures cloudpickle sends by value, so nothing needs it.
            self._main = _bare_main()
            # The cluster starts in the background, Dask's imports included: its workers come up while the
            # caller loads market data; the first use (scatter, map) waits for it. A local cluster has no address
            # to be unreachable, so nothing is lost by learning of a failure there.
            self._starting = threading.Thread(target=self._start_local, daemon=True, name="covcall-local-cluster")
            self._starting.start()
            return self
        from distributed import Client

        try:
            self.client = Client(self.spec.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise CovcallError(f"cannot reach the Dask scheduler at {self.spec.address} within "
                               f"{CONNECT_TIMEOUT_S:g} s ({type(err).__name__}); check DASK_SCHEDULER_ADDRESS / "
                               "--scheduler and that `dask scheduler` is running") from None
        try:
            self.client.wait_for_workers(1, timeout=self.spec.worker_wait_s)
        except (TimeoutError, OSError):
            self.client.close()
            raise CovcallError(f"the Dask scheduler at {self.spec.address} has no workers after "
                               f"{self.spec.worker_wait_s:g} s; "
                               f"start some with `dask worker {self.spec.address}`") from None
        self._warm_up()
        return self

    def _start_local(self) -> None:
        try:
            method = _configure_local()
            from distributed import Client, LocalCluster

            self._cluster = LocalCluster(n_workers=self.spec.workers, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)
            self.client = Client(self._cluster)
            if method == "forkserver":
                global _forkserver_warm
                _forkserver_warm = True  # this process's next clusters start in a fraction of a second
            self._warm_up()
        except BaseException as err:  # re-raised in the caller's thread at first use
            self._start_error = err

    def _ready(self) -> None:
        """Wait for a cluster starting in the background; raise what stopped it."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        if self._start_error is not None:
            err, self._start_error = self._start_error, None
            raise CovcallError(f"could not start a local Dask cluster of {self.spec.workers} workers: "
                               f"{_line(err)}; run with --workers 1 (COMPUTE=serial) to stay in this process") \
                from err

    def _warm_up(self) -> None:
        """One import task per worker, not waited for: it overlaps the driver's data loading."""
        workers = list(self.client.scheduler_info().get("workers", {}))
        self._warming = [self.client.submit(_warm, workers=[w], allow_other_workers=False, pure=False)
                         for w in workers]

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._starting is not None:
                self._starting.join()
                self._starting = None
            if self.client is not None:
                self.client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            if self._main is not None:
                sys.modules["__main__"] = self._main
                self._main = None

    @property
    def distributed(self) -> bool:
        """Whether units run on Dask workers (waits for a local cluster still starting)."""
        self._ready()
        return self.client is not None

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard of a remote scheduler, which outlives the sweep (the link stays good when the sweep
        is over; it shows Dask's dashboard where the scheduler has bokeh installed); None serially and on a local
        cluster, which closes with the sweep (and whose page would only say that bokeh is missing: covcall does
        not install it)."""
        if self.spec.mode != "remote":
            return None
        self._ready()
        if self.client is None:
            return None
        try:
            return str(self.client.dashboard_link) or None
        except Exception:  # a scheduler that cannot say: nothing to link to
            return None

    def scatter(self, value: Any) -> Any:
        """Send data to the workers once; units receive the future and Dask resolves it (serial: the value)."""
        self._ready()
        if self.client is None:
            return value
        return self.client.scatter(value, broadcast=True, hash=False)

    def map(self, fn: Callable[..., Any], units: Sequence[tuple[Any, ...]],
            cost: Sequence[float] | None = None) -> Iterator[tuple[int, Any, str]]:
        """Run `fn(*unit)` for every unit; yield (index, result or UnitFailure, where it ran) as they finish.

        `cost` (an estimate per unit, e.g. its seconds) sends the biggest units first on a cluster, so the sweep
        does not end with one worker finishing a long unit while the others wait; results never depend on it.
        Closing the iterator early (an exception in the caller, Stop on a page, Ctrl-C) cancels what has not run.
        """
        groups = self.map_groups(fn, units, cost)
        try:
            for group in groups:
                yield from group
        finally:
            groups.close()  # now, not when collected: cancels the units not yet run

    def map_groups(self, fn: Callable[..., Any], units: Sequence[tuple[Any, ...]],
                   cost: Sequence[float] | None = None) -> Iterator[list[tuple[int, Any, str]]]:
        """`map`, but each time everything that has finished since the last group (serially: one unit), so a
        driver that saves results can save the ones that arrived while it was busy together (Store.writes)."""
        self._ready()
        if self.client is None:
            for i, args in enumerate(units):
                try:
                    yield [(i, fn(*args), _where())]
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as err:  # isolated: the sweep goes on
                    yield [(i, UnitFailure(_line(err), traceback.format_exc()), _where())]
            return
        from distributed import as_completed

        order = sorted(range(len(units)), key=lambda i: -cost[i]) if cost is not None else range(len(units))
        # an explicit priority: submissions that arrive together form one graph, ordered otherwise by key
        futures = [self.client.submit(_call, fn, units[i], pure=False, retries=1, priority=len(units) - rank)
                   for rank, i in enumerate(order)]
        index = {f.key: i for i, f in zip(order, futures, strict=True)}
        try:
            # results travel with the completion: a worker that dies right after finishing a unit cannot take
            # the result with it (fetching it afterwards would wait for a recomputation)
            for batch in as_completed(futures, with_results=True, raise_errors=False).batches():
                group = []
                for fut, out in batch:
                    i = index[fut.key]
                    if fut.status == "error":  # out is (type, exception, traceback)
                        err = out[1] if isinstance(out, tuple) and len(out) == 3 else out
                        if isinstance(err, KeyboardInterrupt | SystemExit):
                            raise err
                        group.append((i, UnitFailure(_line(err), "".join(traceback.format_exception(err))), "?"))
                        continue
                    result, where = out
                    group.append((i, result, where))
                yield group
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)


def _line(err: BaseException) -> str:
    if type(err).__name__ == "KilledWorker":
        return "the worker running this unit died twice (KilledWorker); it was not retried again"
    if isinstance(err, CovcallError):
        return str(err)
    return f"{type(err).__name__}: {err}"
