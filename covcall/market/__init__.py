"""Market data: one entry point (`load_candles`, `load_iv`) over synthetic, cached (DuckDB) and ccxt sources."""

from __future__ import annotations

from typing import Any

import pandas as pd

from covcall.errors import DataError, did_you_mean
from covcall.market.frame import (
    TIMEFRAMES,
    check_timeframe,
    empty_candles,
    normalize_candles,
    resample_candles,
    validate_candles,
    window,
)
from covcall.market.synthetic import SYNTHETIC_START, synthetic_candles, synthetic_end, synthetic_iv
from covcall.store import Store

UNDERLYINGS = ("BTC", "ETH")
SOURCES = ("synthetic", "store", "ccxt")
IV_LOOKBACK = pd.Timedelta(days=60)

__all__ = [
    "TIMEFRAMES", "UNDERLYINGS", "SOURCES", "load_candles", "load_iv", "validate_candles", "resample_candles",
    "store_candle_sources", "one_index",
]


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}: use one of {', '.join(SOURCES)}"
                        f"{did_you_mean(str(source), SOURCES)}")


def _need_store(store: Store | None, source: str) -> Store:
    if store is None:
        raise DataError(f"source {source!r} needs a store (pass store=Store(settings.duckdb_path))")
    return store


def store_candle_sources(store: Store, underlying: str) -> dict[str, list[str]]:
    """{timeframe: [sources]} cached for an underlying, 'csv' first, then exchange sources by name."""
    series = store.list_series()
    rows = series[(series["kind"] == "candles") & (series["underlying"] == underlying)]
    out: dict[str, list[str]] = {}
    for tf, group in rows.groupby("timeframe"):
        out[str(tf)] = sorted(group["source"].astype(str), key=lambda s: (s != "csv", s))
    return out


def _from_store(store: Store, underlying: str, timeframe: str, lo: pd.Timestamp, hi: pd.Timestamp,
                source: str | None = None) -> pd.DataFrame:
    cached = store_candle_sources(store, underlying)
    if source is not None:
        return store.read_candles(source, underlying, timeframe, lo, hi)
    if timeframe in cached:
        return store.read_candles(cached[timeframe][0], underlying, timeframe, lo, hi)
    step = TIMEFRAMES[timeframe]
    finer = [tf for tf in cached if tf in TIMEFRAMES and TIMEFRAMES[tf] < step and step % TIMEFRAMES[tf] == pd.Timedelta(0)]
    if finer:
        # The coarsest finer series is the cheapest to resample.
        tf = max(finer, key=lambda t: TIMEFRAMES[t])
        fine = store.read_candles(cached[tf][0], underlying, tf, lo, hi)
        return resample_candles(fine, timeframe)
    return empty_candles()


def load_candles(underlying: str, timeframe: str, start: Any, end: Any, *, source: str = "synthetic",
                 store: Store | None = None, seed: int = 7, exchange: str = "binance") -> pd.DataFrame:
    """OHLCV bars (ts = UTC bar open) with start <= ts <= end of day `end`, validated, gaps in attrs["gaps"].

    source: "synthetic" (offline, seeded), "store" (cached in DuckDB: an imported CSV first, else any exchange
    series; a finer cached timeframe is resampled when needed) or "ccxt" (fetch the missing spans from
    `exchange` into the store, then read them back).
    """
    check_timeframe(timeframe)
    _check_source(source)
    lo, hi = window(start, end)
    if source == "synthetic":
        if underlying not in UNDERLYINGS:
            raise DataError(
                f"the synthetic market has no {underlying!r}: use one of {', '.join(UNDERLYINGS)}"
                f"{did_you_mean(str(underlying), UNDERLYINGS)}, or import a CSV with `covcall data import`"
            )
        df = synthetic_candles(underlying, timeframe, lo, hi, seed=seed).drop(columns="regime")
        where = (f"synthetic covers {SYNTHETIC_START.date()} .. {synthetic_end().date()} (the last complete "
                 "UTC day); "
                 "pick dates inside that span")
    elif source == "store":
        df = _from_store(_need_store(store, source), underlying, timeframe, lo, hi)
        where = (f"import a CSV with `covcall data import --csv FILE --underlying {underlying} "
                 f"--timeframe {timeframe}`, fetch with `covcall data fetch`, or use source synthetic")
    else:
        from covcall.market.exchange import fetch_candles

        st = _need_store(store, source)
        fetch_candles(st, underlying, timeframe, lo, hi, exchange=exchange)
        df = _from_store(st, underlying, timeframe, lo, hi, source=f"ccxt:{exchange}")
        where = f"{exchange} returned nothing for that window; check the dates or use source synthetic"
    if len(df) == 0:
        last = (hi - pd.Timedelta(microseconds=1)).date()
        raise DataError(f"no {underlying} {timeframe} candles from {source} between {lo.date()} and {last}; {where}")
    df = normalize_candles(df)
    return validate_candles(df, timeframe)


def one_index(iv: pd.DataFrame) -> pd.DataFrame:
    """Stored IV rows of one underlying (columns ts, iv_ann, source) as one index: every source is the same
    index (Deribit's DVOL, imported or downloaded, daily or hourly), so at each time the value known from any
    source counts, and where two sources stamp the same time an imported CSV wins, then Deribit.

    >>> t = pd.to_datetime(["2024-01-02 00:00", "2024-01-02 00:00", "2024-01-02 13:00"], utc=True)
    >>> one_index(pd.DataFrame({"ts": t, "iv_ann": [0.5, 0.6, 0.55], "source": ["ccxt:deribit", "csv",
    ...                                                                      "ccxt:deribit"]}))["iv_ann"].tolist()
    [0.6, 0.55]
    """
    if iv.empty:
        return iv[["ts", "iv_ann"]].reset_index(drop=True)
    rank = iv["source"].map(lambda s: (s != "csv", s != "ccxt:deribit", s))
    picked = iv.assign(_rank=rank).sort_values(["ts", "_rank"]).drop_duplicates("ts", keep="first")
    return picked[["ts", "iv_ann"]].reset_index(drop=True)


def load_iv(underlying: str, start: Any, end: Any, *, source: str = "synthetic", store: Store | None = None,
            seed: int = 7) -> pd.DataFrame | None:
    """Implied-vol index (ts = when the value is known, iv_ann fraction) from 60 days before start to end.

    None when nothing covers the window (callers then fall back to a realised-vol proxy).
    """
    _check_source(source)
    lo, hi = window(start, end)
    first = lo - IV_LOOKBACK
    if source == "synthetic":
        if underlying not in UNDERLYINGS:
            return None
        iv = synthetic_iv(underlying, seed=seed)
    else:
        iv = one_index(_need_store(store, source).read_iv(underlying, start=first, end=hi))
    if len(iv) == 0:
        return None
    iv = iv.assign(ts=pd.to_datetime(iv["ts"], utc=True))
    iv = iv[(iv["ts"] >= first) & (iv["ts"] < hi)]
    if len(iv) == 0:
        return None
    out = iv[["ts", "iv_ann"]].reset_index(drop=True)
    out["ts"] = pd.to_datetime(out["ts"], utc=True).astype("datetime64[ns, UTC]")
    out["iv_ann"] = out["iv_ann"].astype("float64")
    return out
