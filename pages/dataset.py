"""Dataset: browse, chart and download the training examples and candidates, queried page by page in DuckDB."""

from datetime import timedelta

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import ui
from covcall.dataset import COLUMN_HELP
from covcall.errors import CovcallError
from covcall.store import DatasetFilter

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()
ss = st.session_state

TABLES = {"Decision examples": "examples", "Candidates": "candidates"}
ui.remember("dataset_table", "Decision examples")
ui.remember("dataset_scope", "All runs")
ui.remember("dataset_runs", [])
ui.remember("dataset_underlyings", [])
ui.remember("dataset_actions", [])
ui.remember("dataset_exit_styles", [])
ui.remember("dataset_use_dates", False)
ui.remember("dataset_delta", (0.0, 1.0))
ui.remember("dataset_dte", (0, 400))
ui.remember("dataset_chosen_only", False)
ui.remember("dataset_page_size", 100)
ui.remember("dataset_page", 1)
ui.query_state("dataset", {"table": ("dataset_table", str, lambda v: v in TABLES)})

st.title("Dataset")
runs = ui.runs(db)
runs = runs[runs["status"] == "ok"] if not runs.empty else runs
if runs.empty:
    st.info("No runs in the database yet: run a backtest or generate demo data on the Home page.")
    st.stop()

labels = {r.run_id: f"{r.label or r.underlying} · {r.run_id}" for r in runs.itertuples()}
batches = sorted({b for b in runs["batch_id"].dropna().unique()}, reverse=True)

with st.container(border=True):
    c1, c2, c3 = st.columns([1, 1, 3])
    c1.radio("Table", list(TABLES), key="dataset_table")
    c2.radio("Runs", ["All runs", "Pick runs", "A batch"], key="dataset_scope")
    with c3:
        if ss["dataset_scope"] == "Pick runs":
            ss["dataset_runs"] = [r for r in ss["dataset_runs"] if r in labels]
            st.multiselect("Runs", list(labels), format_func=lambda i: labels[i], key="dataset_runs",
                           placeholder="choose one or more runs")
        elif ss["dataset_scope"] == "A batch":
            if batches:
                state = ui.job_status(db)
                st.selectbox("Batch", batches, key="dataset_batch",
                             format_func=lambda b: b if state.get(b, "done") == "done" else f"{b} ({state[b]})")
            else:
                st.caption("No batches yet (run one on the Backtest page).")
        else:
            st.caption(f"All {len(runs):,} stored runs.")
    u1, u2, u3 = st.columns(3)
    u1.multiselect("Underlying", sorted(runs["underlying"].dropna().unique()), key="dataset_underlyings",
                   placeholder="all")
    if TABLES[ss["dataset_table"]] == "examples":
        u2.multiselect("Action", ["SELL_CALL", "DO_NOTHING"], key="dataset_actions", placeholder="all")
    else:
        u2.write("")
        u2.checkbox("Chosen candidates only", key="dataset_chosen_only")
    u3.multiselect("Exit style", ["hold_to_expiry", "tp_and_roll"], key="dataset_exit_styles",
                   placeholder="all")
    with st.container():
        lo = pd.Timestamp(runs["start_date"].min()).date()
        hi = pd.Timestamp(runs["end_date"].max()).date()
        ui.remember("dataset_start", lo)
        ui.remember("dataset_end", hi)
        d0, d1, d2 = st.columns(3)
        d0.write("")
        d0.checkbox("Filter by decision date", key="dataset_use_dates")
        d1.date_input("From", format=ui.DATE_FORMAT, key="dataset_start", disabled=not ss["dataset_use_dates"])
        d2.date_input("To (inclusive)", format=ui.DATE_FORMAT, key="dataset_end",
                      disabled=not ss["dataset_use_dates"])
    f1, f2 = st.columns(2)
    f1.slider("Delta", 0.0, 1.0, step=0.01, key="dataset_delta",
              help="Sold delta (examples) or candidate delta; the full range also keeps rows without one")
    f2.slider("DTE (days)", 0, 400, step=1, key="dataset_dte")

table = TABLES[ss["dataset_table"]]
if ss["dataset_use_dates"] and ss["dataset_start"] > ss["dataset_end"]:
    st.error(f"date filter: from {ss['dataset_start']} is after to {ss['dataset_end']}; swap them")
    st.stop()
delta_lo, delta_hi = ss["dataset_delta"]
dte_lo, dte_hi = ss["dataset_dte"]
flt = DatasetFilter(
    run_ids=tuple(ss["dataset_runs"]) if ss["dataset_scope"] == "Pick runs" else None,
    batch_id=ss.get("dataset_batch") if ss["dataset_scope"] == "A batch" and batches else None,
    underlyings=tuple(ss["dataset_underlyings"]) or None,
    actions=(tuple(ss["dataset_actions"]) or None) if table == "examples" else None,
    exit_styles=tuple(ss["dataset_exit_styles"]) or None,
    start=ss["dataset_start"] if ss["dataset_use_dates"] else None,
    end=ss["dataset_end"] + timedelta(days=1) if ss["dataset_use_dates"] else None,
    # The full slider range means "no filter" so DO_NOTHING rows (no delta / DTE) stay in.
    delta_min=delta_lo if delta_lo > 0.0 else None, delta_max=delta_hi if delta_hi < 1.0 else None,
    dte_min=float(dte_lo) if dte_lo > 0 else None, dte_max=float(dte_hi) if dte_hi < 400 else None,
    chosen_only=bool(ss["dataset_chosen_only"]) if table == "candidates" else False,
)
fkey = ui.filter_key(flt)

try:
    total = ui.count_rows(db, table, fkey)
    summary = ui.dataset_summary(db, table, fkey)
except CovcallError as err:
    st.error(str(err))
    st.stop()

st.markdown(f"### {ui.fmt_rows(total)}")
s = st.columns(5)
sold = "sold calls" if table == "examples" else "candidates (as if sold)"
s[0].metric("Runs", ui.fmt_count(summary.get("runs")))
s[1].metric("Mean reward", ui.fmt_pct(summary.get("mean_reward_pct")),
            help="% of spot: reward / spot per row, the position's PnL over the label (coin move included; 0 for "
                 "DO_NOTHING), as a share of the coin's price, so BTC and ETH rows compare")
s[2].metric("Option PnL vs HODL", ui.fmt_pct(summary.get("mean_pnl_vs_hodl_pct")),
            help=f"mean % of spot: pnl_vs_hodl / spot over {sold}, what selling the call added to simply holding "
                 "the coin")
s[3].metric("Win rate vs HODL", ui.fmt_pct(summary.get("win_rate")),
            help=f"share of {sold} with pnl_vs_hodl > 0 (the call's legs beat holding the coin)")
s[4].metric("Sell share" if table == "examples" else "Chosen share", ui.fmt_pct(summary.get("sell_share")),
            help="share of decisions that sold a call" if table == "examples" else
            "share of candidates the run's policy sold")
by = summary.get("total_reward_by") or {}
# Dollars of different coins do not add up: one total per underlying, written out in full (a metric card would
# cut "BTC $7,123.45 · ETH $456.78" short).
totals = " · ".join(f"{u} {ui.fmt_usd(v)}" for u, v in by.items()) if len(by) > 1 else \
    ui.fmt_usd(summary.get("total_reward"))
st.markdown(f"**Total reward** (USD, the sum of `reward`{', per underlying' if len(by) > 1 else ''}): {totals}",
            help="sum of reward in USD, per underlying when several are selected (their dollars do not add up)")
first, last = summary.get("first"), summary.get("last")
if first is not None:
    st.caption(f"decisions from {pd.Timestamp(first):%Y-%m-%d %H:%M} to {pd.Timestamp(last):%Y-%m-%d %H:%M} UTC")

tab_rows, tab_charts, tab_dl = st.tabs(["Rows", "Charts", "Download"])
with tab_rows:
    p1, p2, p3 = st.columns([1, 1, 4])
    p1.selectbox("Rows per page", [25, 50, 100, 250, 500], key="dataset_page_size")
    pages = max(1, -(-total // int(ss["dataset_page_size"])))
    if ss["dataset_page"] > pages:
        ss["dataset_page"] = pages
    p2.number_input(f"Page (of {pages:,})", 1, pages, step=1, key="dataset_page")
    offset = (int(ss["dataset_page"]) - 1) * int(ss["dataset_page_size"])
    page = ui.page_rows(db, table, fkey, int(ss["dataset_page_size"]), offset)
    p3.caption(f"rows {offset + 1 if total else 0:,}–{offset + len(page):,} of {total:,}")
    ids = [c for c in ("run_id", "example_no") if c in page.columns]
    page = page[[c for c in page.columns if c not in ids] + ids]
    helps = {c: st.column_config.Column(c, help=COLUMN_HELP[c]) for c in page.columns if c in COLUMN_HELP}
    when = {c: st.column_config.DatetimeColumn(c, format="YYYY-MM-DD HH:mm", help=COLUMN_HELP.get(c))
            for c in ("decision_time", "label_end", "expiry") if c in page.columns}
    usd = {c: st.column_config.NumberColumn(c, format="dollar", help=COLUMN_HELP.get(c))
           for c in ("reward", "spot", "strike", "pnl_vs_hodl", "premium_usd", "mark_usd") if c in page.columns}
    st.dataframe(page, hide_index=True, width="stretch", height=420,
                 column_config={**helps, **when, **usd,
                                "delta": st.column_config.NumberColumn("delta", format="%.3f", help=COLUMN_HELP["delta"])})

with tab_charts:
    if total == 0:
        st.info("Nothing matches the filters.")
    else:
        g1, g2 = st.columns(2)
        hist = ui.reward_histogram(db, table, fkey, 40)
        fig = go.Figure(go.Bar(x=(hist["bin_lo"] + hist["bin_hi"]) / 2, y=hist["rows"],
                               width=(hist["bin_hi"] - hist["bin_lo"]), marker_color="#1f77b4"))
        fig.update_layout(title="Reward distribution (USD)", height=340, margin=dict(l=10, r=10, t=40, b=10),
                          xaxis_tickprefix="$", yaxis_title="rows")
        g1.plotly_chart(fig, width="stretch", key="dataset_hist")
        if table == "examples":
            aot = ui.actions_over_time(db, fkey, "month")
            fig = px.bar(aot, x="period", y="rows", color="action", title="Actions per month",
                         color_discrete_map={"SELL_CALL": "#2ca02c", "DO_NOTHING": "#7f7f7f"})
        else:
            fig = None
        if fig is not None:
            fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10))
            g2.plotly_chart(fig, width="stretch", key="dataset_actions_chart")
        g3, g4 = st.columns(2)
        dte_col = "dte" if table == "examples" else "dte_days"
        for col, column, title, fmt in ((g3, "delta", "Mean reward vs delta", ".2f"),
                                        (g4, dte_col, "Mean reward vs DTE (days)", ".0f")):
            by = ui.reward_by(db, table, fkey, column, 20)
            if by.empty:
                col.caption(f"{title}: no rows with a {column}")
                continue
            fig = go.Figure(go.Bar(x=by[column], y=by["mean_reward"], customdata=by["rows"],
                                   hovertemplate="%{x:" + fmt + "}: $%{y:,.2f} (%{customdata} rows)<extra></extra>",
                                   marker_color=["#2ca02c" if v >= 0 else "#d62728" for v in by["mean_reward"]]))
            fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), yaxis_tickprefix="$")
            col.plotly_chart(fig, width="stretch", key=f"dataset_by_{column}")

with tab_dl:
    st.write(f"Download the filtered selection ({ui.fmt_rows(total)}) straight from DuckDB.")
    ui.download_buttons(table, flt, f"covcall_{table}", key="dataset_dl", formats=("csv", "jsonl", "parquet"))
    st.caption("For language-model training (docs/llm.md): one chat record per decision of the selected examples, "
               "or chosen/rejected pairs (best vs worst realised candidate at each decision) of the selected "
               "candidates.")
    ui.download_buttons(table, flt, "covcall", key="dataset_dl_llm",
                        formats=("chat-jsonl",) if table == "examples" else ("preference-jsonl",))
