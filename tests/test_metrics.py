"""Known-answer tests for covcall.metrics: every expected number is written out and derived in comments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covcall import metrics as m
from covcall.errors import SpecError

EQ = np.array([100.0, 110.0, 99.0, 108.9])


def test_returns_total_return_and_drawdown_of_a_small_curve() -> None:
    assert m.returns_from_equity(EQ) == pytest.approx([0.1, -0.1, 0.1])
    assert m.total_return(EQ) == pytest.approx(0.089)
    # peak 110, trough 99: 99 / 110 - 1 = -0.1
    assert m.max_drawdown(EQ) == pytest.approx(-0.1)
    assert m.drawdown_series(EQ) == pytest.approx([0.0, 0.0, -0.1, -0.01])


def test_sharpe_sortino_volatility_by_hand() -> None:
    r = m.returns_from_equity(EQ)
    # mean = 0.1 / 3; sample variance = (2 * (0.2/3)^2 + (0.4/3)^2) / 2 = 0.04 / 3 = 0.013333
    # per-bar Sharpe = (1/30) / sqrt(0.04/3) = sqrt(1/12); annualised * sqrt(365) = sqrt(365/12)
    assert m.sharpe(r, 365) == pytest.approx(5.515131, abs=1e-6)
    # volatility = sqrt(0.04/3 * 365) = sqrt(4.866667)
    assert m.volatility(r, 365) == pytest.approx(2.206052, abs=1e-6)
    # downside deviation over all 3 periods = sqrt(0.01 / 3); (1/30) / sqrt(0.01/3) = 1/sqrt(3)
    assert m.sortino(r, 365) == pytest.approx(11.030261, abs=1e-6)


def test_risk_free_rate_is_taken_per_bar() -> None:
    r = m.returns_from_equity(EQ)
    # rf 3.65 % a year = 0.0001 a day; excess mean = 1/30 - 0.0001 over the same sd
    expected = (1 / 30 - 0.0001) / math.sqrt(0.04 / 3) * math.sqrt(365)
    assert m.sharpe(r, 365, rf_ann=0.0365) == pytest.approx(expected)


def test_cagr_of_a_doubling_over_one_year_of_daily_bars_is_one() -> None:
    # 366 equity points = 365 daily periods = exactly one year
    eq = np.geomspace(100.0, 200.0, 366)
    assert m.cagr(eq, 365) == pytest.approx(1.0)
    # the same doubling over two years is sqrt(2) - 1 a year
    assert m.cagr(np.geomspace(100.0, 200.0, 731), 365) == pytest.approx(math.sqrt(2) - 1)


def test_calmar_is_cagr_over_drawdown() -> None:
    eq = np.array([100.0, 80.0, 120.0])  # 2 periods of a 2-period "year", mdd -0.2
    assert m.cagr(eq, 2) == pytest.approx(0.2)
    assert m.calmar(eq, 2) == pytest.approx(1.0)
    assert math.isnan(m.calmar(np.array([1.0, 2.0, 3.0]), 365))  # never fell: no Calmar


def test_psr_matches_sharpe_ratio_efficient_frontier_example() -> None:
    # Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", J. of Risk 15(2), section 3:
    # a 2-year monthly track record with per-month SR 0.458 (mean 0.036 / sd 0.079), n = 24.
    # PSR(0) = 0.982 under normality; 0.913 with the record's skew -2.448 and kurtosis 10.164;
    # 0.953 once a third year (n = 36) with the same statistics is added.
    assert m.probabilistic_sharpe_ratio(0.458, 0.0, 24, 0.0, 3.0) == pytest.approx(0.982, abs=5e-4)
    assert m.probabilistic_sharpe_ratio(0.458, 0.0, 24, -2.448, 10.164) == pytest.approx(0.913, abs=5e-4)
    assert m.probabilistic_sharpe_ratio(0.458, 0.0, 36, -2.448, 10.164) == pytest.approx(0.953, abs=1e-3)


def test_dsr_matches_deflated_sharpe_ratio_example() -> None:
    # Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio Management 40(5), numerical
    # example: N = 100 trials, best annualised SR 2.5, variance of the trials' annualised SRs 0.5,
    # T = 1250 daily observations (5 years of 250 days), skew -3, kurtosis 10.
    # In daily units: SR = 2.5 / sqrt(250) = 0.1581, V = 0.5 / 250; the paper gets SR0 = 0.1132
    # (E[max SR], annualised 1.79) and DSR = 0.9004.
    sr0 = m.expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = m.deflated_sharpe_ratio(2.5 / math.sqrt(250), 0.5 / 250, 100, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_expected_max_sharpe_edges() -> None:
    assert m.expected_max_sharpe(0.1, 1) == 0.0
    assert m.expected_max_sharpe(0.0, 50) == 0.0
    # more trials, higher bar
    assert m.expected_max_sharpe(1.0, 1000) > m.expected_max_sharpe(1.0, 10) > 0


def test_equity_metrics_never_raise_and_nan_when_not_computable() -> None:
    one = m.equity_metrics(np.array([100.0]), "1d")
    assert one["n_bars"] == 1
    assert all(math.isnan(one[k]) for k in ("total_return", "cagr", "sharpe", "sortino", "volatility"))
    flat = m.equity_metrics(np.full(10, 100.0), "1d")
    assert flat["total_return"] == 0.0 and flat["max_drawdown"] == 0.0
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["calmar"]) and math.isnan(flat["skew"])
    empty = m.equity_metrics(np.array([]), "4h")
    assert empty["n_bars"] == 0 and math.isnan(empty["max_drawdown"])


def test_equity_metrics_values_and_moments() -> None:
    out = m.equity_metrics(EQ, "1d")
    assert out["total_return"] == pytest.approx(0.089)
    assert out["sharpe"] == pytest.approx(5.515131, abs=1e-6)
    assert out["sharpe_per_bar"] == pytest.approx(math.sqrt(1 / 12))
    # returns 0.1, -0.1, 0.1: population skew = -1/sqrt(2), kurtosis = 1.5 (non-excess)
    assert out["skew"] == pytest.approx(-1 / math.sqrt(2))
    assert out["kurtosis"] == pytest.approx(1.5)
    with pytest.raises(SpecError, match="did you mean '1d'"):
        m.equity_metrics(EQ, "1day")


def _trades() -> pd.DataFrame:
    return pd.DataFrame({
        "pnl": [-500.0, 300.0, 200.0, 100.0],
        "pnl_vs_hodl": [150.0, -400.0, 200.0, 0.0],
        "premium_usd": [150.0, 120.0, 200.0, 80.0],
        "fee_usd": [3.0, 3.0, 4.0, 2.0],
        "exit_reason": ["expired_otm", "settled_itm", "take_profit", "window_end"],
    })


def test_trade_metrics() -> None:
    out = m.trade_metrics(_trades(), quantity=1.0, start_spot=10_000.0)
    assert out["n_trades"] == 4
    assert out["win_rate"] == pytest.approx(0.5)  # 150 and 200 beat HODL; 0 does not
    assert out["assignment_rate"] == pytest.approx(0.25)
    assert out["premium_collected_usd"] == pytest.approx(550.0)
    assert out["fees_paid_usd"] == pytest.approx(12.0)
    assert out["option_pnl_usd"] == pytest.approx(-50.0)
    assert out["premium_yield"] == pytest.approx(0.055)
    none = m.trade_metrics(_trades().iloc[:0], 1.0, 10_000.0)
    assert none["n_trades"] == 0 and none["premium_collected_usd"] == 0.0 and math.isnan(none["win_rate"])


def test_backtest_metrics_compares_with_hodl() -> None:
    equity = pd.DataFrame({"covered_call": EQ, "hodl": [100.0, 120.0, 90.0, 105.0], "spot": [100.0] * 4})
    out = m.backtest_metrics(equity, _trades(), "1d", quantity=1.0)
    assert out["total_return"] == pytest.approx(0.089)
    assert out["hodl_total_return"] == pytest.approx(0.05)
    assert out["excess_return"] == pytest.approx(0.039)
    assert out["hodl_max_drawdown"] == pytest.approx(-0.25)
    hodl = m.equity_metrics(np.array([100.0, 120.0, 90.0, 105.0]), "1d")  # HODL's ratios beside the strategy's
    assert (out["hodl_sortino"], out["hodl_calmar"]) == pytest.approx((hodl["sortino"], hodl["calmar"]))
    assert out["n_trades"] == 4 and out["premium_yield"] == pytest.approx(5.5)
    from covcall.walkspec import METRICS

    assert set(METRICS) <= set(out)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=40), st.booleans())
def test_average_ranks_equal_scipys_rankdata(values: list[int], as_float: bool) -> None:
    """The numpy ranks behind AUC and Spearman are scipy.stats.rankdata's (ties share their mean rank)."""
    from scipy.stats import rankdata

    from covcall.metrics import average_ranks

    x = np.array(values, dtype=float) / (7.0 if as_float else 1.0)
    np.testing.assert_array_equal(average_ranks(x), rankdata(x))
