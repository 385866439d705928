"""Scheduled events: the calendar, their variance in option prices, their size fitted from realised moves, the
importer (bad files refused whole, nothing stored lost), the engine and the naive loop agreeing with events, and
the CPI-day snapshots on the reference data (skipped without ../shared/data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.chain import ChainParams, atm_iv_at, build_chain, mark_call_usd
from covcall.cli import main
from covcall.errors import DataError
from covcall.events import (
    EventVariance,
    calendar_for,
    fit_event_moves,
    import_events,
    packaged_calendar,
)
from covcall.pricing import call_price
from covcall.store import Store

CPI = pd.Timestamp("2023-04-12 12:30", tz="UTC")
DAY_NS = 86_400 * 10**9


def calendar(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame({"ts": [pd.Timestamp(t, tz="UTC") for t, _, _ in rows], "kind": [k for _, k, _ in rows],
                         "underlying": "*", "move": [m for _, _, m in rows], "label": ""})


# -- the variance of events between two times -----------------------------------------------------------------
def test_events_count_after_now_and_up_to_the_expiry() -> None:
    ev = EventVariance.build(calendar(("2023-04-12 12:30", "cpi", 0.02), ("2023-05-03 18:00", "fomc", 0.03)),
                             "BTC", ChainParams())
    at = CPI.value
    assert float(ev.between(at - 1, at)) == pytest.approx(0.0004)  # an event at the expiry itself counts
    assert float(ev.between(at, at + DAY_NS)) == 0.0  # one at the decision time is already out
    assert float(ev.between(at - 1, at + 30 * DAY_NS)) == pytest.approx(0.0004 + 0.0009)
    assert ev.between(np.array([[at - 1], [at]]), np.array([[at, at + 30 * DAY_NS]])).shape == (2, 2)


def test_fitted_sizes_apply_where_the_calendar_gives_none_and_scale_zero_turns_them_off() -> None:
    cal = calendar(("2023-04-12 12:30", "cpi", np.nan), ("2023-04-13 12:30", "other", 0.05))
    p = ChainParams(event_move_cpi=0.02)
    ev = EventVariance.build(cal, "ETH", p)
    assert float(ev.between(CPI.value - 1, CPI.value + 2 * DAY_NS)) == pytest.approx(0.02**2 + 0.05**2)
    assert EventVariance.build(cal, "ETH", p.model_copy(update={"event_scale": 0.0})) is None
    assert EventVariance.build(cal.iloc[:1], "ETH", ChainParams()) is None  # no size fitted, none given
    only_btc = cal.assign(underlying=["BTC", "BTC"])
    assert EventVariance.build(only_btc, "ETH", p) is None


def test_an_expiry_after_the_event_carries_its_variance_in_total_variance() -> None:
    """Textbook event vol: total variance = diffusive sigma^2 T + the jump's variance; the input's 30 days keep
    their level (its events taken out of the diffusive part first)."""
    p = ChainParams()
    m, t = 0.025, 2 / 365
    sigma = float(atm_iv_at(0.5, t, p, event_var=m * m, event_var_ref=m * m))
    diffusive = np.sqrt(0.25 - m * m / (30 / 365))
    assert sigma**2 * t == pytest.approx(diffusive**2 * t + m * m)
    assert float(atm_iv_at(0.5, 30 / 365, p, event_var=m * m, event_var_ref=m * m)) == pytest.approx(0.5)
    assert float(atm_iv_at(0.5, t, p, event_var=0.0, event_var_ref=m * m)) == pytest.approx(diffusive)
    # the ATM mark of the two-day option is Black-Scholes at that total variance
    usd = float(mark_call_usd(30000.0, 30000.0, t, 0.5, p, event_var=m * m, event_var_ref=m * m))
    assert usd == pytest.approx(float(call_price(30000.0, 30000.0, t, sigma)), rel=1e-12)


def test_the_chain_prices_the_event_only_into_the_expiries_after_it() -> None:
    p = ChainParams(event_move_cpi=0.025)
    ev = EventVariance.build(calendar(("2023-04-12 12:30", "cpi", np.nan)), "BTC", p)
    t = pd.Timestamp("2023-04-11 12:00", tz="UTC")
    with_ev = build_chain(t, 30000.0, 0.55, "BTC", p, events=ev, names=False)
    plain = build_chain(t, 30000.0, 0.55, "BTC", p, names=False)
    near = np.abs(with_ev["strike"] / 30000.0 - 1) < 0.1
    before = near & (with_ev["expiry"] <= np.datetime64("2023-04-12T08:00"))
    # within the input's 30 days (a one-event calendar leaves later months event-free, hence cheaper)
    after = near & (with_ev["expiry"] > np.datetime64("2023-04-12T08:00")) & (with_ev["dte_days"] < 30)
    assert before.any() and after.any()
    # before the event: only the (slightly lower) diffusive level; after it, every expiry is richer
    assert (with_ev["iv_ann"][before] < plain["iv_ann"][before]).all()
    assert (with_ev["mark_usd"][after] > plain["mark_usd"][after]).all()
    one_day = with_ev["expiry"] == np.datetime64("2023-04-13T08:00")
    atm = one_day & (np.abs(with_ev["strike"] / 30000.0 - 1) < 0.01)
    assert with_ev["iv_ann"][atm].min() > plain["iv_ann"][atm].max() + 0.08  # 44 hours over a 2.5 % release


# -- sizes from realised moves ----------------------------------------------------------------------------------
def test_event_sizes_are_recovered_from_realised_moves() -> None:
    """4h bars with 1 % noise and a 3 % jump at every event: the fit finds the jump, not the noise."""
    rng = np.random.default_rng(3)
    ts = pd.date_range("2021-01-01", "2024-12-31 20:00", freq="4h", tz="UTC")
    r = rng.normal(0, 0.01, len(ts))
    events = pd.date_range("2021-02-10 13:30", periods=44, freq="28D", tz="UTC")
    hit = np.searchsorted(ts.as_unit("ns").asi8, events.as_unit("ns").asi8, side="right") - 1
    r[hit] += rng.normal(0, 0.03, len(hit))
    candles = pd.DataFrame({"ts": ts, "close": 30000.0 * np.exp(np.cumsum(r))})
    fitted = fit_event_moves(candles, calendar(*[(str(e.tz_localize(None)), "cpi", np.nan) for e in events]))
    assert fitted["cpi"]["events"] == 44
    assert fitted["cpi"]["move"] == pytest.approx(0.03, rel=0.2)
    assert fitted["cpi"]["control_rms"] == pytest.approx(0.01 * np.sqrt(2), rel=0.1)  # two 4h bars of noise
    daily = candles.set_index("ts").resample("1D").last().reset_index()
    assert fit_event_moves(daily, calendar(("2023-04-12 12:30", "cpi", np.nan))) == {}  # daily bars: no fit


def test_the_packaged_calendar_is_in_utc_at_the_release_times() -> None:
    cal = packaged_calendar()
    assert set(cal["kind"]) == {"cpi", "fomc"} and (cal["underlying"] == "*").all()
    times = cal.set_index("ts")["kind"]
    assert times[pd.Timestamp("2023-04-12 12:30", tz="UTC")] == "cpi"  # 08:30 New York, summer time
    assert times[pd.Timestamp("2024-01-11 13:30", tz="UTC")] == "cpi"  # winter time
    assert times[pd.Timestamp("2023-05-03 18:00", tz="UTC")] == "fomc"  # 14:00 New York


# -- the importer -------------------------------------------------------------------------------------------
GOOD = "ts,kind,underlying,move_pct,label\n2024-01-10T21:00:00Z,other,ETH,6,spot ETF decision\n" \
       "2024-01-11T13:30:00Z,cpi,,,US CPI\n"


def test_import_is_idempotent_and_stored_events_join_the_calendar(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "events.csv"
    f.write_text(GOOD)
    first = import_events(store, f)
    assert (first["new"], first["updated"], first["kinds"]) == (2, 0, {"other": 1, "cpi": 1})
    again = import_events(store, f)
    assert (again["new"], again["updated"]) == (0, 0)
    f.write_text(GOOD.replace(",6,", ",7,"))
    assert import_events(store, f)["updated"] == 1
    eth, btc = calendar_for("ETH", store), calendar_for("BTC", store)
    assert len(eth) == len(packaged_calendar()) + 1  # the stored CPI row replaces the packaged one
    assert eth.loc[eth["kind"] == "other", "move"].item() == pytest.approx(0.07)
    assert (btc["kind"] != "other").all()  # an ETH event does not move BTC options


@pytest.mark.parametrize("content,message", [
    ("when,kind\n2024-01-10,cpi\n", "not an event calendar: it lacks ts"),
    ("ts,kind\n", "has a header but no rows"),
    ("ts,kind\n2024-13-40T00:00:00Z,cpi\n", "row 2: ts '2024-13-40T00:00:00Z' is not a UTC date-time"),
    ("ts,kind\n2024-01-10T21:00:00Z,cpl\n", "did you mean 'cpi'"),
    ("ts,kind,move_pct\n2024-01-10T21:00:00Z,other,80\n", "move_pct '80' must be a percentage in (0, 50]"),
    ("ts,kind,move_pct\n2024-01-10T21:00:00Z,other,nan\n", "must be a percentage"),
    ("ts,kind,move\n2024-01-10T21:00:00Z,other,0.06\n", "call the column move_pct"),
    ("ts,kind\n2024-01-10T21:00:00Z,cpi\n2024-01-10T21:00:00Z,cpi\n", "listed twice"),
])
def test_bad_calendars_are_refused_whole_and_nothing_stored_changes(store: Store, tmp_path: Path, content: str,
                                                                    message: str) -> None:
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    import_events(store, good)
    before = store.read_events()
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        import_events(store, bad)
    pd.testing.assert_frame_equal(store.read_events(), before)


def test_cli_import_events_and_show(db: Path, tmp_path: Path, capsys) -> None:
    f = tmp_path / "events.csv"
    f.write_text(GOOD)
    assert main(["data", "import-events", "--file", str(f), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["new"] == 2
    assert main(["data", "show", "--json"]) == 0
    shown = [(e["event"], e["underlying"], e["move_pct"]) for e in json.loads(capsys.readouterr().out)
             if e["kind"] == "event"]
    assert shown == [("other", "ETH", 6.0), ("cpi", "*", None)]
    assert main(["data", "show"]) == 0
    assert f"{len(packaged_calendar())} packaged US CPI / FOMC releases" in capsys.readouterr().out
    f.write_text("ts,kind\n2024-01-10T21:00:00Z,cpl\n")
    assert main(["data", "import-events", "--file", str(f)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "did you mean 'cpi'" in err[0]


# -- the engine with events --------------------------------------------------------------------------------
def test_engine_equals_the_naive_loop_with_events() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from naive_engine import naive_simulate

    from covcall.backtest import BacktestConfig, build_market, load_inputs, make_policy, sim_params
    from covcall.engine import simulate

    cfg = BacktestConfig(underlying="BTC", timeframe="4h", start="2023-03-01", end="2023-04-20",
                         exit_style="tp_and_roll", chain={"event_move_cpi": 0.03, "event_move_fomc": 0.02})
    candles, iv = load_inputs(cfg)
    market, first = build_market(cfg, candles, iv, events=packaged_calendar())
    assert market.events is not None and market.events.listed(market.close_ns[0], market.close_ns[-1]) >= 3
    policy, params = make_policy(cfg), sim_params(cfg)
    fast = simulate(market, policy, params, first_decision=first).trades
    naive, _ = naive_simulate(market, policy, params, first_decision=first)
    assert len(fast) > 0 and list(naive.instrument) == list(fast.instrument)
    assert np.allclose(naive.pnl.to_numpy(float), fast.pnl.to_numpy(float), rtol=1e-9, atol=1e-6)
    plain, _ = build_market(cfg, candles, iv)
    base = simulate(plain, policy, params, first_decision=first).trades
    assert fast.premium_usd.sum() != base.premium_usd.sum()  # the events moved the prices


def test_real_data_runs_price_events_and_the_synthetic_market_does_not(db: Path) -> None:
    from covcall.backtest import BacktestConfig, load_events

    assert load_events(BacktestConfig(source="synthetic")) is None
    assert len(load_events(BacktestConfig(source="store"))) == len(packaged_calendar())


# -- the reference snapshots (skipped without ../shared/data) --------------------------------------------------
@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from tests_shared import reference_store_or_skip

    return reference_store_or_skip(tmp_path_factory.mktemp("reference"))


def test_the_cpi_release_snapshots_are_priced_with_the_release(reference: Store) -> None:
    """30 minutes before the 2023-04-12 US CPI release, the <7-day calls: the miss that motivated events."""
    from covcall.realism import realism, realism_table

    cpi = {"BTC-20230412T120003Z", "ETH-20230412T120204Z"}
    errors = {}
    for with_events in (True, False):
        t = realism_table(realism(reference, events=with_events), "index")
        t = t[t["snapshot_id"].isin(cpi) & (t["tenor"] == "<7d")]
        errors[with_events] = t.set_index("snapshot_id")["median_abs_iv_error_pts"]
    assert (errors[True] <= 5.0).all(), errors[True]
    assert (errors[False] >= 8.0).all(), errors[False]
