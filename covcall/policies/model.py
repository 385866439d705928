"""The model policy: sell the candidate a trained LightGBM model expects to earn most, if it clears a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from covcall.enums import SkipReason
from covcall.models import TrainedModel, load_model, predict
from covcall.policies.base import Candidates, Choice, no_choice, sellable_within

if TYPE_CHECKING:
    from covcall.store import Store


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


def model_policy(model: TrainedModel, *, threshold: float = 0.0, dte_range: tuple[float, float] = (2.0, 30.0),
                 delta_range: tuple[float, float] = (0.05, 0.5)) -> ModelPolicy:
    """A ModelPolicy around a trained model, ready to hand to the engine."""
    return ModelPolicy(model, threshold=float(threshold), dte_min_days=float(dte_range[0]),
                       dte_max_days=float(dte_range[1]), delta_min=float(delta_range[0]),
                       delta_max=float(delta_range[1]))


def load_model_policy(store: Store, model_id: str, *, threshold: float = 0.0,
                      dte_range: tuple[float, float] = (2.0, 30.0),
                      delta_range: tuple[float, float] = (0.05, 0.5)) -> ModelPolicy:
    """A ModelPolicy around a saved model."""
    return model_policy(load_model(store, model_id), threshold=threshold, dte_range=dte_range,
                        delta_range=delta_range)
