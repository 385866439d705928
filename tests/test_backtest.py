"""End-to-end backtests on the synthetic market: identity, no look-ahead, persistence and exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.backtest import BacktestConfig, run_backtest
from covcall.dataset import EXAMPLE_COLUMNS, SELL_KEYS, SKIP_KEYS
from covcall.errors import SpecError
from covcall.store import Store

SHORT = {"underlying": "BTC", "timeframe": "1d", "start": "2023-01-01", "end": "2023-06-30"}


@pytest.fixture(scope="module")
def tp_4h():
    return run_backtest(BacktestConfig(underlying="ETH", timeframe="4h", start="2023-01-01", end="2023-06-30",
                                       exit_style="tp_and_roll"))


def test_equity_identity_covered_call_minus_hodl_is_option_pnl(tp_4h):
    eq = tp_4h.equity
    legs = tp_4h.trades["pnl_vs_hodl"].sum()
    assert eq["covered_call"].iloc[-1] - eq["hodl"].iloc[-1] == pytest.approx(legs, rel=1e-9, abs=1e-6)
    assert tp_4h.metrics["option_pnl_usd"] == pytest.approx(legs)
    # and every trade's pnl = coin move + option leg
    t = tp_4h.trades
    np.testing.assert_allclose(t.pnl, t.pnl_vs_hodl + t.quantity * (t.spot_exit - t.spot_entry))


def test_trades_are_consistent_and_sequential(tp_4h):
    t = tp_4h.trades
    assert len(t) > 10
    assert set(t.exit_reason) <= {"expired_otm", "settled_itm", "take_profit", "window_end"}
    assert (t.exit_time >= t.entry_time).all()
    assert (t.entry_time.iloc[1:].to_numpy() >= t.exit_time.iloc[:-1].to_numpy()).all()  # one call at a time
    assert (t.premium_usd > 0).all() and (t.fee_usd > 0).all()
    tp = t[t.exit_reason == "take_profit"]
    # take-profit buys back at the ask once the mark reaches half the premium, so the ask is near half
    assert (tp.exit_usd < tp.premium_usd).all()
    itm = t[t.exit_reason == "settled_itm"]
    np.testing.assert_allclose(itm.exit_usd, np.maximum(itm.spot_exit - itm.strike, 0) * itm.quantity)


def test_examples_follow_the_seed_schema(tp_4h):
    ex = tp_4h.examples
    assert list(ex.columns) == list(EXAMPLE_COLUMNS)
    sells = ex[ex.action == "SELL_CALL"]
    assert len(sells) == len(tp_4h.trades)
    np.testing.assert_allclose(sells.reward.to_numpy(float), tp_4h.trades.pnl.to_numpy(float))
    assert sells[list(SKIP_KEYS)].isna().all().all()
    skips = ex[ex.action == "DO_NOTHING"]
    assert (skips.reward == 0.0).all()
    assert set(skips.reason) <= {"score_below_threshold", "no_candidates", "trade_simulation_failed"}


def test_sold_candidate_label_equals_the_trade(tp_4h):
    c = tp_4h.candidates
    chosen = c[c.chosen].reset_index(drop=True)
    assert len(chosen) == len(tp_4h.trades)
    np.testing.assert_allclose(chosen.reward, tp_4h.trades.pnl)
    assert (chosen.label_end == tp_4h.trades.exit_time).all()
    assert (c.label_end > c.decision_time).all()


def test_no_look_ahead_truncating_data_keeps_earlier_decisions():
    from covcall.market import load_candles

    cfg = BacktestConfig(underlying="BTC", timeframe="1d", start="2022-01-01", end="2022-12-31")
    candles = load_candles("BTC", "1d", "2021-11-01", "2022-12-31")
    full = run_backtest(cfg, candles=candles)
    cut = pd.Timestamp("2022-07-01", tz="UTC")
    truncated = run_backtest(cfg.model_copy(update={"end": pd.Timestamp("2022-06-30").date()}),
                             candles=candles[candles.ts < cut])
    keep = ["decision_time", "action", "instrument", "strike", "delta", "score", "best_score", "reason", "spot",
            "iv_ann", "rv_ann"]
    a = full.examples[full.examples.decision_time <= truncated.examples.decision_time.max()][keep]
    b = truncated.examples[keep]
    # every decision made before the cut is identical; only outcomes (rewards) may differ
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_persisted_rows_match_result_and_exports(tmp_path):
    store = Store(tmp_path / "cc.duckdb")
    res = run_backtest(SHORT, store=store, export_dir=tmp_path / "out")
    run = store.get_run(res.run_id)
    assert run["status"] == "ok" and run["config_hash"] == res.config.config_hash()
    from covcall.version import code_version

    assert run["code_version"] == code_version() and run["code_version"].startswith("0.1.0")
    assert run["config"]["underlying"] == "BTC"
    assert run["metrics"]["sharpe"] == pytest.approx(res.metrics["sharpe"])
    for table, df in (("trades", res.trades), ("examples", res.examples), ("candidates", res.candidates)):
        assert len(store.read_run_table(table, [res.run_id])) == len(df)
    eq = store.read_run_table("equity", [res.run_id])
    np.testing.assert_allclose(eq.covered_call, res.equity.covered_call)

    csv_path, jsonl_path = res.exports["csv"], res.exports["jsonl"]
    assert "training_dataset_" + res.run_id in csv_path
    db = store.read_run_table("examples", [res.run_id])
    csv = pd.read_csv(csv_path)
    assert list(csv.columns) == list(EXAMPLE_COLUMNS)
    assert len(csv) == len(db) == len(res.examples)
    np.testing.assert_allclose(csv.reward, db.reward)
    np.testing.assert_allclose(csv.spot, db.spot)
    lines = [json.loads(x) for x in open(jsonl_path, encoding="utf-8")]
    assert len(lines) == len(db)
    for rec, row in zip(lines, db.to_dict("records"), strict=True):
        keys = SELL_KEYS if rec["action"] == "SELL_CALL" else SKIP_KEYS
        assert set(rec["extra"]) == set(keys)
        assert rec["reward"] == pytest.approx(row["reward"])
        if rec["action"] == "SELL_CALL":
            assert rec["extra"]["instrument"] == row["instrument"]
            assert rec["extra"]["dte"] == row["dte"]
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp files left behind


def test_a_sweeps_export_built_piece_by_piece_is_the_export_of_all_its_examples(tmp_path):
    from covcall import dataset

    runs = [run_backtest({**SHORT, "exit_style": style, "label": style}) for style in ("hold_to_expiry",
                                                                                         "tp_and_roll")]
    pieces = dataset.ExportPieces()
    for key in (1, 0):  # in the order the runs finished, not the order of the grid
        pieces.add(key, runs[key].examples)
    pieces.add(2, runs[0].examples.iloc[:0])  # a run without examples adds nothing
    built = pieces.write(tmp_path / "pieces", "b")
    whole = dataset.export_run_files(pd.concat([r.examples for r in runs], ignore_index=True), tmp_path / "all", "b")
    assert pieces.rows == sum(len(r.examples) for r in runs) > 0
    for fmt in ("csv", "jsonl"):
        assert Path(built[fmt]).read_bytes() == Path(whole[fmt]).read_bytes()
    assert dataset.ExportPieces().write(tmp_path / "none", "e") == {}  # no rows: no files


def test_a_run_shaped_on_a_worker_is_stored_exactly_as_one_shaped_by_the_writer(tmp_path):
    """A batch's workers hand back `run_rows` (Arrow tables, `extra` JSON, export text) so the one writer only
    inserts: what lands in the database and the export must be what `persist_run` gives from the result itself."""
    import pickle

    from covcall import dataset

    res = run_backtest({**SHORT, "exit_style": "tp_and_roll"})
    assert len(res.trades) and len(res.candidates) and len(res.examples)
    by_writer, by_worker = Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")
    dataset.persist_run(by_writer, res, batch_id="b1", code_version="v")
    rows = pickle.loads(pickle.dumps(dataset.run_rows(res, export=True)))  # as it crosses from a worker
    dataset.save_rows(by_worker, rows, batch_id="b1", code_version="v")
    assert rows.n_examples == len(res.examples) and rows.summary == res.summary()
    for table in ("trades", "examples", "candidates", "equity"):
        pd.testing.assert_frame_equal(by_worker.read_run_table(table, [res.run_id]),
                                      by_writer.read_run_table(table, [res.run_id]))
    a, b = by_writer.get_run(res.run_id), by_worker.get_run(res.run_id)
    assert {k: v for k, v in a.items() if k != "created_at"} == {k: v for k, v in b.items() if k != "created_at"}
    assert a["metrics"] == pytest.approx(res.metrics, nan_ok=True) and a["n_trades"] == len(res.trades)
    # the export text is what the whole-file export writes
    pieces = dataset.ExportPieces()
    pieces.add_text(0, rows.export, rows.n_examples)
    built = pieces.write(tmp_path / "pieces", "x")
    whole = dataset.export_run_files(res.examples, tmp_path / "whole", "x")
    for fmt in ("csv", "jsonl"):
        assert Path(built[fmt]).read_bytes() == Path(whole[fmt]).read_bytes()
    assert dataset.run_rows(res).export is None  # not asked for: not formatted


def test_interrupted_export_leaves_no_partial_file(tmp_path, monkeypatch):
    from covcall import dataset

    res = run_backtest(SHORT)

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(KeyboardInterrupt):
        dataset.export_run_files(res.examples, tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("patch", "message"),
    [({"start": "2023-06-01", "end": "2023-01-01"}, "after end"),
     ({"exit_style": "hold_to_expiri"}, "exit_style"),
     ({"delta_min": 0.4, "delta_max": 0.2}, "delta_min"),
     ({"timeframe": "2h"}, "timeframe"),
     ({"exitstyle": "tp_and_roll"}, "did you mean 'exit_style'")],
)
def test_bad_config_gives_clear_error_and_saves_nothing(tmp_path, patch, message):
    store = Store(tmp_path / "cc.duckdb")
    kept = run_backtest(SHORT, store=store)
    with pytest.raises(SpecError, match=message):
        run_backtest({**SHORT, **patch}, store=store)
    runs = store.list_runs()
    assert list(runs.run_id) == [kept.run_id]
    assert len(store.read_run_table("examples", [kept.run_id])) == len(kept.examples)


def test_hodl_baseline_equals_holding():
    res = run_backtest({**SHORT, "policy": "hodl"})
    assert res.trades.empty
    np.testing.assert_allclose(res.equity.covered_call, res.equity.hodl)
    assert res.metrics["excess_return"] == pytest.approx(0.0)


def test_fixed_delta_baseline_sells_weekly_tenth_delta():
    res = run_backtest({**SHORT, "policy": "fixed_delta", "target_delta": 0.10, "target_dte_days": 7})
    t = res.trades
    assert len(t) > 10
    assert t.delta.between(0.03, 0.2).all()
    assert t.dte_days.between(3, 11).all()


def test_dvol_iv_source_uses_the_index():
    a = run_backtest({**SHORT, "iv_source": "realized"})
    b = run_backtest({**SHORT, "iv_source": "dvol"})
    both = a.examples.merge(b.examples, on="decision_time", suffixes=("_rv", "_dvol"))
    assert len(both) > 10
    assert not np.allclose(both.iv_ann_rv.to_numpy(float), both.iv_ann_dvol.to_numpy(float))


def test_auto_prices_off_the_iv_index_where_one_is_stored_and_says_how_much(tmp_path, capsys):
    """iv_source 'auto' (the default): the index where the store has one, the proxy before it starts and where
    there is none; the run records the share of its bars priced off the index, and the CLI says it in words."""
    from covcall.cli import main
    from covcall.market import load_candles, load_iv

    default = run_backtest(SHORT)  # the synthetic market has its own index
    assert default.config.iv_source == "auto" and default.metrics["iv_index_share"] == 1.0
    dvol = run_backtest({**SHORT, "iv_source": "dvol"})
    pd.testing.assert_frame_equal(default.trades.drop(columns="run_id"), dvol.trades.drop(columns="run_id"))
    assert run_backtest({**SHORT, "iv_source": "realized"}).metrics["iv_index_share"] is None

    store = Store(tmp_path / "s.duckdb")
    store.write_candles("csv", "BTC", "1d", load_candles("BTC", "1d", "2022-10-01", "2023-06-30"))
    cfg = {**SHORT, "source": "store"}
    none = run_backtest(cfg, store=store)  # candles only: the proxy throughout, as 'realized' prices
    proxy = run_backtest({**cfg, "iv_source": "realized"}, store=store)
    assert none.metrics["iv_index_share"] == 0.0
    pd.testing.assert_frame_equal(none.trades.drop(columns="run_id"), proxy.trades.drop(columns="run_id"))
    with pytest.raises(SpecError, match="iv_source 'dvol' needs an IV series"):
        run_backtest({**cfg, "iv_source": "dvol"}, store=store)
    # an index from 2023-04-01 on: the proxy before it (those calls priced exactly as without it), the index after
    iv = load_iv("BTC", "2023-01-01", "2023-06-30")
    store.write_iv("csv", "BTC", iv[iv["ts"] >= pd.Timestamp("2023-04-01", tz="UTC")])
    part = run_backtest(cfg, store=store)
    closes = pd.date_range("2023-01-02", "2023-07-01", freq="D", tz="UTC")  # each daily bar's close
    assert part.metrics["iv_index_share"] == pytest.approx((closes >= "2023-04-01").mean())

    def sold(res, early: bool) -> pd.DataFrame:
        t = res.trades.drop(columns="run_id")
        early_rows = pd.to_datetime(t["entry_time"], utc=True) < pd.Timestamp("2023-03-31", tz="UTC")
        return t[early_rows == early].reset_index(drop=True)

    assert len(sold(part, True)) > 3
    pd.testing.assert_frame_equal(sold(part, True), sold(none, True))
    assert not sold(part, False)["premium_usd"].equals(sold(none, False)["premium_usd"])

    monkey = {"DUCKDB_PATH": str(tmp_path / "s.duckdb")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in monkey.items():
            mp.setenv(k, v)
        assert main(["backtest", "--source", "store", "--start", "2023-01-01", "--end", "2023-06-30"]) == 0
    share = 100 * part.metrics["iv_index_share"]  # 92 of 181 daily closes
    assert f"  implied vol: IV index on {share:.0f} % of bars (the realised-vol proxy before the index starts)" \
        in capsys.readouterr().out and round(share) == 51


def test_daily_runs_settle_from_stored_finer_bars_and_fall_back_to_the_proxy(tmp_path):
    from covcall.market import load_candles
    from covcall.store import Store

    store = Store(tmp_path / "s.duckdb")
    daily = load_candles("BTC", "1d", "2022-10-01", "2023-03-31", source="synthetic")
    store.write_candles("csv", "BTC", "1d", daily)
    cfg = {"source": "store", "start": "2023-01-01", "end": "2023-03-31"}
    alone = run_backtest(cfg, store=store)
    assert set(alone.trades.settlement_source.dropna()) == {"daily_proxy"}
    store.write_candles("csv", "BTC", "4h", load_candles("BTC", "4h", "2022-10-01", "2023-03-31",
                                                         source="synthetic"))
    fine = run_backtest(cfg, store=store)
    assert set(fine.trades.settlement_source.dropna()) == {"finer_bars"}
    proxy = run_backtest({**cfg, "settlement": "proxy"}, store=store)
    assert set(proxy.trades.settlement_source.dropna()) == {"daily_proxy"}
    assert store.read_run_table("trades", [fine.run_id])["settlement_source"].dropna().eq("finer_bars").all()
    with pytest.raises(SpecError, match="settlement"):
        run_backtest({**cfg, "settlement": "proxi"}, store=store)
