"""The synthetic market: determinism, regimes, plausible volatility/correlation, IV index, calibration."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.market import load_candles, load_iv
from covcall.market.synthetic import (
    SYNTHETIC_END,
    SYNTHETIC_START,
    _full_candles,
    _iv,
    _market,
    regime_labels,
    synthetic_candles,
    synthetic_iv,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def daily_log_returns(underlying: str, seed: int = 7) -> pd.Series:
    return np.log(synthetic_candles(underlying, "1d", seed=seed)["close"]).diff().dropna()


def test_full_span_hourly_and_fast() -> None:
    for fn in (_market, _full_candles, _iv):
        fn.cache_clear()
    t0 = time.perf_counter()
    h = synthetic_candles("BTC", "1h", seed=11)
    synthetic_candles("ETH", "1d", seed=11)
    assert time.perf_counter() - t0 < 1.0
    assert h["ts"].iloc[0] == SYNTHETIC_START and h["ts"].iloc[-1] == SYNTHETIC_END
    assert (h["ts"].diff().dropna() == pd.Timedelta(hours=1)).all()
    assert list(h.columns) == ["ts", "open", "high", "low", "close", "volume", "regime"]
    assert (h["high"] >= h[["open", "close"]].max(axis=1)).all()
    assert (h["low"] <= h[["open", "close"]].min(axis=1)).all()
    assert (h["low"] > 0).all()


def test_same_seed_identical_other_seed_different() -> None:
    a = synthetic_candles("BTC", "4h", seed=7)
    _full_candles.cache_clear()
    _market.cache_clear()
    b = synthetic_candles("BTC", "4h", seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = synthetic_candles("BTC", "4h", seed=8)
    assert not np.allclose(a["close"], c["close"])


def test_coarse_bars_are_resampled_hours() -> None:
    h = synthetic_candles("ETH", "1h", "2024-05-01", "2024-05-02")
    d = synthetic_candles("ETH", "1d", "2024-05-01", "2024-05-02")
    assert len(d) == 1 and len(h) == 24
    assert d["open"].iloc[0] == h["open"].iloc[0] and d["close"].iloc[0] == h["close"].iloc[-1]
    assert d["high"].iloc[0] == h["high"].max() and d["low"].iloc[0] == h["low"].min()
    assert d["volume"].iloc[0] == pytest.approx(h["volume"].sum())


def test_regime_labels_cover_every_bar_with_multiweek_segments() -> None:
    lab = regime_labels("BTC", "1d")
    assert len(lab) == len(synthetic_candles("BTC", "1d"))
    assert lab["regime"].notna().all()
    assert set(lab["regime"].astype(str)) == {"bull", "chop", "dump"}
    runs = (lab["regime"] != lab["regime"].shift()).cumsum()
    lengths = lab.groupby(runs).size()
    assert lengths.iloc[:-1].min() >= 10 and lengths.median() >= 14
    assert len(regime_labels("BTC", "1h")) == len(synthetic_candles("BTC", "1h"))


def test_plausible_levels_vol_and_correlation() -> None:
    btc, eth = daily_log_returns("BTC"), daily_log_returns("ETH")
    vol_btc, vol_eth = btc.std() * np.sqrt(365), eth.std() * np.sqrt(365)
    assert 0.35 < vol_btc < 1.10 and 0.35 < vol_eth < 1.10
    assert vol_eth > vol_btc
    assert 0.6 < btc.corr(eth) < 0.95
    b = synthetic_candles("BTC", "1d")
    e = synthetic_candles("ETH", "1d")
    assert 3000 < b["open"].iloc[0] < 5000 and 100 < e["open"].iloc[0] < 200
    assert b["close"].between(500, 1_000_000).all() and e["close"].between(10, 50_000).all()


def test_dump_regime_is_more_volatile_and_falls() -> None:
    d = synthetic_candles("BTC", "1d")
    r = np.log(d["close"]).diff()
    by = r.groupby(d["regime"], observed=True)
    assert by.std()["dump"] > by.std()["chop"]
    assert by.mean()["dump"] < 0 < by.mean()["bull"]


def test_synthetic_iv_is_as_of_and_tracks_realised_vol() -> None:
    iv = synthetic_iv("BTC")
    assert (iv["ts"].dt.hour == 0).all()
    d = synthetic_candles("BTC", "1d")
    rv = np.log(d["close"]).diff().rolling(30).std() * np.sqrt(365)
    # the value known at day t+1 00:00 uses closes up to day t only
    joined = pd.Series(rv.to_numpy(), index=d["ts"] + pd.Timedelta(days=1)).reindex(iv["ts"]).to_numpy()
    ratio = iv["iv_ann"].to_numpy() / joined
    assert 1.0 < np.nanmedian(ratio) < 1.2
    assert load_iv("ETH", "2024-01-01", "2024-01-31", source="synthetic")["iv_ann"].between(0.1, 3).all()


def test_load_candles_drops_regime_column() -> None:
    assert "regime" not in load_candles("BTC", "4h", "2024-01-01", "2024-01-02").columns


def test_calibration_against_real_daily_data() -> None:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent")
    real = {u: pd.read_csv(SHARED / f"{u}USDT_1d.csv", parse_dates=["timestamp"]).set_index("timestamp")
            .loc["2019-01-01":"2025-12-31", "close"] for u in ("BTC", "ETH")}
    rr = {u: np.log(c).diff().dropna() for u, c in real.items()}
    sr = {u: daily_log_returns(u) for u in ("BTC", "ETH")}
    for u in ("BTC", "ETH"):
        real_vol, syn_vol = rr[u].std() * np.sqrt(365), sr[u].std() * np.sqrt(365)
        assert abs(syn_vol - real_vol) < 0.15, (u, syn_vol, real_vol)
    assert abs(sr["BTC"].corr(sr["ETH"]) - rr["BTC"].corr(rr["ETH"])) < 0.1
