"""Chain: the option chain the engine lists at any moment (quotes, smiles, term structure, a real snapshot nearby),
the candidates a run's policy saw at one of its decisions, and the model against every real snapshot stored."""

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui
from covcall.chainview import chain_at, decision_candidates

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()
ss = st.session_state

SOURCES = ["synthetic", "store", "ccxt"]
COLUMNS = {  # display formats; the values stay numbers, so the tables sort numerically
    "dte_days": st.column_config.NumberColumn("days", format="%.2f"),
    "strike": st.column_config.NumberColumn("strike", format="dollar"),
    "moneyness": st.column_config.NumberColumn("strike / spot", format="%.3f"),
    "bid_usd": st.column_config.NumberColumn("bid", format="dollar"),
    "ask_usd": st.column_config.NumberColumn("ask", format="dollar"),
    "mark_usd": st.column_config.NumberColumn("mark", format="dollar"),
    "iv_ann": st.column_config.NumberColumn("IV", format="percent"),
    "delta": st.column_config.NumberColumn("delta", format="%.3f"),
    "bid_coin": st.column_config.NumberColumn("bid (coin)", format="%.4f"),
    "ask_coin": st.column_config.NumberColumn("ask (coin)", format="%.4f"),
    "mark_coin": st.column_config.NumberColumn("mark (coin)", format="%.4f"),
}
default_day = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=2)).date()  # the synthetic calendar's last full days
ui.remember("chain_underlying", "BTC")
ui.remember("chain_source", settings.data_source if settings.data_source in SOURCES else "synthetic")
ui.remember("chain_timeframe", "1h")
ui.remember("chain_iv_source", "auto")
ui.remember("chain_day", default_day)
ui.remember("chain_hour", 8)
ui.remember("chain_expiry", "")
ui.query_state("chain", {"underlying": ("chain_underlying", str, lambda v: v in ("BTC", "ETH")),
                         "source": ("chain_source", str, lambda v: v in SOURCES),
                         "day": ("chain_day", dt.date, lambda v: True),
                         "hour": ("chain_hour", int, lambda v: 0 <= v <= 23)})


@st.cache_data(max_entries=16, ttl=ui.CACHE_TTL_S, show_spinner="building the chain")
def view_at(db_: str, underlying: str, at: str, source: str, timeframe: str, iv_source: str, seed: int):
    return chain_at(underlying, at, source=source, timeframe=timeframe, iv_source=iv_source, seed=seed, store=store)


st.title("Option chain")
st.caption("The calls a backtest decision would see at a moment: the last bar closed by then, the IV input and "
           "term state known at its close, the calibration and, on real data, the scheduled releases ahead. A real "
           "Deribit snapshot within 6 hours shows next to it.")
# "Real vs model" prices every stored snapshot (seconds): it runs only while its tab is open
tab_moment, tab_run, tab_real = st.tabs(["At a moment", "At a run's decision", "Real vs model"], key="chain_tab",
                                        on_change="rerun")

with tab_moment:
    c = st.columns([1, 1, 1, 1, 1.3, 1])
    c[0].selectbox("Underlying", ["BTC", "ETH"], key="chain_underlying")
    c[1].selectbox("Data source", SOURCES, key="chain_source")
    c[2].selectbox("Bars", ["1h", "4h", "1d"], key="chain_timeframe", help="Which bar series gives the spot")
    c[3].selectbox("IV input", ["auto", "realized", "dvol"], key="chain_iv_source",
                   help="auto: the stored IV index where there is one, else the proxy; realized: trailing "
                        "realised vol x the calibrated premium; dvol: the stored IV index")
    c[4].date_input("Day (UTC)", key="chain_day", format=ui.DATE_FORMAT)
    c[5].number_input("Hour (UTC)", min_value=0, max_value=23, step=1, key="chain_hour")
    at = pd.Timestamp(ss["chain_day"]).tz_localize("UTC") + pd.Timedelta(hours=int(ss["chain_hour"]))
    view = ui.attempt(lambda: view_at(db, ss["chain_underlying"], at.isoformat(), ss["chain_source"],
                                      ss["chain_timeframe"], ss["chain_iv_source"], int(settings.synthetic_seed)))
    if view is not None:
        st.markdown(f"**Chain built at {view.t:%Y-%m-%d %H:%M} UTC** (the close of the last "
                    f"{ss['chain_timeframe']} bar by then) · calibration `{view.calibration_id or 'none'}`")
        m = st.columns(4)
        m[0].metric("Spot", f"${view.spot:,.2f}")
        m[1].metric("30-day IV input", f"{view.atm_input:.1%}")
        m[2].metric("Term state", f"{view.state:.2f}", help="Short realised vol / the IV input: below 1 calm, "
                                                            "above 1 stress (moves the short end)")
        m[3].metric("Forward basis", f"{view.basis_ann:.1%}/yr", help="F = S exp(basis x T): the stored basis "
                    f"history known then, else the calibration's number (here: {view.basis_source})")
        if len(view.events):
            st.info("Scheduled releases ahead (their variance is in every expiry after them): " + ", ".join(
                f"{r.label or r.kind} {r.ts:%Y-%m-%d %H:%M}" for r in view.events.itertuples()))
        if view.snapshot_id:
            st.success(f"Real Deribit snapshot `{view.snapshot_id}` overlaid (dots).")
        elif (ui.snapshots(db)["underlying"] == view.underlying).any():
            st.caption("No stored snapshot within 6 hours of this moment (see Home for the stored ones).")

        expiries = [f"{e:%Y-%m-%d}" for e in view.term["expiry"]]
        if ss["chain_expiry"] not in expiries:
            ss["chain_expiry"] = expiries[min(3, len(expiries) - 1)]
        left, right = st.columns(2)
        with left:
            fig = go.Figure()
            fig.add_trace(go.Scatter(x=view.term["dte_days"], y=view.term["atm_iv"] * 100, name="model ATM",
                                     mode="lines+markers"))
            if "real_atm_iv" in view.term:
                fig.add_trace(go.Scatter(x=view.term["dte_days"], y=view.term["real_atm_iv"] * 100,
                                         name="real ATM (snapshot)", mode="markers"))
            fig.update_layout(xaxis_title="days to expiry", yaxis_title="ATM implied vol (%)", hovermode="closest")
            fig = ui.layout(fig, 340, "ATM term structure")
            fig.update_layout(legend=dict(y=-0.3))  # below the axis title, not over it
            st.plotly_chart(fig, width="stretch", key="chain_term")
        with right:
            st.selectbox("Expiry", expiries, key="chain_expiry")
            day = pd.Timestamp(ss["chain_expiry"], tz="UTC")
            q = view.quotes[view.quotes["expiry"].dt.normalize() == day]
            fig = go.Figure()
            fig.add_trace(go.Scatter(x=q["strike"], y=q["iv_ann"] * 100, name="model IV", mode="lines+markers"))
            if len(view.real):
                r = view.real[pd.to_datetime(view.real["expiry"], utc=True).dt.normalize() == day]
                fig.add_trace(go.Scatter(x=r["strike"], y=r["mark_iv"] * 100, name="real mark IV", mode="markers"))
            fig.add_vline(x=view.spot, line_dash="dot", annotation_text="spot")
            fig.update_layout(xaxis_title="strike (USD)", yaxis_title="implied vol (%)", hovermode="closest")
            fig = ui.layout(fig, 300, f"Smile, {ss['chain_expiry']}")
            fig.update_layout(legend=dict(y=-0.3))
            st.plotly_chart(fig, width="stretch", key="chain_smile")
        st.markdown(f"**Quotes, {ss['chain_expiry']}** (USD per coin; coin prices as Deribit quotes them)")
        st.dataframe(q.drop(columns=["expiry"]), hide_index=True, width="stretch", height=360,
                     column_config=COLUMNS)

with tab_run:
    runs = ui.runs(db, 200)
    runs = runs[(runs["status"] == "ok")] if not runs.empty else runs
    if runs.empty:
        st.info("No runs yet: run a backtest (candidates are recorded by default) or generate demo data on Home.")
    else:
        labels = ui.run_labels(runs)
        ids = list(runs["run_id"])
        ui.remember("chain_run", ids[0])
        if ss["chain_run"] not in ids:
            ss["chain_run"] = ids[0]
        st.selectbox("Run", ids, key="chain_run", format_func=lambda r: f"{labels.get(r, r)} · {r}")
        key = f"chain_decision_{ss['chain_run']}"
        # the decision picked on the previous run (None: the first); the picker below shows the same one
        out = ui.attempt(lambda: decision_candidates(store, ss["chain_run"], ss.get(key)))
        if out is not None:
            st.selectbox("Decision (UTC)", [f"{t:%Y-%m-%d %H:%M}" for t in out["times"]], key=key)
            sold = out["sold"]
            st.markdown(f"**{len(out['candidates'])} candidates** at {out['decision_time']:%Y-%m-%d %H:%M} UTC; "
                        + (f"sold **{sold['instrument']}** (score {sold['score']:.3f})" if sold
                           else "nothing sold (the policy skipped)"))
            st.dataframe(out["candidates"], hide_index=True, width="stretch", height=360,
                         column_config={
                             **COLUMNS,
                             "expiry": st.column_config.DatetimeColumn("expiry", format="YYYY-MM-DD HH:mm"),
                             "premium_usd": st.column_config.NumberColumn("premium", format="dollar"),
                             "premium_pct": st.column_config.NumberColumn("premium / spot", format="percent"),
                             "spread_pct": st.column_config.NumberColumn("spread / mid", format="percent"),
                             "score": st.column_config.NumberColumn("score", format="%.3f"),
                             "chosen": st.column_config.CheckboxColumn("sold"),
                             "pnl_vs_hodl": st.column_config.NumberColumn("option PnL vs HODL",
                                                                          format="dollar")})

with tab_real:
    if tab_real.open:
        if ui.snapshots(db).empty:
            st.info("No real option-chain snapshots stored. Import Deribit chains (`covcall data import-chain --file "
                    "F`, or `covcall data fetch --chain` on a schedule), then calibrate the model to them here.")
        else:
            st.markdown("**Calibration** (`covcall calibrate`): the surface every run of this underlying prices with")
            ui.calibration_panel(db)
            st.divider()
            st.markdown("**How real the model is** (`covcall realism --all`): every stored snapshot priced as a "
                        "backtest would have priced it at that moment")
            ui.realism_panel(db)
