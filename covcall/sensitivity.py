"""Robustness band: one backtest rerun under a grid of market-model assumptions, and a verdict on whether it holds.

Each scenario changes one assumption the result may hang on (the IV level, the short end of the term structure,
the bid-ask spread, the forward basis, scheduled events, the daily settlement price) and is an independent unit
of work: a pure function of (config, scenario, market data) returning metrics and an equity curve, so scenarios
can run in parallel. The verdict names the assumptions that flip the comparison with HODL, on the measure the
result is judged by: total return for a backtest, the walk's ranking metric for a walk's winner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.backtest import (
    BacktestConfig,
    MarketInputs,
    build_market,
    load_market_inputs,
    make_policy,
    run_backtest,
)
from covcall.calibration import chain_for
from covcall.compute import ComputeSpec, Executor, UnitFailure
from covcall.errors import CovcallError
from covcall.events import EventVariance

if TYPE_CHECKING:
    from covcall.policies import Policy
    from covcall.store import Store

HIGH_BASIS_ANN = 0.15  # the ETH basis of January 2024 ran at 10-18 %/yr
# What "beats HODL" means for each walk metric (covcall.walkspec.METRICS): the strategy's value above HODL's on the
# same window. Total return, excess return and CAGR rank alike on one window; a win rate has no HODL counterpart
# (HODL trades nothing), so it is judged on total return.
COMPARED_ON = {"total_return": "total_return", "excess_return": "total_return", "cagr": "total_return",
               "win_rate": "total_return", "sharpe": "sharpe", "sortino": "sortino", "calmar": "calmar",
               "max_drawdown": "max_drawdown"}
_WORDS = {"total_return": "total return", "sharpe": "Sharpe", "sortino": "Sortino", "calmar": "Calmar",
          "max_drawdown": "max drawdown"}


@dataclass(frozen=True)
class Scenario:
    """One assumption changed: `chain` fields set on the calibrated surface, or top-level config fields."""

    name: str
    chain: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def scenarios(base_chain: dict[str, Any], daily: bool, events: bool = False,
              basis_history: bool = False) -> list[Scenario]:
    """The assumption grid around a run (the base first); `events`: the run prices scheduled events;
    `basis_history`: its forward follows a stored basis history (the basis scenarios then replace it)."""
    basis = float(base_chain.get("basis_ann", 0.0))
    # as wide as the calibration's short end missed days it did not see (ChainParams.short_end_band)
    band = round(float(base_chain.get("short_end_band", 0.10)), 2)
    fixed = {"basis": "calibrated"}  # a basis scenario sets one number for every date
    grid = [Scenario("base"),
            Scenario("IV level -10 %", {"iv_scale": 0.9}), Scenario("IV level +10 %", {"iv_scale": 1.1}),
            Scenario(f"short end low (-{band:.2f} at T->0)", {"short_end_shift": -band}),
            Scenario(f"short end high (+{band:.2f} at T->0)", {"short_end_shift": band}),
            Scenario("spread x0.5", {"spread_scale": 0.5}), Scenario("spread x2", {"spread_scale": 2.0}),
            Scenario("basis 0", {"basis_ann": 0.0}, fixed),
            Scenario(f"basis high ({max(HIGH_BASIS_ANN, 3 * basis):.0%}/yr)",
                     {"basis_ann": max(HIGH_BASIS_ANN, 3 * basis)}, fixed)]
    if basis_history:
        grid.append(Scenario(f"basis history off (calibrated {basis:.1%}/yr)", config=fixed))
    if events:
        grid += [Scenario("scheduled events off", {"event_scale": 0.0}),
                 Scenario("scheduled events x2", {"event_scale": 2.0})]
    if daily:
        grid.append(Scenario("settlement proxy", config={"settlement": "proxy"}))
    return grid


def run_scenario(config: BacktestConfig, scenario: Scenario, data: MarketInputs,
                 policy: Policy | None = None) -> dict[str, Any]:
    """One unit of work: the config under one scenario (nothing stored; a model policy comes loaded)."""
    chain = config.chain.model_copy(update=scenario.chain)
    cfg = config.model_copy(update={"chain": chain, **scenario.config})
    use_fine = None if cfg.settlement == "proxy" else data.fine
    res = run_backtest(cfg, candles=data.candles, iv=data.iv, fine=use_fine, events=data.events,
                       basis=data.basis, record_candidates=False, policy=policy)
    m = res.metrics
    keys = ("total_return", "excess_return", "sharpe", "hodl_sharpe", "max_drawdown", "n_trades", "sortino", "calmar",
            "hodl_sortino", "hodl_calmar", "hodl_max_drawdown")
    return {"scenario": scenario.name, **{k: m.get(k) for k in keys}, "equity": res.equity["covered_call"],
            "hodl": res.equity["hodl"]}


def compared_on(metric: str) -> str:
    """The measure a walk metric is compared with HODL's on (COMPARED_ON), or a clear error."""
    if metric not in COMPARED_ON:
        raise CovcallError(f"cannot compare with HODL on {metric!r}; choose from {', '.join(COMPARED_ON)}")
    return COMPARED_ON[metric]


def beats_hodl(table: pd.DataFrame, metric: str = "total_return") -> pd.Series:
    """Per scenario, whether the strategy did better than HODL on `metric` (a walk metric; see COMPARED_ON)."""
    on = compared_on(metric)
    t = table.set_index("scenario")
    if on == "total_return":
        return t["excess_return"].astype(float) > 0
    return t[on].astype(float) > t[f"hodl_{on}"].astype(float)


def verdict(table: pd.DataFrame, metric: str = "total_return") -> str:
    """One sentence: does the strategy beat HODL on `metric` whatever the assumptions, never, or depending on which?

    >>> t = pd.DataFrame({"scenario": ["base", "spread x2"], "excess_return": [0.1, -0.05],
    ...                   "sharpe": [1.2, 1.1], "hodl_sharpe": [1.0, 1.0]})
    >>> verdict(t)
    'depends on assumptions: spread x2 flips it (it beats HODL in the base case; compared on total return)'
    >>> verdict(t, "sharpe")
    'beats HODL under every assumption (compared on Sharpe)'
    """
    wins = beats_hodl(table, metric)
    on = f"compared on {_WORDS[COMPARED_ON[metric]]}"
    if wins.all():
        return f"beats HODL under every assumption ({on})"
    if not wins.any():
        return f"loses under every assumption ({on})"
    base_wins = bool(wins.get("base", False))
    flips = [name for name, w in wins.items() if name != "base" and w != base_wins]
    return f"depends on assumptions: {', '.join(flips)} flip{'s' if len(flips) == 1 else ''} it " \
           f"({'it beats HODL' if base_wins else 'it trails HODL'} in the base case; {on})"


@dataclass
class Sensitivity:
    """The grid's metrics, the band of equity curves and the verdict."""

    table: pd.DataFrame
    band: pd.DataFrame  # ts, base, low, high, hodl
    verdict: str
    calibration: str | None
    metric: str = "total_return"  # what "beats HODL" was judged on
    window: tuple[str, str] | None = None  # the rerun's first and last day (a walk winner's: its last test range)

    def to_dict(self) -> dict[str, Any]:
        keys = dict.fromkeys(("total_return", "excess_return", "sharpe", COMPARED_ON[self.metric]))
        ranges = {k: [float(np.nanmin(self.table[k])), float(np.nanmax(self.table[k]))] for k in keys}
        return {"verdict": self.verdict, "metric": self.metric, "compared_on": COMPARED_ON[self.metric],
                "window": list(self.window) if self.window else None, "calibration": self.calibration,
                "ranges": ranges, "scenarios": self.table.to_dict("records")}


def run_sensitivity(config: BacktestConfig | dict[str, Any], *, store: Store | None = None,
                    defaults: dict[str, Any] | None = None,
                    mapper: Callable[..., list[dict[str, Any]]] | None = None,
                    compute: ComputeSpec | None = None, metric: str = "total_return") -> Sensitivity:
    """Rerun `config` under every scenario of the assumption grid; data is loaded once and shared. The verdict
    compares with HODL on `metric` (a walk metric: a walk's winner is judged on what ranked it).

    The scenarios run where `compute` says (covcall.compute; serial by default), data scattered once;
    `mapper(fn, units)` overrides that. A failing scenario fails the band (its error is raised).
    """
    compared_on(metric)  # an unknown metric fails before anything runs
    if isinstance(config, dict):
        config = BacktestConfig.parse(config, defaults)
    chain, cal_id = chain_for(config.chain, config.calibration, config.underlying, store)
    # Every field explicit: scenarios change one assumption of exactly this surface.
    config = config.model_copy(update={"chain": type(chain)(**chain.model_dump())})
    data = load_market_inputs(config, store)
    priced = EventVariance.build(data.events, config.underlying, config.chain) is not None
    moved = build_market(config, data.candles, data.iv, None, None, data.basis)[0].basis is not None
    units = scenarios(config.chain.model_dump(), daily=config.timeframe == "1d", events=priced, basis_history=moved)
    # a model read here, once: the scenarios never open the store (the other policies follow each scenario's config)
    policy = make_policy(config, store) if config.policy == "model" else None
    if mapper is not None:
        results = mapper(lambda s: run_scenario(config, s, data, policy), units)
    else:
        results = _on_executor(compute or ComputeSpec("serial"), config, units, data, policy)
    table = pd.DataFrame([{k: v for k, v in r.items() if k not in ("equity", "hodl")} for r in results])
    curves = pd.concat({r["scenario"]: r["equity"] for r in results}, axis=1)
    band = pd.DataFrame({"base": curves["base"], "low": curves.min(axis=1), "high": curves.max(axis=1),
                         "hodl": results[0]["hodl"]})
    band.index.name = "ts"
    return Sensitivity(table, band.reset_index(), verdict(table, metric), cal_id, metric,
                       (config.start.isoformat(), config.end.isoformat()))


def _on_executor(compute: ComputeSpec, config: BacktestConfig, units: list[Scenario],
                 data: MarketInputs, policy: Policy | None) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    with Executor(compute) as ex:
        data = ex.scatter(data)
        for i, res, _ in ex.map(_scenario_unit, [(config, u, data, policy) for u in units]):
            if isinstance(res, UnitFailure):
                raise CovcallError(f"sensitivity scenario {units[i].name} failed: {res.error}")
            out[i] = res
    return [out[i] for i in range(len(units))]


def _scenario_unit(config: BacktestConfig, scenario: Scenario, data: MarketInputs,
                   policy: Policy | None) -> dict[str, Any]:
    return run_scenario(config, scenario, data, policy)


def winner_sensitivity(result: Any, *, store: Store | None = None,
                       compute: ComputeSpec | None = None) -> Sensitivity | None:
    """The robustness band of a walk's winner on the test range (None when no variant had a metric)."""
    import json

    from covcall.walkspec import WalkSpec

    if result.best_strategy is None:
        return None
    spec = WalkSpec.parse(result.spec)
    winner = result.info.get("winner")
    if winner:  # a walk-forward winner: its settings in the last fold, on that fold's test range
        from covcall.ranges import _parse_range

        return run_sensitivity(spec.base_config(_parse_range(winner["test"], "winner test"), **winner["overrides"]),
                               store=store, compute=compute, metric=spec.metric)
    row = result.leaderboard[result.leaderboard["strategy"] == result.best_strategy].iloc[0]
    overrides = json.loads(row["params"]) if isinstance(row["params"], str) else {}
    return run_sensitivity(spec.base_config(spec.ranges.test, **overrides), store=store, compute=compute,
                           metric=spec.metric)
