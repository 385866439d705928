"""How fast the one writer saves a sweep's runs: one at a time vs groups through one connection (Store.writes).

    python bench/bench_writer.py

Runs the issue's 24-run batch (BTC/ETH x 1h/4h/1d x 2 windows of 2.5 years x 2 exit styles) in this process, then
saves the 24 results into a fresh DuckDB file in groups of 1, 2, 4, 8 and 24 (best of two) and prints JSON: the
milliseconds per run. Each run is its own transaction in every case; a group shares one open and one checkpoint.
With many workers the writer is what limits a sweep: runs/s = 1000 / ms per run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_batch_cli import SPECS  # noqa: E402

from covcall.backtest import backtest_unit, load_market_inputs  # noqa: E402
from covcall.batch import BatchSpec  # noqa: E402
from covcall.dataset import persist_run  # noqa: E402
from covcall.store import Store  # noqa: E402


def main() -> int:
    outs, data = [], {}
    for c in BatchSpec.parse(SPECS["issue24"]).configs():
        k = (c.underlying, c.timeframe, c.start, c.end)
        if k not in data:
            data[k] = load_market_inputs(c)
        outs.append(backtest_unit(c, data[k]))
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1, 2, 4, 8, 24):
            best = float("inf")
            for rep in range(2):
                store = Store(Path(tmp) / f"w{size}_{rep}.duckdb")
                store.schema_version()  # creates the file and its tables: not part of saving
                t0 = time.perf_counter()
                for g in range(0, len(outs), size):
                    with store.writes():
                        for o in outs[g:g + size]:
                            persist_run(store, o, batch_id="bench")
                best = min(best, time.perf_counter() - t0)
                assert store.counts()["runs"] == len(outs)
            res[str(size)] = round(1000 * best / len(outs), 1)
    print(json.dumps({"runs": len(outs), "ms_per_run_by_group_size": res}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
