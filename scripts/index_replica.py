"""A DVOL-like 30-day index rebuilt from each reference snapshot (VIX method), beside Deribit's daily DVOL.

Would recorded chains give a fresher IV index than the daily DVOL close (12-20 h old at the April 2023 snapshots)?
For each snapshot: per expiry, sigma^2 = (2/T) sum dK/K^2 Q(K) - (1/T)(F/K0 - 1)^2 over out-of-the-money marks
(puts below K0, calls above, both at K0; Q = coin mark x F, Deribit's Black(F)/F convention), then the two expiries
around 30 days interpolated in total variance. Printed with the DVOL close known then; at the midnight snapshots
both describe the same moment (docs/chain.md cites the comparison):

    .venv/bin/python scripts/index_replica.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from calibrate_defaults import ROOT, reference_store

from covcall.calibration import index_known_since

TENOR_YEARS = 30 / 365


def expiry_variance(g: pd.DataFrame) -> tuple[float, float] | None:
    """(T, sigma^2) of one expiry's variance swap from its out-of-the-money marks, or None when too few strikes."""
    f = float(g["forward"].median())
    t = float((g["expiry"].iloc[0] - g["ts"].iloc[0]).total_seconds() / (365 * 86400))
    calls = g[g["option_type"] == "C"].groupby("strike")["mark_coin"].mean()
    puts = g[g["option_type"] == "P"].groupby("strike")["mark_coin"].mean()
    ks = np.array(sorted(set(calls.index) | set(puts.index)), float)
    if t <= 0 or not (ks <= f).any():
        return None
    k0 = ks[ks <= f].max()
    q = np.array([puts.get(k, np.nan) if k < k0 else calls.get(k, np.nan) if k > k0
                  else np.nanmean([calls.get(k, np.nan), puts.get(k, np.nan)]) for k in ks]) * f
    ok = np.isfinite(q) & (q > 0)
    ks, q = ks[ok], q[ok]
    if len(ks) < 5:
        return None
    var = 2.0 / t * float(np.sum(np.gradient(ks) / ks**2 * q)) - (f / k0 - 1.0) ** 2 / t
    return t, var


def index30(quotes: pd.DataFrame) -> float:
    """The 30-day index of one snapshot (vol, fraction), NaN without expiries on both sides of 30 days."""
    rows = sorted(r for _, g in quotes.groupby("expiry") if (r := expiry_variance(g)) is not None)
    near = [r for r in rows if r[0] <= TENOR_YEARS]
    later = [r for r in rows if r[0] > TENOR_YEARS]
    if not near or not later:
        return float("nan")
    (t1, v1), (t2, v2) = near[-1], later[0]
    w = (t2 - TENOR_YEARS) / (t2 - t1)
    return float(np.sqrt((t1 * v1 * w + t2 * v2 * (1 - w)) / TENOR_YEARS))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(ROOT.parent / "shared" / "data", Path(tmp))
        rows = []
        for r in store.list_snapshots().itertuples():
            t = pd.Timestamp(r.ts)
            dvol, since = index_known_since(store.read_iv(r.underlying), t)
            replica = index30(store.read_chain([r.snapshot_id]))
            rows.append({"snapshot": r.snapshot_id, "replica %": 100 * replica, "DVOL known %": 100 * dvol,
                         "DVOL age h": (t - since) / pd.Timedelta(hours=1), "replica - DVOL": 100 * (replica - dvol)})
        df = pd.DataFrame(rows)
        print("| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns))
        for r in df.itertuples(index=False):
            print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
        mid = df[df["DVOL age h"] < 0.1]
        print(f"\nsnapshots at the DVOL close (age < 0.1 h): {len(mid)}, replica - DVOL mean "
              f"{mid['replica - DVOL'].mean():.2f}, range {mid['replica - DVOL'].min():.2f} .. "
              f"{mid['replica - DVOL'].max():.2f} vol points")


if __name__ == "__main__":
    main()
