"""Would a fresher IV index fix the realism misses? The April 2023 snapshots priced with an index at most ~4 h old.

The reference data has daily DVOL only (12-20 h old at most snapshots). As a stand-in for an hourly index, each
snapshot is priced with the 30-day index rebuilt from the previous snapshot of the same coin within 24 h
(scripts/index_replica.py; never the snapshot itself), divided by 1.057, the replica's mean ratio to DVOL at the
four snapshots taken at a DVOL close. Everything else is `covcall realism` in sample (this script swaps the index a
snapshot sees inside covcall.realism; the first snapshot of each day-run keeps DVOL). Prints per group and tenor
the median and worst snapshot |IV error| and how many snapshots are over 3 vol points, daily DVOL vs fresh index
(docs/chain.md cites it):

    .venv/bin/python scripts/fresh_index_check.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from calibrate_defaults import ROOT, reference_store
from index_replica import index30

import covcall.realism as realism_module
from covcall.calibration import calibrate

REPLICA_PER_DVOL = 1.057
MAX_AGE = pd.Timedelta(hours=24)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    grp = table["snapshot_id"].str[:3] + table["snapshot_id"].str.contains("2024").map(
        {True: " 2024-01-08", False: " April 2023"})
    g = table.assign(group=grp).groupby(["group", "tenor"])["median_abs_iv_error_pts"]
    return pd.DataFrame({"median": g.median(), "worst": g.max(), "over 3": g.apply(lambda x: int((x > 3).sum()))})


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(ROOT.parent / "shared" / "data", Path(tmp))
        for u in ("BTC", "ETH"):
            calibrate(store, u, now=pd.Timestamp("2000-01-01", tz="UTC"))
        replica = {(r.underlying, pd.Timestamp(r.ts)): index30(store.read_chain([r.snapshot_id]))
                   for r in store.list_snapshots().itertuples()}
        daily = realism_module.realism_table(realism_module.realism(store), "index")

        known_since, best_index = realism_module.index_known_since, realism_module.best_index
        current: dict[str, str] = {}

        def index_of(store_, u):  # realism reads one underlying at a time: remember which
            current["u"] = u
            return best_index(store_, u)

        def fresher(index, t):
            earlier = [(k[1], v) for k, v in replica.items()
                       if k[0] == current["u"] and k[1] < t and t - k[1] <= MAX_AGE]
            if not earlier:
                return known_since(index, t)
            ts, value = max(earlier)
            return value / REPLICA_PER_DVOL, ts

        realism_module.best_index, realism_module.index_known_since = index_of, fresher
        try:
            fresh = realism_module.realism_table(realism_module.realism(store), "index")
        finally:
            realism_module.best_index, realism_module.index_known_since = best_index, known_since
        out = pd.concat({"daily DVOL": summary(daily), "fresh index (<= 4 h)": summary(fresh)}, axis=1)
        print(out.round(2).to_string())


if __name__ == "__main__":
    main()
