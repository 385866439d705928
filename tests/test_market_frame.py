"""Candle frames: validation, gaps, resampling, and load_candles/load_iv over synthetic and store sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from covcall.errors import DataError
from covcall.market import TIMEFRAMES, UNDERLYINGS, load_candles, load_iv
from covcall.market.frame import resample_candles, validate_candles, window
from covcall.store import Store


def hourly(n: int, start: str = "2024-01-01") -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="h", tz="UTC")
    o = 100.0 + np.arange(n)
    return pd.DataFrame({"ts": ts, "open": o, "high": o + 5, "low": o - 3, "close": o + 1,
                         "volume": np.arange(1.0, n + 1)})


def test_public_constants() -> None:
    assert list(TIMEFRAMES) == ["1h", "4h", "1d"]
    assert TIMEFRAMES["4h"] == pd.Timedelta(hours=4)
    assert UNDERLYINGS == ("BTC", "ETH")


def test_resample_hand_written_hours_to_exact_4h_bars() -> None:
    # 9 hours starting 01:00: the 00:00 bar is incomplete, 04:00 complete, 08:00 incomplete -> one bar
    h = hourly(12, "2024-01-01 01:00")
    out = resample_candles(h, "4h")
    assert out["ts"].tolist() == [pd.Timestamp("2024-01-01 04:00", tz="UTC"),
                                  pd.Timestamp("2024-01-01 08:00", tz="UTC")]
    first = out.iloc[0]
    # hours 04..07 are rows 3..6: open 103, high max(o+5)=111, low min(o-3)=100, close 106+1, volume 4+5+6+7
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (103, 111, 100, 107, 22)


def test_resample_to_daily_aligned_at_midnight() -> None:
    out = resample_candles(hourly(48), "1d")
    assert out["ts"].dt.hour.tolist() == [0, 0]
    assert out["volume"].tolist() == [sum(range(1, 25)), sum(range(25, 49))]


def test_validate_reports_exactly_the_missing_bar() -> None:
    h = hourly(6).drop(index=3).reset_index(drop=True)
    out = validate_candles(h, "1h")
    t = pd.Timestamp("2024-01-01 03:00", tz="UTC")
    assert out.attrs["gaps"] == [(t, t)]
    assert len(out) == 5  # nothing filled


def test_validate_multi_bar_gap() -> None:
    h = hourly(10).drop(index=[2, 3, 4]).reset_index(drop=True)
    assert validate_candles(h, "1h").attrs["gaps"] == [
        (pd.Timestamp("2024-01-01 02:00", tz="UTC"), pd.Timestamp("2024-01-01 04:00", tz="UTC"))]


@pytest.mark.parametrize("breaker, words", [
    (lambda d: d.iloc[::-1].reset_index(drop=True), "out-of-order"),
    (lambda d: pd.concat([d, d.iloc[[-1]]]).reset_index(drop=True), "duplicate"),
    (lambda d: d.assign(close=[np.nan] + d["close"].tolist()[1:]), "NaN"),
    (lambda d: d.assign(low=[-1.0] + d["low"].tolist()[1:]), "non-positive"),
    (lambda d: d.assign(high=[1.0] + d["high"].tolist()[1:]), "high < low"),
    (lambda d: d.drop(columns="volume"), "lack column"),
])
def test_validate_rejects_bad_frames(breaker, words: str) -> None:
    with pytest.raises(DataError, match=words):
        validate_candles(breaker(hourly(5)), "1h")


def test_validate_rejects_finer_data_than_timeframe() -> None:
    with pytest.raises(DataError, match="finer timeframe"):
        validate_candles(hourly(5), "4h")


def test_unknown_timeframe_lists_choices() -> None:
    with pytest.raises(DataError, match=r"use one of 1h, 4h, 1d \(did you mean '1d'\?\)"):
        load_candles("BTC", "1dd", "2024-01-01", "2024-01-02")


def test_window_inclusive_end_and_bad_dates() -> None:
    lo, hi = window("2024-01-01", "2024-01-01")
    assert hi - lo == pd.Timedelta(days=1)
    with pytest.raises(DataError, match="after end"):
        window("2024-02-01", "2024-01-01")
    with pytest.raises(DataError, match="not a date"):
        window("2024-13-01", "2024-01-01")


def test_load_candles_synthetic_shape_and_inclusive_end() -> None:
    df = load_candles("ETH", "1d", "2024-01-01", "2024-01-31")
    assert list(df.columns) == ["ts", "open", "high", "low", "close", "volume"]
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]"
    assert all(str(df[c].dtype) == "float64" for c in df.columns[1:])
    assert len(df) == 31 and df["ts"].iloc[-1] == pd.Timestamp("2024-01-31", tz="UTC")
    assert df.attrs["gaps"] == []
    assert len(load_candles("BTC", "1h", "2024-01-01", "2024-01-01")) == 24


def test_load_candles_synthetic_outside_span_is_actionable() -> None:
    with pytest.raises(DataError, match=r"synthetic covers 2019-01-01 .. 20[0-9-]+ \(the last complete UTC day\)"):
        load_candles("BTC", "1d", "2015-01-01", "2015-02-01")
    with pytest.raises(DataError, match="did you mean 'BTC'"):
        load_candles("BTCC", "1d", "2024-01-01", "2024-02-01")


def test_load_candles_empty_store_says_how_to_fix(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(DataError, match=r"no BTC 1d candles from store between 2024-01-01 and 2024-01-31; "
                                        r"import a CSV with `covcall data import"):
        load_candles("BTC", "1d", "2024-01-01", "2024-01-31", source="store", store=store)
    with pytest.raises(DataError, match="needs a store"):
        load_candles("BTC", "1d", "2024-01-01", "2024-01-31", source="store")


def test_store_prefers_csv_and_resamples_finer_series(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    h = hourly(48)
    store.write_candles("ccxt:binance", "BTC", "1h", h.assign(close=h["close"] * 2, high=h["high"] * 2))
    store.write_candles("csv", "BTC", "1h", h)
    got = load_candles("BTC", "1h", "2024-01-01", "2024-01-02", source="store", store=store)
    assert got["close"].tolist() == h["close"].tolist()  # csv wins
    daily = load_candles("BTC", "1d", "2024-01-01", "2024-01-02", source="store", store=store)
    assert daily["ts"].tolist() == [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC")]
    assert daily["open"].tolist() == [100.0, 124.0]
    assert daily["close"].tolist() == [124.0, 148.0]
    assert daily["volume"].tolist() == [300.0, 876.0]


def test_store_gap_reported_from_load(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.write_candles("csv", "SOL", "1h", hourly(6).drop(index=2))
    df = load_candles("SOL", "1h", "2024-01-01", "2024-01-01", source="store", store=store)
    t = pd.Timestamp("2024-01-01 02:00", tz="UTC")
    assert df.attrs["gaps"] == [(t, t)]


def test_load_iv_synthetic_includes_lookback_and_is_as_of() -> None:
    iv = load_iv("BTC", "2024-03-01", "2024-03-31")
    assert iv is not None and list(iv.columns) == ["ts", "iv_ann"]
    assert iv["ts"].iloc[0] <= pd.Timestamp("2024-03-01", tz="UTC") - pd.Timedelta(days=59)
    assert iv["ts"].iloc[-1] == pd.Timestamp("2024-03-31", tz="UTC")
    assert (iv["ts"].dt.hour == 0).all()
    assert 0.1 < iv["iv_ann"].median() < 2.0


def test_load_iv_store_prefers_csv_and_none_when_uncovered(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    assert load_iv("BTC", "2024-01-01", "2024-01-31", source="store", store=store) is None
    ts = pd.date_range("2024-01-01", periods=10, freq="D", tz="UTC")
    store.write_iv("ccxt:deribit", "BTC", pd.DataFrame({"ts": ts, "iv_ann": 0.6}))
    store.write_iv("csv", "BTC", pd.DataFrame({"ts": ts, "iv_ann": 0.5}))
    iv = load_iv("BTC", "2024-01-05", "2024-01-31", source="store", store=store)
    assert iv is not None and len(iv) == 10 and (iv["iv_ann"] == 0.5).all()
    assert load_iv("BTC", "2025-06-01", "2025-06-30", source="store", store=store) is None
