"""AppTest: the Home page shows what is in the database and fills it with demo data."""

from __future__ import annotations

import pytest
from apptest_support import errors, metric_value, no_exception, open_page, texts

from covcall.store import Store


def test_empty_database_shows_zero_counts_path_and_cli_hints(app_db):
    at = open_page()
    assert metric_value(at, "Runs") == "0"
    assert metric_value(at, "Walks") == "0"
    shown = texts(at)
    assert str(app_db) in shown
    assert "synthetic" in shown
    assert any("covcall data import" in c.value for c in at.code)
    # a fresh install already shows the (synthetic) market it will trade
    assert len(at.get("plotly_chart")) == 1
    assert any("Market in use" in m.value and "synthetic" in m.value for m in at.markdown)


def test_generate_demo_data_fills_every_table(app_db):
    at = open_page()
    at.button(key="home_demo").click().run()
    no_exception(at)
    assert not errors(at)
    done = " ".join(s.value for s in at.success)
    assert "Demo data ready: 8 backtests" in done
    counts = Store(app_db).counts()
    assert metric_value(at, "Runs") == f"{counts['runs']:,}" and counts["runs"] >= 8
    assert metric_value(at, "Examples") == f"{counts['examples']:,}"
    assert metric_value(at, "Walks") == "1"
    assert "demo-regimes" in done
    # a second click finds the same demo and adds nothing
    at.button(key="home_demo").click().run()
    no_exception(at)
    assert "Demo data is already there (nothing was added): 8 backtests" in " ".join(s.value for s in at.success)
    assert Store(app_db).counts() == counts and metric_value(at, "Walks") == "1"


def test_bad_setting_shows_one_line_error_not_a_traceback(app_db, monkeypatch):
    monkeypatch.setenv("FEE_RATE", "lots")
    at = open_page()
    assert errors(at) == ["invalid setting FEE_RATE='lots': expected a number"]
    assert not at.metric


def test_offline_fetch_shows_the_clear_error_and_keeps_the_cache(app_db):
    from covcall.market.synthetic import synthetic_candles

    Store(app_db).write_candles("csv", "BTC", "1d", synthetic_candles("BTC", "1d", "2024-01-01", "2024-02-01"))
    at = open_page()
    at.selectbox(key="home_fetch_what").set_value("candles")
    at.button(key="home_fetch_go").click().run(timeout=90)
    no_exception(at)
    shown = errors(at)
    assert len(shown) == 1 and shown[0].startswith("cannot reach binance")
    assert "use the synthetic source or import a CSV" in shown[0]
    assert Store(app_db).counts()["candles"] == 31
    assert metric_value(at, "Candles") == "31"


def test_dvol_fetch_takes_the_timeframe_and_refuses_one_deribit_does_not_serve(app_db):
    at = open_page()
    at.selectbox(key="home_fetch_what").set_value("Deribit DVOL")
    at.selectbox(key="home_fetch_timeframe").set_value("4h")
    at.button(key="home_fetch_go").click().run(timeout=90)
    no_exception(at)
    assert errors(at) == ["DVOL comes in bars of 1d or 1h, not '4h'"]
    assert Store(app_db).read_iv("BTC").empty


def test_an_interrupted_batch_shows_on_home_and_in_the_dataset_picker(app_db):
    import socket

    from covcall.batch import run_batch

    store = Store(app_db)
    done = run_batch({"name": "ok", "underlyings": ["BTC"], "timeframes": ["1d"],
                      "windows": [{"start": "2024-01-01", "end": "2024-01-31"}]}, store=store)
    # a batch whose process was killed: its job row says running, its process is gone
    store.start_job("b-killed", "batch", "killed batch", pid=2**22 + 777, host=socket.gethostname())
    store.save_run({"run_id": "r-killed", "batch_id": "b-killed", "status": "ok", "label": "partial",
                    "underlying": "BTC", "timeframe": "1d"}, {})
    at = open_page()
    table = next(d.value for d in at.dataframe if "status" in d.value.columns and "job_id" in d.value.columns)
    assert table.set_index("job_id").loc["b-killed", "status"] == "interrupted"
    assert done.batch_id not in set(table["job_id"])  # finished batches are not listed as unfinished
    at.switch_page("pages/dataset.py").run()
    at.radio(key="dataset_scope").set_value("A batch").run()
    picker = at.selectbox(key="dataset_batch")
    assert "b-killed (interrupted)" in picker.options and done.batch_id in picker.options


def test_home_lists_chain_snapshots(app_db, tmp_path):
    from test_chains import ticker_rows

    from covcall.chains import import_chain

    path = tmp_path / "t.csv"
    ticker_rows().to_csv(path, index=False)
    import_chain(Store(app_db), path)
    at = open_page()
    assert metric_value(at, "Chain snapshots") == "2"
    table = next(d.value for d in at.dataframe if "snapshot_id" in d.value.columns)
    assert list(table["snapshot_id"]) == ["BTC-20230412T120000Z", "BTC-20230412T160000Z"]


def test_home_shows_the_packaged_and_stored_event_calendar(app_db, tmp_path):
    from covcall.events import import_events, packaged_calendar

    at = open_page()
    shipped = len(packaged_calendar())
    assert any(f"covcall ships {shipped} of them (2021-01 .. 2025-12)" in c.value for c in at.caption)
    assert any("No events of your own stored yet." in i.value for i in at.info)
    path = tmp_path / "events.csv"
    path.write_text("ts,kind,underlying,move_pct,label\n2024-01-10T21:00:00Z,other,ETH,6,spot ETF decision\n")
    import_events(Store(app_db), path)
    import streamlit as st

    st.cache_data.clear()  # stored from outside the app, as the CLI would
    at = open_page()
    table = next(d.value for d in at.dataframe if "kind" in d.value.columns and "label" in d.value.columns)
    assert table.to_dict("records")[0]["label"] == "spot ETF decision" and table["move"].iloc[0] == 6.0


def test_home_fetches_the_live_basis_from_deribit_futures_and_lists_the_history(app_db, monkeypatch):
    import numpy as np

    import covcall.market.exchange as exchange

    class FakeDeribit:  # recorded shape of public/get_book_summary_by_currency, kind=future
        rateLimit, timeout = 50, 5000

        def public_get_get_book_summary_by_currency(self, params: dict) -> dict:
            rows = [{"instrument_name": f"{params['currency']}-29MAR24", "mark_price": 40000 * np.exp(0.1 * 0.2215),
                     "estimated_delivery_price": 40000.0, "creation_timestamp": 1704712781414}]
            return {"jsonrpc": "2.0", "result": rows}

    monkeypatch.setattr(exchange, "make_client", lambda exchange_id: FakeDeribit())
    at = open_page()
    assert any("No basis history stored yet." in i.value for i in at.info)
    at.button(key="home_basis_fetch").click().run()
    no_exception(at)
    assert not errors(at)
    assert any("BTC: 10.00 %/yr from 1 futures" in s.value for s in at.success)
    table = next(d.value for d in at.dataframe if "source" in d.value.columns and "rows" in d.value.columns
                 and "futures" in set(d.value["source"]))
    assert table.to_dict("records")[0]["underlying"] == "BTC"
    assert list(Store(app_db).read_basis("BTC")["source"]) == ["futures"]


def test_home_fetches_a_live_option_chain_and_lists_the_snapshots(app_db, monkeypatch):
    """The Option chains tab: a live Deribit chain (fake client in the recorded reply shape) becomes a snapshot;
    a second fetch of the same moment changes nothing; the wrong coin is one clear line."""
    from test_chains import FakeDeribit, summary_rows

    import covcall.market.exchange as exchange

    fake = FakeDeribit(summary_rows())
    monkeypatch.setattr(exchange, "make_client", lambda exchange_id: fake)
    at = open_page()
    assert any("No chain snapshots stored yet." in i.value for i in at.info)
    at.selectbox(key="home_chain_underlying").set_value("ETH")
    at.button(key="home_chain_fetch").click().run()
    no_exception(at)
    assert not errors(at)
    assert fake.calls == [{"currency": "ETH", "kind": "option"}]
    done = [s.value for s in at.success if "book-summary file" in s.value]
    assert done and done[0].startswith("ETH book-summary file: 1 snapshots (1 new), 18 quotes from 2024-01-08 11:19")
    assert list(Store(app_db).list_snapshots()["snapshot_id"]) == ["ETH-20240108T111941Z"]
    per = next(d.value for d in at.dataframe if "snapshots" in d.value.columns and "first" in d.value.columns)
    assert per.to_dict("records")[0]["underlying"] == "ETH" and per["snapshots"].iloc[0] == 1
    assert metric_value(at, "Chain snapshots") == "1"
    at.button(key="home_chain_fetch").click().run()
    assert any("1 snapshots (0 new)" in s.value for s in at.success)  # idempotent
    at.selectbox(key="home_chain_underlying").set_value("BTC")
    at.button(key="home_chain_fetch").click().run()
    assert errors(at) == ["Deribit returned no BTC options; it lists options on BTC, ETH and a few others"]
    assert len(Store(app_db).list_snapshots()) == 1  # nothing stored was lost


def test_home_sets_the_stored_market_beside_the_synthetic_one(app_db):
    """The Market in use panel: off until asked (it reads every stored day); then the stored daily data beside
    the synthetic market, the figures of `covcall data compare-synthetic --store`."""
    from covcall.market.stats import compare_synthetic
    from covcall.market.synthetic import synthetic_candles

    store = Store(app_db)
    store.write_candles("csv", "ETH", "1d", synthetic_candles("ETH", "1d", "2020-01-01", "2024-01-01", seed=3))
    at = open_page()
    assert not any("figure" in d.value.columns for d in at.dataframe if hasattr(d.value, "columns"))
    at.toggle(key="home_compare_market").set_value(True).run()
    no_exception(at)
    assert not errors(at)
    table = next(d.value for d in at.dataframe if "figure" in getattr(d.value, "columns", []))
    want = compare_synthetic(None, (7,), store=store)
    assert "stored ETH" in table.columns and "stored BTC" not in table.columns
    assert list(table["stored ETH"]) == pytest.approx(list(want["stored ETH"]), nan_ok=True)
