"""The option chain the engine lists at one moment: quotes, smiles, the ATM term structure and a real snapshot nearby.

`chain_at` builds exactly what a backtest decision at that moment would see: the last bar closed by then, the IV
input and term state known at its close, the calibration the run would price with and, on real data, the scheduled
events ahead. A stored Deribit snapshot within `SNAPSHOT_WINDOW` of the moment comes along for comparison.

>>> view = chain_at("BTC", "2024-03-01T08:00", timeframe="1d")
>>> view.t.isoformat(), view.source, len(view.term) > 5
('2024-03-01T00:00:00+00:00', 'synthetic', True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.backtest import BacktestConfig, build_market, load_market_inputs
from covcall.calibration import chain_for, expiry_table
from covcall.chain import atm_iv_at, build_chain
from covcall.chains import chain_call_quotes
from covcall.dates import parse_instant
from covcall.errors import CovcallError

if TYPE_CHECKING:
    from covcall.store import Store

SNAPSHOT_WINDOW = pd.Timedelta(hours=6)
LOOKBACK_DAYS = 7  # bars before the moment in the window (the warm-up of vol estimates comes on top)
QUOTE_COLUMNS = ["instrument", "expiry", "kind", "dte_days", "strike", "moneyness", "bid_usd", "ask_usd", "mark_usd",
                 "iv_ann", "delta", "bid_coin", "ask_coin", "mark_coin"]


@dataclass
class ChainView:
    """One moment's modelled chain, its inputs and (when stored) the real chain nearby."""

    underlying: str
    at: pd.Timestamp  # the moment asked for
    t: pd.Timestamp  # the close of the last bar known then (what the chain is built at)
    source: str
    spot: float
    atm_input: float  # the 30-day IV input known at t (index or proxy)
    state: float  # the term structure's state (short realised vol / input)
    calibration_id: str | None
    quotes: pd.DataFrame  # QUOTE_COLUMNS, one row per listed call
    term: pd.DataFrame  # expiry, dte_days, atm_iv (model), real_atm_iv (when a snapshot is near)
    events: pd.DataFrame  # scheduled events in the next 30 days that the prices carry
    snapshot_id: str | None = None
    real: pd.DataFrame = field(default_factory=pd.DataFrame)  # the snapshot's calls: expiry, strike, mark_iv, ...
    basis_ann: float = 0.0  # the forward's basis at t (a stored basis history, else the calibration's)
    basis_source: str = "calibrated"  # or "history": where basis_ann came from

    def to_dict(self) -> dict[str, Any]:
        return {"underlying": self.underlying, "at": self.at.isoformat(), "t": self.t.isoformat(),
                "source": self.source, "spot": self.spot, "atm_input": self.atm_input, "state": self.state,
                "calibration_id": self.calibration_id, "snapshot_id": self.snapshot_id,
                "basis_ann": self.basis_ann, "basis_source": self.basis_source,
                "events": self.events.assign(ts=self.events["ts"].map(pd.Timestamp.isoformat)).to_dict("records"),
                "term": self.term.to_dict("records"), "quotes": self.quotes.to_dict("records"),
                "real": self.real.to_dict("records")}


def chain_at(underlying: str, at: Any, *, source: str = "synthetic", timeframe: str = "1h",
             iv_source: str = "auto", seed: int = 7, calibration: str = "auto",
             store: Store | None = None) -> ChainView:
    """The chain a backtest on `source` would list at `at` (UTC; a bare date means its midnight)."""
    at = parse_instant(at, "--at")
    u = underlying.strip().upper()
    cfg = BacktestConfig.parse({"underlying": u, "timeframe": timeframe, "source": source, "iv_source": iv_source,
                                "seed": seed, "calibration": calibration,
                                "start": (at - pd.Timedelta(days=LOOKBACK_DAYS)).date(), "end": at.date()})
    chain, cal_id = chain_for(cfg.chain, cfg.calibration, u, store)
    cfg = cfg.model_copy(update={"chain": chain})
    data = load_market_inputs(cfg, store, fine=False)
    market, _ = build_market(cfg, data.candles, data.iv, None, data.events, data.basis)
    i = int(np.searchsorted(market.close_ns, at.value, side="right")) - 1
    if i < 0:
        raise CovcallError(f"no {u} {timeframe} bar closed by {at:%Y-%m-%d %H:%M} UTC on source {source}")
    t = pd.Timestamp(int(market.close_ns[i]), tz="UTC")
    spot, atm, state = float(market.close[i]), float(market.atm_iv[i]), float(market.term_state[i])
    # the forward's basis known at t: a stored history's value moves it, as in the engine
    if market.basis is not None:
        chain = chain.model_copy(update={"basis_ann": float(market.basis[i])})
    c = build_chain(t, spot, atm, u, chain, cfg.rate, state=state, events=market.events)
    quotes = pd.DataFrame({k: c[k] for k in QUOTE_COLUMNS if k in c})
    quotes["mark_coin"] = c["mark_coin"]
    quotes["expiry"] = pd.to_datetime(quotes["expiry"]).dt.tz_localize("UTC")
    exp = quotes.drop_duplicates("expiry")[["expiry", "dte_days"]].reset_index(drop=True)
    ev = market.event_args(t.value, exp["expiry"].astype("int64").to_numpy()) if market.events is not None else {}
    exp["atm_iv"] = atm_iv_at(atm, exp["dte_days"].to_numpy() / 365.0, chain, state, **ev)
    upcoming = pd.DataFrame(columns=["ts", "kind", "label"])
    if data.events is not None and len(data.events):
        e = data.events
        within = (e["ts"] > t) & (e["ts"] <= t + pd.Timedelta(days=30))
        upcoming = e.loc[within, ["ts", "kind", "label"]].reset_index(drop=True)
    view = ChainView(u, at, t, source, spot, atm, state, cal_id, quotes, exp, upcoming,
                     basis_ann=float(chain.basis_ann), basis_source="calibrated" if market.basis is None else "history")
    if store is not None:
        _attach_snapshot(view, store)
    return view


def _attach_snapshot(view: ChainView, store: Store) -> None:
    snaps = store.list_snapshots(view.underlying)
    if snaps.empty:
        return
    gap = (snaps["ts"] - view.at).abs()
    j = int(gap.to_numpy().argmin())
    if gap.iloc[j] > SNAPSHOT_WINDOW:
        return
    sid = str(snaps["snapshot_id"].iloc[j])
    quotes = store.read_chain([sid])
    calls = chain_call_quotes(quotes)
    view.snapshot_id = sid
    view.real = calls[["expiry", "strike", "dte_days", "mark_iv", "mark_coin", "bid_coin", "ask_coin",
                       "forward"]].reset_index(drop=True)
    real_atm = expiry_table(quotes)
    if len(real_atm):
        by = dict(zip(pd.to_datetime(real_atm["expiry"], utc=True), real_atm["atm_iv"], strict=True))
        view.term["real_atm_iv"] = view.term["expiry"].map(by)


def decision_candidates(store: Store, run_id: str, decision_time: Any = None) -> dict[str, Any]:
    """Every candidate a run's policy saw at one decision (the first at or after `decision_time`), with its score
    and which one it sold; the run must have recorded its candidates."""
    cands = store.read_candidates([run_id])
    if cands.empty:
        raise CovcallError(f"run {run_id!r} has no recorded candidates; rerun it with candidates recorded")
    times = cands["decision_time"].drop_duplicates().sort_values().reset_index(drop=True)
    t = times.iloc[0]
    if decision_time is not None:
        want = parse_instant(decision_time, "--at")
        later = times[times >= want]
        if later.empty:
            raise CovcallError(f"run {run_id!r} decided from {times.iloc[0]:%Y-%m-%d %H:%M} to "
                               f"{times.iloc[-1]:%Y-%m-%d %H:%M} UTC; nothing at or after {want:%Y-%m-%d %H:%M}")
        t = later.iloc[0]
    at = cands[cands["decision_time"] == t]
    cols = ["instrument", "expiry", "strike", "dte_days", "delta", "iv_ann", "premium_usd", "premium_pct", "spread_pct",
            "score", "chosen", "pnl_vs_hodl", "exit_reason"]
    table = at[[c for c in cols if c in at.columns]].sort_values(["expiry", "strike"]).reset_index(drop=True)
    sold = table[table["chosen"].fillna(False).astype(bool)]
    return {"decision_time": t, "times": times, "candidates": table,
            "sold": None if sold.empty else sold.iloc[0].to_dict()}
