"""CLI start-up: wall time of `covcall --help` and `covcall status` on a fresh database (prints JSON).

Targets (issue 8): --help under 0.5 s, status under 1.5 s. Run with `make bench` or
`.venv/bin/python bench/bench_cli.py`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXE = str(Path(sys.executable).with_name("covcall"))


def timed(argv: list[str], env: dict[str, str], repeat: int = 5) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([EXE, *argv], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DUCKDB_PATH": str(Path(tmp) / "bench.duckdb")}
        subprocess.run([EXE, "status"], env=env, capture_output=True, check=True)  # create + migrate once
        out = {"help": timed(["--help"], env), "status": timed(["status"], env),
               "status_json": timed(["status", "--json"], env),
               "targets": {"help_s": 0.5, "status_s": 1.5}, "cpus": os.cpu_count(),
               "load_avg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
