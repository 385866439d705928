"""The robustness band: every assumption of the grid changes the run, the verdict names what flips it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from covcall.cli import main
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
    ([0.1, 0.2, 0.05], "beats HODL under every assumption"),
    ([-0.1, -0.2, 0.0], "loses under every assumption"),
    ([0.1, -0.2, 0.05], "depends on assumptions: spread x2 flips it (it beats HODL in the base case)"),
    ([-0.1, 0.2, 0.05], "depends on assumptions: spread x2, basis 0 flip it (it trails HODL in the base case)"),
])
def test_verdicts(excess: list[float], expected: str) -> None:
    table = pd.DataFrame({"scenario": ["base", "spread x2", "basis 0"], "excess_return": excess})
    assert verdict(table) == expected


def test_cli_backtest_sensitivity_json(db, capsys) -> None:
    assert main(["backtest", "--start", "2023-01-01", "--end", "2023-03-31", "--sensitivity", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    band = out["sensitivity"]
    assert band["verdict"].split(" ")[0] in ("beats", "loses", "depends")
    assert len(band["scenarios"]) == 10 and band["ranges"]["sharpe"][0] <= band["ranges"]["sharpe"][1]
