"""Baseline policies: hold the coin only, or sell a fixed-delta call at a fixed tenor every time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from covcall.enums import SkipReason
from covcall.policies.base import Candidates, Choice, no_choice


@dataclass(frozen=True)
class HodlPolicy:
    """Never sells: the benchmark every variant must beat."""

    name: str = "hodl"

    def universe(self, chain: Candidates) -> np.ndarray:
        return np.zeros(len(chain["strike"]), dtype=bool)

    def choose(self, candidates: Candidates, state: dict[str, float]) -> Choice:
        return no_choice(candidates, candidates["score"], SkipReason.HODL_NEVER_SELLS)


@dataclass(frozen=True)
class FixedDeltaPolicy:
    """Sell the expiry nearest `target_dte_days`, at the strike whose delta is nearest `target_delta`.

    With (0.10, 7) this is the weekly call crypto covered-call vaults sell; with (0.30, 30) it follows
    Cboe's BXMD index (a 30-delta monthly call). No score threshold: it always sells when it can.
    """

    target_delta: float = 0.10
    target_dte_days: float = 7.0
    dte_tolerance_days: float = 4.0
    name: str = "fixed_delta"

    def universe(self, chain: Candidates) -> np.ndarray:
        return (
            (np.abs(chain["dte_days"] - self.target_dte_days) <= self.dte_tolerance_days)
            & (chain["bid_usd"] > 0)
            & (chain["delta"] > 0.01)
            & (chain["delta"] < 0.99)
        )

    def choose(self, candidates: Candidates, state: dict[str, float]) -> Choice:
        scores = candidates["score"]
        if len(scores) == 0:
            return no_choice(candidates, scores, SkipReason.NO_CANDIDATES)
        dte_gap = np.abs(candidates["dte_days"] - self.target_dte_days)
        same_expiry = dte_gap <= dte_gap.min() + 1e-9
        delta_gap = np.where(same_expiry, np.abs(candidates["delta"] - self.target_delta), np.inf)
        k = int(np.argmin(delta_gap))
        return Choice(k, None, float(scores[k]), scores)
