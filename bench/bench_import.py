"""CSV import at scale: wall time and peak memory of `covcall data import` on a generated 1h file (prints JSON).

The file is about 40 MB (700,000 hourly bars). Peak RSS includes the interpreter with pandas and DuckDB loaded
(about 130 MB before any data) and DuckDB's own insert (its primary-key index).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

EXE = str(Path(sys.executable).with_name("covcall"))


def main(rows: int = 700_000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "big_1h.csv"
        ts = pd.date_range("1990-01-01", periods=rows, freq="h", tz="UTC")
        close = 30000 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.005, rows)))
        pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "open": close.round(2),
                      "high": (close * 1.01).round(2), "low": (close * 0.99).round(2), "close": close.round(2),
                      "volume": np.round(np.random.default_rng(2).random(rows) * 1000, 6)}).to_csv(csv, index=False)
        env = {**os.environ, "DUCKDB_PATH": str(Path(tmp) / "bench.duckdb")}
        t0 = time.perf_counter()
        subprocess.run([EXE, "data", "import", "--csv", str(csv), "--underlying", "XYZ", "--timeframe", "1h"],
                       env=env, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        base = subprocess.run([sys.executable, "-c", "import resource, pandas, duckdb, covcall.store; "
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
                              capture_output=True, text=True, check=True)
        out = {"rows": rows, "file_mb": round(csv.stat().st_size / 2**20, 1), "wall_s": round(wall, 2),
               "peak_rss_mb": round(peak_kb / 1024, 1), "baseline_rss_mb": round(int(base.stdout) / 1024, 1),
               "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
