"""Black-Scholes prices, greeks and implied vol against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from covcall.pricing import call_delta, call_gamma, call_price, call_theta, call_vega, implied_vol, put_price


def test_textbook_values() -> None:
    assert call_price(100, 100, 1.0, 0.2) == pytest.approx(7.9656, abs=1e-4)
    # Hull, Options, Futures and Other Derivatives, example 15.6
    assert call_price(42, 40, 0.5, 0.2, 0.1) == pytest.approx(4.76, abs=0.005)
    assert put_price(42, 40, 0.5, 0.2, 0.1) == pytest.approx(0.81, abs=0.005)
    assert call_delta(42, 40, 0.5, 0.2, 0.1) == pytest.approx(0.7791, abs=1e-4)


def test_put_call_parity_on_random_arrays() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    s, k = rng.uniform(50, 150, n), rng.uniform(50, 150, n)
    t, v, r = rng.uniform(0.01, 2, n), rng.uniform(0.05, 1.5, n), rng.uniform(-0.02, 0.1, n)
    lhs = call_price(s, k, t, v, r) - put_price(s, k, t, v, r)
    np.testing.assert_allclose(lhs, s - k * np.exp(-r * t), atol=1e-9)


def test_greeks_match_finite_differences() -> None:
    s, k, t, v, r = 2000.0, 2200.0, 14 / 365, 0.7, 0.03
    h = 0.01
    up, dn = call_price(s + h, k, t, v, r), call_price(s - h, k, t, v, r)
    assert call_delta(s, k, t, v, r) == pytest.approx((up - dn) / (2 * h), rel=1e-6)
    assert call_gamma(s, k, t, v, r) == pytest.approx((up - 2 * call_price(s, k, t, v, r) + dn) / h**2, rel=1e-4)
    dv = 1e-5
    fd_vega = (call_price(s, k, t, v + dv, r) - call_price(s, k, t, v - dv, r)) / (2 * dv)
    assert call_vega(s, k, t, v, r) == pytest.approx(fd_vega, rel=1e-6)
    dt = 1e-6
    fd_theta = -(call_price(s, k, t + dt, v, r) - call_price(s, k, t - dt, v, r)) / (2 * dt)
    assert call_theta(s, k, t, v, r) == pytest.approx(fd_theta, rel=1e-5)


def test_vectorised_equals_scalar_and_broadcasts() -> None:
    spot = np.array([[90.0], [100.0], [110.0]])  # 3 paths x 4 strikes
    strike = np.array([80.0, 95.0, 105.0, 130.0])
    out = call_price(spot, strike, 0.25, 0.5)
    assert out.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert out[i, j] == call_price(float(spot[i, 0]), float(strike[j]), 0.25, 0.5)
    assert isinstance(call_price(100, 100, 1.0, 0.2), float)


def test_expiry_and_zero_vol_edge_cases() -> None:
    np.testing.assert_allclose(call_price([90, 110], 100, 0.0, 0.5), [0.0, 10.0])
    np.testing.assert_allclose(call_price([90, 110], 100, -1.0, 0.5), [0.0, 10.0])
    assert call_price(110, 100, 1.0, 0.0, 0.05) == pytest.approx(110 - 100 * np.exp(-0.05))
    np.testing.assert_allclose(put_price([90, 110], 100, 0.0, 0.5), [10.0, 0.0])
    assert call_delta(100.01, 100, 0.0, 0.5) == 1.0
    assert call_delta(100.0, 100, 0.0, 0.5) == 0.0
    assert call_gamma(100, 100, 0.0, 0.5) == 0.0 and call_vega(100, 100, 0.0, 0.5) == 0.0


def test_implied_vol_round_trip() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    s = rng.uniform(1000, 3000, n)
    k = s * np.exp(rng.uniform(-0.5, 0.5, n))
    t, v = rng.uniform(1 / 365, 1.0, n), rng.uniform(0.1, 2.0, n)
    price = call_price(s, k, t, v)
    iv = implied_vol(price, s, k, t)
    ok = np.asarray(call_vega(s, k, t, v)) > 1e-3 * s  # vols with no price sensitivity are not recoverable
    np.testing.assert_allclose(iv[ok], v[ok], rtol=1e-6)
    assert ok.mean() > 0.8


def test_implied_vol_rejects_impossible_prices() -> None:
    iv = implied_vol([0.5, 150.0, 5.0, 5.0], 100, [50, 100, 100, 100], [1.0, 1.0, 0.0, 1.0])
    assert np.isnan(iv[:3]).all()
    assert iv[3] == pytest.approx(0.1254, abs=1e-4)
