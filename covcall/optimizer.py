"""The optimizer: per training range, one tuned rule variant and one LightGBM variant, plus a pooled model."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from covcall.backtest import BacktestConfig, backtest_unit
from covcall.errors import CovcallError, SpecError
from covcall.policies import CollectPolicy
from covcall.ranges import Range, RangeSet
from covcall.tuner import Trial, expand_grid, tune
from covcall.walkspec import WalkSpec

__all__ = ["Optimized", "Variant", "WalkProgress", "baseline_variants", "expand_grid", "optimize",
           "optimizer_steps", "rank_key"]

WalkProgress = Callable[[int, int, str], None]
HIGHER_IS_BETTER = {"sharpe": True, "sortino": True, "calmar": True, "cagr": True, "total_return": True,
                    "max_drawdown": True, "win_rate": True, "excess_return": True}


@dataclass
class Variant:
    """One strategy the walker will test: how to configure it and what it was fitted on."""

    name: str
    kind: str  # rule | model | pooled_model | baseline
    overrides: dict[str, Any]  # BacktestConfig fields on top of the spec's strategy
    frame: str | None = None
    trained_until: pd.Timestamp | None = None
    model_id: str | None = None
    train_metric: float | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    model: Any = None  # the TrainedModel itself, so test runs on workers need no store


def rank_key(value: float | None, metric: str, name: str) -> tuple[int, float, str]:
    """Sort key: computable metrics first (best first), then NaN, ties broken by name."""
    if value is None or not math.isfinite(value):
        return (1, 0.0, name)
    return (0, -value if HIGHER_IS_BETTER[metric] else value, name)


def label_end_limit(r: Range) -> pd.Timestamp:
    """Labels of a training range end at the close of its last day at the latest."""
    return pd.Timestamp(r.end, tz="UTC") + pd.Timedelta(days=1)


def collect_config(spec: WalkSpec, r: Range) -> BacktestConfig:
    return spec.base_config(r, label=f"{spec.name}: training data {r}", policy="rule")


def collect_policy(spec: WalkSpec) -> CollectPolicy:
    return CollectPolicy(0.05, 0.50, float(spec.strategy.get("dte_min_days", 2.0)), spec.max_label_days)


@dataclass
class TunedTrial:
    """A tuner trial with the training frame it ran on."""

    frame: str
    range: Range
    trial: Trial


@dataclass
class Optimized:
    variants: list[Variant]
    trials: list[TunedTrial]
    candidates: dict[int, pd.DataFrame]


def frame_name(spec: WalkSpec, fold: int, i: int | str) -> str:
    """`{prefix}_train_frame-i`, with the fold in it when the walk has several."""
    mid = f"_fold-{fold}" if len(spec.folds) > 1 else ""
    return f"{spec.label_prefix}{mid}_train_frame-{i}"


def optimize(spec: WalkSpec, *, data: Any, sink: Any, batch_id: str, progress: WalkProgress | None = None, total: int | None = None,
             rules: bool = True, fold: int = 1, ranges: RangeSet | None = None, done: int = 0,
             ex: Any = None) -> Optimized:
    """Fit every variant of one fold on that fold's training ranges only; progress counts steps / total.

    With rules=False only the models are fitted (`covcall train`). Variant names are family names
    (`{prefix}_strategy-i`, `{prefix}_model-i`, `{prefix}_model-pooled`), the same in every fold.
    Tuner trials and training-data collection run as units on `ex` (covcall.compute; serial when None) with
    `data` (MarketInputs, or a scattered reference to it); models are trained here; runs and models go to
    `sink` (covcall.sink: the store, or a buffer a worker hands back).
    """
    from covcall.models import train_model  # LightGBM takes seconds to import: only model walks pay

    rs = ranges or spec.ranges
    n_ranges = len(rs.train)
    total = total or optimizer_steps(spec)
    prefix = spec.label_prefix
    count = done

    def tick(msg: str) -> None:
        nonlocal count
        count += 1
        if progress:
            progress(count, total, msg)

    variants: list[Variant] = []
    tuned: list[TunedTrial] = []
    frames: dict[int, pd.DataFrame] = {}
    for i, r in enumerate(rs.train, start=1):
        frame = frame_name(spec, fold, i)
        if rules:
            def make(point: dict[str, Any], r: Range = r) -> BacktestConfig:
                return spec.base_config(r, **point)

            def on_trial(t: Trial, n: int, frame: str = frame, r: Range = r) -> None:
                tuned.append(TunedTrial(frame, r, t))
                tick(f"{frame}: rule trial {t.index + 1}/{n}")

            trials = tune(make, method=spec.tuner.method, grid=spec.grid, settings=spec.tuner, metric=spec.metric,
                          seed=spec.seed + 1000 * fold + i, data=data, ex=ex,
                          on_trial=on_trial)
            best = min(trials, key=lambda t: rank_key(t.value, spec.metric, f"{t.index:05d}"))
            tr = best.result.trades
            last = tr["exit_time"].max() if len(tr) else best.result.equity.index[-1]
            variants.append(Variant(f"{prefix}_strategy-{i}", "rule", dict(best.point), frame,
                                    trained_until=min(pd.Timestamp(last), label_end_limit(r)),
                                    train_metric=best.value))
    if spec.model.enabled:
        # the training data of every range in one go (units on `ex`), then the models here
        from covcall.compute import ComputeSpec, Executor, UnitFailure

        ex = ex or Executor(ComputeSpec("serial"))
        cfgs = [collect_config(spec, r) for r in rs.train]
        collected: dict[int, Any] = {}
        for k, res, _ in ex.map(backtest_unit, [(c, data, collect_policy(spec)) for c in cfgs]):
            if isinstance(res, UnitFailure):
                raise CovcallError(f"collecting training data on {rs.train[k]} failed: {res.error}")
            sink.run(res, batch_id)
            collected[k] = res
        for k, r in enumerate(rs.train):
            i, frame, res = k + 1, frame_name(spec, fold, k + 1), collected[k]
            frames[i] = res.candidates
            tick(f"{frame}: training data ({len(res.candidates)} candidates)")
            model = _train(spec, res.candidates, [r], _model_name(spec, fold, str(i)), train_model)
            model_id = sink.model(model)
            variants.append(Variant(f"{prefix}_model-{i}", "model", _model_overrides(spec, model_id), frame,
                                    trained_until=pd.Timestamp(model.trained_until), model_id=model_id,
                                    diagnostics=model.diagnostics, model=model))
            tick(f"{frame}: model trained")
    if spec.model.enabled and spec.model.pooled and n_ranges > 1:
        pooled = pd.concat(frames.values(), ignore_index=True)
        model = _train(spec, pooled, list(rs.train), _model_name(spec, fold, "pooled"), train_model)
        model_id = sink.model(model)
        variants.append(Variant(f"{prefix}_model-pooled", "pooled_model", _model_overrides(spec, model_id),
                                frame_name(spec, fold, "all"), trained_until=pd.Timestamp(model.trained_until),
                                model_id=model_id, diagnostics=model.diagnostics, model=model))
        tick("pooled model trained")
    return Optimized(variants, tuned, frames)


def _model_name(spec: WalkSpec, fold: int, i: str) -> str:
    mid = f"_fold-{fold}" if len(spec.folds) > 1 else ""
    return f"{spec.label_prefix}{mid}_model-{i}"


def _train(spec: WalkSpec, cands: pd.DataFrame, ranges: list[Range], name: str, train_model: Any) -> Any:
    try:
        m = spec.model
        return train_model(cands, ranges, name=name, target=m.target, params=m.params or None, seed=spec.seed,
                           valid_fraction=m.valid_fraction, purge_days=m.purge_days, embargo_days=m.embargo_days,
                           test_fraction=m.test_fraction)
    except CovcallError as err:
        raise SpecError(f"{name}: {err}") from None


def _model_overrides(spec: WalkSpec, model_id: str) -> dict[str, Any]:
    cp = collect_policy(spec)
    return {"policy": "model", "model_id": model_id, "model_threshold": spec.model.threshold,
            "delta_min": cp.delta_min, "delta_max": cp.delta_max, "dte_min_days": cp.dte_min_days,
            "dte_max_days": cp.dte_max_days}


def optimizer_steps(spec: WalkSpec, rules: bool = True, ranges: RangeSet | None = None) -> int:
    """Steps the optimizer reports for one fold (`ranges`) or all: tuner trials + data + model per range,
    and the pooled model."""
    per_range = (spec.n_tuner_trials if rules else 0) + (2 if spec.model.enabled else 0)
    total = 0
    for rs in [ranges] if ranges is not None else spec.folds:
        pooled = 1 if spec.model.enabled and spec.model.pooled and len(rs.train) > 1 else 0
        total += len(rs.train) * per_range + pooled
    return total


def baseline_variants(spec: WalkSpec) -> list[Variant]:
    table = {
        "hodl": {"policy": "hodl"},
        "vault_weekly_10d": {"policy": "fixed_delta", "target_delta": 0.10, "target_dte_days": 7.0},
        "bxmd_monthly_30d": {"policy": "fixed_delta", "target_delta": 0.30, "target_dte_days": 30.0},
    }
    return [Variant(b, "baseline", table[b]) for b in spec.baselines]
