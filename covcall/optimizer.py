"""The optimizer: per training range, one tuned rule variant and one LightGBM variant, plus a pooled model."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from covcall.backtest import BacktestConfig, run_backtest
from covcall.errors import CovcallError, SpecError
from covcall.policies import CollectPolicy
from covcall.ranges import Range
from covcall.walkspec import WalkSpec

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


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Grid -> list of BacktestConfig overrides; `delta_range` and `dte_range` are [min, max] pairs.

    >>> expand_grid({"delta_range": [[0.1, 0.2]], "threshold": [0.1, 0.3]})
    [{'delta_min': 0.1, 'delta_max': 0.2, 'threshold': 0.1}, {'delta_min': 0.1, 'delta_max': 0.2, 'threshold': 0.3}]
    """
    keys = list(grid)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        point: dict[str, Any] = {}
        for k, v in zip(keys, combo, strict=True):
            if k == "delta_range":
                point["delta_min"], point["delta_max"] = float(v[0]), float(v[1])
            elif k == "dte_range":
                point["dte_min_days"], point["dte_max_days"] = float(v[0]), float(v[1])
            else:
                point[k] = v
        points.append(point)
    return points or [{}]


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
class Optimized:
    variants: list[Variant]
    n_trials: int
    trials: list[dict[str, Any]]
    candidates: dict[int, pd.DataFrame]


def optimize(spec: WalkSpec, *, candles: pd.DataFrame, iv: pd.DataFrame | None, store: Any, model_dir: Path,
             batch_id: str, progress: WalkProgress | None = None, total: int | None = None,
             rules: bool = True) -> Optimized:
    """Fit every variant on its training range only; progress counts steps processed / total.

    With rules=False only the models are fitted (`covcall train`).
    """
    from covcall.models import (  # LightGBM takes seconds to import: only model walks pay
        save_model,
        train_model,
    )

    points = expand_grid(spec.grid) if rules else []
    n_ranges = len(spec.ranges.train)
    total = total or optimizer_steps(spec)
    done = 0
    prefix = spec.label_prefix

    def tick(msg: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, msg)

    variants: list[Variant] = []
    trials: list[dict[str, Any]] = []
    frames: dict[int, pd.DataFrame] = {}
    for i, r in enumerate(spec.ranges.train, start=1):
        frame = f"{prefix}_train_frame-{i}"
        best: tuple[tuple[int, float, str], dict[str, Any], float, pd.Timestamp] | None = None
        for j, point in enumerate(points):
            cfg = spec.base_config(r, **point)
            res = run_backtest(cfg, candles=candles, iv=iv, record_candidates=False)
            value = res.metrics.get(spec.metric)
            trials.append({"frame": frame, "point": point, "metric": value,
                           "sharpe_per_bar": res.metrics.get("sharpe_per_bar")})
            key = rank_key(value, spec.metric, f"{j:04d}")
            last = res.trades["exit_time"].max() if len(res.trades) else res.equity.index[-1]
            if best is None or key < best[0]:
                best = (key, point, value, last)
            tick(f"{frame}: rule grid {j + 1}/{len(points)}")
        if best is not None:
            variants.append(Variant(f"{prefix}_strategy-{i}", "rule", dict(best[1]), frame,
                                    trained_until=min(pd.Timestamp(best[3]), label_end_limit(r)),
                                    train_metric=best[2]))
        if spec.model.enabled:
            res = run_backtest(collect_config(spec, r), candles=candles, iv=iv, policy=collect_policy(spec),
                               store=store, batch_id=batch_id)
            frames[i] = res.candidates
            tick(f"{frame}: training data ({len(res.candidates)} candidates)")
            model = _train(spec, res.candidates, [r], f"{prefix}_model-{i}", train_model)
            model_id = save_model(store, model, model_dir)
            variants.append(Variant(f"{prefix}_model-{i}", "model", _model_overrides(spec, model_id), frame,
                                    trained_until=pd.Timestamp(model.trained_until), model_id=model_id,
                                    diagnostics=model.diagnostics))
            tick(f"{frame}: model trained")
    if spec.model.enabled and spec.model.pooled and n_ranges > 1:
        pooled = pd.concat(frames.values(), ignore_index=True)
        model = _train(spec, pooled, list(spec.ranges.train), f"{prefix}_model-pooled", train_model)
        model_id = save_model(store, model, model_dir)
        variants.append(Variant(f"{prefix}_model-pooled", "pooled_model", _model_overrides(spec, model_id),
                                "all train frames", trained_until=pd.Timestamp(model.trained_until),
                                model_id=model_id, diagnostics=model.diagnostics))
        tick("pooled model trained")
    n_trials = len(trials) + sum(v.kind != "rule" for v in variants)
    return Optimized(variants, n_trials, trials, frames)


def _train(spec: WalkSpec, cands: pd.DataFrame, ranges: list[Range], name: str, train_model: Any) -> Any:
    try:
        return train_model(cands, ranges, name=name, target=spec.model.target, params=spec.model.params or None,
                           seed=spec.seed)
    except CovcallError as err:
        raise SpecError(f"{name}: {err}") from None


def _model_overrides(spec: WalkSpec, model_id: str) -> dict[str, Any]:
    cp = collect_policy(spec)
    return {"policy": "model", "model_id": model_id, "model_threshold": spec.model.threshold,
            "delta_min": cp.delta_min, "delta_max": cp.delta_max, "dte_min_days": cp.dte_min_days,
            "dte_max_days": cp.dte_max_days}


def optimizer_steps(spec: WalkSpec, rules: bool = True) -> int:
    """Steps the optimizer reports: grid points + data + model per range, and the pooled model."""
    per_range = (len(expand_grid(spec.grid)) if rules else 0) + (2 if spec.model.enabled else 0)
    pooled = 1 if spec.model.enabled and spec.model.pooled and len(spec.ranges.train) > 1 else 0
    return len(spec.ranges.train) * per_range + pooled


def baseline_variants(spec: WalkSpec) -> list[Variant]:
    table = {
        "hodl": {"policy": "hodl"},
        "vault_weekly_10d": {"policy": "fixed_delta", "target_delta": 0.10, "target_dte_days": 7.0},
        "bxmd_monthly_30d": {"policy": "fixed_delta", "target_delta": 0.30, "target_dte_days": 30.0},
    }
    return [Variant(b, "baseline", table[b]) for b in spec.baselines]
