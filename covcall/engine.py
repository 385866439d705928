"""The covered-call simulation: decisions, trades, counterfactual candidate labels and the equity curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from covcall.chain import CHAINS, ChainParams, ask_usd, build_chain, instrument_name, mark_call_usd
from covcall.enums import Action, ExitReason, ExitStyle, SkipReason, values
from covcall.policies.base import Candidates, Policy, premium_score

NS_PER_YEAR = 365.0 * 86400e9
NS_PER_DAY = 86400e9
EXIT_STYLES = values(ExitStyle)


class QuoteModel(Protocol):
    """Where the engine gets its option chain and prices; the default is the Deribit-style BS model."""

    # `events` / `basis` come only when the run has them (scheduled events; a basis history, covcall.basis)
    def chain(self, t: pd.Timestamp, spot: float, atm_iv: float, underlying: str,
              state: float | None = None, events: Any = None, basis: float | None = None) -> dict[str, np.ndarray]: ...

    def mark(self, spot: Any, strike: Any, t_years: Any, atm_iv: Any, state: Any = None, basis: Any = None,
             **events: Any) -> np.ndarray: ...

    def ask(self, spot: Any, strike: Any, t_years: Any, atm_iv: Any, state: Any = None, basis: Any = None,
            **events: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class BSQuotes:
    """Black-Scholes with the chain model's smile, spread and ticks (covcall.chain)."""

    params: ChainParams
    rate: float = 0.0

    def _rate(self, basis: Any) -> Any:
        """The rate that makes the forward's carry (params.basis_ann + rate) the given basis + this rate."""
        if basis is None:
            return self.rate
        b = np.asarray(basis, dtype=float)
        return self.rate + (float(b) if b.ndim == 0 else b) - float(self.params.basis_ann)

    def chain(self, t: pd.Timestamp, spot: float, atm_iv: float, underlying: str,
              state: float | None = None, events: Any = None, basis: float | None = None) -> dict[str, np.ndarray]:
        rate = self._rate(basis)
        key = (self.params, float(rate), pd.Timestamp(t).value, float(spot), float(atm_iv), underlying,
               None if state is None else float(state), None if events is None else events.key)
        hit = CHAINS.get(key)
        if hit is None:
            hit = CHAINS.put(key, build_chain(t, spot, atm_iv, underlying, self.params, rate, names=False,
                                              state=state, events=events))
        return hit

    def mark(self, spot: Any, strike: Any, t_years: Any, atm_iv: Any, state: Any = None, basis: Any = None,
             **events: Any) -> np.ndarray:
        return mark_call_usd(spot, strike, t_years, atm_iv, self.params, self._rate(basis), state, **events)

    def ask(self, spot: Any, strike: Any, t_years: Any, atm_iv: Any, state: Any = None, basis: Any = None,
            **events: Any) -> np.ndarray:
        return ask_usd(spot, strike, t_years, atm_iv, self.params, self._rate(basis), state, **events)


@dataclass(frozen=True)
class SimParams:
    """Everything the simulation needs besides market data and a policy (explicit, no environment)."""

    underlying: str
    timeframe: str
    exit_style: str = ExitStyle.HOLD_TO_EXPIRY.value
    take_profit: float = 0.5
    quantity: float = 1.0
    fee_rate: float = 0.0003
    fee_cap: float = 0.125
    settlement_fee_rate: float = 0.00015
    rate: float = 0.0
    decision_hour_utc: int | None = 8
    accounting: str = "usd"  # usd | coin
    chain: ChainParams = field(default_factory=ChainParams)
    quotes: QuoteModel | None = None  # None: BSQuotes(chain, rate)

    @property
    def quote_model(self) -> QuoteModel:
        return self.quotes if self.quotes is not None else BSQuotes(self.chain, self.rate)


@dataclass
class Market:
    """Bar arrays for the simulated window; `close_ns` is when each bar's close is known."""

    ts: pd.DatetimeIndex  # bar open times (UTC)
    open: np.ndarray
    close: np.ndarray
    atm_iv: np.ndarray  # ATM IV known at each bar close
    rv: np.ndarray  # trailing realised vol known at each bar close
    ret_1d: np.ndarray
    ret_7d: np.ndarray
    ret_30d: np.ndarray
    bar_ns: int
    term_state: np.ndarray | None = None  # short realised vol / IV index known at each close (term structure)
    # Closes of finer bars of the same series (ns, price), to settle expiries inside a coarse bar exactly.
    fine_close_ns: np.ndarray | None = None
    fine_close: np.ndarray | None = None
    # Scheduled events (covcall.events.EventVariance) priced into the expiries after them; None on the synthetic
    # market, which has no scheduled events.
    events: Any = None
    # The forward basis known at each close (covcall.basis); None: the chain's one calibrated number.
    basis: np.ndarray | None = None

    def __post_init__(self) -> None:
        # pandas may hold microseconds; the engine's integer clock is nanoseconds.
        self.ts = pd.DatetimeIndex(self.ts).as_unit("ns")
        if self.term_state is None:
            self.term_state = np.ones(len(self.close))

    @property
    def open_ns(self) -> np.ndarray:
        return self.ts.asi8

    @property
    def close_ns(self) -> np.ndarray:
        return self.ts.asi8 + self.bar_ns

    def __len__(self) -> int:
        return len(self.close)

    def basis_args(self, idx: Any, row: bool = False) -> dict[str, Any]:
        """The quote model's `basis` keyword for bars `idx` (`row`: as a row, bars along the last axis); {} without a
        basis history."""
        if self.basis is None:
            return {}
        b = self.basis[idx]
        return {"basis": b[None, :] if row else b}

    def event_args(self, now_ns: Any, expiry_ns: Any) -> dict[str, np.ndarray]:
        """The event keyword arguments of the quote model for options alive at `now_ns` ({} without events)."""
        return self.events.pricing_args(now_ns, expiry_ns) if self.events is not None else {}


@dataclass
class SimOutput:
    """Raw simulation results as DataFrames (the backtest layer adds run ids and persists them)."""

    trades: pd.DataFrame
    examples: pd.DataFrame
    candidates: pd.DataFrame
    equity: pd.DataFrame


def to_ns(values: Any) -> np.ndarray:
    """Integer nanoseconds since the epoch from datetimes (naive = UTC) or integers already in ns."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    idx = pd.DatetimeIndex(arr)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8


# -- fees -------------------------------------------------------------------------------------------
def trade_fee_usd(price_usd: np.ndarray, spot: np.ndarray, fee_rate: float, fee_cap: float) -> np.ndarray:
    """Deribit trade fee per contract: fee_rate of the underlying, capped at fee_cap of the option price.

    >>> float(trade_fee_usd(np.array([600.0]), np.array([60_000.0]), 0.0003, 0.125)[0])   # 0.03 % of spot
    18.0
    >>> float(trade_fee_usd(np.array([60.0]), np.array([60_000.0]), 0.0003, 0.125)[0])    # capped at 12.5 %
    7.5
    """
    return np.minimum(fee_rate * np.asarray(spot, dtype=float), fee_cap * np.asarray(price_usd, dtype=float))


def settlement_fee_usd(value_usd: np.ndarray, settle_spot: np.ndarray, rate: float, cap: float) -> np.ndarray:
    """Deribit settlement fee: rate of the underlying, capped at cap of the option's value (0 when worthless)."""
    return np.minimum(rate * np.asarray(settle_spot, dtype=float), cap * np.asarray(value_usd, dtype=float))


# -- settlement -------------------------------------------------------------------------------------
SETTLED_AT_BAR_CLOSE = "bar_close"
SETTLED_FROM_FINER_BARS = "finer_bars"
SETTLED_BY_DAILY_PROXY = "daily_proxy"


def settlement_index(market: Market, expiry_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each expiry: the first bar whose close is at or after it, the settlement price, and where it came from.

    An expiry that is a bar close (08:00 UTC on 1h and 4h bars) settles at that close ('bar_close'). Inside a
    daily bar it settles at the close of a finer bar of the same series ending exactly at the expiry when the
    market carries one ('finer_bars'), else at open + (elapsed share) x (close - open) of the bar, i.e.
    open + 8/24 (close - open) on daily bars ('daily_proxy'). Index len(market) means beyond the data.
    """
    close_ns = market.close_ns
    j = np.searchsorted(close_ns, expiry_ns, side="left")
    jj = np.minimum(j, len(market) - 1)
    w = np.clip((expiry_ns - market.open_ns[jj]) / market.bar_ns, 0.0, 1.0)
    price = market.open[jj] + w * (market.close[jj] - market.open[jj])
    source = np.where(close_ns[jj] == expiry_ns, SETTLED_AT_BAR_CLOSE, SETTLED_BY_DAILY_PROXY).astype(object)
    if market.fine_close_ns is not None and len(market.fine_close_ns):
        k = np.searchsorted(market.fine_close_ns, expiry_ns)
        kk = np.minimum(k, len(market.fine_close_ns) - 1)
        exact = (market.fine_close_ns[kk] == expiry_ns) & (source != SETTLED_AT_BAR_CLOSE)
        price = np.where(exact, market.fine_close[kk], price)
        source = np.where(exact, SETTLED_FROM_FINER_BARS, source)
    return j, price, source


# -- counterfactual labels --------------------------------------------------------------------------
@dataclass
class Labels:
    """Outcome of selling each candidate at a decision and managing it with the exit style."""

    exit_idx: np.ndarray  # bar at whose close the trade ended
    exit_ns: np.ndarray  # when it ended (expiry time for settlements)
    exit_reason: np.ndarray
    exit_price_usd: np.ndarray  # buy-back ask or settlement value, per coin
    exit_spot: np.ndarray
    fee_usd: np.ndarray  # entry + exit fees, whole position
    pnl_vs_hodl: np.ndarray  # option leg net of fees, whole position
    pnl: np.ndarray  # coins + option leg, whole position
    settlement_source: np.ndarray  # bar_close / finer_bars / daily_proxy, None when bought back


def label_candidates(market: Market, i: int, cands: Candidates, p: SimParams) -> Labels:
    """Vectorised outcome of selling every candidate at bar i (no Python loop over candidates)."""
    qm = p.quote_model
    n = len(market)
    last = n - 1
    spot0 = market.close[i]
    strike = cands["strike"]
    expiry_ns = cands["expiry_ns"]
    premium = cands["bid_usd"]
    k = len(strike)
    entry_fee = trade_fee_usd(premium, np.full(k, spot0), p.fee_rate, p.fee_cap)

    j_settle, settle_px, settle_source = settlement_index(market, expiry_ns)
    settles = j_settle <= last
    exit_idx = np.where(settles, j_settle, last)
    exit_ns = np.where(settles, expiry_ns, market.close_ns[last])
    reason = np.where(settles, np.where(settle_px > strike, ExitReason.SETTLED_ITM.value, ExitReason.EXPIRED_OTM.value),
                      ExitReason.WINDOW_END.value)
    value = np.maximum(settle_px - strike, 0.0)
    exit_price = np.where(settles, value, 0.0)
    exit_fee = np.where(settles, settlement_fee_usd(value, settle_px, p.settlement_fee_rate, p.fee_cap), 0.0)
    exit_spot = np.where(settles, settle_px, market.close[last])
    settled_by = np.where(settles, settle_source, None)

    # Still open at the last bar: bought back at the ask there.
    open_end = ~settles
    if open_end.any():
        tau = (expiry_ns[open_end] - market.close_ns[last]) / NS_PER_YEAR
        px = qm.ask(market.close[last], strike[open_end], tau, market.atm_iv[last], market.term_state[last],
                    **market.basis_args(last), **market.event_args(market.close_ns[last], expiry_ns[open_end]))
        exit_price[open_end] = px
        exit_fee[open_end] = trade_fee_usd(px, np.full(px.shape, market.close[last]), p.fee_rate, p.fee_cap)

    if p.exit_style == ExitStyle.TP_AND_ROLL and i < last:
        h_end = int(min(exit_idx.max(), last))
        bars = np.arange(i + 1, h_end + 1)
        if len(bars):
            c_ns = market.close_ns[bars]
            tau = (expiry_ns[:, None] - c_ns[None, :]) / NS_PER_YEAR  # (k, h)
            alive = (tau > 0) & (bars[None, :] < exit_idx[:, None])
            alive |= (bars[None, :] == exit_idx[:, None]) & open_end[:, None] & (tau > 0)
            spot = market.close[bars][None, :]
            mark = qm.mark(spot, strike[:, None], np.maximum(tau, 0.0), market.atm_iv[bars][None, :],
                           market.term_state[bars][None, :], **market.basis_args(bars, row=True),
                           **market.event_args(c_ns[None, :], expiry_ns[:, None]))
            hit = alive & (mark <= (1.0 - p.take_profit) * premium[:, None])
            any_hit = hit.any(axis=1)
            if any_hit.any():
                first = np.argmax(hit, axis=1)
                rows = np.nonzero(any_hit)[0]
                b = bars[first[rows]]
                tau_b = (expiry_ns[rows] - market.close_ns[b]) / NS_PER_YEAR
                px = qm.ask(market.close[b], strike[rows], tau_b, market.atm_iv[b], market.term_state[b],
                            **market.basis_args(b), **market.event_args(market.close_ns[b], expiry_ns[rows]))
                exit_idx[rows] = b
                exit_ns[rows] = market.close_ns[b]
                reason[rows] = ExitReason.TAKE_PROFIT.value
                settled_by[rows] = None
                exit_price[rows] = px
                exit_fee[rows] = trade_fee_usd(px, market.close[b], p.fee_rate, p.fee_cap)
                exit_spot[rows] = market.close[b]

    q = p.quantity
    fee = q * (entry_fee + exit_fee)
    pnl_vs_hodl = q * (premium - exit_price) - fee
    pnl = pnl_vs_hodl + q * (exit_spot - spot0)
    return Labels(exit_idx, exit_ns, reason, exit_price, exit_spot, fee, pnl_vs_hodl, pnl, settled_by)


def option_marks(market: Market, i: int, exit_idx: int, strike: float, expiry_ns: int, p: SimParams) -> np.ndarray:
    """Mark (USD per coin) of one short call at the closes of bars i..exit_idx; 0 once expired."""
    bars = np.arange(i, exit_idx + 1)
    tau = (expiry_ns - market.close_ns[bars]) / NS_PER_YEAR
    marks = p.quote_model.mark(market.close[bars], strike, np.maximum(tau, 0.0), market.atm_iv[bars],
                               market.term_state[bars], **market.basis_args(bars),
                               **market.event_args(market.close_ns[bars], expiry_ns))
    return np.where(tau > 0, marks, 0.0)


def max_drawdown_pct(values: np.ndarray) -> float:
    """Largest peak-to-trough fall of a value path, as a negative percentage (0.0 when it never falls)."""
    if len(values) == 0:
        return 0.0
    peak = np.maximum.accumulate(values)
    return float(np.min(values / peak - 1.0) * 100.0)


# -- the simulation ---------------------------------------------------------------------------------
def decision_mask(market: Market, timeframe: str, hour: int | None) -> np.ndarray:
    """Bars at whose close a new call may be sold (daily bars: every bar)."""
    if hour is None or timeframe == "1d":
        return np.ones(len(market), dtype=bool)
    close_hour = ((market.close_ns // 3_600_000_000_000) % 24).astype(int)
    return close_hour == hour


def _candidates_at(market: Market, i: int, policy: Policy, p: SimParams) -> Candidates:
    t = pd.Timestamp(market.close_ns[i], tz="UTC")
    spot = float(market.close[i])
    extra = {"events": market.events} if market.events is not None else {}  # custom quote models may not know them
    if market.basis is not None:
        extra["basis"] = float(market.basis[i])
    chain = dict(p.quote_model.chain(t, spot, float(market.atm_iv[i]), p.underlying, float(market.term_state[i]),
                                     **extra))
    chain["expiry_ns"] = to_ns(chain["expiry"])
    chain["score"] = premium_score(chain["bid_usd"], spot, chain["dte_days"], chain["delta"])
    mid = 0.5 * (chain["bid_usd"] + chain["ask_usd"])
    chain["premium_pct"] = chain["bid_usd"] / spot
    chain["spread_pct"] = np.where(mid > 0, (chain["ask_usd"] - chain["bid_usd"]) / np.where(mid > 0, mid, 1), np.nan)
    mask = policy.universe(chain)
    cands = {key: np.asarray(v)[mask] for key, v in chain.items()}
    if "instrument" not in cands:
        cands["instrument"] = np.asarray(instrument_name(p.underlying, cands["expiry_ns"].astype("datetime64[ns]"),
                                                         cands["strike"])).astype(str).reshape(-1)
    n = int(mask.sum())
    state = _state(market, i)
    for key, val in state.items():
        cands[key] = np.full(n, val)
    cands["iv_rv"] = cands["iv_ann"] / state["rv_ann"] if state["rv_ann"] > 0 else np.full(n, np.nan)
    return cands


def _state(market: Market, i: int) -> dict[str, float]:
    return {
        "rv_ann": float(market.rv[i]),
        "atm_iv_ann": float(market.atm_iv[i]),
        "ret_1d": float(market.ret_1d[i]),
        "ret_7d": float(market.ret_7d[i]),
        "ret_30d": float(market.ret_30d[i]),
    }


_CAND_COLS = ("instrument", "expiry", "strike", "dte_days", "delta", "iv_ann", "moneyness", "premium_pct",
              "spread_pct", "score", "atm_iv_ann", "rv_ann", "iv_rv", "ret_1d", "ret_7d", "ret_30d")


def simulate(market: Market, policy: Policy, p: SimParams, first_decision: int = 0,
             record_candidates: bool = True) -> SimOutput:
    """Run the covered call over the market bars from `first_decision` on (earlier bars are warm-up).

    The account holds `quantity` coins throughout and keeps premiums, buy-backs, settlements and fees
    as USD cash, so covered-call equity minus HODL equity is exactly the sum of the option legs' PnL.
    """
    n = len(market)
    q = p.quantity
    can_decide = decision_mask(market, p.timeframe, p.decision_hour_utc)
    decide_idx = np.nonzero(can_decide)[0]
    cash_delta = np.zeros(n)  # USD cash booked at each bar close (usd accounting)
    coin_delta = np.zeros(n)  # coin booked at each bar close (coin accounting, Deribit's own)
    opt_mark = np.zeros(n)  # short-call mark (USD, whole position) at each bar close
    trades: list[dict] = []
    examples: list[dict] = []
    cand_frames: list[dict[str, np.ndarray]] = []

    def next_decision(after: int) -> int:
        k = np.searchsorted(decide_idx, after, side="left")
        return int(decide_idx[k]) if k < len(decide_idx) else n

    i = next_decision(first_decision)
    while i < n - 1:
        spot = float(market.close[i])
        t_ns = int(market.close_ns[i])
        cands = _candidates_at(market, i, policy, p)
        state = _state(market, i)
        choice = policy.choose(cands, state)
        n_cand = len(cands["strike"])
        labels = label_candidates(market, i, cands, p) if n_cand else None
        ex: dict = {"decision_time": t_ns, "underlying": p.underlying, "spot": spot, **state,
                    "candidates": n_cand, "best_score": choice.best_score}
        k = choice.index
        if k is not None and labels is not None and not (
                np.isfinite(labels.pnl[k]) and np.isfinite(labels.exit_price_usd[k])):
            k, reason = None, SkipReason.TRADE_SIMULATION_FAILED.value
        else:
            reason = choice.reason
        if record_candidates and n_cand:
            cf = {c: cands[c] for c in _CAND_COLS}
            cf["expiry"] = cands["expiry_ns"]
            cf["decision_time"] = np.full(n_cand, t_ns, dtype=np.int64)
            cf["spot"] = np.full(n_cand, spot)
            cf["premium_coin"] = cands["bid_usd"] / spot
            cf["premium_usd"] = cands["bid_usd"]
            cf["mark_usd"] = cands["mark_usd"]
            cf["chosen"] = np.arange(n_cand) == (k if k is not None else -1)
            cf["reward"] = labels.pnl
            cf["pnl_vs_hodl"] = labels.pnl_vs_hodl
            cf["pnl_vs_hodl_pct"] = labels.pnl_vs_hodl / (q * spot)
            cf["label_end"] = labels.exit_ns
            cf["exit_reason"] = labels.exit_reason
            cand_frames.append(cf)

        if k is None:
            ex.update(action=Action.DO_NOTHING.value, reward=0.0, reason=None if reason is None else str(reason), label_end=t_ns)
            examples.append(ex)
            i = next_decision(i + 1)
            continue

        e = int(labels.exit_idx[k])
        strike = float(cands["strike"][k])
        expiry_ns = int(cands["expiry_ns"][k])
        marks = q * option_marks(market, i, e, strike, expiry_ns, p)
        opt_mark[i:e] = marks[:-1]  # the exit bar carries no open option
        premium = float(cands["bid_usd"][k])
        entry_fee = float(trade_fee_usd(np.array([premium]), np.array([spot]), p.fee_rate, p.fee_cap)[0])
        exit_cash = float(labels.pnl_vs_hodl[k]) - q * (premium - entry_fee)
        exit_spot = float(labels.exit_spot[k])
        entry_coin = q * (premium - entry_fee) / spot
        exit_coin = exit_cash / exit_spot  # the buy-back or settlement and its fee, paid in coin at that spot
        if p.accounting == "coin":
            coin_delta[i] += entry_coin
            coin_delta[e] += exit_coin
        else:
            cash_delta[i] += q * (premium - entry_fee)
            cash_delta[e] += exit_cash
        # Position value path: coins + cash from this trade - short call, from entry to exit.
        path = q * market.close[i:e + 1] + q * (premium - entry_fee) - np.append(marks[:-1], 0.0)
        path[-1] += exit_cash
        trade = {
            "trade_no": len(trades) + 1, "entry_time": t_ns, "exit_time": int(labels.exit_ns[k]),
            "instrument": str(cands["instrument"][k]), "strike": strike, "expiry": expiry_ns,
            "delta": float(cands["delta"][k]), "dte_days": float(cands["dte_days"][k]),
            "iv_ann": float(cands["iv_ann"][k]), "quantity": q, "spot_entry": spot,
            "spot_exit": float(labels.exit_spot[k]), "premium_coin": premium / spot, "premium_usd": q * premium,
            "exit_price_coin": float(labels.exit_price_usd[k]) / float(labels.exit_spot[k]),
            "exit_usd": q * float(labels.exit_price_usd[k]), "fee_usd": float(labels.fee_usd[k]),
            "pnl": float(labels.pnl[k]), "pnl_vs_hodl": float(labels.pnl_vs_hodl[k]),
            "max_drawdown_pct": max_drawdown_pct(path), "exit_reason": str(labels.exit_reason[k]),
            "settlement_source": labels.settlement_source[k], "premium_coin_total": q * premium / spot,
            "pnl_vs_hodl_coin": entry_coin + exit_coin,
            # the forward's basis this call was sold at (a basis history's value, else the calibration's)
            "basis_ann": float(market.basis[i]) if market.basis is not None else float(p.chain.basis_ann),
        }
        trades.append(trade)
        ex.update(action=Action.SELL_CALL.value, reward=trade["pnl"], reason=None, instrument=trade["instrument"],
                  delta=trade["delta"], strike=strike, dte=int((expiry_ns - t_ns) // NS_PER_DAY),
                  score=float(choice.scores[k]) if len(choice.scores) else float("nan"),
                  exit_style=p.exit_style, pnl_vs_hodl=trade["pnl_vs_hodl"],
                  max_drawdown_pct=trade["max_drawdown_pct"], label_end=trade["exit_time"])
        examples.append(ex)
        if trade["exit_reason"] == ExitReason.WINDOW_END:
            break
        if trade["exit_reason"] == ExitReason.TAKE_PROFIT:
            i = e  # the roll: decide again at once
        else:
            i = e if can_decide[e] else next_decision(e + 1)

    return SimOutput(
        trades=_frame(trades, ("entry_time", "exit_time", "expiry")),
        examples=_frame(examples, ("decision_time", "label_end")),
        candidates=_frame_concat(cand_frames, ("decision_time", "label_end", "expiry")),
        equity=_equity(market, first_decision, q, cash_delta, opt_mark, coin_delta, p.accounting),
    )


def _equity(market: Market, first: int, q: float, cash_delta: np.ndarray, opt_mark: np.ndarray,
            coin_delta: np.ndarray | None = None, accounting: str = "usd") -> pd.DataFrame:
    """Mark-to-market curve: a starting point at the first bar's open, then every bar close, in USD and in coin.

    usd accounting keeps premiums as USD cash; coin accounting (as Deribit books them) keeps them as coin, so the
    position's coin count moves and its USD value is coins x spot. Either way covered call minus HODL is the sum
    of the option legs in the accounting's unit.
    """
    sl = slice(first, len(market))
    close = market.close[sl]
    start_ts = pd.Timestamp(market.open_ns[first], tz="UTC")
    idx = pd.DatetimeIndex([start_ts]).append(pd.DatetimeIndex(market.close_ns[sl], tz="UTC"))
    spot = np.concatenate([[market.open[first]], close])
    if accounting == "coin" and coin_delta is not None:
        coins = np.concatenate([[q], q + np.cumsum(coin_delta[sl]) - opt_mark[sl] / close])
        cc = coins * spot
    else:
        cash = np.cumsum(cash_delta[sl])
        cc = np.concatenate([[q * market.open[first]], q * close + cash - opt_mark[sl]])
        coins = cc / spot
    hodl = q * spot
    out = pd.DataFrame({"spot": spot, "covered_call": cc, "hodl": hodl, "covered_call_coin": coins,
                        "hodl_coin": np.full(len(spot), q)}, index=idx)
    out.index.name = "ts"
    return out


def _frame(rows: list[dict], ts_cols: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in ts_cols:
        if c in df.columns:
            df[c] = pd.to_datetime(df[c].astype("int64"), utc=True)
    return df


def _frame_concat(parts: list[dict[str, np.ndarray]], ts_cols: tuple[str, ...]) -> pd.DataFrame:
    """Join per-decision column arrays once at the end (no DataFrame per decision)."""
    cols = ["decision_time", *_CAND_COLS, "spot", "premium_coin", "premium_usd", "mark_usd", "chosen", "reward",
            "pnl_vs_hodl", "pnl_vs_hodl_pct", "label_end", "exit_reason"]
    if not parts:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in cols})
    for c in ts_cols:
        df[c] = pd.to_datetime(df[c].astype("int64"), utc=True)
    return df
