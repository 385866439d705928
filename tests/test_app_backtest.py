"""AppTest: the Backtest page runs a backtest and a batch, shows metrics, rejects bad input, reopens runs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from apptest_support import errors, metric_value, no_exception, open_page, texts, ui

from covcall.backtest import BacktestConfig, run_backtest
from covcall.store import Store

PAGE = "pages/backtest.py"


def short_window(at, start=date(2024, 1, 1), end=date(2024, 3, 31)):
    at.date_input(key="backtest_start").set_value(start)
    at.date_input(key="backtest_end").set_value(end)
    at.run()


def test_run_shows_the_results_metrics(app_db):
    at = open_page(PAGE)
    short_window(at)
    at.selectbox(key="backtest_exit_style").set_value("tp_and_roll").run()
    at.button(key="backtest_run").click().run()
    no_exception(at)
    assert not errors(at)
    runs = Store(app_db).list_runs()
    assert len(runs) == 1
    # The same settings, run again through the API, give the numbers the cards show.
    expected = run_backtest(BacktestConfig(underlying="BTC", timeframe="1d", start="2024-01-01", end="2024-03-31",
                                           exit_style="tp_and_roll")).metrics
    assert metric_value(at, "Sharpe") == ui.fmt_ratio(expected["sharpe"])
    assert metric_value(at, "Total return") == ui.fmt_pct(expected["total_return"])
    assert metric_value(at, "Max drawdown") == ui.fmt_pct(expected["max_drawdown"])
    assert metric_value(at, "vs HODL") == ui.fmt_pct(expected["excess_return"])
    assert metric_value(at, "Trades") == str(int(expected["n_trades"]))
    assert runs["run_id"].iloc[0] in texts(at)
    assert len(at.get("plotly_chart")) == 2 + 4  # equity and price, then the performance report's four
    # the form's IV source is 'auto': the synthetic market's index priced every bar, and the run says so
    assert at.selectbox(key="backtest_iv_source").value == "auto"
    assert any("implied vol: IV index throughout" in c.value for c in at.caption)


def test_start_after_end_is_a_clear_error_and_nothing_is_lost(app_db):
    at = open_page(PAGE)
    short_window(at)
    at.button(key="backtest_run").click().run()
    first = Store(app_db).list_runs()["run_id"].tolist()
    short_window(at, date(2024, 5, 1), date(2024, 2, 1))
    at.button(key="backtest_run").click().run()
    no_exception(at)
    assert errors(at) == ["start 2024-05-01 is after end 2024-02-01; swap them"]
    assert Store(app_db).list_runs()["run_id"].tolist() == first
    assert first[0] in texts(at)  # the earlier result is still on screen


def test_regime_preset_fills_start_and_end(app_db):
    at = open_page(PAGE)
    options = at.selectbox(key="backtest_preset").options
    pick = next(o for o in options if o.startswith("btc-regimes · test"))
    at.selectbox(key="backtest_preset").set_value(pick).run()
    assert at.date_input(key="backtest_start").value == date(2024, 1, 1)
    assert at.date_input(key="backtest_end").value == date(2024, 6, 30)
    pick = next(o for o in options if o.startswith("btc-regimes · train 3"))
    at.selectbox(key="backtest_preset").set_value(pick).run()
    assert at.date_input(key="backtest_start").value == date(2023, 3, 20)
    assert at.date_input(key="backtest_end").value == date(2023, 10, 15)


def test_recent_run_reopens_with_its_own_metrics(app_db):
    at = open_page(PAGE)
    short_window(at)
    at.button(key="backtest_run").click().run()
    at.selectbox(key="backtest_underlying").set_value("ETH").run()
    at.button(key="backtest_run").click().run()
    store = Store(app_db)
    runs = store.list_runs()
    btc = runs[runs["underlying"] == "BTC"].iloc[0]
    sharpe = btc["metrics"]["sharpe"]
    at2 = open_page(PAGE)  # a new session: nothing in memory but the database
    at2.selectbox(key="backtest_recent_pick").set_value(btc["run_id"]).run()
    at2.button(key="backtest_recent_open").click().run()
    no_exception(at2)
    assert btc["run_id"] in texts(at2)
    assert metric_value(at2, "Sharpe") == ui.fmt_ratio(sharpe)
    # two runs side by side: their metrics and one rebased equity chart
    at2.multiselect(key="backtest_compare").set_value(list(runs["run_id"])).run()
    no_exception(at2)
    table = next(d.value for d in at2.dataframe if "vs HODL" in d.value.columns and "run" in d.value.columns)
    assert set(table["run_id"]) == set(runs["run_id"])
    assert table.set_index("run_id").loc[btc["run_id"], "Sharpe"] == pytest.approx(sharpe)  # a number: sorts numerically
    assert any(c.proto.spec and "rebased" in c.proto.spec for c in at2.get("plotly_chart"))
    at2.radio(key="backtest_compare_align").set_value("days since start").run()
    no_exception(at2)
    assert any(c.proto.spec and "days since the run's start" in c.proto.spec for c in at2.get("plotly_chart"))


def test_batch_runs_the_grid_and_lists_each_run(app_db):
    at = open_page(PAGE)
    at.session_state["backtest_batch_windows"] = pd.DataFrame(
        {"start": [date(2024, 1, 1)], "end": [date(2024, 2, 29)], "note": ["Jan-Feb"]})
    at.multiselect(key="backtest_batch_underlyings").set_value(["BTC"])
    at.multiselect(key="backtest_batch_exit_styles").set_value(["hold_to_expiry", "tp_and_roll"])
    at.run()
    assert at.button(key="backtest_batch_run").label == "Run batch (2 runs)"
    at.button(key="backtest_batch_run").click().run()
    no_exception(at)
    assert not errors(at)
    table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(table["status"]) == ["ok", "ok"]
    assert table["label"].str.contains("Jan-Feb").all()
    runs = Store(app_db).list_runs()
    assert runs["batch_id"].nunique() == 1 and len(runs) == 2
    assert "2 ok, 0 failed" in texts(at)


def test_model_policy_run_explains_its_decisions(app_db):
    from covcall.explain import explain_decision
    from covcall.walker import train

    spec = {"name": "m", "rangeTrain": [{"startDate": "2022-01-01", "endDate": "2022-09-30"}],
            "rangeTest": {"startDate": "2023-01-01", "endDate": "2023-03-31"}, "gap_days": 45}
    model_id = train(spec, store=Store(app_db))[0]["model_id"]
    at = open_page(PAGE)
    short_window(at, date(2023, 1, 1), date(2023, 3, 31))
    at.selectbox(key="backtest_policy").set_value("model").run()
    at.selectbox(key="backtest_model_id").set_value(model_id).run()
    at.button(key="backtest_run").click().run()
    no_exception(at)
    assert not errors(at)
    run = Store(app_db).list_runs(limit=1).iloc[0]
    assert run["policy"] == "model"
    first = at.selectbox(key=f"backtest_explain_{run['run_id']}_at").value
    out = explain_decision(Store(app_db), model_id, run["run_id"], first, 0.0)
    shown = " ".join(m.value for m in at.markdown)
    assert "Why it sold or skipped" in shown
    assert out["candidates"].iloc[out["best"]]["instrument"] in shown


def test_a_shared_url_reopens_the_same_backtest_view(app_db):
    run = run_backtest(BacktestConfig(underlying="ETH", timeframe="1d", start=date(2024, 1, 1),
                                      end=date(2024, 2, 29), exit_style="tp_and_roll"), store=Store(app_db))
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.query_params.update({"underlying": "ETH", "start": "2024-01-01", "end": "2024-02-29",
                            "exit_style": "tp_and_roll", "run": run.run_id, "timeframe": "bogus"})
    at.run()
    at.switch_page(PAGE).run()
    no_exception(at)
    assert at.selectbox(key="backtest_underlying").value == "ETH"
    assert at.date_input(key="backtest_start").value == date(2024, 1, 1)
    assert at.selectbox(key="backtest_exit_style").value == "tp_and_roll"
    assert at.selectbox(key="backtest_timeframe").value == "1d"  # an invalid value is ignored, not guessed
    assert run.run_id in texts(at)  # the run on screen is the one in the URL
    assert metric_value(at, "Sharpe") == ui.fmt_ratio(run.metrics["sharpe"])


def test_the_robustness_band_panel(app_db):
    at = open_page(PAGE)
    short_window(at)
    at.button(key="backtest_run").click().run()
    run_id = Store(app_db).list_runs()["run_id"].iloc[0]
    at.button(key=f"backtest_band_{run_id}_go").click().run()
    no_exception(at)
    verdict = [m.value for m in [*at.success, *at.warning] if m.value.startswith("Verdict:")]
    assert verdict and verdict[0].split(" ")[1] in ("beats", "loses", "depends")
    table = next(d.value for d in at.dataframe if "scenario" in d.value.columns)
    assert len(table) == 10 and table["scenario"].iloc[0] == "base"
    # BTC's shipped calibration: its short end strayed less than the floor, so the band moves it 0.10
    assert "short end low (-0.10 at T->0)" in set(table["scenario"])
    assert any("as far as the calibrated term structure missed" in c.value for c in at.caption)


def test_the_forward_basis_field_follows_the_stored_history_or_the_calibrated_number(app_db):
    from covcall.market import load_candles

    store = Store(app_db)  # real-data source: a stored series (the synthetic path, as if imported)
    bars = load_candles("BTC", "1d", date(2023, 6, 1), date(2024, 3, 31), source="synthetic", seed=7)
    store.import_candles("csv", "BTC", "1d", bars)
    store.write_basis("file", "BTC", pd.DataFrame({"ts": pd.date_range("2024-01-01", "2024-03-31", tz="UTC"),
                                                   "basis_ann": 0.15}))
    at = open_page(PAGE)
    short_window(at)
    at.selectbox(key="backtest_source").set_value("store").run()
    at.text_input(key="backtest_calibration").set_value("none").run()
    at.button(key="backtest_run").click().run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert any("Forward basis its calls were sold at: 15.0 .. 15.0 %/yr (setting auto" in c.value
               for c in at.caption)
    at.selectbox(key="backtest_basis").set_value("calibrated").run()
    at.button(key="backtest_run").click().run()
    assert not errors(at), errors(at)
    runs = Store(app_db).list_runs()
    assert sorted(Store(app_db).get_run(r)["config"]["basis"] for r in runs["run_id"]) == ["auto", "calibrated"]
    assert any("Forward basis its calls were sold at: 0.0 .. 0.0 %/yr (setting calibrated" in c.value
               for c in at.caption)


def test_a_reopened_runs_settings_go_back_into_the_form_and_run_again_the_same(app_db):
    """Reopen a run, put its settings in the form, change nothing, run: the same settings, surface and results;
    what the form cannot hold is named."""
    at = open_page(PAGE)
    short_window(at, date(2023, 2, 1), date(2023, 4, 30))
    at.selectbox(key="backtest_underlying").set_value("ETH")
    at.selectbox(key="backtest_timeframe").set_value("4h")
    at.selectbox(key="backtest_exit_style").set_value("tp_and_roll")
    at.slider(key="backtest_delta__widget").set_value((0.15, 0.25))
    at.slider(key="backtest_dte__widget").set_value((3, 14))
    at.number_input(key="backtest_threshold__widget").set_value(0.3)
    at.selectbox(key="backtest_accounting").set_value("coin").run()
    at.button(key="backtest_run").click().run()
    first = Store(app_db).list_runs().iloc[0]
    # back to other settings, then the run's own again
    at.selectbox(key="backtest_underlying").set_value("BTC")
    at.selectbox(key="backtest_exit_style").set_value("hold_to_expiry")
    at.slider(key="backtest_delta__widget").set_value((0.10, 0.30))
    at.selectbox(key="backtest_accounting").set_value("usd").run()
    at.button(key="backtest_load_settings").click().run()
    no_exception(at)
    assert any(f"Settings of run {first['run_id']} are in the form." in s.value for s in at.success)
    assert at.selectbox(key="backtest_underlying").value == "ETH"
    assert at.selectbox(key="backtest_exit_style").value == "tp_and_roll"
    assert at.slider(key="backtest_delta__widget").value == (0.15, 0.25)
    assert at.slider(key="backtest_dte__widget").value == (3, 14)
    assert at.selectbox(key="backtest_accounting").value == "coin"
    assert at.date_input(key="backtest_start").value == date(2023, 2, 1)
    at.button(key="backtest_run").click().run()
    runs = Store(app_db).list_runs()
    assert len(runs) == 2
    again = runs.iloc[0]
    assert again["run_id"] != first["run_id"] and again["metrics"] == first["metrics"]
    a, b = (Store(app_db).get_run(r)["config"] for r in (first["run_id"], again["run_id"]))
    assert a["chain"] == b["chain"] and again["calibration_id"] == first["calibration_id"] == "default-ETH"
    assert {k: v for k, v in a.items() if k not in ("calibration", "label")} == \
        {k: v for k, v in b.items() if k not in ("calibration", "label")}
    assert b["calibration"] == "default"  # pinned to the surface the run priced with


def test_settings_the_form_cannot_hold_are_named(app_db):
    run = run_backtest({"underlying": "BTC", "timeframe": "1d", "start": "2023-01-01", "end": "2023-02-28",
                        "dte_min_days": 2.5, "dte_max_days": 180, "chain": {"spread_scale": 2.0}},
                       store=Store(app_db))
    at = open_page(PAGE)
    at.session_state["backtest_view_run_id"] = run.run_id
    at.run()
    at.button(key="backtest_load_settings").click().run()
    no_exception(at)
    shown = [w.value for w in at.warning if "not carried over" in w.value]
    assert shown and "chain overrides spread_scale" in shown[0] and "DTE range 2.5..180 days" in shown[0]
    assert "dte_max_days 180 (the form holds 0..120: set to 120)" in shown[0]  # a CLI run can hold more
    assert at.slider(key="backtest_dte__widget").value == (2, 120)
