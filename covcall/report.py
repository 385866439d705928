"""The performance report of a run: strategy and HODL side by side, monthly returns, rolling Sharpe, trade PnL."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from covcall.enums import ExitReason
from covcall.metrics import drawdown_series, equity_metrics

ROLLING_DAYS = 30


def _series(equity: pd.DataFrame, column: str) -> pd.Series:
    idx = pd.DatetimeIndex(pd.to_datetime(equity["ts"], utc=True)) if "ts" in equity.columns else equity.index
    return pd.Series(equity[column].to_numpy(float), index=idx).dropna()


def drawdown_duration_days(values: pd.Series) -> float:
    """Longest time spent below a previous peak (peak to recovery, or to the end if never recovered), in days.

    >>> s = pd.Series([100, 90, 95, 101, 99, 102.0], index=pd.date_range("2024-01-01", periods=6, freq="D"))
    >>> drawdown_duration_days(s)
    3.0
    """
    if len(values) < 2:
        return 0.0
    dd = drawdown_series(values.to_numpy(float))
    under = dd < 0
    longest, start = pd.Timedelta(0), None
    times = values.index
    for i, u in enumerate(under):
        if u and start is None:
            start = times[i - 1] if i > 0 else times[i]
        elif not u and start is not None:
            longest = max(longest, times[i] - start)
            start = None
    if start is not None:
        longest = max(longest, times[-1] - start)
    return longest / pd.Timedelta(days=1)


def _streak(losses: np.ndarray) -> int:
    best = run = 0
    for x in losses:
        run = run + 1 if x else 0
        best = max(best, run)
    return best


def exposure(equity_index: pd.DatetimeIndex, trades: pd.DataFrame) -> float:
    """Share of bars with a call open."""
    if len(trades) == 0 or len(equity_index) == 0:
        return 0.0
    t = equity_index.asi8
    starts = np.searchsorted(t, pd.DatetimeIndex(pd.to_datetime(trades["entry_time"], utc=True)).asi8, "left")
    ends = np.searchsorted(t, pd.DatetimeIndex(pd.to_datetime(trades["exit_time"], utc=True)).asi8, "left")
    # +1 where a call opens, -1 where it closes: a bar is covered while the running sum is positive
    marks = np.zeros(len(t) + 1)
    np.add.at(marks, starts, 1.0)
    np.add.at(marks, ends, -1.0)
    return float(np.mean(np.cumsum(marks)[:-1] > 0))


@dataclass
class Report:
    """Everything a performance report shows; tables are DataFrames, ready for a page, JSON or HTML."""

    summary: pd.DataFrame  # metric, unit, strategy, hodl
    monthly: pd.DataFrame  # rows: year; columns: Jan..Dec, Year (strategy returns)
    monthly_excess: pd.DataFrame  # the same, strategy minus HODL
    rolling_sharpe: pd.DataFrame  # ts, strategy, hodl (30-day, annualised)
    trade_pnl_pct: pd.Series  # option PnL vs HODL per trade, % of notional

    def to_dict(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {"summary": [{k: clean(v) for k, v in r.items()} for r in self.summary.to_dict("records")],
                "monthly": {str(y): {m: clean(float(v)) for m, v in row.items()}
                            for y, row in self.monthly.iterrows()},
                "monthly_excess": {str(y): {m: clean(float(v)) for m, v in row.items()}
                                   for y, row in self.monthly_excess.iterrows()},
                "trade_pnl_pct": [clean(float(v)) for v in self.trade_pnl_pct]}


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _monthly(values: pd.Series) -> pd.DataFrame:
    end = values.resample("ME").last()
    start = pd.concat([values.iloc[:1], end.iloc[:-1]])
    start.index = end.index
    r = end / start.to_numpy() - 1.0
    table = pd.DataFrame({"year": r.index.year, "month": r.index.month, "r": r.to_numpy()})
    out = table.pivot(index="year", columns="month", values="r").reindex(columns=range(1, 13))
    out.columns = MONTHS
    yearly = values.resample("YE").last()
    first = pd.concat([values.iloc[:1], yearly.iloc[:-1]])
    out["Year"] = (yearly.to_numpy() / first.to_numpy() - 1.0)[: len(out)]
    return out


def _rolling_sharpe(values: pd.Series) -> pd.Series:
    daily = values.resample("D").last().dropna().pct_change()
    roll = daily.rolling(ROLLING_DAYS, min_periods=ROLLING_DAYS)
    return (roll.mean() / roll.std() * math.sqrt(365)).dropna()


def performance_report(equity: pd.DataFrame, trades: pd.DataFrame, timeframe: str, quantity: float) -> Report:
    """The report of one run from its equity curve and trades (as stored: `store.read_run_table`)."""
    cc, hodl = _series(equity, "covered_call"), _series(equity, "hodl")
    m, h = equity_metrics(cc.to_numpy(), timeframe), equity_metrics(hodl.to_numpy(), timeframe)
    start_spot = float(equity["spot"].iloc[0]) if "spot" in equity.columns and len(equity) else float("nan")
    notional = float(quantity) * start_spot
    t = trades if len(trades) else pd.DataFrame(columns=["pnl_vs_hodl", "premium_usd", "fee_usd", "exit_reason",
                                                         "exit_usd", "entry_time", "exit_time"])
    pnl = t["pnl_vs_hodl"].to_numpy(float)
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    assigned = t["exit_reason"].astype(str).to_numpy() == ExitReason.SETTLED_ITM.value
    nan = float("nan")
    rows = [
        ("total return", "%", m["total_return"], h["total_return"]),
        ("annual return (CAGR)", "%", m["cagr"], h["cagr"]),
        ("volatility (annualised)", "%", m["volatility"], h["volatility"]),
        ("Sharpe", "ratio", m["sharpe"], h["sharpe"]),
        ("Sortino", "ratio", m["sortino"], h["sortino"]),
        ("Calmar", "ratio", m["calmar"], h["calmar"]),
        ("max drawdown", "%", m["max_drawdown"], h["max_drawdown"]),
        ("longest drawdown", "days", drawdown_duration_days(cc), drawdown_duration_days(hodl)),
        ("exposure (a call open)", "%", exposure(cc.index, t), nan),
        ("trades", "count", float(len(t)), nan),
        ("win rate vs HODL", "%", float(np.mean(pnl > 0)) if len(pnl) else nan, nan),
        ("profit factor (option legs)", "ratio", gains / losses if losses > 0 else nan, nan),
        ("average trade (option PnL vs HODL)", "usd", float(np.mean(pnl)) if len(pnl) else nan, nan),
        ("median trade", "usd", float(np.median(pnl)) if len(pnl) else nan, nan),
        ("average trade, % of notional", "%", float(np.mean(pnl)) / notional if len(pnl) else nan, nan),
        ("longest losing streak", "trades", float(_streak(pnl < 0)), nan),
        ("premium collected", "usd", float(np.nansum(t["premium_usd"].to_numpy(float))), nan),
        ("premium collected, % of notional", "%", float(np.nansum(t["premium_usd"].to_numpy(float))) / notional,
         nan),
        ("assignments (settled in the money)", "count", float(assigned.sum()), nan),
        ("assignment cost (paid at settlement)", "usd", float(np.nansum(t["exit_usd"].to_numpy(float)[assigned]))
         if len(t) else 0.0, nan),
        ("fees", "usd", float(np.nansum(t["fee_usd"].to_numpy(float))), nan),
        ("option PnL vs HODL, % of notional", "%", float(np.nansum(pnl)) / notional, nan),
    ]
    summary = pd.DataFrame(rows, columns=["metric", "unit", "strategy", "hodl"])
    monthly, monthly_h = _monthly(cc), _monthly(hodl)
    rs = pd.DataFrame({"strategy": _rolling_sharpe(cc), "hodl": _rolling_sharpe(hodl)})
    rs.index.name = "ts"
    return Report(summary, monthly, monthly - monthly_h, rs.reset_index(),
                  pd.Series(pnl / notional if notional else pnl, name="pnl_vs_hodl_pct"))


# -- figures and the HTML file ---------------------------------------------------------------------
def report_figures(report: Report, equity: pd.DataFrame, title: str = "") -> dict[str, Any]:
    """Plotly figures: equity (from 1.0, % of notional), monthly heatmap, rolling Sharpe, trade PnL histogram."""
    import plotly.graph_objects as go

    cc, hodl = _series(equity, "covered_call"), _series(equity, "hodl")
    eq = go.Figure([go.Scatter(x=cc.index, y=cc / cc.iloc[0], name="covered call"),
                    go.Scatter(x=hodl.index, y=hodl / hodl.iloc[0], name="HODL", line=dict(dash="dot"))])
    eq.update_layout(title=f"Equity, 1.0 = start {title}".strip(), height=360, yaxis_tickformat=".2f",
                     margin=dict(l=10, r=10, t=40, b=10))
    z = report.monthly.to_numpy(float)
    text = [[("" if not math.isfinite(v) else f"{v:+.1%}") for v in row] for row in z]
    heat = go.Figure(go.Heatmap(z=z, x=list(report.monthly.columns), y=[str(y) for y in report.monthly.index],
                                text=text, texttemplate="%{text}", colorscale="RdYlGn", zmid=0,
                                hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>"))
    heat.update_layout(title="Monthly returns (strategy)", height=120 + 40 * len(report.monthly),
                       margin=dict(l=10, r=10, t=40, b=10))
    heat.update_yaxes(type="category", autorange="reversed")  # years are labels: no "2,023.5" ticks
    heat.update_xaxes(type="category")
    heat.update_traces(textfont=dict(size=11))
    rs = report.rolling_sharpe
    roll = go.Figure([go.Scatter(x=rs["ts"], y=rs["strategy"], name="covered call"),
                      go.Scatter(x=rs["ts"], y=rs["hodl"], name="HODL", line=dict(dash="dot"))])
    roll.update_layout(title=f"Rolling {ROLLING_DAYS}-day Sharpe (annualised)", height=300,
                       margin=dict(l=10, r=10, t=40, b=10))
    hist = go.Figure(go.Histogram(x=report.trade_pnl_pct, nbinsx=40))
    hist.update_layout(title="Option PnL vs HODL per trade, % of notional", height=300, xaxis_tickformat=".1%",
                       margin=dict(l=10, r=10, t=40, b=10))
    return {"equity": eq, "monthly": heat, "rolling_sharpe": roll, "trade_pnl": hist}


def _fmt(v: Any, unit: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if unit == "%":
        return f"{v:.2%}"
    if unit == "usd":
        return f"${v:,.2f}"
    if unit in ("count", "trades"):
        return f"{v:,.0f}"
    if unit == "days":
        return f"{v:,.1f} d"
    return f"{v:.2f}"


def report_html(report: Report, equity: pd.DataFrame, *, title: str, subtitle: str = "") -> str:
    """One self-contained HTML file: the tables and every chart (plotly.js embedded once, works offline)."""
    figs = report_figures(report, equity)
    parts = []
    for i, fig in enumerate(figs.values()):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False}))
    rows = "".join(f"<tr><td>{html.escape(r['metric'])}</td><td>{_fmt(r['strategy'], r['unit'])}</td>"
                   f"<td>{_fmt(r['hodl'], r['unit'])}</td></tr>" for r in report.summary.to_dict("records"))
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}"
        "table{border-collapse:collapse}td,th{padding:4px 12px;border-bottom:1px solid #ddd;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"
        "<h2>Summary</h2><table><tr><th>metric</th><th>covered call</th><th>HODL</th></tr>"
        f"{rows}</table>" + "".join(f"<div>{p}</div>" for p in parts)
        + "<p><small>Made by covcall. Option PnL vs HODL: premium minus buy-back or settlement and fees, i.e. "
        "what selling calls added to holding the coin. Notional: quantity x the first spot.</small></p>"
        "</body></html>")


def run_report(store: Any, run_id: str) -> tuple[dict[str, Any], Report, pd.DataFrame]:
    """The stored run's row, its report and its equity curve (an unknown id says how to find one)."""
    from covcall.errors import CovcallError, did_you_mean

    row = store.get_run(run_id)
    if row is None:
        runs = store.list_runs()
        known = list(runs["run_id"]) if len(runs) else []
        raise CovcallError(f"no run {run_id!r}{did_you_mean(run_id, known)}; list runs with `covcall runs`")
    equity = store.read_run_table("equity", [run_id])
    trades = store.read_run_table("trades", [run_id])
    if equity.empty:
        raise CovcallError(f"run {run_id} has no equity curve (status {row.get('status')}); nothing to report")
    quantity = float((row.get("config") or {}).get("quantity", 1.0))
    return row, performance_report(equity, trades, str(row["timeframe"]), quantity), equity


def report_title(row: dict[str, Any]) -> tuple[str, str]:
    title = row.get("label") or f"{row['underlying']} {row['timeframe']} covered call"
    sub = (f"run {row['run_id']} · {row['underlying']} {row['timeframe']} · "
           f"{pd.Timestamp(row['start_date']):%Y-%m-%d} .. {pd.Timestamp(row['end_date']):%Y-%m-%d} · "
           f"{row.get('exit_style')} · policy {row.get('policy')} · source {row.get('source')}")
    return str(title), sub


def write_report_html(report: Report, equity: pd.DataFrame, row: dict[str, Any], out: Any) -> Any:
    """Write the HTML report atomically (the same destination checks as every export)."""
    from covcall.dataset import write_text_file

    title, sub = report_title(row)
    return write_text_file(out, report_html(report, equity, title=title, subtitle=sub))
