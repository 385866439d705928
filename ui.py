"""Streamlit helpers shared by the dashboard pages: settings, store, number formats, cached reads, charts."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from covcall.config import Settings, load_settings
from covcall.errors import ConfigError, CovcallError
from covcall.store import DatasetFilter, Store

CACHE_TTL_S = 300
DATE_FORMAT = "YYYY-MM-DD"  # every st.date_input shows ISO dates, like the core and the CLI
TRAIN_COLOR = "rgba(46, 139, 87, 0.18)"
TEST_COLOR = "rgba(255, 140, 0, 0.22)"
CC_COLOR = "#1f77b4"
HODL_COLOR = "#7f7f7f"
DD_COLOR = "#d62728"


# -- settings and store ----------------------------------------------------------------------------
def navigation_pages() -> list[Any]:
    """The dashboard's pages, in menu order (app.py hands them to st.navigation)."""
    return [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/backtest.py", title="Backtest", icon=":material/candlestick_chart:"),
        st.Page("pages/ranges.py", title="Ranges", icon=":material/date_range:"),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/table:"),
        st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    ]


def page_shell() -> Any:
    """Page config and navigation; app.py calls this once per run and runs the page it returns."""
    st.set_page_config(layout="wide", page_title="covcall", page_icon=":material/candlestick_chart:")
    page = st.navigation(navigation_pages(), position="hidden")
    sidebar_menu()
    return page


def sidebar_menu() -> None:
    """Our own menu (the built-in one is off in .streamlit/config.toml), so it looks the same on every visit."""
    with st.sidebar:
        for p in navigation_pages():
            st.page_link(p, label=p.title, icon=p.icon)


def _ensure_shell() -> None:
    """Wide layout and the dashboard's menu even when Streamlit ran a page without app.py.

    With a `pages/` folder next to the entry point, Streamlit starts in its folder-based multipage mode until
    some run calls st.navigation: a first visit straight to /backtest (and every AppTest run) executes
    pages/backtest.py alone. Here the page gets the wide layout and our menu, and the mode is switched off so
    the next run goes through app.py (same URL, same page). No rerun now: a click that started this run must
    count.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the folder mode
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.set_page_config(layout="wide", page_title="covcall", page_icon=":material/candlestick_chart:")
        sidebar_menu()


def get_settings() -> Settings:
    """Settings read once per session at the edge; a bad value stops the page with one readable line."""
    _ensure_shell()
    if "settings" in st.session_state:
        return st.session_state["settings"]
    try:
        settings = load_settings()
    except ConfigError as err:
        st.error(str(err))
        st.stop()
        raise  # unreachable: st.stop raises
    st.session_state["settings"] = settings
    return settings


@st.cache_resource(max_entries=4)
def _store_for(path: str, timeout_s: float) -> Store:
    return Store(path, timeout_s)


def get_store() -> Store:
    """The one Store of this dashboard (short-lived connections per operation, shareable with a CLI)."""
    settings = get_settings()
    return _store_for(str(settings.duckdb_path), float(settings.store_timeout_s))


def db_key() -> str:
    """Cache key of the database in use (cached reads are per file)."""
    return str(get_store().path)


def invalidate() -> None:
    """Forget cached reads after a write (a run, a batch, a saved range set, a walk)."""
    for fn in _CACHED:
        fn.clear()


# -- widgets whose value survives page switches and interrupted runs -------------------------------
def kept(key: str) -> dict[str, Any]:
    """Keyword arguments for a widget whose value lives in st.session_state[key], not in widget state.

    Streamlit drops a widget's state while its page is not shown, and a click that interrupts a page's
    first run can reset widgets that took their value from session state to their minimum. A widget made
    with an explicit `value` from a plain session key, copied back on change, survives both.
    """
    wkey = f"{key}__widget"

    def copy_back() -> None:
        st.session_state[key] = st.session_state[wkey]

    return {"key": wkey, "value": st.session_state[key], "on_change": copy_back}


def set_kept(key: str, value: Any) -> None:
    """Change a kept value from code (a preset, a reopened run): the widget re-reads it on the next run."""
    st.session_state[key] = value
    st.session_state.pop(f"{key}__widget", None)


# -- number formats: one per unit -------------------------------------------------------------------
def _bad(x: Any) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return True


def fmt_usd(x: Any) -> str:
    """USD with two decimals: 12345.678 -> '$12,345.68' (the sign goes in front of the $)."""
    if _bad(x):
        return "n/a"
    v = float(x)
    return f"-${abs(v):,.2f}" if v < 0 else f"${v:,.2f}"


def fmt_pct(x: Any) -> str:
    """A fraction as percent: 0.1234 -> '12.34%'."""
    return "n/a" if _bad(x) else f"{float(x) * 100:,.2f}%"


def fmt_coin(x: Any, coin: str = "BTC") -> str:
    return "n/a" if _bad(x) else f"{float(x):,.4f} {coin}"


def fmt_days(x: Any) -> str:
    return "n/a" if _bad(x) else f"{float(x):,.1f} d"


def fmt_ratio(x: Any) -> str:
    """Unitless ratios (Sharpe, Sortino, Calmar, PSR/DSR): two decimals."""
    return "n/a" if _bad(x) else f"{float(x):,.2f}"


def fmt_count(n: Any) -> str:
    return "n/a" if _bad(n) else f"{int(n):,}"


def fmt_rows(n: int) -> str:
    """'1,234 rows' (the browser test reads this)."""
    return f"{int(n):,} row" if int(n) == 1 else f"{int(n):,} rows"


PCT_METRICS = ("total_return", "cagr", "volatility", "max_drawdown", "win_rate", "assignment_rate",
               "hodl_total_return", "hodl_max_drawdown", "excess_return")
USD_METRICS = ("premium_collected_usd", "fees_paid_usd", "option_pnl_usd")


def fmt_metric(name: str, value: Any) -> str:
    if name in PCT_METRICS:
        return fmt_pct(value)
    if name in USD_METRICS:
        return fmt_usd(value)
    if name.startswith("n_"):
        return fmt_count(value)
    return fmt_ratio(value)


def show_error(err: BaseException) -> None:
    st.error(str(err))


def attempt(action: Callable[[], Any], bar: Any = None) -> Any:
    """Run a user action; a CovcallError shows as one red line, a bug as a red line plus its details.

    Returns the action's result, or None when it failed (nothing saved is touched by the page).
    """
    try:
        return action()
    except CovcallError as err:
        st.error(str(err))
    except Exception as err:  # a core bug must not wipe the page; show it readably
        st.error(f"unexpected error ({type(err).__name__}): {err}")
        with st.expander("details"):
            st.exception(err)
    finally:
        if bar is not None:
            bar.empty()
    return None


# -- progress ----------------------------------------------------------------------------------------
def fraction_progress(bar: Any) -> Callable[[float, str], None]:
    """Progress callback (fraction, message) for the core, drawn on an st.progress bar."""
    def say(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)
    return say


def count_progress(bar: Any, what: str = "processed") -> Callable[[int, int, str], None]:
    """Progress callback (done, total, label) for batches and walks: 'processed 3 / 8: label'."""
    def say(done: int, total: int, label: str) -> None:
        frac = done / total if total else 1.0
        bar.progress(min(max(frac, 0.0), 1.0), text=f"{what} {done} / {total}: {label}")
    return say


# -- cached reads (read-only, bounded) ----------------------------------------------------------------
def _store() -> Store:
    return get_store()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def counts(db: str) -> dict[str, int]:
    return _store().counts()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def series(db: str) -> pd.DataFrame:
    return _store().list_series()


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def runs(db: str, limit: int | None = None, batch_id: str | None = None) -> pd.DataFrame:
    return _store().list_runs(limit=limit, batch_id=batch_id)


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def range_set_names(db: str) -> list[str]:
    return _store().list_range_sets()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def walks(db: str) -> pd.DataFrame:
    return _store().list_walks()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def models(db: str) -> pd.DataFrame:
    from covcall.models import list_models

    return list_models(_store())


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def run_view(db: str, run_id: str) -> dict[str, Any] | None:
    """Everything the result view needs for one stored run: row, metrics, config, equity, trades."""
    store = _store()
    row = store.get_run(run_id)
    if row is None:
        return None
    equity = store.read_run_table("equity", [run_id])
    trades = store.read_run_table("trades", [run_id])
    return {"row": row, "metrics": json.loads(row.get("metrics_json") or "{}"),
            "config": json.loads(row.get("config_json") or "{}"), "equity": equity, "trades": trades}


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def equities(db: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    """Equity curves of several runs (columns run_id, ts, spot, covered_call, hodl)."""
    return _store().read_run_table("equity", list(run_ids))


def compare_figure(equity: pd.DataFrame, names: dict[str, str]) -> go.Figure:
    """Covered-call value of each run rebased to 1.0 at its start, with each run's HODL dotted."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    for n, (run_id, eq) in enumerate(equity.groupby("run_id", sort=False)):
        color = palette[n % len(palette)]
        name = names.get(run_id, run_id)
        fig.add_trace(go.Scatter(x=eq["ts"], y=eq["covered_call"] / eq["covered_call"].iloc[0], name=name,
                                 line=dict(color=color)))
        fig.add_trace(go.Scatter(x=eq["ts"], y=eq["hodl"] / eq["hodl"].iloc[0], name=f"{name} (HODL)",
                                 line=dict(color=color, dash="dot", width=1), showlegend=False))
    fig.update_yaxes(title="value / start value")
    return layout(fig, height=420, title="Covered call (solid) vs HODL (dotted), rebased")


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def decision_times(db: str, run_id: str) -> list[str]:
    """Decision times (UTC, 'YYYY-MM-DD HH:MM') at which a run recorded candidates."""
    cands = _store().read_candidates([run_id])
    if cands.empty:
        return []
    return [f"{t:%Y-%m-%d %H:%M}" for t in cands["decision_time"].drop_duplicates().sort_values()]


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def explain_decision(db: str, model_id: str, run_id: str, at: str, threshold: float) -> dict[str, Any]:
    from covcall.explain import explain_decision as explain

    return explain(_store(), model_id, run_id, at, threshold)


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


def filter_key(f: DatasetFilter) -> tuple[tuple[str, Any], ...]:
    return tuple((k, getattr(f, k)) for k in DatasetFilter.__dataclass_fields__)


def _filter(key: tuple[tuple[str, Any], ...]) -> DatasetFilter:
    return DatasetFilter(**dict(key))


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def count_rows(db: str, table: str, fkey: tuple) -> int:
    return _store().count_rows(table, _filter(fkey))


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def page_rows(db: str, table: str, fkey: tuple, limit: int, offset: int) -> pd.DataFrame:
    return _store().page_rows(table, _filter(fkey), limit=limit, offset=offset)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def dataset_summary(db: str, table: str, fkey: tuple) -> dict[str, Any]:
    return _store().dataset_summary(table, _filter(fkey))


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def reward_histogram(db: str, table: str, fkey: tuple, bins: int) -> pd.DataFrame:
    return _store().reward_histogram(table, _filter(fkey), bins)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def reward_by(db: str, table: str, fkey: tuple, column: str, bins: int) -> pd.DataFrame:
    return _store().reward_by(table, _filter(fkey), column, bins)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def actions_over_time(db: str, fkey: tuple, freq: str) -> pd.DataFrame:
    return _store().actions_over_time(_filter(fkey), freq)


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def candles(db: str, underlying: str, timeframe: str, start: date, end: date, source: str,
            seed: int) -> pd.DataFrame:
    from covcall.market import load_candles

    return load_candles(underlying, timeframe, start, end, source=source, store=_store(), seed=seed)


_CACHED = (counts, series, runs, range_set_names, walks, models, run_view, count_rows, page_rows, dataset_summary,
           reward_histogram, reward_by, actions_over_time, decision_times, explain_decision, equities)


# -- downloads -----------------------------------------------------------------------------------------
MIMES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/octet-stream"}


def copy_rows_bytes(table: str, f: DatasetFilter, fmt: str) -> bytes:
    """The filtered selection written by DuckDB to a temp file, returned as bytes for st.download_button."""
    from covcall.dataset import export_selection

    with tempfile.TemporaryDirectory(prefix="covcall-dl-") as tmp:
        path = Path(tmp) / f"{table}.{fmt}"
        export_selection(get_store(), table, f, fmt, path)
        return path.read_bytes()


def download_buttons(table: str, f: DatasetFilter, stem: str, key: str, formats: tuple[str, ...]) -> None:
    """One download button per format; the file is written only when the user clicks (deferred data)."""
    cols = st.columns(len(formats))
    for col, fmt in zip(cols, formats, strict=True):
        with col:
            st.download_button(
                f"Download {fmt.upper()}", data=lambda fmt=fmt: copy_rows_bytes(table, f, fmt),
                file_name=f"{stem}.{fmt}", mime=MIMES[fmt], key=f"{key}_{fmt}", on_click="ignore",
                width="stretch")


# -- charts --------------------------------------------------------------------------------------------
def layout(fig: go.Figure, height: int = 380, title: str | None = None) -> go.Figure:
    # Legend below the plot: above it, it collides with titles and subplot titles.
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), title=title,
                      legend=dict(orientation="h", yanchor="top", y=-0.12, xanchor="left", x=0),
                      hovermode="x unified")
    return fig


def equity_figure(equity: pd.DataFrame) -> go.Figure:
    """Covered call vs HODL (USD value) on top, the covered call's drawdown below."""
    eq = equity.copy()
    x = eq["ts"] if "ts" in eq.columns else eq.index
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06,
                        subplot_titles=("Portfolio value (USD)", "Drawdown"))
    fig.add_trace(go.Scatter(x=x, y=eq["covered_call"], name="covered call", line=dict(color=CC_COLOR)), 1, 1)
    fig.add_trace(go.Scatter(x=x, y=eq["hodl"], name="HODL", line=dict(color=HODL_COLOR, dash="dot")), 1, 1)
    cc = eq["covered_call"].astype(float)
    dd = cc / cc.cummax() - 1.0
    hd = eq["hodl"].astype(float)
    fig.add_trace(go.Scatter(x=x, y=dd, name="covered call drawdown", fill="tozeroy",
                             line=dict(color=DD_COLOR, width=1)), 2, 1)
    fig.add_trace(go.Scatter(x=x, y=hd / hd.cummax() - 1.0, name="HODL drawdown",
                             line=dict(color=HODL_COLOR, width=1, dash="dot")), 2, 1)
    fig.update_yaxes(tickprefix="$", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    return layout(fig, height=520)


def price_figure(equity: pd.DataFrame, trades: pd.DataFrame, underlying: str) -> go.Figure:
    """Spot with each sold call (entry, strike) and its exit marked."""
    x = equity["ts"] if "ts" in equity.columns else equity.index
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=equity["spot"], name=f"{underlying} spot", line=dict(color="#444")))
    if len(trades):
        fig.add_trace(go.Scatter(
            x=trades["entry_time"], y=trades["spot_entry"], mode="markers", name="call sold",
            marker=dict(symbol="triangle-down", size=10, color="#2ca02c"),
            customdata=trades[["strike", "delta", "dte_days"]].to_numpy(),
            hovertemplate="sold: strike %{customdata[0]:,.0f}, delta %{customdata[1]:.2f}, "
                          "%{customdata[2]:.1f} d<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=trades["exit_time"], y=trades["spot_exit"], mode="markers", name="exit",
            marker=dict(symbol="x", size=9, color="#d62728"), text=trades["exit_reason"],
            hovertemplate="exit: %{text}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=trades["entry_time"], y=trades["strike"], mode="markers", name="strike",
            marker=dict(symbol="line-ew-open", size=12, color="#9467bd")))
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    return layout(fig, height=520, title=f"{underlying} price with calls sold and exits")


def shade_ranges(fig: go.Figure, train: list[tuple[Any, Any, str]], test: tuple[Any, Any, str] | None) -> None:
    """Shade each training range (green) and the test range (orange) on a time-axis figure."""
    for i, (s, e, _note) in enumerate(train, start=1):
        fig.add_vrect(x0=pd.Timestamp(s), x1=pd.Timestamp(e) + pd.Timedelta(days=1), fillcolor=TRAIN_COLOR,
                      line_width=0, annotation_text=f"train {i}", annotation_position="top left")
    if test is not None:
        fig.add_vrect(x0=pd.Timestamp(test[0]), x1=pd.Timestamp(test[1]) + pd.Timedelta(days=1),
                      fillcolor=TEST_COLOR, line_width=0, annotation_text="test", annotation_position="top left")


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
