"""Deribit-style chain model: calendar, strikes, names, smile, ticks, spreads, and the real snapshot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydantic
import pytest

from covcall.chain import (
    ChainParams,
    ask_usd,
    bid_usd,
    build_chain,
    calibrate_chain,
    expiry_kind,
    instrument_name,
    list_expiries,
    load_snapshot,
    mark_call_usd,
    quotes,
    round_coin_premium,
    smile_iv,
    spread_coin,
    strike_grid,
)
from covcall.errors import SpecError
from covcall.pricing import call_delta, call_price

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SNAPSHOT = DATA / "deribit_eth_chain_2024-01-08.csv"
T_SNAP = pd.Timestamp("2024-01-08 11:19:41", tz="UTC")
SNAP_EXPIRIES = ["9JAN24", "10JAN24", "11JAN24", "12JAN24", "19JAN24", "26JAN24", "23FEB24",
                 "29MAR24", "28JUN24", "27SEP24", "27DEC24"]


def _codes(idx: pd.DatetimeIndex) -> list[str]:
    return [f"{e.day}{e:%b%y}".upper() for e in idx]


@pytest.fixture(scope="module")
def snap() -> pd.DataFrame:
    if not SNAPSHOT.exists():
        pytest.skip("../shared/data is absent")
    return load_snapshot(SNAPSHOT)


def test_expiries_at_snapshot_time_hand_written() -> None:
    exps = list_expiries(T_SNAP, ChainParams())
    assert _codes(exps) == SNAP_EXPIRIES
    assert str(exps.tz) == "UTC" and (exps.hour == 8).all() and exps.is_monotonic_increasing
    assert list(expiry_kind(exps)) == ["daily"] * 3 + ["weekly"] * 2 + ["monthly"] * 2 + ["quarterly"] * 4


def test_expiries_strictly_after_t_and_0800_boundary() -> None:
    at_expiry = list_expiries(pd.Timestamp("2024-01-09 08:00", tz="UTC"))
    assert at_expiry[0] == pd.Timestamp("2024-01-10 08:00", tz="UTC")
    before = list_expiries(pd.Timestamp("2024-01-09 07:59"))  # naive means UTC
    assert before[0] == pd.Timestamp("2024-01-09 08:00", tz="UTC")


def test_friday_that_is_weekly_and_monthly_listed_once() -> None:
    # Monday 22 Jan 2024: weeklies 26 Jan, 2 Feb, 9 Feb; 26 Jan is also the January monthly.
    exps = list_expiries(pd.Timestamp("2024-01-22 12:00", tz="UTC"))
    assert _codes(exps) == ["23JAN24", "24JAN24", "25JAN24", "26JAN24", "2FEB24", "9FEB24", "23FEB24",
                            "29MAR24", "28JUN24", "27SEP24", "27DEC24"]
    assert len(exps) == len(set(exps))
    assert expiry_kind(pd.Timestamp("2024-01-26 08:00", tz="UTC"))[0] == "monthly"


def test_current_month_dropped_once_its_last_friday_passed() -> None:
    exps = list_expiries(pd.Timestamp("2024-01-26 09:00", tz="UTC"), ChainParams(daily_expiries=0, weekly_expiries=0))
    assert _codes(exps) == ["23FEB24", "29MAR24", "26APR24", "28JUN24", "27SEP24", "27DEC24"]


def test_instrument_names() -> None:
    assert instrument_name("ETH", pd.Timestamp("2024-01-26 08:00", tz="UTC"), 2200) == "ETH-26JAN24-2200-C"
    assert instrument_name("BTC", "2024-01-05 08:00", 45000.0) == "BTC-5JAN24-45000-C"
    names = instrument_name("XRP", np.array(["2024-03-29T08:00"] * 2, dtype="datetime64[ns]"), [0.5, 1.0])
    assert list(names) == ["XRP-29MAR24-0d5-C", "XRP-29MAR24-1-C"]


def test_tick_rounding() -> None:
    assert round_coin_premium(0.00437, "down") == pytest.approx(0.0043)
    assert round_coin_premium(0.0071, "down") == pytest.approx(0.007)
    assert round_coin_premium(0.0071, "up") == pytest.approx(0.0075)
    assert round_coin_premium(0.0043, "down") == pytest.approx(0.0043)  # no lost tick from binary round-off
    np.testing.assert_allclose(round_coin_premium([0.00012, 0.0123, 0.0124], "nearest"), [0.0001, 0.0125, 0.0125])
    with pytest.raises(SpecError, match="direction"):
        round_coin_premium(0.01, "sideways")


def test_quotes_tick_rounded_and_no_bid_for_tiny_marks() -> None:
    bid, ask = quotes(np.array([0.00003, 0.0071, 0.05]), 2224.0, np.array([2900.0, 2400.0, 2300.0]), 7 / 365,
                      ChainParams())
    assert bid[0] == 0.0 and ask[0] >= 0.0001
    for b, a, m in zip(bid, ask, [0.00003, 0.0071, 0.05], strict=True):
        tick = 0.0001 if a < 0.005 else 0.0005
        assert b <= m <= a and abs(a / tick - round(a / tick)) < 1e-6
    assert bid[1] == pytest.approx(0.0065) and ask[1] == pytest.approx(0.0075)


def test_spread_widens_far_otm_and_for_short_tenor() -> None:
    p, spot, atm = ChainParams(), 2000.0, 0.7
    strikes = np.arange(2000.0, 3001.0, 50.0)
    t = 14 / 365
    iv = smile_iv(atm, spot, strikes, t, p)
    mark = call_price(spot, strikes, t, iv) / spot
    rel = spread_coin(mark, spot, strikes, t, iv, p) / mark
    assert np.all(np.diff(rel) > 0)
    bid, ask = quotes(mark, spot, strikes, t, p, iv_ann=iv)
    rel_q = (ask - bid) / mark
    assert rel_q[-1] > 3 * rel_q[0]
    # Same 10 % OTM strike, shorter tenor: wider relative to the mark and in vol terms.
    tenors = np.array([60, 30, 14, 7, 3, 1]) / 365
    for k in (2000.0, 2200.0):
        iv_t = smile_iv(atm, spot, k, tenors, p)
        mark_t = call_price(spot, k, tenors, iv_t) / spot
        rel_t = spread_coin(mark_t, spot, k, tenors, iv_t, p) / mark_t
        assert np.all(np.diff(rel_t) > 0)


def test_quotes_imply_vol_when_not_given() -> None:
    p = ChainParams()
    iv = smile_iv(0.6, 45000.0, 50000.0, 10 / 365, p)
    mark = call_price(45000.0, 50000.0, 10 / 365, iv) / 45000.0
    np.testing.assert_allclose(quotes(mark, 45000.0, 50000.0, 10 / 365, p),
                               quotes(mark, 45000.0, 50000.0, 10 / 365, p, iv_ann=iv))


def test_smile_and_term_structure() -> None:
    p = ChainParams()
    assert float(smile_iv(0.6, 100.0, 100.0, 30 / 365, p)) == pytest.approx(0.6)
    wings = smile_iv(0.6, 100.0, np.array([60.0, 100.0, 150.0]), 30 / 365, p)
    assert wings[0] > wings[1] < wings[2]
    tenors = np.array([1, 7, 30, 90, 365]) / 365
    np.testing.assert_allclose(smile_iv(0.6, 100.0, 100.0, tenors, p), 0.6)  # flat term by default
    inverted = p.model_copy(update={"term_slope": -0.043})  # the snapshot's event-week fit
    assert np.all(np.diff(smile_iv(0.6, 100.0, 100.0, tenors, inverted)) < 0)
    assert smile_iv(0.6, 100.0, 1e6, 1e-9, p) <= 0.6 * 1.2 * p.smile_max_ratio


def test_strike_grid_spacing_scales_with_spot() -> None:
    eth_daily = strike_grid("ETH", 2224.0, 1 / 365)
    near = eth_daily[np.abs(eth_daily / 2224 - 1) < 0.05]
    assert set(np.diff(near)) == {25.0}
    eth_month = strike_grid("ETH", 2224.0, 45 / 365)
    assert set(np.diff(eth_month[np.abs(eth_month / 2224 - 1) < 0.1])) == {100.0}
    btc_week = strike_grid("BTC", 45000.0, 7 / 365)
    assert set(np.diff(btc_week[np.abs(btc_week / 45000 - 1) < 0.05])) == {1000.0}
    btc_daily = strike_grid("BTC", 95000.0, 1 / 365)
    assert set(np.diff(btc_daily[np.abs(btc_daily / 95000 - 1) < 0.02])) == {1000.0}
    sol = strike_grid("SOL", 143.7, 30 / 365)
    assert sol[0] >= 143.7 * 0.4 - 1e-9 and sol[-1] <= 143.7 * 2.5 + 1e-9 and np.all(np.diff(sol) > 0)
    long = strike_grid("ETH", 2224.0, 1.0)
    assert long[0] == pytest.approx(1000.0) and long[-1] == pytest.approx(5500.0)


@pytest.mark.parametrize(("spot", "atm"), [(2224.0, 0.3), (2224.0, 0.75), (45000.0, 0.6), (95000.0, 1.2)])
def test_thirty_day_grid_covers_delta_005_to_095(spot: float, atm: float) -> None:
    p, t = ChainParams(), 30 / 365
    k = strike_grid("X", spot, t, p)
    d = call_delta(spot, k, t, smile_iv(atm, spot, k, t, p))
    assert d.min() <= 0.05 and d.max() >= 0.95


def test_build_chain_columns_and_consistency() -> None:
    c = build_chain(T_SNAP, 2224.0, 0.75, "ETH", ChainParams())
    n = len(c["strike"])
    assert set(c) >= {"instrument", "expiry", "strike", "dte_days", "t_years", "iv_ann", "mark_usd", "mark_coin",
                      "delta", "bid_coin", "ask_coin", "bid_usd", "ask_usd", "moneyness"}
    assert all(len(v) == n for v in c.values())
    assert c["expiry"].dtype == np.dtype("datetime64[ns]")
    assert len(set(c["instrument"])) == n
    assert "ETH-26JAN24-2200-C" in set(c["instrument"])
    assert np.all(c["dte_days"] > 0) and np.all(c["bid_coin"] <= c["mark_coin"] + 1e-12)
    assert np.all(c["ask_coin"] >= c["mark_coin"] - 1e-12)
    np.testing.assert_allclose(c["bid_usd"], c["bid_coin"] * 2224.0)
    np.testing.assert_allclose(c["mark_usd"], mark_call_usd(2224.0, c["strike"], c["t_years"], 0.75, ChainParams()))
    np.testing.assert_allclose(c["ask_usd"], ask_usd(2224.0, c["strike"], c["t_years"], 0.75, ChainParams()))
    np.testing.assert_allclose(c["moneyness"], c["strike"] / 2224.0)
    far = build_chain(T_SNAP, 2224.0, 0.75, "ETH", ChainParams(min_dte_days=7))
    assert far["dte_days"].min() >= 7


def test_marks_and_quotes_broadcast_over_candidates_by_bars() -> None:
    p = ChainParams()
    rng = np.random.default_rng(3)
    spot = 2000 * np.exp(np.cumsum(rng.normal(0, 0.02, 50)))[None, :]  # 1 path x 50 bars
    strike = np.array([2000.0, 2100.0, 2300.0])[:, None]               # 3 candidates
    t = np.clip(np.linspace(7, -1, 50) / 365, 0, None)[None, :]
    atm = np.full((1, 50), 0.6)
    mark, ask, bid = (f(spot, strike, t, atm, p) for f in (mark_call_usd, ask_usd, bid_usd))
    assert mark.shape == ask.shape == bid.shape == (3, 50)
    assert np.all(bid <= mark + 1e-9) and np.all(ask >= mark - 1e-9)
    expired = t[0] == 0
    np.testing.assert_allclose(mark[:, expired], np.maximum(spot - strike, 0)[:, expired])
    for i, j in [(0, 0), (2, 10), (1, 49)]:
        assert mark[i, j] == pytest.approx(float(mark_call_usd(spot[0, j], strike[i, 0], t[0, j], 0.6, p)))


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(SpecError, match="spot must be a positive"):
        build_chain(T_SNAP, 0.0, 0.6, "ETH", ChainParams())
    with pytest.raises(SpecError, match="atm_iv"):
        build_chain(T_SNAP, 2000.0, float("nan"), "ETH", ChainParams())
    with pytest.raises(pydantic.ValidationError):
        ChainParams(skew_slop=0.1)
    with pytest.raises(pydantic.ValidationError):
        ChainParams().daily_expiries = 5  # frozen


@pytest.mark.realdata
def test_snapshot_expiries_and_names_match_model(snap: pd.DataFrame) -> None:
    exps = list_expiries(snap["t"].iloc[0], ChainParams())
    assert set(_codes(exps)) == set(snap["expire_date"])
    calls = snap[snap["option_type"] == "C"]
    names = instrument_name("ETH", calls["expiry"].to_numpy(), calls["strike_price"].to_numpy())
    assert list(names) == list(calls["instrument_name"])


@pytest.mark.realdata
def test_snapshot_calibration_reproduces_defaults(snap: pd.DataFrame) -> None:
    assert snap["iv_ann"].notna().mean() > 0.99
    fit, p = calibrate_chain(snap), ChainParams()
    assert fit["term_slope"] == pytest.approx(-0.043, abs=0.002)  # fitted, but not the default (see ChainParams)
    for name in ("skew_slope", "smile_curvature", "spread_tenor_exp", "spread_delta_exp",
                 "spread_itm_frac", "strike_step_frac_daily", "strike_step_frac_short", "strike_step_frac_long"):
        assert fit[name] == pytest.approx(getattr(p, name), abs=0.002), name
    assert fit["spread_vol_30d"] == pytest.approx(p.spread_vol_30d, rel=0.05)
    assert fit["smile_rmse"] < 0.03  # under 3 vol points
    assert 0.7 < fit["atm_iv_30d"] < 0.8


@pytest.mark.realdata
def test_snapshot_atm_strike_steps_match_model(snap: pd.DataFrame) -> None:
    for _, g in snap.groupby("expiry"):
        fwd = g["underlying_price"].iloc[0]
        s = np.unique(g["strike_price"].to_numpy(float))
        m = strike_grid("ETH", fwd, g["t_years"].iloc[0])
        near = lambda x, f=fwd: x[np.abs(x / f - 1) < 0.06]  # noqa: E731
        assert np.min(np.diff(near(s))) == np.min(np.diff(near(m)))


def test_a_whole_listing_gets_the_strikes_each_expiry_gets_alone() -> None:
    """build_chain lists every expiry's strikes in one go (strike_grids); the grids are exactly strike_grid's,
    for any spot, tenors and spacing settings, the narrow-range fallback included."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from covcall.chain import strike_grid, strike_grids

    tenors = st.sampled_from([0.0, 1 / 8760, 0.5 / 365, 1 / 365, 2 / 365, 7 / 365, 30 / 365, 90 / 365, 1.1, 3.0])

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(spot=st.floats(0.01, 500_000), years=st.lists(tenors, min_size=1, max_size=12),
           min_log=st.sampled_from([0.001, 0.1, 0.3]), inner=st.integers(1, 10))
    def check(spot: float, years: list[float], min_log: float, inner: int) -> None:
        p = ChainParams(strike_range_min_log=min_log, strike_inner_steps=inner)
        strikes, sizes = strike_grids("X", spot, np.array(years), p)
        alone = [strike_grid("X", spot, t, p) for t in years]
        assert sizes.tolist() == [g.size for g in alone]
        np.testing.assert_array_equal(strikes, np.concatenate(alone))

    check()
    assert [a.size for a in strike_grids("X", 100.0, np.array([]))] == [0, 0]


def test_the_chain_cache_is_bounded_by_bytes_least_recently_used_out_and_read_only() -> None:
    from covcall.chain import ChainCache

    cache = ChainCache(max_bytes=3 * 800)  # room for three chains of 800 bytes
    chains = {k: {"strike": np.arange(100, dtype=float)} for k in "abcd"}  # 800 bytes each
    for k in "abc":
        cache.put(k, chains[k])
    assert cache.get("a") is chains["a"]  # a hit is the very chain stored; "a" is now the most recent
    cache.put("d", chains["d"])  # over budget: the least recently used ("b") goes
    assert cache.get("b") is None and cache.get("c") is chains["c"] and cache.nbytes == 3 * 800
    with pytest.raises(ValueError, match="read-only"):
        chains["a"]["strike"][0] = 1.0  # no run can change a chain another run will get
    cache.clear()
    assert cache.get("a") is None and cache.nbytes == 0


def test_runs_that_share_decisions_share_their_chains_with_the_same_results() -> None:
    """A tuner's trials on one window decide at the same bars with the same inputs: the second trial prices no
    chain the first already priced, and its results are what a cold run gives."""
    from covcall import chain as chain_mod
    from covcall.backtest import BacktestConfig, backtest_unit, load_market_inputs

    # the realised-vol proxy: its yields put the two thresholds on either side of some decisions (on the synthetic
    # IV index both sell at every decision, and would give the same run)
    base = {"underlying": "ETH", "timeframe": "1d", "start": "2022-01-01", "end": "2022-06-30",
            "iv_source": "realized"}
    data = load_market_inputs(BacktestConfig.parse(base))
    chain_mod.clear_caches()
    built = []
    real_build = chain_mod.build_chain

    def counting(*a, **k):
        built.append(a[0])
        return real_build(*a, **k)

    import covcall.engine as engine

    engine.build_chain, saved = counting, engine.build_chain
    try:
        first = backtest_unit(BacktestConfig.parse({**base, "threshold": 0.1}), data)
        n_first = len(built)
        warm = backtest_unit(BacktestConfig.parse({**base, "threshold": 0.3}), data)
        assert len(built) - n_first < 0.2 * n_first  # nearly every decision bar was priced already
        chain_mod.clear_caches()
        cold = backtest_unit(BacktestConfig.parse({**base, "threshold": 0.3}), data)
    finally:
        engine.build_chain = saved
    assert n_first > 15  # one decision a call sold, about weekly
    for a, b in ((warm.trades, cold.trades), (warm.candidates, cold.candidates), (warm.equity, cold.equity)):
        pd.testing.assert_frame_equal(a.drop(columns=["run_id"], errors="ignore"),
                                      b.drop(columns=["run_id"], errors="ignore"))
    assert warm.metrics == cold.metrics and first.metrics != warm.metrics
