"""The policy interface the engine calls at every decision, and the default candidate score."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# Candidates reach a policy as a dict of equal-length numpy arrays (one entry per call):
# instrument, expiry, strike, dte_days, t_years, delta, iv_ann, bid_usd, ask_usd, mark_usd, moneyness,
# premium_pct, spread_pct, score, plus the market state broadcast per row (rv_ann, atm_iv_ann, iv_rv, ret_*).
Candidates = dict[str, np.ndarray]


@dataclass(frozen=True)
class Choice:
    """What a policy decided: the chosen row (or None), why not, and the score it ranked by."""

    index: int | None
    reason: str | None = None
    best_score: float = float("nan")
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))


class Policy(Protocol):
    """Anything with a name, a candidate universe and a choice rule can drive the engine."""

    name: str

    def universe(self, chain: Candidates) -> np.ndarray:
        """Boolean mask of the chain rows this policy considers (before any scoring)."""
        ...

    def choose(self, candidates: Candidates, state: dict[str, float]) -> Choice:
        """Pick a row of `candidates` (already filtered by `universe`) or None with a reason."""
        ...


def premium_score(bid_usd: np.ndarray, spot: float, dte_days: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Annualised premium yield at the bid, discounted by the chance of finishing in the money.

    score = (bid_usd / spot) * (365 / dte_days) * (1 - delta)

    A 7-day call bid at 1 % of spot with delta 0.2 scores 0.01 * 365/7 * 0.8 = 0.417.

    >>> float(premium_score(np.array([600.0]), 60_000.0, np.array([7.0]), np.array([0.2]))[0])
    0.4171...
    """
    dte = np.maximum(np.asarray(dte_days, dtype=float), 1e-9)
    return (np.asarray(bid_usd, dtype=float) / spot) * (365.0 / dte) * (1.0 - np.asarray(delta, dtype=float))


def sellable_within(chain: Candidates, delta_min: float, delta_max: float, dte_min_days: float,
                    dte_max_days: float) -> np.ndarray:
    """Mask of calls with a bid whose delta and tenor fall inside the bounds (inclusive)."""
    return (
        (chain["delta"] >= delta_min)
        & (chain["delta"] <= delta_max)
        & (chain["dte_days"] >= dte_min_days)
        & (chain["dte_days"] <= dte_max_days)
        & (chain["bid_usd"] > 0)
    )


def no_choice(candidates: Candidates, scores: np.ndarray, reason: str) -> Choice:
    best = float(np.max(scores)) if len(scores) else float("nan")
    return Choice(None, reason, best, scores)
