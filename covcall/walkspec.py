"""The walk specification: range set, data, strategy settings, metric and seed in one reproducible file."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from covcall.backtest import BacktestConfig, config_error_line
from covcall.errors import SpecError, did_you_mean
from covcall.names import check_name
from covcall.ranges import Range, RangeSet, _parse_range, rolling
from covcall.timeframes import BAR_LENGTH
from covcall.tuner import TunerSettings, check_grid, max_dte, n_tuner_trials

METRICS = ("sharpe", "sortino", "calmar", "cagr", "total_return", "max_drawdown", "win_rate", "excess_return")
BASELINES = ("hodl", "vault_weekly_10d", "bxmd_monthly_30d")
# Strategy settings the optimizer may tune; everything else in `strategy` is fixed for every variant.
DEFAULT_GRID: dict[str, list[Any]] = {
    "delta_range": [[0.10, 0.25], [0.20, 0.35]],
    "dte_range": [[2, 10], [7, 30]],
    "threshold": [0.10, 0.30],
}
_RANGE_KEYS = {"rangeTrain", "rangeTest", "train", "test", "gap_days", "strict"}
_FOLD_KEYS = {"folds", "rolling", "finalTest"}
_ROLLING_KEYS = ("start", "train_days", "test_days", "step_days", "gap_days", "count")


class ModelSettings(BaseModel):
    """How model variants are trained and when they sell."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    enabled: bool = True
    target: str = "pnl_vs_hodl_pct"
    threshold: float = Field(0.0, description="Skip when the best predicted target is below this.")
    params: dict[str, Any] = Field(default_factory=dict, description="LightGBM parameters.")
    pooled: bool = True
    purge_days: float = Field(0.0, ge=0, le=365, description=(
        "Extra days between a block's last label end and the next block (labels are purged by end anyway)."))
    embargo_days: float = Field(3.0, ge=0, le=365, description=(
        "Days dropped at the start of the validation and test tails (rolling features still see the block "
        "before)."))
    valid_fraction: float = Field(0.2, gt=0, lt=0.9, description="Share of decision times for early stopping.")
    test_fraction: float = Field(0.2, ge=0, lt=0.9, description=(
        "Share of decision times held out for diagnostics only (0: diagnostics on the early-stopping tail)."))


class WalkSpec(BaseModel):
    """Everything a walk needs; accepts the seed's names (rangeTrain / rangeTest / startDate / endDate).

    >>> s = WalkSpec.parse({"name": "demo", "rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-06-30"}],
    ...                     "rangeTest": {"startDate": "2023-01-01", "endDate": "2023-06-30"}, "gap_days": 30})
    >>> (s.ranges.train[0].end, s.metric, s.label_prefix)
    (datetime.date(2021, 6, 30), 'sharpe', 'demo')
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)
    name: str = "walk"
    underlying: str = "BTC"
    timeframe: Literal["1h", "4h", "1d"] = "1d"
    source: Literal["synthetic", "store", "ccxt"] = "synthetic"
    iv_source: Literal["auto", "realized", "dvol"] = "auto"
    metric: str = "sharpe"
    seed: int = 7
    prefix: str | None = None
    strategy: dict[str, Any] = Field(default_factory=dict, description="BacktestConfig fields for every variant.")
    grid: dict[str, list[Any]] = Field(default_factory=lambda: dict(DEFAULT_GRID))
    model: ModelSettings = Field(default_factory=ModelSettings)
    baselines: list[str] = Field(default_factory=lambda: list(BASELINES))
    tuner: TunerSettings = Field(default_factory=TunerSettings)
    pbo_splits: int | None = Field(None, description="CSCV blocks for PBO (even); default: 16 or what fits.")
    ranges: RangeSet
    folds: list[RangeSet] = Field(default_factory=list, description="Walk-forward folds (ranges is the first).")
    final_test: Range | None = Field(None, description="finalTest: evaluated only for the winner and HODL.")

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return check_grid(v)

    @field_validator("pbo_splits")
    @classmethod
    def _splits(cls, v: int | None) -> int | None:
        if v is not None and (v < 2 or v % 2):
            raise ValueError(f"pbo_splits must be even and at least 2 (CSCV splits into halves); got {v}")
        if v is not None and v > 20:
            raise ValueError(f"pbo_splits {v} is more than 20: C({v}, {v // 2}) combinations would not finish")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "walk name")

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"must be one of {', '.join(METRICS)}; got {v!r}{did_you_mean(v, METRICS)}")
        return v

    @field_validator("baselines")
    @classmethod
    def _baselines(cls, v: list[str]) -> list[str]:
        for b in v:
            if b not in BASELINES:
                raise ValueError(f"unknown baseline {b!r}{did_you_mean(b, BASELINES)}; choose from "
                                 f"{', '.join(BASELINES)}")
        return v

    @classmethod
    def parse(cls, data: dict[str, Any], defaults: dict[str, Any] | None = None) -> WalkSpec:
        """Validate a spec dict (JSON/TOML file contents); errors name the field and the fix.

        `defaults` (covcall.config.run_defaults) fill what the spec leaves out: `source` and `seed` at the top,
        fees, rate and exchange in `strategy`. They are copied into the parsed spec, so the stored spec alone
        reproduces the walk whatever the settings are later.
        """
        if not isinstance(data, dict):
            raise SpecError("a walk spec must be an object")
        if defaults:
            strategy = data.get("strategy") or {}
            if not isinstance(strategy, dict):
                raise SpecError("walk spec: strategy must be an object of backtest settings")
            top = {k: defaults[k] for k in ("source", "seed") if k in defaults and k not in data}
            inner = {k: v for k, v in defaults.items() if k not in ("source", "seed")}
            data = {**data, **top, "strategy": {**inner, **strategy}}
        rest = {k: v for k, v in data.items() if k not in _RANGE_KEYS | _FOLD_KEYS}
        folds = _parse_folds(data)
        final = _parse_range(data["finalTest"], "finalTest") if data.get("finalTest") is not None else None
        try:
            spec = cls(**rest, ranges=folds[0], folds=folds, final_test=final)
        except ValidationError as err:
            raise SpecError("walk spec: " + config_error_line(err, cls, nested="strategy")) from None
        spec.check_layout()
        spec.base_config(spec.ranges.test)  # strategy settings are checked before anything runs
        if spec.model.enabled and spec.model.params:
            from covcall.models import (
                check_params,  # LightGBM takes seconds to import: only when params are set
            )

            check_params(spec.model.params)
        return spec

    @property
    def label_prefix(self) -> str:
        return self.prefix or self.name

    @property
    def max_label_days(self) -> float:
        """Longest label horizon any variant can create: the largest DTE it may sell."""
        dte = [float(self.strategy.get("dte_max_days", 30.0)), max_dte(self.tuner.method, self.grid, self.tuner)]
        return max(dte)

    @property
    def n_tuner_trials(self) -> int:
        """Rule configurations tried on each training range."""
        return n_tuner_trials(self.tuner.method, self.grid, self.tuner.budget)

    def check_layout(self) -> None:
        """Folds may not share test days; a finalTest comes after everything selection touched.

        (Each fold's own training-vs-test checks run in `walker.check_ranges`.)
        """
        tests = sorted((f.test for f in self.folds), key=lambda r: r.start)
        for a, b in zip(tests, tests[1:], strict=False):
            if a.overlaps(b):
                raise SpecError(f"fold test ranges {a} and {b} overlap by {a.overlaps(b)} day(s): each day may be "
                                "tested once; move the later fold's test start after "
                                f"{a.end.isoformat()}")
        if self.final_test is not None:
            f = self.final_test
            last_train = max(r.end for fold in self.folds for r in fold.train)
            last_test = max(r.end for r in tests)
            if f.start <= last_test:
                raise SpecError(f"finalTest {f} must start after the last test range ends ({last_test}): it is "
                                "the holdout nothing in selection has touched")
            gap = (f.start - last_train).days - 1
            if gap < self.max_label_days:
                raise SpecError(f"finalTest {f} starts {gap} day(s) after the last training range ends "
                                f"({last_train}); labels run up to {self.max_label_days:g} days, so start it "
                                f"after {(last_train + timedelta(days=int(self.max_label_days) + 1)).isoformat()}")
        # PBO needs 2 rows per block on the shortest series it is computed on
        if self.pbo_splits is not None:
            bars = min(self.range_bars(r) for fold in self.folds for r in [*fold.train, fold.test])
            if bars < 2 * self.pbo_splits:
                raise SpecError(f"pbo_splits {self.pbo_splits} needs at least {2 * self.pbo_splits} bars per range; "
                                f"the shortest range has {bars} {self.timeframe} bars: use pbo_splits "
                                f"{max(2, bars // 4 * 2)} or longer ranges")

    def work(self) -> tuple[int, float]:
        """(units, seconds): tuner trials and test runs of every fold, and their estimated seconds on one core
        (covcall.batch.run_seconds; to choose where the walk runs, covcall.compute.plan)."""
        from covcall.batch import run_seconds

        units, seconds = 0, 0.0
        n_test = len(self.baselines) + 2
        for f in self.folds:
            units += self.n_tuner_trials * len(f.train) + n_test * len(f.train)
            seconds += sum(self.n_tuner_trials * run_seconds(self.base_config(r)) for r in f.train)
            seconds += n_test * len(f.train) * run_seconds(self.base_config(f.test))
        return units, seconds

    def range_bars(self, r: Range) -> int:
        return int(r.days * pd.Timedelta(days=1) / BAR_LENGTH[self.timeframe])

    def base_config(self, window: Range, **overrides: Any) -> BacktestConfig:
        data = {"underlying": self.underlying, "timeframe": self.timeframe, "source": self.source,
                "iv_source": self.iv_source, "seed": self.seed, **self.strategy, **overrides,
                "start": window.start, "end": window.end}
        return BacktestConfig.parse(data)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON; a walk-forward spec lists its folds explicitly (a rolling spec is expanded)."""
        d = self.model_dump(mode="json", exclude={"ranges", "folds", "final_test"})
        if len(self.folds) > 1:
            d["folds"] = [_fold_dict(f) for f in self.folds]
        else:
            d.update(_fold_dict(self.ranges))
        d.update({"gap_days": self.ranges.gap_days, "strict": self.ranges.strict})
        if self.final_test is not None:
            d["finalTest"] = _range_dict(self.final_test)
        return d

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def data_window(self, final: bool = False) -> tuple[date, date]:
        """First and last day any fold needs (the finalTest only when `final`)."""
        ranges = [r for f in self.folds for r in [*f.train, f.test]]
        if final and self.final_test is not None:
            ranges.append(self.final_test)
        return min(r.start for r in ranges), max(r.end for r in ranges)


def _range_dict(r: Range) -> dict[str, str]:
    return {"startDate": r.start.isoformat(), "endDate": r.end.isoformat(), "note": r.note}


def _fold_dict(rs: RangeSet) -> dict[str, Any]:
    return {"rangeTrain": [_range_dict(r) for r in rs.train], "rangeTest": _range_dict(rs.test)}


def _parse_folds(data: dict[str, Any]) -> list[RangeSet]:
    """One RangeSet per fold from `rangeTrain`/`rangeTest`, `folds` or `rolling` (exactly one of them)."""
    name = data.get("name", "walk")
    forms = [k for k in ("folds", "rolling") if data.get(k) is not None]
    flat = [k for k in ("rangeTrain", "rangeTest", "train", "test") if k in data]
    if len(forms) > 1 or (forms and flat):
        raise SpecError(f"walk spec: give the ranges one way: {' or '.join(forms + flat[:1])}, not both")
    shared = {k: data[k] for k in ("gap_days", "strict") if k in data}
    if not forms:
        return [RangeSet.from_dict({k: v for k, v in data.items() if k in _RANGE_KEYS}, name=name)]
    if forms == ["rolling"]:
        r = data["rolling"]
        if not isinstance(r, dict):
            raise SpecError("walk spec: rolling must be an object with " + ", ".join(_ROLLING_KEYS))
        unknown = [k for k in r if k not in _ROLLING_KEYS]
        if unknown:
            raise SpecError(f"walk spec: rolling has unknown key {unknown[0]!r}"
                            f"{did_you_mean(unknown[0], _ROLLING_KEYS)}; keys: {', '.join(_ROLLING_KEYS)}")
        missing = [k for k in ("start", "train_days", "test_days") if k not in r]
        if missing:
            raise SpecError(f"walk spec: rolling needs {', '.join(missing)}")
        gap = r.get("gap_days", shared.get("gap_days", 30))
        out = rolling(r["start"], r["train_days"], r["test_days"], r.get("step_days", r["test_days"]), gap,
                      r.get("count", 4))
        for rs in out:
            rs.strict = bool(shared.get("strict", rs.strict))
        return out
    folds = data["folds"]
    if not isinstance(folds, list) or not folds:
        raise SpecError("walk spec: folds must be a non-empty list of {rangeTrain: [...], rangeTest: {...}}")
    out = []
    for i, f in enumerate(folds, start=1):
        if not isinstance(f, dict):
            raise SpecError(f"walk spec: folds[{i - 1}] must be an object with rangeTrain and rangeTest")
        bad = [k for k in f if k not in _RANGE_KEYS]
        if bad:
            raise SpecError(f"walk spec: folds[{i - 1}] has unknown key {bad[0]!r}{did_you_mean(bad[0], _RANGE_KEYS)}")
        out.append(RangeSet.from_dict({**shared, **f}, name=f"{name}-fold{i}"))
    return out
