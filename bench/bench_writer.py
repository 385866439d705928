"""How fast the one writer saves a sweep's runs: one at a time vs groups through one connection (Store.writes).

    python bench/bench_writer.py

Runs the issue's 24-run batch (BTC/ETH x 1h/4h/1d x 2 windows of 2.5 years x 2 exit styles) in this process, then
saves the 24 results into a fresh DuckDB file in groups of 1, 2, 4, 8 and 24 (best of two) and prints JSON: the
milliseconds per run the driver spends. Each run is its own transaction in every case; a group shares one open and
one checkpoint. With many workers the writer is what limits a sweep: runs/s = 1000 / ms per run.

Two figures per group size: `ms_per_run_by_group_size`, what the driver does in a batch, saving runs the workers
already shaped (`covcall.dataset.run_rows` runs in the unit: Arrow tables, each example's `extra` JSON), and
`ms_per_run_shaped_in_driver`, the driver shaping each run too (`persist_run`, as batches did before).
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
from covcall.dataset import persist_run, run_rows, save_rows  # noqa: E402
from covcall.store import Store  # noqa: E402


def main() -> int:
    outs, data = [], {}
    for c in BatchSpec.parse(SPECS["issue24"]).configs():
        k = (c.underlying, c.timeframe, c.start, c.end)
        if k not in data:
            data[k] = load_market_inputs(c)
        outs.append(backtest_unit(c, data[k]))
    shaped = [run_rows(o) for o in outs]  # done by the workers in a batch
    res: dict[str, dict[str, float]] = {"ms_per_run_by_group_size": {}, "ms_per_run_shaped_in_driver": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (1, 2, 4, 8, 24):
            for name, items, save in (("ms_per_run_by_group_size", shaped, save_rows),
                                      ("ms_per_run_shaped_in_driver", outs, persist_run)):
                best = float("inf")
                for rep in range(2):
                    store = Store(Path(tmp) / f"w{size}_{rep}_{len(name)}.duckdb")
                    store.schema_version()  # creates the file and its tables: not part of saving
                    t0 = time.perf_counter()
                    for g in range(0, len(items), size):
                        with store.writes():
                            for o in items[g:g + size]:
                                save(store, o, batch_id="bench")
                    best = min(best, time.perf_counter() - t0)
                    assert store.counts()["runs"] == len(items)
                res[name][str(size)] = round(1000 * best / len(items), 1)
    print(json.dumps({"runs": len(outs), **res}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
