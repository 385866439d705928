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

    def chain(self, t: pd.Timestamp, spot: float, atm_iv: float, underlying: str, state=None) -> dict[str, np.ndarray]:
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

    def mark(self, spot, strike, t_years, atm_iv, state=None):
        return np.maximum(np.asarray(spot, float) - strike, 0.0) + 0.5 * np.asarray(t_years, float) * 365.0

    def ask(self, spot, strike, t_years, atm_iv, state=None):
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


SETTLE_OTM = 104 + 1 / 3  # 105 + (8/24)(103 - 105)
SETTLE_ITM = 118 + 2 / 3  # 118 + (8/24)(120 - 118)
ITM_FEE = min(0.00015 * SETTLE_ITM, 0.125 * (SETTLE_ITM - 110))  # settlement fee, 0.0178
TP_ASK = 0.5 * (1 + 1 / 3) + 0.1  # mark at 2024-01-04 00:00 (1.33 days left) + 0.1


@dataclass
class Scenario:
    """A hand-written path, the calls on offer, and the exact trades and decisions it must give."""

    opens: list[float]
    closes: list[float]
    offerings: dict[str, list[tuple[float, str, float]]]
    trades: list[dict[str, float | str]]  # per trade: the fields to check, exact to 1e-9
    actions: list[str]
    reasons: list[str | None]
    exit_style: str = "hold_to_expiry"
    threshold: float = 0.0


SCENARIOS = {
    # settles at 104.33 < 110: keep the 2.0 premium less the entry fee min(0.03 % x 100, 12.5 % x 2.0) = 0.03
    "expires worthless": Scenario(
        [99, 100, 102, 104, 105, 103], [100, 102, 104, 105, 103, 101], {"2024-01-02": [(110.0, FRI, 2.0)]},
        [{"exit_reason": "expired_otm", "spot_exit": SETTLE_OTM, "fee_usd": 0.03, "pnl_vs_hodl": 1.97,
          "pnl": 1.97 + SETTLE_OTM - 100, "exit_time": pd.Timestamp(FRI, tz="UTC")}],
        ["SELL_CALL", "DO_NOTHING"], [None, "no_candidates"]),
    # settles at 118.67 > 110: pay the intrinsic value and a settlement fee; total pnl 11.9522
    "settles in the money": Scenario(
        [99, 100, 105, 112, 118, 120], [100, 105, 112, 118, 120, 121], {"2024-01-02": [(110.0, FRI, 2.0)]},
        [{"exit_reason": "settled_itm", "exit_usd": SETTLE_ITM - 110, "fee_usd": 0.03 + ITM_FEE,
          "pnl_vs_hodl": 2.0 - 0.03 - (SETTLE_ITM - 110) - ITM_FEE,
          "pnl": 2.0 - 0.03 - (SETTLE_ITM - 110) - ITM_FEE + SETTLE_ITM - 100}],
        ["SELL_CALL", "DO_NOTHING"], [None, "no_candidates"]),
    # mark falls to half the premium at the 2024-01-04 close: bought back at the ask, a new call sold at once
    "take profit then roll": Scenario(
        [100, 100, 101, 102, 103, 104], [100, 101, 102, 103, 104, 105],
        {"2024-01-02": [(110.0, FRI, 2.0)], "2024-01-04": [(115.0, FRI, 0.3)]},
        [{"exit_reason": "take_profit", "exit_time": pd.Timestamp("2024-01-04", tz="UTC"), "exit_usd": TP_ASK,
          "pnl_vs_hodl": 2.0 - 0.03 - TP_ASK - 0.0003 * 102, "pnl": 2.0 - 0.03 - TP_ASK - 0.0003 * 102 + 2},
         {"exit_reason": "expired_otm", "entry_time": pd.Timestamp("2024-01-04", tz="UTC"),
          "pnl_vs_hodl": 0.3 - 0.0003 * 102, "pnl": 0.3 - 0.0306 + (103 + 1 / 3) - 102}],
        ["SELL_CALL", "SELL_CALL", "DO_NOTHING"], [None, None, "no_candidates"], exit_style="tp_and_roll"),
    # 12.5 % of a 0.1 premium is below 0.03 % of 100: the cap binds
    "fee cap binds": Scenario(
        [99, 100, 100, 100, 100, 100], [100] * 6, {"2024-01-02": [(130.0, FRI, 0.1)]},
        [{"exit_reason": "expired_otm", "fee_usd": 0.0125, "pnl_vs_hodl": 0.0875}],
        ["SELL_CALL", "DO_NOTHING"], [None, "no_candidates"]),
    # the only call scores below the threshold: nothing sold, reward 0
    "score below threshold": Scenario(
        [99, 100, 100, 100, 100, 100], [100] * 6, {"2024-01-02": [(130.0, FRI, 0.1)]}, [],
        ["DO_NOTHING"] * 5, ["score_below_threshold"] + ["no_candidates"] * 4, threshold=5.0),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_table(name: str) -> None:
    sc = SCENARIOS[name]
    out = run(daily_market(sc.opens, sc.closes), sc.offerings, exit_style=sc.exit_style, threshold=sc.threshold)
    assert len(out.trades) == len(sc.trades)
    for trade, expected in zip(out.trades.to_dict("records"), sc.trades, strict=True):
        for field_name, value in expected.items():
            assert trade[field_name] == (value if isinstance(value, str | pd.Timestamp) else pytest.approx(value)), \
                field_name
    assert list(out.examples.action) == sc.actions
    reasons = [None if pd.isna(r) else r for r in out.examples.reason]
    assert reasons == sc.reasons
    sold = out.examples[out.examples.action == "SELL_CALL"]
    pnl = out.trades["pnl"].tolist() if len(out.trades) else []
    assert sold.reward.tolist() == pytest.approx(pnl)  # a sale's reward is its trade's pnl
    assert (out.examples[out.examples.action == "DO_NOTHING"].reward == 0.0).all()


def test_example_dte_is_whole_days_as_in_the_seed() -> None:
    out = run(daily_market([99, 100, 102, 104, 105, 103], [100, 102, 104, 105, 103, 101]),
              {"2024-01-02": [(110.0, FRI, 2.0)]})
    assert out.examples.iloc[0].dte == 3  # 2024-01-03 00:00 -> 2024-01-05 08:00 is 3.33 days


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


def test_daily_expiry_settles_at_the_finer_bars_0800_close_when_present():
    opens, closes = [99, 100, 105, 112, 118, 120], [100, 105, 112, 118, 120, 121]
    proxy = run(daily_market(opens, closes), {"2024-01-02": [(110.0, FRI, 2.0)]}).trades.iloc[0]
    assert proxy.settlement_source == "daily_proxy" and proxy.spot_exit == pytest.approx(SETTLE_ITM)
    m = daily_market(opens, closes)
    # a 4h series of the same days: its bar opening 04:00 on the expiry day closes at 08:00 at 115
    fine_ts = pd.date_range("2024-01-01", periods=6 * 6, freq="4h", tz="UTC")
    fine_close = np.linspace(100, 121, len(fine_ts))
    k = list(fine_ts).index(pd.Timestamp("2024-01-05 04:00", tz="UTC"))
    fine_close[k] = 115.0
    m.fine_close_ns = fine_ts.as_unit("ns").asi8 + 4 * 3600 * 10**9
    m.fine_close = fine_close
    t = run(m, {"2024-01-02": [(110.0, FRI, 2.0)]}).trades.iloc[0]
    assert t.settlement_source == "finer_bars" and t.spot_exit == pytest.approx(115.0)
    fee = min(0.00015 * 115.0, 0.125 * 5.0)
    assert t.exit_usd == pytest.approx(5.0) and t.pnl_vs_hodl == pytest.approx(2.0 - 0.03 - 5.0 - fee)


def test_bought_back_calls_have_no_settlement_source():
    m = daily_market([100, 100, 101, 102, 103, 104], [100, 101, 102, 103, 104, 105])
    out = run(m, {"2024-01-02": [(110.0, FRI, 2.0)], "2024-01-04": [(115.0, FRI, 0.3)]},
              exit_style="tp_and_roll", take_profit=0.5)
    assert [None if pd.isna(s) else s for s in out.trades.settlement_source] == [None, "daily_proxy"]


def two_trades(accounting: str):
    """Day 1 a 110 call expires worthless; day 5 a 115 call is sold and settles in the money at 119."""
    opens = [99, 100, 102, 104, 105, 103, 105, 108, 111, 114, 116, 118, 121]
    closes = [100, 102, 104, 105, 103, 105, 108, 111, 114, 116, 118, 121, 122]
    params = SimParams(underlying="BTC", timeframe="1d", accounting=accounting, quotes=TableQuotes({
        pd.Timestamp("2024-01-02", tz="UTC"): [(110.0, FRI, 2.0)],
        pd.Timestamp("2024-01-06", tz="UTC"): [(115.0, "2024-01-12 08:00", 3.0)]}))
    policy = RulePolicy(delta_min=0.1, delta_max=0.5, dte_min_days=0.5, dte_max_days=40, threshold=0.0)
    return simulate(daily_market(opens, closes), policy, params)


@pytest.mark.parametrize("accounting", ["usd", "coin"])
def test_two_trades_by_hand_in_usd_and_in_coin(accounting: str) -> None:
    out = two_trades(accounting)
    t1, t2 = out.trades.iloc[0], out.trades.iloc[1]
    assert (t1.exit_reason, t2.exit_reason) == ("expired_otm", "settled_itm")
    # USD legs (identical in both accountings): premium - fees - settlement value
    settle_fee = 0.00015 * 119
    assert t1.pnl_vs_hodl == pytest.approx(2.0 - 0.03)
    assert t2.spot_exit == pytest.approx(119.0)
    assert t2.pnl_vs_hodl == pytest.approx(3.0 - 0.0003 * 103 - 4.0 - settle_fee)
    # coin legs: each flow converted at the spot of its own moment, as Deribit books them
    coin1 = (2.0 - 0.03) / 100
    coin2 = (3.0 - 0.0003 * 103) / 103 - (4.0 + settle_fee) / 119
    assert t1.pnl_vs_hodl_coin == pytest.approx(coin1) and t2.pnl_vs_hodl_coin == pytest.approx(coin2)
    eq = out.equity
    last = eq.iloc[-1]
    if accounting == "usd":  # USD cash: covered call - HODL = the legs in USD
        assert last.covered_call - last.hodl == pytest.approx(t1.pnl_vs_hodl + t2.pnl_vs_hodl)
        assert last.covered_call_coin == pytest.approx(last.covered_call / 122)
    else:  # coin: covered call - HODL = the legs in coin, and the USD value is coins x spot
        assert last.covered_call_coin - last.hodl_coin == pytest.approx(coin1 + coin2)
        assert last.covered_call == pytest.approx((1 + coin1 + coin2) * 122)
    assert (eq.hodl_coin == 1.0).all()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_pnl_identity_holds_in_both_accountings(seed: int) -> None:
    from covcall.backtest import run_backtest

    for accounting in ("usd", "coin"):
        res = run_backtest({"start": "2022-01-01", "end": "2022-06-30", "seed": seed, "accounting": accounting,
                            "exit_style": "tp_and_roll"})
        last = res.equity.iloc[-1]
        assert last.covered_call - last.hodl == pytest.approx(res.trades.pnl_vs_hodl.sum(), abs=1e-6) \
            if accounting == "usd" else last.covered_call_coin - 1.0 == pytest.approx(
                res.trades.pnl_vs_hodl_coin.sum(), abs=1e-12)
        assert res.metrics["option_pnl_coin"] == pytest.approx(res.trades.pnl_vs_hodl_coin.sum())
