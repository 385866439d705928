"""The collecting policy: lists a wide candidate universe at every decision and never sells (training data)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covcall.enums import SkipReason
from covcall.policies.base import Candidates, Choice, no_choice, sellable_within


@dataclass(frozen=True)
class CollectPolicy:
    """Labels every candidate at every decision time without trading, so no decision is skipped for being in a trade."""

    delta_min: float = 0.05
    delta_max: float = 0.50
    dte_min_days: float = 1.0
    dte_max_days: float = 30.0
    name: str = "collect"

    def universe(self, chain: Candidates) -> np.ndarray:
        return sellable_within(chain, self.delta_min, self.delta_max, self.dte_min_days, self.dte_max_days)

    def choose(self, candidates: Candidates, state: dict[str, float]) -> Choice:
        reason = SkipReason.COLLECTING_ONLY if len(candidates["score"]) else SkipReason.NO_CANDIDATES
        return no_choice(candidates, candidates["score"], reason)
