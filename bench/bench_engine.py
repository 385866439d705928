"""Reference workload timing: BTC, 1h bars, 2 years, tp_and_roll, default chain; prints JSON figures.

Run with `make bench` (or `python bench/bench_engine.py [--skip-naive]`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from naive_engine import naive_simulate  # noqa: E402

from covcall.backtest import BacktestConfig, build_market, load_inputs, make_policy, sim_params  # noqa: E402
from covcall.chain import clear_caches  # noqa: E402
from covcall.engine import simulate  # noqa: E402

CONFIG = BacktestConfig(underlying="BTC", timeframe="1h", start="2023-01-01", end="2024-12-31",
                        exit_style="tp_and_roll")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-naive", action="store_true", help="time only the vectorised engine")
    args = ap.parse_args()
    candles, iv = load_inputs(CONFIG)
    market, first = build_market(CONFIG, candles, iv)
    policy = make_policy(CONFIG)
    params = sim_params(CONFIG)
    simulate(market, policy, params, first_decision=first)  # warm imports
    clear_caches()  # but time the listings as a first run of these dates computes them
    t0 = time.perf_counter()
    out = simulate(market, policy, params, first_decision=first)
    fast_s = time.perf_counter() - t0
    decisions = len(out.examples)
    evaluations = len(out.candidates)
    figures = {
        "workload": "BTC 1h 2023-01-01..2024-12-31 tp_and_roll, default chain",
        "bars": int(len(market) - first), "decisions": decisions, "trades": int(len(out.trades)),
        "candidate_evaluations": evaluations, "wall_seconds": round(fast_s, 3),
        "decisions_per_s": round(decisions / fast_s, 1),
        "candidate_evaluations_per_s": round(evaluations / fast_s, 1),
    }
    if not args.skip_naive:
        t0 = time.perf_counter()
        naive, naive_evals = naive_simulate(market, policy, params, first_decision=first)
        naive_s = time.perf_counter() - t0
        same = (len(naive) == len(out.trades)
                and list(naive.instrument) == list(out.trades.instrument)
                and list(naive.exit_reason) == list(out.trades.exit_reason)
                and bool(np.allclose(naive.pnl.to_numpy(float), out.trades.pnl.to_numpy(float), rtol=1e-9,
                                     atol=1e-6)))
        figures.update({"naive_wall_seconds": round(naive_s, 3), "speedup_vs_naive": round(naive_s / fast_s, 1),
                        "naive_candidate_evaluations": naive_evals, "identical_trades": same})
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
