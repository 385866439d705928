"""The robustness band: every assumption of the grid changes the run, the verdict names what flips it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from covcall.cli import main
from covcall.errors import CovcallError
from covcall.sensitivity import run_sensitivity, verdict


def test_the_grid_on_the_synthetic_market() -> None:
    band = run_sensitivity({"start": "2023-01-01", "end": "2023-06-30"})
    t = band.table.set_index("scenario")
    assert len(t) == 10 and t.index[0] == "base"
    # a higher IV sells richer calls: more premium, a better excess over HODL than a lower IV
    assert t.loc["IV level +10 %", "excess_return"] > t.loc["IV level -10 %", "excess_return"]
    assert t["excess_return"].nunique() >= 6  # each assumption moves the result
    assert (band.band["low"] <= band.band["base"] + 1e-9).all() and (band.band["base"] <= band.band["high"] + 1e-9).all()
    assert band.verdict == verdict(band.table) and band.calibration == "default-BTC"


@pytest.mark.parametrize("excess,expected", [
    ([0.1, 0.2, 0.05], "beats HODL under every assumption (compared on total return)"),
    ([-0.1, -0.2, 0.0], "loses under every assumption (compared on total return)"),
    ([0.1, -0.2, 0.05], "depends on assumptions: spread x2 flips it (it beats HODL in the base case; compared on "
                        "total return)"),
    ([-0.1, 0.2, 0.05], "depends on assumptions: spread x2, basis 0 flip it (it trails HODL in the base case; "
                        "compared on total return)"),
])
def test_verdicts(excess: list[float], expected: str) -> None:
    table = pd.DataFrame({"scenario": ["base", "spread x2", "basis 0"], "excess_return": excess})
    assert verdict(table) == expected


def test_a_walks_winner_is_judged_on_the_walks_metric() -> None:
    """A walk ranks on its metric, so its winner's band asks whether it beats HODL on that metric: a strategy
    that trails HODL's total return under a lower IV but keeps a better Sharpe still beats it on Sharpe."""
    table = pd.DataFrame({"scenario": ["base", "IV level -10 %", "spread x2"], "excess_return": [0.1, -0.1, 0.05],
                          "sharpe": [2.1, 1.9, 1.7], "hodl_sharpe": [1.8, 1.8, 1.8],
                          "max_drawdown": [-0.2, -0.3, -0.25], "hodl_max_drawdown": [-0.3, -0.3, -0.3]})
    assert verdict(table).startswith("depends on assumptions: IV level -10 % flips it")
    assert verdict(table, "sharpe") == ("depends on assumptions: spread x2 flips it (it beats HODL in the base "
                                        "case; compared on Sharpe)")
    assert verdict(table, "cagr") == verdict(table, "excess_return") == verdict(table)  # one window: alike
    # a drawdown as deep as HODL's is not better than HODL's
    assert verdict(table, "max_drawdown") == ("depends on assumptions: IV level -10 % flips it (it beats HODL in "
                                              "the base case; compared on max drawdown)")
    with pytest.raises(CovcallError, match="choose from"):
        verdict(table, "alpha")
    from covcall.sensitivity import COMPARED_ON
    from covcall.walkspec import METRICS

    assert set(COMPARED_ON) == set(METRICS)  # every metric a walk may rank by has its comparison


def test_cli_walk_sensitivity_bands_the_winner_on_the_walks_metric(db, tmp_path, capsys) -> None:
    spec = tmp_path / "w.json"
    spec.write_text(json.dumps({
        "name": "band", "underlying": "BTC", "timeframe": "1d", "metric": "sharpe", "gap_days": 10,
        "rangeTrain": [{"startDate": "2022-01-01", "endDate": "2022-04-30"}],
        "rangeTest": {"startDate": "2022-06-01", "endDate": "2022-09-30"},
        "grid": {"delta_range": [[0.1, 0.25]], "dte_range": [[5, 30]], "threshold": [0.1, 0.3]},
        "model": {"enabled": False}}))
    assert main(["walk", "--spec", str(spec), "--sensitivity", "--workers", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    band = out["winner_sensitivity"]
    assert band["metric"] == "sharpe" and band["compared_on"] == "sharpe"
    t = pd.DataFrame(band["scenarios"])
    assert verdict(t, "sharpe") == band["verdict"] and band["verdict"].endswith("compared on Sharpe)")
    base = t.set_index("scenario").loc["base"]
    winner = next(r for r in out["strategies"] if r["strategy"] == out["best_strategy"])
    assert base["sharpe"] == pytest.approx(winner["sharpe"])  # the band's base is the winner's test run
    assert band["window"] == ["2022-06-01", "2022-09-30"]  # the test range it was rerun on
    assert main(["walk", "--spec", str(spec), "--sensitivity", "--workers", "1"]) == 0
    said = capsys.readouterr().out
    assert f"rerun on the test range 2022-06-01 .. 2022-09-30: {band['verdict']}" in said


def test_cli_backtest_sensitivity_json(db, capsys) -> None:
    assert main(["backtest", "--start", "2023-01-01", "--end", "2023-03-31", "--sensitivity", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    band = out["sensitivity"]
    assert band["verdict"].split(" ")[0] in ("beats", "loses", "depends")
    assert len(band["scenarios"]) == 10 and band["ranges"]["sharpe"][0] <= band["ranges"]["sharpe"][1]


def test_a_model_policys_band_reads_its_model_once_and_prices_every_scenario(tmp_path) -> None:
    """A model policy's band (a walk's winner is often a model): the model is read from the store on the driver
    and handed to every scenario, which never opens the store; the base scenario is the model's plain run.
    Without a store the band says what it needs."""
    from covcall.backtest import run_backtest
    from covcall.models import save_model, train_model
    from covcall.ranges import Range
    from covcall.store import Store

    store = Store(tmp_path / "cc.duckdb")
    train = {"underlying": "BTC", "start": "2022-01-01", "end": "2022-12-31"}
    rows = run_backtest(train, record_candidates=True).candidates
    model = train_model(rows, [Range(pd.Timestamp("2022-01-01").date(), pd.Timestamp("2022-12-31").date())],
                        name="band-model")
    model_id = save_model(store, model, tmp_path / "models")
    cfg = {"underlying": "BTC", "start": "2023-03-01", "end": "2023-06-30", "policy": "model", "model_id": model_id}
    band = run_sensitivity(cfg, store=store)
    plain = run_backtest(cfg, store=store)
    base = band.table.set_index("scenario").loc["base"]
    assert base["sharpe"] == pytest.approx(plain.metrics["sharpe"], rel=1e-12)
    assert base["n_trades"] == plain.metrics["n_trades"] > 0
    assert len(band.table) >= 9 and band.table["total_return"].nunique() > 1
    with pytest.raises(CovcallError, match="policy 'model' needs a store"):
        run_sensitivity(cfg)
