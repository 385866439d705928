"""The walker: backtest every variant and baseline on the held-out test range and rank them (with PSR/DSR)."""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covcall.backtest import WARMUP_DAYS, BacktestConfig, data_hash, load_inputs, new_id, run_backtest
from covcall.calibration import chain_for
from covcall.chain import ChainParams
from covcall.errors import CovcallError, SpecError, did_you_mean
from covcall.jobs import tracked
from covcall.jsonutil import dumps, plain
from covcall.metrics import deflated_sharpe_ratio, probabilistic_sharpe_ratio
from covcall.optimizer import (
    WalkProgress,
    baseline_variants,
    optimize,
    optimizer_steps,
    rank_key,
)
from covcall.ranges import has_errors
from covcall.store import Store
from covcall.version import code_version
from covcall.walkspec import METRICS, WalkSpec

LEADERBOARD_COLUMNS = ("rank", "strategy", "kind", "metric_value", *METRICS, "psr", "dsr", "trained_until",
                       "frame", "run_id", "model_id", "params")


@dataclass
class WalkResult:
    """A finished walk: the ranked leaderboard, the best variant and where its report lives."""

    walk_id: str
    name: str
    metric: str
    best_strategy: str | None
    best_metric: float | None
    leaderboard: pd.DataFrame
    spec: dict[str, Any]
    n_trials: int
    report_dir: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def strategies(self) -> list[dict[str, Any]]:
        return _records(self.leaderboard)

    def to_dict(self) -> dict[str, Any]:
        return {"walk_id": self.walk_id, "name": self.name, "metric": self.metric,
                "best_strategy": self.best_strategy, "best_metric": plain(self.best_metric),
                "strategies": self.strategies, "n_trials": self.n_trials, "report_dir": self.report_dir,
                "spec": self.spec, **self.info}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict("records")]


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-").lower() or "walk"


def pin_calibration(spec: WalkSpec, store: Store | None) -> str | None:
    """Resolve the spec's chain calibration once, so every run of the walk (tuner trials without a database
    included) prices with the same surface, and the stored spec carries it whole (reproducible on its own)."""
    chain = ChainParams(**(spec.strategy.get("chain") or {}))
    name = spec.strategy.get("calibration", "auto")
    effective, cal_id = chain_for(chain, name, spec.underlying, store)
    spec.strategy = {**spec.strategy, "chain": effective.model_dump(), "calibration": cal_id or "none"}
    return cal_id


def check_ranges(spec: WalkSpec) -> list[Any]:
    """Validate the range set against the spec's label horizon; raise on errors with every message."""
    issues = spec.ranges.validate(spec.max_label_days)
    if has_errors(issues):
        lines = "; ".join(i.message for i in issues if i.level == "error")
        raise SpecError(f"range set '{spec.ranges.name}' is not usable: {lines}")
    return issues


def walk(spec: WalkSpec | dict[str, Any], progress: WalkProgress | None = None, *, store: Store | None = None,
         report_root: str | Path | None = None, model_dir: str | Path | None = None,
         defaults: dict[str, Any] | None = None) -> WalkResult:
    """Fit the variants on the training ranges, then backtest all of them and the baselines on the test range.

    Every variant sees the same candles, IV, chain model and fees. Ranked by `spec.metric`; a variant whose
    metric cannot be computed ranks last; ties break by name. Without a store the walk runs in a temporary
    database (nothing is kept).
    """
    if isinstance(spec, dict):
        spec = WalkSpec.parse(spec, defaults)
    issues = check_ranges(spec)
    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="covcall-walk-")
        store = Store(Path(tmp.name) / "walk.duckdb")
    root = Path(store.path).parent
    model_dir = Path(model_dir) if model_dir is not None else root / "models"
    walk_id = new_id(f"{_slug(spec.name)}-")

    with tracked(store if tmp is None else None, walk_id, "walk", spec.name):
        lo, hi = spec.data_window()
        calibration_id = pin_calibration(spec, store)
        span_cfg = BacktestConfig.parse({"underlying": spec.underlying, "timeframe": spec.timeframe,
                                         "source": spec.source, "iv_source": spec.iv_source, "seed": spec.seed,
                                         "start": lo, "end": hi})
        candles, iv = load_inputs(span_cfg, store)
        baselines = baseline_variants(spec)
        n_opt = optimizer_steps(spec)
        n_test_est = len(spec.ranges.train) * (2 if spec.model.enabled else 1) + (
            1 if spec.model.enabled and spec.model.pooled and len(spec.ranges.train) > 1 else 0) + len(baselines)
        total = n_opt + n_test_est

        opt = optimize(spec, candles=candles, iv=iv, store=store, model_dir=model_dir, batch_id=walk_id,
                       progress=progress, total=total)
        variants = opt.variants + baselines
        test_start = pd.Timestamp(spec.ranges.test.start, tz="UTC")
        for v in variants:
            if v.trained_until is not None and v.trained_until > test_start:
                raise SpecError(f"{v.name} used labels up to {v.trained_until:%Y-%m-%d %H:%M}, after the test start "
                                f"{test_start:%Y-%m-%d}; widen gap_days or end the training range earlier")

        rows: list[dict[str, Any]] = []
        done = n_opt
        for v in variants:
            cfg = spec.base_config(spec.ranges.test, **v.overrides, label=f"{spec.name}: {v.name} on test")
            # model variants keep their candidates so every decision can be explained afterwards
            res = run_backtest(cfg, candles=candles, iv=iv, store=store, batch_id=walk_id,
                               record_candidates=v.model_id is not None)
            m = res.metrics
            rows.append({"strategy": v.name, "kind": v.kind, "metric_value": m.get(spec.metric),
                         **{k: m.get(k) for k in METRICS}, "sharpe_per_bar": m.get("sharpe_per_bar"),
                         "n_bars": m.get("n_bars"), "skew": m.get("skew"), "kurtosis": m.get("kurtosis"),
                         "n_trades": m.get("n_trades"),
                         "trained_until": v.trained_until, "frame": v.frame, "run_id": res.run_id,
                         "model_id": v.model_id, "params": json.dumps(v.overrides, sort_keys=True)})
            done += 1
            if progress:
                progress(done, total, f"tested {v.name}")

        board = _rank(pd.DataFrame(rows), spec.metric, opt.n_trials)
        best = board.iloc[0] if len(board) and pd.notna(board.iloc[0]["metric_value"]) else None
        result = WalkResult(
            walk_id=walk_id, name=spec.name, metric=spec.metric,
            best_strategy=None if best is None else str(best["strategy"]),
            best_metric=None if best is None else float(best["metric_value"]),
            leaderboard=board, spec=spec.to_dict(), n_trials=opt.n_trials,
            info={"spec_hash": spec.spec_hash(), "data_hash": data_hash(candles, iv), "code_version": code_version(),
                  "frames": {k: str(r) for k, r in spec.ranges.frames(spec.label_prefix).items()},
                  "issues": [i.to_dict() for i in issues],
                  "models": {v.name: {"model_id": v.model_id, "diagnostics": v.diagnostics}
                             for v in opt.variants if v.model_id},
                  "warmup_days": WARMUP_DAYS, "calibration": calibration_id},
        )
        if tmp is None:
            report = Path(report_root) if report_root is not None else root / "walks"
            result.report_dir = str(write_report(result, report / walk_id))
            store.save_walk({"walk_id": walk_id, "created_at": pd.Timestamp.now(tz="UTC"), "name": spec.name,
                             "spec_json": json.dumps(spec.to_dict(), sort_keys=True), "spec_hash": spec.spec_hash(),
                             "metric": spec.metric, "best_strategy": result.best_strategy,
                             "best_metric": result.best_metric,
                             "result_json": dumps(result.to_dict()),
                             "report_dir": result.report_dir})
        else:
            tmp.cleanup()
    return result


def train(spec: WalkSpec | dict[str, Any], progress: WalkProgress | None = None, *, store: Store,
          model_dir: str | Path | None = None, defaults: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fit only the LightGBM variants of a walk spec (one per training range, plus the pooled one).

    Returns one summary per model: name, model_id, frame, trained_until and the main diagnostics.
    """
    if isinstance(spec, dict):
        spec = WalkSpec.parse(spec, defaults)
    check_ranges(spec)
    pin_calibration(spec, store)
    lo, hi = spec.data_window()
    cfg = BacktestConfig.parse({"underlying": spec.underlying, "timeframe": spec.timeframe, "source": spec.source,
                                "iv_source": spec.iv_source, "seed": spec.seed, "start": lo, "end": hi})
    candles, iv = load_inputs(cfg, store)
    model_dir = Path(model_dir) if model_dir is not None else Path(store.path).parent / "models"
    opt = optimize(spec, candles=candles, iv=iv, store=store, model_dir=model_dir, batch_id=new_id("train-"),
                   progress=progress, total=optimizer_steps(spec, rules=False), rules=False)
    keys = ("auc", "brier", "log_loss", "base_rate", "rmse", "rank_ic", "n_train", "n_valid")
    return [{"name": v.name, "model_id": v.model_id, "frame": v.frame,
             "trained_until": v.trained_until.isoformat() if v.trained_until is not None else None,
             "diagnostics": {k: plain(v.diagnostics.get(k)) for k in keys}} for v in opt.variants]


def _rank(df: pd.DataFrame, metric: str, n_trials: int) -> pd.DataFrame:
    """Order by the metric (NaN last, ties by name) and add PSR (vs 0) and DSR (vs luck over n_trials)."""
    if df.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    sr = pd.to_numeric(df["sharpe_per_bar"], errors="coerce").to_numpy(float)
    finite = sr[np.isfinite(sr)]
    sr_var = float(np.var(finite, ddof=1)) if finite.size > 1 else 0.0
    trials = max(int(n_trials), len(df))
    psr, dsr = [], []
    for row in df.itertuples():
        n = int(row.n_bars) - 1 if pd.notna(row.n_bars) else 0
        psr.append(probabilistic_sharpe_ratio(row.sharpe_per_bar, 0.0, n, row.skew, row.kurtosis)
                   if pd.notna(row.sharpe_per_bar) else float("nan"))
        dsr.append(deflated_sharpe_ratio(row.sharpe_per_bar, sr_var, trials, n, row.skew, row.kurtosis)
                   if pd.notna(row.sharpe_per_bar) else float("nan"))
    df = df.assign(psr=psr, dsr=dsr)
    order = sorted(range(len(df)), key=lambda k: rank_key(
        None if pd.isna(df["metric_value"].iloc[k]) else float(df["metric_value"].iloc[k]), metric,
        str(df["strategy"].iloc[k])))
    df = df.iloc[order].reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    extra = [c for c in df.columns if c not in LEADERBOARD_COLUMNS]
    return df[list(LEADERBOARD_COLUMNS) + extra]


def write_report(result: WalkResult, folder: Path) -> Path:
    """`result.json` (everything) and `report.md` (the ranked table) in the walk's folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(dumps(result.to_dict(), indent=2, sort_keys=False), encoding="utf-8")
    test = next((v for k, v in result.info["frames"].items() if k.endswith("_test_frame")), "")
    lines = [f"# Walk {result.walk_id}: {result.name}", "",
             f"Ranked by **{result.metric}** on the test range {test}. "
             f"Best: **{result.best_strategy}** ({_fmt(result.best_metric)}). Variants tried: {result.n_trials}.", "",
             "| rank | strategy | kind | " + result.metric + " | total return | max drawdown | PSR | DSR "
             "| trained until |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result.strategies:
        lines.append(f"| {r['rank']} | {r['strategy']} | {r['kind']} | {_fmt(r['metric_value'])} | "
                     f"{_fmt(r['total_return'], pct=True)} | "
                     f"{_fmt(r['max_drawdown'], pct=True)} | {_fmt(r['psr'])} | {_fmt(r['dsr'])} | "
                     f"{(r['trained_until'] or '-')[:16]} |")
    lines += ["", "PSR: probability the test Sharpe beats 0. DSR: the same against the best Sharpe expected from "
              f"luck alone over {result.n_trials} variants tried. Trained until: the latest label end any "
              "training row (incl. the early-stopping tail) used; it must fall before the test start.", "",
              "Training frames:", *[f"- `{k}`: {v}" for k, v in result.info["frames"].items()], "",
              "Reproduce: save the spec below as `spec.json` and run `covcall walk --spec spec.json`.", "", "```json",
              json.dumps(result.spec, indent=2), "```", ""]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.2%}" if pct else f"{v:.3f}"


def load_walk(store: Store, walk_id: str) -> WalkResult:
    """Reopen a stored walk."""
    row = store.get_walk(walk_id)
    if row is None:
        known = list(store.list_walks()["walk_id"])
        raise CovcallError(f"no walk {walk_id!r}{did_you_mean(walk_id, known)}; list walks with `covcall walks`")
    d = row["result"]
    board = pd.DataFrame(d["strategies"])
    info = {k: v for k, v in d.items() if k not in {"walk_id", "name", "metric", "best_strategy", "best_metric",
                                                     "strategies", "n_trials", "report_dir", "spec"}}
    return WalkResult(d["walk_id"], d["name"], d["metric"], d["best_strategy"], d["best_metric"], board,
                      d["spec"], d["n_trials"], d.get("report_dir"), info)
