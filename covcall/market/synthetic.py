"""Synthetic BTC/ETH market: a seeded regime-switching hourly path from 2019 and a DVOL-like IV index."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from covcall.errors import DataError, did_you_mean
from covcall.market.frame import check_timeframe, normalize_candles, to_utc

SYNTHETIC_START = pd.Timestamp("2019-01-01", tz="UTC")
# The path is always generated to this horizon, so a seed gives the same prices whatever today is; what is shown
# ends at the last complete UTC day (`synthetic_end`), never in the future.
_HORIZON = pd.Timestamp("2030-12-31 23:00", tz="UTC")
SYNTHETIC_UNDERLYINGS = ("BTC", "ETH")
REGIMES = ("bull", "chop", "dump")

_HOURS_PER_YEAR = 24 * 365
_N_DAYS = (_HORIZON.normalize() - SYNTHETIC_START).days + 1
_START_PRICE = {"BTC": 3700.0, "ETH": 131.0}
_BASE_VOLUME = {"BTC": 1500.0, "ETH": 20000.0}  # coins per hour
# Per regime: BTC log drift per year, BTC annual vol, jumps per year, mean jump size, duration (mean, min) days.
_DRIFT = np.array([1.2, 0.0, -1.6])
_VOL = np.array([0.58, 0.45, 0.9])
_JUMPS_PER_YEAR = np.array([2.0, 1.5, 5.0])
_JUMP_MEAN = np.array([0.01, -0.005, -0.04])
_JUMP_SD = 0.07
# Rare crash hours (a few per decade outside dumps) give daily returns their fat left tail.
_CRASHES_PER_YEAR = np.array([0.1, 0.2, 1.5])
_DURATION = {0: (70.0, 21), 1: (45.0, 14), 2: (30.0, 10)}
_TRANSITIONS = np.array([[0.0, 0.65, 0.35], [0.55, 0.0, 0.45], [0.35, 0.65, 0.0]])
# BTC wanders around a 4k -> ~90k log-trend; regime odds lean against large deviations to keep levels plausible.
_TREND_PER_YEAR = np.log(90000 / 3700) / 8.0
_TILT = 2.0
_ETH_VOL_RATIO = 1.3
_ETH_RHO = 0.84
_ETH_RATIO_KAPPA = 1.5  # per year, mean reversion of log(ETH/BTC) to its start
_SV_PHI = 0.97
_SV_SHOCK = 0.06
# Rare crash days (a whole day's fall over a few hours, as 2020-03-12) and squeeze days give daily returns the fat
# tails option sellers meet: about one crash every two and a half years and one squeeze every three.
_CRASH_DAYS_PER_YEAR = 0.45
_CRASH_MIN, _CRASH_SCALE = 0.12, 0.12  # log fall = min + exponential(scale)
_SQUEEZE_DAYS_PER_YEAR = 0.3
_SQUEEZE_MIN, _SQUEEZE_SCALE = 0.08, 0.06
_CRASH_HOURS = 4
_CRASH_GAP_SHAPE = 4.0
_CRASH_VOL_BOOST = 0.5  # log-vol jump after a crash: turbulence clusters after shocks
_DRIFT_COMPENSATION = _CRASH_DAYS_PER_YEAR * (_CRASH_MIN + _CRASH_SCALE) - _SQUEEZE_DAYS_PER_YEAR * (
    _SQUEEZE_MIN + _SQUEEZE_SCALE)
# The IV index prices the vol the market expects (its own vol state and recent realised vol) with a premium, as
# option sellers are paid for: mean IV / next-30-day realised about 1.2, like real BTC.
_IV_PREMIUM = 1.18
_IV_STATE_WEIGHT = 0.6
_IV_NOISE = 0.06


def _check_underlying(underlying: str) -> str:
    if underlying not in SYNTHETIC_UNDERLYINGS:
        raise DataError(
            f"the synthetic market has no {underlying!r}: use one of {', '.join(SYNTHETIC_UNDERLYINGS)}"
            f"{did_you_mean(str(underlying), SYNTHETIC_UNDERLYINGS)}, or import a CSV with `covcall data import`"
        )
    return underlying


@lru_cache(maxsize=4)
def _market(seed: int) -> dict[str, np.ndarray]:
    """The whole hourly path of both underlyings for one seed (every array has one value per hour)."""
    rng = np.random.default_rng(seed)
    n_days = _N_DAYS
    n_hours = n_days * 24
    # All noise is drawn up front (fixed order -> deterministic); regimes are then chosen segment by segment.
    sv_shocks = rng.normal(0.0, _SV_SHOCK, n_days)
    t_df = 4.0
    z = rng.standard_t(t_df, (2, n_hours)) / np.sqrt(t_df / (t_df - 2))
    jump_u = rng.random(n_hours)
    jump_z = rng.normal(0.0, 1.0, n_hours)
    crash_u = rng.random(n_hours)
    crash_z = np.abs(rng.normal(0.0, 1.0, n_hours))
    seg_u = rng.random(n_days)
    seg_len = rng.gamma(2.0, 1.0, n_days)
    # Crashes come about once a market cycle: a renewal process with gamma gaps (less clumped than Poisson), so
    # every seed meets a few of them rather than none or many.
    gaps = rng.gamma(_CRASH_GAP_SHAPE, 365.0 / _CRASH_DAYS_PER_YEAR / _CRASH_GAP_SHAPE, 64)
    crash_days = np.cumsum(gaps) - rng.random() * gaps[0]
    crash_days = crash_days[(crash_days >= 0) & (crash_days < n_days)].astype(int)
    crash_size = _CRASH_MIN + rng.exponential(_CRASH_SCALE, n_days)
    squeeze_day_u = rng.random(n_days)
    squeeze_size = _SQUEEZE_MIN + rng.exponential(_SQUEEZE_SCALE, n_days)
    shock_hour = rng.integers(0, 24 - _CRASH_HOURS, n_days)
    crash_day = np.zeros(n_days, dtype=bool)
    crash_day[crash_days] = True
    squeeze_day = ~crash_day & (squeeze_day_u < _SQUEEZE_DAYS_PER_YEAR / 365.0)
    day_shock = np.where(crash_day, -crash_size, np.where(squeeze_day, squeeze_size, 0.0))
    shock_h = np.zeros(n_days * 24)
    for d in np.flatnonzero(day_shock):
        h0 = d * 24 + shock_hour[d]
        shock_h[h0:h0 + _CRASH_HOURS] = day_shock[d] / _CRASH_HOURS

    # Slowly varying volatility multiplier (daily AR(1) in logs) gives clustering and fat daily tails.
    sv = np.empty(n_days)
    sv[0] = 0.0
    for i in range(1, n_days):
        sv[i] = _SV_PHI * sv[i - 1] + sv_shocks[i] + (_CRASH_VOL_BOOST if crash_day[i - 1] else 0.0)
    vol_mult = np.repeat(np.exp(sv - 0.5 * _SV_SHOCK**2 / (1 - _SV_PHI**2)), 24)
    z_btc = z[0]
    z_eth = _ETH_RHO * z[0] + np.sqrt(1 - _ETH_RHO**2) * z[1]

    regime = np.empty(n_hours, dtype=np.int8)
    r_btc = np.empty(n_hours)
    r_eth = np.empty(n_hours)
    sigma_h = np.empty(n_hours)
    day, state, k = 0, 1, 0
    log_btc, log_ratio = 0.0, 0.0
    while day < n_days:
        dev = log_btc - _TREND_PER_YEAR * day / 365.0
        w = _TRANSITIONS[state] * np.exp(np.array([-_TILT * dev, 0.0, _TILT * dev]))
        state = int(np.searchsorted(np.cumsum(w / w.sum()), seg_u[k]))
        mean, low = _DURATION[state]
        length = min(max(low, int(round(seg_len[k] * mean / 2.0))), n_days - day)
        h = slice(day * 24, (day + length) * 24)
        s = _VOL[state] * vol_mult[h] / np.sqrt(_HOURS_PER_YEAR)
        jump = np.where(jump_u[h] < _JUMPS_PER_YEAR[state] / _HOURS_PER_YEAR,
                        _JUMP_MEAN[state] + _JUMP_SD * jump_z[h], 0.0)
        jump -= np.where(crash_u[h] < _CRASHES_PER_YEAR[state] / _HOURS_PER_YEAR, 0.08 + 0.08 * crash_z[h], 0.0)
        drift = (_DRIFT[state] + _DRIFT_COMPENSATION) / _HOURS_PER_YEAR
        rb = drift - 0.5 * s**2 + s * z_btc[h] + jump + shock_h[h]
        se = s * _ETH_VOL_RATIO
        # log(ETH/BTC) is pulled back towards its start so the pair stays plausible over eight years.
        pull = -_ETH_RATIO_KAPPA * log_ratio / _HOURS_PER_YEAR
        re_ = 1.1 * drift + pull - 0.5 * se**2 + se * z_eth[h] + 1.3 * (jump + shock_h[h])
        regime[h], r_btc[h], r_eth[h], sigma_h[h] = state, rb, re_, s
        log_btc += rb.sum()
        log_ratio += re_.sum() - rb.sum()
        day += length
        k += 1
    sigma_e = sigma_h * _ETH_VOL_RATIO

    out: dict[str, np.ndarray] = {"regime": regime,
                                  "BTC_sigma_day": sigma_h.reshape(-1, 24).mean(1) * np.sqrt(_HOURS_PER_YEAR),
                                  "ETH_sigma_day": sigma_e.reshape(-1, 24).mean(1) * np.sqrt(_HOURS_PER_YEAR)}
    for name, r, s in (("BTC", r_btc, sigma_h), ("ETH", r_eth, sigma_e)):
        close = _START_PRICE[name] * np.exp(np.cumsum(r))
        open_ = np.concatenate([[_START_PRICE[name]], close[:-1]])
        wick = np.abs(rng.normal(0.0, 0.6, (2, n_hours))) * s
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        volume = _BASE_VOLUME[name] * np.exp(rng.normal(0.0, 0.35, n_hours)) * (1.0 + np.abs(r) / s)
        out[f"{name}_open"], out[f"{name}_high"], out[f"{name}_low"] = open_, high, low
        out[f"{name}_close"], out[f"{name}_volume"] = close, volume
        out[f"{name}_iv_noise"] = np.exp(rng.normal(0.0, _IV_NOISE, n_days))
    return out


@lru_cache(maxsize=16)
def _full_candles(underlying: str, timeframe: str, seed: int) -> pd.DataFrame:
    step = check_timeframe(timeframe)
    m = _market(seed)
    per = int(step / pd.Timedelta(hours=1))
    u = underlying

    def agg(a: np.ndarray, how: str) -> np.ndarray:
        b = a.reshape(-1, per)
        return {"first": b[:, 0], "last": b[:, -1], "max": b.max(1), "min": b.min(1), "sum": b.sum(1)}[how]

    ts = pd.date_range(SYNTHETIC_START, _HORIZON.normalize() + pd.Timedelta(days=1), freq=step,
                       inclusive="left")
    df = pd.DataFrame({
        "ts": ts, "open": agg(m[f"{u}_open"], "first"), "high": agg(m[f"{u}_high"], "max"),
        "low": agg(m[f"{u}_low"], "min"), "close": agg(m[f"{u}_close"], "last"),
        "volume": agg(m[f"{u}_volume"], "sum"),
    })
    df = normalize_candles(df)
    # Regimes are whole days, so every 1h/4h/1d bar lies inside one regime.
    df["regime"] = pd.Categorical.from_codes(m["regime"].reshape(-1, per)[:, 0], categories=list(REGIMES))
    return df


def synthetic_end(now: pd.Timestamp | None = None) -> pd.Timestamp:
    """The last hour of the synthetic calendar: the end of the last complete UTC day before `now`.

    Like an exchange's history, the synthetic market stops at the present: `now` defaults to the wall clock
    (the only clock read in covcall's data layer). The prices themselves never depend on it.

    >>> synthetic_end(pd.Timestamp("2026-11-22 14:03", tz="UTC"))
    Timestamp('2026-11-21 23:00:00+0000', tz='UTC')
    """
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    return min(now.normalize() - pd.Timedelta(hours=1), _HORIZON)


def synthetic_candles(underlying: str, timeframe: str = "1h", start=None, end=None, seed: int = 7,
                      now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Synthetic OHLCV (+ `regime`) with start <= ts < end (None: the whole calendar up to `synthetic_end(now)`)."""
    _check_underlying(underlying)
    df = _full_candles(underlying, timeframe, int(seed))
    mask = (df["ts"] <= synthetic_end(now)).to_numpy().copy()
    if start is not None:
        mask &= (df["ts"] >= to_utc(start, "start")).to_numpy()
    if end is not None:
        mask &= (df["ts"] < to_utc(end, "end")).to_numpy()
    out = df.loc[mask].reset_index(drop=True)
    out.attrs = {}
    return out


def regime_labels(underlying: str, timeframe: str = "1d", seed: int = 7) -> pd.DataFrame:
    """The regime (bull/chop/dump) of every synthetic bar over the full span: columns ts, regime."""
    return synthetic_candles(underlying, timeframe, seed=seed)[["ts", "regime"]]


@lru_cache(maxsize=8)
def _iv(underlying: str, seed: int) -> pd.DataFrame:
    """IV of day t, known at the end of day t: the premium x a blend of the market's vol state and trailing
    30-day realised vol (both known by then), with noise. Nothing after day t enters."""
    m = _market(seed)
    daily = _full_candles(underlying, "1d", seed)
    r = np.log(daily["close"]).diff()
    rv = (r.rolling(30, min_periods=7).std() * np.sqrt(365)).to_numpy()
    state = m[f"{underlying}_sigma_day"]
    blend = np.sqrt(_IV_STATE_WEIGHT * state**2 + (1 - _IV_STATE_WEIGHT) * rv**2)
    iv = _IV_PREMIUM * blend * m[f"{underlying}_iv_noise"]
    df = pd.DataFrame({"ts": daily["ts"] + pd.Timedelta(days=1), "iv_ann": iv.astype("float64")})
    return df.dropna().reset_index(drop=True)


def synthetic_iv(underlying: str, seed: int = 7, now: pd.Timestamp | None = None) -> pd.DataFrame:
    """Daily DVOL-like index, stamped when known (next day 00:00), up to the end of the synthetic calendar."""
    _check_underlying(underlying)
    iv = _iv(underlying, int(seed))
    return iv[iv["ts"] <= synthetic_end(now) + pd.Timedelta(hours=1)].reset_index(drop=True)
