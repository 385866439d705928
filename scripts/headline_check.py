"""Re-measure issue 9's headline gap: the weekly 0.10-delta covered call on real BTC 4h + DVOL, 2024-06-07 ..
2026-01-05, against HODL, with the plain v1 surface and with the calibrated one, and the robustness band.

When issue 9 was filed covcall put this strategy 14.7 points ahead of HODL while a commercial backtester
(CryptoVol.io: Black-Scholes marks, no spread) put it 10 points behind over nearly the same period. Loads
../shared/data into a temporary database (as scripts/calibrate_defaults.py does) and prints a markdown table
(docs/chain.md cites it):

    .venv/bin/python scripts/headline_check.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from calibrate_defaults import ROOT, reference_store

from covcall.backtest import run_backtest
from covcall.calibration import resolve, term_ratio
from covcall.chain import ChainParams
from covcall.sensitivity import run_sensitivity

CONFIG = {"underlying": "BTC", "timeframe": "4h", "source": "store", "iv_source": "dvol", "start": "2024-06-07",
          "end": "2026-01-05", "policy": "fixed_delta", "target_delta": 0.10, "target_dte_days": 7,
          "exit_style": "hold_to_expiry"}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = reference_store(ROOT.parent / "shared" / "data", Path(tmp))
        print("| surface | total return | HODL | excess over HODL | Sharpe | trades | median sold IV | "
              "median premium % of spot |")
        print("|---|---|---|---|---|---|---|---|")
        for name, calibration in (("plain v1 (calibration none)", "none"), ("calibrated (auto)", "auto")):
            res = run_backtest({**CONFIG, "calibration": calibration}, store=store, export_dir=Path(tmp) / "x")
            m, t = res.metrics, res.trades
            premium = np.median(t["premium_coin"]) * 100 if len(t) else float("nan")
            print(f"| {name} | {m['total_return']:.1%} | {m['hodl_total_return']:.1%} | "
                  f"{m['excess_return'] * 100:+.1f} pts | {m['sharpe']:.2f} | {len(t)} | "
                  f"{np.median(t['iv_ann']):.1%} | {premium:.2f} |")
        cal = resolve("auto", "BTC", store)
        chain = ChainParams(**cal.params)
        lo, hi = chain.term_state_min, chain.term_state_max
        print()
        print(f"7-day / 30-day ATM of the calibrated surface: {term_ratio(chain, 7, lo):.3f} .. "
              f"{term_ratio(chain, 7, hi):.3f} over the states it was fitted on ({lo:.2f} .. {hi:.2f})")
        band = run_sensitivity({**CONFIG, "calibration": "auto"}, store=store)
        print()
        print("| scenario | total return | excess over HODL | Sharpe |")
        print("|---|---|---|---|")
        for r in band.table.itertuples(index=False):
            print(f"| {r.scenario} | {r.total_return:.1%} | {r.excess_return * 100:+.1f} pts | {r.sharpe:.2f} |")
        print()
        print(f"verdict: {band.verdict}")


if __name__ == "__main__":
    main()
