"""The vectorised engine equals the naive per-bar, per-candidate loop of bench/naive_engine.py on short windows."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from naive_engine import naive_simulate  # noqa: E402

from covcall.backtest import BacktestConfig, build_market, load_inputs, make_policy, sim_params  # noqa: E402
from covcall.engine import simulate  # noqa: E402

# a calibrated-looking surface: forward basis, index ratio, state-dependent term structure, tenor-scaled smile
SURFACE = {"basis_ann": 0.06, "atm_index_ratio": 0.94, "term_state_coef": 0.08, "term_slope": 0.02,
           "skew_tenor_exp": -0.2, "curv_tenor_exp": -0.3}


# a forward basis history that moves every day (covcall.basis): -5 .. +35 %/yr
BASIS = pd.DataFrame({"ts": pd.date_range("2022-06-01", "2023-04-30", freq="D", tz="UTC")})
BASIS["basis_ann"] = 0.15 + 0.2 * np.sin(np.arange(len(BASIS)) / 5.0)


@pytest.mark.parametrize("timeframe,exit_style,start,end,chain,basis", [
    ("1h", "tp_and_roll", "2023-03-01", "2023-03-20", {}, None),
    ("4h", "hold_to_expiry", "2022-05-01", "2022-06-15", {}, None),
    ("1d", "tp_and_roll", "2021-01-01", "2021-03-31", {}, None),
    ("4h", "tp_and_roll", "2022-09-01", "2022-10-15", SURFACE, None),
    ("4h", "tp_and_roll", "2022-09-01", "2022-10-15", SURFACE, BASIS),
    ("1h", "tp_and_roll", "2023-03-01", "2023-03-20", {}, BASIS),
])
def test_vectorised_engine_equals_the_naive_loop(timeframe: str, exit_style: str, start: str, end: str,
                                                 chain: dict, basis: pd.DataFrame | None) -> None:
    cfg = BacktestConfig(underlying="BTC", timeframe=timeframe, start=start, end=end, exit_style=exit_style,
                         chain=chain)
    candles, iv = load_inputs(cfg)
    market, first = build_market(cfg, candles, iv, basis=basis)
    assert (market.basis is not None) == (basis is not None)
    policy, params = make_policy(cfg), sim_params(cfg)
    fast = simulate(market, policy, params, first_decision=first).trades
    naive, evaluations = naive_simulate(market, policy, params, first_decision=first)
    assert len(fast) > 0 and evaluations > 0
    assert list(naive.instrument) == list(fast.instrument)
    assert list(naive.exit_reason) == list(fast.exit_reason)
    assert np.allclose(naive.pnl.to_numpy(float), fast.pnl.to_numpy(float), rtol=1e-9, atol=1e-6)
    assert np.allclose(naive.pnl_vs_hodl.to_numpy(float), fast.pnl_vs_hodl.to_numpy(float), rtol=1e-9, atol=1e-6)
