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
