"""Statistics of a daily price path and its IV index, to set the synthetic market beside real history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FIGURES = ("ann_vol", "excess_kurtosis", "worst_day", "days_over_10pct_per_year", "days_over_15pct_per_year",
           "max_drawdown", "worst_30d_return", "abs_return_autocorr_lag5", "iv_median",
           "iv_over_next_rv30_mean", "share_iv_above_next_rv30", "btc_eth_correlation")


def daily_figures(close: pd.Series, iv: pd.Series | None = None) -> dict[str, float]:
    """Figures of one daily close series (index: UTC days) and optionally its IV index (index: when known).

    The IV premium compares each IV value with the realised vol of the 30 days that follow it (no overlap with
    what the IV could know), as a seller of 30-day options experiences it.
    """
    c = close.dropna().astype(float)
    r = np.log(c).diff().dropna()
    years = len(r) / 365.0
    simple = c.pct_change().dropna()
    dd = c / c.cummax() - 1.0
    out = {"ann_vol": float(r.std() * np.sqrt(365)), "excess_kurtosis": float(r.kurt()),
           "worst_day": float(simple.min()),
           "days_over_10pct_per_year": float((simple.abs() > 0.10).sum() / years),
           "days_over_15pct_per_year": float((simple.abs() > 0.15).sum() / years),
           "max_drawdown": float(dd.min()), "worst_30d_return": float((c / c.shift(30) - 1).min()),
           "abs_return_autocorr_lag5": float(r.abs().autocorr(5))}
    if iv is not None and len(iv):
        next_rv = (r.rolling(30).std() * np.sqrt(365)).shift(-30)  # realised over the 30 days after each day
        known = iv.astype(float)
        known.index = pd.DatetimeIndex(known.index).normalize()
        both = pd.concat([known.rename("iv"), next_rv.rename("rv")], axis=1, join="inner").dropna()
        both = both[both["rv"] > 0]
        out.update(iv_median=float(known.median()), iv_over_next_rv30_mean=float((both["iv"] / both["rv"]).mean()),
                   share_iv_above_next_rv30=float((both["iv"] > both["rv"]).mean()))
    return out


def _real(data: Path, u: str, start: str, end: str) -> tuple[pd.Series, pd.Series | None]:
    d = pd.read_csv(data / f"{u}USDT_1d.csv")
    close = pd.Series(d["close"].to_numpy(float), index=pd.to_datetime(d["timestamp"], utc=True)).loc[start:end]
    iv = None
    ivf = data / f"{u.lower()}_dvol.csv"
    if ivf.exists():
        v = pd.read_csv(ivf)
        # A daily DVOL close is known at the next midnight, as covcall imports it.
        iv = pd.Series(v["close"].to_numpy(float) / 100.0,
                       index=pd.to_datetime(v["date"], utc=True) + pd.Timedelta(days=1)).sort_index().loc[start:end]
    return close, iv


def _stored(store: Any, u: str, start: str, end: str) -> tuple[pd.Series, pd.Series | None] | None:
    """A coin's stored daily closes (finer bars resampled) and stored IV index over the window; None without
    candles."""
    from covcall.errors import CovcallError
    from covcall.market import load_candles, load_iv

    try:
        c = load_candles(u, "1d", start, end, source="store", store=store)
    except CovcallError:  # nothing stored for this coin
        return None
    if c.empty:
        return None
    close = pd.Series(c["close"].to_numpy(float), index=pd.DatetimeIndex(c["ts"]))
    v = load_iv(u, start, end, source="store", store=store)
    iv = None if v is None or v.empty else pd.Series(v["iv_ann"].to_numpy(float),
                                                       index=pd.DatetimeIndex(v["ts"])).sort_index().loc[start:end]
    return close, iv


def _synthetic(u: str, seed: int, start: str, end: str) -> tuple[pd.Series, pd.Series]:
    from covcall.market.synthetic import synthetic_candles, synthetic_iv

    c = synthetic_candles(u, "1d", seed=seed)
    close = pd.Series(c["close"].to_numpy(), index=c["ts"]).loc[start:end]
    v = synthetic_iv(u, seed=seed)
    return close, pd.Series(v["iv_ann"].to_numpy(), index=v["ts"]).loc[start:end]


def compare_synthetic(real_dir: str | Path | None, seeds: tuple[int, ...] = (7,), start: str = "2019-01-01",
                      end: str = "2025-12-31", store: Any = None) -> pd.DataFrame:
    """One row per figure: real BTC / ETH (the reference files in `real_dir`, or the candles and IV index stored
    in `store`, column "stored BTC") and each seed's synthetic market over the same window."""
    cols: dict[str, dict[str, float]] = {}
    for u in ("BTC", "ETH"):
        if real_dir is not None and (Path(real_dir) / f"{u}USDT_1d.csv").exists():
            close, iv = _real(Path(real_dir), u, start, end)
            cols[f"real {u}"] = daily_figures(close, iv)
            cols[f"real {u}"]["_close"] = close  # type: ignore[assignment]
        stored = _stored(store, u, start, end) if store is not None else None
        if stored is not None and len(stored[0]) > 60:
            cols[f"stored {u}"] = daily_figures(*stored)
            cols[f"stored {u}"]["_close"] = stored[0]  # type: ignore[assignment]
        for seed in seeds:
            close, iv = _synthetic(u, seed, start, end)
            cols[f"synthetic {u} seed {seed}"] = daily_figures(close, iv)
            cols[f"synthetic {u} seed {seed}"]["_close"] = close  # type: ignore[assignment]
    for name in list(cols):
        if name.endswith("BTC") or " BTC " in name:
            partner = name.replace("BTC", "ETH")
            if partner in cols:
                a = np.log(cols[name]["_close"]).diff()  # type: ignore[arg-type]
                b = np.log(cols[partner]["_close"]).diff()  # type: ignore[arg-type]
                cols[name]["btc_eth_correlation"] = float(a.corr(b))
    table = pd.DataFrame({k: {f: v.get(f, np.nan) for f in FIGURES} for k, v in cols.items()})
    table.index.name = "figure"
    return table


def markdown(table: pd.DataFrame) -> str:
    pct = {"ann_vol", "worst_day", "max_drawdown", "worst_30d_return", "iv_median", "share_iv_above_next_rv30"}
    lines = ["| figure | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
    for f, row in table.iterrows():
        cells = ["" if pd.isna(v) else (f"{v:.0%}" if f in pct else f"{v:.2f}") for v in row]
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(table: pd.DataFrame) -> dict[str, Any]:
    return {c: {f: (None if pd.isna(v) else float(v)) for f, v in table[c].items()} for c in table.columns}
