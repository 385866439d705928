"""Real option chains: both Deribit file shapes, snapshots, dropped quotes, idempotence, refusals, live fetch (fake),
calibration and realism (on the reference files when present), the forward and the term structure."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.calibration import calibrate, chain_for, fit_calibration, resolve
from covcall.chain import ChainParams, atm_iv_at, mark_call_usd, smile_iv, smile_shape
from covcall.chains import fetch_chain, import_chain, read_chain_file
from covcall.cli import main
from covcall.errors import DataError
from covcall.pricing import call_price
from covcall.store import Store

T0 = 1681300800000  # 2023-04-12 12:00 UTC in ms
EXPIRIES = ("14APR23", "21APR23", "28APR23", "26MAY23", "30JUN23")


def _black_coin(f: float, k: float, t: float, iv: float) -> float:
    return float(call_price(f, k, t, iv)) / f


def ticker_rows(snapshots: int = 2, spot: float = 30000.0, wing: float = 0.0, curvature: float = 0.05,
                strikes: np.ndarray | None = None) -> pd.DataFrame:
    """Hand-made rows in the shape of Deribit's ticker export: marks exactly Black(F)/F at a smile (quadratic in
    x = ln(K/F) / (0.55 sqrt(T)) by default; `wing` > 0 gives it linear wings, see covcall.chain.smile_shape)."""
    rows = []
    for s in range(snapshots):
        ts = T0 + s * 4 * 3600 * 1000
        for e in EXPIRIES:
            expiry = pd.Timestamp(e, tz="UTC") + pd.Timedelta(hours=8)
            t = (expiry - pd.Timestamp(ts, unit="ms", tz="UTC")).total_seconds() / (365 * 86400)
            f = spot * np.exp(0.04 * t)
            for j, k in enumerate(np.arange(26000, 36001, 1000) if strikes is None else strikes):
                iv = 0.55 * (1 + curvature * smile_shape(np.log(k / f) / (0.55 * np.sqrt(t)), wing))
                for typ in ("C", "P"):
                    mark = _black_coin(f, k, t, iv) + (0 if typ == "C" else (k - f) / f)
                    mark = max(mark, 0.0001)
                    rows.append({"timestamp": ts + j * 40, "instrument_name": f"BTC-{e}-{int(k)}-{typ}",
                                 "underlying_price": f, "index_price": spot, "mark_price": mark,
                                 "mark_iv": iv * 100, "best_bid_price": max(mark - 0.0005, 0.0),
                                 "best_ask_price": mark + 0.0005, "bid_iv": iv * 100 - 1, "ask_iv": iv * 100 + 1})
    df = pd.DataFrame(rows)
    df.loc[3, ["best_ask_price", "ask_iv"]] = [1.0, 999.0]  # a far resting order
    df.loc[5, ["best_bid_price", "bid_iv"]] = [0.0, 0.0]  # no bid
    return df


def summary_rows(spot: float = 2224.0) -> list[dict]:
    """Hand-made rows in the shape of public/get_book_summary_by_currency (no mark_iv, as in older exports)."""
    rows = []
    ts = 1704712781414  # 2024-01-08 11:19:41 UTC
    for e in ("12JAN24", "26JAN24", "29MAR24"):
        expiry = pd.Timestamp(e, tz="UTC") + pd.Timedelta(hours=8)
        t = (expiry - pd.Timestamp(ts, unit="ms", tz="UTC")).total_seconds() / (365 * 86400)
        f = spot * np.exp(0.15 * t)
        for k in (2000, 2100, 2200, 2300, 2400, 2600):
            mark = _black_coin(f, k, t, 0.7)
            rows.append({"mid_price": mark, "estimated_delivery_price": spot, "creation_timestamp": ts,
                         "base_currency": "ETH", "underlying_index": f"ETH-{e}", "underlying_price": f,
                         "mark_price": mark, "ask_price": mark + 0.0005, "bid_price": max(mark - 0.0005, 0),
                         "instrument_name": f"ETH-{e}-{k}-C", "open_interest": 10.0, "volume": 1.0})
    return rows


@pytest.fixture
def ticker_file(tmp_path: Path) -> Path:
    p = tmp_path / "btc_ticker.csv.gz"
    p.write_bytes(gzip.compress(ticker_rows().to_csv(index=False).encode()))
    return p


def test_ticker_file_snapshots_drops_and_idempotence(ticker_file: Path, store: Store) -> None:
    cf = read_chain_file(ticker_file, "btc")
    assert cf.kind == "ticker" and cf.underlying == "BTC"
    assert cf.snapshots == ["BTC-20230412T120000Z", "BTC-20230412T160000Z"]  # rows 40 ms apart: one snapshot each
    assert cf.dropped["placeholder_asks"] == 1 and cf.dropped["no_bid"] >= 1
    q = cf.quotes
    assert q.loc[3, "ask_coin"] != q.loc[3, "ask_coin"]  # the 1.0 / 999 % ask is gone, the instrument kept
    assert q.loc[5, "bid_coin"] != q.loc[5, "bid_coin"] and q.loc[5, "mark_coin"] > 0  # no bid: bid null
    assert (q["mark_iv"] < 2).all()  # percent -> fraction
    first = import_chain(store, ticker_file, "BTC")
    again = import_chain(store, ticker_file, "BTC")
    assert (first["new_snapshots"], again["new_snapshots"]) == (2, 0)
    assert store.counts()["chain_snapshots"] == 2
    assert len(store.read_chain(["BTC-20230412T120000Z"])) == len(EXPIRIES) * 11 * 2


def test_book_summary_rows_get_their_iv_from_the_mark(tmp_path: Path) -> None:
    p = tmp_path / "eth.csv"
    pd.DataFrame(summary_rows()).to_csv(p, index=False)
    cf = read_chain_file(p)
    assert cf.kind == "book_summary" and cf.underlying == "ETH" and len(cf.snapshots) == 1
    np.testing.assert_allclose(cf.quotes["mark_iv"], 0.7, atol=1e-6)  # Black(F)/F inverted at the forward
    np.testing.assert_allclose(cf.quotes["ask_coin"] - cf.quotes["mark_coin"], 0.0005)  # asks kept as quoted


@pytest.mark.parametrize("content,message", [
    ("timestamp,open,high,low,close\n2024-01-01,1,2,1,1\n", "is not a Deribit option chain"),
    (None, "mixes underlyings"),
    ("calls", "holds no calls"),
    ("future", "are not Deribit option instruments"),
])
def test_files_that_are_not_chains_are_refused_whole(tmp_path: Path, store: Store, content: str | None,
                                                     message: str) -> None:
    df = ticker_rows(1)
    if content is None:
        df.loc[df.index[-1], "instrument_name"] = "ETH-14APR23-2000-C"
    elif content == "calls":
        df = df[df["instrument_name"].str.endswith("-P")]
    elif content == "future":
        df.loc[0, "instrument_name"] = "BTC-PERPETUAL"
    p = tmp_path / "bad.csv"
    if content and content.startswith("timestamp"):
        p.write_text(content)
    else:
        df.to_csv(p, index=False)
    with pytest.raises(DataError, match=message):
        import_chain(store, p)
    assert store.counts()["chain_snapshots"] == 0


def test_another_underlying_is_refused(ticker_file: Path, store: Store) -> None:
    with pytest.raises(DataError, match="chain of BTC options, not ETH; use --underlying BTC"):
        import_chain(store, ticker_file, "ETH")


class FakeDeribit:
    """Serves public/get_book_summary_by_currency pages in Deribit's reply shape."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows, self.calls = rows, []
        self.rateLimit, self.timeout = 50, 5000

    def public_get_get_book_summary_by_currency(self, params: dict) -> dict:
        self.calls.append(params)
        return {"jsonrpc": "2.0", "result": [r for r in self.rows if r["base_currency"] == params["currency"]]}


def test_fetch_chain_stores_one_live_snapshot(store: Store) -> None:
    fake = FakeDeribit(summary_rows())
    out = fetch_chain(store, "eth", client=fake)
    assert fake.calls == [{"currency": "ETH", "kind": "option"}]
    assert out["new_snapshots"] == 1 and out["quotes"] == 18
    assert list(store.list_snapshots()["snapshot_id"]) == ["ETH-20240108T111941Z"]
    with pytest.raises(DataError, match="returned no BTC options"):
        fetch_chain(store, "BTC", client=fake)


def test_cli_import_chain_and_show(ticker_file: Path, db: Path, capsys) -> None:
    assert main(["data", "import-chain", "--file", str(ticker_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["snapshots"] == 2 and out["dropped"]["placeholder_asks"] == 1
    assert main(["data", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [s["snapshot_id"] for s in shown if s["kind"] == "chain"] == ["BTC-20230412T120000Z",
                                                                         "BTC-20230412T160000Z"]
    assert main(["realism", "--snapshot", "BTC-20230412T12000Z"]) == 2
    assert "did you mean 'BTC-20230412T120000Z'" in capsys.readouterr().err
    # the daily index closed 2023-04-11 is known from midnight: 12 and 16 hours old at the two snapshots
    Store(db).write_iv("csv", "BTC", pd.DataFrame({"ts": pd.to_datetime(["2023-04-12"], utc=True), "iv_ann": [0.6]}))
    assert main(["realism", "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    got = full["snapshots"]
    # against the target: per tenor bucket, the snapshots whose median |IV error| is over 3 vol points
    targets = full["targets"]
    assert targets["target_pts"] == 3.0 and set(targets["snapshots_by_tenor"].values()) == {2}
    for bucket, over in targets["over_target_by_tenor"].items():
        errs = {e["snapshot_id"]: e["index"]["by_tenor"][bucket]["median_abs_iv_error_pts"] for e in got}
        assert over == [k for k, v in errs.items() if v > 3.0]
        assert targets["worst_median_abs_iv_error_pts_by_tenor"][bucket] == max(errs.values())
    assert [(e["snapshot_id"][-7:], e["index_age_h"], e["index"]["atm_input"]) for e in got] == [
        ("120000Z", 12.0, 0.6), ("160000Z", 16.0, 0.6)]
    # the forward: the fixture's futures sit exactly 4 %/yr over the index; each imported snapshot stored that
    # as the basis known at its time, so the model prices with it (as a backtest with basis 'auto' would);
    # --basis calibrated prices with the calibration's one number
    from covcall.calibration import resolve

    shipped = resolve("auto", "BTC", Store(db)).params["basis_ann"]
    assert [(e["basis_ann_real"], e["basis_ann_model"], e["basis_ann_calibrated"]) for e in got] == [
        (pytest.approx(0.04, abs=1e-9), pytest.approx(0.04, abs=1e-9), pytest.approx(shipped))] * 2
    assert main(["realism", "--basis", "calibrated", "--json"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["basis"] == "calibrated"
    assert [e["basis_ann_model"] for e in fixed["snapshots"]] == [pytest.approx(shipped)] * 2
    human = (main(["realism"]), capsys.readouterr().out)
    assert human[0] == 0 and "index age h" in human[1] and "basis real %/yr" in human[1]
    assert "basis used %/yr" in human[1] and "snapshots over 3 vol points (index):" in human[1]
    # expiry by expiry: the real ATM (0.55 in the fixture: the call nearest the forward, x ~ 0) next to the model's
    first = got[0]["index"]
    by_expiry = first["by_expiry"]
    assert [e["expiry"][:10] for e in by_expiry] == ["2023-04-14", "2023-04-21", "2023-04-28", "2023-05-26",
                                                     "2023-06-30"]
    assert [round(e["dte_days"], 2) for e in by_expiry] == [1.83, 8.83, 15.83, 43.83, 78.83]
    assert all(e["atm_strike"] == 30000.0 for e in by_expiry)
    assert [e["real_atm_iv"] for e in by_expiry] == pytest.approx([0.55] * 5, abs=0.005)
    assert sum(e["calls"] for e in by_expiry) == sum(b["calls"] for b in first["by_tenor"].values())
    assert main(["realism", "--snapshot", "BTC-20230412T120000Z"]) == 0
    one = capsys.readouterr().out
    assert "by expiry, ATM input = index" in one and "2023-06-30" in one


# -- the surface ----------------------------------------------------------------------------------------
def test_forward_carry_prices_off_the_future() -> None:
    """With basis b the USD mark is Black(F) S / F, F = S exp(b T): Black-Scholes with b as the rate."""
    p = ChainParams(basis_ann=0.10)
    s, k, t, iv = 30000.0, 32000.0, 0.25, 0.6
    f = s * np.exp(0.10 * t)
    vol = float(smile_iv(iv, s, k, t, p))
    expected = float(call_price(f, k, t, vol)) * s / f
    assert float(mark_call_usd(s, k, t, iv, p)) == pytest.approx(expected, rel=1e-9)
    assert float(smile_iv(iv, s, f, t, p)) == pytest.approx(iv)  # ATM is at the forward, not at spot


def test_term_structure_moves_with_the_state_within_the_states_seen() -> None:
    p = ChainParams(term_slope=0.05, term_state_coef=0.2, term_state_min=0.5, term_state_max=1.5)
    t7 = 7 / 365
    calm, stress = float(atm_iv_at(0.6, t7, p, 0.5)), float(atm_iv_at(0.6, t7, p, 1.5))
    assert calm == pytest.approx(0.6 * (7 / 30) ** (0.05 + 0.2 * np.log(0.5)))
    assert stress == pytest.approx(0.6 * (7 / 30) ** (0.05 + 0.2 * np.log(1.5)))
    assert float(atm_iv_at(0.6, t7, p, 5.0)) == stress  # never extrapolated past the states it was fitted on
    assert float(atm_iv_at(0.6, 30 / 365, p, 5.0)) == pytest.approx(0.6)  # the 30-day point is the input


def test_the_long_end_has_its_own_slope_and_ignores_the_state() -> None:
    p = ChainParams(term_slope=0.05, term_slope_long=-0.02, term_state_coef=0.2, term_state_min=0.5,
                    term_state_max=1.5)
    t90 = 90 / 365
    for state in (0.5, 1.0, 1.5):  # a quarter out: (90/30) ** -0.02 whatever the past week did
        assert float(atm_iv_at(0.6, t90, p, state)) == pytest.approx(0.6 * 3.0**-0.02)
    assert float(atm_iv_at(0.6, 7 / 365, p, 0.5)) == pytest.approx(0.6 * (7 / 30) ** (0.05 + 0.2 * np.log(0.5)))
    old = ChainParams(term_slope=0.05, term_state_coef=0.2, term_state_min=0.5, term_state_max=1.5)
    assert float(atm_iv_at(0.6, t90, old, 0.5)) == pytest.approx(0.6 * 3.0 ** (0.05 + 0.2 * np.log(0.5)))


def _term_points(states: dict[str, float], short_end: Callable[[float, float], float], seed: int = 0) -> pd.DataFrame:
    """Expiries of 1-180 days on four snapshots a day, ATM(T)/ATM(30d) = short_end(state, T) below 30 days,
    (T/30) ** 0.03 beyond, with 0.5 % noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for day, state in states.items():
        for hour in (0, 6, 12, 18):
            ts = pd.Timestamp(day, tz="UTC") + pd.Timedelta(hours=hour)
            for dte in (1, 2, 3, 7, 14, 21, 60, 90, 180):
                ratio = short_end(state, dte) if dte < 30 else (dte / 30) ** 0.03
                rows.append({"snapshot_id": f"S{day}{hour}", "ts": ts, "t_years": dte / 365, "dte_days": dte,
                             "atm30": 0.5, "atm_iv": 0.5 * ratio * np.exp(rng.normal(0, 0.005)), "state": state})
    return pd.DataFrame(rows)


def test_the_term_state_stays_only_if_it_predicts_days_left_out() -> None:
    from covcall.calibration import _fit_term

    states = {"2023-04-10": 0.5, "2023-04-11": 0.7, "2023-04-12": 0.9, "2023-04-13": 1.1, "2023-04-14": 1.3}
    real = _fit_term(_term_points(states, lambda z, d: (d / 30) ** (0.05 + 0.2 * np.log(z))), 30.0)
    assert real["term_state_kept"] and real["term_state_coef"] == pytest.approx(0.2, abs=0.02)
    assert real["term_slope"] == pytest.approx(0.05, abs=0.01)
    assert real["term_slope_long"] == pytest.approx(0.03, abs=0.005)
    # the short end moves from day to day, but not with the state: the state is dropped, the slopes stay
    moves = {0.5: 0.06, 0.7: -0.05, 0.9: 0.0, 1.1: 0.07, 1.3: -0.06}
    noise = _fit_term(_term_points(states, lambda z, d: (d / 30) ** moves[z]), 30.0)
    assert noise["term_state_identified"] and not noise["term_state_kept"]
    assert noise["term_state_coef"] == 0.0 and noise["term_slope_long"] == pytest.approx(0.03, abs=0.005)
    assert noise["term_state_lodo"]["days"] == 5
    one_day = _fit_term(_term_points({"2023-04-10": 0.5}, lambda z, d: 1.0).assign(
        state=lambda f: np.linspace(0.5, 1.0, len(f))), 30.0)
    assert not one_day["term_state_kept"] and one_day["term_state_coef"] == 0.0  # one day cannot say


def test_the_band_moves_the_short_end_as_far_as_it_strayed_on_days_left_out() -> None:
    """ChainParams.short_end_band: the robustness band's short-end scenarios are as wide as the fitted short end
    missed days it was not fitted on (90th percentile of the shift at T -> 0 each 1-7 day expiry needed)."""
    from covcall.calibration import _fit_term

    states = {"2023-04-10": 0.5, "2023-04-11": 0.7, "2023-04-12": 0.9, "2023-04-13": 1.1, "2023-04-14": 1.3}
    shift = {0.5: 0.2, 0.7: -0.2, 0.9: 0.2, 1.1: -0.2, 1.3: 0.0}  # each day's short end, added at T -> 0
    wild = _fit_term(_term_points(states, lambda z, d: 1.0 + shift[z] * (1 - d / 30)), 30.0)
    assert wild["short_end_band"] == pytest.approx(0.22, abs=0.05)
    assert wild["short_end_lodo"]["points"] == 5 * 4 * 4  # 5 days x 4 snapshots x expiries of 1, 2, 3, 7 days
    steady = _fit_term(_term_points(states, lambda z, d: (d / 30) ** 0.05), 30.0)
    assert steady["short_end_band"] == 0.10  # the floor: a steady short end never narrows the band
    one_day = _fit_term(_term_points({"2023-04-10": 0.5}, lambda z, d: 1.0), 30.0)
    assert "short_end_band" not in one_day  # nothing left out to learn from: the default 0.10 stays
    from covcall.chain import ChainParams
    from covcall.sensitivity import scenarios

    names = [s.name for s in scenarios(ChainParams(short_end_band=wild["short_end_band"]).model_dump(), False)]
    assert f"short end low (-{wild['short_end_band']:.2f} at T->0)" in names
    assert "short end high (+0.10 at T->0)" in [s.name for s in scenarios(ChainParams().model_dump(), False)]


def test_calibration_recovers_a_known_surface(ticker_file: Path, store: Store) -> None:
    import_chain(store, ticker_file)
    index = pd.DataFrame({"ts": pd.date_range("2023-03-01", "2023-04-12", freq="D", tz="UTC"), "iv_ann": 0.58})
    params, report = fit_calibration(store.read_chain(list(store.list_snapshots()["snapshot_id"])), index, None,
                                     "BTC")
    assert params["basis_ann"] == pytest.approx(0.04, abs=1e-3)  # the forward was S exp(0.04 T)
    assert params["atm_index_ratio"] == pytest.approx(0.55 / 0.58, abs=0.01)  # ATM 0.55 vs index 0.58
    assert abs(params["term_slope"]) < 0.01  # the hand-made term structure is flat
    assert report["term_state_identified"] is False and params["term_state_coef"] == 0.0


@pytest.mark.parametrize("wing", [0.0, 1.2])
def test_calibration_recovers_the_smile_shape(tmp_path: Path, store: Store, wing: float) -> None:
    """A quadratic smile is fitted as one (the wing at its quadratic end), a winged one with its wing."""
    rows = ticker_rows(wing=wing, curvature=0.08, strikes=np.arange(22000, 60001, 1000))
    path = tmp_path / "smile.csv"
    rows.to_csv(path, index=False)
    import_chain(store, path)
    params, report = fit_calibration(store.read_chain(list(store.list_snapshots()["snapshot_id"])), None, None,
                                     "BTC")
    assert params["smile_curvature"] == pytest.approx(0.08, rel=0.05)
    assert abs(params["curv_tenor_exp"]) < 0.02 and abs(params["skew_slope"]) < 0.005
    if wing:
        assert params["smile_wing"] == pytest.approx(wing, rel=0.05)
    else:
        assert params["smile_wing"] >= 15.0  # within 0.1 % of the quadratic over every listed strike
    assert report["smile_rmse_ratio"] < 0.002
    # the fitted surface prices the hand-made one back: a 45k call 47 days out
    p = ChainParams(**{k: v for k, v in params.items() if k != "atm_index_ratio"})
    t = (pd.Timestamp("2023-05-26 08:00", tz="UTC") - pd.Timestamp(T0, unit="ms", tz="UTC")).days / 365
    f = 30000.0 * np.exp(0.04 * t)
    true = 0.55 * (1 + 0.08 * float(smile_shape(np.log(45000 / f) / (0.55 * np.sqrt(t)), wing)))
    assert float(smile_iv(0.55, 30000.0, 45000.0, t, p)) == pytest.approx(true, abs=0.005)


def test_runs_record_the_calibration_they_priced_with(ticker_file: Path, store: Store) -> None:
    from covcall.backtest import run_backtest

    assert resolve("auto", "BTC", store).calibration_id == "default-BTC"  # nothing stored: the shipped one
    import_chain(store, ticker_file)
    store.write_iv("csv", "BTC", pd.DataFrame({"ts": pd.date_range("2023-03-01", "2023-04-12", freq="D",
                                                                     tz="UTC"), "iv_ann": 0.58}))
    cal = calibrate(store, "BTC", now=pd.Timestamp("2026-01-01", tz="UTC"))
    res = run_backtest({"start": "2023-01-01", "end": "2023-01-31"}, store=store)
    assert res.calibration_id == cal.calibration_id == "BTC-v1"
    assert store.get_run(res.run_id)["calibration_id"] == "BTC-v1"
    assert res.config.chain.basis_ann == pytest.approx(cal.params["basis_ann"])
    plain = run_backtest({"start": "2023-01-01", "end": "2023-01-31", "calibration": "none"})
    assert plain.calibration_id is None and plain.config.chain.basis_ann == 0.0
    chain, used = chain_for(ChainParams(basis_ann=0.2), "auto", "BTC", store)  # explicit fields win
    assert used == "BTC-v1" and chain.basis_ann == 0.2
    # a surface pinned before the smile's wing and the long slope existed (an older walk's spec) stays as it was
    from covcall.calibration import ADDED_LATER, FITTED

    old = ChainParams(**{k: cal.params.get(k, getattr(ChainParams(), k)) for k in FITTED if k not in ADDED_LATER})
    chain, used = chain_for(old, "auto", "BTC", store)
    assert chain is old and chain.smile_wing == 0.0 and chain.term_slope_long is None


# -- the reference data (skipped without ../shared/data) ------------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from tests_shared import reference_store_or_skip

    return reference_store_or_skip(tmp_path_factory.mktemp("reference"))


def test_reference_files_import_with_the_documented_counts(reference: Store) -> None:
    snaps = reference.list_snapshots()
    assert snaps.groupby("underlying").size().to_dict() == {"BTC": 17, "ETH": 17}  # 16 April + 2024-01-08


def test_the_shipped_band_is_wider_where_the_short_end_strayed_more(reference: Store) -> None:
    """Measured on the reference snapshots: ETH's short end strayed about twice as far as BTC's on days the fit did
    not see, so an ETH run's robustness band moves its short end about twice as far."""
    from covcall.calibration import packaged_defaults

    cal = {u: calibrate(reference, u, now=pd.Timestamp("2000-01-01", tz="UTC")) for u in ("BTC", "ETH")}
    assert cal["BTC"].params["short_end_band"] == 0.10  # its own 0.08 is floored
    assert cal["BTC"].errors["short_end_lodo"]["p90"] == pytest.approx(0.08, abs=0.02)
    assert cal["ETH"].params["short_end_band"] == pytest.approx(0.23, abs=0.03)
    for u in ("BTC", "ETH"):  # what ships is what these files give
        assert packaged_defaults()[u]["params"]["short_end_band"] == pytest.approx(cal[u].params["short_end_band"])


def test_realism_on_the_reference_snapshots(reference: Store) -> None:
    """Levels the calibrated model reaches (docs/chain.md has the full tables, from `covcall realism`)."""
    from covcall.realism import realism, realism_table

    out = realism(reference, calibration="auto")
    table = realism_table(out, "index")
    april = table[~table["snapshot_id"].str.contains("2024")]
    typical = april.groupby("tenor")["median_abs_iv_error_pts"].median()
    assert typical["7-30d"] <= 3.0 and typical[">30d"] <= 2.0 and typical["<7d"] <= 4.0
    # beyond 30 days every April snapshot meets the 3 points (the long end's own slope, no state)
    assert april[april["tenor"] == ">30d"]["median_abs_iv_error_pts"].max() <= 3.0
    listed = [e["index"]["expiry_overlap"] for e in out["snapshots"] if e["index"]]
    assert min(listed) >= 0.8
