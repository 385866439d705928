"""The model policy: sell the candidate a trained LightGBM model expects to earn most, if it clears a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covcall.enums import SkipReason
from covcall.models import TrainedModel, predict
from covcall.policies.base import Candidates, Choice, no_choice, sellable_within


@dataclass(frozen=True)
class ModelPolicy:
    """Predict E[target] for every candidate within delta/DTE bounds; sell the best when prediction >= threshold.

    The candidates dict carries the model's features under the same names as the candidate table
    (the market state is broadcast per row by the engine), so no extra bookkeeping is needed here.
    """

    model: TrainedModel
    threshold: float = 0.0
    dte_min_days: float = 2.0
    dte_max_days: float = 30.0
    delta_min: float = 0.05
    delta_max: float = 0.5
    name: str = "model"

    def universe(self, chain: Candidates) -> np.ndarray:
        return sellable_within(chain, self.delta_min, self.delta_max, self.dte_min_days, self.dte_max_days)

    def choose(self, candidates: Candidates, state: dict[str, float]) -> Choice:
        n = len(candidates["strike"]) if "strike" in candidates else len(next(iter(candidates.values()), []))
        if n == 0:
            return no_choice(candidates, np.empty(0), SkipReason.NO_CANDIDATES)
        preds = predict(self.model, candidates)
        k = int(np.argmax(preds))
        if not preds[k] >= self.threshold:
            return no_choice(candidates, preds, SkipReason.SCORE_BELOW_THRESHOLD)
        return Choice(k, None, float(preds[k]), preds)
