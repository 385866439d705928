"""The walk specification: range set, data, strategy settings, metric and seed in one reproducible file."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from covcall.backtest import BacktestConfig, config_error_line
from covcall.errors import SpecError, did_you_mean
from covcall.names import check_name
from covcall.ranges import Range, RangeSet

METRICS = ("sharpe", "sortino", "calmar", "cagr", "total_return", "max_drawdown", "win_rate", "excess_return")
BASELINES = ("hodl", "vault_weekly_10d", "bxmd_monthly_30d")
# Strategy settings the optimizer may tune; everything else in `strategy` is fixed for every variant.
DEFAULT_GRID: dict[str, list[Any]] = {
    "delta_range": [[0.10, 0.25], [0.20, 0.35]],
    "dte_range": [[2, 10], [7, 30]],
    "threshold": [0.10, 0.30],
}
_RANGE_KEYS = {"rangeTrain", "rangeTest", "train", "test", "gap_days", "strict"}


class ModelSettings(BaseModel):
    """How model variants are trained and when they sell."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    enabled: bool = True
    target: str = "pnl_vs_hodl_pct"
    threshold: float = Field(0.0, description="Skip when the best predicted target is below this.")
    params: dict[str, Any] = Field(default_factory=dict, description="LightGBM parameters.")
    pooled: bool = True


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
    iv_source: Literal["realized", "dvol"] = "realized"
    metric: str = "sharpe"
    seed: int = 7
    prefix: str | None = None
    strategy: dict[str, Any] = Field(default_factory=dict, description="BacktestConfig fields for every variant.")
    grid: dict[str, list[Any]] = Field(default_factory=lambda: dict(DEFAULT_GRID))
    model: ModelSettings = Field(default_factory=ModelSettings)
    baselines: list[str] = Field(default_factory=lambda: list(BASELINES))
    ranges: RangeSet

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
        rest = {k: v for k, v in data.items() if k not in _RANGE_KEYS}
        rs = RangeSet.from_dict({k: v for k, v in data.items() if k in _RANGE_KEYS}, name=data.get("name", "walk"))
        try:
            spec = cls(**rest, ranges=rs)
        except ValidationError as err:
            raise SpecError("walk spec: " + config_error_line(err, cls)) from None
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
        dte = [float(self.strategy.get("dte_max_days", 30.0))]
        dte += [float(r[1]) for r in self.grid.get("dte_range", [])]
        return max(dte)

    def base_config(self, window: Range, **overrides: Any) -> BacktestConfig:
        data = {"underlying": self.underlying, "timeframe": self.timeframe, "source": self.source,
                "iv_source": self.iv_source, "seed": self.seed, **self.strategy, **overrides,
                "start": window.start, "end": window.end}
        return BacktestConfig.parse(data)

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"ranges"})
        d.update({"rangeTrain": [{"startDate": r.start.isoformat(), "endDate": r.end.isoformat(), "note": r.note}
                                 for r in self.ranges.train],
                  "rangeTest": {"startDate": self.ranges.test.start.isoformat(),
                                "endDate": self.ranges.test.end.isoformat(), "note": self.ranges.test.note},
                  "gap_days": self.ranges.gap_days, "strict": self.ranges.strict})
        return d

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def data_window(self) -> tuple[date, date]:
        starts = [r.start for r in self.ranges.train] + [self.ranges.test.start]
        ends = [r.end for r in self.ranges.train] + [self.ranges.test.end]
        return min(starts), max(ends)
