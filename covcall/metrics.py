"""Performance metrics: numpy kernels on equity curves and returns, plus a thin pandas layer for backtests.

Conventions (asserted by tests/test_metrics.py):

- Equity is a 1-D array of portfolio values, one per bar; returns are simple returns between bars.
- Annualisation uses `BARS_PER_YEAR` (crypto trades 365 days a year).
- CAGR counts `n_bars - 1` periods: 366 daily equity points are 365 periods, exactly one year.
- The risk-free rate is an annual fraction turned into a per-bar rate as `rf_ann / bars_per_year`.
- Sortino's downside deviation is `sqrt(mean(min(r - rf_bar, 0) ** 2))` over ALL periods (periods
  above the target count as zero), not the standard deviation of the negative periods only.
- Max drawdown is a negative fraction (-0.35 = 35 % below the running peak); 0.0 when equity never falls.
- Skew and kurtosis are population moments of per-bar returns; kurtosis is NON-excess (normal = 3),
  which is what the probabilistic and deflated Sharpe ratios expect.
- Anything not computable (fewer than 2 bars, zero volatility, no drawdown for Calmar) is NaN.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd

from covcall.enums import ExitReason
from covcall.errors import choice_error
from covcall.timeframes import BARS_PER_YEAR

EULER_MASCHERONI = 0.5772156649015329

_NORMAL = NormalDist()
_NAN = float("nan")


def _arr(x: np.ndarray | pd.Series | list[float]) -> np.ndarray:
    return np.asarray(x, dtype=float).ravel()


def _bars_per_year(timeframe: str) -> int:
    if timeframe not in BARS_PER_YEAR:
        raise choice_error("timeframe", timeframe, BARS_PER_YEAR)
    return BARS_PER_YEAR[timeframe]


# -- equity and return kernels -------------------------------------------------------------------
def returns_from_equity(equity: np.ndarray) -> np.ndarray:
    """Simple per-bar returns: equity[i] / equity[i-1] - 1 (length n - 1).

    >>> returns_from_equity(np.array([100.0, 110.0, 99.0])).round(6).tolist()
    [0.1, -0.1]
    """
    e = _arr(equity)
    if e.size < 2:
        return np.empty(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return e[1:] / e[:-1] - 1.0


def total_return(equity: np.ndarray) -> float:
    e = _arr(equity)
    if e.size < 2 or e[0] == 0:
        return _NAN
    return float(e[-1] / e[0] - 1.0)


def cagr(equity: np.ndarray, bars_per_year: float) -> float:
    """Compound annual growth over n_bars - 1 periods; NaN when not computable."""
    e = _arr(equity)
    if e.size < 2 or e[0] <= 0 or e[-1] < 0:
        return _NAN
    years = (e.size - 1) / bars_per_year
    return float((e[-1] / e[0]) ** (1.0 / years) - 1.0)


def volatility(returns: np.ndarray, bars_per_year: float) -> float:
    """Annualised standard deviation of per-bar returns (ddof=1)."""
    r = _arr(returns)
    if r.size < 2:
        return _NAN
    return float(np.std(r, ddof=1) * math.sqrt(bars_per_year))


def _sharpe_per_bar(returns: np.ndarray, bars_per_year: float, rf_ann: float) -> float:
    r = _arr(returns)
    if r.size < 2:
        return _NAN
    sd = float(np.std(r, ddof=1))
    if not sd > 1e-15:
        return _NAN
    return float(np.mean(r - rf_ann / bars_per_year) / sd)


def sharpe(returns: np.ndarray, bars_per_year: float, rf_ann: float = 0.0) -> float:
    """Annualised Sharpe: mean excess return per bar / std (ddof=1) * sqrt(bars_per_year)."""
    return _sharpe_per_bar(returns, bars_per_year, rf_ann) * math.sqrt(bars_per_year)


def sortino(returns: np.ndarray, bars_per_year: float, rf_ann: float = 0.0) -> float:
    """Annualised Sortino; downside deviation sqrt(mean(min(r - rf, 0)^2)) over all periods."""
    r = _arr(returns)
    if r.size < 2:
        return _NAN
    excess = r - rf_ann / bars_per_year
    dd = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if not dd > 1e-15:
        return _NAN
    return float(np.mean(excess) / dd * math.sqrt(bars_per_year))


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Per-bar drawdown from the running peak, as a fraction <= 0."""
    e = _arr(equity)
    if e.size == 0:
        return np.empty(0)
    peak = np.maximum.accumulate(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, e / peak - 1.0, 0.0)


def max_drawdown(equity: np.ndarray) -> float:
    """Deepest drawdown as a negative fraction (-0.35 = 35 % below the peak)."""
    dd = drawdown_series(equity)
    return float(dd.min()) if dd.size else _NAN


def calmar(equity: np.ndarray, bars_per_year: float) -> float:
    """CAGR / |max drawdown|; NaN when there was no drawdown."""
    mdd = max_drawdown(equity)
    if not mdd < 0:
        return _NAN
    return cagr(equity, bars_per_year) / abs(mdd)


# -- Sharpe ratio statistics ---------------------------------------------------------------------
def probabilistic_sharpe_ratio(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """Probability that the true Sharpe exceeds `sr_benchmark` (Bailey & López de Prado, 2012).

    `sr` and `sr_benchmark` are per period (not annualised), `kurtosis` is non-excess (normal = 3):
    PSR = Phi((sr - sr*) * sqrt(n - 1) / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr^2)).

    >>> round(probabilistic_sharpe_ratio(0.458, 0.0, 24, 0.0, 3.0), 3)
    0.982
    """
    if n_obs < 2 or not all(map(math.isfinite, (sr, sr_benchmark, skew, kurtosis))):
        return _NAN
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not var > 0:
        return _NAN
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var)
    return float(_NORMAL.cdf(z))


def expected_max_sharpe(sr_variance: float, n_trials: int) -> float:
    """Expected maximum Sharpe of `n_trials` unskilled trials (Bailey & López de Prado, 2014).

    E[max SR] = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e))), g = Euler-Mascheroni.
    A single trial has no selection bias, so N <= 1 gives 0.
    """
    if n_trials <= 1 or not sr_variance >= 0:
        return 0.0 if n_trials <= 1 else _NAN
    g = EULER_MASCHERONI
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(sr_variance) * ((1.0 - g) * z1 + g * z2))


def deflated_sharpe_ratio(sr: float, sr_variance_across_trials: float, n_trials: int, n_obs: int,
                          skew: float, kurtosis: float) -> float:
    """PSR of the best of `n_trials` against the Sharpe expected from luck alone (per-period units)."""
    sr0 = expected_max_sharpe(sr_variance_across_trials, n_trials)
    return probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis)


def _moments(returns: np.ndarray) -> tuple[float, float]:
    r = _arr(returns)
    if r.size < 3:
        return _NAN, _NAN
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    if not m2 > 1e-30:
        return _NAN, _NAN
    return float(np.mean(d**3) / m2**1.5), float(np.mean(d**4) / m2**2)


# -- pandas layer ----------------------------------------------------------------------------------
def equity_metrics(equity: np.ndarray, timeframe: str, rf_ann: float = 0.0) -> dict[str, float]:
    """Every equity-curve metric in one dict; NaN for what cannot be computed, never raises on data."""
    bpy = _bars_per_year(timeframe)
    e = _arr(equity)
    e = e[np.isfinite(e)]
    r = returns_from_equity(e)
    r = r[np.isfinite(r)]
    skew, kurt = _moments(r)
    return {
        "total_return": total_return(e),
        "cagr": cagr(e, bpy),
        "volatility": volatility(r, bpy),
        "sharpe": sharpe(r, bpy, rf_ann),
        "sortino": sortino(r, bpy, rf_ann),
        "max_drawdown": max_drawdown(e),
        "calmar": calmar(e, bpy),
        "n_bars": int(e.size),
        "sharpe_per_bar": _sharpe_per_bar(r, bpy, rf_ann),
        "skew": skew,
        "kurtosis": kurt,
    }


def trade_metrics(trades: pd.DataFrame, quantity: float, start_spot: float) -> dict[str, float]:
    """Option-leg statistics of a backtest's trades.

    win_rate is the share of trades with pnl_vs_hodl > 0: the option leg itself made money compared with
    just holding the coins (a covered call can lose in USD while still winning against HODL).
    premium_yield and option_pnl_pct are relative to the starting position value quantity * start_spot.
    """
    n = int(len(trades))
    notional = float(quantity) * float(start_spot)
    if n == 0:
        premium = fees = option_pnl = 0.0
        win_rate = assignment_rate = _NAN
    else:
        vs_hodl = trades["pnl_vs_hodl"].to_numpy(dtype=float)
        premium = float(np.nansum(trades["premium_usd"].to_numpy(dtype=float)))
        fees = float(np.nansum(trades["fee_usd"].to_numpy(dtype=float)))
        option_pnl = float(np.nansum(vs_hodl))
        win_rate = float(np.mean(vs_hodl > 0))
        assignment_rate = float(np.mean(trades["exit_reason"].to_numpy() == ExitReason.SETTLED_ITM))
    return {
        "n_trades": n,
        "win_rate": win_rate,
        "assignment_rate": assignment_rate,
        "premium_collected_usd": premium,
        "fees_paid_usd": fees,
        "option_pnl_usd": option_pnl,
        "premium_yield": premium / notional if notional > 0 else _NAN,
        "option_pnl_pct": option_pnl / notional if notional > 0 else _NAN,
    }


def backtest_metrics(equity: pd.DataFrame, trades: pd.DataFrame, timeframe: str, quantity: float,
                     rf_ann: float = 0.0) -> dict[str, float]:
    """Covered-call equity metrics, trade metrics and the HODL comparison for one backtest.

    The starting spot is equity['spot'][0] when present, else the first HODL value / quantity.
    """
    cc = equity["covered_call"].to_numpy(dtype=float)
    hodl = equity["hodl"].to_numpy(dtype=float)
    if "spot" in equity.columns and len(equity):
        start_spot = float(equity["spot"].iloc[0])
    elif len(equity) and quantity:
        start_spot = float(hodl[0]) / float(quantity)
    else:
        start_spot = _NAN
    out: dict[str, float] = equity_metrics(cc, timeframe, rf_ann)
    out.update(trade_metrics(trades, quantity, start_spot))
    h = equity_metrics(hodl, timeframe, rf_ann)
    out["hodl_total_return"] = h["total_return"]
    out["hodl_sharpe"] = h["sharpe"]
    out["hodl_max_drawdown"] = h["max_drawdown"]
    out["hodl_sortino"] = h["sortino"]  # every ratio a walk may rank by has HODL's beside it (covcall.sensitivity)
    out["hodl_calmar"] = h["calmar"]
    out["excess_return"] = out["total_return"] - h["total_return"]
    if "covered_call_coin" in equity.columns:
        # The same position counted in coins: HODL is flat, so the coin return is the yield a holder earned.
        c = equity_metrics(equity["covered_call_coin"].to_numpy(dtype=float), timeframe, 0.0)
        for k in ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar"):
            out[f"{k}_coin"] = c[k]
        out["excess_return_coin"] = c["total_return"]  # HODL's coin return is 0
        if len(trades) and "pnl_vs_hodl_coin" in trades.columns:
            out["option_pnl_coin"] = float(np.nansum(trades["pnl_vs_hodl_coin"].to_numpy(dtype=float)))
            out["premium_collected_coin"] = float(np.nansum(trades["premium_coin_total"].to_numpy(dtype=float)))
        else:
            out["option_pnl_coin"] = out["premium_collected_coin"] = 0.0
    return out


# -- model diagnostics (numpy; scikit-learn is not a dependency) ----------------------------------------
def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve from the Mann-Whitney U statistic (ties count half); NaN with one class.

    >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(np.asarray(p, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks (scipy.stats.rankdata's default), in numpy:
    importing scipy.stats for it cost every walk with models half a second.

    >>> average_ranks(np.array([10.0, 30.0, 20.0, 20.0]))
    array([1. , 4. , 2.5, 2.5])
    """
    _, inverse, counts = np.unique(np.asarray(x, dtype=float), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the rank of each distinct value's last occurrence
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of probabilities against 0/1 outcomes."""
    return float(np.mean((np.asarray(p, dtype=float) - np.asarray(y, dtype=float)) ** 2))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of 0/1 outcomes (probabilities clipped to [eps, 1 - eps])."""
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation (Pearson on average ranks); NaN when either side is constant."""
    ra, rb = average_ranks(np.asarray(a, dtype=float)), average_ranks(np.asarray(b, dtype=float))
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Rows sorted by predicted probability, cut into `bins` equal-count groups: mean prob vs observed rate."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p, kind="mergesort")
    out = []
    for b, idx in enumerate(np.array_split(order, min(bins, len(order)))):
        if len(idx):
            out.append({"bin": b + 1, "mean_pred": float(p[idx].mean()), "observed": float(y[idx].mean()),
                        "count": int(len(idx))})
    return out
