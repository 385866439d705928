"""What the kept chains (covcall.chain.CHAINS) save a tuner: the same grid of trials on one range, with every
trial starting cold (caches cleared before each) and as a tuner runs them (one after the other, caches kept).

    python bench/bench_trials.py [TIMEFRAME] [REPEAT]      (default 1d, 3)

The grid is the README walk's quick grid (2 delta ranges x 2 tenor ranges x 2 thresholds) on one year of BTC on
the synthetic market. Prints JSON: seconds per trial, cold and kept (median of REPEAT), the speed-up, the chains
priced and reused, and whether both ways gave identical metrics.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time


def main() -> int:
    from covcall import chain
    from covcall.backtest import BacktestConfig, backtest_unit, load_market_inputs

    timeframe = sys.argv[1] if len(sys.argv) > 1 else "1d"
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    base = {"underlying": "BTC", "timeframe": timeframe, "start": "2022-01-01", "end": "2022-12-31"}
    grid = [BacktestConfig.parse({**base, "delta_min": d[0], "delta_max": d[1], "dte_min_days": t[0],
                                  "dte_max_days": t[1], "threshold": th})
            for d, t, th in itertools.product([(0.1, 0.25), (0.2, 0.35)], [(2, 10), (7, 30)], [0.1, 0.3])]
    data = load_market_inputs(grid[0])
    backtest_unit(grid[0], data)  # imports and first-use costs out of the timings

    def sweep(cold: bool) -> tuple[float, list[dict]]:
        chain.clear_caches()
        metrics, spent = [], 0.0
        for cfg in grid:
            if cold:
                chain.clear_caches()
            t = time.perf_counter()
            metrics.append(backtest_unit(cfg, data).metrics)
            spent += time.perf_counter() - t
        return spent / len(grid), metrics

    cold, kept, same = [], [], True
    for _ in range(repeat):
        c, m_cold = sweep(cold=True)
        k, m_kept = sweep(cold=False)
        cold.append(c)
        kept.append(k)
        same = same and json.dumps(m_cold, sort_keys=True) == json.dumps(m_kept, sort_keys=True)
    kept_chains = len(chain.CHAINS._items)
    out = {"trials": len(grid), "timeframe": timeframe, "seconds_per_trial_cold": round(statistics.median(cold), 4),
           "seconds_per_trial_kept": round(statistics.median(kept), 4),
           "speedup": round(statistics.median(cold) / statistics.median(kept), 2),
           "chains_kept_after_the_grid": kept_chains, "chain_cache_mb": round(chain.CHAINS.nbytes / 2**20, 1),
           "identical_metrics": same}
    print(json.dumps(out, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
