"""How the term structure's state window (`ChainParams.term_state_days`) changes the realism figures.

For each window (days of realised vol in the state z, default 7), fits the calibrations on the reference data and
prints, per group and tenor bucket, the median and worst snapshot |IV error| (vol points, IV index as input) and
how many snapshots are over 3 points, in sample and leave-one-day-out (docs/chain.md cites it):

    .venv/bin/python scripts/term_state_window.py 1 3 7 14
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd
from calibrate_defaults import ROOT, reference_store

from covcall.calibration import calibrate
from covcall.chain import ChainParams
from covcall.realism import realism, realism_table


def run(d: float) -> dict[str, pd.DataFrame]:
    # the window is a structural default every fit and every realism run reads: set it for this process only
    ChainParams.model_fields["term_state_days"].default = d
    ChainParams.model_rebuild(force=True)
    assert ChainParams().term_state_days == d
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(ROOT.parent / "shared" / "data", Path(tmp))
        for u in ("BTC", "ETH"):
            calibrate(store, u, now=pd.Timestamp("2000-01-01", tz="UTC"))
        out = {}
        for name, kw in (("in", {}), ("lodo", {"holdout": True})):
            t = realism_table(realism(store, calibration="auto", **kw), "index")
            t["u"] = t["snapshot_id"].str[:3] + t["snapshot_id"].str.contains("2024").map({True: "24", False: "23"})
            g = t.groupby(["u", "tenor"])["median_abs_iv_error_pts"]
            out[name] = pd.DataFrame({"med": g.median(), "worst": g.max(),
                                      "over3": g.apply(lambda x: int((x > 3).sum()))})
        return out

def main() -> None:
    for d in [float(x) for x in sys.argv[1:]] or [7.0]:
        print(f"term_state_days={d:g}")
        print(pd.concat(run(d), axis=1).round(2).to_string())


if __name__ == "__main__":
    main()
