"""LightGBM model policies: purging, time-ordered validation, determinism, explanations, persistence."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from covcall.errors import CovcallError
from covcall.explain import explain
from covcall.metrics import auc, brier, calibration_table, log_loss
from covcall.models import (
    FEATURES,
    TARGETS,
    list_models,
    load_model,
    model_diagnostics,
    predict,
    predict_proba,
    purge_rows,
    save_model,
    split_train_valid,
    train_model,
)
from covcall.policies.base import premium_score
from covcall.policies.model import ModelPolicy, load_model_policy
from covcall.policies.rule import RulePolicy
from covcall.ranges import Range

SPOT = 50_000.0
ALL = [Range(date(2022, 1, 1), date(2023, 12, 31))]
FAST = {"learning_rate": 0.1}  # keeps each training well under a second


def rigged_candidates(days: int = 500, per_day: int = 10, seed: int = 0) -> pd.DataFrame:
    """Daily decisions; beating HODL happens exactly for delta in 0.18-0.22 and DTE 6-9 days."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    t0 = pd.Timestamp("2022-01-01 08:00", tz="UTC")
    decision = t0 + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
    rigged = np.tile(np.arange(per_day) < 3, days)  # 3 of every 10 candidates sit inside the sweet spot
    delta = np.where(rigged, rng.uniform(0.18, 0.22, n), rng.uniform(0.05, 0.5, n))
    dte = np.where(rigged, rng.uniform(6.0, 9.0, n), rng.uniform(1.0, 30.0, n))
    inside = (delta >= 0.18) & (delta <= 0.22) & (dte >= 6.0) & (dte <= 9.0)
    iv = rng.uniform(0.4, 1.0, n)
    rv = np.repeat(rng.uniform(0.3, 0.9, days), per_day)
    premium_pct = rng.uniform(0.001, 0.03, n)
    pct = np.where(inside, 0.02, -0.01) + rng.uniform(-0.004, 0.004, n)
    pnl = pct * SPOT
    return pd.DataFrame({
        "run_id": "r1", "decision_time": decision, "underlying": "BTC", "timeframe": "1d",
        "instrument": [f"BTC-X-{i}" for i in range(n)], "expiry": decision + pd.to_timedelta(dte, unit="D"),
        "strike": SPOT * (1 + delta), "dte_days": dte, "delta": delta, "iv_ann": iv, "spot": SPOT,
        "moneyness": rng.uniform(1.0, 1.3, n), "premium_coin": premium_pct, "premium_usd": premium_pct * SPOT,
        "premium_pct": premium_pct, "mark_usd": premium_pct * SPOT, "spread_pct": rng.uniform(0.01, 0.2, n),
        "score": premium_score(premium_pct * SPOT, SPOT, dte, delta),
        "atm_iv_ann": np.repeat(rng.uniform(0.4, 0.9, days), per_day), "rv_ann": rv, "iv_rv": iv / rv,
        "ret_1d": np.repeat(rng.normal(0, 0.03, days), per_day),
        "ret_7d": np.repeat(rng.normal(0, 0.08, days), per_day),
        "ret_30d": np.repeat(rng.normal(0, 0.15, days), per_day),
        "exit_style": "hold_to_expiry", "chosen": False,
        "reward": pnl + rng.normal(0, 500, n), "pnl_vs_hodl": pnl, "pnl_vs_hodl_pct": pct,
        "label_end": decision + pd.to_timedelta(dte, unit="D"), "exit_reason": "expiry",
    })


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return rigged_candidates()


@pytest.fixture(scope="module")
def model(table: pd.DataFrame):
    return train_model(table, ALL, name="Rigged BTC", purge_days=2, params=FAST)


def fresh_chain() -> dict[str, np.ndarray]:
    """One decision's candidates as the engine hands them to a policy (chain columns + broadcast state)."""
    delta = np.array([0.30, 0.20, 0.12, 0.40, 0.25])
    dte = np.array([3.0, 7.5, 14.0, 21.0, 10.0])
    premium_pct = np.array([0.010, 0.004, 0.006, 0.02, 0.005])
    bid = premium_pct * SPOT
    iv = np.array([0.6, 0.55, 0.5, 0.65, 0.52])
    n = len(delta)
    return {
        "instrument": np.array([f"BTC-{i}" for i in range(n)]), "expiry": np.zeros(n), "strike": SPOT * (1 + delta),
        "dte_days": dte, "t_years": dte / 365, "delta": delta, "iv_ann": iv, "bid_usd": bid, "ask_usd": bid * 1.05,
        "mark_usd": bid * 1.02, "moneyness": 1 + delta, "premium_pct": premium_pct, "spread_pct": np.full(n, 0.05),
        "score": premium_score(bid, SPOT, dte, delta), "rv_ann": np.full(n, 0.5), "atm_iv_ann": np.full(n, 0.55),
        "ret_1d": np.full(n, 0.01), "ret_7d": np.full(n, 0.02), "ret_30d": np.full(n, -0.05), "iv_rv": iv / 0.5,
    }


def test_features_are_decision_time_ratios_not_price_levels() -> None:
    for level in ("spot", "strike", "premium_usd", "mark_usd", "premium_coin"):
        assert level not in FEATURES
    for leak in ("reward", "pnl_vs_hodl", "pnl_vs_hodl_pct", "label_end", "exit_reason", "chosen"):
        assert leak not in FEATURES
    assert set(TARGETS) == {"pnl_vs_hodl_pct", "reward_pct", "pnl_vs_hodl"}


def test_model_policy_picks_the_rigged_candidate_and_the_rule_policy_does_not(model) -> None:
    chain = fresh_chain()
    pol = ModelPolicy(model)
    mask = pol.universe(chain)
    assert mask.all()
    choice = pol.choose(chain, {})
    assert choice.index == 1  # delta 0.20, 7.5 days: the sweet spot
    assert choice.best_score > 0.015  # about the rigged +2 % of the position
    np.testing.assert_allclose(choice.scores, predict(model, chain))
    assert np.all(np.delete(choice.scores, 1) < 0)
    rule = RulePolicy()
    assert rule.choose(chain, {}).index == 0  # the rule chases the short, rich call

    high = ModelPolicy(model, threshold=float(choice.scores.max()) + 1e-6)
    skip = high.choose(chain, {})
    assert skip.index is None and skip.reason == "score_below_threshold"
    assert skip.best_score == pytest.approx(choice.best_score)
    empty = {k: v[:0] for k, v in chain.items()}
    assert pol.choose(empty, {}).reason == "no_candidates"


def test_classifier_separates_perfectly_and_diagnostics_are_complete(model) -> None:
    d = model.diagnostics
    assert d["auc"] > 0.999
    assert d["rank_ic"] > 0.5
    assert d["rmse"] < 0.01
    assert d["base_rate"] == pytest.approx(0.3 + 0.7 * 0.04 / 0.45 * 3 / 29, abs=0.03)
    # the last 100 of 500 decision days are the untouched test tail, the 100 before validate (purged)
    assert d["n_train"] == model.n_train and d["n_test"] == 100 * 10 and 0 < d["n_valid"] < 100 * 10
    assert 0 < d["best_iteration"] <= 200
    assert len(d["calibration"]) == 10 and sum(b["count"] for b in d["calibration"]) == d["n_test"]
    top = [f["feature"] for f in d["feature_importance"][:2]]
    assert set(top) == {"delta", "dte_days"}
    assert {f["feature"] for f in d["feature_importance"]} == set(FEATURES)
    p = predict_proba(model, fresh_chain())
    assert int(np.argmax(p)) == 1 and p[1] > 0.9


def test_metric_helpers_match_hand_numbers() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([0.2, 0.7, 0.9, 0.4])
    assert auc(y, p) == 1.0
    assert auc(y, 1 - p) == 0.0
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert brier(y, p) == pytest.approx((0.04 + 0.09 + 0.01 + 0.16) / 4)  # 0.075
    assert log_loss(y, p) == pytest.approx(0.29900115, abs=1e-8)  # -(ln .8 + ln .7 + ln .9 + ln .6) / 4
    assert float(np.mean(y)) == 0.5
    assert math.isnan(auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    cal = calibration_table(y, p, bins=2)
    assert cal == [{"bin": 1, "mean_pred": pytest.approx(0.3), "observed": 0.0, "count": 2},
                   {"bin": 2, "mean_pred": pytest.approx(0.8), "observed": 1.0, "count": 2}]


def test_purge_keeps_rows_whose_decision_and_label_both_fall_inside() -> None:
    ts = pd.Timestamp
    df = pd.DataFrame({
        "decision_time": [ts("2024-01-01 00:00", tz="UTC"), ts("2024-01-09", tz="UTC"), ts("2024-01-09", tz="UTC"),
                          ts("2023-12-31 23:00", tz="UTC"), ts("2024-01-10 08:00", tz="UTC"),
                          ts("2024-01-20", tz="UTC")],
        "label_end": [ts("2024-01-05", tz="UTC"), ts("2024-01-10 23:00", tz="UTC"), ts("2024-01-11 00:00", tz="UTC"),
                      ts("2024-01-02", tz="UTC"), ts("2024-01-12", tz="UTC"), ts("2024-01-22", tz="UTC")],
        "tag": ["in", "in-edge", "label-after-end", "decided-before", "label-after-end-2", "later"],
    })
    one = purge_rows(df, [Range(date(2024, 1, 1), date(2024, 1, 10))])
    assert one["tag"].tolist() == ["in", "in-edge"]
    two = purge_rows(df, [Range(date(2024, 1, 1), date(2024, 1, 10)), Range(date(2024, 1, 20), date(2024, 1, 31))])
    assert len(two) == 3 and two["tag"].tolist()[-1] == "later"
    # naive timestamps (as some exports write them) are read as UTC
    naive = df.assign(decision_time=df["decision_time"].dt.tz_localize(None),
                      label_end=df["label_end"].dt.tz_localize(None))
    assert len(purge_rows(naive, [Range(date(2024, 1, 1), date(2024, 1, 10))])) == 2


def test_no_training_label_touches_the_test_range(table: pd.DataFrame) -> None:
    # the test range is 2022-10-15 .. 2022-12-15; the training ranges sit either side of it
    train = [Range(date(2022, 1, 1), date(2022, 10, 14)), Range(date(2022, 12, 16), date(2023, 12, 31))]
    rows = purge_rows(table, train)
    lo, hi = pd.Timestamp("2022-10-15", tz="UTC"), pd.Timestamp("2022-12-16", tz="UTC")
    # the interval [decision_time, label_end] of every kept row lies wholly before or wholly after the test
    assert ((rows["label_end"] < lo) | (rows["decision_time"] >= hi)).all()
    dropped = table.loc[(table["decision_time"] < pd.Timestamp("2022-10-15", tz="UTC"))
                        & (table["label_end"] >= lo)]
    assert len(dropped) > 0 and not dropped.index.isin(rows.index).any()
    m = train_model(table, [train[0]], name="before test", params=FAST)
    assert m.trained_until < lo


def test_validation_tail_is_strictly_after_training_plus_purge_gap(table: pd.DataFrame, model) -> None:
    rows = purge_rows(table, ALL)
    tr, va, te = split_train_valid(rows, valid_fraction=0.2, purge_days=3)
    assert te.empty
    first_valid = va["decision_time"].min()
    assert tr["decision_time"].max() < first_valid
    assert tr["label_end"].max() < first_valid - pd.Timedelta(days=3)
    assert not tr.index.isin(va.index).any()
    days = rows["decision_time"].nunique()
    assert va["decision_time"].nunique() == days - int(days * 0.8)
    # rows decided before the tail whose label reaches into it are in neither set
    straddling = rows.loc[(rows["decision_time"] < first_valid)
                          & (rows["label_end"] >= first_valid - pd.Timedelta(days=3))]
    assert len(straddling) > 0 and len(tr) + len(va) + len(straddling) == len(rows)
    d = model.diagnostics
    assert pd.Timestamp(d["train_last_label_end"]) < pd.Timestamp(d["valid_first_decision"]) - pd.Timedelta(days=2)
    assert pd.Timestamp(d["train_last_decision"]) < pd.Timestamp(d["valid_first_decision"])


def test_training_twice_gives_the_same_model(table: pd.DataFrame, model) -> None:
    again = train_model(table, ALL, name="Rigged BTC", purge_days=2, params=FAST)
    assert again.model_id == model.model_id and model.model_id.startswith("rigged-btc-")
    assert np.array_equal(predict(again, table), predict(model, table))
    other_seed = train_model(table, ALL, name="Rigged BTC", purge_days=2, params=FAST, seed=8)
    assert other_seed.model_id != model.model_id


def test_explain_contributions_sum_to_the_prediction(model) -> None:
    chain = fresh_chain()
    preds = predict(model, chain)
    for row in range(len(preds)):
        ex = explain(model, chain, row)
        assert ex["feature"].tolist() == [*FEATURES, "bias"]
        assert np.isclose(ex["contribution"].sum(), preds[row])
        assert ex.loc[ex["feature"] == "delta", "value"].item() == chain["delta"][row]
    with pytest.raises(CovcallError, match="out of range"):
        explain(model, chain, 99)


def test_save_and_load_round_trip_through_text_files(tmp_path, table: pd.DataFrame, model) -> None:
    from covcall.store import Store

    if not hasattr(Store, "save_model_row"):
        pytest.skip("Store.save_model_row not available yet")
    store = Store(tmp_path / "covcall.duckdb")
    model_id = save_model(store, model, tmp_path / "models")
    assert model_id == model.model_id
    folder = tmp_path / "models" / model_id
    assert sorted(p.name for p in folder.iterdir()) == ["classifier.txt", "regressor.txt"]
    assert (folder / "regressor.txt").read_text().startswith("tree")
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))

    loaded = load_model(store, model_id)
    assert np.array_equal(predict(loaded, table), predict(model, table))
    assert np.array_equal(predict_proba(loaded, table), predict_proba(model, table))
    assert loaded.features == FEATURES and loaded.ranges == ALL and loaded.trained_until == model.trained_until.floor("us")
    listed = list_models(store)
    assert listed["model_id"].tolist() == [model_id] and listed["n_train"].item() == model.n_train
    diag = model_diagnostics(store, model_id)
    assert diag["auc"] == model.diagnostics["auc"] and isinstance(diag["feature_importance"], list)
    assert isinstance(diag["calibration"][0], dict)

    pol = load_model_policy(store, model_id, threshold=0.001, dte_range=(5, 10), delta_range=(0.1, 0.3))
    chain = fresh_chain()
    assert pol.universe(chain).tolist() == [False, True, False, False, True]
    assert pol.choose(chain, {}).index == 1
    with pytest.raises(CovcallError, match=f"did you mean '{model_id}'"):
        load_model(store, model_id[:-1] + "x")


def test_too_few_rows_is_a_clear_error(table: pd.DataFrame) -> None:
    small = table.iloc[:150]
    with pytest.raises(CovcallError, match="only 150 candidate rows fall inside the training ranges after purging"):
        train_model(small, ALL, name="tiny")
    with pytest.raises(CovcallError, match="did you mean 'pnl_vs_hodl_pct'"):
        train_model(table, ALL, name="x", target="pnl_vs_hodl_pc")


def test_reward_target_uses_reward_over_spot(table: pd.DataFrame) -> None:
    m = train_model(table.iloc[:3000], ALL, name="reward", target="reward_pct",
                    params={**FAST, "num_boost_round": 30})
    assert m.target == "reward_pct" and m.diagnostics["classifier_label"] == "reward > 0"
    assert m.diagnostics["best_iteration"] <= 30


def test_backtest_then_train_then_model_backtest_end_to_end(tmp_path) -> None:
    from covcall.backtest import run_backtest
    from covcall.store import Store

    if not hasattr(Store, "save_model_row"):
        pytest.skip("Store.save_model_row not available yet")
    store = Store(tmp_path / "covcall.duckdb")
    wide = {"dte_min_days": 2, "delta_min": 0.05, "delta_max": 0.5}
    run = run_backtest({"start": "2022-01-01", "end": "2023-06-30", **wide}, store=store)
    rows = store.read_candidates([run.run_id])
    train_range = Range(date(2022, 1, 1), date(2023, 6, 30))
    m = train_model(rows, [train_range], name="synthetic btc", params=FAST)
    assert m.trained_until < pd.Timestamp("2023-07-01", tz="UTC")
    assert m.n_train == m.diagnostics["n_train"] and m.n_train + m.diagnostics["n_valid"] <= len(rows)
    save_model(store, m, tmp_path / "models")
    out = run_backtest({"start": "2023-08-01", "end": "2023-12-31", "policy": "model", "model_id": m.model_id,
                        **wide}, store=store)
    assert len(out.trades) > 0
    chosen = out.candidates.loc[out.candidates["chosen"]]
    assert len(chosen) == len(out.trades)
    # what the policy ranked by is what predict() says for the rows it chose
    per_decision = out.candidates.assign(pred=predict(m, out.candidates)).groupby("decision_time")["pred"].max()
    np.testing.assert_allclose(predict(m, chosen), per_decision.loc[chosen["decision_time"]].to_numpy())


def test_diagnostics_come_from_an_untouched_purged_and_embargoed_test_tail(table: pd.DataFrame) -> None:
    rows = purge_rows(table, ALL)
    tr, va, te = split_train_valid(rows, valid_fraction=0.2, purge_days=1, embargo_days=3, test_fraction=0.2)
    assert len(tr) and len(va) and len(te)
    # blocks in time order, labels of a block end before the next block starts (minus the purge)
    assert tr["label_end"].max() < va["decision_time"].min() - pd.Timedelta(days=1)
    assert va["label_end"].max() < te["decision_time"].min() - pd.Timedelta(days=1)
    # the embargo: nothing in the first 3 days after the previous block's boundary
    valid_start = rows.loc[rows["decision_time"] > tr["decision_time"].max(), "decision_time"].min()
    assert va["decision_time"].min() >= valid_start + pd.Timedelta(days=3)
    m = train_model(table, ALL, name="held out", params=FAST, purge_days=1, embargo_days=3, test_fraction=0.2)
    d = m.diagnostics
    assert d["n_test"] == len(te) and d["diagnostics_on"].startswith("test tail")
    assert d["test_first_decision"] == te["decision_time"].min().isoformat()
    # rank IC recomputed on the test tail from the model's own predictions equals the reported one
    from covcall.metrics import spearman
    assert d["rank_ic"] == pytest.approx(spearman(predict(m, te), te["pnl_vs_hodl_pct"].to_numpy(float)))


def test_bad_split_fractions_are_refused(table: pd.DataFrame) -> None:
    rows = purge_rows(table, ALL)
    with pytest.raises(CovcallError, match="leave at least 10 %"):
        split_train_valid(rows, valid_fraction=0.5, test_fraction=0.45)
    with pytest.raises(CovcallError, match="test_fraction must be between 0 and 1"):
        split_train_valid(rows, test_fraction=1.0)
