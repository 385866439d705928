"""Naive reference simulation: a plain per-bar, per-candidate Python loop with scalar pricing.

It re-implements the engine's rules without numpy vectorisation (chain listing, candidate labels,
marks and take-profit checks one option and one bar at a time) so the bench can measure the speed-up and
check that both give the same trades.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from covcall.chain import (
    ChainParams,
    ask_usd,
    instrument_name,
    list_expiries,
    mark_call_usd,
    quotes,
    smile_iv,
    strike_grid,
)
from covcall.engine import NS_PER_DAY, NS_PER_YEAR, Market, SimParams, decision_mask
from covcall.pricing import call_delta, call_price


def _f(x) -> float:
    return float(np.asarray(x).reshape(-1)[0])


def naive_chain(t_ns: int, spot: float, atm: float, underlying: str, params: ChainParams, rate: float,
                state: float = 1.0, events=None) -> list[dict]:
    t = pd.Timestamp(t_ns, tz="UTC")
    b = params.basis_ann + rate  # the forward's carry: Deribit prices off the expiry's future
    rows = []
    for exp in list_expiries(t, params):
        dte = (exp - t) / pd.Timedelta(days=1)
        if dte < params.min_dte_days:
            continue
        ty = dte / 365.0
        ev = events.pricing_args(t_ns, exp.value) if events is not None else {}
        for k in strike_grid(underlying, spot, ty, params):
            k = float(k)
            iv = _f(smile_iv(atm, spot, k, ty, params, state, rate, **ev))
            mark = _f(call_price(spot, k, ty, iv, b))
            bid, ask = quotes(mark / spot, spot, k, ty, params, iv_ann=iv, rate=b)
            rows.append({"instrument": str(instrument_name(underlying, exp, k)), "expiry_ns": exp.value,
                         "strike": k, "dte_days": dte, "iv_ann": iv, "mark_usd": mark,
                         "delta": _f(call_delta(spot, k, ty, iv, b)), "bid_usd": _f(bid) * spot,
                         "ask_usd": _f(ask) * spot})
    return rows


def _rate(market: Market, j: int, p: SimParams) -> float:
    """The rate that puts bar j's forward on the basis known then (a basis history), else p.rate."""
    return p.rate if market.basis is None else p.rate + float(market.basis[j]) - float(p.chain.basis_ann)


def _fee(price: float, spot: float, p: SimParams) -> float:
    return min(p.fee_rate * spot, p.fee_cap * price)


def naive_label(market: Market, i: int, c: dict, p: SimParams) -> dict:
    """Walk forward bar by bar from the sale until settlement, take-profit or the window end."""
    n = len(market)
    spot0 = float(market.close[i])
    premium = c["bid_usd"]
    entry_fee = _fee(premium, spot0, p)
    e_ns = c["expiry_ns"]
    for j in range(i + 1, n):
        c_ns = int(market.open_ns[j]) + market.bar_ns
        if c_ns >= e_ns:
            w = min(max((e_ns - int(market.open_ns[j])) / market.bar_ns, 0.0), 1.0)
            s_e = float(market.open[j] + w * (market.close[j] - market.open[j]))
            value = max(s_e - c["strike"], 0.0)
            fee = min(p.settlement_fee_rate * s_e, p.fee_cap * value)
            reason = "settled_itm" if s_e > c["strike"] else "expired_otm"
            return _done(j, e_ns, reason, value, s_e, entry_fee + fee, premium, spot0, p)
        tau = (e_ns - c_ns) / NS_PER_YEAR
        if p.exit_style == "tp_and_roll":
            ev = market.event_args(c_ns, e_ns)
            mark = _f(mark_call_usd(float(market.close[j]), c["strike"], tau, float(market.atm_iv[j]), p.chain,
                                    _rate(market, j, p), float(market.term_state[j]), **ev))
            if mark <= (1.0 - p.take_profit) * premium:
                px = _f(ask_usd(float(market.close[j]), c["strike"], tau, float(market.atm_iv[j]), p.chain,
                                _rate(market, j, p), float(market.term_state[j]), **ev))
                return _done(j, c_ns, "take_profit", px, float(market.close[j]),
                             entry_fee + _fee(px, float(market.close[j]), p), premium, spot0, p)
    last = n - 1
    c_ns = int(market.open_ns[last]) + market.bar_ns
    tau = (e_ns - c_ns) / NS_PER_YEAR
    px = _f(ask_usd(float(market.close[last]), c["strike"], tau, float(market.atm_iv[last]), p.chain,
                    _rate(market, last, p), float(market.term_state[last]), **market.event_args(c_ns, e_ns)))
    return _done(last, c_ns, "window_end", px, float(market.close[last]),
                 entry_fee + _fee(px, float(market.close[last]), p), premium, spot0, p)


def _done(j, t_ns, reason, price, exit_spot, fee, premium, spot0, p) -> dict:
    q = p.quantity
    vs = q * (premium - price) - q * fee
    return {"exit_idx": j, "exit_ns": t_ns, "exit_reason": reason, "exit_usd": q * price, "spot_exit": exit_spot,
            "fee_usd": q * fee, "pnl_vs_hodl": vs, "pnl": vs + q * (exit_spot - spot0)}


def naive_simulate(market: Market, policy, p: SimParams, first_decision: int = 0) -> tuple[pd.DataFrame, int]:
    """Trades of the naive loop and how many candidate labels it computed."""
    can = decision_mask(market, p.timeframe, p.decision_hour_utc)
    n = len(market)
    trades = []
    evaluated = 0
    i = first_decision
    force = False
    while i < n - 1:
        if not (can[i] or force):
            i += 1
            continue
        force = False
        spot = float(market.close[i])
        t_ns = int(market.open_ns[i]) + market.bar_ns
        rows = naive_chain(t_ns, spot, float(market.atm_iv[i]), p.underlying, p.chain, _rate(market, i, p),
                           float(market.term_state[i]), market.events)
        chain = {k: np.array([r[k] for r in rows]) for k in rows[0]} if rows else {}
        cands = []
        for r in rows:
            if not (policy.delta_min <= r["delta"] <= policy.delta_max and policy.dte_min_days <= r["dte_days"]
                    <= policy.dte_max_days and r["bid_usd"] > 0):
                continue
            r = dict(r)
            r["score"] = (r["bid_usd"] / spot) * (365.0 / max(r["dte_days"], 1e-9)) * (1.0 - r["delta"])
            cands.append(r)
        labels = [naive_label(market, i, c, p) for c in cands]
        evaluated += len(cands)
        del chain
        best = max(range(len(cands)), key=lambda k: cands[k]["score"]) if cands else None
        if best is None or not cands[best]["score"] >= policy.threshold:
            i += 1
            continue
        c, lab = cands[best], labels[best]
        if not math.isfinite(lab["pnl"]):
            i += 1
            continue
        trades.append({"entry_time": t_ns, "instrument": c["instrument"], "strike": c["strike"],
                       "exit_reason": lab["exit_reason"], "exit_time": lab["exit_ns"], "pnl": lab["pnl"],
                       "pnl_vs_hodl": lab["pnl_vs_hodl"], "dte": int((c["expiry_ns"] - t_ns) // NS_PER_DAY)})
        if lab["exit_reason"] == "window_end":
            break
        i = lab["exit_idx"]
        force = lab["exit_reason"] == "take_profit"
    return pd.DataFrame(trades), evaluated
