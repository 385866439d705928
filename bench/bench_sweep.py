"""A batch serially and on a local Dask cluster: prints JSON with wall times, the speed-up and whether the
results are identical (bit for bit in every run's metrics).

    python bench/bench_sweep.py [WORKERS] [TIMEFRAME] [PARAM_SETS]    (default: the cores, 1h, 6)

The batch: BTC and ETH x 3 windows of a year x both exit styles x 6 parameter sets = 72 runs of a year of bars
(the issue's "72-run batch at 1h").
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    from covcall.batch import BatchSpec, run_batch, work_seconds
    from covcall.compute import ComputeSpec

    workers = int(sys.argv[1]) if len(sys.argv) > 1 else (os.cpu_count() or 1)
    timeframe = sys.argv[2] if len(sys.argv) > 2 else "1h"
    n_params = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    thresholds = [round(0.05 + 0.25 * k / max(1, n_params // 3 - 1), 3) for k in range(max(1, n_params // 3))]
    spec = BatchSpec.parse({
        "name": "bench", "underlyings": ["BTC", "ETH"], "timeframes": [timeframe],
        "windows": [{"start": "2021-01-01", "end": "2021-12-31"}, {"start": "2022-01-01", "end": "2022-12-31"},
                    {"start": "2023-01-01", "end": "2023-12-31"}],
        "exit_styles": ["hold_to_expiry", "tp_and_roll"],
        "params": [{"delta_min": lo, "delta_max": lo + 0.15, "threshold": th}
                   for lo in (0.10, 0.15, 0.20) for th in thresholds]})
    run_batch({**spec.model_dump(), "windows": [w.model_dump() for w in spec.windows[:1]],
               "underlyings": ["BTC"], "params": [{}], "exit_styles": ["hold_to_expiry"]})  # warm caches
    t0 = time.perf_counter()
    serial = run_batch(spec)
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    local = run_batch(spec, compute=ComputeSpec("local", workers))
    t_local = time.perf_counter() - t0
    # the same batch again in this process: the fork server is warm (the dashboard's second sweep)
    t0 = time.perf_counter()
    again = run_batch(spec, compute=ComputeSpec("local", workers))
    t_warm = time.perf_counter() - t0
    same = [json.dumps(a["metrics"], sort_keys=True) for a in serial.runs] == \
        [json.dumps(b["metrics"], sort_keys=True) for b in local.runs] == \
        [json.dumps(c["metrics"], sort_keys=True) for c in again.runs]
    print(json.dumps({"runs": len(serial.runs), "timeframe": timeframe, "work_s": round(work_seconds(spec.configs()), 1),
                      "workers": workers, "cores": os.cpu_count(), "serial_s": round(t_serial, 2),
                      "local_s": round(t_local, 2), "speedup": round(t_serial / t_local, 2),
                      "local_again_s": round(t_warm, 2), "speedup_again": round(t_serial / t_warm, 2),
                      "identical": same, "workers_used": len(local.to_dict()["workers"])}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
