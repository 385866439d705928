"""How far the daily-bar settlement proxy open + 8/24 (close - open) sits from the real 08:00 UTC price.

Uses the reference Binance files (../shared/data): the real 08:00 price is the close of the 4h bar opening at
04:00. Prints JSON; docs/chain.md quotes it.

    .venv/bin/python scripts/settlement_proxy.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    out = {}
    for u in ("BTC", "ETH"):
        d = pd.read_csv(DATA / f"{u}USDT_1d.csv")
        h = pd.read_csv(DATA / f"{u}USDT_4h.csv")
        d["ts"] = pd.to_datetime(d["timestamp"], utc=True)
        h["ts"] = pd.to_datetime(h["timestamp"], utc=True)
        real = h[h["ts"].dt.hour == 4].assign(day=lambda x: x["ts"].dt.normalize()).set_index("day")["close"]
        proxy = (d["open"] + 8 / 24 * (d["close"] - d["open"])).set_axis(d["ts"])
        both = pd.concat([proxy.rename("proxy"), real.rename("real")], axis=1, join="inner").dropna()
        err = (both["proxy"] / both["real"] - 1).abs()
        out[u] = {"days": int(len(both)), "median_abs_error_pct": round(float(err.median() * 100), 3),
                  "p90_abs_error_pct": round(float(np.percentile(err, 90) * 100), 3),
                  "max_abs_error_pct": round(float(err.max() * 100), 2)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
