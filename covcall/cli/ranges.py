"""`covcall ranges ...`: validate, suggest, generate, list and save training/testing range sets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covcall import open_store
from covcall.cli import emit
from covcall.errors import SpecError
from covcall.lazy import lazy_module
from covcall.names import plural
from covcall.spec import read_spec_file

if TYPE_CHECKING:
    import pandas as pd

    from covcall import ranges as rg
    from covcall.config import Settings
else:
    pd = lazy_module("pandas")
    rg = lazy_module("covcall.ranges")

DEFAULT_MAX_LABEL_DAYS = 30.0
DEFAULT_SUGGEST_START = "2019-01-01"
DEFAULT_SUGGEST_END = "2025-12-31"


def max_label_days_from_spec(spec: dict[str, Any]) -> float:
    """The longest label horizon a walk spec implies (the same rule `covcall walk` applies).

    A full walk spec gives the largest DTE any of its variants may sell (strategy and grid); otherwise
    max_dte_days, dte_max, strategy.dte_range[1], else 30.
    """
    from covcall.walkspec import WalkSpec

    try:
        return WalkSpec.parse(spec).max_label_days
    except SpecError:
        pass
    for key in ("max_dte_days", "dte_max"):
        if spec.get(key) is not None:
            return _positive(spec[key], key)
    strategy = spec.get("strategy")
    if isinstance(strategy, dict) and isinstance(strategy.get("dte_range"), (list, tuple)):
        dte = strategy["dte_range"]
        if len(dte) == 2:
            return _positive(dte[1], "strategy.dte_range[1]")
    return DEFAULT_MAX_LABEL_DAYS


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"{name}: {value!r} must be a number of days >= 0")
    return float(value)


def _range_set_from_file(path: str, name: str | None = None) -> tuple[rg.RangeSet, dict[str, Any]]:
    spec = read_spec_file(path)
    return rg.RangeSet.from_dict(spec, name=name or spec.get("name") or Path(path).stem), spec


def _render(rs: rg.RangeSet) -> str:
    lines = [f"{rs.name}  (gap {rs.gap_days} days{', strict' if rs.strict else ''})"]
    for i, r in enumerate(rs.train, start=1):
        lines.append(f"  train {i:<3} {r}  {r.days:>4} days  {r.note}".rstrip())
    lines.append(f"  test      {rs.test}  {rs.test.days:>4} days  {rs.test.note}".rstrip())
    return "\n".join(lines)



# -- handlers --------------------------------------------------------------------------------------
def _validate(args: argparse.Namespace, settings: Settings) -> int:
    rs, spec = _range_set_from_file(args.spec)
    if args.strict:
        rs.strict = True
    max_label = float(args.max_dte) if args.max_dte is not None else max_label_days_from_spec(spec)
    issues = rs.validate(max_label)

    def human() -> None:
        for issue in issues:
            print(f"{issue.level}: {issue.message}")
        if not issues:
            print(f"ok: {rs.name}: {plural(len(rs.train), 'training range')}, test {rs.test}, "
                  f"gap {rs.gap_days} days, labels up to {max_label:g} days ahead")

    emit(args, [i.to_dict() for i in issues], human)
    if rg.has_errors(issues):
        return 2
    return 1 if any(i.level == "warning" for i in issues) else 0


def _suggest(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.market import load_candles

    test = None
    if (args.test_start is None) != (args.test_end is None):
        raise SpecError("give both --test-start and --test-end, or neither (then the last 90 days are the test)")
    if args.test_start is not None:
        test = rg.Range(rg._parse_date(args.test_start, "--test-start"), rg._parse_date(args.test_end, "--test-end"))
        if test.start > test.end:
            raise SpecError(f"test range ({test}): start is after end; swap --test-start and --test-end")
    start = rg._parse_date(args.start, "--start")
    end = (rg._parse_date(args.end, "--end") if args.end
           else (test.end if test else rg._parse_date(DEFAULT_SUGGEST_END, "--end")))
    store = open_store(settings) if args.source == "store" or args.save else None
    candles = load_candles(args.underlying, args.timeframe, start.isoformat(), end.isoformat(),
                           source=args.source, store=store, seed=settings.synthetic_seed)
    close = pd.Series(candles["close"].to_numpy(), index=pd.to_datetime(candles["ts"], utc=True))
    rs = rg.suggest_ranges(close, test=test, gap_days=args.gap_days, min_days=args.min_days,
                           name=args.save or f"suggested-{args.underlying.lower()}")
    if args.save:
        rg.save_range_set(store, rs, overwrite=args.force)
    emit(args, rs.to_dict(), lambda: print(_render(rs) + (f"\nsaved as {rs.name}" if args.save else "")))
    return 0


def _rolling(args: argparse.Namespace, settings: Settings) -> int:
    step = args.step_days if args.step_days is not None else args.test_days
    windows = rg.rolling(args.start, args.train_days, args.test_days, step, args.gap_days, args.count)
    emit(args, [w.to_dict() for w in windows], lambda: print("\n".join(_render(w) for w in windows)))
    return 0


def _presets(args: argparse.Namespace, settings: Settings) -> int:
    sets = rg.presets()
    try:
        syn = rg.synthetic_preset("BTC", seed=settings.synthetic_seed)
        sets[syn.name] = syn
    except ImportError:
        pass  # the synthetic market is optional here
    emit(args, {k: v.to_dict() for k, v in sets.items()}, lambda: print("\n".join(_render(v) for v in sets.values())))
    return 0


def _save(args: argparse.Namespace, settings: Settings) -> int:
    rs, _ = _range_set_from_file(args.spec, args.name)
    outcome = rg.save_range_set(open_store(settings), rs, overwrite=args.force)
    n = len(rs.train)
    emit(args, {**rs.to_dict(), "outcome": outcome},
         f"saved range set {rs.name} ({outcome}): {n} training range{'' if n == 1 else 's'}, test {rs.test}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(settings)
    sets = [rg.load_range_set(store, n) for n in rg.list_range_sets(store)]

    def human() -> None:
        if not sets:
            print("no saved range sets; save one with: covcall ranges save --spec FILE --name NAME")
        for rs in sets:
            print(f"{rs.name}: {plural(len(rs.train), 'training range')}, test {rs.test}, gap {rs.gap_days} days")

    emit(args, [rs.to_dict() for rs in sets], human)
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    name = args.name
    rs = rg.presets().get(name) or rg.load_range_set(open_store(settings), name)
    emit(args, rs.to_dict(), lambda: print(_render(rs)))
    return 0


def _delete(args: argparse.Namespace, settings: Settings) -> int:
    open_store(settings).delete_range_set(args.name)
    emit(args, {"deleted": args.name}, f"deleted range set {args.name!r}")
    return 0


def _rename(args: argparse.Namespace, settings: Settings) -> int:
    open_store(settings).rename_range_set(args.old, args.new)
    emit(args, {"renamed": args.old, "to": args.new.strip()}, f"range set {args.old!r} is now {args.new.strip()!r}")
    return 0


# -- parser ---------------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ranges", help="training/testing date ranges: validate, suggest, rolling, save")
    sub = p.add_subparsers(dest="ranges_command", metavar="ACTION", required=True)

    def add(name: str, help_: str, func: Any) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
        sp.set_defaults(func=func)
        return sp

    v = add("validate", "check a spec's ranges for leaks; exit 0 clean, 1 warnings, 2 errors", _validate)
    v.add_argument("--spec", required=True, help="walk spec file (.json or .toml) with rangeTrain/rangeTest")
    v.add_argument("--max-dte", type=float, default=None,
                   help="longest label horizon in days (default: the spec's max_dte_days/dte_max/"
                        "strategy.dte_range, else 30)")
    v.add_argument("--strict", action="store_true", help="treat a too-short gap as an error")

    s = add("suggest", "propose one training range per market regime", _suggest)
    s.add_argument("--underlying", default="BTC")
    s.add_argument("--timeframe", default="1d")
    s.add_argument("--source", choices=["synthetic", "store", "ccxt"], default="synthetic")
    s.add_argument("--start", default=DEFAULT_SUGGEST_START, help=f"first day of prices (default {DEFAULT_SUGGEST_START})")
    s.add_argument("--end", default=None,
                   help=f"last day of prices, inclusive (default: --test-end, else {DEFAULT_SUGGEST_END})")
    s.add_argument("--test-start", default=None)
    s.add_argument("--test-end", default=None)
    s.add_argument("--gap-days", type=int, default=30)
    s.add_argument("--min-days", type=int, default=45, help="shortest training range to propose")
    s.add_argument("--save", metavar="NAME", default=None, help="save the proposal under this name")
    s.add_argument("--force", action="store_true", help="with --save: overwrite a different set of that name")

    d = add("delete", "delete a saved range set", _delete)
    d.add_argument("name")
    n = add("rename", "rename a saved range set", _rename)
    n.add_argument("old")
    n.add_argument("new")

    r = add("rolling", "walk-forward windows", _rolling)
    r.add_argument("--start", required=True)
    r.add_argument("--train-days", type=int, required=True)
    r.add_argument("--test-days", type=int, required=True)
    r.add_argument("--step-days", type=int, default=None, help="days between windows (default: --test-days, so "
                                                              "test ranges tile without overlap)")
    r.add_argument("--gap-days", type=int, default=0)
    r.add_argument("--count", type=int, default=4, help="number of windows (default 4, at most 1,000)")

    add("presets", "built-in range sets (BTC regimes, synthetic market regimes)", _presets)

    sv = add("save", "save a spec's ranges under a name in the store", _save)
    sv.add_argument("--spec", required=True)
    sv.add_argument("--name", default=None, help="name to save under (default: the spec's name)")
    sv.add_argument("--force", action="store_true", help="overwrite a different range set saved under the name")

    add("list", "saved range sets", _list)

    sh = add("show", "one preset or saved range set", _show)
    sh.add_argument("name")
