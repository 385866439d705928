"""Scenario tables: tiny hand-written price paths with the exact trades and PnL they must produce."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from covcall.engine import Market, SimParams, simulate
from covcall.policies import RulePolicy

DAY = pd.Timedelta(days=1)


@dataclass
class TableQuotes:
    """Hand-written quotes: offerings by decision time; mark = intrinsic + 0.5 USD per day left; ask = mark + 0.1."""

    offerings: dict[pd.Timestamp, list[tuple[float, str, float]]]  # t -> [(strike, expiry, bid_usd)]

    def chain(self, t: pd.Timestamp, spot: float, atm_iv: float, underlying: str) -> dict[str, np.ndarray]:
        rows = self.offerings.get(t, [])
        strike = np.array([r[0] for r in rows], dtype=float)
        expiry = pd.DatetimeIndex([pd.Timestamp(r[1], tz="UTC") for r in rows])
        dte = (expiry - t).total_seconds().to_numpy() / 86400.0 if len(rows) else np.empty(0)
        bid = np.array([r[2] for r in rows], dtype=float)
        mark = self.mark(spot, strike, dte / 365.0, atm_iv)
        return {"instrument": np.array([f"BTC-{e:%d%b%y}-{k:.0f}-C".upper() for k, e in zip(strike, expiry, strict=True)],
                                       dtype=object),
                "expiry": expiry.as_unit("ns").asi8, "strike": strike, "dte_days": dte, "t_years": dte / 365.0,
                "delta": np.full(len(rows), 0.2), "iv_ann": np.full(len(rows), atm_iv), "bid_usd": bid,
                "ask_usd": mark + 0.1, "mark_usd": mark, "moneyness": strike / spot}

    def mark(self, spot, strike, t_years, atm_iv):
        return np.maximum(np.asarray(spot, float) - strike, 0.0) + 0.5 * np.asarray(t_years, float) * 365.0

    def ask(self, spot, strike, t_years, atm_iv):
        return self.mark(spot, strike, t_years, atm_iv) + 0.1


def daily_market(opens: list[float], closes: list[float], start: str = "2024-01-01") -> Market:
    ts = pd.date_range(start, periods=len(closes), freq="1D", tz="UTC")
    n = len(closes)
    return Market(ts=ts, open=np.array(opens, float), close=np.array(closes, float), atm_iv=np.full(n, 0.5),
                  rv=np.full(n, 0.4), ret_1d=np.zeros(n), ret_7d=np.zeros(n), ret_30d=np.zeros(n),
                  bar_ns=int(DAY.value))


def run(market: Market, offerings, exit_style="hold_to_expiry", threshold=0.0, take_profit=0.5):
    params = SimParams(underlying="BTC", timeframe="1d", exit_style=exit_style, take_profit=take_profit,
                       quotes=TableQuotes({pd.Timestamp(k, tz="UTC"): v for k, v in offerings.items()}))
    policy = RulePolicy(delta_min=0.1, delta_max=0.5, dte_min_days=0.5, dte_max_days=40, threshold=threshold)
    return simulate(market, policy, params)


FRI = "2024-01-05 08:00"  # Deribit expiry; on daily bars settles at open + 8/24 (close - open) of that day


def test_call_expires_worthless():
    m = daily_market([99, 100, 102, 104, 105, 103], [100, 102, 104, 105, 103, 101])
    out = run(m, {"2024-01-02": [(110.0, FRI, 2.0)]})
    t = out.trades.iloc[0]
    # settlement = 105 + (8/24)(103 - 105) = 104.3333 < 110; entry fee min(0.03% x 100, 12.5% x 2.0) = 0.03
    assert t.exit_reason == "expired_otm"
    assert t.spot_exit == pytest.approx(104 + 1 / 3)
    assert t.fee_usd == pytest.approx(0.03)
    assert t.pnl_vs_hodl == pytest.approx(1.97)
    assert t.pnl == pytest.approx(1.97 + 4 + 1 / 3)
    assert t.exit_time == pd.Timestamp(FRI, tz="UTC")
    ex = out.examples
    assert list(ex.action) == ["SELL_CALL", "DO_NOTHING"]  # the decision after settlement finds no offering
    assert ex.iloc[1].reason == "no_candidates"
    assert ex.iloc[0].reward == pytest.approx(t.pnl)
    assert ex.iloc[0].dte == 3


def test_call_settles_in_the_money():
    m = daily_market([99, 100, 105, 112, 118, 120], [100, 105, 112, 118, 120, 121])
    out = run(m, {"2024-01-02": [(110.0, FRI, 2.0)]})
    t = out.trades.iloc[0]
    settle = 118 + 2 / 3  # 118 + (8/24)(120 - 118)
    value = settle - 110
    settle_fee = min(0.00015 * settle, 0.125 * value)  # 0.0178
    assert t.exit_reason == "settled_itm"
    assert t.exit_usd == pytest.approx(value)
    assert t.fee_usd == pytest.approx(0.03 + settle_fee)
    assert t.pnl_vs_hodl == pytest.approx(2.0 - 0.03 - value - settle_fee)
    assert t.pnl == pytest.approx(2.0 - 0.03 - value - settle_fee + settle - 100)
    assert round(t.pnl, 4) == pytest.approx(11.9522, abs=1e-4)


def test_take_profit_then_roll():
    m = daily_market([100, 100, 101, 102, 103, 104], [100, 101, 102, 103, 104, 105])
    out = run(m, {"2024-01-02": [(110.0, FRI, 2.0)], "2024-01-04": [(115.0, FRI, 0.3)]},
              exit_style="tp_and_roll", take_profit=0.5)
    assert list(out.trades.exit_reason) == ["take_profit", "expired_otm"]
    t1, t2 = out.trades.iloc[0], out.trades.iloc[1]
    # mark at 2024-01-03 00:00: 0.5 x 2.333 days = 1.167 > 1.0; at 2024-01-04 00:00: 0.667 <= 1.0 -> buy at ask
    ask = 0.5 * (1 + 1 / 3) + 0.1
    assert t1.exit_time == pd.Timestamp("2024-01-04", tz="UTC")
    assert t1.exit_usd == pytest.approx(ask)
    assert t1.pnl_vs_hodl == pytest.approx(2.0 - 0.03 - ask - 0.0003 * 102)
    assert t1.pnl == pytest.approx(2.0 - 0.03 - ask - 0.0003 * 102 + 2)
    # the roll: a new call sold at the same close the first was bought back
    assert t2.entry_time == t1.exit_time
    # mark 0.5 x 1/3 day = 0.167 at the next close stays above 0.5 x 0.3, so it expires worthless
    assert t2.pnl_vs_hodl == pytest.approx(0.3 - 0.0003 * 102)
    assert t2.pnl == pytest.approx(0.3 - 0.0306 + (103 + 1 / 3) - 102)


def test_fee_cap_binds_on_cheap_calls():
    m = daily_market([99, 100, 100, 100, 100, 100], [100, 100, 100, 100, 100, 100])
    out = run(m, {"2024-01-02": [(130.0, FRI, 0.1)]})
    t = out.trades.iloc[0]
    assert t.fee_usd == pytest.approx(0.0125)  # 12.5 % of 0.1 < 0.03 % of 100
    assert t.pnl_vs_hodl == pytest.approx(0.0875)


def test_score_below_threshold_is_do_nothing():
    m = daily_market([99, 100, 100, 100, 100, 100], [100, 100, 100, 100, 100, 100])
    out = run(m, {"2024-01-02": [(130.0, FRI, 0.1)]}, threshold=5.0)
    assert out.trades.empty
    assert out.examples.iloc[0].reason == "score_below_threshold"
    assert out.examples.iloc[0].reward == 0.0


def test_window_end_buys_back_at_ask_and_equity_identity():
    m = daily_market([99, 100, 102, 104], [100, 102, 104, 105])
    out = run(m, {"2024-01-02": [(110.0, "2024-01-12 08:00", 3.0)]})
    t = out.trades.iloc[0]
    days_left = (pd.Timestamp("2024-01-12 08:00") - pd.Timestamp("2024-01-05")).total_seconds() / 86400
    ask = 0.5 * days_left + 0.1
    assert t.exit_reason == "window_end"
    assert t.exit_usd == pytest.approx(ask)
    eq = out.equity
    assert eq.covered_call.iloc[-1] - eq.hodl.iloc[-1] == pytest.approx(out.trades.pnl_vs_hodl.sum())
    # while open, equity = coin + cash - mark
    mark_day2 = 0.5 * (pd.Timestamp("2024-01-12 08:00") - pd.Timestamp("2024-01-03")).total_seconds() / 86400
    assert eq.covered_call.iloc[2] == pytest.approx(102 + 3.0 - 0.03 - mark_day2)
