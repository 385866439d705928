"""Number formats, one per unit (USD, %, coin, days, ratios, counts)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


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


def number_columns(pct: tuple[str, ...] = (), usd: tuple[str, ...] = (), ratio: tuple[str, ...] = (),
                   count: tuple[str, ...] = (), help: dict[str, str] | None = None) -> dict[str, Any]:
    """column_config for st.dataframe: the numbers stay numbers (so sorting is numeric), shown per unit."""
    import streamlit as st

    help = help or {}
    out: dict[str, Any] = {}
    for names, fmt in ((pct, "percent"), (usd, "dollar"), (ratio, "%.2f"), (count, "localized")):
        for c in names:
            out[c] = st.column_config.NumberColumn(c, format=fmt, help=help.get(c))
    return out


def metric_number(metrics: dict[str, Any] | None, name: str) -> float | None:
    """A metric as a float for a numeric table cell (None when missing or not finite)."""
    v = (metrics or {}).get(name)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None

