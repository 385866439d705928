"""Traceable trades: every call drawn from sale to exit at its strike, one marker kind per exit, a highlight."""

from __future__ import annotations

import numpy as np
import pytest

from covcall.backtest import run_backtest
from ui.charts import EXIT_MARKERS, price_figure


def test_a_tp_and_roll_run_shows_every_sale_and_every_exit_kind() -> None:
    res = run_backtest({"start": "2022-01-01", "end": "2022-12-31", "exit_style": "tp_and_roll"})
    trades, equity = res.trades, res.equity.reset_index()
    assert len(trades) > 20 and (trades["exit_reason"] == "take_profit").any()
    fig = price_figure(equity, trades, "BTC")
    by = {t.name: t for t in fig.data}
    sold = by["call sold"]
    assert len(sold.x) == len(trades)
    assert np.allclose(np.asarray(sold.y, float), trades["strike"].to_numpy(float))  # at the strike, not spot
    exits = {name: len(by[name].x) for name, _, _ in EXIT_MARKERS.values() if name in by}
    assert sum(exits.values()) == len(trades)
    assert exits["rolled (take-profit buy-back)"] == int((trades["exit_reason"] == "take_profit").sum())
    # no sale marker sits on an exit marker: a roll's new sale is visible next to the old call's exit
    exit_points = {(str(x), round(float(y), 6)) for name in exits for x, y in zip(by[name].x, by[name].y, strict=True)}
    assert not exit_points & {(str(x), round(float(y), 6)) for x, y in zip(sold.x, sold.y, strict=True)}
    seg = by["call at its strike"]
    assert len(seg.x) == 3 * len(trades)  # entry, exit, gap for each call
    assert list(seg.y[:2]) == [trades["strike"].iloc[0]] * 2


def test_picking_a_trade_highlights_its_call() -> None:
    res = run_backtest({"start": "2023-01-01", "end": "2023-03-31"})
    fig = price_figure(res.equity.reset_index(), res.trades, "BTC", highlight=2)
    h = next(t for t in fig.data if t.name == f"trade #{res.trades['trade_no'].iloc[2]}")
    assert list(h.y) == [res.trades["strike"].iloc[2]] * 2 and h.line.width == 6
    assert len(fig.layout.shapes) == 1  # the call's lifetime shaded
    assert not [t for t in price_figure(res.equity.reset_index(), res.trades, "BTC").data
                if (t.name or "").startswith("trade #")]


def test_runs_compare_by_calendar_or_by_days_since_start() -> None:
    import pandas as pd

    from ui.charts import compare_figure

    a = run_backtest({"start": "2022-01-01", "end": "2022-03-31"}).equity.reset_index().assign(run_id="a")
    b = run_backtest({"underlying": "ETH", "start": "2023-06-01", "end": "2023-08-31"}).equity.reset_index()
    both = pd.concat([a, b.assign(run_id="b")], ignore_index=True)
    cal = compare_figure(both, {"a": "BTC 2022", "b": "ETH 2023"})
    days = compare_figure(both, {"a": "BTC 2022", "b": "ETH 2023"}, by_days=True)
    assert str(cal.data[0].x[0]).startswith("2022-01-01") and str(cal.data[2].x[0]).startswith("2023-06-01")
    assert days.data[0].x[0] == 0 and days.data[2].x[0] == 0 and days.data[2].x[-1] == pytest.approx(92.0)
    assert days.data[0].y[0] == 1.0 and days.layout.xaxis.title.text == "days since the run's start"
