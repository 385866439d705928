"""The walker: tune and train per fold, test every variant and baseline out of sample, rank with DSR, PBO and a verdict."""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covcall.backtest import (
    WARMUP_DAYS,
    BacktestConfig,
    BacktestResult,
    MarketInputs,
    backtest_unit,
    data_hash,
    load_basis_history,
    load_events,
    load_fine_closes,
    load_inputs,
    new_id,
    run_backtest,
)
from covcall.calibration import chain_for
from covcall.chain import ChainParams
from covcall.compute import ComputeSpec, Executor, UnitFailure
from covcall.errors import CovcallError, SpecError, did_you_mean
from covcall.jobs import tracked
from covcall.jsonutil import dumps, plain
from covcall.ledger import selection_trials, trial_row
from covcall.metrics import deflated_sharpe_ratio, equity_metrics, probabilistic_sharpe_ratio
from covcall.optimizer import (
    Variant,
    WalkProgress,
    baseline_variants,
    optimize,
    optimizer_steps,
    rank_key,
)
from covcall.ranges import RangeSet, has_errors
from covcall.sink import BufferSink, StoreSink
from covcall.store import Store
from covcall.validation import (
    PBOResult,
    SelectionStats,
    merge_duplicates,
    pbo_if_possible,
    returns_frame,
    selection_stats,
    verdict,
)
from covcall.version import code_version
from covcall.walkspec import METRICS, WalkSpec

LEADERBOARD_COLUMNS = ("rank", "strategy", "kind", "metric_value", *METRICS, "psr", "dsr", "dsr_effective",
                       "trained_until", "frame", "run_id", "model_id", "params")


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

    @property
    def winner_window(self) -> str:
        """Where the winner's band reruns it, in words: a walk-forward's last fold's test range, or the test range
        (`WalkSpec.to_dict` lists folds only when there are several)."""
        return "its last fold's test range" if "folds" in self.spec else "the test range"

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
    """Validate every fold's range set against the spec's label horizon; raise on errors with every message."""
    out: list[Any] = []
    for k, rs in enumerate(spec.folds, start=1):
        issues = rs.validate(spec.max_label_days)
        where = f"fold {k} " if len(spec.folds) > 1 else ""
        if has_errors(issues):
            lines = "; ".join(i.message for i in issues if i.level == "error")
            raise SpecError(f"{where}range set '{rs.name}' is not usable: {lines}")
        out += issues
    return out


def leak_warnings(spec: WalkSpec) -> list[str]:
    """The range checks' warnings (a training range ending within the label horizon of the test start ...)."""
    out = []
    for k, rs in enumerate(spec.folds, start=1):
        where = f"fold {k}: " if len(spec.folds) > 1 else ""
        out += [f"warning: {where}{i.message}" for i in rs.validate(spec.max_label_days) if i.level == "warning"]
    return out


@dataclass
class FoldRun:
    """One fold: its variants, their test-range rows and the ledger rows of its tuning and testing."""

    fold: int
    ranges: RangeSet
    variants: list[Variant]
    rows: list[dict[str, Any]]
    trials: list[dict[str, Any]]


def _model_policy(model: Any, cfg: BacktestConfig) -> Any:
    """A model variant's policy around its in-memory model (so its test run needs no store); None for the rest."""
    if model is None:
        return None
    from covcall.policies.model import model_policy

    return model_policy(model, threshold=cfg.model_threshold, dte_range=(cfg.dte_min_days, cfg.dte_max_days),
                        delta_range=(cfg.delta_min, cfg.delta_max))


def run_fold(spec: WalkSpec, fold: int, rs: RangeSet, *, sink: StoreSink | BufferSink, walk_id: str,
             progress: WalkProgress | None, total: int, done: int, ex: Executor, data: Any) -> FoldRun:
    """Tune and train on the fold's training ranges only, then test every variant and baseline on its test range.

    Depends only on the spec, the fold and the market data: tuner trials and test runs are units on `ex`;
    runs and models go to `sink` as they arrive (the store on the driver; a buffer on a worker).
    """
    opt = optimize(spec, sink=sink, batch_id=walk_id, progress=progress, total=total, fold=fold, ranges=rs,
                   done=done, ex=ex, data=data)
    done += optimizer_steps(spec, ranges=rs)
    common = {"walk_id": walk_id, "fold": fold, "underlying": spec.underlying, "timeframe": spec.timeframe,
              "metric": spec.metric}
    trials = [trial_row(**common, trial_id=f"{fold}:tune:{t.frame}:{t.trial.index}", stage="tune",
                        frame=t.frame, name=f"{t.frame}#{t.trial.index}", kind="rule", window=t.range,
                        params=t.trial.point, res=t.trial.result) for t in opt.trials]
    variants = opt.variants + baseline_variants(spec)
    test_start = pd.Timestamp(rs.test.start, tz="UTC")
    for v in variants:
        if v.trained_until is not None and v.trained_until > test_start:
            raise SpecError(f"{v.name} used labels up to {v.trained_until:%Y-%m-%d %H:%M}, after the test start "
                            f"{test_start:%Y-%m-%d}; widen gap_days or end the training range earlier")
    rows: list[dict[str, Any]] = []
    where = f" (fold {fold})" if len(spec.folds) > 1 else ""
    cfgs = [spec.base_config(rs.test, **v.overrides, label=f"{spec.name}: {v.name} on test{where}") for v in variants]
    # model variants keep their candidates so every decision can be explained afterwards
    results: dict[int, BacktestResult] = {}
    units = [(c, data, _model_policy(v.model, c), v.model_id is not None) for c, v in zip(cfgs, variants, strict=True)]
    for i, res, _ in ex.map(backtest_unit, units):
        if isinstance(res, UnitFailure):
            raise CovcallError(f"{variants[i].name} failed on the test range: {res.error}")
        sink.run(res, walk_id)
        results[i] = res
        done += 1
        if progress:
            progress(done, total, f"tested {variants[i].name}{where}")
    for i, v in enumerate(variants):
        res = results[i]
        m = res.metrics
        rows.append({"strategy": v.name, "kind": v.kind, "metric_value": m.get(spec.metric),
                     **{k: m.get(k) for k in METRICS}, "sharpe_per_bar": m.get("sharpe_per_bar"),
                     "n_bars": m.get("n_bars"), "skew": m.get("skew"), "kurtosis": m.get("kurtosis"),
                     "n_trades": m.get("n_trades"), "fold": fold,
                     "trained_until": v.trained_until, "frame": v.frame, "run_id": res.run_id,
                     "model_id": v.model_id, "params": json.dumps(v.overrides, sort_keys=True)})
        trials.append(trial_row(**common, trial_id=f"{fold}:test:{v.name}", stage="test", frame=v.frame,
                                name=v.name, kind=v.kind, window=rs.test, params=v.overrides, res=res,
                                run_id=res.run_id))
    return FoldRun(fold, rs, variants, rows, trials)


def fold_unit(spec: WalkSpec, fold: int, rs: RangeSet, data: MarketInputs, walk_id: str) -> tuple[FoldRun, BufferSink]:
    """A whole fold as one unit of work: everything inside runs serially on the worker; its runs and models
    come back in a buffer the driver saves (a worker never opens the store)."""
    buffer = BufferSink()
    fr = run_fold(spec, fold, rs, sink=buffer, walk_id=walk_id, progress=None, total=0, done=0,
                  ex=Executor(ComputeSpec("serial")), data=data)
    return fr, buffer


def walk_steps(spec: WalkSpec) -> int:
    """Progress steps of a whole walk: every fold's tuning and training, then its test runs."""
    steps = 0
    n_base = len(spec.baselines)
    for rs in spec.folds:
        n_var = len(rs.train) * (2 if spec.model.enabled else 1) + (
            1 if spec.model.enabled and spec.model.pooled and len(rs.train) > 1 else 0)
        steps += optimizer_steps(spec, ranges=rs) + n_var + n_base
    return steps + (2 if spec.final_test is not None else 0)


def walk(spec: WalkSpec | dict[str, Any], progress: WalkProgress | None = None, *, store: Store | None = None,
         report_root: str | Path | None = None, model_dir: str | Path | None = None,
         defaults: dict[str, Any] | None = None, on_warning: Callable[[str], None] | None = None,
         compute: ComputeSpec | None = None) -> WalkResult:
    """Tune and train on each fold's training ranges, test every variant and baseline on its test range, rank.

    One fold (rangeTrain/rangeTest) ranks on the test range; several (`folds` or `rolling`) rank each
    variant family on its out-of-sample returns stitched across the folds. Every configuration evaluated
    lands in the trial ledger, and DSR, effective trials and PBO come from it (see covcall.validation).
    Warnings (a leak-prone gap, a reused test range) go to `on_warning` as they are found and into the result.
    Tuner trials and test runs execute where `compute` says (covcall.compute; serial by default) with the
    same answers. Without a store the walk runs in a temporary database (nothing is kept).
    """
    if isinstance(spec, dict):
        spec = WalkSpec.parse(spec, defaults)
    issues = check_ranges(spec)
    warnings = leak_warnings(spec)
    for w in warnings:
        if on_warning:
            on_warning(w)
    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="covcall-walk-")
        store = Store(Path(tmp.name) / "walk.duckdb")
    root = Path(store.path).parent
    model_dir = Path(model_dir) if model_dir is not None else root / "models"
    walk_id = new_id(f"{_slug(spec.name)}-")
    created = pd.Timestamp.now(tz="UTC")

    # the executor first: an unreachable scheduler fails before anything is recorded
    with Executor(compute or ComputeSpec("serial")) as ex, tracked(store if tmp is None else None, walk_id, "walk",
                                                                    spec.name):
        lo, hi = spec.data_window(final=True)
        calibration_id = pin_calibration(spec, store)
        span_cfg = BacktestConfig.parse({"underlying": spec.underlying, "timeframe": spec.timeframe,
                                         "source": spec.source, "iv_source": spec.iv_source, "seed": spec.seed,
                                         "start": lo, "end": hi})
        total = walk_steps(spec)
        folds: list[FoldRun] = []
        done = 0
        candles, iv = load_inputs(span_cfg, store)
        fine = load_fine_closes(span_cfg.model_copy(update={"settlement": spec.strategy.get("settlement", "auto")}),
                                store)
        data = ex.scatter(MarketInputs(candles, iv, fine, load_events(span_cfg, store),
                                        load_basis_history(span_cfg, store)))
        sink = StoreSink(store, model_dir)
        if len(spec.folds) > 1 and ex.distributed:
            # folds are independent: each is one unit; the driver saves what each brings back as it arrives
            done_folds: dict[int, FoldRun] = {}
            units = [(spec, k, rs, data, walk_id) for k, rs in enumerate(spec.folds, start=1)]
            # biggest folds first (an expanding window's last fold trains on the most days)
            cost = [sum(r.days for r in rs.train) + rs.test.days for rs in spec.folds]
            for i, out, _ in ex.map(fold_unit, units, cost=cost):
                if isinstance(out, UnitFailure):
                    raise CovcallError(f"fold {i + 1} failed: {out.error}")
                fr, buffer = out
                buffer.replay(sink)
                done_folds[i] = fr
                done += optimizer_steps(spec, ranges=fr.ranges) + len(fr.variants)
                if progress:
                    progress(done, total, f"fold {fr.fold} done")
            folds = [done_folds[i] for i in range(len(units))]
        else:
            for k, rs in enumerate(spec.folds, start=1):
                fr = run_fold(spec, k, rs, sink=sink, walk_id=walk_id, progress=progress, total=total, done=done,
                              ex=ex, data=data)
                done += optimizer_steps(spec, ranges=rs) + len(fr.variants)
                folds.append(fr)

        ledger = [t for f in folds for t in f.trials]
        prior: dict[tuple[str, str], dict[str, Any]] = {}
        reuse: list[dict[str, Any]] = []
        if tmp is None:
            for f in folds:
                before = store.prior_trials(spec.underlying, spec.timeframe, f.ranges.test.start, f.ranges.test.end,
                                            created, walk_id)
                if before:
                    walks = {t["walk_id"] for t in before}
                    mine = len(selection_trials(f.trials))
                    msg = (f"warning: the test range {f.ranges.test} has now been used by {len(walks) + 1} walks "
                           f"with {len(before) + mine} trials; N, V and the DSR count all of them")
                    warnings.append(msg)
                    reuse.append({"fold": f.fold, "test": str(f.ranges.test), "walks": len(walks) + 1,
                                  "trials": len(before) + mine, "prior_walks": sorted(walks)})
                    if on_warning:
                        on_warning(msg)
                for t in before:
                    prior[(t["walk_id"], t["trial_id"])] = t
        chosen = selection_trials(ledger) + list(prior.values())
        stats = selection_stats(chosen)

        if len(folds) == 1:
            board = pd.DataFrame(folds[0].rows)
            basis = f"the test range {folds[0].ranges.test}"
            test_returns = {r["name"]: r for r in folds[0].trials if r["stage"] == "test"}
        else:
            board, test_returns = stitch_folds(folds, spec.metric, spec.timeframe)
            basis = f"the stitched out-of-sample series ({len(folds)} folds)"
        board = merge_duplicates(_rank(board, spec.metric, stats))
        board["rank"] = np.arange(1, len(board) + 1)
        pbo_test = _pbo(board, test_returns, spec.pbo_splits)
        pbo_tuner = _pbo_tuner(ledger, spec.pbo_splits)
        verdict_ = verdict(board, stats, pbo_test.pbo if pbo_test else None, basis=basis)
        best = _chosen(board)
        winner = _winner(spec, folds, best)
        final = _final_test(spec, winner, candles=candles, iv=iv, fine=fine, store=store, walk_id=walk_id,
                            ledger=ledger, progress=progress, total=total) if spec.final_test is not None else None
        selection = {**stats.to_dict(), "basis": basis,
                     "dsr_best": plain(best["dsr"]) if best is not None else None,
                     "pbo": pbo_test.to_dict() if pbo_test else None,
                     "pbo_tuner": pbo_tuner, "reuse": reuse,
                     "prior_trials": [{"walk_id": t["walk_id"], "trial_id": t["trial_id"],
                                       "sharpe_per_bar": t["sharpe_per_bar"]} for t in prior.values()]}
        result = WalkResult(
            walk_id=walk_id, name=spec.name, metric=spec.metric,
            best_strategy=None if best is None else str(best["strategy"]),
            best_metric=None if best is None or pd.isna(best["metric_value"]) else float(best["metric_value"]),
            leaderboard=board, spec=spec.to_dict(), n_trials=stats.n_trials,
            info={"spec_hash": spec.spec_hash(), "data_hash": data_hash(candles, iv), "code_version": code_version(),
                  "frames": _frames(spec), "issues": [i.to_dict() for i in issues],
                  "models": {f"{v.name}" + (f" (fold {f.fold})" if len(folds) > 1 else ""):
                             {"model_id": v.model_id, "diagnostics": v.diagnostics}
                             for f in folds for v in f.variants if v.model_id},
                  "warmup_days": WARMUP_DAYS, "calibration": calibration_id, "warnings": warnings,
                  "verdict": verdict_.to_dict(), "selection": selection, "winner": winner,
                  "folds": [_fold_info(f) for f in folds] if len(folds) > 1 else [],
                  "final_test": final, "trials": ledger, "compute": ex.spec.describe()},
        )
        if tmp is None:
            report = Path(report_root) if report_root is not None else root / "walks"
            result.report_dir = str(write_report(result, report / walk_id))
            store.save_walk({"walk_id": walk_id, "created_at": created, "name": spec.name,
                             "spec_json": json.dumps(spec.to_dict(), sort_keys=True), "spec_hash": spec.spec_hash(),
                             "metric": spec.metric, "best_strategy": result.best_strategy,
                             "best_metric": result.best_metric,
                             "result_json": dumps({**result.to_dict(), "trials": None}),
                             "report_dir": result.report_dir}, ledger)
        else:
            tmp.cleanup()
    return result


def _frames(spec: WalkSpec) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, rs in enumerate(spec.folds, start=1):
        prefix = spec.label_prefix if len(spec.folds) == 1 else f"{spec.label_prefix}_fold-{k}"
        out.update({name: str(r) for name, r in rs.frames(prefix).items()})
    if spec.final_test is not None:
        out[f"{spec.label_prefix}_final_test"] = str(spec.final_test)
    return out


def _fold_info(f: FoldRun) -> dict[str, Any]:
    """Per fold: its ranges and what each variant chose (parameter stability) and scored."""
    return {"fold": f.fold, "train": [str(r) for r in f.ranges.train], "test": str(f.ranges.test),
            "variants": [{"strategy": r["strategy"], "kind": r["kind"], "params": json.loads(r["params"]),
                          "metric_value": plain(r["metric_value"]), "sharpe": plain(r["sharpe"]),
                          "total_return": plain(r["total_return"]), "run_id": r["run_id"]} for r in f.rows]}


def stitch_folds(folds: list[FoldRun], metric: str, timeframe: str
                 ) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Each variant family's test returns chained across the folds, with metrics on the chained equity.

    Families missing from a fold are left out (they cannot be compared over the same dates).
    """
    names = [r["strategy"] for r in folds[0].rows]
    per_fold = [{r["strategy"]: r for r in f.rows} for f in folds]
    tests = [{t["name"]: t for t in f.trials if t["stage"] == "test"} for f in folds]
    rows, series = [], {}
    for name in names:
        if not all(name in pf for pf in per_fold):
            continue
        parts = [t[name] for t in tests]
        times = [x for p in parts for x in p["times"]]
        r = np.array([x for p in parts for x in p["returns"]], float)
        ex = np.array([x for p in parts for x in p["excess"]], float)
        hodl = r - ex
        equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
        m = equity_metrics(equity, timeframe)
        h = equity_metrics(np.concatenate([[1.0], np.cumprod(1.0 + hodl)]), timeframe)
        fold_rows = [pf[name] for pf in per_fold]
        n_trades = sum(int(x.get("n_trades") or 0) for x in fold_rows)
        wins = sum(float(x.get("win_rate") or 0.0) * int(x.get("n_trades") or 0) for x in fold_rows)
        m.update(excess_return=m["total_return"] - h["total_return"],
                 win_rate=wins / n_trades if n_trades else float("nan"))
        rows.append({"strategy": name, "kind": fold_rows[0]["kind"], "metric_value": m.get(metric),
                     **{k: m.get(k) for k in METRICS}, "sharpe_per_bar": m["sharpe_per_bar"],
                     "n_bars": m["n_bars"], "skew": m["skew"], "kurtosis": m["kurtosis"], "n_trades": n_trades,
                     "fold": None, "trained_until": None, "frame": "per fold", "run_id": None,
                     "model_id": None,
                     "params": json.dumps([json.loads(x["params"]) for x in fold_rows], sort_keys=True),
                     "fold_runs": [x["run_id"] for x in fold_rows]})
        series[name] = {"name": name, "times": times, "returns": r.tolist(), "excess": ex.tolist()}
    return pd.DataFrame(rows), series


def _pbo(board: pd.DataFrame, series: dict[str, dict[str, Any]], splits: int | None) -> PBOResult | None:
    """PBO of choosing among the (merged) non-baseline rows on the series they were ranked on."""
    names = [n for n, k in zip(board["strategy"], board["kind"], strict=True) if k != "baseline" and n in series]
    return pbo_if_possible(returns_frame([series[n] for n in names]), splits)


def _pbo_tuner(ledger: list[dict[str, Any]], splits: int | None) -> list[dict[str, Any]]:
    """PBO of the tuner's choice on each training frame (its trials share the frame's dates)."""
    frames: dict[str, list[dict[str, Any]]] = {}
    for t in ledger:
        if t["stage"] == "tune":
            frames.setdefault(t["frame"], []).append(t)
    out = []
    for frame, ts in frames.items():
        res = pbo_if_possible(returns_frame(ts), splits)
        if res is not None:
            out.append({"frame": frame, "pbo": res.pbo, "n_trials": res.n_trials, "n_splits": res.n_splits})
    return out


def _chosen(board: pd.DataFrame) -> pd.Series | None:
    """The variant the ranking selects: the best non-baseline row with a metric."""
    rows = board[(board["kind"] != "baseline") & board["metric_value"].notna()] if len(board) else board
    return None if rows.empty else rows.iloc[0]


def _winner(spec: WalkSpec, folds: list[FoldRun], best: pd.Series | None) -> dict[str, Any] | None:
    """How to run the chosen variant again: its settings in the last fold (the most recent fit)."""
    if best is None:
        return None
    v = next(v for v in folds[-1].variants if v.name == best["strategy"])
    return {"strategy": v.name, "kind": v.kind, "overrides": v.overrides, "fold": folds[-1].fold,
            "test": folds[-1].ranges.test.to_dict(),
            "trained_until": v.trained_until.isoformat() if v.trained_until is not None else None}


def _final_test(spec: WalkSpec, winner: dict[str, Any] | None, *, candles: pd.DataFrame,
                iv: pd.DataFrame | None, fine: pd.DataFrame | None, store: Store, walk_id: str, ledger: list[dict[str, Any]],
                progress: WalkProgress | None, total: int) -> dict[str, Any]:
    """The chosen variant and HODL on the finalTest range, after selection is over (reported apart)."""
    assert spec.final_test is not None
    f = spec.final_test
    out: dict[str, Any] = {"range": str(f), "strategy": None, "rows": []}
    if winner is None:
        out["note"] = "no variant was chosen, so the final holdout was not touched"
        return out
    out["strategy"] = winner["strategy"]
    for name, overrides in ((winner["strategy"], winner["overrides"]), ("hodl", {"policy": "hodl"})):
        cfg = spec.base_config(f, **overrides, label=f"{spec.name}: {name} on the final holdout")
        res = run_backtest(cfg, candles=candles, iv=iv, fine=fine, store=store, batch_id=walk_id,
                           record_candidates=False)
        m = res.metrics
        n = int(m.get("n_bars") or 0) - 1
        psr = probabilistic_sharpe_ratio(m["sharpe_per_bar"], 0.0, n, m["skew"], m["kurtosis"]) \
            if m.get("sharpe_per_bar") is not None and math.isfinite(m["sharpe_per_bar"]) else float("nan")
        out["rows"].append({"strategy": name, **{k: plain(m.get(k)) for k in METRICS}, "psr": plain(psr),
                            "run_id": res.run_id})
        ledger.append(trial_row(walk_id=walk_id, trial_id=f"final:{name}", stage="final", fold=0, frame=None,
                                name=name, kind="final", underlying=spec.underlying, timeframe=spec.timeframe,
                                window=f, params=overrides, metric=spec.metric, res=res, run_id=res.run_id))
        if progress:
            progress(total - (1 if name == winner["strategy"] else 0), total, f"final holdout: {name}")
    s, h = out["rows"][0].get("sharpe"), out["rows"][1].get("sharpe")
    out["beats_hodl"] = bool(s is not None and h is not None and s > h)
    return out


def train(spec: WalkSpec | dict[str, Any], progress: WalkProgress | None = None, *, store: Store,
          model_dir: str | Path | None = None, defaults: dict[str, Any] | None = None,
          compute: ComputeSpec | None = None) -> list[dict[str, Any]]:
    """Fit only the LightGBM variants of a walk spec (one per training range, plus the pooled one, per fold).

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
    total = optimizer_steps(spec, rules=False)
    keys = ("auc", "brier", "log_loss", "base_rate", "rmse", "rank_ic", "n_train", "n_valid", "n_test")
    out: list[dict[str, Any]] = []
    done = 0
    with Executor(compute or ComputeSpec("serial")) as ex:
        data = ex.scatter(MarketInputs(candles, iv, None, load_events(cfg, store), load_basis_history(cfg, store)))
        opts = []
        for k, rs in enumerate(spec.folds, start=1):
            opts.append((k, optimize(spec, sink=StoreSink(store, model_dir), batch_id=new_id("train-"), progress=progress, total=total, rules=False,
                                     fold=k, ranges=rs, done=done, ex=ex, data=data)))
            done += optimizer_steps(spec, rules=False, ranges=rs)
    for k, opt in opts:
        out += [{"name": v.name, "fold": k, "model_id": v.model_id, "frame": v.frame,
                 "trained_until": v.trained_until.isoformat() if v.trained_until is not None else None,
                 "diagnostics": {key: plain(v.diagnostics.get(key)) for key in keys}} for v in opt.variants]
    return out


def _rank(df: pd.DataFrame, metric: str, stats: SelectionStats) -> pd.DataFrame:
    """Order by the metric (NaN last, ties by name) and add PSR (vs 0) and DSR (vs the best Sharpe expected
    from luck over the ledger's N trials with their variance V; `dsr_effective` uses the effective N)."""
    if df.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    psr, dsr, dsr_eff = [], [], []
    for row in df.itertuples():
        n = int(row.n_bars) - 1 if pd.notna(row.n_bars) else 0
        ok = pd.notna(row.sharpe_per_bar)
        psr.append(probabilistic_sharpe_ratio(row.sharpe_per_bar, 0.0, n, row.skew, row.kurtosis)
                   if ok else float("nan"))
        dsr.append(deflated_sharpe_ratio(row.sharpe_per_bar, stats.sr_variance, stats.n_trials, n, row.skew,
                                         row.kurtosis) if ok else float("nan"))
        dsr_eff.append(deflated_sharpe_ratio(row.sharpe_per_bar, stats.sr_variance, stats.n_effective, n,
                                             row.skew, row.kurtosis) if ok else float("nan"))
    df = df.assign(psr=psr, dsr=dsr, dsr_effective=dsr_eff)
    order = sorted(range(len(df)), key=lambda k: rank_key(
        None if pd.isna(df["metric_value"].iloc[k]) else float(df["metric_value"].iloc[k]), metric,
        str(df["strategy"].iloc[k])))
    df = df.iloc[order].reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    extra = [c for c in df.columns if c not in LEADERBOARD_COLUMNS]
    return df[list(LEADERBOARD_COLUMNS) + extra]


def write_report(result: WalkResult, folder: Path) -> Path:
    """`result.json` (everything, the trial ledger included) and `report.md` (warnings, verdict, tables)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(dumps(result.to_dict(), indent=2, sort_keys=False), encoding="utf-8")
    info = result.info
    sel = info.get("selection") or {}
    v = info.get("verdict") or {}
    pbo_d = sel.get("pbo") or {}
    lines = [f"# Walk {result.walk_id}: {result.name}", ""]
    if info.get("warnings"):
        lines += ["> **Warnings**", *[f"> - {w}" for w in info["warnings"]], ""]
    lines += [f"**Verdict:** {v.get('sentence', 'n/a')}", "",
              f"Ranked by **{result.metric}** on {sel.get('basis', 'the test range')}. Chosen variant: "
              f"**{result.best_strategy}** ({_fmt(result.best_metric)}).", "",
              "| trials N | effective N | V (per-bar Sharpe variance) | walks on this test range | DSR of the chosen "
              "| PBO (test) |", "|---|---|---|---|---|---|",
              f"| {sel.get('n_trials')} | {sel.get('n_effective')} | {_fmt(sel.get('sr_variance'), nd=6)} | "
              f"{sel.get('n_walks')} | {_fmt(sel.get('dsr_best'))} | {_fmt(pbo_d.get('pbo'))} |", "",
              "| rank | strategy | kind | " + result.metric + " | total return | max drawdown | PSR | DSR "
              "| DSR (eff. N) | trained until | also chosen as |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result.strategies:
        lines.append(f"| {r['rank']} | {r['strategy']} | {r['kind']} | {_fmt(r['metric_value'])} | "
                     f"{_fmt(r['total_return'], pct=True)} | "
                     f"{_fmt(r['max_drawdown'], pct=True)} | {_fmt(r['psr'])} | {_fmt(r['dsr'])} | "
                     f"{_fmt(r.get('dsr_effective'))} | {(r['trained_until'] or '-')[:16]} | {r.get('merged') or ''} |")
    lines += ["", "PSR: probability the Sharpe beats 0. DSR: the same against the best Sharpe expected from luck "
              f"alone over the N = {sel.get('n_trials')} trials in the ledger (every tuner trial on every training "
              "range, every variant and baseline on every test range, and earlier walks on the same test range), "
              "with V their per-bar Sharpe variance; the effective N counts clusters of trials whose returns in "
              "excess of HODL correlate (>= 0.5). PBO: probability of backtest overfitting by CSCV. Trained until: "
              "the latest label end any training row used; it must fall before the test start.", ""]
    if sel.get("pbo_tuner"):
        lines += ["Tuner PBO per training frame: " + ", ".join(
            f"{p['frame']} {_fmt(p['pbo'])} ({p['n_trials']} trials)" for p in sel["pbo_tuner"]), ""]
    if info.get("folds"):
        lines += ["## Folds (parameter stability)", "", "| fold | train | test | variant | params | "
                  + result.metric + " |", "|---|---|---|---|---|---|"]
        for f in info["folds"]:
            for var in f["variants"]:
                if var["kind"] == "rule":
                    lines.append(f"| {f['fold']} | {'; '.join(f['train'])} | {f['test']} | {var['strategy']} | "
                                 f"`{json.dumps(var['params'], sort_keys=True)}` | {_fmt(var['metric_value'])} |")
        lines.append("")
    final = info.get("final_test")
    if final:
        lines += [f"## Final holdout {final['range']} (touched by nothing during selection)", ""]
        if final.get("rows"):
            lines += ["| strategy | sharpe | total return | max drawdown | PSR |", "|---|---|---|---|---|"]
            lines += [f"| {r['strategy']} | {_fmt(r.get('sharpe'))} | {_fmt(r.get('total_return'), pct=True)} | "
                      f"{_fmt(r.get('max_drawdown'), pct=True)} | {_fmt(r.get('psr'))} |" for r in final["rows"]]
        else:
            lines.append(final.get("note", ""))
        lines.append("")
    lines += ["Training frames:", *[f"- `{k}`: {val}" for k, val in info["frames"].items()], "",
              "Reproduce: save the spec below as `spec.json` and run `covcall walk --spec spec.json`.", "", "```json",
              json.dumps(result.spec, indent=2), "```", ""]
    (folder / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def _fmt(v: Any, pct: bool = False, nd: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.2%}" if pct else f"{v:.{nd}f}"


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
    info["trials"] = store.read_trials(walk_id)
    return WalkResult(d["walk_id"], d["name"], d["metric"], d["best_strategy"], d["best_metric"], board,
                      d["spec"], d["n_trials"], d.get("report_dir"), info)
