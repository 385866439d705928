"""What a backtest costs: each run of a grid timed in this process, fitted to covcall.batch.RUN_COST.

    python bench/bench_cost.py

Runs a grid of synthetic backtests serially (BTC and ETH, 1h / 4h / 1d, one year and 2.5 years, both exit
styles, 1h / 4h also deciding at every bar), times each run (best of two, the chain's caches cleared before each:
a run of dates no earlier run saw), fits per exit style

    seconds = per_run + per_day * days + per_bar * bars

by least squares and prints
JSON: the fitted coefficients, each run's time with the estimate of the fit and of the shipped RUN_COST, and the
Spearman rank correlation of each estimate with the measured times (what ordering units biggest-first needs).
A cost in bars alone (the model before RUN_COST) is ranked too: a run decides about once per call sold whatever
its bars, so a daily run costs per bar about twenty times an hourly one, and deciding at every bar (no decision
hour) costs about as much as deciding once a day.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd


def _ranks(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank().to_numpy()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def main() -> int:
    from covcall.backtest import BacktestConfig, backtest_unit, load_market_inputs
    from covcall.batch import RUN_COST, run_seconds
    from covcall.chain import clear_caches
    from covcall.timeframes import BAR_LENGTH

    windows = [("2022-01-01", "2022-12-31"), ("2020-01-01", "2022-06-30")]
    configs = []
    for u in ("BTC", "ETH"):
        for tf in ("1h", "4h", "1d"):
            for start, end in windows:
                for style in ("hold_to_expiry", "tp_and_roll"):
                    hours: list[int | None] = [8] if tf == "1d" else [8, None]
                    for hour in hours:
                        configs.append(BacktestConfig.parse({"underlying": u, "timeframe": tf, "start": start,
                                                             "end": end, "exit_style": style,
                                                             "decision_hour_utc": hour}))
    data = {}
    for c in configs:
        data.setdefault((c.underlying, c.timeframe, c.start), load_market_inputs(c))
    backtest_unit(configs[0], data[(configs[0].underlying, configs[0].timeframe, configs[0].start)])  # warm caches
    rows = []
    for c in configs:
        d = data[(c.underlying, c.timeframe, c.start)]
        best = np.inf
        for _ in range(2):
            clear_caches()  # each run as the first of its dates in a worker (a sweep's later runs are faster)
            t = time.perf_counter()
            backtest_unit(c, d)
            best = min(best, time.perf_counter() - t)
        bars = ((c.end - c.start).days + 1) * (pd.Timedelta(days=1) / BAR_LENGTH[c.timeframe])
        rows.append({"run": f"{c.underlying} {c.timeframe} {c.start}..{c.end} {c.exit_style} "
                            f"hour={c.decision_hour_utc}", "style": c.exit_style, "bars": float(bars),
                     "days": float((c.end - c.start).days + 1), "seconds": best, "shipped": run_seconds(c)})
    df = pd.DataFrame(rows)
    fitted = {}
    df["fitted"] = 0.0
    for style, g in df.groupby("style"):
        x = np.c_[np.ones(len(g)), g["days"], g["bars"]]
        coef, *_ = np.linalg.lstsq(x, g["seconds"].to_numpy(), rcond=None)
        fitted[style] = {"per_run": round(float(coef[0]), 4), "per_day": round(float(coef[1]), 6),
                         "per_bar": round(float(coef[2]), 7)}
        df.loc[g.index, "fitted"] = x @ coef
    rel = lambda col: float(np.median(np.abs(df[col] / df["seconds"] - 1)))  # noqa: E731
    out = {
        "runs": len(df), "total_s": round(float(df["seconds"].sum()), 2),
        "fitted": fitted, "shipped": RUN_COST,
        "median_rel_error": {"fitted": round(rel("fitted"), 3), "shipped": round(rel("shipped"), 3)},
        "spearman_with_measured": {"fitted": round(_spearman(df["fitted"].to_numpy(), df["seconds"].to_numpy()), 3),
                                   "shipped": round(_spearman(df["shipped"].to_numpy(), df["seconds"].to_numpy()), 3),
                                   "bars_only": round(_spearman(df["bars"].to_numpy() * np.where(
                                       df["style"] == "hold_to_expiry", 1.0, 2.0), df["seconds"].to_numpy()), 3)},
        "table": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}
                  for r in df.sort_values("seconds", ascending=False).to_dict("records")],
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
