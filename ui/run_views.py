"""Views of stored runs: a run's result (cards, charts, trades, examples), recent runs, batch results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from covcall.backtest import describe_iv
from covcall.store import DatasetFilter
from ui.cache import equities, run_view, runs
from ui.charts import compare_figure, equity_figure, price_figure
from ui.formats import fmt_count, fmt_pct, fmt_ratio, fmt_usd, metric_number, number_columns
from ui.views import TRADE_COLUMNS, download_buttons, explain_view, metric_cards, metrics_table, trades_table


def batch_result(res: dict[str, Any]) -> str | None:
    """A finished batch: counts, one row per run, its exports; returns a run the user chose to open."""
    st.markdown(f"**Batch `{res['batch_id']}`**: {res['ok']} ok, {res['failed']} failed, "
                f"{fmt_count(res['examples'])} examples")
    table = pd.DataFrame([{
        "label": r["label"], "status": r["status"], "error": r.get("error") or "",
        "decisions": r.get("decisions"), "trades": r.get("trades"),
        "total return": metric_number(r.get("metrics"), "total_return"),
        "Sharpe": metric_number(r.get("metrics"), "sharpe"),
        "max drawdown": metric_number(r.get("metrics"), "max_drawdown"),
        "vs HODL": metric_number(r.get("metrics"), "excess_return"),
        "run_id": r["run_id"]} for r in res["runs"]])
    st.dataframe(table, hide_index=True, width="stretch", key="batch_result_table",
                 column_config=number_columns(pct=("total return", "max drawdown", "vs HODL"), ratio=("Sharpe",),
                                              count=("decisions", "trades")))
    for fmt, path in (res.get("exports") or {}).items():
        st.caption(f"{fmt.upper()} export: `{path}`")
    ok_ids = [r["run_id"] for r in res["runs"] if r["status"] == "ok"]
    if ok_ids:
        labels = {r["run_id"]: r["label"] for r in res["runs"]}
        pick = st.selectbox("Open a run of this batch", ok_ids, format_func=lambda i: labels.get(i) or i,
                            key="backtest_batch_pick")
        if st.button("Open run", key="backtest_batch_open"):
            return pick
    return None


def run_labels(frame: pd.DataFrame) -> dict[str, str]:
    """A readable name per run: its label, else what it was (never 'None' or 'nan')."""
    out = {}
    for r in frame.itertuples():
        label = r.label if isinstance(r.label, str) and r.label.strip() else None
        window = f"{pd.Timestamp(r.start_date):%Y-%m-%d}..{pd.Timestamp(r.end_date):%Y-%m-%d}" \
            if pd.notna(r.start_date) and pd.notna(r.end_date) else ""
        out[r.run_id] = label or f"{r.underlying} {r.timeframe} {window} {r.exit_style} ({r.policy})".strip()
    return out


def recent_runs(db: str, key: str) -> str | None:
    """Recent runs, newest first, with a side-by-side comparison; returns a run the user chose to reopen."""
    recent = runs(db, 200)
    if recent.empty:
        st.info("No runs yet: run a backtest, a batch, or generate demo data on the Home page.")
        return None
    shown = recent[recent["status"] == "ok"]
    metrics = shown["metrics"].map(lambda m: m if isinstance(m, dict) else {})
    labels = run_labels(shown)
    table = pd.DataFrame({
        "created": shown["created_at"].dt.tz_convert(None), "run": shown["run_id"].map(labels),
        "underlying": shown["underlying"], "timeframe": shown["timeframe"],
        "start": pd.to_datetime(shown["start_date"]), "end": pd.to_datetime(shown["end_date"]),
        "exit style": shown["exit_style"], "policy": shown["policy"],
        "total return": metrics.map(lambda m: metric_number(m, "total_return")),
        "Sharpe": metrics.map(lambda m: metric_number(m, "sharpe")),
        "vs HODL": metrics.map(lambda m: metric_number(m, "excess_return")),
        "run_id": shown["run_id"]})
    st.dataframe(table, hide_index=True, width="stretch", height=280, key=f"{key}_recent_table", column_config={
        **number_columns(pct=("total return", "vs HODL"), ratio=("Sharpe",)),
        "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm"),
        "start": st.column_config.DateColumn("start", format="YYYY-MM-DD"),
        "end": st.column_config.DateColumn("end", format="YYYY-MM-DD")})
    ids = list(shown["run_id"])  # newest first: the picker defaults to the newest run
    c1, c2 = st.columns([4, 1])
    pick = c1.selectbox("Reopen a run", ids, format_func=lambda i: f"{labels.get(i)} · {i}",
                        key=f"{key}_recent_pick")
    c2.write("")
    opened = pick if c2.button("Open run", key=f"{key}_recent_open", width="stretch") else None
    compare = st.multiselect("Compare runs side by side", ids, key=f"{key}_compare", max_selections=8,
                             format_func=lambda i: f"{labels.get(i)} · {i}", placeholder="pick two or more runs")
    if len(compare) >= 2:
        metric_of = dict(zip(shown["run_id"], metrics, strict=True))
        st.dataframe(pd.DataFrame([{
            "run": labels.get(i), "total return": metric_number(metric_of[i], "total_return"),
            "Sharpe": metric_number(metric_of[i], "sharpe"),
            "max drawdown": metric_number(metric_of[i], "max_drawdown"),
            "vs HODL": metric_number(metric_of[i], "excess_return"),
            "trades": metric_number(metric_of[i], "n_trades"),
            "premium collected": metric_number(metric_of[i], "premium_collected_usd"), "run_id": i}
            for i in compare]), hide_index=True, width="stretch", column_config=number_columns(
                pct=("total return", "max drawdown", "vs HODL"), ratio=("Sharpe",), count=("trades",),
                usd=("premium collected",)))
        st.radio("Align", ["calendar", "days since start"], horizontal=True, key=f"{key}_compare_align",
                 help="days since start lines up runs over different windows (BTC 2022 against ETH 2023, say)")
        by_days = st.session_state.get(f"{key}_compare_align") == "days since start"
        st.plotly_chart(compare_figure(equities(db, tuple(compare)), {i: labels.get(i) for i in compare},
                                       by_days=by_days), width="stretch", key=f"{key}_compare_chart")
    return opened


def run_result(db: str, run_id: str, key: str) -> None:
    """The result view of a stored run (a fresh run is saved first, so both paths render the same)."""
    view = run_view(db, run_id)
    if view is None:
        st.warning(f"run {run_id} is no longer in the database")
        return
    row, metrics, cfg = view["row"], view["metrics"], view["config"]
    coin = row["underlying"]
    window = f"{pd.Timestamp(row['start_date']):%Y-%m-%d} .. {pd.Timestamp(row['end_date']):%Y-%m-%d}"
    st.subheader(row["label"] or f"{coin} {row['timeframe']} {window}")
    st.caption(f"run `{run_id}` · {coin} {row['timeframe']} · {window} · "
               f"{row['exit_style']} · policy {row['policy']} · source {row['source']} · implied vol: "
               f"{describe_iv(row['iv_source'], metrics.get('iv_index_share'))}")
    metric_cards(metrics)
    st.caption(f"HODL over the same window: {fmt_pct(metrics.get('hodl_total_return'))} "
               f"(Sharpe {fmt_ratio(metrics.get('hodl_sharpe'))}, max drawdown "
               f"{fmt_pct(metrics.get('hodl_max_drawdown'))}) · premium collected "
               f"{fmt_usd(metrics.get('premium_collected_usd'))} · fees {fmt_usd(metrics.get('fees_paid_usd'))}"
               f" · assigned {fmt_pct(metrics.get('assignment_rate'))} of trades")
    if metrics.get("total_return_coin") is not None:
        st.caption(f"In {coin}: the position returned {fmt_pct(metrics.get('total_return_coin'))} in coin terms "
                   f"(HODL: 0 %) · option legs {metrics.get('option_pnl_coin') or 0:+.4f} {coin} · premium "
                   f"collected {metrics.get('premium_collected_coin') or 0:.4f} {coin} · accounting "
                   f"{cfg.get('accounting', 'usd')} · calibration {row.get('calibration_id') or 'none'}")
    equity = view["equity"]
    trades = view["trades"]
    if "basis_ann" in trades and trades["basis_ann"].notna().any():
        b = trades["basis_ann"].astype(float) * 100
        st.caption(f"Forward basis its calls were sold at: {b.min():.1f} .. {b.max():.1f} %/yr "
                   f"(setting {cfg.get('basis', 'auto')}: a stored basis history where one is known, else the "
                   "calibration's number)")
    if equity.empty:
        st.info("This run has no equity curve.")
    else:
        g1, g2 = st.columns(2)
        g1.plotly_chart(equity_figure(equity), width="stretch", key=f"{key}_eq_{run_id}")
        picked = (st.session_state.get(f"{key}_trades_{run_id}") or {}).get("selection", {}).get("rows") or []
        g2.plotly_chart(price_figure(equity, trades, coin, highlight=picked[0] if picked else None),
                        width="stretch", key=f"{key}_px_{run_id}")
    robustness_band(run_id, cfg, key)
    t_report, t_trades, t_examples, t_metrics, t_config = st.tabs(
        ["Performance report", "Trades", "Examples", "All metrics", "Config"])
    with t_report:
        performance_report_view(row, equity, trades, key=f"{key}_report_{run_id}")
    with t_trades:
        if trades.empty:
            st.info("No calls were sold in this window.")
        else:
            st.caption("Click a row to trace that call on the price chart.")
            st.dataframe(trades_table(trades, coin), hide_index=True, width="stretch",
                         column_config=TRADE_COLUMNS, key=f"{key}_trades_{run_id}", on_select="rerun",
                         selection_mode="single-row")
    with t_examples:
        e = st.columns(5)
        e[0].metric("Decisions", fmt_count(row["n_decisions"]))
        e[1].metric("SELL_CALL", fmt_count(row["n_sell_call"]))
        e[2].metric("DO_NOTHING", fmt_count(row["n_do_nothing"]))
        e[3].metric("Trades", fmt_count(row["n_trades"]))
        e[4].metric("Candidates", fmt_count(row["n_candidates"]))
        download_buttons("examples", DatasetFilter(run_ids=(run_id,)), f"training_examples_{run_id}",
                            key=f"{key}_dl_{run_id}", formats=("csv", "jsonl"))
        for col in ("export_csv", "export_jsonl"):
            if isinstance(row.get(col), str) and row.get(col):
                st.caption(f"exported: `{row[col]}`")
    with t_metrics:
        st.dataframe(metrics_table(metrics), hide_index=True, width="stretch")
    with t_config:
        st.json(cfg, expanded=False)
    if row["policy"] == "model" and cfg.get("model_id"):
        explain_view(db, cfg["model_id"], run_id, float(cfg.get("model_threshold") or 0.0),
                        key=f"{key}_explain_{run_id}")


def robustness_band(run_id: str, cfg: dict[str, Any], key: str) -> None:
    """Rerun this run under the assumption grid (IV level, short end, spreads, basis, settlement) on demand."""
    from covcall.sensitivity import run_sensitivity
    from ui.shell import get_store

    config = {k: v for k, v in cfg.items() if k != "label"}
    band_panel(f"{key}_band_{run_id}", lambda: run_sensitivity(config, store=get_store()),
               "Robustness band: does the result survive other market-model assumptions?")


def band_panel(key: str, compute: Callable[[], Any], title: str, what: str = "the backtest") -> None:
    """An expander that computes a robustness band (covcall.sensitivity) on demand and keeps it in the session:
    the verdict, one row per assumption and the band of equity curves around the base one."""
    import plotly.graph_objects as go

    from ui.charts import HODL_COLOR, layout
    from ui.shell import attempt

    with st.expander(title, expanded=key in st.session_state):
        if st.button("Compute the band (about ten reruns)", key=f"{key}_go"):
            with st.spinner("rerunning under each assumption"):
                band = attempt(compute)
            if band is not None:
                st.session_state[key] = band
        band = st.session_state.get(key)
        if band is None:
            return
        (st.success if band.verdict.startswith("beats") else st.warning)(f"Verdict: {band.verdict}")
        span = f" ({band.window[0]} .. {band.window[1]})" if band.window else ""
        st.caption(f"Each row reruns {what}{span} with one assumption changed. The short-end rows move the "
                   "1-7 day vols as far as the calibrated term structure missed real Deribit snapshots on days "
                   "it was not fitted on (at least 0.10 at T->0); the IV level rows scale every vol by 10 %.")
        cols = ["scenario", "total_return", "excess_return", "sharpe", "hodl_sharpe", "max_drawdown", "n_trades"]
        on = {"sortino": "hodl_sortino", "calmar": "hodl_calmar"}.get(band.metric)
        if on:
            cols[4:4] = [band.metric, on]
        st.dataframe(band.table[[c for c in cols if c in band.table.columns]], hide_index=True, width="stretch",
                     column_config=number_columns(pct=("total_return", "excess_return", "max_drawdown"),
                                                  ratio=("sharpe", "hodl_sharpe", "sortino", "hodl_sortino",
                                                         "calmar", "hodl_calmar"), count=("n_trades",)))
        b = band.band
        fig = go.Figure([
            go.Scatter(x=b["ts"], y=b["high"], line=dict(width=0), showlegend=False, hoverinfo="skip"),
            go.Scatter(x=b["ts"], y=b["low"], fill="tonexty", fillcolor="rgba(31,119,180,0.2)", line=dict(width=0),
                       name="range over the assumptions"),
            go.Scatter(x=b["ts"], y=b["base"], name="base", line=dict(color="#1f77b4")),
            go.Scatter(x=b["ts"], y=b["hodl"], name="HODL", line=dict(color=HODL_COLOR, dash="dot"))])
        fig.update_yaxes(tickprefix="$", tickformat=",.0f")
        st.plotly_chart(layout(fig, height=380, title="Covered-call value under every assumption"),
                        width="stretch", key=f"{key}_chart")


def performance_report_view(row: dict[str, Any], equity: pd.DataFrame, trades: pd.DataFrame, key: str) -> None:
    """Strategy and HODL side by side, monthly returns, rolling Sharpe, trade PnL, and the HTML download."""
    from covcall.report import performance_report, report_figures, report_html, report_title

    if equity.empty:
        st.info("This run has no equity curve.")
        return
    quantity = float((row.get("config") or {}).get("quantity", 1.0))
    rep = performance_report(equity, trades, str(row["timeframe"]), quantity)
    table = rep.summary.copy()
    fmt = {"%": fmt_pct, "usd": fmt_usd, "ratio": fmt_ratio, "count": fmt_count, "trades": fmt_count,
           "days": lambda v: "–" if v is None or pd.isna(v) else f"{v:,.1f} d"}
    for side in ("strategy", "hodl"):
        table[side] = [fmt[u](v) if not pd.isna(v) else "–" for u, v in zip(table["unit"], table[side], strict=True)]
    st.dataframe(table.drop(columns=["unit"]).rename(columns={"strategy": "covered call", "hodl": "HODL"}),
                 hide_index=True, width="stretch", height=35 * (len(table) + 1) + 3)
    figs = report_figures(rep, equity)
    st.plotly_chart(figs["monthly"], width="stretch", key=f"{key}_monthly")  # full width: 13 readable cells
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs["equity"], width="stretch", key=f"{key}_equity")
    c2.plotly_chart(figs["rolling_sharpe"], width="stretch", key=f"{key}_rolling")
    st.plotly_chart(figs["trade_pnl"], width="stretch", key=f"{key}_pnl")
    title, sub = report_title(row)
    # built only when clicked (a few MB with plotly.js inside): no Streamlit call in there
    st.download_button("Download the report (HTML, charts included)",
                       data=lambda: report_html(rep, equity, title=title, subtitle=sub).encode("utf-8"),
                       file_name=f"report_{row['run_id']}.html", mime="text/html", key=f"{key}_html",
                       on_click="ignore")
