"""Trailing realised vol and the ATM implied vol known at each bar's close (no look-ahead)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from covcall.chain import ChainParams
from covcall.errors import DataError, choice_error
from covcall.timeframes import BAR_LENGTH, BARS_PER_YEAR

__all__ = ["BARS_PER_YEAR", "realized_vol", "atm_iv_series", "dvol_iv_frame", "calibrate_iv_rv_premium"]

IV_SOURCES = ("auto", "realized", "dvol")


def realized_vol(close: ArrayLike, bars_per_year: float, window_bars: int) -> np.ndarray:
    """Trailing annualised vol of log returns at each bar, from closes up to and including that bar only.

    Zero-mean (root mean square) estimator over the last `window_bars` returns, as variance swaps and
    DVOL comparisons use; NaN until at least ceil(window_bars / 2) valid returns are in the window.
    Missing closes (NaN) just drop the returns that touch them.

    >>> close = 100 * np.exp(0.01 * np.array([0, 1, 0, 1, 0]))   # +-1 % every day
    >>> realized_vol(close, 365, 4).round(4)
    array([   nan,    nan, 0.1911, 0.1911, 0.1911])
    """
    c = np.asarray(close, dtype=float)
    window = int(window_bars)
    if window < 1:
        raise DataError(f"window_bars must be at least 1; got {window_bars!r}")
    r = np.full(c.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r[1:] = np.log(c[1:] / c[:-1])
    ok = np.isfinite(r)
    sq = np.concatenate([[0.0], np.cumsum(np.where(ok, r * r, 0.0))])
    cnt = np.concatenate([[0], np.cumsum(ok)])
    hi = np.arange(1, c.size + 1)
    lo = np.maximum(hi - window, 0)
    n = cnt[hi] - cnt[lo]
    ss = sq[hi] - sq[lo]
    need = int(np.ceil(window / 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        vol = np.sqrt(ss / n * bars_per_year)
    return np.where(n >= need, vol, np.nan)


def _ns(values: object) -> np.ndarray:
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return idx.asi8.astype(np.int64) if idx.unit == "ns" else idx.as_unit("ns").asi8


def atm_iv_series(
    ts: pd.Series | pd.DatetimeIndex,
    close: ArrayLike,
    timeframe: str,
    params: ChainParams | None = None,
    iv: pd.DataFrame | None = None,
    iv_source: str = "auto",
) -> np.ndarray:
    """30-day ATM implied vol known at each bar's close (ts + bar length), clipped to [iv_floor, iv_cap].

    - "realized": trailing realised vol over `rv_window_days` times `iv_rv_premium`;
    - "dvol": the latest `iv.iv_ann` with `iv.ts <= bar close` (`iv.ts` = when the value became known);
      bars before the DVOL history starts use the realised proxy;
    - "auto": "dvol" when `iv` holds an index, else "realized".
    Bars before any estimate exists (the first ~rv_window_days / 2) get `params.iv_default` (0.60): a
    constant, so early values never depend on later closes.

    >>> ts = pd.date_range("2024-01-01", periods=40, freq="1D", tz="UTC")
    >>> close = 100 * np.exp(0.02 * (np.arange(40) % 2))      # +-2 % daily moves: 38 % realised
    >>> iv = atm_iv_series(ts, close, "1d", ChainParams(iv_rv_premium=1.2))
    >>> float(iv[0]), round(float(iv[-1]), 3)
    (0.6, 0.459)
    """
    params = params or ChainParams()
    if timeframe not in BARS_PER_YEAR:
        raise choice_error("timeframe", timeframe, BARS_PER_YEAR)
    if iv_source not in IV_SOURCES:
        raise choice_error("iv_source", iv_source, IV_SOURCES)
    c = np.asarray(close, dtype=float)
    open_ns = _ns(ts)
    if open_ns.size != c.size:
        raise DataError(f"ts has {open_ns.size} bars but close has {c.size}; pass the same bars for both")
    bpy = BARS_PER_YEAR[timeframe]
    window = max(int(round(params.rv_window_days * bpy / 365.0)), 2)
    out = realized_vol(c, bpy, window) * params.iv_rv_premium
    if iv_source == "auto":
        iv_source = "dvol" if iv is not None and len(iv) else "realized"
    if iv_source == "dvol":
        if iv is None or not {"ts", "iv_ann"} <= set(iv.columns):
            raise DataError("iv_source='dvol' needs iv= a DataFrame with columns ts, iv_ann (see dvol_iv_frame)")
        known = iv[["ts", "iv_ann"]].dropna()
        known_ns = _ns(known["ts"])
        order = np.argsort(known_ns, kind="stable")
        known_ns, values = known_ns[order], known["iv_ann"].to_numpy(float)[order]
        close_ns = open_ns + BAR_LENGTH[timeframe].value
        pos = np.searchsorted(known_ns, close_ns, side="right") - 1
        out = np.where(pos >= 0, values[np.maximum(pos, 0)], out)
    out = np.where(np.isfinite(out), out, params.iv_default)
    return np.clip(out, params.iv_floor, params.iv_cap)


def dvol_iv_frame(dvol: pd.DataFrame) -> pd.DataFrame:
    """Deribit DVOL daily OHLC (`date`, `close` in vol points) -> (ts, iv_ann) with ts = the day's close time.

    The close of day d is known at d + 1 day 00:00 UTC, so that is its `ts`.

    >>> dvol_iv_frame(pd.DataFrame({"date": ["2024-01-08"], "close": [67.16]}))
                             ts  iv_ann
    0 2024-01-09 00:00:00+00:00  0.6716
    """
    if not {"date", "close"} <= set(dvol.columns):
        raise DataError("a DVOL table needs columns date and close (vol points, 47.5 = 47.5 %)")
    out = pd.DataFrame({
        "ts": pd.to_datetime(dvol["date"], utc=True) + pd.Timedelta(days=1),
        "iv_ann": dvol["close"].to_numpy(float) / 100.0,
    })
    return out.sort_values("ts").reset_index(drop=True)


def calibrate_iv_rv_premium(dvol: pd.DataFrame, daily: pd.DataFrame, window_days: int = 30) -> dict[str, float]:
    """Median DVOL / trailing realised vol, both as known at the same daily close (default `iv_rv_premium`).

    `daily` has `timestamp` (bar open, 00:00 UTC) and `close`; `dvol` as for `dvol_iv_frame`.
    """
    d = daily.sort_values("timestamp")
    rv = realized_vol(d["close"].to_numpy(float), 365, window_days)
    rv_at = pd.DataFrame({"ts": pd.to_datetime(d["timestamp"], utc=True) + pd.Timedelta(days=1), "rv": rv})
    m = rv_at.merge(dvol_iv_frame(dvol), on="ts").dropna()
    ratio = m["iv_ann"] / m["rv"]
    return {
        "iv_rv_premium": float(ratio.median()),
        "q25": float(ratio.quantile(0.25)),
        "q75": float(ratio.quantile(0.75)),
        "median_dvol": float(m["iv_ann"].median()),
        "median_rv": float(m["rv"].median()),
        "days": int(len(m)),
        "start": str(m["ts"].min().date()),
        "end": str(m["ts"].max().date()),
    }
