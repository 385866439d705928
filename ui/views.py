"""Views shared by pages: metric cards, trade tables, model explanations."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from covcall.dataset import export_selection
from covcall.errors import CovcallError
from covcall.store import DatasetFilter, Store
from ui.cache import decision_times, explain_decision
from ui.formats import fmt_coin, fmt_days, fmt_metric, fmt_pct, fmt_ratio, fmt_usd
from ui.shell import get_store


def explain_view(db: str, model_id: str, run_id: str, threshold: float, key: str, label: str = "Decision") -> None:
    """Why a model sold a candidate or skipped at a decision of a run: the verdict, contributions, candidates."""
    decisions = decision_times(db, run_id)
    st.markdown("**Why it sold or skipped**")
    if not decisions:
        st.caption("This run recorded no decisions to explain.")
        return
    t = st.selectbox(label, decisions, key=f"{key}_at")
    try:
        out = explain_decision(db, model_id, run_id, t, threshold)
    except CovcallError as err:
        st.error(str(err))
        return
    best = out["candidates"].iloc[out["best"]]
    verdict = "sold it" if out["sells"] else f"skipped: below the threshold {threshold:g}"
    st.write(f"Best candidate **{best['instrument']}** (delta {best['delta']:.2f}, {fmt_days(best['dte_days'])}): "
             f"predicted {out['target']} {out['best_prediction']:.4f} -> {verdict}.")
    contrib = out["contributions"]
    bars = contrib[contrib["feature"] != "bias"].sort_values("contribution")
    fig = go.Figure(go.Bar(x=bars["contribution"], y=bars["feature"], orientation="h",
                           marker_color=["#d62728" if v < 0 else "#2ca02c" for v in bars["contribution"]],
                           customdata=bars["value"], hovertemplate="%{y} = %{customdata:.4g}: %{x:+.4f}"))
    bias = float(contrib.loc[contrib["feature"] == "bias", "contribution"].sum())
    fig.update_layout(title=f"Per-feature contributions (bias {bias:+.4f})", height=380,
                      margin=dict(l=10, r=10, t=40, b=10))
    e1, e2 = st.columns(2)
    e1.plotly_chart(fig, width="stretch", key=f"{key}_chart")
    e2.dataframe(out["candidates"].sort_values("prediction", ascending=False), hide_index=True, width="stretch",
                 height=380)


# -- tables --------------------------------------------------------------------------------------------
def trades_table(trades: pd.DataFrame, coin: str) -> pd.DataFrame:
    """Trades with one format per unit, for display."""
    if trades.empty:
        return trades
    t = trades.copy()
    out = pd.DataFrame({
        "#": t["trade_no"],
        "sold": pd.to_datetime(t["entry_time"]).dt.strftime("%Y-%m-%d %H:%M"),
        "exit": pd.to_datetime(t["exit_time"]).dt.strftime("%Y-%m-%d %H:%M"),
        "instrument": t["instrument"],
        "strike": t["strike"].map(fmt_usd),
        "delta": t["delta"].map(lambda v: fmt_ratio(v)),
        "DTE": t["dte_days"].map(fmt_days),
        "IV": t["iv_ann"].map(fmt_pct),
        "premium": t["premium_coin"].map(lambda v: fmt_coin(v, coin)),
        "premium USD": t["premium_usd"].map(fmt_usd),
        "fee": t["fee_usd"].map(fmt_usd),
        "PnL vs HODL": t["pnl_vs_hodl"].map(fmt_usd),
        "exit reason": t["exit_reason"],
    })
    return out


TRADE_COLUMNS = {c: st.column_config.TextColumn(c, width="small") for c in ("#", "delta", "DTE", "IV", "fee")}


def metric_cards(metrics: dict[str, Any]) -> None:
    """The five headline cards: total return, CAGR, Sharpe, max drawdown, vs HODL."""
    cols = st.columns(5)
    cols[0].metric("Total return", fmt_pct(metrics.get("total_return")),
                   help="Covered-call portfolio return over the window")
    cols[1].metric("CAGR", fmt_pct(metrics.get("cagr")))
    cols[2].metric("Sharpe", fmt_ratio(metrics.get("sharpe")), help="Annualised, risk-free rate from the config")
    cols[3].metric("Max drawdown", fmt_pct(metrics.get("max_drawdown")))
    cols[4].metric("vs HODL", fmt_pct(metrics.get("excess_return")),
                   help="Excess return of the covered call over holding the coin")


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = [(k, fmt_metric(k, v)) for k, v in metrics.items() if not isinstance(v, (dict, list))]
    return pd.DataFrame(rows, columns=["metric", "value"])


# -- downloads -----------------------------------------------------------------------------------------
MIMES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/octet-stream",
         "chat-jsonl": "application/x-ndjson", "preference-jsonl": "application/x-ndjson"}
_SUFFIX = {"chat-jsonl": "chat.jsonl", "preference-jsonl": "preference.jsonl"}


def copy_rows_bytes(table: str, f: DatasetFilter, fmt: str, store: Store | None = None) -> bytes:
    """The filtered selection written by DuckDB to a temp file, returned as bytes for st.download_button."""
    store = store or get_store()
    with tempfile.TemporaryDirectory(prefix="covcall-dl-") as tmp:
        path = Path(tmp) / f"{table}.{_SUFFIX.get(fmt, fmt)}"
        export_selection(store, table, f, fmt, path)
        return path.read_bytes()


def download_buttons(table: str, f: DatasetFilter, stem: str, key: str, formats: tuple[str, ...]) -> None:
    """One download button per format; the file is written only when the user clicks (deferred data).

    The store is captured now: Streamlit calls the deferred function outside the script run, where no
    Streamlit call may be made (that is what flooded the log with "missing ScriptRunContext!").
    """
    store = get_store()
    cols = st.columns(len(formats))
    for col, fmt in zip(cols, formats, strict=True):
        with col:
            label = {"chat-jsonl": "Download chat JSONL (LLM)", "preference-jsonl": "Download preference pairs (LLM)"}
            st.download_button(
                label.get(fmt, f"Download {fmt.upper()}"), data=lambda fmt=fmt: copy_rows_bytes(table, f, fmt, store),
                file_name=f"{stem}.{_SUFFIX.get(fmt, fmt)}", mime=MIMES[fmt], key=f"{key}_{fmt}", on_click="ignore",
                width="stretch")
