"""`covcall models`: list trained models, show their diagnostics and explain a decision."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from covcall import open_store

if TYPE_CHECKING:
    from covcall.config import Settings


def register(sub: Any) -> None:
    m = sub.add_parser("models", help="list, inspect and explain trained LightGBM models",
                       description="List trained models, show one model's diagnostics, or explain why it sold a "
                                   "candidate or skipped at a decision of a run.")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", parser_class=type(m))
    ls = msub.add_parser("list", help="list trained models")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    sh = msub.add_parser("show", help="diagnostics of one model")
    sh.add_argument("model_id")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=cmd_show)
    ex = msub.add_parser("explain", help="per-feature contributions behind one decision")
    ex.add_argument("model_id")
    ex.add_argument("--run", required=True, help="run id whose candidates were recorded (e.g. a walk's model run)")
    ex.add_argument("--at", help="decision time (YYYY-MM-DD[ HH:MM]); default: the run's first decision")
    ex.add_argument("--threshold", type=float, default=0.0)
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=cmd_explain)



def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.models import list_models

    df = list_models(open_store(settings))
    cols = [c for c in ("model_id", "name", "target", "n_train", "trained_until", "created_at") if c in df.columns]
    rows = df[cols].astype(object).where(df[cols].notna(), None).to_dict("records") if len(df) else []
    emit(args, rows, lambda: print(df[cols].to_string(index=False) if len(df) else "no models yet"))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.models import model_diagnostics

    d = model_diagnostics(open_store(settings), args.model_id)

    def human() -> None:
        for k in ("n_train", "n_valid", "best_iteration", "auc", "brier", "log_loss", "base_rate", "rmse", "rank_ic"):
            print(f"{k:<15} {d.get(k)}")
        print("feature importance (gain):")
        for f in d.get("feature_importance", [])[:10]:
            print(f"  {f['feature']:<14} {f['regressor_gain']:.4g}")

    emit(args, d, human)
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    from covcall.cli import emit
    from covcall.explain import explain_decision

    out = explain_decision(open_store(settings), args.model_id, args.run, args.at, args.threshold)
    payload = {**out, "candidates": out["candidates"].to_dict("records"),
               "contributions": out["contributions"].to_dict("records")}

    def human() -> None:
        best = out["candidates"].iloc[out["best"]]
        verdict = "sell" if out["sells"] else f"skip (below threshold {out['threshold']})"
        print(f"{out['decision_time']:%Y-%m-%d %H:%M}: best {best['instrument']} predicted "
              f"{out['target']} {out['best_prediction']:.5f} -> {verdict}")
        print(out["contributions"].to_string(index=False))

    emit(args, payload, human)
    return 0
