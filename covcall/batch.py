"""Batch runs: a grid of underlyings x timeframes x windows x exit styles (x parameter sets), one combined dataset."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from covcall.backtest import (
    BacktestConfig,
    MarketInputs,
    backtest_unit,
    config_error_line,
    load_market_inputs,
    make_policy,
    new_id,
    new_run_id,
)
from covcall.compute import ComputeSpec, Executor, UnitFailure
from covcall.dataset import ExportPieces, RunRows, check_export_dir, run_rows, save_rows
from covcall.dates import parse_date
from covcall.enums import ExitStyle
from covcall.errors import CovcallError, SpecError
from covcall.jobs import tracked
from covcall.names import check_name
from covcall.version import code_version

if TYPE_CHECKING:
    from covcall.policies import Policy
    from covcall.store import Store

BatchProgress = Callable[[int, int, str], None]


class Window(BaseModel):
    """One date window of a batch (inclusive), with an optional note such as 'bull'."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: str = Field(alias="startDate")
    end: str = Field(alias="endDate")
    note: str = Field("", max_length=200)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _strict_date(cls, value: Any, info: Any) -> str:
        return parse_date(value, info.field_name).isoformat()


class BatchSpec(BaseModel):
    """The grid to run. `base` holds BacktestConfig fields shared by every run; `params` adds variants."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = "batch"
    underlyings: list[str] = Field(default_factory=lambda: ["BTC"], min_length=1)
    timeframes: list[str] = Field(default_factory=lambda: ["1d"], min_length=1)
    windows: list[Window] = Field(min_length=1)
    exit_styles: list[str] = Field(default_factory=lambda: [ExitStyle.HOLD_TO_EXPIRY.value], min_length=1)
    params: list[dict[str, Any]] = Field(default_factory=lambda: [{}], min_length=1)
    base: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "batch name")

    def configs(self) -> list[BacktestConfig]:
        """Every run of the grid as a validated config (fails before anything runs)."""
        out = []
        for u, tf, w, style, extra in itertools.product(self.underlyings, self.timeframes, self.windows,
                                                          self.exit_styles, self.params):
            data = {**self.base, **extra, "underlying": u, "timeframe": tf, "start": w.start, "end": w.end,
                    "exit_style": style}
            data.setdefault("label", f"{self.name}: {u} {tf} {w.start}..{w.end} {style}" + (
                f" ({w.note})" if w.note else ""))
            out.append(BacktestConfig.parse(data))
        return out

    @classmethod
    def parse(cls, data: dict[str, Any], defaults: dict[str, Any] | None = None) -> BatchSpec:
        """Validate a batch spec; `defaults` (covcall.config.run_defaults) fill `base` where it is silent, so the
        parsed spec alone says how every run was configured."""
        if not isinstance(data, dict):
            raise SpecError(f"a batch spec must be an object; got {type(data).__name__}")
        if defaults:
            base = data.get("base") or {}
            if not isinstance(base, dict):
                raise SpecError("batch spec: base must be an object of backtest settings")
            data = {**data, "base": {**defaults, **base}}
        try:
            return cls(**data)
        except ValidationError as err:
            raise SpecError("batch spec: " + config_error_line(err, cls, nested="base")) from None


@dataclass
class BatchResult:
    """What a batch produced: one summary per run (failed ones with their error) and the combined files."""

    batch_id: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    exports: dict[str, str] = field(default_factory=dict)
    examples: int = 0
    compute: str = "serial (this process)"
    dashboard: str | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "runs": self.runs, "exports": self.exports, "examples": self.examples,
                "ok": len(self.runs) - len(self.failed), "failed": len(self.failed), "compute": self.compute,
                "workers": sorted({r["worker"] for r in self.runs if r.get("worker")}),
                "dashboard": self.dashboard}


def data_key(cfg: BacktestConfig) -> tuple[Any, ...]:
    """Runs with the same key read exactly the same market data."""
    return (cfg.underlying, cfg.timeframe, cfg.source, cfg.iv_source, cfg.seed, cfg.exchange, cfg.start, cfg.end,
            cfg.settlement)


def pin(cfg: BacktestConfig, store: Store | None,
        resolved: dict[tuple[str, str], Any] | None = None) -> tuple[BacktestConfig, str | None]:
    """Resolve the chain calibration on the driver, so a worker (which never opens the store) prices the same.
    A sweep passes one `resolved` dict for all its configs: each calibration is read once."""
    from covcall.calibration import chain_for
    from covcall.chain import ChainParams

    chain, cal_id = chain_for(cfg.chain, cfg.calibration, cfg.underlying, store, resolved)
    return cfg.model_copy(update={"chain": ChainParams(**chain.model_dump()), "calibration": cal_id or "none"}), cal_id


# Seconds a run takes on one core, per exit style: a fixed part, each day (a run decides about once per call
# sold, whatever the bar: the chain is listed and scored there, most of the time) and each bar (marking and
# settling; a rolling style marks its open call at every bar). Fitted by bench/bench_cost.py on this project's
# 2-core machine (synthetic market, default rule policy, each run the first of its dates); what matters is the
# relative sizes (biggest units first) and the order of magnitude (whether a sweep pays for a cluster).
RUN_COST: dict[str, dict[str, float]] = {
    "hold_to_expiry": {"per_run": 0.017, "per_day": 1.87e-4, "per_bar": 9e-7},
    "tp_and_roll": {"per_run": 0.026, "per_day": 4.0e-4, "per_bar": 8.9e-6},
}


def run_seconds(cfg: BacktestConfig) -> float:
    """Estimated seconds one run takes on one core (RUN_COST).

    >>> hourly = BacktestConfig(timeframe="1h", start="2022-01-01", end="2022-12-31")
    >>> daily = hourly.model_copy(update={"timeframe": "1d", "exit_style": "tp_and_roll"})
    >>> run_seconds(daily) > run_seconds(hourly)  # decisions, not bars, take most of the time
    True
    """
    from covcall.timeframes import BAR_LENGTH

    c = RUN_COST.get(str(cfg.exit_style), RUN_COST["tp_and_roll"])
    days = (cfg.end - cfg.start).days + 1
    bars = days * (pd.Timedelta(days=1) / BAR_LENGTH[cfg.timeframe])
    return c["per_run"] + c["per_day"] * days + c["per_bar"] * bars


def work_seconds(configs: list[BacktestConfig]) -> float:
    """Estimated seconds the configs take on one core (to choose where a sweep runs, covcall.compute.plan)."""
    return float(sum(run_seconds(c) for c in configs))


def run_batch(spec: BatchSpec | dict[str, Any], *, store: Store | None = None, export_dir: str | Path | None = None,
              progress: BatchProgress | None = None, defaults: dict[str, Any] | None = None,
              compute: ComputeSpec | None = None) -> BatchResult:
    """Run every config of the grid; a failing run is recorded with its error and the rest go on.

    `compute` says where the runs execute (covcall.compute.plan; serial by default). The driver loads each
    distinct market-data window once, the runs execute as independent units, and each finished run is saved
    as it arrives (only the driver writes the store), so results are identical in every mode and a stopped
    batch keeps what finished. `progress(done, total, label)` is called as runs finish.
    """
    if isinstance(spec, dict):
        spec = BatchSpec.parse(spec, defaults)
    configs = spec.configs()
    if export_dir is not None:
        check_export_dir(export_dir)
    compute = compute or ComputeSpec("serial")
    batch_id = new_id("b")
    result = BatchResult(batch_id, compute=compute.describe())
    exports = ExportPieces()  # each run's examples formatted as it arrives: the end only writes them out
    total = len(configs)
    # the executor first: an unreachable scheduler fails before anything is recorded; workers warm up while
    # the driver loads data
    with Executor(compute) as ex, tracked(store, batch_id, "batch", spec.name,
                                          {"runs": total, "compute": compute.describe()}) as info:
        units: list[tuple[BacktestConfig, Any, Policy | None]] = []
        loaded: dict[tuple[Any, ...], MarketInputs | str] = {}
        policies: dict[tuple[Any, ...], Policy] = {}
        index: list[int] = []
        rows: dict[int, dict[str, Any]] = {}
        resolved: dict[tuple[str, str], Any] = {}
        for n, cfg in enumerate(configs):
            key = data_key(cfg)
            if key not in loaded:
                try:
                    loaded[key] = load_market_inputs(cfg, store)
                except CovcallError as err:
                    loaded[key] = str(err)
            if isinstance(loaded[key], str):
                rows[n] = _failed(store, cfg, batch_id, str(loaded[key]))
                continue
            try:
                pinned, _ = pin(cfg, store, resolved)
                policy = model_policy_for(pinned, store, policies)
            except CovcallError as err:
                rows[n] = _failed(store, cfg, batch_id, str(err))
                continue
            units.append((pinned, key, policy))
            index.append(n)
        done = failed = len(rows)  # so far only runs whose data could not load: all failed
        n_examples = 0
        result.dashboard = ex.dashboard_link
        refs = {key: ex.scatter(value) for key, value in loaded.items() if not isinstance(value, str)}
        for group in ex.map_groups(stored_unit, [(cfg, refs[key], export_dir is not None, policy)
                                                 for cfg, key, policy in units],
                                   cost=[run_seconds(cfg) for cfg, _, _ in units]):
            # runs that finished while the last ones were being saved are saved through one connection, each in
            # its own transaction: one open and one checkpoint for the group (a busy writer catches up)
            with store.writes() if store is not None and len(group) > 1 else contextlib.nullcontext():
                for i, out, where in group:
                    n = index[i]
                    cfg = configs[n]
                    done += 1
                    if isinstance(out, UnitFailure):
                        rows[n] = {**_failed(store, cfg, batch_id, out.error), "worker": where}
                    else:
                        if store is not None:
                            save_rows(store, out, batch_id=batch_id, code_version=code_version())
                        exports.add_text(n, out.export, out.n_examples)
                        n_examples += out.n_examples
                        rows[n] = {"run_id": out.run_id, "label": cfg.label, "status": "ok", "error": None,
                                   **out.summary["counts"], "metrics": out.summary["metrics"], "worker": where}
                    failed += isinstance(out, UnitFailure)
                    info.update(done=done, failed=failed)
                    if progress:
                        progress(done, total, cfg.label or "")
        result.runs = [rows[k] for k in sorted(rows)]
        if progress:
            progress(total, total, "done")
        result.examples = n_examples
        if export_dir is not None:
            result.exports = exports.write(Path(export_dir), batch_id)
        info.update(done=len(result.runs), failed=len(result.failed), examples=result.examples)
    return result


def model_policy_for(cfg: BacktestConfig, store: Store | None,
                     policies: dict[tuple[Any, ...], Policy]) -> Policy | None:
    """A model policy's model, read from the store on the driver once per model and settings (the units never open
    the store); None for the other policies, which the unit builds from its config."""
    if cfg.policy != "model":
        return None
    key = (cfg.model_id, cfg.model_threshold, cfg.dte_min_days, cfg.dte_max_days, cfg.delta_min, cfg.delta_max)
    if key not in policies:
        policies[key] = make_policy(cfg, store)
    return policies[key]


def stored_unit(cfg: BacktestConfig, data: MarketInputs, export: bool, policy: Policy | None = None) -> RunRows:
    """A batch's unit of work: one backtest, handed back ready to save (and its examples formatted for the export
    when there is one), so the workers, not the one writer, do the shaping. A model policy comes loaded."""
    out = backtest_unit(cfg, data, policy)
    out.calibration_id = cfg.calibration if cfg.calibration != "none" else None
    return run_rows(out, export=export)


def _failed(store: Store | None, cfg: BacktestConfig, batch_id: str, error: str) -> dict[str, Any]:
    run_id = new_run_id(cfg)
    if store is not None:
        store.save_run({"run_id": run_id, "batch_id": batch_id, "created_at": pd.Timestamp.now(tz="UTC"),
                        "status": "failed", "error": error, "label": cfg.label, "underlying": cfg.underlying,
                        "timeframe": cfg.timeframe, "start_date": cfg.start, "end_date": cfg.end,
                        "source": cfg.source, "iv_source": cfg.iv_source, "exit_style": cfg.exit_style,
                        "policy": cfg.policy, "config_json": cfg.model_dump_json(),
                        "config_hash": cfg.config_hash(), "code_version": code_version()}, {})
    return {"run_id": run_id, "label": cfg.label, "status": "failed", "error": error}
