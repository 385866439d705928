"""Why a LightGBM policy sold or skipped: per-feature contributions to a prediction, at any recorded decision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.dates import parse_instant
from covcall.errors import CovcallError
from covcall.models import TrainedModel, feature_matrix, load_model, predict

if TYPE_CHECKING:
    from covcall.store import Store


def explain(model: TrainedModel, candidates: pd.DataFrame | dict[str, np.ndarray], row: int) -> pd.DataFrame:
    """Per-feature contributions (LightGBM SHAP values) to one prediction; they plus the bias row sum to it."""
    x = feature_matrix(candidates, model.features)
    if not -len(x) <= row < len(x):
        raise CovcallError(f"row {row} is out of range: there are {len(x)} candidate rows")
    one = x[[row]]
    contrib = np.asarray(model.regressor.predict(one, pred_contrib=True)).reshape(-1)
    return pd.DataFrame({
        "feature": [*model.features, "bias"],
        "value": np.r_[one[0], np.nan],
        "contribution": contrib,
    })


def explain_decision(store: Store, model_id: str, run_id: str, decision_time: Any = None,
                     threshold: float = 0.0) -> dict[str, Any]:
    """Why a model sold a candidate (or skipped) at one decision of a run whose candidates were recorded.

    Returns the decision time, every candidate with its prediction, the best one, whether it cleared the
    threshold, and the best candidate's per-feature contributions (LightGBM's own pred_contrib output).
    """
    model = load_model(store, model_id)
    cands = store.read_candidates([run_id])
    if cands.empty:
        raise CovcallError(f"run {run_id!r} has no recorded candidates to explain; run it with candidates recorded")
    times = cands["decision_time"].drop_duplicates().sort_values().reset_index(drop=True)
    if decision_time is None:
        t = times.iloc[0]
    else:
        want = parse_instant(decision_time, "--at")
        first, last = times.iloc[0], times.iloc[-1]
        # A bare date means that day: the first decision at or after its midnight, up to the run's last decision.
        if want < first - pd.Timedelta(days=1) or want > last:
            raise CovcallError(f"run {run_id!r} decided from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC; "
                               f"--at {want:%Y-%m-%d %H:%M} is outside it")
        t = times[times >= want].iloc[0]
    at = cands[cands["decision_time"] == t].reset_index(drop=True)
    preds = predict(model, at)
    best = int(np.argmax(preds))
    table = at[["instrument", "strike", "dte_days", "delta", "premium_pct", "score"]].assign(prediction=preds)
    return {"decision_time": t, "candidates": table, "best": best, "best_prediction": float(preds[best]),
            "sells": bool(preds[best] >= threshold), "threshold": threshold,
            "contributions": explain(model, at, best), "target": model.target}
