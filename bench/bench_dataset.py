"""Dataset browser queries on a million examples and candidates: prints JSON timings (seconds per call)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from covcall.dataset import EXAMPLE_COLUMNS
from covcall.store import DatasetFilter, Store

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000


def fake_examples(n: int, rng: np.random.Generator) -> pd.DataFrame:
    sell = rng.random(n) < 0.6
    t = pd.Timestamp("2019-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 8 * 365 * 24, n)), unit="h")
    df = pd.DataFrame({c: np.nan for c in EXAMPLE_COLUMNS}, index=range(n))
    df["decision_time"] = t
    df["label_end"] = t + pd.Timedelta(days=7)
    df["underlying"] = np.where(rng.random(n) < 0.5, "BTC", "ETH")
    df["spot"] = rng.uniform(1000, 90000, n)
    df["action"] = np.where(sell, "SELL_CALL", "DO_NOTHING")
    df["reward"] = np.where(sell, rng.normal(50, 500, n), 0.0)
    df["delta"] = np.where(sell, rng.uniform(0.05, 0.5, n), np.nan)
    df["dte"] = pd.Series(rng.integers(1, 40, n), dtype="Int64").where(sell, pd.NA)
    df["exit_style"] = np.where(sell, np.where(rng.random(n) < 0.5, "hold_to_expiry", "tp_and_roll"), None)
    df["reason"] = np.where(sell, None, "score_below_threshold")
    df["instrument"] = np.where(sell, "BTC-27DEC24-60000-C", None)
    df["run_id"] = np.char.add("run-", (np.arange(n) // 5000).astype(str))
    df["example_no"] = np.arange(n)
    df["timeframe"] = "1h"
    df["extra"] = "{}"
    return df


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return round(best, 4)


def main() -> None:
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        t0 = time.perf_counter()
        store.save_run({"run_id": "bench", "status": "ok"}, {"examples": fake_examples(ROWS, rng)})
        load_s = time.perf_counter() - t0
        f = DatasetFilter(actions=("SELL_CALL",), underlyings=("BTC",), delta_min=0.1, delta_max=0.3)
        figures = {
            "rows": ROWS, "load_seconds": round(load_s, 2),
            "count_filtered": timed(lambda: store.count_rows("examples", f)),
            "first_page_100": timed(lambda: store.page_rows("examples", f, 100, 0)),
            "deep_page_100": timed(lambda: store.page_rows("examples", f, 100, 50_000)),
            "summary": timed(lambda: store.dataset_summary("examples", f)),
            "reward_histogram": timed(lambda: store.reward_histogram("examples", f, 40)),
            "reward_by_delta": timed(lambda: store.reward_by("examples", f, "delta", 20)),
            "actions_over_time": timed(lambda: store.actions_over_time(DatasetFilter(), "month")),
            "export_parquet": timed(lambda: store.copy_rows("examples", f, Path(tmp) / "x.parquet", "parquet"), 1),
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
