"""Candle frames: timeframes, date windows, validation (with gap reporting) and OHLCV resampling."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from covcall.errors import DataError, did_you_mean
from covcall.timeframes import BAR_LENGTH

# Bar length by timeframe name (the one table lives in covcall.timeframes).
TIMEFRAMES: dict[str, pd.Timedelta] = BAR_LENGTH
CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")


def check_timeframe(timeframe: str) -> pd.Timedelta:
    """The bar length of a timeframe, or a DataError listing the accepted ones.

    >>> check_timeframe("4h")
    Timedelta('0 days 04:00:00')
    """
    if timeframe not in TIMEFRAMES:
        raise DataError(
            f"unknown timeframe {timeframe!r}: use one of {', '.join(TIMEFRAMES)}"
            f"{did_you_mean(str(timeframe).lower(), TIMEFRAMES)}"
        )
    return TIMEFRAMES[timeframe]


def to_utc(value: Any, name: str = "date") -> pd.Timestamp:
    """A date or timestamp as a tz-aware UTC Timestamp (naive values are UTC).

    >>> to_utc("2024-01-02")
    Timestamp('2024-01-02 00:00:00+0000', tz='UTC')
    """
    if isinstance(value, pd.Timestamp) and value.tzinfo is not None:
        return value.tz_convert("UTC")
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"{name} {value!r} is not a date; expected YYYY-MM-DD or an ISO timestamp") from None
    if ts is pd.NaT or pd.isna(ts):
        raise DataError(f"{name} {value!r} is not a date; expected YYYY-MM-DD or an ISO timestamp")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def window(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end_exclusive) for inclusive dates: an `end` at midnight means the whole of that day.

    >>> window("2024-01-01", "2024-01-31")[1]
    Timestamp('2024-02-01 00:00:00+0000', tz='UTC')
    """
    lo = to_utc(start, "start")
    hi = to_utc(end, "end")
    if lo > hi:
        raise DataError(f"start {lo.date()} is after end {hi.date()}; swap them")
    end_excl = hi + pd.Timedelta(days=1) if hi == hi.normalize() else hi + pd.Timedelta(microseconds=1)
    return lo, end_excl


def empty_candles() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in CANDLE_COLUMNS})
    df["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return df


def normalize_candles(df: pd.DataFrame) -> pd.DataFrame:
    """Exactly the candle columns with the house dtypes (ns UTC ts, float64 prices), index reset."""
    out = df[list(CANDLE_COLUMNS)].copy().reset_index(drop=True)
    ts = pd.to_datetime(out["ts"], utc=True)
    out["ts"] = ts.astype("datetime64[ns, UTC]")
    for c in CANDLE_COLUMNS[1:]:
        out[c] = out[c].astype("float64")
    return out


def validate_candles(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """Check a candle frame and report gaps; never sorts, fills or drops.

    Raises DataError when columns are missing, ts is not strictly increasing, a value is NaN, a price is
    not positive, high < low, or bars are closer together than the timeframe. Missing bars are listed in
    `df.attrs["gaps"]` as (first_missing_ts, last_missing_ts) tuples of bar open times.
    """
    step = check_timeframe(timeframe)
    missing = [c for c in CANDLE_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"candles lack column(s) {', '.join(missing)}; have {', '.join(map(str, df.columns))}")
    if len(df) == 0:
        df.attrs["gaps"] = []
        return df
    ts = pd.to_datetime(df["ts"], utc=True)
    if ts.isna().any():
        raise DataError(f"{int(ts.isna().sum())} candle(s) have no timestamp")
    # Column by column: files can hold millions of bars, and one 2-D copy of them all is what costs memory.
    for c in CANDLE_COLUMNS[1:]:
        col = df[c].to_numpy(dtype="float64")
        if np.isnan(col).any():
            bad = df.index[np.isnan(col)]
            raise DataError(f"{len(bad)} candle(s) contain NaN, first at {ts.loc[bad[0]]}; drop or fill them "
                            "upstream")
    for c in _PRICES:
        col = df[c].to_numpy(dtype="float64")
        if (col <= 0).any():
            raise DataError(f"non-positive price in candle at {ts.iloc[int(np.argmax(col <= 0))]}; prices must be > 0")
    high_below_low = df["high"].to_numpy() < df["low"].to_numpy()
    if high_below_low.any():
        raise DataError(f"candle at {ts.iloc[int(np.argmax(high_below_low))]} has high < low")
    diffs = ts.diff().iloc[1:]
    if (diffs <= pd.Timedelta(0)).any():
        i = int(np.argmax((diffs <= pd.Timedelta(0)).to_numpy())) + 1
        word = "duplicate" if diffs.iloc[i - 1] == pd.Timedelta(0) else "out-of-order"
        raise DataError(f"{word} candle timestamp {ts.iloc[i]} (row {i}); candles must be sorted and unique")
    if (diffs < step).any():
        i = int(np.argmax((diffs < step).to_numpy())) + 1
        raise DataError(
            f"candles {ts.iloc[i - 1]} and {ts.iloc[i]} are closer than one {timeframe} bar; "
            f"is this data of a finer timeframe than {timeframe}?"
        )
    gaps: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for i in np.flatnonzero((diffs != step).to_numpy()) + 1:
        prev, nxt = ts.iloc[i - 1], ts.iloc[i]
        gaps.append((prev + step, nxt - step))
    df.attrs["gaps"] = gaps
    return df


def resample_candles(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """OHLCV of a finer series on `timeframe` bars aligned to 00:00 UTC, keeping only complete bars.

    >>> h = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC"),
    ...                   "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 1.0})
    >>> resample_candles(h, "4h")[["ts", "volume"]].to_dict("list")["volume"]
    [4.0, 4.0]
    """
    step = check_timeframe(timeframe)
    if len(df) == 0:
        return empty_candles()
    ts = pd.to_datetime(df["ts"], utc=True)
    fine = ts.diff().dropna()
    fine_step = fine.min() if len(fine) else step
    if fine_step > step:
        raise DataError(f"cannot resample {fine_step} bars to the finer timeframe {timeframe}")
    per_bar = int(step / fine_step)
    frame = df.assign(ts=ts).set_index("ts")
    grouped = frame.resample(step, origin="epoch", label="left", closed="left")
    out = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    out["n"] = grouped["close"].count()
    out = out[out["n"] == per_bar].drop(columns="n").reset_index()
    return normalize_candles(out)
