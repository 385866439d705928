"""Calibrating the chain model to real chains: one calibration per underlying, stored, versioned, or shipped.

A calibration is a set of `ChainParams` values fitted to every stored snapshot of the underlying plus its IV index
history: the ATM level relative to the index, a term structure whose short end moves with the market state, the
smile by tenor, bid-ask spreads by tenor and moneyness, the forward basis, the realised-vol proxy's premium, and the
size of scheduled events (US CPI, FOMC) from realised moves around past ones (covcall.events).
Structural parameters fitted on later snapshots are applied to earlier dates (see docs/chain.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.chain import ChainParams, _term_factor, quotes, smile_shape, without_events
from covcall.chains import chain_call_quotes
from covcall.errors import CovcallError, DataError, did_you_mean
from covcall.events import EventVariance, calendar_for, fit_event_moves
from covcall.market import one_index
from covcall.pricing import call_delta, call_vega
from covcall.volatility import realized_vol

if TYPE_CHECKING:
    from covcall.store import Store

CALIBRATION_VERSION = 1
MIN_SNAPSHOTS = 1
MIN_EXPIRIES = 4
MIN_QUOTES = 40
# Fields a calibration sets; everything else in ChainParams keeps its default (listing calendar, strike grid...).
FITTED = ("atm_index_ratio", "term_slope", "term_slope_long", "term_state_coef", "skew_slope", "smile_curvature",
          "skew_tenor_exp", "curv_tenor_exp", "smile_min_days", "smile_wing", "spread_vol_30d", "spread_tenor_exp",
          "spread_delta_exp", "spread_itm_frac", "basis_ann", "iv_rv_premium", "term_state_min", "term_state_max",
          "event_move_cpi", "event_move_fomc", "short_end_band")
# The short-end scenarios of the robustness band are never narrower or wider than this, whatever the data: a
# few days of snapshots can widen the band's +-0.10 but are too few to narrow it (BTC's 4 days: 0.08).
SHORT_END_BAND_MIN, SHORT_END_BAND_MAX = 0.10, 0.5
# Fields the surface gained later. A chain pinned before they existed (the surface an older walk stored) is still
# pinned: their defaults (a quadratic smile, one term slope) price it exactly as it was priced then.
ADDED_LATER = ("smile_wing", "term_slope_long", "short_end_band")
_DEFAULTS_FILE = "calibration_defaults.json"


@dataclass
class Calibration:
    """Fitted parameters of one underlying with where they came from and how well they fit."""

    calibration_id: str
    underlying: str
    params: dict[str, float]
    data: dict[str, Any]
    errors: dict[str, Any]
    version: int = CALIBRATION_VERSION

    def chain_params(self, overrides: dict[str, Any] | None = None) -> ChainParams:
        return ChainParams(**{**self.params, **(overrides or {})})

    def to_dict(self) -> dict[str, Any]:
        return {"calibration_id": self.calibration_id, "underlying": self.underlying, "version": self.version,
                "params": self.params, "data": self.data, "errors": self.errors}


# -- inputs known at a snapshot -------------------------------------------------------------------------------
def index_known_at(iv: pd.DataFrame | None, t: pd.Timestamp) -> float:
    """The IV index value known at t (the latest with ts <= t; daily closes count from the next midnight)."""
    return index_known_since(iv, t)[0]


def index_known_since(iv: pd.DataFrame | None, t: pd.Timestamp) -> tuple[float, pd.Timestamp | None]:
    """`index_known_at` and since when that value was known (how stale the index a decision sees is)."""
    if iv is None or iv.empty:
        return float("nan"), None
    known = iv[pd.to_datetime(iv["ts"], utc=True) <= t]
    if known.empty:
        return float("nan"), None
    return float(known["iv_ann"].iloc[-1]), pd.Timestamp(known["ts"].iloc[-1])


def realised_known_at(candles: pd.DataFrame | None, t: pd.Timestamp, days: float) -> float:
    """Annualised realised vol of the closes of bars that closed by t, over the last `days` days."""
    if candles is None or candles.empty:
        return float("nan")
    ts = pd.to_datetime(candles["ts"], utc=True)
    step = ts.diff().median()
    closed = candles[ts + step <= t]
    if len(closed) < 3:
        return float("nan")
    per_day = pd.Timedelta(days=1) / step
    n = max(2, int(round(days * per_day)))
    bpy = per_day * 365.0
    rv = realized_vol(closed["close"].to_numpy(float), bpy, n)
    return float(rv[-1])


def best_candles(store: Store, underlying: str) -> pd.DataFrame | None:
    """The finest stored candle series of an underlying (any source), or None."""
    series = store.list_series()
    rows = series[(series["kind"] == "candles") & (series["underlying"] == underlying)]
    if rows.empty:
        return None
    order = {"1h": 0, "4h": 1, "1d": 2}
    pick = rows.assign(o=rows["timeframe"].map(order).fillna(9)).sort_values(["o", "rows"], ascending=[True, False])
    r = pick.iloc[0]
    return store.read_candles(r["source"], underlying, r["timeframe"])


def best_index(store: Store, underlying: str) -> pd.DataFrame | None:
    """The underlying's IV index as stored (every source as one index, see covcall.market.one_index), or None."""
    iv = store.read_iv(underlying)
    return None if iv.empty else one_index(iv)


# -- per-expiry facts of a snapshot --------------------------------------------------------------------------
def expiry_table(quotes_: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot and expiry: forward, index, tenor, ATM IV (at the forward, interpolated in log strike)."""
    q = chain_call_quotes(quotes_)
    q = q[q["mark_iv"].notna() & (q["mark_iv"] > 0) & (q["t_years"] > 0)]
    rows = []
    for (sid, expiry), g in q.groupby(["snapshot_id", "expiry"]):
        g = g.sort_values("strike")
        f = float(g["forward"].median())
        lk = np.log(g["strike"].to_numpy(float) / f)
        if len(g) < 3 or lk.min() > 0 or lk.max() < 0:
            continue
        atm = float(np.interp(0.0, lk, g["mark_iv"].to_numpy(float)))
        rows.append({"snapshot_id": sid, "ts": g["ts"].iloc[0], "expiry": expiry, "t_years": g["t_years"].iloc[0],
                     "forward": f, "index_price": float(g["index_price"].median()), "atm_iv": atm})
    df = pd.DataFrame(rows)
    if len(df):
        df["dte_days"] = df["t_years"] * 365.0
        df["basis"] = np.log(df["forward"] / df["index_price"]) / df["t_years"]
    return df


def atm30(exp: pd.DataFrame, tenor_days: float = 30.0) -> float:
    """The 30-day ATM IV of one snapshot: interpolated in total variance between the neighbouring expiries."""
    e = exp.sort_values("t_years")
    tv = e["atm_iv"].to_numpy() ** 2 * e["t_years"].to_numpy()
    t30 = tenor_days / 365.0
    return float(np.sqrt(np.interp(t30, e["t_years"].to_numpy(), tv) / t30))


# -- fitting -------------------------------------------------------------------------------------------------
def _fit_smile(q: pd.DataFrame, atm_by: dict[tuple[str, Any], float], tenor_days: float,
               wing: bool = True) -> dict[str, float]:
    """Skew, curvature, their tenor exponents and the wing of the calls a covered-call seller trades (K >= 0.8 F);
    `wing=False` fits the plain quadratic smile (smile_wing 0), kept for comparison (scripts/smile_check.py)."""
    from scipy.optimize import least_squares

    q = q[(q["moneyness"] >= 0.8) & (q["mark_coin"] >= 0.0005) & q["mark_iv"].notna() & (q["dte_days"] >= 0.5)]
    atm = np.array([atm_by.get((s, e), np.nan) for s, e in zip(q["snapshot_id"], q["expiry"], strict=True)])
    ok = np.isfinite(atm)
    q, atm = q[ok], atm[ok]
    t = q["t_years"].to_numpy(float)
    keep = np.abs(np.log(q["moneyness"].to_numpy(float)) / (atm * np.sqrt(np.maximum(t, 1 / 365)))) < 4
    q, atm, t = q[keep], atm[keep], t[keep]
    lm = np.log(q["moneyness"].to_numpy(float))
    y = q["mark_iv"].to_numpy(float) / atm
    tt = np.maximum(t, 1 / 365) / (tenor_days / 365.0)

    def resid(p: np.ndarray) -> np.ndarray:
        x = lm / (atm * np.sqrt(np.maximum(t, p[4] / 365.0)))
        return 1 + p[0] * tt ** p[2] * x + p[1] * tt ** p[3] * smile_shape(x, p[5] if wing else 0.0) - y

    # the wing's bounds: below 0.25 the smile is a V at the money, which no quote shows; at 20 it is quadratic
    # over every strike listed (|x| < 4)
    fit = least_squares(resid, np.array([-0.02, 0.04, 0.0, 0.0, 0.5, 1.5]),
                        bounds=([-1, 0, -1.5, -1.5, 0.0, 0.25], [1, 1, 1.5, 1.5, 5.0, 20.0]))
    return {"skew_slope": float(fit.x[0]), "smile_curvature": float(fit.x[1]), "skew_tenor_exp": float(fit.x[2]),
            "curv_tenor_exp": float(fit.x[3]), "smile_min_days": float(fit.x[4]),
            "smile_wing": float(fit.x[5]) if wing else 0.0,
            "smile_rmse_ratio": float(np.sqrt(np.mean(resid(fit.x) ** 2))), "smile_points": int(len(y))}


def _without_events(exp: pd.DataFrame, events: pd.DataFrame | None, underlying: str, params: dict[str, float],
                    tenor_days: float) -> pd.DataFrame:
    """Each expiry's ATM and its snapshot's 30-day ATM with the variance of the scheduled events they span removed
    (the diffusive term structure the model multiplies before adding events back)."""
    ev = EventVariance.build(events, underlying, ChainParams(atm_tenor_days=tenor_days,
                                                             **{k: v for k, v in params.items()
                                                                if k.startswith("event_")}))
    if ev is None:
        return exp
    now = pd.DatetimeIndex(pd.to_datetime(exp["ts"], utc=True)).as_unit("ns").asi8
    expiry = pd.DatetimeIndex(pd.to_datetime(exp["expiry"], utc=True)).as_unit("ns").asi8
    args = ev.pricing_args(now, expiry)
    return exp.assign(atm_iv=without_events(exp["atm_iv"], args["event_var"], exp["t_years"]),
                      atm30=without_events(exp["atm30"], args["event_var_ref"], tenor_days / 365.0))


def _fit_term(exp: pd.DataFrame, tenor_days: float) -> dict[str, Any]:
    """ln(ATM(T)/ATM(30d)) = (slope + coef ln(state)) ln(T/30d) up to 30 days and slope_long ln(T/30d) beyond,
    least squares over every snapshot's expiries of 1-180 days.

    The state keeps its coefficient only if it predicts days it was not fitted on: the fit with and without it is
    scored leave-one-day-out, and the state stays only if it lowers the squared error by more than one standard
    error of the per-day differences (the usual one-standard-error rule: the simpler model unless the data say
    otherwise; fewer than two days cannot say). On the reference data it stays for BTC and goes for ETH.
    """
    e = exp[(exp["dte_days"] >= 1.0) & (exp["dte_days"] <= 180.0) & exp["atm30"].notna()]
    lt = np.log(e["t_years"].to_numpy() / (tenor_days / 365.0))
    y = np.log(e["atm_iv"].to_numpy() / e["atm30"].to_numpy())
    z = np.log(e["state"].to_numpy(float))
    short = lt < 0
    base = np.c_[lt * short, lt * ~short]
    has_state = bool(np.isfinite(z).all() and np.ptp(z) > 0.05)

    def fit(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        used = a[rows].any(axis=0)  # no expiries on one side: that side's slope stays 0
        coef = np.zeros(a.shape[1])
        coef[used], *_ = np.linalg.lstsq(a[rows][:, used], y[rows], rcond=None)
        return coef

    days = pd.to_datetime(e["ts"], utc=True).dt.normalize().to_numpy()
    unique_days = np.unique(days)

    def left_out(a: np.ndarray) -> np.ndarray:
        """Each row predicted by a fit on the other days."""
        pred = np.empty(len(y))
        for d in unique_days:
            out = days == d
            pred[out] = a[out] @ fit(a, ~out)
        return pred

    report: dict[str, Any] = {"term_state_identified": has_state, "term_state_kept": False}
    a, lodo = base, left_out(base) if len(unique_days) >= 2 else None
    if has_state and lodo is not None:
        with_state = np.c_[base, lt * z * short]
        lodo_state = left_out(with_state)
        err, err_state = (y - lodo) ** 2, (y - lodo_state) ** 2
        # per left-out day: mean squared error without the state minus with it
        gain = [float(np.mean(err[days == d]) - np.mean(err_state[days == d])) for d in unique_days]
        se = float(np.std(gain, ddof=1) / np.sqrt(len(gain)))
        report["term_state_lodo"] = {"days": len(gain), "mean_gain": float(np.mean(gain)), "standard_error": se}
        if np.mean(gain) > se:
            report["term_state_kept"] = True
            a, lodo = with_state, lodo_state
    coef = fit(a, np.ones(len(y), dtype=bool))
    pred = a @ coef
    out = {"term_slope": float(coef[0]), "term_slope_long": float(coef[1]),
           "term_state_coef": float(coef[2]) if a.shape[1] == 3 else 0.0,
           "term_rmse_log": float(np.sqrt(np.mean((y - pred) ** 2))), "term_points": int(len(y)), **report}
    # How far the short end strays from the fit on days the fit did not see: the robustness band's short-end
    # scenarios are this wide. Per expiry of 1-7 days, the shift at T -> 0 (ChainParams.short_end_shift) that
    # would have priced its ATM right, leave-one-day-out; the band is their 90th percentile.
    short_rows = e["dte_days"].to_numpy() <= 7.0
    if lodo is not None and short_rows.any():
        fade = 1.0 - e["dte_days"].to_numpy()[short_rows] / tenor_days
        need = np.exp(lodo[short_rows]) * np.expm1(y[short_rows] - lodo[short_rows]) / fade
        p90 = float(np.quantile(np.abs(need), 0.9))
        out["short_end_band"] = float(np.clip(p90, SHORT_END_BAND_MIN, SHORT_END_BAND_MAX))
        out["short_end_lodo"] = {"points": int(short_rows.sum()), "p90": p90,
                                 "median": float(np.median(np.abs(need))), "bias": float(np.median(need))}
    return out


def _fit_spreads(q: pd.DataFrame, base: ChainParams, tenor_days: float) -> dict[str, float]:
    """The spread model (vol spread by tenor and 2 x OTM delta, then the level under tick rounding)."""
    q = q[q["bid_coin"].gt(0) & q["ask_coin"].gt(0) & q["mark_iv"].gt(0) & (q["dte_days"] <= 120)
          & (q["dte_days"] >= 0.5)]
    q = q[(q["ask_coin"] - q["bid_coin"] < 0.5 * q["mark_coin"]) | (q["ask_coin"] - q["bid_coin"] <= 0.0005)]
    otm = q[q["moneyness"] >= 1.0]
    if len(otm) < MIN_QUOTES:
        return {}
    f, k, t, iv = (otm[c].to_numpy(float) for c in ("forward", "strike", "t_years", "mark_iv"))
    spread = (otm["ask_coin"] - otm["bid_coin"]).to_numpy(float)
    vega_coin = np.asarray(call_vega(f, k, t, iv)) / f
    d = np.asarray(call_delta(f, k, t, iv))
    otm_delta = np.clip(np.minimum(d, 1 - d), 1e-3, 0.5)
    x = np.c_[np.ones(len(otm)), np.log(t / (tenor_days / 365.0)), np.log(2 * otm_delta)]
    b, *_ = np.linalg.lstsq(x, np.log(spread / vega_coin), rcond=None)
    p = base.model_copy(update={"spread_tenor_exp": float(min(b[1], 0.0)), "spread_delta_exp": float(min(b[2], 0.0)),
                                "spread_itm_frac": 0.0})
    scales = np.exp(b[0]) * np.exp(np.linspace(-1.5, 0.5, 41))
    errs = []
    mark = otm["mark_coin"].to_numpy(float)
    for scale in scales:
        bid, ask = quotes(mark, f, k, t, p.model_copy(update={"spread_vol_30d": float(scale)}), iv_ann=iv)
        errs.append(abs(np.median(np.log((ask - bid) / spread))))
    plateau = scales[np.isclose(errs, np.min(errs))]
    level = float(np.exp(np.mean(np.log(plateau))))
    itm = q[q["moneyness"] < 0.85]
    itm_frac = 0.0
    if len(itm) >= 10:
        from covcall.chain import spread_coin

        fi, ki, ti, vi = (itm[c].to_numpy(float) for c in ("forward", "strike", "t_years", "mark_iv"))
        extra = (itm["ask_coin"] - itm["bid_coin"]).to_numpy(float) - spread_coin(
            itm["mark_coin"].to_numpy(float), fi, ki, ti, vi, p.model_copy(update={"spread_vol_30d": level}))
        itm_frac = float(max(np.median(extra / (np.maximum(fi - ki, 0) / fi)), 0.0))
    return {"spread_vol_30d": level, "spread_tenor_exp": float(min(b[1], 0.0)),
            "spread_delta_exp": float(min(b[2], 0.0)), "spread_itm_frac": itm_frac,
            "spread_median_log_error": float(np.min(errs)), "spread_points": int(len(otm))}


def iv_rv_premium(index: pd.DataFrame | None, daily_close: pd.DataFrame | None, window_days: float = 30.0) -> float:
    """Median of (IV index / trailing realised vol) over the index history: the proxy's premium (NaN if unknown)."""
    if index is None or daily_close is None or index.empty or daily_close.empty:
        return float("nan")
    c = daily_close.assign(ts=pd.to_datetime(daily_close["ts"], utc=True).astype("datetime64[ns, UTC]"))
    c = c.sort_values("ts")
    step = c["ts"].diff().median()
    per_day = pd.Timedelta(days=1) / step
    rv = realized_vol(c["close"].to_numpy(float), per_day * 365.0, int(round(window_days * per_day)))
    rv_known = pd.Series(rv, index=c["ts"] + step)  # known at each bar's close
    iv = index.assign(ts=pd.to_datetime(index["ts"], utc=True).astype("datetime64[ns, UTC]")).set_index("ts")["iv_ann"]
    iv = iv.groupby(iv.index.normalize()).first()  # one value a day (the first known), hourly history or not
    both = pd.merge_asof(iv.rename("iv").reset_index(), rv_known.rename("rv").reset_index().rename(
        columns={"index": "ts"}), on="ts", direction="backward").dropna()
    both = both[both["rv"] > 0]
    return float(np.median(both["iv"] / both["rv"])) if len(both) >= 30 else float("nan")


def fit_calibration(quotes_: pd.DataFrame, index: pd.DataFrame | None, candles: pd.DataFrame | None,
                    underlying: str, *, tenor_days: float = 30.0,
                    events: pd.DataFrame | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit the calibrated ChainParams values of one underlying; returns (params, fit report).

    `events` (a calendar, covcall.events) sizes scheduled events from the candles' moves around them; the term
    structure is then fitted on each expiry's ATM with its events' variance taken out.
    """
    base = ChainParams()
    exp = expiry_table(quotes_)
    if exp.empty or exp["snapshot_id"].nunique() < MIN_SNAPSHOTS:
        raise DataError(f"no usable {underlying} snapshot (calls around the forward with a mark IV); import chains "
                        "with `covcall data import-chain`")
    if len(exp) < MIN_EXPIRIES:
        raise DataError(f"only {len(exp)} usable {underlying} expiries in the stored snapshots (need at least "
                        f"{MIN_EXPIRIES}); import more snapshots")
    per_snap = []
    for sid, g in exp.groupby("snapshot_id"):
        t = g["ts"].iloc[0]
        idx = index_known_at(index, t)
        short = realised_known_at(candles, t, base.term_state_days)
        per_snap.append({"snapshot_id": sid, "ts": t, "atm30": atm30(g, tenor_days), "index": idx,
                         "state": short / idx if np.isfinite(short) and idx > 0 else np.nan})
    snaps = pd.DataFrame(per_snap)
    exp = exp.merge(snaps[["snapshot_id", "atm30", "state"]], on="snapshot_id")
    params: dict[str, float] = {}
    report: dict[str, Any] = {"snapshots": int(len(snaps)), "expiries": int(len(exp))}
    ratio = snaps["atm30"] / snaps["index"]
    if ratio.notna().sum() >= MIN_SNAPSHOTS:
        params["atm_index_ratio"] = float(ratio.median())
        report["atm_index_ratio_range"] = [float(ratio.min()), float(ratio.max())]
    else:
        report["atm_index_ratio_note"] = "no IV index known at the snapshots: ratio left at 1.0"
    moves = fit_event_moves(candles, events)
    for kind in ("cpi", "fomc"):
        if kind in moves:
            params[f"event_move_{kind}"] = moves[kind]["move"]
    report["event_moves"] = moves
    term = _fit_term(_without_events(exp, events, underlying, params, tenor_days), tenor_days)
    params.update(term_slope=term.pop("term_slope"), term_slope_long=term.pop("term_slope_long"),
                  term_state_coef=term.pop("term_state_coef"))
    if "short_end_band" in term:
        params["short_end_band"] = term.pop("short_end_band")
    if params["term_state_coef"]:  # a fit holds only over the states it saw: never extrapolate it
        seen = snaps["state"].dropna()
        params.update(term_state_min=float(seen.min()), term_state_max=float(seen.max()))
    report.update(term)
    q = chain_call_quotes(quotes_)
    atm_by = {(r.snapshot_id, r.expiry): r.atm_iv for r in exp.itertuples()}
    smile = _fit_smile(q, atm_by, tenor_days)
    report.update(smile_rmse_ratio=smile.pop("smile_rmse_ratio"), smile_points=smile.pop("smile_points"))
    params.update(smile)
    spreads = _fit_spreads(q, base, tenor_days)
    if spreads:
        report.update(spread_median_log_error=spreads.pop("spread_median_log_error"),
                      spread_points=spreads.pop("spread_points"))
        params.update(spreads)
    long = exp[exp["dte_days"] >= 7.0]
    if len(long):
        params["basis_ann"] = float(np.median(long["basis"]))
        report["basis_by_snapshot"] = {str(k): float(v) for k, v in long.groupby("snapshot_id")["basis"].median()
                                       .items()}
    daily = None
    if candles is not None and not candles.empty:
        c = candles.assign(ts=pd.to_datetime(candles["ts"], utc=True)).set_index("ts")["close"]
        daily = c.resample("1D").last().dropna().rename("close").reset_index()
    premium = iv_rv_premium(index, daily)
    if np.isfinite(premium):
        params["iv_rv_premium"] = premium
    report["snapshot_inputs"] = [{"snapshot_id": r.snapshot_id, "ts": r.ts.isoformat(), "atm30": r.atm30,
                                  "index": r.index, "state": r.state} for r in snaps.itertuples()]
    return params, report


# -- persistence and resolution -----------------------------------------------------------------------------
def calibrate(store: Store, underlying: str, *, now: pd.Timestamp) -> Calibration:
    """Fit and store a new calibration of `underlying` from every stored snapshot and its IV index history.

    `now` stamps the calibration (bookkeeping only; nothing it fits depends on it).
    """
    u = underlying.strip().upper()
    snaps = store.list_snapshots(u)
    if snaps.empty:
        known = sorted(store.list_snapshots()["underlying"].unique())
        raise DataError(f"no stored {u} chain snapshots{did_you_mean(u, known)}; import some with "
                        "`covcall data import-chain --file F`")
    quotes_ = store.read_chain(list(snaps["snapshot_id"]))
    index, candles = best_index(store, u), best_candles(store, u)
    events = calendar_for(u, store)
    params, report = fit_calibration(quotes_, index, candles, u, events=events)
    ChainParams(**params)  # a fit outside the model's bounds is refused here, before anything is stored
    previous = store.list_calibrations(u)
    version = int(previous["version"].max()) + 1 if len(previous) else 1
    cal = Calibration(f"{u}-v{version}", u, params, {
        "snapshots": list(snaps["snapshot_id"]), "first_snapshot": snaps["ts"].min().isoformat(),
        "last_snapshot": snaps["ts"].max().isoformat(),
        "iv_index": None if index is None else {"rows": int(len(index)),
                                                "first": pd.Timestamp(index["ts"].min()).isoformat(),
                                                "last": pd.Timestamp(index["ts"].max()).isoformat()},
        "candles": None if candles is None else {"rows": int(len(candles))},
        "events": {"rows": int(len(events)), "first": events["ts"].min().isoformat(),
                   "last": events["ts"].max().isoformat()} if len(events) else None}, report, version)
    store.save_calibration({"calibration_id": cal.calibration_id, "underlying": u, "created_at": now,
                            "version": version, "params_json": json.dumps(params, sort_keys=True),
                            "data_json": json.dumps(cal.data, sort_keys=True, default=str),
                            "errors_json": json.dumps(report, sort_keys=True, default=str)})
    return cal


def packaged_defaults() -> dict[str, dict[str, Any]]:
    """The calibrations shipped with covcall (fitted on the reference snapshots; see docs/chain.md)."""
    try:
        text = resources.files("covcall").joinpath(_DEFAULTS_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {}
    return json.loads(text)


def resolve(name: str | None, underlying: str, store: Store | None) -> Calibration | None:
    """The calibration a run starts from: 'none' (the plain ChainParams defaults), 'default' (shipped with
    covcall), 'auto' (the newest stored one of the underlying, else the shipped one) or a stored id."""
    if name in (None, "none"):
        return None
    u = underlying.upper()
    if name in ("auto", "default"):
        if name == "auto" and store is not None:
            stored = store.list_calibrations(u)
            if len(stored):
                r = stored.iloc[0]
                return Calibration(r["calibration_id"], u, r["params"], r["data"], r["errors"], int(r["version"]))
        shipped = packaged_defaults().get(u)
        if shipped is None:
            return None
        return Calibration(f"default-{u}", u, shipped["params"], shipped.get("data", {}), shipped.get("errors", {}),
                           int(shipped.get("version", CALIBRATION_VERSION)))
    if store is None:
        raise CovcallError(f"calibration {name!r} is a stored one and needs a database; use 'auto' or 'default'")
    stored = store.list_calibrations()
    hit = stored[stored["calibration_id"] == name]
    if hit.empty:
        known = list(stored["calibration_id"])
        raise CovcallError(f"no calibration {name!r}{did_you_mean(name, known)}; list them with "
                           "`covcall calibrate --list`, or use 'auto', 'default' or 'none'")
    r = hit.iloc[0]
    if r["underlying"] != u:
        raise CovcallError(f"calibration {name!r} is for {r['underlying']}, not {u}")
    return Calibration(r["calibration_id"], u, r["params"], r["data"], r["errors"], int(r["version"]))


def effective_chain(chain: ChainParams, cal: Calibration | None) -> ChainParams:
    """The calibration's values under the fields the user set explicitly in `chain` (those win)."""
    if cal is None:
        return chain
    explicit = {k: getattr(chain, k) for k in chain.model_fields_set}
    return cal.chain_params(explicit)


def chain_for(chain: ChainParams, name: str | None, underlying: str, store: Store | None,
              resolved: dict[tuple[str, str], Calibration | None] | None = None) -> tuple[ChainParams, str | None]:
    """The ChainParams a run prices with and the calibration id it records.

    A chain that sets every calibrated field explicitly needs no calibration (walks resolve once and pass the
    result on this way); otherwise `name` is resolved ('auto', 'default', 'none' or a stored id), once per
    (name, underlying) when a sweep passes its `resolved` dict (a database read each time otherwise).
    """
    if name in (None, "none"):
        return chain, None
    if set(FITTED) - set(ADDED_LATER) <= chain.model_fields_set:
        return chain, name
    key = (name, underlying.upper())
    if resolved is not None and key in resolved:
        cal = resolved[key]
    else:
        cal = resolve(name, underlying, store)
        if resolved is not None:
            resolved[key] = cal
    return effective_chain(chain, cal), (cal.calibration_id if cal else None)


def chain_overrides(chain: dict[str, Any], calibration_id: str | None, underlying: str,
                    store: Store | None) -> dict[str, Any]:
    """The fields of a stored run's chain (its config holds the whole surface it priced with) that its calibration
    did not give: what the user set. `calibration_id` is what the run recorded (None, 'default-BTC' or a stored id).

    >>> fitted = resolve("default", "BTC", None).chain_params().model_dump(mode="json")
    >>> chain_overrides({**fitted, "spread_scale": 2.0}, "default-BTC", "BTC", None)
    {'spread_scale': 2.0}
    >>> chain_overrides(ChainParams().model_dump(mode="json"), None, "BTC", None)
    {}
    """
    if calibration_id is None:
        cal = None
    elif calibration_id == f"default-{underlying.upper()}":
        cal = resolve("default", underlying, store)
    else:
        cal = resolve(calibration_id, underlying, store)
    base = effective_chain(ChainParams(), cal).model_dump(mode="json")
    return {k: v for k, v in chain.items() if k in base and base[k] != v}


def term_ratio(params: ChainParams, dte_days: float, state: float = 1.0) -> float:
    """ATM(dte) / ATM(30d) under `params` at a given state (for reports)."""
    return float(_term_factor(np.array([dte_days / 365.0]), params, np.array([state]))[0])
