"""`covcall calibrate` and `covcall realism`: fit the chain model to stored snapshots, and measure how real it is."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from covcall import open_store

if TYPE_CHECKING:
    from covcall.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="fit the chain model to the stored option-chain snapshots",
                       description="Fit one calibration per underlying from every stored snapshot plus its IV "
                                   "index history, and store it (versioned). Later runs price with the newest "
                                   "one ('auto'). --list shows the stored calibrations.")
    p.add_argument("--underlying", action="append", help="BTC, ETH... (repeatable; default: every underlying "
                                                         "with snapshots)")
    p.add_argument("--list", action="store_true", help="list stored calibrations instead of fitting")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    r = sub.add_parser("realism", help="compare the chain model with stored real snapshots",
                       description="Price every stored snapshot's calls the way a backtest would at that moment "
                                   "(the IV index known then, or the realised-vol proxy) and report IV, mark, bid "
                                   "and spread errors by tenor and moneyness, and listing overlap.")
    pick = r.add_mutually_exclusive_group()
    pick.add_argument("--snapshot", default=None, help="one snapshot id (see `covcall data show`)")
    pick.add_argument("--all", action="store_true", help="every stored snapshot (the default)")
    r.add_argument("--calibration", default="auto", help="auto (default), default, none or a stored id")
    r.add_argument("--holdout", action="store_true", help="price each day with a calibration fitted on the "
                                                          "other days only (out of sample)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_realism)


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    import pandas as pd

    from covcall.calibration import calibrate
    from covcall.cli import emit

    store = open_store(settings)
    if args.list:
        df = store.list_calibrations()
        rows = df.drop(columns=["data", "errors"]).to_dict("records") if len(df) else []
        emit(args, rows, lambda: print(df[["calibration_id", "underlying", "created_at", "version"]]
                                       .to_string(index=False) if len(df) else "no stored calibrations"))
        return 0
    underlyings = [u.strip().upper() for u in args.underlying] if args.underlying else sorted(
        store.list_snapshots()["underlying"].unique())
    if not underlyings:
        from covcall.errors import DataError

        raise DataError("no chain snapshots stored; import some with `covcall data import-chain --file F`")
    now = pd.Timestamp.now(tz="UTC")  # bookkeeping stamp at the edge; nothing fitted depends on it
    cals = [calibrate(store, u, now=now).to_dict() for u in underlyings]

    def human() -> None:
        for c in cals:
            p = c["params"]
            print(f"{c['calibration_id']}: {c['errors']['snapshots']} snapshots, ATM/index {p.get('atm_index_ratio', 1):.3f}, "
                  f"basis {p.get('basis_ann', 0):+.2%}/yr, term slope {p.get('term_slope', 0):+.3f} "
                  f"(state coef {p.get('term_state_coef', 0):+.3f}), IV/RV premium {p.get('iv_rv_premium', 1.2):.3f}")

    emit(args, cals, human)
    return 0


def cmd_realism(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.realism import realism, realism_table

    out = realism(open_store(settings), snapshot=args.snapshot, calibration=args.calibration,
                  holdout=args.holdout)

    def human() -> None:
        for source in ("index", "proxy"):
            t = realism_table(out, source)
            if t.empty:
                print(f"{source}: no snapshot has this input (import the IV index / candles)")
                continue
            wide = t.pivot_table(index="snapshot_id", columns="tenor", values="median_abs_iv_error_pts")
            print(f"median |IV error| (vol points), ATM input = {source}:")
            print(wide.round(1).to_string())
        print("worst per tenor (index):", {k: round(v, 1) for k, v in
                                           out["targets"]["worst_median_abs_iv_error_pts_by_tenor"].items()})

    emit(args, out, human)
    return 0
