"""Deribit-style call option chain model: listed expiries, strike grid, smile, tick-rounded quotes, calibration."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field

from covcall.errors import DataError, SpecError
from covcall.pricing import call_delta, call_price, call_vega, implied_vol

__all__ = [
    "ChainParams",
    "list_expiries",
    "expiry_kind",
    "strike_grids",
    "strike_grid",
    "instrument_name",
    "smile_iv",
    "round_coin_premium",
    "spread_coin",
    "quotes",
    "build_chain",
    "mark_call_usd",
    "ask_usd",
    "bid_usd",
    "load_snapshot",
    "calibrate_chain",
    "snapshot_comparison",
]

SECONDS_PER_YEAR = 365.0 * 86400.0  # ACT/365, as Deribit's own time-to-expiry
TICK_SMALL = 0.0001  # coin tick below TICK_SWITCH
TICK_LARGE = 0.0005
TICK_SWITCH = 0.005
_NS_PER_DAY = 86_400 * 10**9
_MONTHS = np.array(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
KINDS = ("daily", "weekly", "monthly", "quarterly")
# The diffusive vol left after taking the 30-day input's events out never falls below this share of the input.
EVENT_FLOOR = 0.5


class ChainParams(BaseModel):
    """Every knob of the chain model. Defaults are calibrated in docs/chain.md (`calibrate_chain`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Listing calendar (Deribit, 2024): 08:00 UTC expiries.
    daily_expiries: int = Field(3, ge=0, le=10, description="Number of next-day 08:00 UTC expiries listed.")
    weekly_expiries: int = Field(3, ge=0, le=10, description="Number of next Friday 08:00 UTC expiries listed.")
    monthly_expiries: int = Field(3, ge=0, le=12, description="Number of next last-Friday-of-month expiries.")
    quarterly_expiries: int = Field(4, ge=0, le=8, description="Number of next last-Friday of Mar/Jun/Sep/Dec.")
    expiry_hour_utc: int = Field(8, ge=0, le=23, description="Hour (UTC) at which every option expires.")
    min_dte_days: float = Field(0.0, ge=0, description="build_chain drops expiries closer than this many days.")

    # ATM implied vol source.
    iv_rv_premium: float = Field(
        1.20, gt=0, le=5,
        description="ATM IV = trailing realised vol x this when iv_source='realized' "
        "(median BTC DVOL / 30d RV, 2021-03..2026-01).",
    )
    rv_window_days: float = Field(30.0, gt=0, description="Trailing window of the realised-vol proxy, days.")
    iv_floor: float = Field(0.15, gt=0, description="Lowest ATM IV atm_iv_series returns.")
    iv_cap: float = Field(3.0, gt=0, description="Highest ATM IV atm_iv_series returns.")
    iv_default: float = Field(
        0.60, gt=0, description="ATM IV for early bars before any vol estimate exists (~ median BTC DVOL 0.58)."
    )
    atm_tenor_days: float = Field(30.0, gt=0, description="Tenor the input ATM IV refers to (DVOL is 30-day).")

    # Smile and term structure: iv = atm(T) * clip(1 + skew_slope*x + smile_curvature*smile_shape(x, smile_wing)),
    # x = ln(K/F) / (atm(T) * sqrt(T)), atm(T) = atm_iv * (max(T, term_min_days)/atm_tenor) ** term_slope
    # (** term_slope_long beyond atm_tenor when set).
    skew_slope: float = Field(-0.015, description="Linear smile coefficient in standardised moneyness x.")
    smile_curvature: float = Field(0.0445, ge=0, description="Coefficient of the even smile term smile_shape(x) "
                                                             "(x^2 near the money).")
    smile_min_ratio: float = Field(0.5, gt=0, description="Lower clip of iv / atm(T).")
    smile_max_ratio: float = Field(2.5, gt=0, description="Upper clip of iv / atm(T).")
    # Flat by default: the one snapshot's inverted term (-0.043) comes from an event week (the spot-ETH ETF
    # decision), and a one-day fit would make short tenors look systematically rich in every backtest.
    term_slope: float = Field(0.0, description="ATM IV term-structure exponent in tenor / atm_tenor_days "
                                               "(snapshot fit: -0.043).")
    term_slope_long: float | None = Field(
        None, description="Exponent of the term structure beyond atm_tenor_days, where the state does not tilt it "
                          "(a week of realised vol says little about a quarter); None: term_slope and the state "
                          "apply to every tenor.")
    term_min_days: float = Field(1.0, gt=0, description="Tenor floor of the term-structure factor, days.")
    term_state_coef: float = Field(
        0.0, description="Term slope added per unit of ln(state); state = short-horizon realised vol / the IV index "
                         "known at the decision (calm < 1 < stress). Positive: calm markets price the short end lower.")
    term_min_ratio: float = Field(0.5, gt=0, description="Lowest ATM(T) / ATM(30d) the term structure may give.")
    term_max_ratio: float = Field(2.0, gt=0, description="Highest ATM(T) / ATM(30d) the term structure may give.")
    short_end_shift: float = Field(0.0, gt=-0.9, lt=2.0, description="Added to ATM(T)/ATM(30d) at T -> 0, fading "
                                                                    "linearly to 0 at 30 days (robustness band).")
    short_end_band: float = Field(0.10, ge=0.05, le=0.5, description=(
        "How far the robustness band moves the short end (short_end_shift -/+ this). Calibrated: the 90th "
        "percentile of the shift each 1-7 day expiry of the stored snapshots needed, leave-one-day-out, "
        "never below 0.10."))
    term_state_days: float = Field(7.0, gt=0, description="Horizon of the short realised vol in the term state.")
    term_state_min: float = Field(0.0, ge=0, description="The state is held within [min, max]: a calibration sets "
                                                          "the range it saw, so the fit is never extrapolated.")
    term_state_max: float = Field(1e6, gt=0, description="Upper bound of the term state (see term_state_min).")
    smile_min_days: float = Field(0.0, ge=0, le=30, description="Tenor floor of the smile's moneyness scale: "
                                                                   "expiries hours away keep a day-like smile.")
    skew_tenor_exp: float = Field(0.0, description="skew_slope scales with (T / atm_tenor) ** this.")
    curv_tenor_exp: float = Field(0.0, description="smile_curvature scales with (T / atm_tenor) ** this.")
    smile_wing: float = Field(0.0, ge=0, description="Where the smile turns from quadratic to linear in x: the "
                                                     "x^2 term becomes 2w(sqrt(x^2 + w^2) - w) (0: quadratic).")

    # Level and forward (per underlying; see covcall.calibration).
    atm_index_ratio: float = Field(
        1.0, gt=0, le=3, description="ATM 30-day IV / the IV index (DVOL, a variance-swap-like index, sits above it).")
    iv_scale: float = Field(1.0, gt=0, le=5, description="Multiplies every implied vol (robustness band: 0.9 / 1.1).")
    basis_ann: float = Field(0.0, ge=-1, le=2, description="Forward basis b: F = S exp((b + rate) T), per year.")
    spread_scale: float = Field(1.0, gt=0, le=10, description="Multiplies every bid-ask spread (robustness band).")

    # Scheduled events (covcall.events): an expiry after a US CPI release or FOMC statement carries the event's
    # variance on top of the diffusive vol; sizes are one-sigma log moves fitted from realised moves around past
    # events. 0 = no event premium (the plain defaults, and the synthetic market, which has no scheduled events).
    event_move_cpi: float = Field(0.0, ge=0, le=0.5, description="One-sigma move of a US CPI release (0.02 = 2 %).")
    event_move_fomc: float = Field(0.0, ge=0, le=0.5, description="One-sigma move of an FOMC statement.")
    event_move_other: float = Field(0.0, ge=0, le=0.5, description="Move of a calendar event of kind 'other' that "
                                                                 "gives none itself.")
    event_scale: float = Field(1.0, ge=0, le=5, description="Multiplies every event move (robustness band: 0 = "
                                                           "events ignored).")

    # Spread: spread_coin = max(spread_min_coin, spread_vol_30d * (T/30d)^spread_tenor_exp
    #   * (2*otm_delta)^spread_delta_exp * vega_coin) + spread_itm_frac * intrinsic_coin.
    spread_vol_30d: float = Field(
        0.0048, gt=0, description="Bid-ask spread in vol (1.00 = 100 vol pts) of a 30-day 50-delta option."
    )
    spread_tenor_exp: float = Field(-0.379, le=0, description="Vol-spread exponent in tenor (<0: short wider).")
    spread_delta_exp: float = Field(-0.334, le=0, description="Vol-spread exponent in 2*OTM delta (<0: wings wider).")
    spread_min_coin: float = Field(0.0001, ge=0, description="Narrowest spread in coin before tick rounding.")
    spread_itm_frac: float = Field(0.030, ge=0, description="Extra spread per coin of intrinsic value (ITM quotes).")
    spread_min_days: float = Field(1.0 / 24.0, gt=0, description="Tenor floor of the spread's tenor factor, days.")

    # Strike grid: the ATM step is a 'nice' number (1, 2.5, 5 x 10^n) near spot * step fraction; step doubles
    # after strike_inner_steps steps from spot and is ~5x after strike_middle_steps more.
    strike_step_frac_daily: float = Field(0.01124, gt=0, description="ATM step / spot for tenors <= 3.5 days.")
    strike_step_frac_short: float = Field(0.02238, gt=0, description="ATM step / spot for tenors <= 21 days.")
    strike_step_frac_long: float = Field(0.04243, gt=0, description="ATM step / spot for longer tenors.")
    strike_daily_max_days: float = Field(3.5, gt=0, description="Tenor up to which the daily step applies.")
    strike_short_max_days: float = Field(21.0, gt=0, description="Tenor up to which the short step applies.")
    strike_inner_steps: int = Field(8, ge=1, description="ATM-step strikes on each side of spot.")
    strike_middle_steps: int = Field(4, ge=0, description="Double-step strikes beyond the inner zone.")
    strike_range_k: float = Field(3.5, gt=0, description="Grid half-width in log-moneyness = k * sqrt(T years).")
    strike_range_min_log: float = Field(0.10, gt=0, description="Smallest grid half-width in log-moneyness.")
    strike_min_ratio: float = Field(0.4, gt=0, lt=1, description="Lowest strike / spot listed.")
    strike_max_ratio: float = Field(2.5, gt=1, description="Highest strike / spot listed.")


# ---------------------------------------------------------------- expiries


def _utc(t: object) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _last_friday(year: int, month: int) -> dt.date:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    last = nxt - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - 4) % 7)


def list_expiries(t: pd.Timestamp, params: ChainParams | None = None) -> pd.DatetimeIndex:
    """All listed expiries strictly after `t` (naive means UTC), unique, sorted, tz UTC (kept per bar close and
    shared: do not rename the index).

    Dailies: next `daily_expiries` 08:00; weeklies: next `weekly_expiries` Fridays; monthlies: last Friday
    of the next `monthly_expiries` months (current month included while ahead); quarterlies: last Friday of
    Mar/Jun/Sep/Dec. This equals the real snapshot's 11 expiries at 2024-01-08 11:19 UTC:

    >>> [f"{e:%d%b%y}" for e in list_expiries(pd.Timestamp("2024-01-08 11:19", tz="UTC"))]
    ['09Jan24', '10Jan24', '11Jan24', '12Jan24', '19Jan24', '26Jan24', '23Feb24', '29Mar24', '28Jun24', '27Sep24', '27Dec24']
    """
    params = params or ChainParams()
    return _listed(_utc(t).value, params.expiry_hour_utc, params.daily_expiries, params.weekly_expiries,
                   params.monthly_expiries, params.quarterly_expiries)


@functools.lru_cache(maxsize=4096)  # the runs of a sweep decide at the same bar closes
def _listed(t_ns: int, expiry_hour: int, daily: int, weekly: int, monthly: int, quarterly: int) -> pd.DatetimeIndex:
    t = pd.Timestamp(t_ns, tz="UTC")
    hour = pd.Timedelta(hours=expiry_hour)
    day0 = t.normalize()
    first = day0 + hour if day0 + hour > t else day0 + pd.Timedelta(days=1) + hour
    out: list[pd.Timestamp] = [first + pd.Timedelta(days=i) for i in range(daily)]
    first_friday = first + pd.Timedelta(days=(4 - first.weekday()) % 7)
    out += [first_friday + pd.Timedelta(weeks=i) for i in range(weekly)]

    def month_ends(months: Iterable[int], count: int) -> list[pd.Timestamp]:
        found: list[pd.Timestamp] = []
        year, month = t.year, t.month
        allowed = set(months)
        while len(found) < count:
            if month in allowed:
                e = pd.Timestamp(_last_friday(year, month), tz="UTC") + hour
                if e > t:
                    found.append(e)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return found

    out += month_ends(range(1, 13), monthly)
    out += month_ends((3, 6, 9, 12), quarterly)
    return pd.DatetimeIndex(sorted(set(out)), tz="UTC", name="expiry")


def clear_caches() -> None:
    """Forget the listings, strike steps and priced chains kept between runs (for benchmarks that time a cold
    run)."""
    _listed.cache_clear()
    _nice.cache_clear()
    CHAINS.clear()


class ChainCache:
    """Chains already priced, kept for the runs that decide at the same bar with the same inputs: the trials of a
    tuner, the variants and baselines of a walk on one test range, a batch's exit styles. A chain is a pure
    function of its key, so a hit is the very chain the run would build. Bounded by bytes (oldest out first);
    the arrays are read-only, so no run can change another's."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: OrderedDict[Any, tuple[dict[str, np.ndarray], int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> dict[str, np.ndarray] | None:
        with self._lock:  # the dashboard runs one script thread per session
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Any, chain: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for arr in chain.values():
            arr.flags.writeable = False
        size = sum(arr.nbytes for arr in chain.values())
        with self._lock:
            old = self._items.pop(key, None)
            self.nbytes += size - (old[1] if old else 0)
            self._items[key] = (chain, size)
            while self.nbytes > self.max_bytes and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self.nbytes -= dropped
        return chain

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.nbytes = 0


# ~1,500 chains of a decision (about 45 kB each; bench/bench_trials.py prints the size): a tuner's trials over
# a year of decisions share them
CHAINS = ChainCache(64 * 2**20)


def _as_index(expiries: object) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(np.atleast_1d(pd.to_datetime(expiries, utc=True)))
    return idx


def _utc_ns(expiries: object) -> np.ndarray:
    """UTC instants as int64 nanoseconds (naive means UTC); numpy datetimes and DatetimeIndexes without pandas'
    parsing, which took a third of a decision's chain when every call went through it."""
    if isinstance(expiries, np.ndarray) and expiries.dtype.kind == "M":
        return np.atleast_1d(expiries.astype("datetime64[ns]").view("int64"))
    if isinstance(expiries, pd.DatetimeIndex):
        return expiries.as_unit("ns").asi8
    return _as_index(expiries).as_unit("ns").asi8


def _civil(ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day, weekday with Monday 0, days in the month) of UTC nanosecond instants.

    >>> [a.tolist() for a in _civil(_utc_ns(pd.DatetimeIndex(["2024-02-29 08:00", "1969-12-31 23:00"])))]
    [[2024, 1969], [2, 12], [29, 31], [3, 2], [29, 31]]
    """
    d = ns.astype("datetime64[ns]").astype("datetime64[D]")  # numpy floors to whole days
    m = d.astype("datetime64[M]")
    y = m.astype("datetime64[Y]")
    weekday = (d.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    days_in_month = ((m + 1).astype("datetime64[D]") - m.astype("datetime64[D]")).astype(np.int64)
    return (y.astype(np.int64) + 1970, (m - y).astype(np.int64) + 1, (d - m).astype(np.int64) + 1, weekday,
            days_in_month)


def expiry_kind(expiries: object) -> np.ndarray:
    """The largest kind each expiry qualifies for: quarterly > monthly > weekly (Friday) > daily.

    >>> expiry_kind(pd.DatetimeIndex(["2024-01-09 08:00", "2024-01-12 08:00", "2024-01-26 08:00", "2024-03-29 08:00"]))
    array(['daily', 'weekly', 'monthly', 'quarterly'], dtype='<U9')
    """
    _, month, day, weekday, days_in_month = _civil(_utc_ns(expiries))
    friday = weekday == 4
    last_friday = friday & (day + 7 > days_in_month)
    quarter_end = np.isin(month, (3, 6, 9, 12))
    return np.select(
        [last_friday & quarter_end, last_friday, friday], ["quarterly", "monthly", "weekly"], default="daily"
    ).astype("<U9")


# ---------------------------------------------------------------- strikes and names


@functools.lru_cache(maxsize=1024)  # a chain asks the same three steps for each of its expiries
def _nice(x: float, mantissas: tuple[float, ...]) -> float:
    """Closest (in log) number of the form m * 10^n."""
    exp = np.floor(np.log10(x))
    cands = np.array([m * 10.0**e for e in (exp - 1, exp, exp + 1) for m in mantissas])
    return float(cands[np.argmin(np.abs(np.log(cands / x)))])


def _strike_steps(spot: float, t_years: float, params: ChainParams) -> tuple[float, float, float]:
    dte = t_years * 365.0
    if dte <= params.strike_daily_max_days:
        frac = params.strike_step_frac_daily
    elif dte <= params.strike_short_max_days:
        frac = params.strike_step_frac_short
    else:
        frac = params.strike_step_frac_long
    step0 = _nice(spot * frac, (1.0, 2.5, 5.0))
    return step0, _nice(2 * step0, (1.0, 2.0, 2.5, 5.0)), _nice(5 * step0, (1.0, 2.0, 5.0))


def strike_grid(
    underlying: str, spot: float, expiry_years: float | None = None, params: ChainParams | None = None
) -> np.ndarray:
    """Sorted listed strikes for one expiry, Deribit-like; spacing scales with spot so any symbol works.

    `expiry_years=None` means a 30-day expiry. `underlying` is accepted for symmetry with the exchange:
    spacing depends only on spot's magnitude (ETH ~2200: 25/50/100 by tenor, BTC ~45000: 500/1000/2500).

    >>> g = strike_grid("ETH", 2224.0, 2 / 365)
    >>> g[(g >= 2150) & (g <= 2300)]
    array([2150., 2175., 2200., 2225., 2250., 2275., 2300.])
    >>> g = strike_grid("BTC", 45000.0, 7 / 365)
    >>> g[(g > 43000) & (g < 47000)]
    array([44000., 45000., 46000.])
    """
    params = params or ChainParams()
    spot = _grid_spot(underlying, spot)
    t = 30.0 / 365.0 if expiry_years is None else max(float(expiry_years), 0.0)
    grid = np.concatenate([np.round(np.arange(a, b) * step, 10) for a, b, step in _grid_segments(spot, t, params)])
    grid = np.unique(grid[grid > 0])
    if grid.size == 0:  # a range narrower than one step: list the two strikes around spot
        step0 = _strike_steps(spot, t, params)[0]
        grid = np.unique(np.maximum([np.floor(spot / step0) * step0, np.ceil(spot / step0) * step0], step0))
    return grid


def strike_grids(underlying: str, spot: float, expiry_years: np.ndarray,
                 params: ChainParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The strikes of several expiries at once: (every expiry's strike_grid, concatenated in order; their sizes).
    One set of array operations for the whole listing instead of a dozen per expiry.

    >>> strikes, sizes = strike_grids("ETH", 2224.0, np.array([2, 7, 30]) / 365)
    >>> [len(strike_grid("ETH", 2224.0, t)) for t in np.array([2, 7, 30]) / 365] == sizes.tolist()
    True
    """
    params = params or ChainParams()
    spot = _grid_spot(underlying, spot)
    years = np.asarray(expiry_years, dtype=float)
    segs = np.array([seg for t in years for seg in _grid_segments(spot, max(float(t), 0.0), params)],
                    dtype=float).reshape(-1, 3)
    start, stop, step = segs[:, 0], segs[:, 1], segs[:, 2]
    counts = np.maximum(stop - start, 0.0).astype(np.int64)  # np.arange(start, stop): both whole numbers
    owner = np.repeat(np.repeat(np.arange(len(years)), 3), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    values = np.round((np.repeat(start, counts) + offset) * np.repeat(step, counts), 10)
    keep = values > 0
    values, owner = values[keep], owner[keep]
    order = np.lexsort((values, owner))  # np.unique per expiry: ascending, each strike once
    values, owner = values[order], owner[order]
    first = np.ones(len(values), dtype=bool)
    first[1:] = (owner[1:] != owner[:-1]) | (values[1:] != values[:-1])
    values, owner = values[first], owner[first]
    sizes = np.bincount(owner, minlength=len(years))
    if (sizes == 0).any():  # a range narrower than one step somewhere: strike_grid's own fallback
        grids = [strike_grid(underlying, spot, t, params) for t in years]
        return (np.concatenate(grids) if grids else np.empty(0)), np.array([g.size for g in grids], dtype=int)
    return values, sizes


def _grid_spot(underlying: str, spot: float) -> float:
    spot = float(spot)
    if not np.isfinite(spot) or spot <= 0:
        raise SpecError(f"spot must be a positive number to build a strike grid for {underlying}; got {spot!r}")
    return spot


def _grid_segments(spot: float, t: float, params: ChainParams) -> list[tuple[float, float, float]]:
    """(first multiple, one past the last, step) of the three spacings a tenor of t years lists around spot: the
    finest near the money, coarser further out."""
    step0, step1, step2 = _strike_steps(spot, t, params)
    w = max(params.strike_range_k * np.sqrt(t), params.strike_range_min_log)
    lo = max(spot * np.exp(-w), spot * params.strike_min_ratio)
    hi = min(spot * np.exp(w), spot * params.strike_max_ratio)
    z1 = params.strike_inner_steps * step0
    z2 = z1 + params.strike_middle_steps * step1

    def multiples(step: float, a: float, b: float) -> tuple[float, float, float]:
        return float(np.ceil(a / step - 1e-9)), float(np.floor(b / step + 1e-9) + 1), step

    return [multiples(step0, max(lo, spot - z1), min(hi, spot + z1)),
            multiples(step1, max(lo, spot - z2), min(hi, spot + z2)),
            multiples(step2, lo, hi)]


def _strike_text(k: float) -> str:
    k = float(k)
    if k.is_integer():
        return str(int(k))
    return f"{k:.10g}".replace(".", "d")  # Deribit writes 0.5 as 0d5


def instrument_name(underlying: str, expiry: object, strike: ArrayLike, option_type: str = "C"):
    """Deribit instrument name(s): day without leading zero, e.g. 'ETH-26JAN24-2200-C', 'BTC-5JAN24-45000-C'.

    Scalar inputs give a str; arrays broadcast and give an array of str.

    >>> instrument_name("ETH", pd.Timestamp("2024-01-26 08:00", tz="UTC"), 2200)
    'ETH-26JAN24-2200-C'
    >>> instrument_name("BTC", np.array(["2024-01-05T08:00"], dtype="datetime64[ns]"), [45000, 46000])
    array(['BTC-5JAN24-45000-C', 'BTC-5JAN24-46000-C'], dtype='<U18')
    """
    scalar = np.ndim(strike) == 0 and (isinstance(expiry, str | dt.datetime | np.datetime64) or np.ndim(expiry) == 0)
    year, month, day, _, _ = _civil(_utc_ns(expiry))
    codes = np.array([f"{d}{_MONTHS[m - 1]}{y % 100:02d}" for d, m, y in zip(day, month, year, strict=True)])
    codes, strikes = np.broadcast_arrays(codes, np.atleast_1d(np.asarray(strike, dtype=float)))
    names = np.array(
        [f"{underlying}-{c}-{_strike_text(k)}-{option_type}" for c, k in zip(codes.ravel(), strikes.ravel(), strict=True)]
    ).reshape(codes.shape)
    return str(names.ravel()[0]) if scalar else names


# ---------------------------------------------------------------- smile and quotes


def _term_factor(t_years: np.ndarray, params: ChainParams, state: ArrayLike | None = None) -> np.ndarray:
    """ATM(T) / ATM(30d): a power law in tenor whose slope moves with the market state, clipped."""
    t = np.maximum(t_years, params.term_min_days / 365.0)
    tt = t / (params.atm_tenor_days / 365.0)
    slope = params.term_slope
    if state is not None and params.term_state_coef:
        z = np.asarray(state, dtype=float)
        z = np.clip(np.where(np.isfinite(z) & (z > 0), z, 1.0), max(params.term_state_min, 1e-6),
                    params.term_state_max)
        slope = slope + params.term_state_coef * np.log(z)
    if params.term_slope_long is not None:  # beyond the reference tenor: its own slope, untouched by the state
        slope = np.where(tt > 1.0, params.term_slope_long, slope)
    factor = tt**slope
    if params.short_end_shift:
        factor = factor + params.short_end_shift * np.clip(1.0 - tt, 0.0, 1.0)
    return np.clip(factor, params.term_min_ratio, params.term_max_ratio)


def carry(params: ChainParams, rate: Any = 0.0) -> Any:
    """Annual carry of the forward: F = S exp(carry T) (Deribit prices options off the expiry's future). `rate`
    may be an array (a basis history moves the carry bar by bar, see covcall.engine.BSQuotes)."""
    r = np.asarray(rate, dtype=float)
    return float(params.basis_ann) + (float(r) if r.ndim == 0 else r)


def without_events(iv: ArrayLike, event_var: ArrayLike, t_years: ArrayLike) -> np.ndarray:
    """The diffusive part of an implied vol over T whose total variance holds `event_var` of scheduled events
    (never below EVENT_FLOOR of the vol itself).

    >>> round(float(without_events(0.6, 0.0004, 1 / 365)), 3)  # a one-day 60 % vol over a 2 % event
    0.463
    """
    iv, ev, t = (np.asarray(a, dtype=float) for a in (iv, event_var, t_years))
    return np.sqrt(np.maximum(iv * iv - ev / np.maximum(t, 1e-9), (EVENT_FLOOR * iv) ** 2))


def atm_iv_at(atm_iv: ArrayLike, t_years: ArrayLike, params: ChainParams, state: ArrayLike | None = None,
              event_var: ArrayLike | None = None, event_var_ref: ArrayLike | None = None) -> np.ndarray:
    """ATM implied vol of tenor T from the 30-day input (the IV index or its proxy) and the market state.

    With scheduled events (`event_var`: variance of the events before the expiry, `event_var_ref`: of those in the
    input's own 30 days, see covcall.events) the input's level holds the events of its 30 days: they are taken out
    before the term structure and each expiry gets back the ones it spans.

    >>> p = ChainParams()
    >>> float(atm_iv_at(0.5, 30 / 365, p, event_var=0.0004, event_var_ref=0.0004))  # the 30 days keep their level
    0.5
    >>> round(float(atm_iv_at(0.5, 1 / 365, p, event_var=0.0004, event_var_ref=0.0004)), 3)  # one day over a 2 % event
    0.625
    """
    base = np.asarray(atm_iv, dtype=float) * params.atm_index_ratio * params.iv_scale
    t = np.asarray(t_years, dtype=float)
    factor = _term_factor(t, params, state)
    if event_var is None and event_var_ref is None:
        return base * factor
    diffusive = without_events(base, 0.0 if event_var_ref is None else event_var_ref, params.atm_tenor_days / 365.0)
    ev = np.zeros(()) if event_var is None else np.asarray(event_var, dtype=float)
    return np.sqrt((diffusive * factor) ** 2 + ev / np.maximum(t, 1e-9))


def smile_iv(atm_iv: ArrayLike, spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, params: ChainParams,
             state: ArrayLike | None = None, rate: float = 0.0, event_var: ArrayLike | None = None,
             event_var_ref: ArrayLike | None = None) -> np.ndarray:
    """Implied vol per strike and tenor from the 30-day ATM input: level, term structure (state-dependent) and a
    smile in standardised forward moneyness x = ln(K / F) / (ATM(T) sqrt(T)) (quadratic, or with linear wings:
    `smile_shape`), broadcasting.

    >>> float(smile_iv(0.6, 100.0, 100.0, 30 / 365, ChainParams()))  # ATM at the reference tenor is the input
    0.6
    >>> bool(smile_iv(0.6, 100.0, 130.0, 30 / 365, ChainParams()) > 0.6)  # OTM calls carry a smile premium
    True
    """
    atm, s, k, t = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (atm_iv, spot, strike, t_years)))
    atm_t = atm_iv_at(atm, t, params, state, event_var, event_var_ref)
    sd = np.maximum(atm_t * np.sqrt(np.maximum(t, max(params.smile_min_days / 365.0, 1e-12))), 1e-12)
    x = (np.log(k / s) - carry(params, rate) * t) / sd
    tt = np.maximum(t, params.term_min_days / 365.0) / (params.atm_tenor_days / 365.0)
    skew = params.skew_slope * tt**params.skew_tenor_exp
    curv = params.smile_curvature * tt**params.curv_tenor_exp
    ratio = np.clip(1.0 + skew * x + curv * smile_shape(x, params.smile_wing), params.smile_min_ratio,
                    params.smile_max_ratio)
    return atm_t * ratio


def smile_shape(x: ArrayLike, wing: float) -> np.ndarray:
    """The even part of the smile in standardised moneyness: x^2 near the money, linear in |x| beyond about
    `wing` (real crypto smiles are; a pure quadratic is too low near the money and too high far out); 0 keeps
    the quadratic.

    >>> float(smile_shape(2.0, 0.0))  # the quadratic
    4.0
    >>> [round(float(v), 2) for v in smile_shape([0.25, 2.0, 20.0], 1.5)]  # ~x^2 near the money, then ~3|x|
    [0.06, 3.0, 55.67]
    """
    x = np.asarray(x, dtype=float)
    if wing <= 0:
        return x * x
    return 2.0 * wing * (np.sqrt(x * x + wing * wing) - wing)


def round_coin_premium(price_coin: ArrayLike, direction: str = "nearest") -> np.ndarray:
    """Round coin premiums to Deribit's tick: 0.0001 below 0.005, 0.0005 from 0.005 up.

    `direction` is 'nearest', 'down' (bids) or 'up' (asks).

    >>> round_coin_premium([0.00437, 0.0071], "down")
    array([0.0043, 0.007 ])
    >>> round_coin_premium([0.00437, 0.0071], "up")
    array([0.0044, 0.0075])
    """
    p = np.asarray(price_coin, dtype=float)
    ops = {"nearest": np.round, "down": np.floor, "up": np.ceil}
    if direction not in ops:
        raise SpecError(f"direction must be one of nearest, down, up; got {direction!r}")
    op = ops[direction]
    # Tolerance stops binary round-off (0.0043/0.0001 = 42.999...) from losing a tick.
    eps = {"nearest": 0.0, "down": 1e-7, "up": -1e-7}[direction]
    small = op(p / TICK_SMALL + eps) * TICK_SMALL
    large = op(p / TICK_LARGE + eps) * TICK_LARGE
    out = np.where(p < TICK_SWITCH, small, large)
    # Rounding a price just under the switch up to it is fine; rounding down across it uses the small tick.
    return np.round(np.maximum(out, 0.0), 10)


def spread_coin(
    mark_coin: ArrayLike, spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, iv_ann: ArrayLike,
    params: ChainParams, rate: float = 0.0,
) -> np.ndarray:
    """Model bid-ask spread in coin before tick rounding: wider in vol terms for short tenors and the wings."""
    m, s, k, t, v = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (mark_coin, spot, strike, t_years, iv_ann)))
    v = np.where(np.isfinite(v), v, 0.0)
    vega_coin = np.asarray(call_vega(s, k, t, v, rate)) / s
    delta = np.asarray(call_delta(s, k, t, v, rate))
    otm_delta = np.clip(np.minimum(delta, 1.0 - delta), 1e-3, 0.5)
    tt = np.maximum(t, params.spread_min_days / 365.0) / (params.atm_tenor_days / 365.0)
    vol_spread = params.spread_vol_30d * tt**params.spread_tenor_exp * (2.0 * otm_delta) ** params.spread_delta_exp
    intrinsic_coin = np.maximum(s - k, 0.0) / s
    return params.spread_scale * (np.maximum(params.spread_min_coin, vol_spread * vega_coin)
                                  + params.spread_itm_frac * intrinsic_coin)


def quotes(
    mark_coin: ArrayLike, spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, params: ChainParams,
    iv_ann: ArrayLike | None = None, rate: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(bid_coin, ask_coin) around the mark: bid rounded down (0 = no bid), ask rounded up, at least one tick apart.

    Pass `iv_ann` when known; otherwise it is implied from the mark.

    >>> b, a = quotes(0.0071, 2224.0, 2400.0, 7 / 365, ChainParams())
    >>> float(b), float(a)
    (0.0065, 0.0075)
    """
    m = np.asarray(mark_coin, dtype=float)
    if iv_ann is None:
        iv_ann = implied_vol(m * np.asarray(spot, dtype=float), spot, strike, t_years, rate)
    spread = spread_coin(m, spot, strike, t_years, iv_ann, params, rate)
    bid = round_coin_premium(np.maximum(m - 0.5 * spread, 0.0), "down")
    ask = round_coin_premium(m + 0.5 * spread, "up")
    ask = np.maximum(ask, np.maximum(bid + np.where(bid < TICK_SWITCH, TICK_SMALL, TICK_LARGE), TICK_SMALL))
    return bid, np.round(ask, 10)


# ---------------------------------------------------------------- chain and marks


def mark_call_usd(
    spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, atm_iv: ArrayLike, params: ChainParams, rate: float = 0.0,
    state: ArrayLike | None = None, event_var: ArrayLike | None = None, event_var_ref: ArrayLike | None = None,
) -> np.ndarray:
    """Call mark in USD per coin on the model surface; any broadcastable shapes (e.g. candidates x bars).

    Deribit's coin mark is Black(F) / F with F = S exp(carry T); in USD at spot S that is Black-Scholes with
    `carry` as the rate: S N(d1) - K exp(-carry T) N(d2).
    """
    iv = smile_iv(atm_iv, spot, strike, t_years, params, state, rate, event_var, event_var_ref)
    return np.asarray(call_price(spot, strike, t_years, iv, carry(params, rate)), dtype=float)


def _quote_usd(spot, strike, t_years, atm_iv, params, rate, state=None, event_var=None, event_var_ref=None):
    iv = smile_iv(atm_iv, spot, strike, t_years, params, state, rate, event_var, event_var_ref)
    s = np.asarray(spot, dtype=float)
    mark_coin = np.asarray(call_price(spot, strike, t_years, iv, carry(params, rate)), dtype=float) / s
    bid, ask = quotes(mark_coin, spot, strike, t_years, params, iv_ann=iv, rate=carry(params, rate))
    return bid * s, ask * s


def ask_usd(
    spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, atm_iv: ArrayLike, params: ChainParams, rate: float = 0.0,
    state: ArrayLike | None = None, event_var: ArrayLike | None = None, event_var_ref: ArrayLike | None = None,
) -> np.ndarray:
    """Price to buy a call back: model ask in coin (tick-rounded up) times spot; broadcasts like mark_call_usd."""
    return _quote_usd(spot, strike, t_years, atm_iv, params, rate, state, event_var, event_var_ref)[1]


def bid_usd(
    spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, atm_iv: ArrayLike, params: ChainParams, rate: float = 0.0,
    state: ArrayLike | None = None, event_var: ArrayLike | None = None, event_var_ref: ArrayLike | None = None,
) -> np.ndarray:
    """Price received selling a call: model bid in coin (tick-rounded down, 0 = no bid) times spot."""
    return _quote_usd(spot, strike, t_years, atm_iv, params, rate, state, event_var, event_var_ref)[0]


def build_chain(
    t: pd.Timestamp, spot: float, atm_iv: float, underlying: str, params: ChainParams | None = None, rate: float = 0.0,
    names: bool = True, state: float | None = None, events: Any = None,
) -> dict[str, np.ndarray]:
    """Every listed call at time `t`, one entry per (expiry, strike), as parallel numpy arrays.

    `events` (a covcall.events.EventVariance) adds scheduled events' variance to the expiries after them.
    Keys: instrument, expiry (datetime64[ns], UTC-naive), kind, strike, dte_days, t_years, iv_ann, mark_usd,
    mark_coin, delta, bid_coin, ask_coin, bid_usd, ask_usd, moneyness (strike / spot).

    >>> c = build_chain(pd.Timestamp("2024-01-08 11:19", tz="UTC"), 2224.0, 0.75, "ETH")
    >>> str(c["instrument"][0]), len(np.unique(c["expiry"]))
    ('ETH-9JAN24-1900-C', 11)
    """
    params = params or ChainParams()
    spot = float(spot)
    atm = float(atm_iv)
    if not np.isfinite(spot) or spot <= 0:
        raise SpecError(f"spot must be a positive price to build a {underlying} chain; got {spot!r}")
    if not np.isfinite(atm) or atm <= 0:
        raise SpecError(f"atm_iv must be a positive annual vol fraction (0.6 = 60 %); got {atm_iv!r}")
    t = _utc(t)
    exp_ns = list_expiries(t, params).asi8
    dte_all = (exp_ns - t.value) / _NS_PER_DAY
    keep = dte_all >= params.min_dte_days
    exp_ns, dte_all = exp_ns[keep], dte_all[keep]
    kinds_all = expiry_kind(exp_ns.view("datetime64[ns]"))
    strike, sizes = strike_grids(underlying, spot, dte_all / 365.0, params)
    expiry = np.repeat(exp_ns.view("datetime64[ns]"), sizes)
    dte = np.repeat(dte_all, sizes)
    t_years = dte / 365.0
    ev = events.pricing_args(t.value, expiry.astype(np.int64)) if events is not None else {}
    iv = smile_iv(atm, spot, strike, t_years, params, state, rate, **ev)
    b = carry(params, rate)
    mark_usd = np.asarray(call_price(spot, strike, t_years, iv, b), dtype=float)
    mark_coin = mark_usd / spot
    bid, ask = quotes(mark_coin, spot, strike, t_years, params, iv_ann=iv, rate=b)
    out = {
        "expiry": expiry,
        "kind": np.repeat(kinds_all, sizes),
        "strike": strike,
        "dte_days": dte,
        "t_years": t_years,
        "iv_ann": iv,
        "mark_usd": mark_usd,
        "mark_coin": mark_coin,
        "delta": np.asarray(call_delta(spot, strike, t_years, iv, b), dtype=float),
        "bid_coin": bid,
        "ask_coin": ask,
        "bid_usd": bid * spot,
        "ask_usd": ask * spot,
        "moneyness": strike / spot,
        "forward": spot * np.exp(b * t_years),
    }
    if names:  # the engine names only the candidates it keeps (names=False), the slowest part of a listing
        out["instrument"] = np.asarray(instrument_name(underlying, expiry, strike)).astype(str)
    return out


# ---------------------------------------------------------------- calibration against a real snapshot

_SNAPSHOT_COLUMNS = ("instrument_name", "strike_price", "expire_date", "option_type", "bid_price", "ask_price",
                     "mark_price", "underlying_price", "creation_timestamp")


def load_snapshot(path: object) -> pd.DataFrame:
    """Read a Deribit chain snapshot CSV and add t (snapshot time), expiry, t_years, dte_days, iv_ann, delta."""
    df = pd.read_csv(path)
    missing = [c for c in _SNAPSHOT_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: not a Deribit chain snapshot, missing columns {', '.join(missing)}")
    df["t"] = pd.to_datetime(df["creation_timestamp"], unit="ms", utc=True)
    df["expiry"] = pd.to_datetime(df["expire_date"], format="%d%b%y", utc=True) + pd.Timedelta(hours=8)
    df["t_years"] = (df["expiry"] - df["t"]).dt.total_seconds() / SECONDS_PER_YEAR
    df["dte_days"] = df["t_years"] * 365.0
    f = df["underlying_price"].to_numpy(float)  # the expiry's futures price: Deribit prices off it, rate 0
    k = df["strike_price"].to_numpy(float)
    is_call = (df["option_type"] == "C").to_numpy()
    call_usd = df["mark_price"].to_numpy(float) * f + np.where(is_call, 0.0, f - k)  # puts via parity
    df["iv_ann"] = implied_vol(call_usd, f, k, df["t_years"].to_numpy(float))
    df["call_delta"] = call_delta(f, k, df["t_years"].to_numpy(float), np.nan_to_num(df["iv_ann"].to_numpy(float)))
    df["otm"] = np.where(is_call, k >= f, k < f)
    df["spread_coin"] = df["ask_price"] - df["bid_price"]
    return df


def _quoted(snap: pd.DataFrame) -> pd.DataFrame:
    q = snap[snap["bid_price"].gt(0) & snap["ask_price"].notna() & snap["iv_ann"].notna()]
    # Stale one-tick bids against wide asks (e.g. 0.0001 / 0.40) are not a market; keep real two-sided quotes.
    return q[(q["spread_coin"] < 0.5 * q["mark_price"]) | (q["spread_coin"] <= 0.0005)]


def calibrate_chain(snap: pd.DataFrame, atm_tenor_days: float = 30.0) -> dict[str, float]:
    """Fit the smile, term structure, spread and strike-step defaults to a snapshot from `load_snapshot`."""
    from scipy.optimize import least_squares

    out: dict[str, float] = {}
    # Smile: per-expiry ATM plus shared skew/curvature, on OTM marks that are not at the price floor.
    o = snap[snap["otm"] & snap["iv_ann"].notna() & (snap["mark_price"] >= 0.0005)]
    k = np.log(o["strike_price"] / o["underlying_price"]).to_numpy()
    t = o["t_years"].to_numpy()
    exps = sorted(o["expiry"].unique())
    idx = o["expiry"].map({e: i for i, e in enumerate(exps)}).to_numpy()
    n = len(exps)

    def resid(p: np.ndarray) -> np.ndarray:
        atm = p[:n][idx]
        x = k / (atm * np.sqrt(t))
        return o["iv_ann"].to_numpy() - atm * (1 + p[n] * x + p[n + 1] * x * x)

    keep = np.abs(k / (0.7 * np.sqrt(t))) < 4
    o, k, t, idx = o[keep], k[keep], t[keep], idx[keep]
    p = least_squares(resid, np.r_[np.full(n, 0.7), 0.0, 0.05]).x
    out["skew_slope"], out["smile_curvature"] = float(p[n]), float(p[n + 1])
    out["smile_rmse"] = float(np.sqrt(np.mean(resid(p) ** 2)))
    tenor = np.array([o.loc[o["expiry"] == e, "t_years"].iloc[0] for e in exps])
    slope, intercept = np.polyfit(np.log(tenor / (atm_tenor_days / 365.0)), np.log(p[:n]), 1)
    out["term_slope"], out["atm_iv_30d"] = float(slope), float(np.exp(intercept))

    # Spread in vol terms, on two-sided OTM call quotes up to 120 days (what a covered-call seller trades).
    q = _quoted(snap)
    q = q[q["otm"] & (q["option_type"] == "C") & (q["dte_days"] <= 120)]
    f, kk, tt, iv = (q[c].to_numpy(float) for c in ("underlying_price", "strike_price", "t_years", "iv_ann"))
    vega_coin = np.asarray(call_vega(f, kk, tt, iv)) / f
    d = np.asarray(call_delta(f, kk, tt, iv))
    otm_delta = np.clip(np.minimum(d, 1 - d), 1e-3, 0.5)
    x = np.c_[np.ones(len(q)), np.log(tt / (atm_tenor_days / 365.0)), np.log(2 * otm_delta)]
    b, *_ = np.linalg.lstsq(x, np.log(q["spread_coin"].to_numpy() / vega_coin), rcond=None)
    out["spread_tenor_exp"], out["spread_delta_exp"] = float(b[1]), float(b[2])
    # Tick rounding widens quotes, so scale the level until the median model/actual spread ratio is 1.
    base = ChainParams(spread_tenor_exp=min(b[1], 0.0), spread_delta_exp=min(b[2], 0.0), spread_itm_frac=0.0)
    actual = q["spread_coin"].to_numpy()
    mark = q["mark_price"].to_numpy()
    scales = np.exp(b[0]) * np.exp(np.linspace(-1.5, 0.5, 41))
    errs = []
    for scale in scales:
        bid, ask = quotes(mark, f, kk, tt, base.model_copy(update={"spread_vol_30d": float(scale)}), iv_ann=iv)
        errs.append(abs(np.median(np.log((ask - bid) / actual))))
    # Discrete ticks make the median flat over a range of levels: take the middle of the best plateau.
    plateau = scales[np.isclose(errs, np.min(errs))]
    best = (float(np.min(errs)), float(np.exp(np.mean(np.log(plateau)))))
    out["spread_vol_30d"] = best[1]
    # ITM calls: extra spread per coin of intrinsic value beyond the OTM model.
    itm = _quoted(snap)
    # Deep ITM only (delta > 0.75): near the money the intrinsic part is tiny and the ratio is noise.
    itm = itm[(itm["option_type"] == "C") & (itm["call_delta"] > 0.75)]
    prm = base.model_copy(update={"spread_vol_30d": best[1]})
    fi, ki, ti, vi = (itm[c].to_numpy(float) for c in ("underlying_price", "strike_price", "t_years", "iv_ann"))
    extra = itm["spread_coin"].to_numpy() - spread_coin(itm["mark_price"].to_numpy(), fi, ki, ti, vi, prm)
    out["spread_itm_frac"] = float(max(np.median(extra / (np.maximum(fi - ki, 0) / fi)), 0.0))

    # ATM strike step as a fraction of the forward, per tenor class.
    steps: dict[str, list[float]] = {"daily": [], "short": [], "long": []}
    for _, g in snap.groupby("expiry"):
        fwd = g["underlying_price"].iloc[0]
        s = np.unique(g["strike_price"].to_numpy(float))
        near = s[np.abs(s / fwd - 1) < 0.06]
        dte = g["dte_days"].iloc[0]
        cls = "daily" if dte <= 3.5 else "short" if dte <= 21 else "long"
        steps[cls].append(float(np.min(np.diff(near))) / fwd)
    for cls, v in steps.items():
        out[f"strike_step_frac_{cls}"] = float(np.exp(np.mean(np.log(v))))
    return out


def snapshot_comparison(snap: pd.DataFrame, params: ChainParams | None = None) -> dict[str, pd.DataFrame]:
    """Tables comparing the snapshot with the model (docs/chain.md): strikes, spreads by tenor, smile."""
    params = params or ChainParams()
    # Strike grids per expiry.
    rows = []
    for e, g in snap.groupby("expiry"):
        s = np.unique(g["strike_price"].to_numpy(float))
        fwd = g["underlying_price"].iloc[0]
        m = strike_grid(snap["base_currency"].iloc[0] if "base_currency" in snap else "X", fwd,
                        g["t_years"].iloc[0], params)
        near_s, near_m = s[np.abs(s / fwd - 1) < 0.06], m[np.abs(m / fwd - 1) < 0.06]
        rows.append({
            "expiry": f"{e:%d%b%y}".upper(), "kind": expiry_kind(e)[0], "dte_days": round(g["dte_days"].iloc[0], 2),
            "snap_n": s.size, "model_n": m.size,
            "snap_range": f"{s.min():g}-{s.max():g}", "model_range": f"{m.min():g}-{m.max():g}",
            "snap_atm_step": float(np.min(np.diff(near_s))), "model_atm_step": float(np.min(np.diff(near_m))),
            "snap_steps": "/".join(f"{x:g}" for x in np.unique(np.diff(s))),
            "model_steps": "/".join(f"{x:g}" for x in np.unique(np.diff(m))),
        })
    strikes = pd.DataFrame(rows).sort_values("dte_days").reset_index(drop=True)

    # Spreads by tenor bucket: model quotes at the snapshot's own marks and IVs.
    q = _quoted(snap)
    q = q[q["option_type"] == "C"]
    f, kk, tt, iv = (q[c].to_numpy(float) for c in ("underlying_price", "strike_price", "t_years", "iv_ann"))
    bid, ask = quotes(q["mark_price"].to_numpy(), f, kk, tt, params, iv_ann=iv)
    q = q.assign(model_rel=(ask - bid) / q["mark_price"], snap_rel=q["spread_coin"] / q["mark_price"],
                 model_spread=ask - bid,
                 tenor=pd.cut(q["dte_days"], [0, 1.5, 3.5, 8, 21, 60, 120, 400],
                              labels=["<=1.5d", "1.5-3.5d", "3.5-8d", "8-21d", "21-60d", "60-120d", ">120d"]),
                 delta_bucket=pd.cut(q["call_delta"], [0, 0.05, 0.15, 0.3, 0.5, 1.0],
                                     labels=["<0.05", "0.05-0.15", "0.15-0.3", "0.3-0.5", ">0.5"]))
    agg = {"n": ("snap_rel", "size"), "snap_median_rel_spread": ("snap_rel", "median"),
           "model_median_rel_spread": ("model_rel", "median"),
           "snap_median_spread_coin": ("spread_coin", "median"), "model_median_spread_coin": ("model_spread", "median")}
    spreads = q.groupby("tenor", observed=True).agg(**agg).reset_index()
    spreads_delta = q[q["dte_days"] <= 120].groupby("delta_bucket", observed=True).agg(**agg).reset_index()

    # Smile: snapshot IV / model ATM at the snapshot's forward, by standardised moneyness bucket.
    o = snap[snap["otm"] & snap["iv_ann"].notna() & (snap["mark_price"] >= 0.0005)]
    f, kk, tt = (o[c].to_numpy(float) for c in ("underlying_price", "strike_price", "t_years"))
    atm30 = calibrate_chain(snap)["atm_iv_30d"]
    model = smile_iv(atm30, f, kk, tt, params)
    atm_t = atm30 * _term_factor(tt, params)
    xb = pd.cut(np.log(kk / f) / (atm_t * np.sqrt(tt)), [-4, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 4])
    smile = (pd.DataFrame({"x": xb, "snap_iv": o["iv_ann"].to_numpy(), "model_iv": model})
             .groupby("x", observed=True).agg(n=("snap_iv", "size"), snap_median_iv=("snap_iv", "median"),
                                              model_median_iv=("model_iv", "median")).reset_index())
    smile["x"] = smile["x"].astype(str)
    return {"strikes": strikes, "spreads_by_tenor": spreads, "spreads_by_delta": spreads_delta, "smile": smile}
