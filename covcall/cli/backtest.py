"""`covcall backtest`, `covcall batch`, `covcall export` and `covcall runs`."""

from __future__ import annotations

import argparse
import sys
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from covcall import open_store
from covcall.cli import add_compute_args
from covcall.errors import CovcallError

if TYPE_CHECKING:
    from covcall.config import Settings

_FLAGS: list[tuple[str, type, str]] = [
    ("underlying", str, "coin to hold and write calls on (BTC, ETH or an imported symbol)"),
    ("timeframe", str, "bar size: 1h, 4h or 1d"),
    ("start", str, "first day, YYYY-MM-DD"),
    ("end", str, "last day, YYYY-MM-DD (inclusive)"),
    ("exit_style", str, "hold_to_expiry or tp_and_roll"),
    ("source", str, "synthetic, store or ccxt (default: DATA_SOURCE)"),
    ("iv_source", str, "auto (the stored IV index where there is one, else the proxy), realized or dvol"),
    ("take_profit", float, "tp_and_roll: buy back when the mark is (1 - this) x premium"),
    ("delta_min", float, "lowest call delta to consider"),
    ("delta_max", float, "highest call delta to consider"),
    ("dte_min_days", float, "shortest tenor to consider, days"),
    ("dte_max_days", float, "longest tenor to consider, days"),
    ("threshold", float, "minimum score to sell"),
    ("decision_hour_utc", int, "hour of day (UTC) new calls are sold on 1h/4h bars"),
    ("quantity", float, "coins held"),
    ("policy", str, "rule, model, hodl or fixed_delta"),
    ("target_delta", float, "fixed_delta policy: delta to sell"),
    ("target_dte_days", float, "fixed_delta policy: tenor to sell"),
    ("model_id", str, "model policy: trained model id"),
    ("model_threshold", float, "model policy: skip below this prediction"),
    ("seed", int, "seed of the synthetic market"),
    ("calibration", str, "chain calibration: auto (default), default, none or a stored id"),
    ("accounting", str, "usd (premiums as USD cash, default) or coin (booked in the coin, as Deribit does)"),
    ("settlement", str, "daily bars: auto (08:00 close of finer bars when present) or proxy"),
    ("basis", str, "forward basis: auto (the stored basis history on real data, default) or calibrated"),
    ("label", str, "name shown in run lists"),
]


def register(sub: Any) -> None:
    p = sub.add_parser("backtest", help="run one covered-call backtest",
                       description="Run one covered-call backtest, save it and print its metrics.")
    for name, typ, help_ in _FLAGS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, help=help_)
    p.add_argument("--from-run", dest="from_run", metavar="RUN_ID",
                   help="start from a stored run's settings (its calibration pinned); the flags given change them")
    p.add_argument("--sensitivity", action="store_true", help="also rerun it under the assumption grid (IV level, "
                                                              "short end, spreads, basis, settlement) and say "
                                                              "whether it beats HODL under all of them")
    add_compute_args(p)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_backtest)

    b = sub.add_parser("batch", help="run a grid of backtests from a spec file",
                       description="Run underlyings x timeframes x windows x exit styles (x params) from a "
                                   "JSON/TOML spec and write one combined dataset.")
    b.add_argument("--spec", required=True, help="JSON or TOML batch spec")
    add_compute_args(b)
    b.add_argument("--plan", action="store_true",
                   help="only say how many runs, how much work and where it would run (runs nothing)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_batch)

    r = sub.add_parser("report", help="a run's performance report (strategy vs HODL) as HTML and/or JSON",
                       description="The full performance report of a stored run: returns, risk, trade statistics, "
                                   "premium, assignments, fees, monthly returns and rolling Sharpe, strategy and "
                                   "HODL side by side; --out writes one self-contained HTML file with the charts.")
    r.add_argument("run_id", help="run id (see `covcall runs`)")
    r.add_argument("--out", help="write the HTML report here (e.g. report.html)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_report)

    e = sub.add_parser("export", help="export training examples or candidates",
                       description="Export stored training examples (or the candidate table) as csv, jsonl or "
                                   "parquet: of some runs, of a batch, or of any filtered selection, as the "
                                   "Dataset page does.")
    e.add_argument("--run", action="append", help="run id (repeat for several)")
    e.add_argument("--batch", help="batch id (or walk id): every run it made")
    e.add_argument("--table", default="examples", help="examples (default) or candidates")
    e.add_argument("--underlying", action="append", help="only these underlyings (repeatable)")
    e.add_argument("--action", action="append", help="examples only: SELL_CALL or DO_NOTHING (repeatable)")
    e.add_argument("--exit-style", dest="exit_style", action="append", help="hold_to_expiry or tp_and_roll")
    e.add_argument("--start", help="decisions on or after this day, YYYY-MM-DD")
    e.add_argument("--end", help="decisions up to this day (inclusive), YYYY-MM-DD")
    e.add_argument("--format", default=None, help="csv, jsonl or parquet (default: the --out file's extension); "
                                                  "chat-jsonl or preference-jsonl for language-model training "
                                                  "(docs/llm.md)")
    e.add_argument("--out", required=True, help="output file (a new folder with --partition-by)")
    e.add_argument("--partition-by", dest="partition_by", metavar="COLS",
                   help="parquet only: a Hive-partitioned folder by these columns, e.g. underlying,timeframe")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_export)

    r = sub.add_parser("runs", help="list, rename or delete stored runs",
                       description="List the most recent stored runs. --delete ID... lists what would go (rows "
                                   "in every table, export files, walks that used them) and deletes with --yes; "
                                   "--rename ID --label TEXT renames one.")
    r.add_argument("--limit", type=int, default=20)
    r.add_argument("--delete", nargs="+", metavar="RUN_ID", default=None, help="runs to delete")
    r.add_argument("--yes", action="store_true", help="with --delete: delete (without it, only list)")
    r.add_argument("--exports", action="store_true", help="with --delete: remove their CSV/JSONL files too")
    r.add_argument("--rename", metavar="RUN_ID", default=None, help="run to rename (with --label)")
    r.add_argument("--label", default=None, help="with --rename: the new name")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)



def config_from_args(args: argparse.Namespace, settings: Settings) -> Any:
    from covcall.backtest import BacktestConfig
    from covcall.config import run_defaults

    data: dict[str, Any] = {}
    if getattr(args, "from_run", None):
        from covcall.backtest import settings_of_run

        data = settings_of_run(open_store(settings), args.from_run)
    for name, _, _ in _FLAGS:
        v = getattr(args, name, None)
        if v is not None:
            data[name] = v
    return BacktestConfig.parse(data, run_defaults(settings))


def _stderr_progress(frac: float, msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r[{frac:4.0%}] {msg:<40}", end="", file=sys.stderr, flush=True)


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit, start_workers_early

    if args.sensitivity:
        start_workers_early(args, settings)
    from covcall.backtest import describe_iv, run_backtest

    cfg = config_from_args(args, settings)
    export_dir = settings.training_data_dir if settings.save_training_data else None
    res = run_backtest(cfg, store=open_store(settings), export_dir=export_dir, progress=_stderr_progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    summary = res.summary()
    band = None
    if args.sensitivity:
        from covcall.batch import run_seconds
        from covcall.cli import compute_for
        from covcall.sensitivity import run_sensitivity, scenarios

        n = len(scenarios(cfg.chain.model_dump(), daily=cfg.timeframe == "1d"))
        compute = compute_for(args, settings, n, n * run_seconds(cfg))
        band = run_sensitivity(cfg, store=open_store(settings), compute=compute)
        summary["sensitivity"] = band.to_dict()

    def human() -> None:
        m = summary["metrics"]
        c = summary["counts"]
        print(f"run {res.run_id}: {cfg.underlying} {cfg.timeframe} {cfg.start}..{cfg.end} {cfg.exit_style}")
        print(f"  accounting {cfg.accounting}, calibration {summary.get('calibration') or 'none'}")
        b = summary["basis"]
        where = (f"stored history, {100 * b['trade_min_ann']:.1f}..{100 * b['trade_max_ann']:.1f} %/yr over its trades"
                 if b["source"] == "history" and b["trade_min_ann"] is not None
                 else f"calibrated {100 * b['calibrated_ann']:.1f} %/yr")
        print(f"  forward basis {where}")
        print(f"  implied vol: {describe_iv(cfg.iv_source, m.get('iv_index_share'))}")
        for key in ("total_return", "cagr", "sharpe", "max_drawdown", "hodl_total_return", "excess_return",
                    "total_return_coin", "sharpe_coin", "option_pnl_coin"):
            v = m.get(key)
            print(f"  {key:<18} {'n/a' if v is None else f'{v:.4f}'}")
        print(f"  decisions {c['decisions']} (sell_call {c['sell_call']}, do_nothing {c['do_nothing']}), "
              f"trades {c['trades']}, candidates {c['candidates']}")
        for fmt, path in summary["exports"].items():
            print(f"  {fmt}: {path}")
        if band is not None:
            print("robustness band:")
            print(band.table[["scenario", "total_return", "excess_return", "sharpe"]].to_string(index=False))
            print(f"verdict: {band.verdict}")

    emit(args, summary, human)
    return 0


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import compute_for, emit, progress_printer, start_workers_early

    if not args.plan:
        start_workers_early(args, settings)
    from covcall.batch import BatchSpec, run_batch, work_seconds
    from covcall.config import run_defaults
    from covcall.spec import read_spec_file

    spec = BatchSpec.parse(read_spec_file(args.spec), run_defaults(settings))
    export_dir = settings.training_data_dir if settings.save_training_data else None
    configs = spec.configs()
    compute = compute_for(args, settings, len(configs), work_seconds(configs))
    if args.plan:
        from covcall.cli import emit_plan

        return emit_plan(args, compute, len(configs), work_seconds(configs), f"batch {spec.name}")
    res = run_batch(spec, store=open_store(settings), export_dir=export_dir, progress=progress_printer(),
                    compute=compute)
    out = res.to_dict()

    def human() -> None:
        print(f"batch {res.batch_id}: {out['ok']} ok, {out['failed']} failed, {res.examples} examples "
              f"({res.compute})")

        def num(v: float | None, fmt: str) -> str:
            return "n/a" if v is None else format(v, fmt)

        for r in res.runs:
            m = r.get("metrics") or {}
            tail = r["error"] if r["status"] == "failed" else (
                f"return {num(m.get('total_return'), '+.1%')}, vs HODL {num(m.get('excess_return'), '+.1%')}, "
                f"sharpe {num(m.get('sharpe'), '.2f')}")
            print(f"  {r['status']:<6} {r['run_id']}  {r['label']}  {tail}")
        for fmt, path in res.exports.items():
            print(f"  {fmt}: {path}")

    emit(args, out, human)
    return 1 if res.failed else 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.report import run_report, write_report_html

    store = open_store(settings)
    row, report, equity = run_report(store, args.run_id)
    out = {"run_id": args.run_id, **report.to_dict()}
    if args.out:
        out["path"] = str(write_report_html(report, equity, row, args.out))

    def human() -> None:
        for r in out["summary"]:
            s, h = r["strategy"], r["hodl"]
            print(f"{r['metric']:<40} {'' if s is None else f'{s:,.4f}':>16} {'' if h is None else f'{h:,.4f}':>16}")
        if args.out:
            print(f"report: {out['path']}")

    emit(args, out, human)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.dataset import check_destination, export_selection
    from covcall.store import DatasetFilter

    def day(flag: str, value: str | None, shift: int = 0) -> Any:
        if value is None:
            return None
        try:
            return date.fromisoformat(value) + timedelta(days=shift)
        except ValueError:
            raise CovcallError(f"--{flag} {value!r} is not a date (use YYYY-MM-DD)") from None

    start, end = day("start", args.start), day("end", args.end, 1)
    if start is not None and end is not None and start >= end:
        raise CovcallError(f"--start {args.start} is after --end {args.end}; swap them")
    selection = DatasetFilter(
        run_ids=tuple(args.run) if args.run else None, batch_id=args.batch,
        underlyings=tuple(args.underlying) if args.underlying else None,
        actions=tuple(args.action) if args.action else None,
        exit_styles=tuple(args.exit_style) if args.exit_style else None, start=start, end=end)
    parts = tuple(c.strip() for c in args.partition_by.split(",") if c.strip()) if args.partition_by else None
    if parts:
        out = export_selection(open_store(settings), args.table, selection, args.format or "parquet", args.out,
                               partition_by=parts)
        emit(args, out, f"wrote {out['rows']} {args.table} rows to {out['path']} ({out['files']} files, "
                        f"partitioned by {', '.join(parts)})")
        return 0
    out_path = check_destination(args.out)
    fmt = args.format
    if fmt is None:
        fmt = out_path.suffix.lower().lstrip(".")
        if not fmt:
            raise CovcallError("give --format csv|jsonl|parquet, or an --out file ending in .csv, .jsonl or "
                               ".parquet")
    out = export_selection(open_store(settings), args.table, selection, fmt, args.out)
    what = {"chat-jsonl": "chat records", "preference-jsonl": "preference pairs"}.get(fmt, f"{out['table']} rows")
    emit(args, out, f"wrote {out['rows']} {what} to {out['path']}")
    return 0


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit

    if args.limit <= 0:
        raise CovcallError("--limit must be a positive number")
    if args.rename:
        if args.label is None:
            raise CovcallError("--rename needs --label TEXT (the new name)")
        open_store(settings).rename_run(args.rename, args.label)
        emit(args, {"run_id": args.rename, "label": args.label}, f"run {args.rename} is now called {args.label!r}")
        return 0
    if args.delete:
        return _delete_runs(args, settings)
    df = open_store(settings).list_runs(limit=args.limit)
    cols = ["run_id", "status", "label", "underlying", "timeframe", "start_date", "end_date", "exit_style", "policy",
            "n_trades", "n_decisions", "total_return", "excess_return", "sharpe"]
    for key in ("total_return", "excess_return", "sharpe"):  # what a reader scans the list for
        df[key] = [(m or {}).get(key) if isinstance(m, dict) else None for m in df["metrics"]] if len(df) else []
    rows = df[cols].astype(object).where(df[cols].notna(), None).to_dict("records") if len(df) else []

    def human() -> None:
        if not len(df):
            print("no runs yet")
            return
        shown = df[cols].copy()
        for key, fmt in (("total_return", "{:+.1%}"), ("excess_return", "{:+.1%}"), ("sharpe", "{:.2f}")):
            shown[key] = [fmt.format(v) if isinstance(v, float) and v == v else "" for v in shown[key]]
        shown["label"] = shown["label"].fillna("")  # a run started without a label has none, not "NaN"
        print(shown.rename(columns={"excess_return": "vs_hodl"}).to_string(index=False))

    emit(args, rows, human)
    return 0


def _delete_runs(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.dataset import delete_runs

    store = open_store(settings)
    plan = store.run_footprint(args.delete)  # an unknown id is refused here, with the nearest known one
    if not args.yes:
        rows = plan.astype(object).where(plan.notna(), None).to_dict("records")
        emit(args, {"would_delete": rows, "deleted": False},
             lambda: print(plan.to_string(index=False) + "\n\nnothing deleted; add --yes to delete these runs"
                           + (" and their export files" if args.exports else "")))
        return 1
    done = delete_runs(store, list(args.delete), delete_exports=args.exports)
    emit(args, {**done, "deleted": True},
         f"deleted {done['runs']} run(s): " + ", ".join(f"{v} {k}" for k, v in done["rows"].items())
         + (f"; removed {len(done['export_files_removed'])} export files" if done["export_files_removed"] else "")
         + (f"; walks {', '.join(done['walks_keeping_their_ledger'])} keep their trial ledger"
            if done["walks_keeping_their_ledger"] else ""))
    return 0
