"""The backtest API: `BacktestConfig` in, `BacktestResult` out (simulate, measure, persist, export)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from covcall.basis import basis_known_at, load_basis
from covcall.calibration import chain_for, chain_overrides
from covcall.chain import ChainParams
from covcall.dataset import check_export_dir, export_run_files, persist_run, shape_examples
from covcall.dates import parse_date
from covcall.engine import Market, SimOutput, SimParams, simulate
from covcall.enums import Action, ExitStyle
from covcall.errors import CovcallError, SpecError, did_you_mean
from covcall.events import EventVariance, calendar_for
from covcall.jsonutil import plain
from covcall.market import load_candles, load_iv
from covcall.metrics import backtest_metrics
from covcall.policies import FixedDeltaPolicy, HodlPolicy, Policy, RulePolicy
from covcall.timeframes import BARS_PER_DAY, BARS_PER_YEAR, TIMEFRAMES
from covcall.version import code_version
from covcall.volatility import atm_iv_series, realized_vol

if TYPE_CHECKING:
    from covcall.store import Store

Progress = Callable[[float, str], None]
WARMUP_DAYS = 60


class BacktestConfig(BaseModel):
    """Every setting of one backtest; field names match the CLI flags (`--exit-style` -> exit_style).

    >>> BacktestConfig(underlying="ETH", start="2023-01-01", end="2023-03-31").timeframe
    '1d'
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True, allow_inf_nan=False)

    underlying: str = Field("BTC", description="Coin held and written on (BTC, ETH or an imported symbol).")
    timeframe: Literal["1h", "4h", "1d"] = "1d"
    start: date = Field(date(2024, 1, 1), description="First day of the window (inclusive).")
    end: date = Field(date(2024, 12, 31), description="Last day of the window (inclusive).")
    source: Literal["synthetic", "store", "ccxt"] = "synthetic"
    iv_source: Literal["auto", "realized", "dvol"] = Field("auto", description=(
        "The 30-day ATM implied vol at each decision. auto: the IV index (DVOL) where one is stored for the "
        "underlying (the synthetic market has its own), the realised-vol proxy before it starts and where there is "
        "none; dvol: the same, but an error when none is stored; realized: always the proxy (trailing realised vol "
        "x the calibrated premium)."))
    exit_style: ExitStyle = ExitStyle.HOLD_TO_EXPIRY
    accounting: Literal["usd", "coin"] = Field("usd", description=(
        "usd: premiums and buy-backs are USD cash; coin: booked in the coin as Deribit does (the position's coin "
        "count moves). Metrics come in USD and in coin terms either way."))
    settlement: Literal["auto", "proxy"] = Field("auto", description=(
        "Daily bars: 'auto' settles at the 08:00 UTC close of finer bars of the same series when they exist "
        "(stored 4h/1h, or the synthetic market's 1h), else open + 8/24 (close - open); 'proxy' always uses that."))
    basis: Literal["auto", "calibrated"] = Field("auto", description=(
        "The forward's basis: 'auto' prices each decision on real data (store, ccxt) with the stored basis history "
        "known then (chain snapshots, futures, imported files; at most 7 days old), else the calibration's one "
        "number; 'calibrated' always uses the calibration's number (chain.basis_ann)."))
    take_profit: float = Field(0.5, gt=0, lt=1, description="tp_and_roll: buy back when the mark is (1 - tp) x premium.")
    delta_min: float = Field(0.10, ge=0, le=1)
    delta_max: float = Field(0.30, ge=0, le=1)
    dte_min_days: float = Field(5.0, ge=0)
    dte_max_days: float = Field(30.0, gt=0, le=400)
    threshold: float = Field(0.10, ge=-100, le=100,
                             description="Minimum score to sell (see covcall.policies.premium_score).")
    decision_hour_utc: int | None = Field(8, ge=0, le=23, description="Hour of day new calls are sold (1h/4h).")
    quantity: float = Field(1.0, gt=0, le=1_000_000, description="Coins held and calls written.")
    fee_rate: float = Field(0.0003, ge=0, le=0.01)
    fee_cap: float = Field(0.125, ge=0, le=1)
    settlement_fee_rate: float = Field(0.00015, ge=0, le=0.01)
    rate: float = Field(0.0, ge=-0.1, le=0.5, description="Risk-free rate for pricing.")
    policy: Literal["rule", "model", "hodl", "fixed_delta"] = "rule"
    target_delta: float = Field(0.10, gt=0, lt=1, description="fixed_delta: delta to sell.")
    target_dte_days: float = Field(7.0, gt=0, le=400, description="fixed_delta: tenor to sell.")
    model_id: str | None = Field(None, description="model policy: id of a trained model.")
    model_threshold: float = Field(0.0, ge=-100, le=100,
                                   description="model policy: skip when the best prediction is below this.")
    seed: int = Field(7, ge=0, le=2**32 - 1, description="Seed of the synthetic market.")
    exchange: str = "binance"
    chain: ChainParams = Field(default_factory=ChainParams)
    calibration: str = Field("auto", max_length=80, description=(
        "Chain calibration to price with: 'auto' (the newest stored for the underlying, else the one shipped with "
        "covcall), 'default' (shipped), 'none' (plain ChainParams) or a stored id; fields set in `chain` win."))
    label: str | None = Field(None, description="Free-text name shown in run lists.")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _strict_date(cls, value: Any, info: Any) -> date:
        return parse_date(value, info.field_name)

    @model_validator(mode="after")
    def _check(self) -> BacktestConfig:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}; swap them")
        if self.delta_min >= self.delta_max:
            raise ValueError(f"delta_min {self.delta_min} must be below delta_max {self.delta_max}")
        if self.dte_min_days >= self.dte_max_days:
            raise ValueError(f"dte_min_days {self.dte_min_days} must be below dte_max_days {self.dte_max_days}")
        if self.policy == "model" and not self.model_id:
            raise ValueError("policy 'model' needs model_id (train one with `covcall train`)")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any], defaults: dict[str, Any] | None = None) -> BacktestConfig:
        """Build from a plain dict with errors that name the field and the fix; `defaults` (from
        `covcall.config.run_defaults`) fill the fields the dict does not set."""
        if not isinstance(data, dict):
            raise SpecError(f"a backtest config must be an object of settings; got {type(data).__name__}")
        try:
            return cls(**{**(defaults or {}), **data})
        except ValidationError as err:
            raise SpecError(config_error_line(err, cls)) from None

    def config_hash(self) -> str:
        payload = self.model_dump(mode="json", exclude={"label"})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def max_label_days(self) -> float:
        """Longest a decision's label can run: the longest tenor this strategy may sell."""
        return self.target_dte_days + fixed_delta_tolerance(self) if self.policy == "fixed_delta" else self.dte_max_days


def fixed_delta_tolerance(config: BacktestConfig) -> float:
    """How far (days) a fixed-delta baseline's expiry may sit from its target tenor: monthlies need more room."""
    return max(4.0, 0.25 * config.target_dte_days)


def config_error_line(err: ValidationError, model: type[BaseModel], nested: str | None = None) -> str:
    """The first validation error as one line. `nested`: the spec key backtest settings go under ("base" in a
    batch spec, "strategy" in a walk spec), named when one is given at the top level by mistake."""
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"]) or "config"
    if e["type"] == "extra_forbidden":
        if nested and len(e["loc"]) == 1 and loc in BacktestConfig.model_fields:
            return (f"unknown setting '{loc}': it is a backtest setting, which goes under \"{nested}\" "
                    f"(\"{nested}\": {{\"{loc}\": ...}})")
        return f"unknown setting '{loc}'{did_you_mean(loc, model.model_fields)}"
    msg = e["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}" if e["loc"] else msg


@dataclass
class BacktestResult:
    """One finished backtest: tables as DataFrames plus its metrics and where it was saved."""

    run_id: str
    config: BacktestConfig
    metrics: dict[str, float]
    trades: pd.DataFrame
    examples: pd.DataFrame
    candidates: pd.DataFrame
    equity: pd.DataFrame
    data_span: tuple[pd.Timestamp, pd.Timestamp]
    data_hash: str
    exports: dict[str, str] = field(default_factory=dict)
    calibration_id: str | None = None
    basis_history: bool = False  # a stored basis history moved the forward (covcall.basis)

    def basis_used(self) -> dict[str, Any]:
        """Which forward basis the run's calls were sold at: a stored history (covcall.basis) or the calibration's
        number, and the range over its trades (per year)."""
        b = self.trades["basis_ann"].astype(float) if "basis_ann" in self.trades and len(self.trades) else None
        return {"setting": self.config.basis, "source": "history" if self.basis_history else "calibrated",
                "calibrated_ann": float(self.config.chain.basis_ann),
                "trade_min_ann": float(b.min()) if b is not None else None,
                "trade_max_ann": float(b.max()) if b is not None else None}

    def summary(self) -> dict[str, Any]:
        """The JSON the CLI prints: run id, metrics, decision counts and export paths."""
        ex = self.examples
        counts = {
            "decisions": int(len(ex)),
            "sell_call": int((ex["action"] == Action.SELL_CALL).sum()) if len(ex) else 0,
            "do_nothing": int((ex["action"] == Action.DO_NOTHING).sum()) if len(ex) else 0,
            "trades": int(len(self.trades)),
            "candidates": int(len(self.candidates)),
        }
        return {"run_id": self.run_id, "config_hash": self.config.config_hash(), "calibration": self.calibration_id,
                "accounting": self.config.accounting, "basis": self.basis_used(),
                "metrics": plain(self.metrics),
                "counts": counts, "exports": self.exports,
                "data_span": [self.data_span[0].isoformat(), self.data_span[1].isoformat()]}


_ID_COUNTER = itertools.count(1)


def new_id(prefix: str = "", tag: str = "") -> str:
    """A readable unique id: UTC creation time, process id and a per-process counter (no randomness).

    Ids are bookkeeping, never simulation input: two runs of one config give the same results, not the same id.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    middle = f"{tag}-" if tag else ""
    return f"{prefix}{stamp}-{middle}{os.getpid() % 100000:05d}{next(_ID_COUNTER):03d}"


def new_run_id(config: BacktestConfig) -> str:
    """Run id: creation time, config hash prefix, process and counter."""
    return new_id(tag=config.config_hash()[:6])


def make_policy(config: BacktestConfig, store: Store | None = None) -> Policy:
    """The policy a config asks for; a model policy's model is read from `store` (by the caller of a sweep, so
    that units running elsewhere receive the policy itself: a worker never opens the store)."""
    if config.policy == "rule":
        return RulePolicy(config.delta_min, config.delta_max, config.dte_min_days, config.dte_max_days,
                          config.threshold)
    if config.policy == "hodl":
        return HodlPolicy()
    if config.policy == "fixed_delta":
        return FixedDeltaPolicy(config.target_delta, config.target_dte_days, fixed_delta_tolerance(config))
    if store is None:
        raise SpecError("policy 'model' needs a store to load the model from")
    from covcall.policies.model import load_model_policy  # LightGBM takes seconds to import: model runs only

    return load_model_policy(store, config.model_id or "", threshold=config.model_threshold,
                             dte_range=(config.dte_min_days, config.dte_max_days),
                             delta_range=(config.delta_min, config.delta_max))


FINE_TIMEFRAMES = ("4h", "1h")


def load_fine_closes(config: BacktestConfig, store: Store | None) -> pd.DataFrame | None:
    """Finer bars of the same series, for settling daily-bar expiries at 08:00 UTC (None: use the proxy).

    Only bars already there are used: the synthetic market's own hourly path, or 4h / 1h candles in the store
    for source 'store' / 'ccxt' (nothing is fetched for this).
    """
    if config.timeframe != "1d" or config.settlement != "auto":
        return None
    start = pd.Timestamp(config.start) - pd.Timedelta(days=WARMUP_DAYS)
    for tf in FINE_TIMEFRAMES:
        try:
            if config.source == "synthetic":
                fine = load_candles(config.underlying, tf, start.date(), config.end, source="synthetic",
                                    seed=config.seed)
            elif store is not None:
                fine = load_candles(config.underlying, tf, start.date(), config.end, source="store", store=store)
            else:
                return None
        except CovcallError:
            continue
        if len(fine):
            return fine
    return None


def build_market(config: BacktestConfig, candles: pd.DataFrame, iv: pd.DataFrame | None,
                 fine: pd.DataFrame | None = None, events: pd.DataFrame | None = None,
                 basis: pd.DataFrame | None = None) -> tuple[Market, int]:
    """Arrays for the engine (warm-up bars included) and the index of the first bar inside the window.

    `fine` (finer bars of the same series) lets daily-bar expiries settle at the real 08:00 UTC close; `events`
    (a calendar, covcall.events) prices scheduled releases into the expiries after them; `basis` (observations
    ts, basis_ann; covcall.basis) gives each bar the forward basis known at its close (with basis 'auto').
    """
    ts = pd.DatetimeIndex(pd.to_datetime(candles["ts"], utc=True))
    start = pd.Timestamp(config.start, tz="UTC")
    end_excl = pd.Timestamp(config.end, tz="UTC") + pd.Timedelta(days=1)
    keep = ts < end_excl
    ts = ts[keep]
    close = candles["close"].to_numpy(float)[keep]
    opn = candles["open"].to_numpy(float)[keep]
    first = int(np.searchsorted(ts.asi8, start.value, side="left"))
    if first >= len(ts) - 1:
        raise SpecError(f"no {config.underlying} {config.timeframe} bars between {config.start} and {config.end}")
    bpd = BARS_PER_DAY[config.timeframe]
    bpy = BARS_PER_YEAR[config.timeframe]
    window = int(round(config.chain.rv_window_days * bpd))
    rv = realized_vol(close, bpy, window)
    atm = atm_iv_series(ts, close, config.timeframe, config.chain, iv=iv, iv_source=config.iv_source)

    def past_return(days: int) -> np.ndarray:
        lag = days * bpd
        out = np.full(len(close), np.nan)
        out[lag:] = close[lag:] / close[:-lag] - 1.0
        return out

    bar_ns = TIMEFRAMES[config.timeframe].ns
    # The term structure's state: short-horizon realised vol over the 30-day input, both known at each close.
    short = realized_vol(close, bpy, max(2, int(round(config.chain.term_state_days * bpd))))
    atm = np.asarray(atm, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        state = np.where(np.isfinite(short) & (atm > 0), short / atm, 1.0)
    market = Market(ts=ts, open=opn, close=close, atm_iv=atm, rv=np.asarray(rv, float),
                    ret_1d=past_return(1), ret_7d=past_return(7), ret_30d=past_return(30), bar_ns=bar_ns,
                    term_state=state, events=EventVariance.build(events, config.underlying, config.chain))
    if basis is not None and len(basis) and config.basis == "auto":
        known = basis_known_at(basis, market.close_ns, float("nan"))
        # a history that reaches no bar leaves the run on the calibration's number (and says so)
        if np.isfinite(known).any():
            market.basis = np.where(np.isfinite(known), known, float(config.chain.basis_ann))
    if fine is not None and len(fine):
        fts = pd.DatetimeIndex(pd.to_datetime(fine["ts"], utc=True)).as_unit("ns")
        step = int(np.median(np.diff(fts.asi8))) if len(fts) > 1 else bar_ns
        market.fine_close_ns = fts.asi8 + step
        market.fine_close = fine["close"].to_numpy(float)
    return market, first


def sim_params(config: BacktestConfig) -> SimParams:
    return SimParams(
        underlying=config.underlying, timeframe=config.timeframe, exit_style=config.exit_style,
        take_profit=config.take_profit, quantity=config.quantity, fee_rate=config.fee_rate,
        fee_cap=config.fee_cap, settlement_fee_rate=config.settlement_fee_rate, rate=config.rate,
        decision_hour_utc=config.decision_hour_utc, chain=config.chain, accounting=config.accounting,
    )


@dataclass
class MarketInputs:
    """The market data one or more runs need, loaded once by the driver and sent to the workers once."""

    candles: pd.DataFrame
    iv: pd.DataFrame | None
    fine: pd.DataFrame | None
    events: pd.DataFrame | None = None
    basis: pd.DataFrame | None = None  # the stored basis history (covcall.basis), None: the calibration's number


def backtest_unit(cfg: BacktestConfig, data: MarketInputs, policy: Policy | None = None,
                  record_candidates: bool = True) -> BacktestResult:
    """One backtest as a unit of work (covcall.compute): a pure function of the config, the market data and an
    optional policy object (a model policy carries its model); it never opens the store."""
    return run_backtest(cfg, candles=data.candles, iv=data.iv, fine=data.fine, events=data.events, policy=policy,
                        record_candidates=record_candidates, basis=data.basis)


def settings_of_run(store: Store, run_id: str) -> dict[str, Any]:
    """A stored run's settings as BacktestConfig fields, to change one and run again (`covcall backtest --from-run`,
    the Backtest page's "Put this run's settings in the form").

    The label is dropped (a new run names itself). The run's config holds the whole chain surface it priced with;
    only the fields the user set beyond its calibration are kept, and the calibration is pinned to the one the run
    recorded, so unchanged settings price exactly as the run did even after a newer calibration was stored.
    """
    run = store.get_run(run_id)
    if run is None:
        known = list(store.list_runs()["run_id"])
        raise CovcallError(f"no run {run_id!r}{did_you_mean(run_id, known)}; list them with `covcall runs`")
    cfg = {k: v for k, v in (run.get("config") or {}).items() if k != "label"}
    cal_id = run.get("calibration_id") if isinstance(run.get("calibration_id"), str) else None
    underlying = str(cfg.get("underlying", "BTC"))
    cfg["chain"] = chain_overrides(cfg.get("chain") or {}, cal_id, underlying, store)
    if cfg.get("calibration") not in (None, "none"):
        cfg["calibration"] = "none" if cal_id is None else (
            "default" if cal_id == f"default-{underlying.upper()}" else cal_id)
    return cfg


def load_events(config: BacktestConfig, store: Store | None = None) -> pd.DataFrame | None:
    """The scheduled-event calendar of a config's underlying for real data (packaged + stored events); None on the
    synthetic market, whose prices have no scheduled releases in them."""
    if config.source == "synthetic":
        return None
    return calendar_for(config.underlying, store)


def iv_index_share(config: BacktestConfig, iv: pd.DataFrame | None, close_ns: np.ndarray) -> float | None:
    """The share of the run's bars whose ATM implied vol came from the IV index (known by the bar's close), the
    rest from the realised-vol proxy; None when the run asked for the proxy (iv_source 'realized'). With 'auto'
    it says what the run found: 1.0 an index throughout, 0.0 none stored, between: the proxy before it starts.

    >>> ts = pd.to_datetime(["2024-01-03"], utc=True)
    >>> iv_index_share(BacktestConfig(), pd.DataFrame({"ts": ts, "iv_ann": [0.5]}),
    ...                pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC").as_unit("ns").asi8)
    0.5
    """
    if config.iv_source == "realized":
        return None
    if iv is None or not len(iv) or not len(close_ns):
        return 0.0
    first_known = pd.to_datetime(iv["ts"], utc=True).min().value
    return float(np.mean(np.asarray(close_ns) >= first_known))


def describe_iv(iv_source: str, share: float | None) -> str:
    """Where a run's implied vols came from, in words (the CLI and the run view say the same).

    >>> describe_iv("auto", 1.0), describe_iv("auto", 0.0)
    ('IV index throughout', 'realised-vol proxy throughout (no IV index stored for this underlying)')
    >>> describe_iv("dvol", 0.25)
    'IV index on 25 % of bars (the realised-vol proxy before the index starts)'
    """
    if iv_source == "realized":
        return "realised-vol proxy (iv_source realized)"
    if share is None:  # a run stored before runs recorded it
        return f"iv_source {iv_source}"
    if share >= 1.0:
        return "IV index throughout"
    if share <= 0.0:
        return "realised-vol proxy throughout (no IV index stored for this underlying)"
    return f"IV index on {100 * share:.0f} % of bars (the realised-vol proxy before the index starts)"


def load_basis_history(config: BacktestConfig, store: Store | None = None) -> pd.DataFrame | None:
    """The stored basis history of a config's underlying for real data with basis 'auto'; None otherwise (the
    synthetic market has no futures: it prices with the calibration's number)."""
    if config.source == "synthetic" or config.basis != "auto":
        return None
    return load_basis(config.underlying, store)


def load_market_inputs(config: BacktestConfig, store: Store | None = None, fine: bool = True) -> MarketInputs:
    """Everything `backtest_unit` needs for configs sharing this one's data (series, window and settlement)."""
    candles, iv = load_inputs(config, store)
    return MarketInputs(candles, iv, load_fine_closes(config, store) if fine else None, load_events(config, store),
                        load_basis_history(config, store))


def load_inputs(config: BacktestConfig, store: Store | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Candles (with warm-up) and the IV index for a config, from its data source."""
    warm_start = pd.Timestamp(config.start) - pd.Timedelta(days=WARMUP_DAYS)
    candles = load_candles(config.underlying, config.timeframe, warm_start.date(), config.end,
                           source=config.source, store=store, seed=config.seed, exchange=config.exchange)
    iv = None
    if config.iv_source in ("dvol", "auto"):
        iv = load_iv(config.underlying, warm_start.date(), config.end, source=config.source, store=store,
                     seed=config.seed)
        if (iv is None or iv.empty) and config.iv_source == "auto":
            iv = None  # no index stored for this underlying: the realised-vol proxy throughout
        elif iv is None or iv.empty:
            raise SpecError(
                f"iv_source 'dvol' needs an IV series for {config.underlying} covering {config.start}..{config.end}; "
                "import one with `covcall data import-iv` or use iv_source 'realized'"
            )
    return candles, iv


def data_hash(candles: pd.DataFrame, iv: pd.DataFrame | None, basis: pd.DataFrame | None = None) -> str:
    h = hashlib.sha256(pd.util.hash_pandas_object(candles[["ts", "close"]], index=False).values.tobytes())
    if iv is not None and len(iv):
        h.update(pd.util.hash_pandas_object(iv[["ts", "iv_ann"]], index=False).values.tobytes())
    if basis is not None and len(basis):
        h.update(pd.util.hash_pandas_object(basis[["ts", "basis_ann"]], index=False).values.tobytes())
    return h.hexdigest()[:16]


def run_backtest(
    config: BacktestConfig | dict[str, Any],
    *,
    store: Store | None = None,
    export_dir: str | Path | None = None,
    progress: Progress | None = None,
    candles: pd.DataFrame | None = None,
    iv: pd.DataFrame | None = None,
    policy: Policy | None = None,
    batch_id: str | None = None,
    record_candidates: bool = True,
    defaults: dict[str, Any] | None = None,
    fine: pd.DataFrame | None = None,
    events: pd.DataFrame | None = None,
    basis: pd.DataFrame | None = None,
) -> BacktestResult:
    """Run one covered-call backtest; persist it when a store is given; export CSV + JSONL when export_dir is.

    `candles`/`iv`/`events`/`basis` override the config's data source (for tests and notebooks; events and the
    basis history load with the candles: given candles and neither, no scheduled events are priced and the
    forward keeps the calibration's basis); `policy` overrides the
    config's policy (the walker passes trained model policies this way). `defaults`
    (`covcall.run_defaults(covcall.load_settings())`) fill the fields a dict config leaves out.

    A quarter of weekly 10-30 delta calls on the synthetic market (seed 7):

    >>> res = run_backtest({"underlying": "BTC", "start": "2023-01-01", "end": "2023-03-31"})
    >>> len(res.trades), sorted(set(res.trades.exit_reason))
    (12, ['expired_otm', 'settled_itm'])
    >>> eq = res.equity  # covered call minus HODL at the end is exactly the option legs' PnL
    >>> bool(round(eq.covered_call.iloc[-1] - eq.hodl.iloc[-1], 2) == round(res.trades.pnl_vs_hodl.sum(), 2))
    True
    """
    if isinstance(config, dict):
        config = BacktestConfig.parse(config, defaults)
    if export_dir is not None:
        check_export_dir(export_dir)
    chain, calibration_id = chain_for(config.chain, config.calibration, config.underlying, store)
    config = config.model_copy(update={"chain": chain})
    say = progress or (lambda f, m: None)
    say(0.05, "loading market data")
    if candles is None:
        candles, loaded_iv = load_inputs(config, store)
        iv = iv if iv is not None else loaded_iv
        events = events if events is not None else load_events(config, store)
        basis = basis if basis is not None else load_basis_history(config, store)
    if fine is None:
        fine = load_fine_closes(config, store)
    market, first = build_market(config, candles, iv, fine, events, basis)
    if policy is None:
        policy = make_policy(config, store)
    say(0.2, "simulating")
    out: SimOutput = simulate(market, policy, sim_params(config), first_decision=first,
                              record_candidates=record_candidates)
    say(0.8, "measuring")
    metrics = backtest_metrics(out.equity, out.trades, config.timeframe, config.quantity, rf_ann=config.rate)
    metrics["iv_index_share"] = iv_index_share(config, iv, market.close_ns[first:])
    run_id = new_run_id(config)
    out.examples["timeframe"] = config.timeframe
    examples = shape_examples(out.examples) if len(out.examples) else shape_examples(
        pd.DataFrame(columns=["action"]))
    examples["run_id"] = run_id
    out.trades.insert(0, "run_id", run_id)
    cands = out.candidates
    cands.insert(0, "run_id", run_id)
    cands["exit_style"] = config.exit_style
    cands["underlying"] = config.underlying
    cands["timeframe"] = config.timeframe
    out.examples = examples
    span = (market.ts[first], market.ts[-1])
    result = BacktestResult(run_id, config, metrics, out.trades, out.examples, out.candidates, out.equity,
                            span, data_hash(candles, iv, basis if market.basis is not None else None),
                            calibration_id=calibration_id, basis_history=market.basis is not None)
    # Saved first, exported second: an export never describes a run the database does not have, and a failed
    # export loses nothing (the run stays saved; `covcall export --run ID` writes its files later).
    if store is not None:
        say(0.85, "saving to the database")
        persist_run(store, result, batch_id=batch_id, code_version=code_version())
    if export_dir is not None:
        say(0.92, "exporting training examples")
        try:
            result.exports = export_run_files(result.examples, Path(export_dir), run_id)
        except CovcallError as err:
            saved = f"run {run_id} is saved, but " if store is not None else ""
            raise CovcallError(f"{saved}its training examples were not exported: {err}; fix TRAINING_DATA_DIR "
                               f"and export them with `covcall export --run {run_id} --out FILE`") from None
        if store is not None:
            store.set_run_exports(run_id, result.exports.get("csv"), result.exports.get("jsonl"))
    say(1.0, "done")
    return result
