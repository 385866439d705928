"""`covcall walk`, `covcall train`, `covcall walks` and `covcall demo`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from covcall import open_store
from covcall.cli import add_compute_args

if TYPE_CHECKING:
    from covcall.config import Settings


def register(sub: Any) -> None:
    w = sub.add_parser("walk", help="fit variants on training ranges and rank them on the test range",
                       description="Run a walk from a JSON/TOML spec (rangeTrain / rangeTest, metric, seed ...): "
                                   "tune a rule variant and train a LightGBM variant per training range, then "
                                   "backtest every variant and baseline on the test range and rank them.")
    w.add_argument("--spec", required=True, help="walk spec file (.json or .toml)")
    add_compute_args(w)
    w.add_argument("--plan", action="store_true",
                   help="only say how many units, how much work and where it would run (runs nothing)")
    w.add_argument("--sensitivity", action="store_true", help="rerun the winner on the test range under the "
                                                              "assumption grid and give the verdict")
    w.add_argument("--json", action="store_true", help="print the result as JSON")
    w.set_defaults(func=cmd_walk)

    t = sub.add_parser("train", help="train the LightGBM models of a walk spec only",
                       description="Collect candidate labels on each training range and train one model per "
                                   "range plus a pooled model; print their ids and diagnostics.")
    t.add_argument("--spec", required=True)
    add_compute_args(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_train)

    ws = sub.add_parser("walks", help="list stored walks", description="List stored walks, newest first.")
    ws.add_argument("--show", metavar="WALK_ID", help="print one walk's leaderboard")
    ws.add_argument("--json", action="store_true")
    ws.set_defaults(func=cmd_walks)

    d = sub.add_parser("demo", help="fill the database with offline demo data",
                       description="Run a small synthetic batch, save a range set and run a quick walk.")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_demo)



def _warn(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _load_spec(path: str, settings: Settings) -> Any:
    from covcall.config import run_defaults
    from covcall.spec import read_spec_file
    from covcall.walkspec import WalkSpec

    return WalkSpec.parse(read_spec_file(path), run_defaults(settings))


def cmd_walk(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit, start_workers_early

    if not args.plan:
        start_workers_early(args, settings)
    from covcall.walker import walk

    spec = _load_spec(args.spec, settings)
    from covcall.cli import compute_for, progress_printer

    compute = compute_for(args, settings, *spec.work())
    if args.plan:
        from covcall.cli import emit_plan

        return emit_plan(args, compute, *spec.work(), f"walk {spec.name}")
    store = open_store(settings)
    res = walk(spec, progress_printer(), store=store, on_warning=_warn, compute=compute)
    out = res.to_dict()
    band = None
    if args.sensitivity:
        from covcall.sensitivity import winner_sensitivity

        band = winner_sensitivity(res, store=store, compute=compute)
        out["winner_sensitivity"] = band.to_dict() if band else None

    def human() -> None:
        print(f"walk {res.walk_id}: {res.info['verdict']['sentence']}")
        sel = res.info["selection"]
        pbo = (sel.get("pbo") or {}).get("pbo")
        print(f"trials N {sel['n_trials']} (effective {sel['n_effective']}), V {sel['sr_variance']:.6f}, "
              f"PBO {'n/a' if pbo is None else f'{pbo:.2f}'}")
        cols = ["rank", "strategy", "kind", "metric_value", "total_return", "max_drawdown", "n_trades", "psr",
                "dsr", "trained_until"]
        print(res.leaderboard[cols].to_string(index=False))
        final = res.info.get("final_test")
        if final and final.get("rows"):
            print(f"final holdout {final['range']}: " + ", ".join(
                f"{r['strategy']} sharpe {'n/a' if r['sharpe'] is None else format(r['sharpe'], '.2f')}"
                for r in final["rows"]))
        print(f"report: {res.report_dir}")
        if band is not None:
            print(f"winner {res.best_strategy} under the assumption grid, rerun on {res.winner_window} "
                  f"{band.window[0]} .. {band.window[1]}: {band.verdict}")

    emit(args, out, human)
    return 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import compute_for, emit, progress_printer, start_workers_early

    start_workers_early(args, settings)
    from covcall.walker import train

    spec = _load_spec(args.spec, settings)
    compute = compute_for(args, settings, sum(len(f.train) for f in spec.folds))
    models = train(spec, progress_printer(), store=open_store(settings), compute=compute)

    def human() -> None:
        for m in models:
            d = m["diagnostics"]
            print(f"{m['name']}: {m['model_id']} trained until {m['trained_until']}  "
                  f"AUC {d.get('auc')}  rank IC {d.get('rank_ic')}  n_train {d.get('n_train')}")

    emit(args, {"models": models}, human)
    return 0


def cmd_walks(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.walker import load_walk

    store = open_store(settings)
    if args.show:
        res = load_walk(store, args.show)
        emit(args, res.to_dict(), lambda: print(res.leaderboard.to_string(index=False)))
        return 0
    from covcall.jobs import job_rows

    df = store.list_walks()
    rows = df.astype(object).where(df.notna(), None).to_dict("records") if len(df) else []
    for r in rows:
        r["status"] = "done"
    saved = {r["walk_id"] for r in rows}
    # Walks still running, killed or failed have a job row but no result yet.
    unfinished = [{"walk_id": j["job_id"], "created_at": j["created_at"], "name": j["name"], "status": j["status"],
                   "error": j["error"]} for j in job_rows(store, "walk") if j["job_id"] not in saved]

    def human() -> None:
        if not rows and not unfinished:
            print("no walks yet")
            return
        if len(df):
            print(df.assign(status="done").to_string(index=False))
        for u in unfinished:
            print(f"{u['walk_id']}  {u['name']}  {u['status']}" + (f"  ({u['error']})" if u["error"] else ""))

    emit(args, unfinished + rows, human)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.demo import generate_demo_data

    export_dir = settings.training_data_dir if settings.save_training_data else None
    from covcall.config import run_defaults

    out = generate_demo_data(open_store(settings), export_dir=export_dir, defaults=run_defaults(settings),
                             progress=lambda f, m: print(f"[{f:4.0%}] {m}", file=sys.stderr, flush=True))
    emit(args, out, lambda: print(("demo data already there, nothing added: " if out["already"] else
                                   "demo data ready: ") + str(out)))
    return 0
