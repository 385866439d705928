"""`covcall data` as a user runs it: import, import-iv, fetch, show, errors; and two processes on one DuckDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from covcall.cli import main
from covcall.store import Store

COVCALL = Path(sys.executable).parent / "covcall"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CSV = """timestamp,open,high,low,close,volume
2024-01-02,105,115,100,110,11
2024-01-01,100,110,90,105,10
2024-01-03,110,120,105,115,12
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def env_for(db: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SAVE_TRAINING_DATA",)}
    env.update(DUCKDB_PATH=str(db), **extra)
    return env


def test_import_json_then_show(db: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "b.csv").write_text(CSV)
    code, out, _ = run(capsys, "data", "import", "--csv", "b.csv", "--underlying", "BTC", "--timeframe", "1d",
                       "--json")
    assert code == 0
    payload = json.loads(out)
    assert {k: payload[k] for k in ("underlying", "timeframe", "rows", "start", "end")} == {
        "underlying": "BTC", "timeframe": "1d", "rows": 3, "start": "2024-01-01T00:00:00+00:00",
        "end": "2024-01-03T00:00:00+00:00"}
    (tmp_path / "iv.csv").write_text("date,close\n2024-01-01,50\n")
    code, out, _ = run(capsys, "data", "import-iv", "--csv", "iv.csv", "--underlying", "BTC")
    assert code == 0 and out.startswith("imported 1 BTC 1d rows (csv)")
    code, out, _ = run(capsys, "data", "show", "--json")
    shown = json.loads(out)
    assert shown == [
        {"kind": "candles", "source": "csv", "underlying": "BTC", "timeframe": "1d", "rows": 3,
         "start": "2024-01-01T00:00:00+00:00", "end": "2024-01-03T00:00:00+00:00"},
        {"kind": "iv", "source": "csv", "underlying": "BTC", "timeframe": "1d", "rows": 1,
         "start": "2024-01-02T00:00:00+00:00", "end": "2024-01-02T00:00:00+00:00"},
    ]
    code, out, _ = run(capsys, "data", "show")
    assert code == 0 and "csv" in out and "BTC" in out


def test_show_empty_store_is_helpful(db: Path, capsys) -> None:
    code, out, _ = run(capsys, "data", "show")
    assert code == 0 and "no cached series" in out
    code, out, _ = run(capsys, "data", "show", "--json")
    assert json.loads(out) == []


@pytest.mark.parametrize("argv, message", [
    (["--start", "2024-13-01", "--end", "2024-03-01"],
     "error: --start '2024-13-01' is not a date; expected YYYY-MM-DD, e.g. 2024-01-31\n"),
    (["--start", "2024-01-01", "--end", "March"],
     "error: --end 'March' is not a date; expected YYYY-MM-DD, e.g. 2024-01-31\n"),
    (["--start", "2024-03-01", "--end", "2024-01-01"],
     "error: --start 2024-03-01 is after --end 2024-01-01; expected --start <= --end (YYYY-MM-DD)\n"),
])
def test_fetch_bad_dates_are_one_line(db: Path, capsys, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, "data", "fetch", "--underlying", "BTC", *argv)
    assert code == 2 and err == message and out == ""


def test_bad_csv_and_bad_timeframe_are_one_line(db: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.csv").write_text("timestamp,open,high,low,close\n2024-01-01,1,2,1,x\n")
    code, _, err = run(capsys, "data", "import", "--csv", "bad.csv", "--underlying", "BTC", "--timeframe", "1d")
    assert code == 2 and err == ("error: 1 malformed row in bad.csv: line 2 (close 'x' is not a number); "
                                 "fix or remove them\n")
    code, _, err = run(capsys, "data", "import", "--csv", "bad.csv", "--underlying", "BTC", "--timeframe", "1D")
    assert code == 2 and err.count("\n") == 1 and "did you mean '1d'" in err
    assert not db.exists() or Store(db).list_series().empty


def test_help_for_every_action(capsys) -> None:
    for action in ("import", "import-iv", "fetch", "show"):
        with pytest.raises(SystemExit) as info:
            main(["data", action, "--help"])
        assert info.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_real_script_import_and_show(tmp_path: Path) -> None:
    csv = tmp_path / "b.csv"
    csv.write_text(CSV)
    db = tmp_path / "s.duckdb"
    done = subprocess.run([str(COVCALL), "data", "import", "--csv", str(csv), "--underlying", "ETH",
                           "--timeframe", "1d", "--json"], capture_output=True, text=True, cwd=tmp_path,
                          env=env_for(db), timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 3
    done = subprocess.run([str(COVCALL), "data", "show", "--json"], capture_output=True, text=True, cwd=tmp_path,
                          env=env_for(db), timeout=60)
    assert [(e["underlying"], e["rows"]) for e in json.loads(done.stdout)] == [("ETH", 3)]


def test_bad_setting_is_one_stderr_line(tmp_path: Path) -> None:
    done = subprocess.run([str(COVCALL), "data", "show"], capture_output=True, text=True, cwd=tmp_path,
                          env=env_for(tmp_path / "s.duckdb", SAVE_TRAINING_DATA="maybe"), timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "SAVE_TRAINING_DATA" in lines[0]


def test_offline_fetch_fails_fast_with_real_ccxt(tmp_path: Path) -> None:
    done = subprocess.run([str(COVCALL), "data", "fetch", "--exchange", "binance", "--underlying", "BTC",
                           "--timeframe", "1h", "--start", "2024-01-01", "--end", "2024-03-01"],
                          capture_output=True, text=True, cwd=tmp_path, env=env_for(tmp_path / "s.duckdb"),
                          timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach binance: ")
    assert "Traceback" not in done.stderr


WRITER = textwrap.dedent("""
    import sys
    import pandas as pd
    from covcall.store import Store
    store = Store(sys.argv[1], timeout_s=60)
    for i in range(int(sys.argv[2])):
        ts = pd.date_range("2024-01-01", periods=24, freq="h", tz="UTC") + pd.Timedelta(days=i)
        store.write_candles("proc", "BTC", "1h", pd.DataFrame(
            {"ts": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": float(i)}))
    print("done")
""")


def test_two_processes_share_one_duckdb_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.duckdb"
    store = Store(db, timeout_s=60)
    store.schema_version()
    n = 30
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(n)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for i in range(n):
        ts = pd.date_range("2024-01-01", periods=24, freq="h", tz="UTC") + pd.Timedelta(days=i)
        store.write_candles("main", "BTC", "1h", pd.DataFrame(
            {"ts": ts, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": float(i)}))
        seen.append(len(store.read_candles("proc", "BTC", "1h")))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == "done" and "Traceback" not in err
    assert len(store.read_candles("proc", "BTC", "1h")) == n * 24
    assert len(store.read_candles("main", "BTC", "1h")) == n * 24
    assert seen == sorted(seen)  # the other process's rows only ever accumulate


def test_real_file_through_the_cli(db: Path, capsys) -> None:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent")
    code, out, _ = run(capsys, "data", "import-iv", "--csv", str(SHARED / "eth_dvol.csv"), "--underlying", "ETH",
                       "--json")
    assert code == 0 and json.loads(out)["start"] == "2021-03-25T00:00:00+00:00"


def test_fetch_hourly_dvol_through_the_cli(db: Path, capsys, monkeypatch) -> None:
    from fakes.ccxt_fake import FakeExchange

    import covcall.market.exchange as ex

    fake = FakeExchange("deribit")
    monkeypatch.setattr(ex, "make_client", lambda exchange: fake)
    code, out, err = run(capsys, "data", "fetch", "--dvol", "--underlying", "BTC", "--timeframe", "1h",
                         "--start", "2021-03-24", "--end", "2021-03-25", "--json")
    got = json.loads(out)
    assert code == 0 and got["timeframe"] == "1h" and got["rows"] == 48
    assert fake.calls[0][1]["resolution"] == "3600"
    series = Store(db).list_series()
    assert series[series["kind"] == "iv"]["timeframe"].tolist() == ["intraday"]
    code, out, err = run(capsys, "data", "fetch", "--dvol", "--underlying", "BTC", "--timeframe", "4h",
                         "--start", "2021-03-24", "--end", "2021-03-25")
    assert code == 2 and err == "error: DVOL comes in bars of 1d or 1h, not '4h'\n" and out == ""
    assert Store(db).read_iv("BTC").shape[0] == 48  # nothing changed
