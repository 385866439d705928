"""Write covcall/calibration_defaults.json: the calibrations shipped with covcall, fitted on the reference data.

Imports the reference files (../shared/data: Deribit chains, DVOL, Binance candles) into a temporary database,
runs `covcall calibrate` for BTC and ETH there, and writes the fitted parameters with their provenance. Run it
when the chain model or the reference data change:

    .venv/bin/python scripts/calibrate_defaults.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd

from covcall.calibration import calibrate
from covcall.chains import import_chain
from covcall.market.csv_import import import_candles_csv, import_iv_csv
from covcall.store import Store

ROOT = Path(__file__).resolve().parents[1]
CHAINS = {"BTC": ["chains/btc_deribit_chain_snapshots_2023-04-12_to_17.csv.gz"],
          "ETH": ["chains/eth_deribit_chain_snapshots_2023-04-12_to_17.csv.gz", "deribit_eth_chain_2024-01-08.csv"]}


def reference_store(data: Path, folder: Path) -> Store:
    """A database holding the reference candles (4h and 1d), DVOL and chains of BTC and ETH."""
    store = Store(folder / "reference.duckdb")
    for u in ("BTC", "ETH"):
        import_candles_csv(store, data / f"{u}USDT_4h.csv", u, "4h")
        import_candles_csv(store, data / f"{u}USDT_1d.csv", u, "1d")
        import_iv_csv(store, data / f"{u.lower()}_dvol.csv", u)
        for f in CHAINS[u]:
            import_chain(store, data / f, u)
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(Path(args.data), Path(tmp))
        for u in ("BTC", "ETH"):
            cal = calibrate(store, u, now=pd.Timestamp("2000-01-01", tz="UTC"))
            out[u] = {"version": cal.version, "params": cal.params,
                      "data": {"snapshots": len(cal.data["snapshots"]), "first_snapshot": cal.data["first_snapshot"],
                               "last_snapshot": cal.data["last_snapshot"], "iv_index": cal.data["iv_index"],
                               "files": CHAINS[u]},
                      "errors": {k: v for k, v in cal.errors.items() if k not in ("snapshot_inputs",
                                                                                   "basis_by_snapshot")}}
    path = ROOT / "covcall" / "calibration_defaults.json"
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
