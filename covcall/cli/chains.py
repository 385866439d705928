"""`covcall calibrate`, `covcall realism` and `covcall chain`: fit the chain model to stored snapshots, measure how
real it is, and look at the chain it lists at any moment."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from covcall import open_store
from covcall.errors import CovcallError

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
    r.add_argument("--no-events", action="store_true", help="leave scheduled events (CPI, FOMC) out")
    r.add_argument("--basis", choices=("auto", "calibrated"), default="auto",
                   help="the forward's basis: auto (the stored basis history known then, as backtests price it; "
                        "default) or calibrated (the calibration's one number)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_realism)

    c = sub.add_parser("chain", help="the option chain the engine lists at one moment",
                       description="Build the chain a backtest decision would see at --at (UTC): the last bar "
                                   "closed by then, the IV input and term state known at its close, the "
                                   "calibration, and on real data the scheduled events ahead; a stored real "
                                   "snapshot within 6 hours is shown next to it. With --run, the candidates a run's "
                                   "policy saw at its first decision at or after --at, and the one it sold.")
    c.add_argument("--underlying", default="BTC")
    c.add_argument("--at", required=True, help="moment, UTC: 2024-03-01T08:00 (a bare date is its midnight)")
    c.add_argument("--source", default=None, choices=["synthetic", "store", "ccxt"],
                   help="market data (default: DATA_SOURCE)")
    c.add_argument("--timeframe", default="1h", choices=["1h", "4h", "1d"])
    c.add_argument("--iv-source", default="auto", choices=["auto", "realized", "dvol"],
                   help="auto (default): the stored IV index where there is one, else the realised-vol proxy")
    c.add_argument("--calibration", default="auto", help="auto (default), default, none or a stored id")
    c.add_argument("--seed", type=int, default=None, help="synthetic market seed (default: SYNTHETIC_SEED)")
    c.add_argument("--expiry", default=None, help="only this expiry's quotes (YYYY-MM-DD)")
    c.add_argument("--run", default=None, help="a run id: show its decision's candidates instead")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_chain)


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
    import pandas as pd

    from covcall.cli import emit
    from covcall.realism import realism, realism_table

    out = realism(open_store(settings), snapshot=args.snapshot, calibration=args.calibration,
                  holdout=args.holdout, events=not args.no_events, basis=args.basis)

    def human() -> None:
        for source in ("index", "proxy"):
            t = realism_table(out, source)
            if t.empty:
                print(f"{source}: no snapshot has this input (import the IV index / candles)")
                continue
            wide = t.pivot_table(index="snapshot_id", columns="tenor", values="median_abs_iv_error_pts")
            if source == "index":  # how old the index value was: a daily close seen at noon is 12 h old
                wide["index age h"] = t.groupby("snapshot_id")["index_age_h"].first()
                # the forward: the one basis the model prices with vs the snapshot's own futures
                for col, name in (("basis_ann_real", "basis real %/yr"), ("basis_ann_model", "basis used %/yr")):
                    wide[name] = t.groupby("snapshot_id")[col].first().astype(float) * 100.0
            print(f"median |IV error| (vol points), ATM input = {source}:")
            print(wide.round(1).to_string())
        if args.snapshot:  # one snapshot: its term structure, expiry by expiry
            entry = out["snapshots"][0]
            if entry.get("index"):
                rows = pd.DataFrame(entry["index"]["by_expiry"])
                rows["expiry"] = rows["expiry"].str[:10]
                for c in ("real_atm_iv", "model_atm_iv"):
                    rows[c] = rows[c] * 100.0
                print("by expiry, ATM input = index (ATM = the call nearest the forward, vol points):")
                print(rows.drop(columns=["atm_strike"]).round(2).to_string(index=False))
        targets = out["targets"]
        print("worst per tenor (index):", {k: round(v, 1) for k, v in
                                           targets["worst_median_abs_iv_error_pts_by_tenor"].items()})
        print(f"snapshots over {targets['target_pts']:g} vol points (index):",
              {k: f"{len(v)}/{targets['snapshots_by_tenor'][k]}" for k, v in targets["over_target_by_tenor"].items()})

    emit(args, out, human)
    return 0


def cmd_chain(args: argparse.Namespace, settings: Settings) -> int:
    import pandas as pd

    from covcall.chainview import chain_at, decision_candidates
    from covcall.cli import emit
    from covcall.dates import parse_date

    store = open_store(settings)
    if args.run:
        out = decision_candidates(store, args.run, args.at)

        def human_run() -> None:
            print(f"run {args.run}, decision at {out['decision_time']:%Y-%m-%d %H:%M} UTC: "
                  f"{len(out['candidates'])} candidates; sold: "
                  f"{out['sold']['instrument'] if out['sold'] else 'nothing (skipped)'}")
            print(out["candidates"].to_string(index=False))

        emit(args, {k: v for k, v in out.items() if k != "times"}, human_run)
        return 0
    view = chain_at(args.underlying, args.at, source=args.source or settings.data_source, timeframe=args.timeframe,
                    iv_source=args.iv_source, calibration=args.calibration,
                    seed=settings.synthetic_seed if args.seed is None else args.seed, store=store)
    if args.expiry:
        day = pd.Timestamp(parse_date(args.expiry, "--expiry"), tz="UTC")
        view.quotes = view.quotes[view.quotes["expiry"].dt.normalize() == day]
        if view.quotes.empty:
            listed = ", ".join(f"{e:%Y-%m-%d}" for e in view.term["expiry"])
            raise CovcallError(f"no {view.underlying} expiry on {args.expiry} at {view.t:%Y-%m-%d %H:%M}; "
                               f"listed: {listed}")

    def human() -> None:
        print(f"{view.underlying} chain at {view.t:%Y-%m-%d %H:%M} UTC ({view.source}): spot {view.spot:,.2f}, "
              f"30-day IV input {view.atm_input:.1%}, term state {view.state:.2f}, calibration "
              f"{view.calibration_id or 'none'}, forward basis {view.basis_ann:.1%}/yr ({view.basis_source})"
              + (f", real snapshot {view.snapshot_id}" if view.snapshot_id else ""))
        if len(view.events):
            print("scheduled events ahead: " + ", ".join(f"{r.kind} {r.ts:%Y-%m-%d %H:%M}"
                                                         for r in view.events.itertuples()))
        print(view.term.assign(expiry=view.term["expiry"].dt.strftime("%Y-%m-%d")).round(4).to_string(index=False))
        if args.expiry:
            print(view.quotes.drop(columns=["expiry"]).round(4).to_string(index=False))

    emit(args, view.to_dict(), human)
    return 0
