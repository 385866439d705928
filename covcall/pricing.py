"""Black-Scholes prices, greeks and implied vol for European options, vectorised over numpy arrays."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "call_price",
    "put_price",
    "call_delta",
    "call_gamma",
    "call_vega",
    "call_theta",
    "implied_vol",
]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def ndtr(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF. scipy.special is imported on first use: it takes 0.15-0.2 s to import, and a
    sweep's driver imports this module without ever pricing (its workers do, with it preloaded)."""
    from scipy.special import ndtr as _ndtr

    return _ndtr(x)


def _out(x: np.ndarray) -> float | np.ndarray:
    """Return a Python float for 0-d results so scalar calls give scalars."""
    return float(x) if np.ndim(x) == 0 else x


def _prepare(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike):
    s, k, t, v, r = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (spot, strike, t_years, vol, rate)))
    live = (t > 0) & (v > 0)
    # Dead cells get harmless dummies so the d1/d2 algebra never divides by zero; their results are overwritten.
    t_safe = np.where(live, t, 1.0)
    v_safe = np.where(live, v, 1.0)
    k_safe = np.where(k > 0, k, 1e-300)
    s_safe = np.where(s > 0, s, 1e-300)
    sd = v_safe * np.sqrt(t_safe)
    d1 = (np.log(s_safe / k_safe) + (r + 0.5 * v_safe * v_safe) * t_safe) / sd
    d2 = d1 - sd
    disc = np.exp(-r * np.maximum(t, 0.0))
    return s, k, t, v, r, live, t_safe, sd, d1, d2, disc


def call_price(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0):
    """Black-Scholes call price in the currency of `spot`; broadcasts over arrays.

    `t_years <= 0` gives intrinsic value max(spot - strike, 0); `vol <= 0` gives the discounted
    intrinsic forward max(spot - strike * exp(-rate * t), 0).

    >>> round(call_price(100, 100, 1.0, 0.2), 4)
    7.9656
    >>> round(call_price(42, 40, 0.5, 0.2, 0.1), 2)  # Hull, Options Futures and Other Derivatives, ex. 15.6
    4.76
    >>> call_price([90, 110], 100, 0.0, 0.5)
    array([ 0., 10.])
    """
    s, k, t, v, r, live, _, _, d1, d2, disc = _prepare(spot, strike, t_years, vol, rate)
    bs = s * ndtr(d1) - k * disc * ndtr(d2)
    dead = np.where(t > 0, np.maximum(s - k * disc, 0.0), np.maximum(s - k, 0.0))
    return _out(np.where(live, bs, dead))


def put_price(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0):
    """Black-Scholes put price via put-call parity (same conventions as `call_price`).

    >>> round(put_price(42, 40, 0.5, 0.2, 0.1), 2)  # Hull ex. 15.6
    0.81
    """
    s, k, t, *_ = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (spot, strike, t_years, vol, rate)))
    r = np.broadcast_to(np.asarray(rate, dtype=float), s.shape)
    c = np.asarray(call_price(spot, strike, t_years, vol, rate))
    disc = np.exp(-r * np.maximum(t, 0.0))
    p = c - s + k * disc
    # Parity at expiry gives intrinsic already; clip tiny negative round-off.
    return _out(np.maximum(p, 0.0))


def call_delta(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0):
    """dC/dspot; at expiry 1.0 if spot > strike else 0.0 (same step rule for vol <= 0 against the discounted strike).

    >>> round(call_delta(100, 100, 1.0, 0.2), 4)
    0.5398
    >>> call_delta(101, 100, 0.0, 0.2), call_delta(100, 100, 0.0, 0.2)
    (1.0, 0.0)
    """
    s, k, t, v, r, live, _, _, d1, _, disc = _prepare(spot, strike, t_years, vol, rate)
    dead = np.where(t > 0, s > k * disc, s > k).astype(float)
    return _out(np.where(live, ndtr(d1), dead))


def call_gamma(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0):
    """d2C/dspot2 (0 at expiry or zero vol).

    >>> round(call_gamma(100, 100, 1.0, 0.2), 5)
    0.01985
    """
    s, k, t, v, r, live, _, sd, d1, _, _ = _prepare(spot, strike, t_years, vol, rate)
    pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    s_safe = np.where(s > 0, s, 1.0)
    return _out(np.where(live & (s > 0), pdf / (s_safe * sd), 0.0))


def call_vega(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0):
    """dC/dvol per 1.00 of vol (divide by 100 for 'per vol point'); 0 at expiry or zero vol.

    >>> round(call_vega(100, 100, 1.0, 0.2), 4)
    39.6953
    """
    s, k, t, v, r, live, t_safe, _, d1, _, _ = _prepare(spot, strike, t_years, vol, rate)
    pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    return _out(np.where(live, s * pdf * np.sqrt(t_safe), 0.0))


def call_theta(spot: ArrayLike, strike: ArrayLike, t_years: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0):
    """dC/dcalendar-time per year (= -dC/dt_years; negative for a long call). 0 at expiry.

    >>> round(call_theta(100, 100, 1.0, 0.2), 4)
    -3.9695
    """
    s, k, t, v, r, live, t_safe, sd, d1, d2, disc = _prepare(spot, strike, t_years, vol, rate)
    pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    bs = -s * pdf * np.where(live, v, 0.0) / (2.0 * np.sqrt(t_safe)) - r * k * disc * ndtr(d2)
    # With zero vol the call is the discounted intrinsic forward; only the strike's carry decays.
    dead = np.where((t > 0) & (s > k * disc), -r * k * disc, 0.0)
    return _out(np.where(live, bs, dead))


def implied_vol(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    rate: ArrayLike = 0.0,
    *,
    vol_min: float = 1e-4,
    vol_max: float = 10.0,
    tol: float = 1e-10,
) -> np.ndarray:
    """Black-Scholes implied vol of call prices, solved for all elements at once (always an array).

    Uses vectorised bisection on [vol_min, vol_max] (robust where Newton stalls on tiny vega).
    Returns NaN where no vol reproduces the price: t_years <= 0, price at or below the discounted intrinsic forward (within
    `tol`), price at or above spot, or a solution outside the bracket. For puts convert with parity first.

    >>> round(float(implied_vol(7.9656, 100, 100, 1.0)), 4)
    0.2
    >>> implied_vol([4.7594, 0.5], 42, 40, 0.5, 0.1).round(3)
    array([0.2, nan])
    """
    p, s, k, t, r = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (price, spot, strike, t_years, rate)))
    t_pos = np.where(t > 0, t, 1.0)
    lower = np.maximum(s - k * np.exp(-r * t_pos), 0.0)
    valid = (t > 0) & np.isfinite(p) & (p > lower + tol) & (p < s - tol)
    lo = np.full(p.shape, vol_min)
    hi = np.full(p.shape, vol_max)
    valid &= (np.asarray(call_price(s, k, t_pos, lo, r)) <= p) & (np.asarray(call_price(s, k, t_pos, hi, r)) >= p)
    # 50 halvings shrink the [1e-4, 10] bracket below 1e-14, far under any quote's precision.
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        above = np.asarray(call_price(s, k, t_pos, mid, r)) > p
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    vol = 0.5 * (lo + hi)
    return np.where(valid, vol, np.nan)
