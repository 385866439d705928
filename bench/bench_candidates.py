"""The data side at scale: Dataset-page queries and exports on 10 million stored candidate rows.

    python bench/bench_candidates.py [ROWS]          (default 10,000,000; needs about 2 GB of disk)

Prints JSON: seconds per Dataset-page query (best of 3), the export through covcall (csv and parquet, and a
partitioned parquet dataset) against DuckDB's own COPY of the same rows, and this process's peak resident
memory. The fixture database is generated inside DuckDB (no pandas frame of 10 M rows is ever built).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from bench_dataset import timed  # run as `python bench/bench_candidates.py`: bench/ is on sys.path

from covcall.dataset import export_selection
from covcall.store import DatasetFilter, Store

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000

FIXTURE = """
INSERT INTO candidates BY NAME
SELECT 'run-' || (i // 50000) AS run_id,
       TIMESTAMP '2019-01-01' + to_hours((i // 20) * 1) AS decision_time,
       CASE WHEN i % 2 = 0 THEN 'BTC' ELSE 'ETH' END AS underlying,
       CASE WHEN i % 3 = 0 THEN '1d' WHEN i % 3 = 1 THEN '4h' ELSE '1h' END AS timeframe,
       'BTC-27DEC24-' || (50000 + (i % 20) * 1000) || '-C' AS instrument,
       TIMESTAMP '2019-01-08' + to_hours((i // 20) * 1) AS expiry,
       50000 + (i % 20) * 1000 AS strike, 7.0 AS dte_days, 0.05 + (i % 20) * 0.02 AS delta, 0.6 AS iv_ann,
       45000.0 AS spot, 1.1 AS moneyness, 0.01 AS premium_coin, 450.0 AS premium_usd, 0.01 AS premium_pct,
       455.0 AS mark_usd, 0.02 AS spread_pct, random() AS score, 0.6 AS atm_iv_ann, 0.5 AS rv_ann,
       1.2 AS iv_rv, 0.0 AS ret_1d, 0.0 AS ret_7d, 0.0 AS ret_30d,
       CASE WHEN i % 4 < 2 THEN 'hold_to_expiry' ELSE 'tp_and_roll' END AS exit_style, (i % 20 = 3) AS chosen,
       random() * 1000 - 400 AS reward, random() * 800 - 300 AS pnl_vs_hodl, random() * 0.02 - 0.005 AS pnl_vs_hodl_pct,
       TIMESTAMP '2019-01-08' + to_hours((i // 20) * 1) AS label_end, 'expired_otm' AS exit_reason
FROM range({rows}) t(i)
"""


EXPORT = """
import json, resource, time
from pathlib import Path
from covcall.dataset import export_selection
from covcall.store import DatasetFilter, Store
t0 = time.perf_counter()
export_selection(Store(Path({db!r})), "candidates", DatasetFilter(), {fmt!r}, {out!r})
print(json.dumps([time.perf_counter() - t0, round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)]))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        store = Store(path)
        store.schema_version()
        t0 = time.perf_counter()
        with duckdb.connect(str(path)) as con:
            con.execute(FIXTURE.format(rows=ROWS))
            con.execute("INSERT INTO runs (run_id, status, underlying) SELECT DISTINCT run_id, 'ok', 'BTC' "
                        "FROM candidates")
        load_s = time.perf_counter() - t0
        f = DatasetFilter(underlyings=("BTC",), exit_styles=("tp_and_roll",), delta_min=0.1, delta_max=0.3)
        figures: dict[str, object] = {
            "rows": ROWS, "fixture_seconds": round(load_s, 1),
            "count_filtered": timed(lambda: store.count_rows("candidates", f)),
            "first_page_100": timed(lambda: store.page_rows("candidates", f, 100, 0)),
            "deep_page_100": timed(lambda: store.page_rows("candidates", f, 100, 1_000_000)),
            "summary": timed(lambda: store.dataset_summary("candidates", f)),
            "reward_histogram": timed(lambda: store.reward_histogram("candidates", f, 40)),
        }
        for fmt in ("parquet", "csv"):
            out = Path(tmp) / f"all.{fmt}"
            # in a fresh process, so its peak memory is the export's own
            child = subprocess.run([sys.executable, "-c", EXPORT.format(db=str(path), fmt=fmt, out=str(out))],
                                   capture_output=True, text=True, check=True)
            ours, rss = json.loads(child.stdout.strip().splitlines()[-1])
            figures[f"export_{fmt}_peak_rss_mb"] = rss
            out.unlink()
            opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"
            t0 = time.perf_counter()
            with duckdb.connect(str(path), read_only=True) as con:
                con.execute(f"COPY (SELECT * FROM candidates) TO '{out}' ({opts})")
            raw = time.perf_counter() - t0
            out.unlink()
            figures[f"export_{fmt}_s"] = round(ours, 1)
            figures[f"duckdb_copy_{fmt}_s"] = round(raw, 1)
            figures[f"export_{fmt}_vs_copy"] = round(ours / raw, 2)
        t0 = time.perf_counter()
        export_selection(store, "candidates", DatasetFilter(), "parquet", Path(tmp) / "parts",
                         partition_by=("underlying", "timeframe"))
        figures["export_partitioned_parquet_s"] = round(time.perf_counter() - t0, 1)
    figures["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
