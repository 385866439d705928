"""`covcall status`: what is in the database and which settings are in use (the Home page, in a terminal)."""

from __future__ import annotations

import argparse
from typing import Any

from covcall import open_store
from covcall.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="what is in the database and the settings in use",
                       description="Row counts of every table, cached series, and the settings in use.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit

    store = open_store(settings)
    counts = store.counts()
    series = store.list_series()
    payload = {
        "database": str(settings.duckdb_path), "data_source": settings.data_source,
        "exchange_id": settings.exchange_id, "save_training_data": settings.save_training_data,
        "training_data_dir": str(settings.training_data_dir), "counts": counts,
        "series": series.astype(object).where(series.notna(), None).to_dict("records") if len(series) else [],
    }

    def human() -> None:
        print(f"database     {payload['database']}")
        print(f"data source  {settings.data_source} (exchange {settings.exchange_id})")
        print(f"exports      {payload['training_data_dir']} ({'on' if settings.save_training_data else 'off'})")
        print("rows         " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        print(f"series       {len(series)} cached" + ("" if len(series) else " (see `covcall data import`)"))

    emit(args, payload, human)
    return 0
