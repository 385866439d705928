"""How the term structure's state window (`ChainParams.term_state_days`) changes the realism figures.

For each window (days of realised vol in the state z, default 7), fits the calibrations on the reference data and
prints, per group and tenor bucket, the median and worst snapshot |IV error| (vol points, IV index as input) and
how many snapshots are over 3 points, in sample and leave-one-day-out (docs/chain.md cites it):

    .venv/bin/python scripts/term_state_window.py 1 3 7 14

`--states` instead asks whether two windows together say more than one: per snapshot, the slope of its short end
(expiries of 1-7 days, scheduled events taken out, ln(ATM(T)/ATM(30d)) on ln(T/30d)) regressed on ln(rv7 / index),
ln(rv1 / index) and both; rms residual in sample and leave-one-day-out, against the slopes' own spread.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from calibrate_defaults import ROOT, reference_store

from covcall.calibration import (
    _without_events,
    atm30,
    best_candles,
    best_index,
    calibrate,
    expiry_table,
    index_known_at,
    packaged_defaults,
    realised_known_at,
)
from covcall.chain import ChainParams
from covcall.events import calendar_for
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

def short_end_states() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(ROOT.parent / "shared" / "data", Path(tmp))
        for u in ("BTC", "ETH"):
            exp = expiry_table(store.read_chain(list(store.list_snapshots(u)["snapshot_id"])))
            exp = exp.merge(exp.groupby("snapshot_id").apply(atm30).rename("atm30"), on="snapshot_id")
            exp = _without_events(exp, calendar_for(u, store), u, packaged_defaults()[u]["params"], 30.0)
            index, candles = best_index(store, u), best_candles(store, u)
            rows = []
            for sid, g in exp.groupby("snapshot_id"):
                t = g["ts"].iloc[0]
                short = g[(g["dte_days"] >= 1) & (g["dte_days"] <= 7)]
                lt, y = np.log(short["dte_days"] / 30.0), np.log(short["atm_iv"] / short["atm30"])
                i = index_known_at(index, t)
                rows.append({"day": sid[4:12], "slope": float(np.sum(lt * y) / np.sum(lt * lt)),
                             "rv7": np.log(realised_known_at(candles, t, 7) / i),
                             "rv1": np.log(realised_known_at(candles, t, 1) / i)})
            d = pd.DataFrame(rows)
            print(f"{u}: {len(d)} snapshots, short-end slope sd {d['slope'].std():.4f}")
            for cols in (["rv7"], ["rv1"], ["rv7", "rv1"]):
                x = np.c_[np.ones(len(d)), d[cols].to_numpy()]
                b, *_ = np.linalg.lstsq(x, d["slope"], rcond=None)
                err = []
                for day in d["day"].unique():
                    m = (d["day"] != day).to_numpy()
                    bb, *_ = np.linalg.lstsq(x[m], d["slope"][m], rcond=None)
                    err += list(d["slope"][~m] - x[~m] @ bb)
                print(f"  {' + '.join(cols):9s} coef {np.round(b[1:], 3)}  rms in sample "
                      f"{np.sqrt(np.mean((d['slope'] - x @ b) ** 2)):.4f}  leave-one-day-out "
                      f"{np.sqrt(np.mean(np.square(err))):.4f}")


def main() -> None:
    if sys.argv[1:] == ["--states"]:
        short_end_states()
        return
    for d in [float(x) for x in sys.argv[1:]] or [7.0]:
        print(f"term_state_days={d:g}")
        print(pd.concat(run(d), axis=1).round(2).to_string())


if __name__ == "__main__":
    main()
