"""`covcall backtest`, `batch`, `export` and `runs` invoked as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from covcall.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cc.duckdb"))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(tmp_path / "exports"))
    monkeypatch.delenv("SAVE_TRAINING_DATA", raising=False)
    return tmp_path


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_backtest_json_reports_metrics_counts_and_no_exports_by_default(env, capsys):
    out = run_json(capsys, "backtest", "--underlying", "BTC", "--timeframe", "1d", "--start", "2022-01-01",
                   "--end", "2022-06-30", "--exit-style", "hold_to_expiry")
    assert set(out) >= {"run_id", "metrics", "counts", "exports"}
    c = out["counts"]
    assert c["decisions"] == c["sell_call"] + c["do_nothing"] and c["trades"] == c["sell_call"] > 0
    assert out["exports"] == {}
    assert isinstance(out["metrics"]["sharpe"], float)
    runs = run_json(capsys, "runs")
    assert [r["run_id"] for r in runs] == [out["run_id"]]


def test_save_training_data_writes_csv_and_jsonl_with_the_db_rows(env, capsys, monkeypatch):
    monkeypatch.setenv("SAVE_TRAINING_DATA", "true")
    out = run_json(capsys, "backtest", "--underlying", "ETH", "--timeframe", "4h", "--start", "2023-01-01",
                   "--end", "2023-03-31", "--exit-style", "tp_and_roll")
    csv = pd.read_csv(out["exports"]["csv"])
    jsonl = [json.loads(x) for x in open(out["exports"]["jsonl"], encoding="utf-8")]
    assert len(csv) == len(jsonl) == out["counts"]["decisions"]
    assert Path(out["exports"]["csv"]).name.startswith(f"training_dataset_{out['run_id']}_")
    # export from the store gives the same rows again, in parquet too
    pq = env / "x.parquet"
    exp = run_json(capsys, "export", "--run", out["run_id"], "--format", "parquet", "--out", str(pq))
    assert exp["rows"] == len(csv)
    assert pd.read_parquet(pq)["reward"].sum() == pytest.approx(csv["reward"].sum())


def test_batch_runs_the_grid_isolates_failures_and_writes_one_dataset(env, capsys, monkeypatch):
    monkeypatch.setenv("SAVE_TRAINING_DATA", "1")
    spec = env / "batch.json"
    spec.write_text(json.dumps({
        "name": "grid", "underlyings": ["BTC", "ETH"], "timeframes": ["1d"],
        "windows": [{"start": "2022-01-01", "end": "2022-03-31"}, {"start": "2030-01-01", "end": "2030-02-01"}],
        "exit_styles": ["hold_to_expiry", "tp_and_roll"]}))
    assert main(["batch", "--spec", str(spec), "--json"]) == 1  # some runs failed
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["ok"] == 4 and out["failed"] == 4
    assert all("2030" in r["label"] for r in out["runs"] if r["status"] == "failed")
    assert "[8/8] done" in captured.err  # progress on stderr
    csv = pd.read_csv(out["exports"]["csv"])
    assert len(csv) == out["examples"] == sum(r["decisions"] for r in out["runs"] if r["status"] == "ok")
    assert set(csv.underlying) == {"BTC", "ETH"} and set(csv.exit_style.dropna()) == {"hold_to_expiry",
                                                                                        "tp_and_roll"}
    runs = run_json(capsys, "runs", "--limit", "50")
    assert sorted(r["status"] for r in runs).count("failed") == 4
    by_id = {r["run_id"]: r for r in runs}  # the list carries what a reader scans it for
    for r in (r for r in out["runs"] if r["status"] == "ok"):
        listed = by_id[r["run_id"]]
        assert (listed["total_return"], listed["excess_return"], listed["sharpe"]) == (
            r["metrics"]["total_return"], r["metrics"]["excess_return"], r["metrics"]["sharpe"])
    assert all(by_id[r["run_id"]]["sharpe"] is None for r in out["runs"] if r["status"] == "failed")
    # without --json: one line a run, its return, excess over HODL and Sharpe as a reader wants them
    assert main(["batch", "--spec", str(spec)]) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("  ok")]
    first = next(r for r in out["runs"] if r["status"] == "ok")["metrics"]
    assert len(lines) == 4 and lines[0].endswith(
        f"return {first['total_return']:+.1%}, vs HODL {first['excess_return']:+.1%}, sharpe {first['sharpe']:.2f}")


@pytest.mark.parametrize(("argv", "needle"), [
    (["backtest", "--start", "2023-02-30"], "start"),
    (["backtest", "--start", "2023-06-01", "--end", "2023-01-01"], "after end"),
    (["backtest", "--exit-style", "hold"], "exit_style"),
    (["backtest", "--timeframe", "15m"], "timeframe"),
    (["export", "--run", "nope", "--format", "csv", "--out", "x.csv"], "no run 'nope'"),
    (["export", "--run", "nope", "--format", "xlsx", "--out", "x.xlsx"], "format must be one of csv, jsonl, parquet"),
    (["batch", "--spec", "missing.json"], "missing.json"),
])
def test_user_errors_are_one_line_exit_2(env, capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_console_script_backtest_as_a_subprocess(env):
    exe = Path(sys.executable).parent / "covcall"
    res = subprocess.run([str(exe), "backtest", "--start", "2022-01-01", "--end", "2022-02-28", "--json"],
                         capture_output=True, text=True, env={**os.environ}, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["counts"]["trades"] > 0


@pytest.mark.realdata
def test_real_btc_4h_with_dvol_satisfies_the_identity(env, capsys):
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    run_json(capsys, "data", "import", "--csv", str(SHARED / "BTCUSDT_4h.csv"), "--underlying", "BTC",
             "--timeframe", "4h")
    run_json(capsys, "data", "import-iv", "--csv", str(SHARED / "btc_dvol.csv"), "--underlying", "BTC")
    out = run_json(capsys, "backtest", "--underlying", "BTC", "--timeframe", "4h", "--start", "2022-01-01",
                   "--end", "2022-12-31", "--source", "store", "--iv-source", "dvol", "--exit-style", "tp_and_roll")
    from covcall.store import Store

    store = Store(env / "cc.duckdb")
    eq = store.read_run_table("equity", [out["run_id"]])
    trades = store.read_run_table("trades", [out["run_id"]])
    assert eq.covered_call.iloc[-1] - eq.hodl.iloc[-1] == pytest.approx(trades.pnl_vs_hodl.sum(), abs=1e-6)
    # 2022 was a bear year: HODL lost most of its value
    assert out["metrics"]["hodl_total_return"] < -0.5


def test_export_a_filtered_selection_like_the_dataset_page(env, capsys):
    spec = env / "b.json"
    spec.write_text(json.dumps({"name": "x", "underlyings": ["BTC", "ETH"], "timeframes": ["1d"],
                                "windows": [{"start": "2022-01-01", "end": "2022-03-31"}],
                                "exit_styles": ["hold_to_expiry"], "base": {"threshold": 0.3}}))
    batch = run_json(capsys, "batch", "--spec", str(spec))
    out = run_json(capsys, "export", "--batch", batch["batch_id"], "--underlying", "ETH", "--action", "SELL_CALL",
                   "--start", "2022-02-01", "--end", "2022-02-28", "--format", "jsonl", "--out",
                   str(env / "sel.jsonl"))
    rows = [json.loads(x) for x in open(env / "sel.jsonl", encoding="utf-8")]
    assert out["rows"] == len(rows) > 0
    assert {r["underlying"] for r in rows} == {"ETH"} and {r["action"] for r in rows} == {"SELL_CALL"}
    assert all("2022-02-01" <= r["decision_time"][:10] <= "2022-02-28" for r in rows)
    assert set(rows[0]["extra"]) == {"instrument", "delta", "strike", "dte", "score", "exit_style", "pnl_vs_hodl",
                                     "max_drawdown_pct"}
    cands = run_json(capsys, "export", "--batch", batch["batch_id"], "--table", "candidates", "--format", "csv",
                     "--out", str(env / "c.csv"))
    assert cands["rows"] == len(pd.read_csv(env / "c.csv")) > out["rows"]
    assert main(["export", "--batch", "nope", "--format", "csv", "--out", str(env / "n.csv")]) == 2
    assert "no batch 'nope'" in capsys.readouterr().err
    assert not (env / "n.csv").exists()


def test_status_reports_counts_and_settings(env, capsys):
    run_json(capsys, "backtest", "--start", "2022-01-01", "--end", "2022-01-31")
    out = run_json(capsys, "status")
    assert out["database"].endswith("cc.duckdb") and out["data_source"] == "synthetic"
    assert out["counts"]["runs"] == 1 and out["counts"]["examples"] > 0
    assert main(["status"]) == 0
    assert "runs 1" in capsys.readouterr().out


def test_coin_accounting_from_the_cli_reports_coin_metrics(db, capsys) -> None:
    from covcall.cli import main

    assert main(["backtest", "--start", "2023-01-01", "--end", "2023-03-31", "--accounting", "coin", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = out["metrics"]
    assert out["accounting"] == "coin"
    assert {"total_return_coin", "sharpe_coin", "max_drawdown_coin", "option_pnl_coin",
            "premium_collected_coin"} <= set(m)
    assert m["excess_return_coin"] == pytest.approx(m["total_return_coin"])  # HODL earns no coin
    assert main(["backtest", "--start", "2023-01-01", "--end", "2023-03-31", "--accounting", "btc"]) == 2
    assert "accounting" in capsys.readouterr().err


def test_backtest_from_a_stored_run_changes_only_the_flags_given(env, capsys):
    """`--from-run ID`: the run's settings (its calibration pinned, its own chain overrides kept), the flags on top."""
    first = run_json(capsys, "backtest", "--underlying", "ETH", "--start", "2023-02-01", "--end", "2023-04-30",
                     "--exit-style", "tp_and_roll", "--threshold", "0.3", "--label", "mine")
    again = run_json(capsys, "backtest", "--from-run", first["run_id"])
    assert again["run_id"] != first["run_id"] and again["metrics"] == first["metrics"]
    changed = run_json(capsys, "backtest", "--from-run", first["run_id"], "--exit-style", "hold_to_expiry")
    from covcall import open_store

    store = open_store()
    a, c = store.get_run(first["run_id"])["config"], store.get_run(changed["run_id"])["config"]
    assert c["exit_style"] == "hold_to_expiry" and c["threshold"] == 0.3 and c["underlying"] == "ETH"
    assert c["label"] != "mine"  # a new run names itself
    assert {k for k in a if a[k] != c[k]} <= {"exit_style", "label", "calibration"}
    assert main(["backtest", "--from-run", first["run_id"][:-1]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run") and f"did you mean '{first['run_id']}'" in err


def test_batch_and_walk_plan_say_what_would_run_and_run_nothing(env, capsys):
    """`--plan`: the units, their estimated seconds on one core (covcall.batch.run_seconds) and where they would
    run; no run, no walk, not even a database file."""
    from covcall.batch import BatchSpec, work_seconds

    spec = env / "batch.json"
    grid = {"name": "grid", "underlyings": ["BTC", "ETH"], "timeframes": ["1d"],
            "windows": [{"start": "2022-01-01", "end": "2022-03-31"}], "exit_styles": ["hold_to_expiry"]}
    spec.write_text(json.dumps(grid))
    out = run_json(capsys, "batch", "--spec", str(spec), "--plan", "--workers", "1")
    assert out["units"] == 2 and out["runs_on"] == "serial (this process)"
    assert out["work_s_one_core"] == round(work_seconds(BatchSpec.parse(grid).configs()), 1) > 0
    assert out["wall_s_at_least"] == out["work_s_one_core"]
    two = run_json(capsys, "batch", "--spec", str(spec), "--plan", "--workers", "2")
    assert two["runs_on"] == "local Dask cluster, 2 worker processes" and two["workers"] == 2
    assert main(["batch", "--spec", str(spec), "--plan"]) == 0
    assert "Nothing was run" in capsys.readouterr().out
    walk = env / "walk.json"
    walk.write_text(json.dumps({"name": "w", "rangeTrain": [{"startDate": "2022-01-01", "endDate": "2022-03-31"}],
                                "rangeTest": {"startDate": "2022-06-01", "endDate": "2022-07-31"}, "gap_days": 40}))
    w = run_json(capsys, "walk", "--spec", str(walk), "--plan")
    assert w["units"] > 2 and w["work_s_one_core"] > 0
    assert not (env / "cc.duckdb").exists()  # nothing opened, nothing stored
