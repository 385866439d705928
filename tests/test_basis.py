"""The forward basis by date: observations (chain snapshots, Deribit futures, files), the basis a decision knows,
its effect on prices, the robustness band without it, and bad files refused whole with nothing stored lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.backtest import run_backtest
from covcall.basis import BASIS_MAX_AGE_DAYS, basis_known_at, fetch_basis, futures_basis, import_basis
from covcall.chains import import_chain
from covcall.cli import main
from covcall.errors import DataError
from covcall.store import Store
from tests.test_chains import ticker_rows

DAY_NS = 86_400 * 10**9
CFG = {"underlying": "BTC", "timeframe": "1d", "start": "2023-01-01", "end": "2023-06-30", "calibration": "none",
       "delta_min": 0.3, "delta_max": 0.6, "threshold": 0.0}


def daily(start: str, end: str, value: float) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range(start, end, freq="D", tz="UTC"), "basis_ann": value})


# -- the basis a decision knows --------------------------------------------------------------------------------
def test_a_decision_sees_the_last_observation_up_to_seven_days_old_never_a_later_one() -> None:
    obs = pd.DataFrame({"ts": pd.to_datetime(["2024-01-10 12:00"], utc=True), "basis_ann": [0.2]})
    t = pd.Timestamp("2024-01-10 12:00", tz="UTC").value
    closes = np.array([t - 1, t, t + 7 * DAY_NS, t + 7 * DAY_NS + 1])
    assert basis_known_at(obs, closes, fallback=0.03).tolist() == [0.03, 0.2, 0.2, 0.03]
    assert BASIS_MAX_AGE_DAYS == 7.0
    assert basis_known_at(None, closes, fallback=0.05).tolist() == [0.05] * 4


def test_a_constant_history_prices_exactly_like_that_calibrated_number() -> None:
    hist = run_backtest({**CFG, "chain": {"basis_ann": 0.0}}, basis=daily("2022-09-01", "2023-07-31", 0.12))
    fixed = run_backtest({**CFG, "basis": "calibrated", "chain": {"basis_ann": 0.12}})
    assert hist.basis_history and not fixed.basis_history
    cols = ["entry_time", "strike", "expiry", "exit_reason"]
    pd.testing.assert_frame_equal(hist.trades[cols], fixed.trades[cols])
    np.testing.assert_allclose(hist.trades["premium_usd"], fixed.trades["premium_usd"], rtol=1e-12)
    np.testing.assert_allclose(hist.trades["basis_ann"], 0.12)
    assert hist.summary()["basis"] == {"setting": "auto", "source": "history", "calibrated_ann": 0.0,
                                       "trade_min_ann": 0.12, "trade_max_ann": 0.12}
    # a history equal to the calibrated number is still the history the run followed
    same = run_backtest({**CFG, "chain": {"basis_ann": 0.12}}, basis=daily("2022-09-01", "2023-07-31", 0.12))
    assert same.basis_history and same.summary()["basis"]["source"] == "history"


def test_the_history_moves_only_the_calls_sold_while_it_was_known() -> None:
    base = run_backtest({**CFG, "chain": {"basis_ann": 0.0}})
    # one observation on 2023-03-01 (a 30 %/yr basis), known for seven days
    obs = pd.DataFrame({"ts": [pd.Timestamp("2023-03-01", tz="UTC")], "basis_ann": [0.30]})
    moved = run_backtest({**CFG, "chain": {"basis_ann": 0.0}}, basis=obs)
    entry = pd.to_datetime(moved.trades["entry_time"], utc=True)
    window = (entry >= pd.Timestamp("2023-03-01", tz="UTC")) & (entry <= pd.Timestamp("2023-03-08", tz="UTC"))
    assert window.any() and (~window).any()
    assert (moved.trades.loc[window, "basis_ann"] == 0.30).all()
    assert (moved.trades.loc[~window, "basis_ann"] == 0.0).all()
    first = moved.trades.index[window][0]
    # everything before the observation is untouched (no look-ahead); the call sold in the window costs more:
    # a higher forward lifts a call's price
    pd.testing.assert_frame_equal(moved.trades.loc[: first - 1].drop(columns=["run_id"]),
                                  base.trades.loc[: first - 1].drop(columns=["run_id"]))
    same = base.trades[base.trades["entry_time"] == moved.trades.loc[first, "entry_time"]].iloc[0]
    assert same["instrument"] == moved.trades.loc[first, "instrument"] == "BTC-10MAR23-7500-C"
    assert moved.trades.loc[first, "premium_usd"] > same["premium_usd"] * 1.04  # 423.0 vs 404.1 USD
    # a history that never reaches the window changes nothing
    old = pd.DataFrame({"ts": [pd.Timestamp("2020-01-01", tz="UTC")], "basis_ann": [0.5]})
    assert not run_backtest({**CFG, "chain": {"basis_ann": 0.0}}, basis=old).basis_history


def test_the_robustness_band_replaces_the_history_in_its_basis_scenarios(db: Path) -> None:
    from covcall.market import load_candles
    from covcall.sensitivity import run_sensitivity

    store = Store(db)  # the synthetic path stored as if imported: real data ('store') prices with the history
    bars = load_candles("BTC", "1d", pd.Timestamp("2022-06-01").date(), pd.Timestamp("2023-06-30").date(),
                        source="synthetic", seed=7)
    store.import_candles("csv", "BTC", "1d", bars)
    store.write_basis("file", "BTC", daily("2022-09-01", "2023-07-31", 0.20))
    band = run_sensitivity({**CFG, "source": "store", "chain": {"basis_ann": 0.0}}, store=store)
    names = list(band.table["scenario"])
    assert "basis history off (calibrated 0.0%/yr)" in names
    by = band.table.set_index("scenario")["total_return"]
    # "basis 0" sets one number for every date: the same as switching the history off at a calibrated 0
    assert by["basis 0"] == by["basis history off (calibrated 0.0%/yr)"]
    assert by["base"] != by["basis 0"]


def test_the_chain_view_prices_with_the_basis_it_reports(store: Store) -> None:
    from covcall.chainview import chain_at
    from covcall.market import load_candles

    bars = load_candles("BTC", "1d", pd.Timestamp("2022-06-01").date(), pd.Timestamp("2023-06-30").date(),
                        source="synthetic", seed=7)
    store.import_candles("csv", "BTC", "1d", bars)
    before = chain_at("BTC", "2023-03-02", source="store", timeframe="1d", calibration="none", store=store)
    store.write_basis("file", "BTC", pd.DataFrame({"ts": [pd.Timestamp("2023-03-01", tz="UTC")], "basis_ann": [0.3]}))
    after = chain_at("BTC", "2023-03-02", source="store", timeframe="1d", calibration="none", store=store)
    assert (before.basis_source, before.basis_ann) == ("calibrated", 0.0)
    assert (after.basis_source, after.basis_ann) == ("history", 0.3)
    # every call is priced off F = S exp(0.30 T): the same calls; up to 1.2 x spot each dearer (far out a higher
    # forward also moves the call nearer the money on the smile, which can cheapen it a hair), and the more so the
    # longer the expiry (the forward moves with T)
    a, b = after.quotes.set_index(["expiry", "strike"]), before.quotes.set_index(["expiry", "strike"])
    near = a.index.get_level_values("strike") <= 1.2 * after.spot
    assert a.index.equals(b.index) and (a["mark_coin"][near] > b["mark_coin"][near]).all()
    gain = (a["mark_coin"] - b["mark_coin"])[near].groupby(level="expiry").median()
    assert gain.iloc[-1] > 10 * gain.iloc[0] > 0 and gain.is_monotonic_increasing


# -- observations ----------------------------------------------------------------------------------------------
def test_every_imported_chain_snapshot_adds_its_own_basis(tmp_path: Path, store: Store) -> None:
    import gzip

    p = tmp_path / "btc.csv.gz"
    p.write_bytes(gzip.compress(ticker_rows().to_csv(index=False).encode()))
    import_chain(store, p, "BTC")
    got = store.read_basis("BTC")
    assert list(got["source"]) == ["chain", "chain"]  # the fixture's futures sit 4 %/yr over the index
    np.testing.assert_allclose(got["basis_ann"], 0.04, atol=1e-9)
    import_chain(store, p, "BTC")  # again: nothing new
    assert len(store.read_basis("BTC")) == 2


def _future_rows(index: float = 40000.0) -> list[dict]:
    ts = 1704712781414  # 2024-01-08 11:19:41 UTC
    out = []
    for name, days, b in (("BTC-12JAN24", 3.86, 0.50), ("BTC-26JAN24", 17.86, 0.10), ("BTC-29MAR24", 80.86, 0.14),
                          ("BTC-PERPETUAL", 0.0, 0.0)):
        mark = index * np.exp(b * days / 365)
        out.append({"instrument_name": name, "mark_price": mark, "estimated_delivery_price": index,
                    "creation_timestamp": ts, "base_currency": "BTC"})
    return out


def test_futures_give_the_median_basis_of_those_a_week_or_more_away(store: Store) -> None:
    obs = futures_basis(_future_rows(), "BTC")  # the 3-day future (50 %/yr) and the perpetual are left out
    assert obs["futures"] == 2 and obs["basis_ann"] == pytest.approx(0.12, abs=1e-3)

    class FakeDeribit:
        def __init__(self) -> None:
            self.calls: list[dict] = []
            self.rateLimit, self.timeout = 50, 5000

        def public_get_get_book_summary_by_currency(self, params: dict) -> dict:
            self.calls.append(params)
            return {"jsonrpc": "2.0", "result": _future_rows() if params["currency"] == "BTC" else []}

    fake = FakeDeribit()
    out = fetch_basis(store, "btc", client=fake)
    assert fake.calls == [{"currency": "BTC", "kind": "future"}] and out["source"] == "ccxt:deribit"
    got = store.read_basis("BTC")
    assert list(got["source"]) == ["futures"] and got["basis_ann"].iloc[0] == pytest.approx(0.12, abs=1e-3)
    with pytest.raises(DataError, match="returned no ETH futures"):
        fetch_basis(store, "ETH", client=fake)
    with pytest.raises(DataError, match="listed no BTC future of 7 days or more"):
        futures_basis([r for r in _future_rows() if "JAN24" not in r["instrument_name"]
                       and "MAR24" not in r["instrument_name"]], "BTC")
    assert len(store.read_basis("BTC")) == 1


# -- files -----------------------------------------------------------------------------------------------------
def test_import_basis_file_and_again_changes_nothing(tmp_path: Path, store: Store) -> None:
    p = tmp_path / "basis.csv"
    p.write_text("ts,basis_ann\n2024-01-01T08:00:00Z,0.10\n2024-01-02T08:00:00Z,0.12\n", encoding="utf-8")
    out = import_basis(store, p, "btc")
    assert (out["underlying"], out["rows"], out["median_basis_ann"]) == ("BTC", 2, pytest.approx(0.11))
    import_basis(store, p, "BTC")
    got = store.read_basis("BTC")
    assert list(got["basis_ann"]) == [0.10, 0.12] and set(got["source"]) == {"file"}


@pytest.mark.parametrize("content,flag,message", [
    ("time,value\n2024-01-01,0.1\n", "BTC", "is not a basis history: it lacks ts, basis_ann"),
    ("ts,basis_ann\n2024-01-01,0.1\n2024-01-02,nan\n", "BTC", "row 3: ts '2024-01-02', basis_ann 'nan'"),
    ("ts,basis_ann\n2024-01-01,inf\n", "BTC", "need an ISO time and a finite basis per year in [-1, 2]"),
    ("ts,basis_ann\n2024-01-01,12\n", "BTC", "row 2: ts '2024-01-01', basis_ann '12'"),
    ("ts,basis_ann\nyesterday,0.1\n", "BTC", "row 2: ts 'yesterday'"),
    ("ts,basis_ann\n2024-01-01,0.1\n2024-01-01,0.2\n", "BTC", "two rows at 2024-01-01T00:00:00+00:00"),
    ("ts,basis_ann\n2024-01-01,0.1\n", None, "has no underlying column; pass --underlying BTC"),
    ("ts,basis_ann,underlying\n2024-01-01,0.1,BTC\n2024-01-02,0.1,ETH\n", None, "mixes underlyings (BTC, ETH)"),
    ("ts,basis_ann\n", "BTC", "has a header but no rows; nothing stored"),
    ("ts,basis_ann,underlying\n2024-01-01,0.1,ETH\n", "BTC", "holds ETH rows, not BTC; import it with --underlying ETH"),
])
def test_bad_basis_files_are_one_error_line_and_nothing_stored_is_lost(db: Path, tmp_path: Path, capsys,
                                                                        content: str, flag: str | None,
                                                                        message: str) -> None:
    good = tmp_path / "good.csv"
    good.write_text("ts,basis_ann\n2024-01-01T08:00:00Z,0.10\n", encoding="utf-8")
    assert main(["data", "import-basis", "--file", str(good), "--underlying", "BTC", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    argv = ["data", "import-basis", "--file", str(bad)] + (["--underlying", flag] if flag else [])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    got = Store(db).read_basis("BTC")
    assert list(got["basis_ann"]) == [0.10] and list(got["source"]) == ["file"]


def test_cli_backtest_reports_the_basis_and_data_show_lists_the_history(db: Path, capsys) -> None:
    from covcall.market import load_candles

    store = Store(db)
    bars = load_candles("BTC", "1d", pd.Timestamp("2022-06-01").date(), pd.Timestamp("2023-06-30").date(),
                        source="synthetic", seed=7)
    store.import_candles("csv", "BTC", "1d", bars)
    store.write_basis("file", "BTC", daily("2023-01-01", "2023-06-30", 0.15))
    args = ["backtest", "--source", "store", "--underlying", "BTC", "--timeframe", "1d", "--start", "2023-01-01",
            "--end", "2023-06-30", "--calibration", "none"]
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["basis"]["source"] == "history" and out["basis"]["trade_min_ann"] == 0.15
    assert main(args + ["--basis", "calibrated", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["basis"]["source"] == "calibrated"
    assert main(args) == 0 and "forward basis stored history, 15.0..15.0 %/yr" in capsys.readouterr().out
    assert main(args + ["--basis", "history"]) == 2
    assert "basis" in capsys.readouterr().err
    assert main(["data", "show", "--json"]) == 0
    shown = [s for s in json.loads(capsys.readouterr().out) if s["kind"] == "basis"]
    assert shown == [{"kind": "basis", "source": "file", "underlying": "BTC", "timeframe": "", "rows": 181,
                      "start": "2023-01-01T00:00:00+00:00", "end": "2023-06-30T00:00:00+00:00"}]
