"""Plotly figures shared by pages: equity and drawdown, price with trades, ranges, comparisons."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN_COLOR = "rgba(46, 139, 87, 0.18)"
TEST_COLOR = "rgba(255, 140, 0, 0.22)"
CC_COLOR = "#1f77b4"
HODL_COLOR = "#7f7f7f"
DD_COLOR = "#d62728"


def compare_figure(equity: pd.DataFrame, names: dict[str, str], by_days: bool = False) -> go.Figure:
    """Covered-call value of each run rebased to 1.0 at its start, with each run's HODL dotted; on the calendar,
    or (`by_days`) against days since each run's start, so runs over different windows line up."""
    fig = go.Figure()
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
    for n, (run_id, eq) in enumerate(equity.groupby("run_id", sort=False)):
        color = palette[n % len(palette)]
        name = names.get(run_id, run_id)
        ts = pd.to_datetime(eq["ts"], utc=True)
        x = (ts - ts.iloc[0]) / pd.Timedelta(days=1) if by_days else eq["ts"]
        fig.add_trace(go.Scatter(x=x, y=eq["covered_call"] / eq["covered_call"].iloc[0], name=name,
                                 line=dict(color=color)))
        fig.add_trace(go.Scatter(x=x, y=eq["hodl"] / eq["hodl"].iloc[0], name=f"{name} (HODL)",
                                 line=dict(color=color, dash="dot", width=1), showlegend=False))
    fig.update_yaxes(title="value / start value")
    if by_days:
        fig.update_xaxes(title="days since the run's start")
    return layout(fig, height=420, title="Covered call (solid) vs HODL (dotted), rebased")


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


EXIT_MARKERS = {  # exit reason -> (legend name, marker symbol, colour)
    "take_profit": ("rolled (take-profit buy-back)", "circle", "#1f77b4"),
    "expired_otm": ("expired worthless", "diamond", "#2ca02c"),
    "settled_itm": ("assigned (settled in the money)", "x", "#d62728"),
    "window_end": ("bought back at window end", "square", "#7f7f7f"),
}


def price_figure(equity: pd.DataFrame, trades: pd.DataFrame, underlying: str,
                 highlight: int | None = None) -> go.Figure:
    """Spot, each call as a segment at its strike from entry to exit, a marker where it was sold (at the strike,
    so a roll's sale never hides under the previous call's exit) and one per kind of exit (at spot).
    `highlight` (a row position in `trades`) draws that call thick, for tracing a trade picked in the table."""
    x = equity["ts"] if "ts" in equity.columns else equity.index
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=equity["spot"], name=f"{underlying} spot", line=dict(color="#444")))
    if len(trades):
        t = trades.reset_index(drop=True)
        xs, ys, text = [], [], []
        for r in t.itertuples():
            xs += [r.entry_time, r.exit_time, None]
            ys += [r.strike, r.strike, None]
            text += [f"#{r.trade_no} {r.instrument}", f"#{r.trade_no} {r.instrument}", None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="call at its strike", text=text,
                                 line=dict(color="#9467bd", width=2), hovertemplate="%{text}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=t["entry_time"], y=t["strike"], mode="markers", name="call sold",
            marker=dict(symbol="triangle-right", size=10, color="#9467bd"),
            customdata=t[["trade_no", "strike", "delta", "dte_days", "premium_usd"]].to_numpy(),
            hovertemplate="#%{customdata[0]} sold: strike %{customdata[1]:,.0f}, delta %{customdata[2]:.2f}, "
                          "%{customdata[3]:.1f} d, premium $%{customdata[4]:,.2f}<extra></extra>"))
        for reason, (name, symbol, color) in EXIT_MARKERS.items():
            sub = t[t["exit_reason"].astype(str) == reason]
            if sub.empty:
                continue
            fig.add_trace(go.Scatter(
                x=sub["exit_time"], y=sub["spot_exit"], mode="markers", name=name,
                marker=dict(symbol=symbol, size=9, color=color),
                customdata=sub[["trade_no", "pnl_vs_hodl"]].to_numpy(),
                hovertemplate=f"#%{{customdata[0]}} {name}: option PnL vs HODL $%{{customdata[1]:,.2f}}<extra></extra>"))
        if highlight is not None and 0 <= highlight < len(t):
            h = t.iloc[highlight]
            fig.add_trace(go.Scatter(
                x=[h["entry_time"], h["exit_time"]], y=[h["strike"], h["strike"]], mode="lines+markers",
                name=f"trade #{h['trade_no']}", line=dict(color="#ff7f0e", width=6), marker=dict(size=14)))
            fig.add_vrect(x0=h["entry_time"], x1=h["exit_time"], fillcolor="rgba(255,127,14,0.12)", line_width=0)
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    return layout(fig, height=520, title=f"{underlying} price with each call from sale to exit")


def shade_ranges(fig: go.Figure, train: list[tuple[Any, Any, str]], test: tuple[Any, Any, str] | None) -> None:
    """Shade each training range (green) and the test range (orange) on a time-axis figure."""
    for i, (s, e, _note) in enumerate(train, start=1):
        fig.add_vrect(x0=pd.Timestamp(s), x1=pd.Timestamp(e) + pd.Timedelta(days=1), fillcolor=TRAIN_COLOR,
                      line_width=0, annotation_text=f"train {i}", annotation_position="top left")
    if test is not None:
        fig.add_vrect(x0=pd.Timestamp(test[0]), x1=pd.Timestamp(test[1]) + pd.Timedelta(days=1),
                      fillcolor=TEST_COLOR, line_width=0, annotation_text="test", annotation_position="top left")
