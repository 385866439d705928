"""The Chain page and `covcall chain`: the chain a decision would see at a moment (synthetic and real data with a
snapshot overlaid), and the candidates a run's policy saw at one decision."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from apptest_support import errors, metric_value, no_exception, open_page, texts

from covcall.backtest import run_backtest
from covcall.chainview import chain_at, decision_candidates
from covcall.cli import main
from covcall.errors import CovcallError
from covcall.store import Store

PAGE = "pages/chain.py"


def test_the_chain_is_what_a_backtest_decision_sees() -> None:
    """Same spot, IV input and premiums as the engine's candidates at that decision."""
    res = run_backtest({"underlying": "BTC", "timeframe": "1d", "start": "2023-01-01", "end": "2023-01-31"})
    first = res.candidates[res.candidates["decision_time"] == res.candidates["decision_time"].min()]
    t = pd.Timestamp(first["decision_time"].iloc[0])
    view = chain_at("BTC", t, timeframe="1d")
    assert view.t == t and view.spot == pytest.approx(float(first["spot"].iloc[0]))
    assert view.atm_input == pytest.approx(float(first["atm_iv_ann"].iloc[0]))
    quotes = view.quotes.set_index("instrument")
    for r in first.itertuples():
        assert quotes.loc[r.instrument, "bid_usd"] == pytest.approx(r.premium_usd)
    later = chain_at("BTC", t + pd.Timedelta(hours=23), timeframe="1d")
    assert later.t == t  # the next daily bar has not closed yet: nothing after the moment is used


def test_decision_candidates_and_bad_times(tmp_path) -> None:
    store = Store(tmp_path / "c.duckdb")
    res = run_backtest({"underlying": "ETH", "timeframe": "1d", "start": "2023-03-01", "end": "2023-03-31"},
                       store=store)
    out = decision_candidates(store, res.run_id, "2023-03-10")
    assert out["decision_time"] >= pd.Timestamp("2023-03-10", tz="UTC")
    assert out["candidates"]["chosen"].sum() <= 1
    sold = res.trades[res.trades["entry_time"] == out["decision_time"]]
    if len(sold):
        assert out["sold"]["instrument"] == sold["instrument"].iloc[0]
    with pytest.raises(CovcallError, match="nothing at or after 2023-05-01"):
        decision_candidates(store, res.run_id, "2023-05-01")
    with pytest.raises(CovcallError, match="--at: '2023-02-30' is not a day of the calendar"):
        decision_candidates(store, res.run_id, "2023-02-30")


def test_cli_chain(db, capsys) -> None:
    assert main(["chain", "--underlying", "ETH", "--at", "2024-03-01T08:00", "--timeframe", "4h",
                 "--expiry", "2024-03-08", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["t"] == "2024-03-01T08:00:00+00:00" and out["source"] == "synthetic"
    assert out["basis_source"] == "calibrated"  # the synthetic market has no futures
    assert {q["expiry"][:10] for q in out["quotes"]} == {"2024-03-08"}
    assert main(["chain", "--at", "2024-03-01T08:00", "--expiry", "2024-03-09"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no BTC expiry on 2024-03-09") and "2024-03-08" in err


def store_real_chain(store: Store, folder) -> None:
    """Real-shaped data around the 2023-04-12 12:00 UTC snapshot: its BTC chain (tests/test_chains.ticker_rows)
    and hourly BTC candles whose close is 30,000 + 10 x the hour of the day."""
    from test_chains import ticker_rows

    from covcall.chains import import_chain

    path = folder / "chain.csv"
    ticker_rows().to_csv(path, index=False)
    import_chain(store, path)
    ts = pd.date_range("2023-03-01", "2023-04-13", freq="1h", tz="UTC")
    close = 30000.0 + (pd.Series(range(len(ts))) % 24) * 10.0
    store.write_candles("csv", "BTC", "1h", pd.DataFrame({"ts": ts, "open": close, "high": close + 5,
                                                          "low": close - 5, "close": close, "volume": 1.0}))


def test_chain_page_at_a_moment_with_a_real_snapshot_overlaid(app_db, tmp_path) -> None:
    store_real_chain(Store(app_db), tmp_path)
    at = open_page(PAGE)
    at.selectbox(key="chain_source").set_value("store").run()
    at.date_input(key="chain_day").set_value(dt.date(2023, 4, 12)).run()
    at.number_input(key="chain_hour").set_value(12).run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert "**Chain built at 2023-04-12 12:00 UTC**" in texts(at)
    assert metric_value(at, "Spot") == "$30,110.00"  # the close of the 1h bar opened at 11:00, not later
    # the snapshot's own futures (4 %/yr over the index) are the basis history known at 12:00
    assert metric_value(at, "Forward basis") == "4.0%/yr"
    assert any("BTC-20230412T120000Z" in s.value for s in at.success)
    assert any("US CPI release 2023-04-12 12:30" in i.value for i in at.info)  # the release ahead is priced
    assert len(at.get("plotly_chart")) == 2
    quotes = at.dataframe[0].value
    assert {"bid_usd", "ask_usd", "iv_ann", "delta"} <= set(quotes.columns)
    assert at.query_params["day"] == ["2023-04-12"] if isinstance(at.query_params["day"], list) else \
        at.query_params["day"] == "2023-04-12"


def test_chain_page_shows_a_runs_decision(app_db) -> None:
    store = Store(app_db)
    res = run_backtest({"underlying": "BTC", "timeframe": "1d", "start": "2023-01-01", "end": "2023-01-31"},
                       store=store)
    at = open_page(PAGE)
    assert at.selectbox(key="chain_run").value == res.run_id
    shown = texts(at)
    first = res.trades.sort_values("entry_time").iloc[0]
    assert f"sold **{first['instrument']}**" in shown
    table = at.dataframe[-1].value
    assert table["chosen"].sum() == 1 and first["instrument"] in set(table["instrument"])
    second = res.trades.sort_values("entry_time").iloc[1]  # pick another decision: its sale is shown instead
    key = f"chain_decision_{res.run_id}"
    at.selectbox(key=key).set_value(f"{pd.Timestamp(second['entry_time']):%Y-%m-%d %H:%M}").run()
    assert f"sold **{second['instrument']}**" in texts(at)


def test_real_vs_model_tab_calibrates_and_measures_the_model(app_db, tmp_path) -> None:
    """The Chain page's third tab: `covcall calibrate` and `covcall realism --all` without the CLI, with the
    same figures; it prices every snapshot only while it is open."""
    import doctest

    import ui.real_views
    from covcall.realism import realism

    store = Store(app_db)
    store_real_chain(store, tmp_path)
    store.write_iv("csv", "BTC", pd.DataFrame({"ts": pd.date_range("2023-03-01", "2023-04-12", freq="D", tz="UTC"),
                                               "iv_ann": 0.58}))
    at = open_page(PAGE)
    assert not any("worst median" in m.label for m in at.metric)  # closed tab: nothing priced
    at.session_state["chain_tab"] = "Real vs model"
    at.run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert at.selectbox(key="chain_cal_underlying").value == "BTC"
    assert any("No stored calibration of BTC" in i.value for i in at.info)  # the shipped one is in use
    want = realism(store)
    for tenor, worst in want["targets"]["worst_median_abs_iv_error_pts_by_tenor"].items():
        assert metric_value(at, f"{tenor}: worst median |IV error|") == f"{worst:.1f} vol pts"
    table = next(d.value for d in at.dataframe if "snapshot" in getattr(d.value, "columns", []))
    assert list(table["snapshot"]) == ["BTC-20230412T120000Z", "BTC-20230412T160000Z"]
    # fit and store a calibration from the page: it is then the one in use, and realism prices with it
    at.button(key="chain_calibrate").click().run()
    no_exception(at)
    cals = store.list_calibrations("BTC")
    assert len(cals) == 1 and any(cals["calibration_id"].iloc[0] in s.value for s in at.success)
    assert f"**`{cals['calibration_id'].iloc[0]}`**" in texts(at)
    params = next(d.value for d in at.dataframe if "parameter" in getattr(d.value, "columns", []))
    fitted = params.set_index("parameter")["fitted"]
    assert fitted["basis_ann"] == pytest.approx(cals["params"].iloc[0]["basis_ann"])  # the fixture's 4 %/yr
    assert fitted["basis_ann"] == pytest.approx(0.04, abs=1e-3)
    table = next(d.value for d in at.dataframe if "snapshot" in getattr(d.value, "columns", []))
    assert set(table["calibration"]) == {cals["calibration_id"].iloc[0]}
    # one snapshot expiry by expiry: the real and the model ATM
    at.selectbox(key="chain_real_snapshot").set_value("BTC-20230412T160000Z").run()
    by = next(d.value for d in at.dataframe if "real_atm_iv" in getattr(d.value, "columns", []))
    entry = next(e for e in realism(store)["snapshots"] if e["snapshot_id"] == "BTC-20230412T160000Z")
    assert list(by["real_atm_iv"]) == pytest.approx([100 * r["real_atm_iv"] for r in entry["index"]["by_expiry"]])
    assert doctest.testmod(ui.real_views).failed == 0


def test_real_vs_model_tab_without_snapshots_says_how_to_get_them(app_db) -> None:
    at = open_page(PAGE)
    at.session_state["chain_tab"] = "Real vs model"
    at.run()
    no_exception(at)
    assert any("No real option-chain snapshots stored" in i.value for i in at.info)
