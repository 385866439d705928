"""`covcall status`: what is in the database and which settings are in use (the Home page, in a terminal)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from covcall import open_store

if TYPE_CHECKING:
    from covcall.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="what is in the database and the settings in use",
                       description="Row counts of every table, cached series, recent batches and walks with their "
                                   "state (a killed one shows as interrupted), and the settings in use.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.jobs import job_rows

    store = open_store(settings)
    counts = store.counts()
    series = store.series_rows()
    jobs = job_rows(store)
    payload = {
        "database": str(settings.duckdb_path), "data_source": settings.data_source,
        "exchange_id": settings.exchange_id, "save_training_data": settings.save_training_data,
        "training_data_dir": str(settings.training_data_dir), "counts": counts, "series": series,
        "jobs": [{k: j[k] for k in ("job_id", "kind", "name", "status", "created_at", "updated_at", "error")}
                 for j in jobs],
    }

    def human() -> None:
        print(f"database     {payload['database']}")
        print(f"data source  {settings.data_source} (exchange {settings.exchange_id})")
        print(f"exports      {payload['training_data_dir']} ({'on' if settings.save_training_data else 'off'})")
        print("rows         " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        print(f"series       {len(series)} cached" + ("" if series else " (see `covcall data import`)"))
        unfinished = [j for j in jobs if j["status"] in ("running", "interrupted", "failed")]
        print(f"jobs         {len(jobs)} recorded" + (f", {len(unfinished)} not done:" if unfinished else ""))
        for j in unfinished[:10]:
            print(f"  {j['kind']:<6} {j['job_id']}  {j['status']}" + (f"  ({j['error']})" if j["error"] else ""))

    emit(args, payload, human)
    return 0
