"""Sweeps on Dask: the same answers serially, on a local cluster and on a separately started scheduler."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from covcall.batch import run_batch
from covcall.cli import main
from covcall.compute import ComputeSpec, Executor, UnitFailure, plan
from covcall.errors import ConfigError, CovcallError
from covcall.store import Store
from covcall.walker import walk

BATCH = {"name": "sweep", "underlyings": ["BTC", "ETH"], "timeframes": ["1d", "4h"],
         "windows": [{"start": "2022-01-01", "end": "2022-04-30"}, {"start": "2022-06-01", "end": "2022-09-30"}],
         "exit_styles": ["hold_to_expiry", "tp_and_roll"]}
FOLDS = {"name": "f4", "underlying": "BTC", "timeframe": "1d", "source": "synthetic", "seed": 7, "metric": "sharpe",
         "rolling": {"start": "2021-01-01", "train_days": 200, "test_days": 60, "step_days": 60, "gap_days": 31,
                     "count": 4},
         "grid": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "threshold": [0.1]}, "model": {"pooled": False}}
LOCAL2 = ComputeSpec("local", 2)


def _runs(res) -> list[tuple]:
    return [(r["label"], r["status"], json.dumps(r.get("metrics"), sort_keys=True)) for r in res.runs]


def _board(res) -> list[dict]:
    drop = {"run_id", "model_id", "fold_runs"}
    return [{k: v for k, v in r.items() if k not in drop} for r in res.strategies]


# -- the plan ----------------------------------------------------------------------------------------
def test_the_plan_follows_flags_settings_and_the_amount_of_work() -> None:
    assert plan(n_units=16, cores=2, work_s=0.5).mode == "serial"  # too little work to pay for a cluster
    assert plan(n_units=16, cores=2, work_s=60.0) == ComputeSpec("local", 2)
    assert plan(workers=2, n_units=16, cores=2, work_s=0.01) == ComputeSpec("local", 2)  # asked for
    assert plan("serial", workers=None, n_units=16, cores=8).mode == "serial"
    assert plan(scheduler="tcp://10.0.0.5:8786", n_units=1).mode == "remote"
    with pytest.raises(ConfigError, match="whole number >= 1"):
        plan(workers=0)
    with pytest.raises(ConfigError, match="has no port"):
        plan(scheduler="tcp://10.0.0.5")


def test_work_is_counted_in_decisions_not_bars() -> None:
    """Measured (bench/bench_cost.py): a 2.5-year daily tp_and_roll run takes 0.39 s, an hourly hold run of the
    same window 0.21 s, and deciding at every hourly bar about as long as once a day. A cost in bars ranked the
    daily run 12x smaller and kept a batch of them serial."""
    from covcall.batch import BatchSpec, run_seconds, work_seconds

    window = [{"start": "2020-01-01", "end": "2022-06-30"}]
    daily_tp, hourly_hold = BatchSpec.parse({"timeframes": ["1d", "1h"], "windows": window,
                                             "exit_styles": ["tp_and_roll", "hold_to_expiry"]}).configs()[::3]
    assert (daily_tp.timeframe, daily_tp.exit_style, hourly_hold.timeframe, hourly_hold.exit_style) == (
        "1d", "tp_and_roll", "1h", "hold_to_expiry")
    assert run_seconds(daily_tp) == pytest.approx(0.39, rel=0.2)
    assert run_seconds(hourly_hold) == pytest.approx(0.21, rel=0.2)
    every_bar = hourly_hold.model_copy(update={"decision_hour_utc": None})
    assert run_seconds(every_bar) == pytest.approx(run_seconds(hourly_hold))
    # 24 daily runs of 2.5 years are ~7 s of work on one core: worth a local cluster (in bars: 33k, serial)
    daily = BatchSpec.parse({"underlyings": ["BTC", "ETH"], "timeframes": ["1d"], "exit_styles": [
        "hold_to_expiry", "tp_and_roll"], "windows": window, "params": [{"threshold": t} for t in
                                                                        (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)]}).configs()
    assert len(daily) == 24
    assert work_seconds(daily) == pytest.approx(7.0, rel=0.2)
    assert plan(n_units=24, cores=2, work_s=work_seconds(daily), warm=False) == ComputeSpec("local", 2)


@pytest.mark.parametrize(("argv", "message"), [
    (["--workers", "0"], "--workers must be a whole number >= 1; got 0"),
    (["--workers", "-3"], "--workers must be a whole number >= 1; got -3"),
    (["--workers", "two"], "--workers must be a whole number >= 1; got 'two'"),
    (["--scheduler", "10.0.0.5"], "has no port")])
def test_bad_compute_flags_are_one_error_line(tmp_path, monkeypatch, capsys, argv, message) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cc.duckdb"))
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps(BATCH))
    try:
        code = main(["batch", "--spec", str(spec), *argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0] and err[0].startswith("error:")


# -- same answers on a local cluster -------------------------------------------------------------------
def test_a_batch_on_two_local_workers_equals_the_serial_batch(tmp_path) -> None:
    serial = run_batch(BATCH, store=Store(tmp_path / "a.duckdb"), export_dir=tmp_path / "ea")
    local = run_batch(BATCH, store=Store(tmp_path / "b.duckdb"), compute=LOCAL2, export_dir=tmp_path / "eb")
    for fmt in ("csv", "jsonl"):  # the runs finish in another order; the exported files are the same bytes
        text = Path(local.exports[fmt]).read_text(encoding="utf-8")
        for a, b in zip(serial.runs, local.runs, strict=True):  # but for the run ids, new in every batch
            text = text.replace(b["run_id"], a["run_id"])
        assert text == Path(serial.exports[fmt]).read_text(encoding="utf-8") and len(text) > 10_000
    assert len(serial.runs) == 16 and serial.failed == []
    assert local.dashboard is None  # a local cluster closes with the batch: no link to a dead dashboard
    assert _runs(local) == _runs(serial)
    assert len(local.to_dict()["workers"]) == 2 and all(w.startswith("tcp://127.0.0.1") for w in local.to_dict()["workers"])
    # the stored trades are the same too (only the driver wrote them)
    a, b = Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")
    for ra, rb in zip(serial.runs, local.runs, strict=True):
        ta = a.read_run_table("trades", [ra["run_id"]]).drop(columns=["run_id"])
        tb = b.read_run_table("trades", [rb["run_id"]]).drop(columns=["run_id"])
        assert len(ta) and ta.equals(tb)


def test_a_batch_of_model_policies_reads_each_model_once_on_the_driver(tmp_path, monkeypatch) -> None:
    """A batch may sweep a trained model's settings: the model is read from the store on the driver (once per
    model and settings) and sent to the units, which never open the store; the same runs serially and on two
    workers; an unknown model id fails its own runs only, naming the saved ones."""
    import covcall.policies.model as model_policy_mod
    from covcall.backtest import run_backtest
    from covcall.models import save_model, train_model
    from covcall.ranges import Range

    store = Store(tmp_path / "a.duckdb")
    rows = run_backtest({"underlying": "BTC", "start": "2022-01-01", "end": "2022-12-31"}).candidates
    model = train_model(rows, [Range(pd.Timestamp("2022-01-01").date(), pd.Timestamp("2022-12-31").date())],
                        name="swept")
    model_id = save_model(store, model, tmp_path / "models")
    reads = []
    real_load = model_policy_mod.load_model
    monkeypatch.setattr(model_policy_mod, "load_model", lambda st, mid: reads.append(mid) or real_load(st, mid))
    spec = {"name": "models", "underlyings": ["BTC"], "timeframes": ["1d"],
            "windows": [{"start": "2023-01-01", "end": "2023-04-30"}, {"start": "2023-05-01", "end": "2023-08-31"}],
            "params": [{"policy": "model", "model_id": model_id},
                       {"policy": "model", "model_id": model_id, "model_threshold": 0.02},
                       {"policy": "model", "model_id": "no-such-model"}]}
    serial = run_batch(spec, store=store)
    assert reads.count(model_id) == 2  # two settings of one model, each read once for both windows
    ok = [r for r in serial.runs if r["status"] == "ok"]
    trades = [r["metrics"]["n_trades"] for r in ok]  # per window: the model as trained, then a stricter threshold
    assert len(ok) == 4 and trades[0] > trades[1] and trades[2] > trades[3]
    assert [r["status"] for r in serial.runs if "no-such-model" in (r["error"] or "")] == ["failed", "failed"]
    assert "no model with id 'no-such-model'" in serial.failed[0]["error"] and model_id in serial.failed[0]["error"]
    # the model's own plain run is what the batch stored
    plain = run_backtest({"underlying": "BTC", "start": "2023-01-01", "end": "2023-04-30", "policy": "model",
                          "model_id": model_id}, store=store)
    assert ok[0]["metrics"]["sharpe"] == pytest.approx(plain.metrics["sharpe"], rel=1e-12)
    local = run_batch(spec, store=store, compute=LOCAL2)
    assert _runs(local) == _runs(serial)


def test_a_four_fold_walk_on_two_local_workers_equals_the_serial_walk(tmp_path) -> None:
    serial = walk(FOLDS, store=Store(tmp_path / "a.duckdb"))
    local = walk(FOLDS, store=Store(tmp_path / "b.duckdb"), compute=LOCAL2)
    assert len(serial.info["folds"]) == 4
    assert _board(local) == _board(serial)
    assert local.info["selection"] == serial.info["selection"] and local.info["verdict"] == serial.info["verdict"]
    assert [m["model_id"] for m in local.info["models"].values()] == \
        [m["model_id"] for m in serial.info["models"].values()]


def test_the_biggest_units_go_first_and_results_do_not_depend_on_it() -> None:
    cost = [1.0, 5.0, 3.0, 4.0, 2.0]
    with Executor(ComputeSpec("local", 1)) as ex:  # one worker: it runs the units in the order it is sent them
        got = list(ex.map(lambda x: x * 10, [(x,) for x in range(5)], cost=cost))
    assert [i for i, _, _ in got] == [1, 3, 2, 4, 0]
    assert {i: r for i, r, _ in got} == {i: i * 10 for i in range(5)}


def test_units_that_finish_while_the_driver_is_busy_arrive_as_one_group() -> None:
    """What lets a batch save the runs that arrived together with one open of the database (Store.writes)."""
    with Executor(ComputeSpec("serial")) as ex:
        assert [len(g) for g in ex.map_groups(lambda x: x, [(x,) for x in range(3)])] == [1, 1, 1]
    groups = []
    with Executor(LOCAL2) as ex:
        for g in ex.map_groups(lambda x: x * 10, [(x,) for x in range(6)]):
            groups.append({i: r for i, r, _ in g})
            time.sleep(1.0)  # the driver saving: every other unit finishes meanwhile
    assert {i: r for g in groups for i, r in g.items()} == {i: i * 10 for i in range(6)}
    assert sum(len(g) for g in groups) == 6 and len(groups) <= 2


def test_a_batch_reads_each_calibration_once(tmp_path, monkeypatch) -> None:
    store = Store(tmp_path / "cc.duckdb")
    reads: list[str | None] = []
    real = Store.list_calibrations

    def counted(self, underlying=None):
        reads.append(underlying)
        return real(self, underlying)

    monkeypatch.setattr(Store, "list_calibrations", counted)
    res = run_batch({**BATCH, "timeframes": ["1d"]}, store=store)
    assert len(res.runs) == 8 and res.failed == []
    assert sorted(reads) == ["BTC", "ETH"]  # not one database read per run


def test_the_cli_starts_the_fork_server_before_its_own_imports_with_the_workers_environment() -> None:
    code = (
        "import os, sys\n"
        "from covcall.compute import start_early\n"
        "asked = [start_early(c, w, s) for c, w, s in ((None, 1, None), ('serial', 2, None), (None, None, None),"
        " (None, 2, 'tcp://10.0.0.5:8786'))]\n"
        "started = start_early(None, 2, None)\n"
        "from multiprocessing import forkserver\n"
        "pid = forkserver._forkserver._forkserver_pid\n"
        "import time\n"
        "deadline = time.time() + 30\n"  # /proc shows the new environment once the server has exec'd
        "while b'forkserver' not in open(f'/proc/{pid}/cmdline', 'rb').read() and time.time() < deadline:\n"
        "    time.sleep(0.01)\n"
        "env = dict(x.split('=', 1) for x in open(f'/proc/{pid}/environ').read().split('\\0') if '=' in x)\n"
        "print(asked, started, 'pandas' in sys.modules, env.get('OMP_NUM_THREADS'), "
        "os.environ.get('OMP_NUM_THREADS'), env.get('MALLOC_TRIM_THRESHOLD_'))\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "COMPUTE", "WORKERS")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    # only a certain local cluster starts one; this process imported nothing heavy; only the server (whose
    # workers run one unit per core) got the workers' single-thread settings, and not Dask's malloc trim
    assert out.stdout.split() == ["[False,", "False,", "False,", "False]", "True", "False", "1", "None", "None"]


# -- failures, dead workers, stopping ------------------------------------------------------------------
def test_a_unit_that_raises_is_recorded_and_the_rest_go_on() -> None:
    def unit(x: int) -> int:
        if x == 2:
            raise ValueError("bad unit")
        return x * 10

    for spec in (ComputeSpec("serial"), LOCAL2):
        with Executor(spec) as ex:
            got = {i: r for i, r, _ in ex.map(unit, [(x,) for x in range(5)])}
        assert [got[i] for i in (0, 1, 3, 4)] == [0, 10, 30, 40]
        assert isinstance(got[2], UnitFailure) and got[2].error == "ValueError: bad unit"


def test_a_worker_that_dies_is_retried_once_then_recorded_as_failed() -> None:
    def unit(x: int) -> int:
        if x == 1:
            os._exit(3)  # the worker process dies
        return x

    with Executor(LOCAL2) as ex:
        got = {i: r for i, r, _ in ex.map(unit, [(x,) for x in range(4)])}
    assert [got[i] for i in (0, 2, 3)] == [0, 2, 3]
    assert isinstance(got[1], UnitFailure) and "died" in got[1].error


def test_stopping_a_batch_keeps_what_finished(tmp_path) -> None:
    store = Store(tmp_path / "cc.duckdb")

    class Stop(Exception):
        pass

    def progress(done: int, total: int, label: str) -> None:
        if done == 3:
            raise Stop  # what Streamlit's Stop (a rerun) does inside the progress callback

    with pytest.raises(Stop):
        run_batch(BATCH, store=store, progress=progress, compute=LOCAL2)
    runs = store.list_runs()
    assert len(runs) == 3 and set(runs["status"]) == {"ok"}
    assert store.read_jobs("batch").iloc[0]["status"] in ("interrupted", "failed")


# -- a separately started scheduler and workers ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("dask")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=str(Path(__file__).resolve().parents[1]))


@pytest.fixture
def cluster():
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")]
    try:
        from distributed import Client

        deadline = time.time() + 60
        client = None
        while client is None:
            try:
                client = Client(address, timeout=2)
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield address, client, procs
    finally:
        if "client" in locals() and client is not None:
            client.close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_a_batch_runs_on_a_separately_started_scheduler_and_workers(cluster, tmp_path) -> None:
    address, client, procs = cluster
    for _ in range(2):
        procs.append(_dask("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"))
    client.wait_for_workers(2, timeout=60)
    workers = set(client.scheduler_info()["workers"])
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps(BATCH))
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": address, "DUCKDB_PATH": str(tmp_path / "cc.duckdb"),
           "TRAINING_DATA_DIR": str(tmp_path / "exports")}
    exe = Path(sys.executable).with_name("covcall")
    out = subprocess.run([str(exe), "batch", "--spec", str(spec), "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["ok"] == 16 and res["compute"] == f"Dask scheduler {address}"
    assert res["dashboard"].startswith("http://127.0.0.1:")  # the scheduler's page outlives the batch
    assert set(res["workers"]) <= workers and res["workers"]  # the scheduler's workers ran the units
    serial = run_batch(BATCH, store=Store(tmp_path / "serial.duckdb"))
    assert [(r["label"], json.dumps(r["metrics"], sort_keys=True)) for r in res["runs"]] == \
        [(r["label"], json.dumps(r["metrics"], sort_keys=True)) for r in serial.runs]
    assert len(Store(tmp_path / "cc.duckdb").list_runs()) == 16  # only the driver wrote them


def test_a_scheduler_with_no_workers_is_a_clear_error(cluster, tmp_path) -> None:
    address, _, _ = cluster
    with pytest.raises(CovcallError, match=f"the Dask scheduler at {address} has no workers after 2 s; start some "
                                           f"with `dask worker {address}`"):
        run_batch(BATCH, store=Store(tmp_path / "cc.duckdb"), compute=ComputeSpec("remote", 0, address, 2.0))
    assert Store(tmp_path / "cc.duckdb").list_runs().empty


def test_an_unreachable_scheduler_fails_fast_naming_it_and_stores_nothing(tmp_path, monkeypatch, capsys) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cc.duckdb"))
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps(BATCH))
    t0 = time.time()
    assert main(["batch", "--spec", str(spec)]) == 2
    assert time.time() - t0 < 15
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot reach the Dask scheduler at {address}")
    store = Store(tmp_path / "cc.duckdb")
    assert store.list_runs().empty and store.read_jobs().empty


def test_a_local_cluster_starts_while_the_driver_loads_and_a_failed_start_is_one_clear_error(
        tmp_path, monkeypatch) -> None:
    import threading

    import distributed

    release = threading.Event()

    class CannotStart:
        def __init__(self, *args, **kwargs) -> None:
            release.wait(10)  # still starting while the caller goes on
            raise OSError("no free port")

    monkeypatch.setattr(distributed, "LocalCluster", CannotStart)
    with Executor(LOCAL2) as ex:  # returns before the cluster is up: the driver loads data meanwhile
        assert not release.is_set()
        release.set()
        with pytest.raises(CovcallError, match=r"could not start a local Dask cluster of 2 workers: OSError: no "
                                               r"free port; run with --workers 1 \(COMPUTE=serial\)"):
            ex.scatter([1, 2])
    # a batch learns of it at its first unit: the batch is recorded as failed with the reason, no run is stored
    store = Store(tmp_path / "cc.duckdb")
    with pytest.raises(CovcallError, match="could not start a local Dask cluster"):
        run_batch(BATCH, store=store, compute=LOCAL2)
    jobs = store.read_jobs()
    assert list(jobs["status"]) == ["failed"] and "could not start a local Dask cluster" in jobs["error"].iloc[0]
    assert store.list_runs().empty


# -- the data side -------------------------------------------------------------------------------------
def test_parquet_export_partitioned_by_underlying_and_timeframe(tmp_path, monkeypatch, capsys) -> None:
    import duckdb

    store = Store(tmp_path / "cc.duckdb")
    res = run_batch(BATCH, store=store)
    monkeypatch.setenv("DUCKDB_PATH", str(store.path))
    out = tmp_path / "examples_pq"
    assert main(["export", "--batch", res.batch_id, "--format", "parquet", "--partition-by", "underlying,timeframe",
                 "--out", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rows"] == res.examples and shown["files"] == 4
    assert sorted(str(p.relative_to(out).parent) for p in out.rglob("*.parquet")) == [
        "underlying=BTC/timeframe=1d", "underlying=BTC/timeframe=4h", "underlying=ETH/timeframe=1d",
        "underlying=ETH/timeframe=4h"]
    got = duckdb.sql(f"SELECT underlying, timeframe, count(*) AS n FROM read_parquet('{out}/**/*.parquet', "
                     "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    want = duckdb.connect(str(store.path), read_only=True).execute(
        "SELECT underlying, timeframe, count(*) FROM examples GROUP BY ALL ORDER BY ALL").fetchall()
    assert got == want
    # an existing folder is refused and left as it was; a typo in a column suggests the right one
    marker = out / "keep.txt"
    marker.write_text("mine")
    assert main(["export", "--format", "parquet", "--partition-by", "underlying", "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err and marker.read_text() == "mine"
    assert main(["export", "--format", "parquet", "--partition-by", "timefrme", "--out", str(tmp_path / "x")]) == 2
    assert "did you mean 'timeframe'" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["export", "--format", "csv", "--partition-by", "underlying", "--out", str(tmp_path / "y")]) == 2
    assert "use --format parquet" in capsys.readouterr().err


# -- the pages -----------------------------------------------------------------------------------------
def test_the_batch_tab_runs_on_the_configured_cluster_and_says_where(app_db, monkeypatch) -> None:
    from datetime import date

    import pandas as pd
    from apptest_support import errors, no_exception, open_page, texts

    monkeypatch.setenv("WORKERS", "2")
    at = open_page("pages/backtest.py")
    at.session_state["backtest_batch_windows"] = pd.DataFrame(
        {"start": [date(2024, 1, 1)], "end": [date(2024, 2, 29)], "note": ["Jan-Feb"]})
    at.multiselect(key="backtest_batch_underlyings").set_value(["BTC", "ETH"])
    at.multiselect(key="backtest_batch_exit_styles").set_value(["hold_to_expiry", "tp_and_roll"]).run()
    # before it runs: what pressing the button would start (`covcall batch --plan`)
    from covcall.batch import BatchSpec, work_seconds

    work = round(work_seconds(BatchSpec.parse({"underlyings": ["BTC", "ETH"], "timeframes": ["1d"], "windows": [
        {"start": "2024-01-01", "end": "2024-02-29"}], "exit_styles": ["hold_to_expiry", "tp_and_roll"]}).configs()), 1)
    assert any(c.value.startswith(f"4 units, about {work:g} s of backtests on one core; runs on: local Dask cluster, "
                                  "2 worker") for c in at.caption)
    at.button(key="backtest_batch_run").click().run()
    no_exception(at)
    assert not errors(at)
    assert "Ran on: local Dask cluster, 2 worker processes" in texts(at)
    assert not [b for b in at.button if b.key == "backtest_batch_stop"]  # no Stop next to a finished batch
    table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(table["status"]) == ["ok"] * 4
    serial = run_batch({"name": "batch", "underlyings": ["BTC", "ETH"], "timeframes": ["1d"],
                        "windows": [{"start": "2024-01-01", "end": "2024-02-29"}],
                        "exit_styles": ["hold_to_expiry", "tp_and_roll"]})
    stored = Store(app_db).list_runs().sort_values("label")
    assert sorted(r["metrics"]["total_return"] for r in serial.runs) == sorted(
        json.loads(m)["total_return"] if isinstance(m, str) else m["total_return"] for m in stored["metrics"])


def test_a_stopped_sweep_says_so_on_the_next_run(app_db) -> None:
    from apptest_support import open_page

    at = open_page("pages/backtest.py")
    at.session_state["backtest_batch_running"] = True  # what a Stop mid-batch leaves behind
    at.run()
    assert any("The batch was stopped" in w.value for w in at.warning)
    at.run()
    assert not any("The batch was stopped" in w.value for w in at.warning)


def test_commands_skip_the_interpreters_teardown_but_keep_their_output_and_exit_code(tmp_path) -> None:
    """`covcall` ends without tearing down its modules (covcall.cli.leave) and the fork server likewise
    (covcall.forkserver): output complete, exit codes kept; importing the fork server's module anywhere else
    changes nothing."""
    exe = str(Path(sys.executable).with_name("covcall"))
    env = {**os.environ, "DUCKDB_PATH": str(tmp_path / "cc.duckdb")}
    ok = subprocess.run([exe, "backtest", "--start", "2024-01-01", "--end", "2024-02-29", "--json"],
                        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["metrics"]["n_trades"] > 0  # the whole JSON document arrived
    bad = subprocess.run([exe, "backtest", "--start", "2024-02-30"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and bad.stdout == ""
    code = ("import multiprocessing as mp, sys\n"
            "import covcall.forkserver as f\n"
            "def child(q):\n"
            "    import covcall.forkserver as g\n"
            "    q.put(g.QUICK_EXIT)\n"
            "if __name__ == '__main__':\n"
            "    ctx = mp.get_context('forkserver')\n"
            "    ctx.set_forkserver_preload(['covcall.forkserver'])\n"
            "    q = ctx.Queue()\n"
            "    p = ctx.Process(target=child, args=(q,))\n"
            "    p.start(); seen = q.get(timeout=60); p.join()\n"
            "    print(f.QUICK_EXIT, seen, p.exitcode)\n"
            "    sys.exit(3)\n")
    script = tmp_path / "fs.py"
    script.write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    # only the fork server (and the children it forks) registered the quick exit; this program's exit code stays
    assert (out.returncode, out.stdout.split()) == (3, ["False", "True", "0"]), out.stderr
