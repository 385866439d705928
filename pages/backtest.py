"""Backtest: run one covered-call backtest or a batch grid, see its metrics and charts, reopen earlier runs."""

import json
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

import ui
from covcall.backtest import BacktestConfig, run_backtest
from covcall.batch import run_batch
from covcall.config import run_defaults
from covcall.errors import CovcallError
from covcall.ranges import presets, synthetic_preset
from covcall.store import DatasetFilter

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()

UNDERLYINGS = ["BTC", "ETH"]
TIMEFRAMES = ["1d", "4h", "1h"]
EXIT_STYLES = ["hold_to_expiry", "tp_and_roll"]
SOURCES = ["synthetic", "store", "ccxt"]
POLICIES = ["rule", "fixed_delta", "hodl", "model"]
CUSTOM = "custom dates"

ss = st.session_state
ss.setdefault("backtest_underlying", "BTC")
ss.setdefault("backtest_timeframe", "1d")
ss.setdefault("backtest_start", date(2024, 1, 1))
ss.setdefault("backtest_end", date(2024, 6, 30))
ss.setdefault("backtest_preset", CUSTOM)
ss.setdefault("backtest_exit_style", "hold_to_expiry")
ss.setdefault("backtest_take_profit", 0.5)
ss.setdefault("backtest_delta", (0.10, 0.30))
ss.setdefault("backtest_dte", (5, 30))
ss.setdefault("backtest_threshold", 0.10)
ss.setdefault("backtest_fee_rate", float(settings.fee_rate))
ss.setdefault("backtest_fee_cap", float(settings.fee_cap))
ss.setdefault("backtest_settlement_fee_rate", float(settings.settlement_fee_rate))
ss.setdefault("backtest_source", settings.data_source)
ss.setdefault("backtest_iv_source", "realized")
ss.setdefault("backtest_policy", "rule")
ss.setdefault("backtest_target_delta", 0.10)
ss.setdefault("backtest_target_dte", 7.0)
ss.setdefault("backtest_model_id", None)
ss.setdefault("backtest_quantity", 1.0)
ss.setdefault("backtest_seed", int(settings.synthetic_seed))
ss.setdefault("backtest_decision_hour", 8)
ss.setdefault("backtest_label", "")
ss.setdefault("backtest_view_run_id", None)
ss.setdefault("backtest_batch_result", None)
ss.setdefault("backtest_batch_windows", pd.DataFrame({
    "start": [date(2024, 1, 1), date(2024, 4, 1)], "end": [date(2024, 3, 31), date(2024, 6, 30)],
    "note": ["Q1", "Q2"]}))


@st.cache_data(max_entries=8, ttl=ui.CACHE_TTL_S, show_spinner=False)
def preset_windows(underlying: str, seed: int) -> dict[str, tuple[date, date]]:
    """Regime windows to pick from: built-in presets and the synthetic market's regime segments."""
    sets = list(presets().values())
    if underlying in UNDERLYINGS:
        try:
            sets.append(synthetic_preset(underlying, seed))
        except CovcallError:
            pass
    out: dict[str, tuple[date, date]] = {}
    for rs in sets:
        for i, r in enumerate(rs.train, start=1):
            out[f"{rs.name} · train {i}: {r.note or r}"] = (r.start, r.end)
        out[f"{rs.name} · test: {rs.test.note or rs.test}"] = (rs.test.start, rs.test.end)
    return out


def apply_preset() -> None:
    windows = preset_windows(ss["backtest_underlying"], int(ss["backtest_seed"]))
    picked = windows.get(ss["backtest_preset"])
    if picked is not None:
        ss["backtest_start"], ss["backtest_end"] = picked


def config_dict() -> dict[str, Any]:
    """The run settings from the widgets, as BacktestConfig fields."""
    return {
        "underlying": ss["backtest_underlying"], "timeframe": ss["backtest_timeframe"],
        "start": ss["backtest_start"], "end": ss["backtest_end"], "source": ss["backtest_source"],
        "iv_source": ss["backtest_iv_source"], "exit_style": ss["backtest_exit_style"],
        "take_profit": ss["backtest_take_profit"], "delta_min": ss["backtest_delta"][0],
        "delta_max": ss["backtest_delta"][1], "dte_min_days": float(ss["backtest_dte"][0]),
        "dte_max_days": float(ss["backtest_dte"][1]), "threshold": ss["backtest_threshold"],
        "decision_hour_utc": int(ss["backtest_decision_hour"]), "quantity": ss["backtest_quantity"],
        "fee_rate": ss["backtest_fee_rate"], "fee_cap": ss["backtest_fee_cap"],
        "settlement_fee_rate": ss["backtest_settlement_fee_rate"], "rate": float(settings.risk_free_rate),
        "policy": ss["backtest_policy"], "target_delta": ss["backtest_target_delta"],
        "target_dte_days": ss["backtest_target_dte"], "model_id": ss["backtest_model_id"] or None,
        "seed": int(ss["backtest_seed"]), "exchange": settings.exchange_id,
        "label": ss["backtest_label"].strip() or None,
    }


def settings_form() -> None:
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.selectbox("Underlying", UNDERLYINGS, key="backtest_underlying")
        st.selectbox("Timeframe", TIMEFRAMES, key="backtest_timeframe",
                     help="Bar size; daily runs are fastest. Calls are sold at the decision hour on 1h/4h bars.")
        st.selectbox("Data source", SOURCES, key="backtest_source",
                     help="synthetic: offline seeded market; store: candles cached in DuckDB; ccxt: fetch first")
        st.selectbox("IV source", ["realized", "dvol"], key="backtest_iv_source",
                     help="realized: realised-vol proxy; dvol: an imported implied-vol index")
    with c2:
        windows = preset_windows(ss["backtest_underlying"], int(ss["backtest_seed"]))
        options = [CUSTOM, *windows]
        if ss["backtest_preset"] not in options:
            ss["backtest_preset"] = CUSTOM
        st.selectbox("Regime preset", options, key="backtest_preset", on_change=apply_preset,
                     help="Picking a preset fills start and end")
        st.date_input("Start", format=ui.DATE_FORMAT, key="backtest_start", min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))
        st.date_input("End (inclusive)", format=ui.DATE_FORMAT, key="backtest_end", min_value=date(2015, 1, 1),
                      max_value=date(2030, 12, 31))
        st.number_input("Decision hour (UTC)", 0, 23, step=1, **ui.kept("backtest_decision_hour"))
    with c3:
        st.selectbox("Policy", POLICIES, key="backtest_policy",
                     help="rule: score-threshold seller; fixed_delta: always sell one delta/tenor; "
                          "hodl: never sell; model: a trained LightGBM model")
        st.selectbox("Exit style", EXIT_STYLES, key="backtest_exit_style")
        st.slider("Take profit", 0.05, 0.95, step=0.05, **ui.kept("backtest_take_profit"),
                  disabled=ss["backtest_exit_style"] != "tp_and_roll",
                  help="tp_and_roll: buy back when the mark falls to (1 - tp) x premium, then sell again")
        st.number_input("Score threshold", -1.0, 5.0, step=0.05, format="%.2f", **ui.kept("backtest_threshold"),
                        help="Minimum premium score to sell (rule policy)")
    with c4:
        st.slider("Delta range", 0.01, 0.90, step=0.01, **ui.kept("backtest_delta"))
        st.slider("DTE range (days)", 0, 120, step=1, **ui.kept("backtest_dte"))
        if ss["backtest_policy"] == "fixed_delta":
            st.number_input("Target delta", 0.01, 0.99, step=0.01, **ui.kept("backtest_target_delta"))
            st.number_input("Target DTE (days)", 1.0, 365.0, step=1.0, **ui.kept("backtest_target_dte"))
        if ss["backtest_policy"] == "model":
            model_ids = list(ui.models(db)["model_id"]) if not ui.models(db).empty else []
            st.selectbox("Model", model_ids, key="backtest_model_id", placeholder="train one with `covcall train`")
    with st.expander("Fees, size and seed"):
        f1, f2, f3, f4, f5 = st.columns(5)
        f1.number_input("Trade fee (fraction of underlying)", 0.0, 0.01, step=0.0001, format="%.4f",
                        **ui.kept("backtest_fee_rate"))
        f2.number_input("Fee cap (fraction of option price)", 0.0, 1.0, step=0.005, format="%.3f",
                        **ui.kept("backtest_fee_cap"))
        f3.number_input("Settlement fee", 0.0, 0.01, step=0.00005, format="%.5f",
                        **ui.kept("backtest_settlement_fee_rate"))
        f4.number_input("Quantity (coins)", 0.001, 1000.0, step=0.1, **ui.kept("backtest_quantity"))
        f5.number_input("Synthetic seed", 0, 10_000, step=1, **ui.kept("backtest_seed"))
        st.text_input("Label (optional)", key="backtest_label", placeholder="shown in the run list")


def run_single() -> None:
    try:
        cfg = BacktestConfig.parse(config_dict())
    except CovcallError as err:
        st.error(str(err))
        return
    bar = st.progress(0.0, text="starting")
    export_dir = settings.training_data_dir if settings.save_training_data else None
    result = ui.attempt(lambda: run_backtest(cfg, store=store, export_dir=export_dir,
                                             progress=ui.fraction_progress(bar)), bar)
    if result is None:
        return
    ss["backtest_view_run_id"] = result.run_id
    ui.invalidate()
    st.toast(f"Run {result.run_id} saved")


def batch_tab() -> None:
    st.caption("Runs the grid below; every other setting comes from the Run tab.")
    b1, b2, b3 = st.columns(3)
    ss.setdefault("backtest_batch_underlyings", ["BTC", "ETH"])
    ss.setdefault("backtest_batch_timeframes", ["1d"])
    ss.setdefault("backtest_batch_exit_styles", list(EXIT_STYLES))
    ss.setdefault("backtest_batch_name", "batch")
    b1.multiselect("Underlyings", UNDERLYINGS, key="backtest_batch_underlyings")
    b2.multiselect("Timeframes", TIMEFRAMES, key="backtest_batch_timeframes")
    b3.multiselect("Exit styles", EXIT_STYLES, key="backtest_batch_exit_styles")
    st.text_input("Batch name", key="backtest_batch_name")
    windows = st.data_editor(
        ss["backtest_batch_windows"], num_rows="dynamic", key="backtest_batch_windows_editor", hide_index=True,
        column_config={"start": st.column_config.DateColumn("start", required=True),
                       "end": st.column_config.DateColumn("end (inclusive)", required=True),
                       "note": st.column_config.TextColumn("note")})
    rows = windows.dropna(subset=["start", "end"])
    n = (len(ss["backtest_batch_underlyings"]) * len(ss["backtest_batch_timeframes"]) * len(rows)
         * len(ss["backtest_batch_exit_styles"]))
    if st.button(f"Run batch ({n} runs)", type="primary", key="backtest_batch_run", disabled=n == 0):
        base = {k: v for k, v in config_dict().items()
                if k not in ("underlying", "timeframe", "start", "end", "exit_style", "label")}
        spec = {"name": ss["backtest_batch_name"].strip() or "batch",
                "underlyings": ss["backtest_batch_underlyings"], "timeframes": ss["backtest_batch_timeframes"],
                "windows": [{"start": pd.Timestamp(r.start).date().isoformat(),
                             "end": pd.Timestamp(r.end).date().isoformat(),
                             "note": "" if pd.isna(r.note) else str(r.note)} for r in rows.itertuples()],
                "exit_styles": ss["backtest_batch_exit_styles"], "base": base}
        bar = st.progress(0.0, text="starting")
        export_dir = settings.training_data_dir if settings.save_training_data else None
        result = ui.attempt(lambda: run_batch(spec, store=store, export_dir=export_dir,
                                              progress=ui.count_progress(bar),
                                              defaults=run_defaults(settings)), bar)
        if result is not None:
            ss["backtest_batch_result"] = result.to_dict()
        ui.invalidate()
    res = ss["backtest_batch_result"]
    if res:
        st.markdown(f"**Batch `{res['batch_id']}`**: {res['ok']} ok, {res['failed']} failed, "
                    f"{ui.fmt_count(res['examples'])} examples")
        table = pd.DataFrame([{
            "label": r["label"], "status": r["status"], "error": r.get("error") or "",
            "decisions": r.get("decisions"), "trades": r.get("trades"),
            "total return": ui.fmt_pct((r.get("metrics") or {}).get("total_return")),
            "Sharpe": ui.fmt_ratio((r.get("metrics") or {}).get("sharpe")),
            "max drawdown": ui.fmt_pct((r.get("metrics") or {}).get("max_drawdown")),
            "vs HODL": ui.fmt_pct((r.get("metrics") or {}).get("excess_return")),
            "run_id": r["run_id"]} for r in res["runs"]])
        st.dataframe(table, hide_index=True, width="stretch")
        for fmt, path in (res.get("exports") or {}).items():
            st.caption(f"{fmt.upper()} export: `{path}`")
        ok_ids = [r["run_id"] for r in res["runs"] if r["status"] == "ok"]
        if ok_ids:
            labels = {r["run_id"]: r["label"] for r in res["runs"]}
            pick = st.selectbox("Open a run of this batch", ok_ids, format_func=lambda i: labels.get(i) or i,
                                key="backtest_batch_pick")
            if st.button("Open run", key="backtest_batch_open"):
                ss["backtest_view_run_id"] = pick


def recent_tab() -> None:
    recent = ui.runs(db, 200)
    if recent.empty:
        st.info("No runs yet: run a backtest, a batch, or generate demo data on the Home page.")
        return
    shown = recent[recent["status"] == "ok"]
    metrics = shown["metrics_json"].map(lambda s: json.loads(s) if isinstance(s, str) else {})
    table = pd.DataFrame({
        "created": shown["created_at"].dt.strftime("%Y-%m-%d %H:%M"), "label": shown["label"],
        "underlying": shown["underlying"], "timeframe": shown["timeframe"],
        "window": pd.to_datetime(shown["start_date"]).dt.strftime("%Y-%m-%d") + " .. "
        + pd.to_datetime(shown["end_date"]).dt.strftime("%Y-%m-%d"),
        "exit style": shown["exit_style"], "policy": shown["policy"],
        "total return": metrics.map(lambda m: ui.fmt_pct(m.get("total_return"))),
        "Sharpe": metrics.map(lambda m: ui.fmt_ratio(m.get("sharpe"))),
        "run_id": shown["run_id"]})
    st.dataframe(table, hide_index=True, width="stretch", height=280)
    ids = list(shown["run_id"])
    labels = dict(zip(shown["run_id"], shown["label"].fillna(""), strict=True))
    c1, c2 = st.columns([4, 1])
    pick = c1.selectbox("Reopen a run", ids, format_func=lambda i: f"{labels.get(i) or 'run'} · {i}",
                        key="backtest_recent_pick")
    c2.write("")
    if c2.button("Open run", key="backtest_recent_open", width="stretch"):
        ss["backtest_view_run_id"] = pick
    compare = st.multiselect("Compare runs side by side", ids, key="backtest_compare", max_selections=8,
                             format_func=lambda i: f"{labels.get(i) or 'run'} · {i}",
                             placeholder="pick two or more runs")
    if len(compare) >= 2:
        metric_of = dict(zip(shown["run_id"], metrics, strict=True))
        st.dataframe(pd.DataFrame([{
            "run": labels.get(i) or i, "total return": ui.fmt_pct(metric_of[i].get("total_return")),
            "Sharpe": ui.fmt_ratio(metric_of[i].get("sharpe")),
            "max drawdown": ui.fmt_pct(metric_of[i].get("max_drawdown")),
            "vs HODL": ui.fmt_pct(metric_of[i].get("excess_return")),
            "trades": ui.fmt_count(metric_of[i].get("n_trades")),
            "premium collected": ui.fmt_usd(metric_of[i].get("premium_collected_usd")), "run_id": i}
            for i in compare]), hide_index=True, width="stretch")
        st.plotly_chart(ui.compare_figure(ui.equities(db, tuple(compare)), {i: labels.get(i) or i for i in compare}),
                        width="stretch", key="backtest_compare_chart")


def render_run(run_id: str) -> None:
    """The result view of a stored run (a fresh run is saved first, so both paths render the same)."""
    view = ui.run_view(db, run_id)
    if view is None:
        st.warning(f"run {run_id} is no longer in the database")
        return
    row, metrics, cfg = view["row"], view["metrics"], view["config"]
    coin = row["underlying"]
    window = f"{pd.Timestamp(row['start_date']):%Y-%m-%d} .. {pd.Timestamp(row['end_date']):%Y-%m-%d}"
    st.subheader(row["label"] or f"{coin} {row['timeframe']} {window}")
    st.caption(f"run `{run_id}` · {coin} {row['timeframe']} · {window} · "
               f"{row['exit_style']} · policy {row['policy']} · source {row['source']} / IV {row['iv_source']}")
    ui.metric_cards(metrics)
    st.caption(f"HODL over the same window: {ui.fmt_pct(metrics.get('hodl_total_return'))} "
               f"(Sharpe {ui.fmt_ratio(metrics.get('hodl_sharpe'))}, max drawdown "
               f"{ui.fmt_pct(metrics.get('hodl_max_drawdown'))}) · premium collected "
               f"{ui.fmt_usd(metrics.get('premium_collected_usd'))} · fees {ui.fmt_usd(metrics.get('fees_paid_usd'))}"
               f" · assigned {ui.fmt_pct(metrics.get('assignment_rate'))} of trades")
    equity = view["equity"]
    trades = view["trades"]
    if equity.empty:
        st.info("This run has no equity curve.")
    else:
        g1, g2 = st.columns(2)
        g1.plotly_chart(ui.equity_figure(equity), width="stretch", key=f"backtest_eq_{run_id}")
        g2.plotly_chart(ui.price_figure(equity, trades, coin), width="stretch", key=f"backtest_px_{run_id}")
    t_trades, t_examples, t_metrics, t_config = st.tabs(["Trades", "Examples", "All metrics", "Config"])
    with t_trades:
        if trades.empty:
            st.info("No calls were sold in this window.")
        else:
            st.dataframe(ui.trades_table(trades, coin), hide_index=True, width="stretch",
                         column_config=ui.TRADE_COLUMNS)
    with t_examples:
        e = st.columns(5)
        e[0].metric("Decisions", ui.fmt_count(row["n_decisions"]))
        e[1].metric("SELL_CALL", ui.fmt_count(row["n_sell_call"]))
        e[2].metric("DO_NOTHING", ui.fmt_count(row["n_do_nothing"]))
        e[3].metric("Trades", ui.fmt_count(row["n_trades"]))
        e[4].metric("Candidates", ui.fmt_count(row["n_candidates"]))
        ui.download_buttons("examples", DatasetFilter(run_ids=(run_id,)), f"training_examples_{run_id}",
                            key=f"backtest_dl_{run_id}", formats=("csv", "jsonl"))
        for col in ("export_csv", "export_jsonl"):
            if isinstance(row.get(col), str) and row.get(col):
                st.caption(f"exported: `{row[col]}`")
    with t_metrics:
        st.dataframe(ui.metrics_table(metrics), hide_index=True, width="stretch")
    with t_config:
        st.json(cfg, expanded=False)
    if row["policy"] == "model" and cfg.get("model_id"):
        ui.explain_view(db, cfg["model_id"], run_id, float(cfg.get("model_threshold") or 0.0),
                        key=f"backtest_explain_{run_id}")


st.title("Backtest")
tab_run, tab_batch, tab_recent = st.tabs(["Run", "Batch", "Recent runs"])
with tab_run:
    settings_form()
    if st.button("Run backtest", type="primary", key="backtest_run"):
        run_single()
with tab_batch:
    batch_tab()
with tab_recent:
    recent_tab()

st.divider()
if ss["backtest_view_run_id"]:
    render_run(ss["backtest_view_run_id"])
else:
    st.info("Set up a run above and press **Run backtest**, or reopen one under **Recent runs**.")
