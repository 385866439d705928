"""Realised vol and ATM IV series: known answers and no look-ahead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.chain import ChainParams
from covcall.errors import DataError, SpecError
from covcall.volatility import (
    BARS_PER_YEAR,
    atm_iv_series,
    calibrate_iv_rv_premium,
    dvol_iv_frame,
    realized_vol,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _walk(n: int, seed: int = 0, sigma: float = 0.03) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, sigma, n)))


def test_realized_vol_known_answer() -> None:
    close = 100 * np.exp(0.01 * (np.arange(60) % 2))  # |log return| = 1 % every day
    rv = realized_vol(close, 365, 30)
    assert np.isnan(rv[:15]).all()  # needs 15 returns = window / 2
    np.testing.assert_allclose(rv[15:], 0.01 * np.sqrt(365))
    assert BARS_PER_YEAR == {"1h": 8760, "4h": 2190, "1d": 365}


def test_realized_vol_matches_trailing_rms_loop() -> None:
    close = _walk(300)
    rv = realized_vol(close, 2190, 40)
    r = np.diff(np.log(close))
    for i in (20, 40, 41, 150, 299):
        window = r[max(i - 40, 0):i]
        assert rv[i] == pytest.approx(np.sqrt(np.mean(window**2) * 2190))


def test_realized_vol_has_no_look_ahead() -> None:
    close = _walk(200)
    base = realized_vol(close, 365, 30)
    for i in (10, 50, 150):
        changed = close.copy()
        changed[i + 1:] *= np.exp(np.random.default_rng(i).normal(0, 0.2, 200 - i - 1))
        np.testing.assert_array_equal(realized_vol(changed, 365, 30)[: i + 1], base[: i + 1])


def test_atm_iv_realized_is_premium_times_rv_with_clip_and_default() -> None:
    ts = pd.date_range("2024-01-01", periods=120, freq="4h", tz="UTC")
    close = _walk(120, sigma=0.01)
    p = ChainParams(iv_rv_premium=1.2, rv_window_days=10)
    iv = atm_iv_series(ts, close, "4h", p)
    rv = realized_vol(close, 2190, 60)
    ok = np.isfinite(rv)
    np.testing.assert_allclose(iv[ok], np.clip(rv[ok] * 1.2, p.iv_floor, p.iv_cap))
    assert (iv[~ok] == p.iv_default).all() and (~ok).sum() == 30
    flat = atm_iv_series(ts, np.full(120, 100.0), "4h", p)
    assert (flat[~ok] == p.iv_default).all() and (flat[ok] == p.iv_floor).all()


def test_atm_iv_no_look_ahead() -> None:
    ts = pd.date_range("2023-01-01", periods=300, freq="1D", tz="UTC")
    close = _walk(300, seed=4)
    iv_table = pd.DataFrame({"ts": pd.date_range("2023-06-01", periods=100, freq="1D", tz="UTC"),
                             "iv_ann": np.linspace(0.4, 0.9, 100)})
    for source in ("realized", "dvol"):
        base = atm_iv_series(ts, close, "1d", ChainParams(), iv=iv_table, iv_source=source)
        for i in (5, 100, 200):
            changed = close.copy()
            changed[i + 1:] *= 1.5
            later_iv = iv_table.assign(iv_ann=np.where(iv_table["ts"] > ts[i] + pd.Timedelta(days=1), 2.0, iv_table["iv_ann"]))
            again = atm_iv_series(ts, changed, "1d", ChainParams(), iv=later_iv, iv_source=source)
            np.testing.assert_array_equal(again[: i + 1], base[: i + 1])


def test_dvol_used_only_once_known_else_realized_fallback() -> None:
    ts = pd.date_range("2024-01-01", periods=60, freq="1D", tz="UTC")  # bar opens; closes 1 day later
    close = _walk(60, seed=5)
    p = ChainParams()
    table = pd.DataFrame({"ts": pd.to_datetime(["2024-02-01 00:00:00", "2024-02-01 00:00:01", "2024-02-10 12:00:00"], utc=True),
                          "iv_ann": [0.5, 0.7, 0.9]})
    iv = atm_iv_series(ts, close, "1d", p, iv=table, iv_source="dvol")
    realized = atm_iv_series(ts, close, "1d", p)
    jan31 = 30  # bar opening 2024-01-31 closes 2024-02-01 00:00: the 0.5 is known, the 0.7 not yet
    np.testing.assert_array_equal(iv[:jan31], realized[:jan31])
    assert iv[jan31] == 0.5
    assert (iv[jan31 + 1: 40] == 0.7).all()  # bar 2024-02-09 closes 02-10 00:00, before 12:00
    assert (iv[40:] == 0.9).all()


def test_atm_iv_bad_input_errors() -> None:
    ts = pd.date_range("2024-01-01", periods=5, freq="1D", tz="UTC")
    with pytest.raises(SpecError, match="did you mean .4h."):
        atm_iv_series(ts, np.ones(5), "4hr", ChainParams())
    with pytest.raises(SpecError, match="iv_source"):
        atm_iv_series(ts, np.ones(5), "1d", ChainParams(), iv_source="dvl")
    with pytest.raises(DataError, match="columns ts, iv_ann"):
        atm_iv_series(ts, np.ones(5), "1d", ChainParams(), iv_source="dvol")
    with pytest.raises(DataError, match="same bars"):
        atm_iv_series(ts, np.ones(4), "1d", ChainParams())


@pytest.mark.realdata
def test_default_premium_is_btc_dvol_over_realized() -> None:
    if not (DATA / "btc_dvol.csv").exists():
        pytest.skip("../shared/data is absent")
    fit = calibrate_iv_rv_premium(pd.read_csv(DATA / "btc_dvol.csv"), pd.read_csv(DATA / "BTCUSDT_1d.csv"))
    assert fit["iv_rv_premium"] == pytest.approx(ChainParams().iv_rv_premium, abs=0.01)
    assert fit["days"] > 1500 and fit["start"] == "2021-03-25"
    frame = dvol_iv_frame(pd.read_csv(DATA / "btc_dvol.csv"))
    assert frame["ts"].is_monotonic_increasing
    assert frame.loc[frame["ts"] == pd.Timestamp("2024-01-09", tz="UTC"), "iv_ann"].item() == pytest.approx(0.6716)
