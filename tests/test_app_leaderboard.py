"""AppTest: the Leaderboard page walks a range set, ranks variants with PSR/DSR and reopens earlier walks."""

from __future__ import annotations

from datetime import date

import pytest
from apptest_support import errors, no_exception, open_page, texts

from covcall.ranges import RangeSet, save_range_set
from covcall.store import Store

PAGE = "pages/leaderboard.py"
SHORT = {"name": "short", "rangeTrain": [{"startDate": "2022-01-01", "endDate": "2022-06-30", "note": "h1"}],
         "rangeTest": {"startDate": "2022-09-01", "endDate": "2022-11-30", "note": "autumn"}, "gap_days": 45}


@pytest.fixture
def db(app_db):
    path = app_db
    save_range_set(Store(path), RangeSet.from_dict(SHORT))
    return path


def board(at):
    return next(d.value for d in at.dataframe if "strategy" in d.value.columns)


def test_walk_ranks_variants_and_shows_models(db):
    at = open_page(PAGE)
    assert at.selectbox(key="leaderboard_range_set").value == "short"
    # before it runs: what Walk would start (`covcall walk --plan`)
    import re

    assert any(re.fullmatch(r"\d+ units, about [\d.]+ s of backtests on one core; runs on: .+", c.value)
               for c in at.caption)
    at.text_input(key="leaderboard_name").set_value("ui-walk").run()
    at.button(key="leaderboard_walk").click().run()
    no_exception(at)
    assert not errors(at)
    table = board(at)
    walk = Store(db).list_walks().iloc[0]
    assert walk["name"] == "ui-walk"
    assert "hodl" in set(table["strategy"])
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    assert table[table["kind"] != "baseline"]["strategy"].iloc[0] == walk["best_strategy"]
    assert {"psr", "dsr", "dsr_effective", "trained_until"} <= set(table.columns)
    from covcall.walker import load_walk

    # how many calls each variant sold on the test range: HODL none, the others what their runs say
    stored = load_walk(Store(db), walk["walk_id"]).leaderboard.set_index("strategy")["n_trades"]
    assert dict(zip(table["strategy"], table["n_trades"], strict=True)) == stored.to_dict()
    assert stored["hodl"] == 0 and stored.drop("hodl").max() > 0

    verdict = load_walk(Store(db), walk["walk_id"]).info["verdict"]
    shown = at.success if verdict["passed"] else at.warning
    assert verdict["sentence"] in [v.value for v in shown]  # green only when earned
    assert (verdict["sentence"] in [v.value for v in at.success]) == verdict["passed"]
    labels = {m.label: m.value for m in at.metric}
    sel = load_walk(Store(db), walk["walk_id"]).info["selection"]
    assert labels["Trials behind the ranking"] == str(sel["n_trials"])
    assert labels["Effective trials"] == str(sel["n_effective"])
    # the list of walks carries what each verdict rests on (the Earlier walks table, `covcall walks`)
    listed = Store(db).list_walks().iloc[0]
    assert listed["n_trials"] == sel["n_trials"] and listed["dsr"] == pytest.approx(sel["dsr_best"])
    assert listed["pbo"] == pytest.approx((sel.get("pbo") or {}).get("pbo"), nan_ok=True)
    assert bool(listed["passed"]) == verdict["passed"]
    assert walk["walk_id"] in texts(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 2  # test-range equity plus the model diagnostics
    assert at.selectbox(key="leaderboard_model_pick").options
    # why the model sold or skipped: its contributions add up to the prediction it acted on
    from covcall.explain import explain_decision

    pick = at.selectbox(key="leaderboard_model_pick").value
    stored = load_walk(Store(db), walk["walk_id"]).leaderboard
    row = stored[stored["strategy"] == pick].iloc[0]
    at_time = at.selectbox(key="leaderboard_explain_at").value
    out = explain_decision(Store(db), Store(db).list_models().set_index("name").loc[pick, "model_id"],
                           row["run_id"], at_time, 0.0)
    shown = " ".join(m.value for m in at.markdown)
    assert out["candidates"].iloc[out["best"]]["instrument"] in shown
    assert f"{out['best_prediction']:.4f}" in shown


def test_the_winners_robustness_band_is_judged_on_the_walks_metric(db):
    """The winner rerun on the test range under the assumption grid; "beats HODL" means on the metric the walk
    ranked by (Sharpe here), and the rows are the CLI's (`covcall walk --sensitivity`)."""
    from covcall.sensitivity import verdict, winner_sensitivity
    from covcall.walker import load_walk

    at = open_page(PAGE)
    at.text_input(key="leaderboard_name").set_value("band-walk").run()
    at.button(key="leaderboard_walk").click().run()
    walk = Store(db).list_walks().iloc[0]
    at.button(key=f"leaderboard_band_{walk['walk_id']}_go").click().run()
    no_exception(at)
    assert not errors(at)
    table = next(d.value for d in at.dataframe if "scenario" in d.value.columns)
    want = winner_sensitivity(load_walk(Store(db), walk["walk_id"]), store=Store(db))
    assert list(table["scenario"]) == list(want.table["scenario"]) and table["scenario"].iloc[0] == "base"
    assert list(table["sharpe"]) == pytest.approx(list(want.table["sharpe"]))
    shown = [m.value for m in [*at.success, *at.warning] if m.value.startswith("Verdict:")]
    assert shown == [f"Verdict: {verdict(want.table, 'sharpe')}"] and shown[0].endswith("compared on Sharpe)")
    # it says which run it reran: the winner's, on the walk's test range
    assert any(f"reruns the winner's run on the test range ({want.window[0]} .. {want.window[1]})" in c.value
               for c in at.caption)
    # the band stays on screen across reruns (kept in the session, not recomputed)
    at.run()
    assert any("scenario" in d.value.columns for d in at.dataframe)


def test_metric_and_baselines_change_the_walk(db):
    at = open_page(PAGE)
    at.selectbox(key="leaderboard_metric").set_value("total_return")
    at.multiselect(key="leaderboard_baselines").set_value(["hodl"])
    at.toggle(key="leaderboard_models").set_value(False).run()
    at.button(key="leaderboard_walk").click().run()
    no_exception(at)
    table = board(at)
    assert "total_return" in table.columns
    assert set(table["strategy"]) >= {"hodl"} and "vault_weekly_10d" not in set(table["strategy"])
    assert not any("model" in s for s in table["strategy"])
    assert "This walk trained no models." in texts(at)


def test_overlapping_dates_are_refused_and_nothing_is_saved(db):
    at = open_page(PAGE)
    at.radio(key="leaderboard_range_mode").set_value("Enter dates").run()
    at.date_input(key="leaderboard_train_start").set_value(date(2022, 1, 1))
    at.date_input(key="leaderboard_train_end").set_value(date(2022, 9, 30))
    at.date_input(key="leaderboard_test_start").set_value(date(2022, 9, 1))
    at.date_input(key="leaderboard_test_end").set_value(date(2022, 11, 30)).run()
    at.button(key="leaderboard_walk").click().run()
    no_exception(at)
    assert any("overlaps the test range" in e for e in errors(at))
    assert Store(db).list_walks().empty
    assert Store(db).list_range_sets() == ["short"]


def test_earlier_walk_reopens(db):
    at = open_page(PAGE)
    at.toggle(key="leaderboard_models").set_value(False).run()
    at.button(key="leaderboard_walk").click().run()
    walk_id = Store(db).list_walks()["walk_id"].iloc[0]
    at2 = open_page(PAGE)
    assert "hodl" not in texts(at2)
    at2.selectbox(key="leaderboard_pick").set_value(walk_id)
    at2.button(key="leaderboard_open").click().run()
    no_exception(at2)
    assert walk_id in texts(at2)
    assert "hodl" in set(board(at2)["strategy"])


def test_train_models_only_lists_the_fitted_models(db):
    at = open_page(PAGE)
    at.button(key="leaderboard_train").click().run()
    no_exception(at)
    assert not errors(at)
    stored = Store(db).list_models()
    assert len(stored) == 1 and Store(db).counts()["walks"] == 0  # trained, nothing tested
    table = next(d.value for d in at.dataframe if "model_id" in d.value.columns)
    assert list(table["model_id"]) == list(stored["model_id"])
    assert table["trained until"].iloc[0] <= "2022-07-01"


def test_rolling_folds_with_optuna_and_a_final_holdout(db):
    at = open_page(PAGE)
    at.toggle(key="leaderboard_models").set_value(False)
    at.radio(key="leaderboard_folds").set_value("Rolling folds").run()
    at.date_input(key="leaderboard_roll_start").set_value(date(2021, 1, 1))
    at.number_input(key="leaderboard_roll_train_days").set_value(200)
    at.number_input(key="leaderboard_roll_test_days").set_value(60)
    at.number_input(key="leaderboard_roll_count").set_value(3)
    at.radio(key="leaderboard_tuner").set_value("optuna").run()
    at.number_input(key="leaderboard_budget").set_value(3)
    at.toggle(key="leaderboard_final").set_value(True).run()
    at.date_input(key="leaderboard_final_start").set_value(date(2022, 9, 1))
    at.date_input(key="leaderboard_final_end").set_value(date(2022, 12, 31)).run()
    at.button(key="leaderboard_walk").click().run()
    no_exception(at)
    from covcall.walker import load_walk

    res = load_walk(Store(db), Store(db).list_walks().iloc[0]["walk_id"])
    assert len(res.info["folds"]) == 3 and res.spec["tuner"] == {"method": "optuna", "budget": 3, "space": {}}
    assert res.info["selection"]["n_trials"] == 3 * (3 + 1 + 3)
    shown = texts(at)
    assert "Folds: parameters chosen per fold" in shown and "Final holdout 2022-09-01 .. 2022-12-31" in shown
    folds = next(d.value for d in at.dataframe if "fold" in d.value.columns and "exit_style" in d.value.columns)
    assert list(folds["fold"]) == [1, 2, 3]
    final = next(d.value for d in at.dataframe if list(d.value.columns[:1]) == ["strategy"] and len(d.value) == 2)
    assert list(final["strategy"]) == [res.best_strategy, "hodl"]
    # kept across navigation
    at.switch_page("app.py").run()
    at.switch_page(PAGE).run()
    assert at.radio(key="leaderboard_folds").value == "Rolling folds"
    assert at.toggle(key="leaderboard_final").value is True
