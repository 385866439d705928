"""Policies: given the candidate calls and the market state at a decision, pick one candidate or none."""

from covcall.policies.base import Choice, Policy, premium_score
from covcall.policies.baselines import FixedDeltaPolicy, HodlPolicy
from covcall.policies.collect import CollectPolicy
from covcall.policies.rule import RulePolicy

__all__ = ["Choice", "Policy", "premium_score", "RulePolicy", "HodlPolicy", "FixedDeltaPolicy", "CollectPolicy"]
