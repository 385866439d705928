"""The trial ledger: one row per configuration evaluated while selecting, with its per-bar returns."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from covcall.backtest import BacktestResult
from covcall.ranges import Range

STAGES = ("tune", "test", "final")  # final-holdout rows never count as selection trials
SELECTION_STAGES = ("tune", "test")


def bar_returns(equity: pd.DataFrame) -> tuple[list[int], list[float], list[float]]:
    """Epoch seconds of each bar after the first, the strategy's return over it and that minus HODL's."""
    cc = equity["covered_call"].to_numpy(float)
    hodl = equity["hodl"].to_numpy(float)
    if cc.size < 2:
        return [], [], []
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cc[1:] / cc[:-1] - 1.0
        h = hodl[1:] / hodl[:-1] - 1.0
    times = (equity.index[1:].asi8 // 1_000_000_000).tolist()
    return times, [float(x) for x in r], [float(x) for x in r - h]


def trial_row(*, walk_id: str, trial_id: str, stage: str, fold: int, frame: str | None, name: str, kind: str,
              underlying: str, timeframe: str, window: Range, params: dict[str, Any], metric: str,
              res: BacktestResult, run_id: str | None = None) -> dict[str, Any]:
    """A ledger row for one evaluated configuration (times, returns and excess as lists)."""
    times, r, ex = bar_returns(res.equity)
    m = res.metrics
    return {"walk_id": walk_id, "trial_id": trial_id, "stage": stage, "fold": int(fold), "frame": frame,
            "name": name, "kind": kind, "underlying": underlying, "timeframe": timeframe,
            "range_start": window.start.isoformat(), "range_end": window.end.isoformat(),
            "params": json.loads(json.dumps(params, sort_keys=True, default=str)), "metric": metric,
            "metric_value": _num(m.get(metric)), "sharpe_per_bar": _num(m.get("sharpe_per_bar")),
            "n_bars": int(m.get("n_bars") or 0), "skew": _num(m.get("skew")), "kurtosis": _num(m.get("kurtosis")),
            "times": times, "returns": r, "excess": ex, "run_id": run_id}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def selection_trials(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in trials if t["stage"] in SELECTION_STAGES]
