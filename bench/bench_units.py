"""Where a local cluster's time goes: cluster start, scatter, and each unit's own time in a worker vs serially.

    python bench/bench_units.py [WORKERS]      (default 2)

Runs the 72 one-year 1h backtests of bench_sweep.py once serially and once on a local cluster, timing every unit
inside the process that ran it, and prints JSON: start and scatter seconds, wall time of the units, the sum and
median of the units' own wall times, the sum of their CPU times, and the speed-up of the units alone (without
the cluster's start).
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def _timed(cfg, data):
    """A unit's wall time and its thread's CPU time (equal CPU but longer wall in a worker means waiting)."""
    from covcall.backtest import backtest_unit

    t, c = time.perf_counter(), time.thread_time()
    backtest_unit(cfg, data)
    return time.perf_counter() - t, time.thread_time() - c


def main() -> int:
    from covcall.backtest import load_market_inputs
    from covcall.batch import BatchSpec
    from covcall.compute import ComputeSpec, Executor

    workers = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2
    spec = BatchSpec.parse({
        "name": "units", "underlyings": ["BTC", "ETH"], "timeframes": ["1h"],
        "windows": [{"start": f"{y}-01-01", "end": f"{y}-12-31"} for y in (2021, 2022, 2023)],
        "exit_styles": ["hold_to_expiry", "tp_and_roll"],
        "params": [{"delta_min": lo, "delta_max": lo + 0.15, "threshold": th}
                   for lo in (0.10, 0.15, 0.20) for th in (0.05, 0.3)]})
    configs = spec.configs()
    data = {}
    for c in configs:
        data.setdefault((c.underlying, c.start), load_market_inputs(c))
    _timed(configs[0], data[(configs[0].underlying, configs[0].start)])  # warm the serial caches
    out = {"units": len(configs), "workers": workers}
    for mode in ("serial", "local"):
        t0 = time.perf_counter()
        with Executor(ComputeSpec(mode, workers)) as ex:
            ex.distributed  # noqa: B018 - waits for a local cluster starting in the background
            t1 = time.perf_counter()
            if ex.client is not None and "--gc-freeze" in sys.argv:
                import gc
                ex.client.run(gc.freeze)
            refs = {k: ex.scatter(v) for k, v in data.items()}
            t2 = time.perf_counter()
            own = [r for _, r, _ in ex.map(_timed, [(c, refs[(c.underlying, c.start)]) for c in configs])]
            t3 = time.perf_counter()
        out[mode] = {"start_s": round(t1 - t0, 2), "scatter_s": round(t2 - t1, 2), "units_wall_s": round(t3 - t2, 2),
                     "units_sum_s": round(sum(w for w, _ in own), 2),
                     "units_cpu_sum_s": round(sum(c for _, c in own), 2),
                     "unit_median_s": round(statistics.median(w for w, _ in own), 3)}
    out["units_speedup"] = round(out["serial"]["units_wall_s"] / out["local"]["units_wall_s"], 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
