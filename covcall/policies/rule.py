"""The rule policy (the engine's default): sell the best-scoring call within delta/DTE bounds if it clears a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covcall.enums import SkipReason
from covcall.policies.base import Candidates, Choice, no_choice, sellable_within


@dataclass(frozen=True)
class RulePolicy:
    """Score every candidate with `premium_score`; sell the best when score >= threshold."""

    delta_min: float = 0.10
    delta_max: float = 0.35
    dte_min_days: float = 2.0
    dte_max_days: float = 30.0
    threshold: float = 0.15
    name: str = "rule"

    def universe(self, chain: Candidates) -> np.ndarray:
        return sellable_within(chain, self.delta_min, self.delta_max, self.dte_min_days, self.dte_max_days)

    def choose(self, candidates: Candidates, state: dict[str, float]) -> Choice:
        scores = candidates["score"]
        if len(scores) == 0:
            return no_choice(candidates, scores, SkipReason.NO_CANDIDATES)
        k = int(np.argmax(scores))
        if not scores[k] >= self.threshold:
            return no_choice(candidates, scores, SkipReason.SCORE_BELOW_THRESHOLD)
        return Choice(k, None, float(scores[k]), scores)
