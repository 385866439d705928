"""`covcall data`: import CSVs, fetch from an exchange, and list the cached market data series."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from covcall import open_store
from covcall.cli import emit
from covcall.errors import DataError
from covcall.jsonutil import plain
from covcall.lazy import lazy_module
from covcall.timeframes import TIMEFRAME_NAMES as TIMEFRAMES

if TYPE_CHECKING:
    import pandas as pd

    from covcall.config import Settings
else:
    pd = lazy_module("pandas")

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date(flag: str, value: str) -> pd.Timestamp:
    """A --start/--end value as a UTC date, or a one-line error naming the flag and the format."""
    try:
        if not _DATE_RE.match(value):
            raise ValueError
        return pd.Timestamp(value, tz="UTC")
    except ValueError:
        raise DataError(f"{flag} {value!r} is not a date; expected YYYY-MM-DD, e.g. 2024-01-31") from None





def _summary(verb: str, p: dict[str, Any]) -> str:
    tf = f" {p['timeframe']}" if p.get("timeframe") else ""
    return f"{verb} {p['rows']} {p['underlying']}{tf} rows ({p['source']}) from {p['start']} to {p['end']}"


def _counts(p: dict[str, Any]) -> str:
    """'; 10 new, 2 replaced (old rows kept in history), 5 unchanged'."""
    parts = [f"{p['inserted']} new"]
    if p["replaced"]:
        parts.append(f"{p['replaced']} replaced (old rows kept in history)")
    if p["unchanged"]:
        parts.append(f"{p['unchanged']} unchanged")
    return "; " + ", ".join(parts)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.market.csv_import import import_candles_csv
    from covcall.market.frame import check_timeframe

    check_timeframe(args.timeframe)
    result = plain(import_candles_csv(open_store(settings), args.csv, args.underlying, args.timeframe,
                                      replace=args.replace))
    extra = f"; dropped {result['dropped_duplicates']} duplicate rows" if result["dropped_duplicates"] else ""
    gaps = f"; {result['gaps']} gaps (missing bars) kept as gaps" if result.get("gaps") else ""
    emit(args, result, _summary("imported", result) + _counts(result) + extra + gaps)
    return 0


def _import_iv(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.market.csv_import import import_iv_csv

    result = plain(import_iv_csv(open_store(settings), args.csv, args.underlying, replace=args.replace))
    emit(args, result, _summary("imported", result) + _counts(result)
         + f" (in {result['unit'].replace('points', 'vol points')}; ts = when each value is known)")
    return 0


def _import_chain(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.chains import import_chain

    result = plain(import_chain(open_store(settings), args.file, args.underlying))
    dropped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in result["dropped"].items() if v)
    emit(args, result, f"{result['underlying']} {result['kind']} file: {result['snapshots']} snapshots "
                       f"({result['new_snapshots']} new), {result['quotes']} quotes from {result['first']} to "
                       f"{result['last']}" + (f"; dropped: {dropped}" if dropped else ""))
    return 0


def _import_events(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.events import import_events

    result = plain(import_events(open_store(settings), args.file))
    kinds = ", ".join(f"{v} {k}" for k, v in result["kinds"].items())
    emit(args, result, f"{result['events']} events ({kinds}) from {result['first']} to {result['last']}: "
                       f"{result['new']} new, {result['updated']} updated; backtests on real data price them "
                       "from the next run")
    return 0


def _import_basis(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.basis import import_basis

    result = plain(import_basis(open_store(settings), args.file, args.underlying))
    emit(args, result, f"{result['rows']} {result['underlying']} basis observations from {result['first']} to "
                       f"{result['last']} (median {100 * result['median_basis_ann']:.1f} %/yr); backtests on real "
                       "data with basis 'auto' price the forward with them from the next run")
    return 0


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    if args.basis:
        from covcall.basis import fetch_basis

        result = plain(fetch_basis(open_store(settings), args.underlying))
        emit(args, result, f"stored the live {result['underlying']} basis: {100 * result['basis_ann']:.2f} %/yr "
                           f"from {result['futures']} Deribit futures")
        return 0
    if args.chain:
        from covcall.chains import fetch_chain

        result = plain(fetch_chain(open_store(settings), args.underlying))
        emit(args, result, f"stored {result['new_snapshots']} live {result['underlying']} snapshot(s), "
                           f"{result['quotes']} quotes")
        return 0
    if args.start is None or args.end is None:
        raise DataError("give --start and --end (YYYY-MM-DD), or --chain for one live option-chain snapshot")
    start = _date("--start", args.start)
    end = _date("--end", args.end)
    if start > end:
        raise DataError(f"--start {args.start} is after --end {args.end}; expected --start <= --end (YYYY-MM-DD)")
    from covcall.market.exchange import fetch_candles, fetch_dvol  # ccxt is slow to import

    store = open_store(settings)
    if args.dvol:
        result = fetch_dvol(store, args.underlying, start, end, timeframe=args.timeframe)
    else:
        from covcall.market.frame import check_timeframe

        check_timeframe(args.timeframe)
        exchange = args.exchange or settings.exchange_id
        result = fetch_candles(store, args.underlying, args.timeframe, start, end, exchange=exchange)
    result = plain(result)
    emit(args, result, _summary("cached", result) + f" ({result['fetched_pages']} pages fetched)")
    return 0


def _compare(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from covcall.market.stats import compare_synthetic, markdown, summary

    try:
        seeds = tuple(int(x) for x in args.seeds.split(","))
    except ValueError:
        raise DataError(f"--seeds {args.seeds!r} must be whole numbers separated by commas, e.g. 7,1,2") from None
    if any(x < 0 for x in seeds):
        raise DataError("--seeds must be >= 0")
    real = args.real
    if real is not None and not (Path(real) / "BTCUSDT_1d.csv").exists():
        raise DataError(f"--real {real}: no BTCUSDT_1d.csv there; give the folder of the reference files")
    table = compare_synthetic(real, seeds, store=open_store(settings) if args.store else None)
    if args.markdown:
        print(markdown(table))
        return 0
    emit(args, summary(table), lambda: print(table.round(3).to_string()))
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    series = store.list_series()
    snaps = store.list_snapshots()
    entries = [
        {"kind": r.kind, "source": r.source, "underlying": r.underlying, "timeframe": r.timeframe,
         "rows": int(r.rows), "start": r.start.isoformat(), "end": r.end.isoformat()}
        for r in series.itertuples(index=False)
    ]

    chains = [{"kind": "chain", "snapshot_id": r.snapshot_id, "underlying": r.underlying, "ts": r.ts.isoformat(),
               "quotes": int(r.n_quotes), "index_price": float(r.index_price), "source": r.source}
              for r in snaps.itertuples(index=False)]
    from covcall.events import packaged_calendar

    shipped, stored = packaged_calendar(), store.read_events()
    events = [{"kind": "event", "ts": r.ts.isoformat(), "event": r.kind, "underlying": r.underlying,
               "move_pct": None if pd.isna(r.move) else float(r.move) * 100.0, "label": r.label, "source": r.source}
              for r in stored.itertuples(index=False)]

    def human() -> None:
        if not entries:
            print(f"no cached series in {settings.duckdb_path}; import one with `covcall data import` "
                  "(the synthetic source needs none)")
        else:
            print(series.to_string(index=False))
        if chains:
            print(f"\n{len(chains)} option-chain snapshots:")
            print(snaps.to_string(index=False))
        print(f"\nscheduled events priced on real data: {len(shipped)} packaged US CPI / FOMC releases "
              f"({shipped['ts'].min():%Y-%m} .. {shipped['ts'].max():%Y-%m}) and {len(stored)} stored "
              "(`covcall data import-events --file F`)")
        if len(stored):
            print(stored.to_string(index=False))

    emit(args, entries + chains + events, human)
    return 0


def register(subparsers: Any) -> None:
    data = subparsers.add_parser("data", help="import, fetch and list market data",
                                 description="Market data: CSV import, exchange download (ccxt), cached series.")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(data))
    data.set_defaults(func=lambda args, settings: (data.print_help(), 2)[1])

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")

    p = sub.add_parser("import", help="import an OHLCV CSV into the store (source 'csv')",
                       description="Import OHLCV candles from a CSV with a header: a time column "
                                   "(timestamp/date/time/datetime/open_time; ISO text or epoch s/ms) and "
                                   "open, high, low, close (volume optional).")
    p.add_argument("--csv", required=True, metavar="FILE", help="the CSV file")
    p.add_argument("--underlying", required=True, help="symbol, e.g. BTC")
    p.add_argument("--timeframe", required=True, help=f"bar length: {', '.join(TIMEFRAMES)}; must match the "
                                                         "spacing of the file's bars")
    p.add_argument("--replace", action="store_true", help="overwrite stored bars whose values differ (the old "
                                                          "ones are kept in the store's history); without it such "
                                                          "an import is refused and nothing is written")
    common(p)
    p.set_defaults(func=_import)

    p = sub.add_parser("import-iv", help="import an implied-vol CSV (e.g. Deribit DVOL) into the store",
                       description="Import a daily IV index: a date column and close/iv/dvol/value, the whole "
                                   "file in vol points (47.5, values 5-500) or in fractions (0.475, values up to "
                                   "5); a file mixing them is refused. Daily values are known the next day.")
    p.add_argument("--csv", required=True, metavar="FILE", help="the CSV file")
    p.add_argument("--underlying", required=True, help="symbol, e.g. BTC")
    p.add_argument("--replace", action="store_true", help="overwrite stored values that differ (old ones kept)")
    common(p)
    p.set_defaults(func=_import_iv)

    p = sub.add_parser("fetch", help="download candles (or --dvol) from an exchange into the store",
                       description="Download OHLCV via ccxt, only the spans not cached yet; --dvol fetches "
                                   "Deribit's DVOL index instead.")
    p.add_argument("--exchange", default=None, help="ccxt exchange id (default: EXCHANGE_ID, binance)")
    p.add_argument("--underlying", required=True, help="BTC or ETH (market X/USDT)")
    p.add_argument("--timeframe", default="1d", help=f"bar length: {', '.join(TIMEFRAMES)} (default 1d)")
    p.add_argument("--start", default=None, help="first day, YYYY-MM-DD")
    p.add_argument("--end", default=None, help="last day (inclusive), YYYY-MM-DD")
    p.add_argument("--dvol", action="store_true", help="fetch Deribit DVOL (implied vol index) instead, in bars of "
                                                        "--timeframe 1d or 1h (hourly: fresher within each day)")
    p.add_argument("--chain", action="store_true", help="store one live snapshot of the Deribit option chain "
                                                         "(run it on a schedule to build a history)")
    p.add_argument("--basis", action="store_true", help="store the live forward basis of Deribit's dated futures "
                                                         "(run it on a schedule to build a basis history)")
    common(p)
    p.set_defaults(func=_fetch)

    p = sub.add_parser("compare-synthetic", help="the synthetic market's statistics beside real history",
                       description="Daily vol, tails, drawdowns, clustering, IV premium over later realised vol and "
                                   "BTC/ETH correlation, 2019-2025, for real files (--real), the data in the "
                                   "database (--store) and synthetic seeds.")
    p.add_argument("--real", default=None, help="folder with BTCUSDT_1d.csv, ETHUSDT_1d.csv, btc_dvol.csv, "
                                                "eth_dvol.csv (e.g. ../shared/data)")
    p.add_argument("--store", action="store_true",
                   help="also the daily candles and IV index stored in the database (imported or fetched)")
    p.add_argument("--seeds", default="7", help="synthetic seeds, comma separated (default 7)")
    p.add_argument("--markdown", action="store_true", help="print a markdown table (docs/market.md)")
    common(p)
    p.set_defaults(func=_compare)

    p = sub.add_parser("import-chain", help="import a Deribit option-chain file (ticker or book-summary rows)",
                       description="Import Deribit option quotes, plain or gzipped: ticker/order-book rows "
                                   "(timestamp, instrument_name, mark_iv, best_bid_price, ...) or book-summary "
                                   "rows (get_book_summary_by_currency). Rows collected within 5 minutes form one "
                                   "snapshot; placeholder asks (1.0 coin / 999 % IV) and missing bids are dropped "
                                   "and counted; importing the same file again changes nothing.")
    p.add_argument("--file", required=True, metavar="FILE", help="the chain file (.csv or .csv.gz)")
    p.add_argument("--underlying", default=None, help="expected underlying (checked against the instruments)")
    common(p)
    p.set_defaults(func=_import_chain)

    p = sub.add_parser("import-events", help="import scheduled events (CPI, FOMC, one-offs) priced into options",
                       description="Import an event calendar CSV: ts (UTC, e.g. 2024-01-10T21:00:00Z), kind (cpi, "
                                   "fomc or other), optional underlying (BTC, ETH or * for all), move_pct (the "
                                   "event's one-sigma move in percent; empty = the size fitted for its kind) and "
                                   "label. Options expiring after an event carry its variance on real data. A file "
                                   "with any bad row is refused whole; importing it again changes nothing.")
    p.add_argument("--file", required=True, metavar="FILE", help="the calendar CSV")
    common(p)
    p.set_defaults(func=_import_events)

    p = sub.add_parser("import-basis", help="import a forward-basis history (futures over spot, per year)",
                       description="Import a basis history CSV: ts (UTC, when the value was known) and basis_ann "
                                   "(per year, 0.10 = 10 %%/yr), plus underlying unless --underlying is given. "
                                   "Backtests on real data (basis 'auto') price each decision's forward with the "
                                   "last value known then, at most 7 days old. A file with any bad row is refused "
                                   "whole; importing it again changes nothing.")
    p.add_argument("--file", required=True, metavar="FILE", help="the basis CSV")
    p.add_argument("--underlying", default=None, help="BTC or ETH (else the file's underlying column)")
    common(p)
    p.set_defaults(func=_import_basis)

    p = sub.add_parser("show", help="list the cached series and chain snapshots",
                       description="One line per cached series, then the stored option-chain snapshots.")
    common(p)
    p.set_defaults(func=_show)
