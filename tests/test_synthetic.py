"""The synthetic market: determinism, regimes, plausible volatility/correlation, IV index, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.market import load_candles, load_iv
from covcall.market.stats import daily_figures
from covcall.market.synthetic import (
    SYNTHETIC_START,
    _full_candles,
    _iv,
    _market,
    regime_labels,
    synthetic_candles,
    synthetic_end,
    synthetic_iv,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def daily_log_returns(underlying: str, seed: int = 7) -> pd.Series:
    return np.log(synthetic_candles(underlying, "1d", seed=seed)["close"]).diff().dropna()


def test_full_span_hourly_up_to_the_last_complete_day() -> None:
    h = synthetic_candles("BTC", "1h", seed=11)
    assert h["ts"].iloc[0] == SYNTHETIC_START and h["ts"].iloc[-1] == synthetic_end()
    assert h["ts"].iloc[-1] < pd.Timestamp.now(tz="UTC").normalize()  # never in the future
    assert (h["ts"].diff().dropna() == pd.Timedelta(hours=1)).all()
    assert list(h.columns) == ["ts", "open", "high", "low", "close", "volume", "regime"]
    assert (h["high"] >= h[["open", "close"]].max(axis=1)).all()
    assert (h["low"] <= h[["open", "close"]].min(axis=1)).all()
    assert (h["low"] > 0).all()


def test_the_calendar_end_never_changes_the_prices() -> None:
    early = synthetic_candles("BTC", "1h", seed=7, now=pd.Timestamp("2025-03-01 10:00", tz="UTC"))
    late = synthetic_candles("BTC", "1h", seed=7, now=pd.Timestamp("2026-11-22 14:00", tz="UTC"))
    assert early["ts"].iloc[-1] == pd.Timestamp("2025-02-28 23:00", tz="UTC")
    pd.testing.assert_frame_equal(early, late.iloc[:len(early)])
    iv = synthetic_iv("BTC", now=pd.Timestamp("2025-03-01 10:00", tz="UTC"))
    assert iv["ts"].iloc[-1] == pd.Timestamp("2025-03-01", tz="UTC")  # the 02-28 close, known at midnight


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


def test_synthetic_iv_is_known_at_its_time_and_priced_above_later_realised_vol() -> None:
    iv = synthetic_iv("BTC")
    assert (iv["ts"].dt.hour == 0).all()
    # no look-ahead: the value known at day t+1 00:00 is the same whatever the path does after day t
    _market.cache_clear(), _full_candles.cache_clear(), _iv.cache_clear()
    d = synthetic_candles("BTC", "1d")
    figures = daily_figures(pd.Series(d["close"].to_numpy(), index=d["ts"]).loc["2019":"2025"],
                            pd.Series(iv["iv_ann"].to_numpy(), index=iv["ts"]).loc["2019":"2025"])
    assert 1.15 <= figures["iv_over_next_rv30_mean"] <= 1.30  # real BTC 1.25 (mean IV / next-30-day RV)
    assert figures["share_iv_above_next_rv30"] > 0.6  # real BTC 73 %
    assert load_iv("ETH", "2024-01-01", "2024-01-31", source="synthetic")["iv_ann"].between(0.1, 3).all()


def test_iv_uses_nothing_after_its_day() -> None:
    """Perturbing the noise that drives days after t leaves every IV value known by t unchanged."""
    from covcall.market import synthetic as sy

    base = sy._iv("BTC", 7)
    m = sy._market(7)
    cut = 1500
    saved = {k: v.copy() for k, v in m.items()}
    try:
        for k in ("BTC_open", "BTC_high", "BTC_low", "BTC_close", "BTC_volume"):
            m[k] = np.concatenate([m[k][:(cut + 1) * 24], m[k][(cut + 1) * 24:] * 1.5])
        m["BTC_sigma_day"] = np.concatenate([m["BTC_sigma_day"][:cut + 1], m["BTC_sigma_day"][cut + 1:] * 2.0])
        sy._full_candles.cache_clear(), sy._iv.cache_clear()
        moved = sy._iv("BTC", 7)
    finally:
        m.update(saved)
        sy._market.cache_clear()
        sy._full_candles.cache_clear(), sy._iv.cache_clear()
    known = base["ts"] <= sy.SYNTHETIC_START + pd.Timedelta(days=cut + 1)
    pd.testing.assert_series_equal(base.loc[known, "iv_ann"], moved.loc[known, "iv_ann"])
    assert not np.allclose(base.loc[~known, "iv_ann"].to_numpy()[:50], moved.loc[~known, "iv_ann"].to_numpy()[:50])


def test_fat_tails_and_clustering_on_the_default_seed() -> None:
    d = synthetic_candles("BTC", "1d")
    f = daily_figures(pd.Series(d["close"].to_numpy(), index=d["ts"]).loc["2019":"2025"])
    assert f["excess_kurtosis"] >= 12  # real BTC 23
    assert f["worst_day"] < -0.3  # real BTC -40 % (2020-03-12)
    assert 0.05 < f["abs_return_autocorr_lag5"] < 0.2  # real BTC 0.11


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


def test_compare_synthetic_sets_the_stored_data_beside_the_synthetic_market(db, capsys) -> None:
    """`covcall data compare-synthetic --store`: the database's own daily candles and IV index beside the
    synthetic market. Stored here: the synthetic BTC market itself, so both columns must agree exactly."""
    import json

    from covcall.cli import main
    from covcall.market.synthetic import synthetic_candles, synthetic_iv
    from covcall.store import Store

    store = Store(db)
    store.write_candles("csv", "BTC", "1d", synthetic_candles("BTC", "1d", "2018-10-01", "2026-01-02", seed=7))
    store.write_iv("csv", "BTC", synthetic_iv("BTC", seed=7))
    assert main(["data", "compare-synthetic", "--store", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"stored BTC", "synthetic BTC seed 7", "synthetic ETH seed 7"}  # no ETH stored
    for figure, value in out["synthetic BTC seed 7"].items():
        if figure != "btc_eth_correlation":  # needs both coins stored
            assert out["stored BTC"][figure] == pytest.approx(value, rel=1e-9), figure
    assert out["stored BTC"]["excess_kurtosis"] > 6  # fat tails, the figure docs/market.md is about
    assert main(["data", "compare-synthetic", "--seeds", "7,x"]) == 2
    assert "whole numbers" in capsys.readouterr().err
