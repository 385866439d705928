"""The rule tuner: a grid or a seeded Optuna (TPE) search over delta, DTE, threshold, take-profit and exit style."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from covcall.backtest import BacktestConfig, BacktestResult, backtest_unit
from covcall.enums import ExitStyle
from covcall.errors import CovcallError, did_you_mean

# grid names: the two [min, max] pairs stand for four BacktestConfig fields
GRID_KEYS = ("delta_range", "dte_range", "threshold", "take_profit", "exit_style")
# Optuna names: [low, high] bounds for numbers, a list of choices for exit_style
SPACE_KEYS = ("delta_min", "delta_max", "dte_min_days", "dte_max_days", "threshold", "take_profit", "exit_style")
DEFAULT_SPACE: dict[str, list[Any]] = {
    "delta_min": [0.05, 0.30], "delta_max": [0.10, 0.45], "dte_min_days": [1.0, 14.0],
    "dte_max_days": [7.0, 45.0], "threshold": [0.0, 0.5], "take_profit": [0.3, 0.9],
    "exit_style": ["hold_to_expiry", "tp_and_roll"],
}
_EXIT_STYLES = [e.value for e in ExitStyle]


def _check_keys(keys: Any, allowed: tuple[str, ...], what: str) -> None:
    for k in keys:
        if k not in allowed:
            raise ValueError(f"unknown tuner parameter {k!r} in {what}{did_you_mean(k, allowed)}; "
                             f"tunable: {', '.join(allowed)}")


def check_grid(grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Grid keys must be tunable and every value list non-empty; pairs must be [min, max] with min < max."""
    _check_keys(grid, GRID_KEYS, "grid")
    for k, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid {k}: give a non-empty list of values")
        for v in values:
            if k in ("delta_range", "dte_range"):
                if not (isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, int | float) for x in v)
                        and float(v[0]) < float(v[1])):
                    raise ValueError(f"grid {k}: each value is a [min, max] pair with min < max; got {v!r}")
            elif k == "exit_style":
                if v not in _EXIT_STYLES:
                    raise ValueError(f"grid exit_style: {v!r} is not one of {', '.join(_EXIT_STYLES)}"
                                     f"{did_you_mean(str(v), _EXIT_STYLES)}")
            elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
                raise ValueError(f"grid {k}: values must be finite numbers; got {v!r}")
    return grid


class TunerSettings(BaseModel):
    """How the rule variant of each training range is chosen: every grid point, or an Optuna budget."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    method: Literal["grid", "optuna"] = "grid"
    budget: int = Field(24, ge=1, le=5000, description="optuna: trials per training range.")
    space: dict[str, list[Any]] = Field(default_factory=dict, description="optuna: bounds or choices.")

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        _check_keys(v, SPACE_KEYS, "tuner.space")
        for k, b in v.items():
            if k == "exit_style":
                if not isinstance(b, list) or not b or any(x not in _EXIT_STYLES for x in b):
                    raise ValueError(f"tuner.space exit_style: a non-empty list from {', '.join(_EXIT_STYLES)}")
            elif not (isinstance(b, list) and len(b) == 2 and all(isinstance(x, int | float) and not
                      isinstance(x, bool) and math.isfinite(float(x)) for x in b) and float(b[0]) < float(b[1])):
                raise ValueError(f"tuner.space {k}: give [low, high] with low < high; got {b!r}")
        return v

    def full_space(self) -> dict[str, list[Any]]:
        return {**DEFAULT_SPACE, **self.space}


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


def n_tuner_trials(method: str, grid: dict[str, list[Any]], budget: int) -> int:
    return len(expand_grid(grid)) if method == "grid" else int(budget)


def max_dte(method: str, grid: dict[str, list[Any]], tuner: TunerSettings) -> float:
    """Largest DTE the tuner may try (sets the label horizon)."""
    if method == "optuna":
        return float(tuner.full_space()["dte_max_days"][1])
    return max([float(r[1]) for r in grid.get("dte_range", [])] or [0.0])


@dataclass
class Trial:
    """One configuration evaluated on one training range."""

    index: int
    point: dict[str, Any]
    value: float | None
    result: BacktestResult


def _suggest(trial: Any, space: dict[str, list[Any]]) -> dict[str, Any]:
    """One point of the space; bounds are static (TPE's best case) and the pairs are ordered afterwards."""
    p: dict[str, Any] = {}
    for k in SPACE_KEYS:
        b = space[k]
        if k == "exit_style":
            p[k] = trial.suggest_categorical(k, list(b))
        else:
            p[k] = round(float(trial.suggest_float(k, float(b[0]), float(b[1]))), 4)
    p["delta_max"] = round(max(p["delta_max"], p["delta_min"] + 0.01), 4)
    p["dte_max_days"] = round(max(p["dte_max_days"], p["dte_min_days"] + 1.0), 4)
    if p["exit_style"] != ExitStyle.TP_AND_ROLL.value:
        p.pop("take_profit")  # no effect: identical configurations stay identical in the ledger
    return p


OPTUNA_BATCH = 8  # trials asked together and evaluated in parallel; fixed, so results never depend on workers


def tune(make_config: Callable[[dict[str, Any]], BacktestConfig], *, method: str, grid: dict[str, list[Any]],
         settings: TunerSettings, metric: str, seed: int, data: Any, ex: Any = None,
         on_trial: Callable[[Trial, int], None] | None = None) -> list[Trial]:
    """Evaluate the tuner's trials; `on_trial(trial, total)` is called after each, in trial order.

    Trials run as units on `ex` (a covcall.compute.Executor; serial when None). The grid's points all go at
    once; Optuna asks OPTUNA_BATCH points at a time from an in-memory, seeded TPE study and is told the results
    in order, so a spec and seed give bit-identical trials whatever the number of workers. A metric that
    cannot be computed scores as the worst value to the sampler. A failing trial fails the walk.
    """
    from covcall.compute import ComputeSpec, Executor, UnitFailure

    trials: list[Trial] = []
    ex = ex or Executor(ComputeSpec("serial"))

    def evaluate(points: list[dict[str, Any]], total: int) -> list[float | None]:
        cfgs = [make_config(p) for p in points]
        done: dict[int, BacktestResult] = {}
        for i, res, _ in ex.map(backtest_unit, [(c, data, None, False) for c in cfgs]):
            if isinstance(res, UnitFailure):
                raise CovcallError(f"tuner trial {points[i]} failed: {res.error}")
            done[i] = res
        values = []
        for i, point in enumerate(points):
            value = done[i].metrics.get(metric)
            t = Trial(len(trials), point, value, done[i])
            trials.append(t)
            values.append(value)
            if on_trial:
                on_trial(t, total)
        return values

    if method == "grid":
        points = expand_grid(grid)
        evaluate(points, len(points))
        return trials

    import optuna  # imported only when asked for: it takes a second

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = settings.full_space()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(seed)))
    while len(trials) < settings.budget:
        asked = [study.ask() for _ in range(min(OPTUNA_BATCH, settings.budget - len(trials)))]
        values = evaluate([_suggest(t, space) for t in asked], settings.budget)
        for t, value in zip(asked, values, strict=True):
            study.tell(t, float(value) if value is not None and math.isfinite(value) else -1e9)
    return trials
