"""House rules that tests can hold: one settings path, no import cycle, no network in tests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from covcall.cli import main
from covcall.store import Store

WALK = {"name": "fees", "underlying": "BTC", "timeframe": "1d",
        "rangeTrain": [{"startDate": "2023-01-01", "endDate": "2023-03-31"}],
        "rangeTest": {"startDate": "2023-05-15", "endDate": "2023-07-31"}, "gap_days": 40,
        "grid": {"threshold": [0.1]}, "model": {"enabled": False}, "baselines": ["vault_weekly_10d"]}


def _walk_fees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               fee_rate: str) -> tuple[float, dict]:
    db = tmp_path / f"fees-{fee_rate}.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(db))
    monkeypatch.setenv("FEE_RATE", fee_rate)
    spec = tmp_path / "walk.json"
    spec.write_text(json.dumps(WALK))
    capsys.readouterr()
    assert main(["walk", "--spec", str(spec), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    store = Store(db)
    run_ids = [s["run_id"] for s in out["strategies"]]
    trades = store.read_run_table("trades", run_ids)
    return float(trades["fee_usd"].sum()), out["spec"]


def test_the_same_walk_under_two_fee_rates_pays_different_fees(tmp_path, monkeypatch, capsys) -> None:
    low, low_spec = _walk_fees(tmp_path, monkeypatch, capsys, "0.0001")
    high, high_spec = _walk_fees(tmp_path, monkeypatch, capsys, "0.0005")
    assert 0 < low < high
    # the stored spec carries the fee it ran with: the spec file alone reproduces the walk
    assert low_spec["strategy"]["fee_rate"] == 0.0001 and high_spec["strategy"]["fee_rate"] == 0.0005


def test_a_stored_walk_spec_reproduces_the_walk_without_the_settings(tmp_path, monkeypatch, capsys) -> None:
    _, spec = _walk_fees(tmp_path, monkeypatch, capsys, "0.0005")
    again = tmp_path / "again.json"
    again.write_text(json.dumps(spec))
    monkeypatch.setenv("FEE_RATE", "0.0001")  # different settings now: the spec's own fee wins
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "again.duckdb"))
    assert main(["walk", "--spec", str(again), "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["spec"]["strategy"]["fee_rate"] == 0.0005


def test_models_and_model_policy_do_not_import_each_other() -> None:
    code = ("import sys, covcall.models; assert 'covcall.policies.model' not in sys.modules; "
            "import covcall.policies.model; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_tests_cannot_reach_the_network() -> None:
    with pytest.raises(OSError, match="may not"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    with pytest.raises(OSError):
        socket.getaddrinfo("pypi.org", 443)
    # loopback stays open (the dashboard and dask tests use it)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        socket.create_connection(server.getsockname(), timeout=1).close()
    finally:
        server.close()


def test_importing_an_iv_file_as_candles_leaves_real_bars_byte_identical(shared_data, tmp_path, capsys) -> None:
    import os

    db = tmp_path / "real.duckdb"
    os.environ["DUCKDB_PATH"] = str(db)
    try:
        assert main(["data", "import", "--csv", str(shared_data / "BTCUSDT_1d.csv"), "--underlying", "BTC",
                     "--timeframe", "1d"]) == 0
        before = Store(db).read_candles("csv", "BTC", "1d")
        capsys.readouterr()
        assert main(["data", "import", "--csv", str(shared_data / "btc_dvol.csv"), "--underlying", "BTC",
                     "--timeframe", "1d"]) == 2
        assert "import-iv" in capsys.readouterr().err
        assert main(["data", "import", "--csv", str(shared_data / "btc_dvol.csv"), "--underlying", "BTC",
                     "--timeframe", "1d", "--replace"]) == 2  # --replace does not make an IV index candles
        after = Store(db).read_candles("csv", "BTC", "1d")
        assert after.equals(before) and len(after) > 3000
    finally:
        del os.environ["DUCKDB_PATH"]
