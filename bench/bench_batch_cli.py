"""`covcall batch --spec F --workers 1` vs `--workers 2`, end to end through the CLI (issue 11's "Done when").

    python bench/bench_batch_cli.py [REPEAT] [SPEC ...]      (default 2, every spec)

Each command runs in a fresh process on a fresh database (what a user types), so the times include Python's
start, covcall's imports, loading the data, starting the cluster and saving every run. Prints JSON per spec:
wall times (median of REPEAT), the speed-up, the seconds to the first finished run (the fixed start-up cost)
and whether both modes stored identical metrics. Specs:

- `issue24`: the issue's 24-run batch, BTC/ETH x 1h/4h/1d x 2 windows (2.5 years each) x 2 exit styles;
- `year72`: 72 one-year 1h runs (bench_sweep.py's batch);
- `year216`: 216 one-year 1h runs.
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
YEARS = [{"start": f"{y}-01-01", "end": f"{y}-12-31"} for y in (2021, 2022, 2023)]


def _params(n: int) -> list[dict[str, float]]:
    ths = [0.05, 0.3] if n <= 6 else [0.05, 0.15, 0.3, 0.4, 0.5, 0.6]
    return [{"delta_min": lo, "delta_max": lo + 0.15, "threshold": th} for lo in (0.10, 0.15, 0.20) for th in ths]


SPECS = {
    "issue24": {"name": "issue24", "underlyings": ["BTC", "ETH"], "timeframes": ["1h", "4h", "1d"],
                "windows": [{"start": "2020-01-01", "end": "2022-06-30"}, {"start": "2022-07-01", "end": "2024-12-31"}],
                "exit_styles": ["hold_to_expiry", "tp_and_roll"]},
    "year72": {"name": "year72", "underlyings": ["BTC", "ETH"], "timeframes": ["1h"], "windows": YEARS,
               "exit_styles": ["hold_to_expiry", "tp_and_roll"], "params": _params(6)},
    "year216": {"name": "year216", "underlyings": ["BTC", "ETH"], "timeframes": ["1h"], "windows": YEARS,
                "exit_styles": ["hold_to_expiry", "tp_and_roll"], "params": _params(18)},
}


def _run(spec_path: Path, workers: int, folder: Path, n: int) -> tuple[float, float, list[str]]:
    db = folder / f"w{workers}_{n}.duckdb"
    env = {**os.environ, "DUCKDB_PATH": str(db), "TRAINING_DATA_DIR": str(folder / f"exports_w{workers}_{n}")}
    out_path = folder / f"out_w{workers}_{n}.json"
    t0 = time.perf_counter()
    with out_path.open("w", encoding="utf-8") as out:  # a file, not a pipe: a full pipe would stall the command
        proc = subprocess.Popen([EXE, "batch", "--spec", str(spec_path), "--workers", str(workers), "--json"],
                                env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        first = None
        assert proc.stderr is not None
        for _line in proc.stderr:  # plain "[done/total] label" lines: the first is the first finished run
            if first is None:
                first = time.perf_counter() - t0
        proc.wait()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"covcall batch failed ({proc.returncode})")
    runs = json.loads(out_path.read_text(encoding="utf-8"))["runs"]
    metrics = [json.dumps(r["metrics"], sort_keys=True) for r in runs]
    return wall, first or wall, metrics


def main() -> int:
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    out: dict[str, object] = {"cores": os.cpu_count(), "repeat": repeat}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chosen = sys.argv[2:] or list(SPECS)
        unknown = sorted(set(chosen) - set(SPECS))
        if unknown:
            raise SystemExit(f"unknown spec {', '.join(unknown)}; choose from {', '.join(SPECS)}")
        for name, spec in ((n, SPECS[n]) for n in chosen):
            path = folder / f"{name}.json"
            path.write_text(json.dumps(spec), encoding="utf-8")
            walls: dict[int, list[float]] = {1: [], 2: []}
            firsts: dict[int, list[float]] = {1: [], 2: []}
            results: dict[int, list[str]] = {}
            for n in range(repeat):
                for workers in (1, 2):
                    wall, first, metrics = _run(path, workers, folder, n)
                    walls[workers].append(wall)
                    firsts[workers].append(first)
                    results[workers] = metrics
            serial, local = statistics.median(walls[1]), statistics.median(walls[2])
            out[name] = {"runs": len(results[1]), "serial_s": round(serial, 2), "workers2_s": round(local, 2),
                         "speedup": round(serial / local, 2),
                         "first_run_done_s": {"serial": round(statistics.median(firsts[1]), 2),
                                              "workers2": round(statistics.median(firsts[2]), 2)},
                         "identical": results[1] == results[2]}
            print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
