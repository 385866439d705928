"""Print the tables of docs/chain.md: calibrated parameters, and the model against every reference snapshot.

Loads ../shared/data into a temporary database (as `scripts/calibrate_defaults.py` does), fits the calibrations
(`covcall calibrate`), and runs `covcall realism` in sample and leave-one-day-out:

    .venv/bin/python scripts/chain_report.py > /tmp/chain_tables.md
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from calibrate_defaults import ROOT, reference_store

from covcall.calibration import calibrate
from covcall.realism import realism, realism_table

PARAMS = ("atm_index_ratio", "basis_ann", "term_slope", "term_slope_long", "term_state_coef", "term_state_min",
          "term_state_max", "skew_slope", "skew_tenor_exp", "smile_curvature", "curv_tenor_exp", "smile_min_days",
          "smile_wing", "spread_vol_30d", "spread_tenor_exp", "spread_delta_exp", "spread_itm_frac", "iv_rv_premium",
          "event_move_cpi", "event_move_fomc", "short_end_band")


def md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join("" if pd.isna(v) else (f"{v:.2f}" if isinstance(v, float) else str(v))
                                       for v in row) + " |")
    return "\n".join(lines)


def wide(result: dict, source: str) -> pd.DataFrame:
    t = realism_table(result, source)
    if t.empty:
        return t
    p = t.pivot_table(index="snapshot_id", columns="tenor", values="median_abs_iv_error_pts").reset_index()
    p90 = t.pivot_table(index="snapshot_id", columns="tenor", values="p90_abs_iv_error_pts")
    mark = t.pivot_table(index="snapshot_id", columns="tenor", values="median_abs_mark_error_pct")
    out = p[["snapshot_id", "<7d", "7-30d", ">30d"]].copy()
    out.columns = ["snapshot", "IV <7d", "IV 7-30d", "IV >30d"]
    out.insert(1, "index age h", out["snapshot"].map(t.groupby("snapshot_id")["index_age_h"].first()))
    for pos, (col, name) in enumerate((("basis_ann_real", "basis real %/yr"),
                                       ("basis_ann_calibrated", "calibrated %/yr"))):
        out.insert(2 + pos, name, out["snapshot"].map(t.groupby("snapshot_id")[col].first().astype(float) * 100.0))
    for src, name in ((p90, "p90"), (mark, "mark %")):
        for b in ("<7d", "7-30d", ">30d"):
            out[f"{name} {b}"] = out["snapshot"].map(src[b]) if b in src else float("nan")
    return out


def summary(result: dict, source: str) -> pd.DataFrame:
    t = realism_table(result, source)
    t["group"] = t["snapshot_id"].str[:3] + t["snapshot_id"].str.contains("2024").map(
        {True: " 2024-01-08", False: " April 2023"})
    g = t.groupby(["group", "tenor"])
    return pd.DataFrame({"median of snapshots": g["median_abs_iv_error_pts"].median(),
                         "worst snapshot": g["median_abs_iv_error_pts"].max(),
                         "median IV bias": g["median_iv_bias_pts"].median(),
                         "median mark error %": g["median_abs_mark_error_pct"].median(),
                         "median bid error %": g["median_bid_error_pct"].median(),
                         "model / real spread": g["median_spread_ratio"].median()}).reset_index()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(ROOT.parent / "shared" / "data", Path(tmp))
        cals = {u: calibrate(store, u, now=pd.Timestamp("2000-01-01", tz="UTC")) for u in ("BTC", "ETH")}
        print("### Calibrated parameters (`covcall calibrate`)\n")
        print(md(pd.DataFrame([{"parameter": k, **{u: c.params.get(k) for u, c in cals.items()}} for k in PARAMS])))
        for name, kwargs in (("in sample (calibration fitted on every snapshot)", {}),
                             ("leave-one-day-out (each day priced by a fit on the other days)", {"holdout": True})):
            res = realism(store, calibration="auto", **kwargs)
            for source in ("index", "proxy"):
                print(f"\n### Median |IV error| (vol points) by tenor, {name}, ATM input = {source}\n")
                print(md(summary(res, source)))
            if not kwargs:
                print("\n### Every snapshot, in sample, ATM input = the IV index known then\n")
                print(md(wide(res, "index")))
        print("\n### Scheduled events: the snapshots with a release within 7 days, with and without events "
              "(median |IV error|, vol points, in sample, ATM input = index)\n")
        with_ev = realism(store, calibration="auto")
        without = realism(store, calibration="auto", events=False)
        near = {e["snapshot_id"]: e["events_within_7d"] for e in with_ev["snapshots"]}
        a, b = wide(with_ev, "index").set_index("snapshot"), wide(without, "index").set_index("snapshot")
        rows = [{"snapshot": sid, "events within 7 d": n, "<7d with events": a.loc[sid, "IV <7d"],
                 "<7d without": b.loc[sid, "IV <7d"], "7-30d with": a.loc[sid, "IV 7-30d"],
                 "7-30d without": b.loc[sid, "IV 7-30d"]} for sid, n in near.items() if n and sid in a.index]
        print(md(pd.DataFrame(rows)))
        print("\n### The forward: the basis history (each snapshot's own futures, as backtests with basis 'auto' "
              "price it) vs the calibration's one number (`covcall realism --basis calibrated`), in sample, ATM "
              "input = index\n")
        fixed = realism(store, calibration="auto", basis="calibrated")
        h, c = summary(with_ev, "index"), summary(fixed, "index")
        both = h.merge(c, on=["group", "tenor"], suffixes=(" history", " calibrated"))
        print(md(both[["group", "tenor", "median of snapshots history", "median of snapshots calibrated",
                       "worst snapshot history", "worst snapshot calibrated", "median mark error % history",
                       "median mark error % calibrated"]]))
        print("\nEvent sizes fitted from realised 4h moves (8 hours after each release, minus the same hours on "
              "event-free days within 60 days):\n")
        print(md(pd.DataFrame([{"underlying": u, "kind": k, "events": v["events"], "one-sigma move %": 100 * v["move"],
                                "control rms %": 100 * v["control_rms"]}
                               for u, c in cals.items() for k, v in c.errors.get("event_moves", {}).items()])))


if __name__ == "__main__":
    main()
