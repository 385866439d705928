"""The store: schema versioning, transactions, and a clear message when another process keeps the lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from covcall.errors import CovcallError, StoreBusyError
from covcall.store import SCHEMA_VERSION, Store


def test_schema_is_versioned_and_a_newer_file_is_refused(tmp_path):
    s = Store(tmp_path / "a.duckdb")
    assert s.schema_version() == SCHEMA_VERSION
    s.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(CovcallError, match="newer than this covcall"):
        Store(tmp_path / "a.duckdb").counts()


def test_a_failed_transaction_writes_nothing(tmp_path):
    s = Store(tmp_path / "t.duckdb")
    good = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"), "open": 1.0,
                         "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0})
    s.write_candles("csv", "BTC", "1d", good)
    run = {"run_id": "r1", "status": "ok"}
    bad_trades = pd.DataFrame({"run_id": ["r1"], "no_such_column": [1]})
    with pytest.raises(Exception):  # noqa: B017 - any database error; the point is what is left behind
        s.save_run(run, {"trades": bad_trades})
    assert s.counts()["runs"] == 0  # the run row did not land without its trades
    assert len(s.read_candles("csv", "BTC", "1d")) == 3  # earlier data untouched


def test_runs_saved_together_are_still_one_transaction_each(tmp_path):
    """A sweep saves the runs that arrived together through one connection (Store.writes): a run that fails
    leaves the ones before it saved and writes nothing of its own."""
    s = Store(tmp_path / "w.duckdb")
    trades = pd.DataFrame({"run_id": ["r1"], "trade_no": [1]})
    with s.writes():
        s.save_run({"run_id": "r1", "status": "ok"}, {"trades": trades})
        with pytest.raises(Exception):  # noqa: B017 - any database error; the point is what is left behind
            s.save_run({"run_id": "r2", "status": "ok"}, {"trades": pd.DataFrame({"no_such_column": [1]})})
        s.save_run({"run_id": "r3", "status": "ok"}, {})
        assert s.counts()["runs"] == 2  # reads in the block see the block's writes
    assert sorted(s.list_runs()["run_id"]) == ["r1", "r3"]
    assert len(s.read_run_table("trades", ["r1", "r2"])) == 1


def test_a_reader_in_another_thread_waits_for_the_writes_block(tmp_path):
    """Same process, another thread (a second dashboard session): DuckDB refuses a read-only connection while
    this process holds the file read-write; the reader retries like it does on another process's lock."""
    import threading
    import time

    path = tmp_path / "t.duckdb"
    writer, reader = Store(path), Store(path)
    writer.counts()
    seen: list[int] = []
    with writer.writes():
        writer.save_run({"run_id": "r1", "status": "ok"}, {})
        t = threading.Thread(target=lambda: seen.append(reader.counts()["runs"]))
        t.start()
        time.sleep(0.3)
        assert not seen  # still waiting: the block holds the file
    t.join(timeout=10)
    assert seen == [1]


def test_lock_held_past_the_timeout_gives_one_clear_message(tmp_path):
    path = tmp_path / "busy.duckdb"
    Store(path).counts()  # create the file
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep(20)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusyError, match="stayed locked by another process for 1s"):
            Store(path, timeout_s=1.0).counts()
    finally:
        holder.kill()
        holder.wait()
    assert Store(path).counts()["runs"] == 0  # usable again once the other process is gone


def test_jobs_record_done_failed_and_interrupted(tmp_path) -> None:
    import pytest

    from covcall.jobs import list_jobs, tracked

    store = Store(tmp_path / "j.duckdb")
    with tracked(store, "j1", "batch", "ok") as info:
        info["runs"] = 3
    with pytest.raises(ValueError), tracked(store, "j2", "batch", "bad"):
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), tracked(store, "j3", "walk", "stopped"):
        raise KeyboardInterrupt
    store.start_job("j4", "walk", "killed", pid=2**22 + 4321, host=__import__("socket").gethostname())
    jobs = list_jobs(store).set_index("job_id")
    assert jobs.loc["j1", "status"] == "done" and jobs.loc["j1", "detail"] == {"runs": 3}
    assert jobs.loc["j2", "status"] == "failed" and jobs.loc["j2", "error"] == "ValueError: boom"
    assert jobs.loc["j3", "status"] == "interrupted"
    assert jobs.loc["j4", "status"] == "interrupted"  # a dead process's running job
