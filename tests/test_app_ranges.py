"""AppTest: the Ranges page validates as the user edits, blocks saving bad sets and keeps saved ones."""

from __future__ import annotations

from datetime import date

from apptest_support import errors, no_exception, open_page

from covcall.ranges import load_range_set, presets, rolling
from covcall.store import Store

PAGE = "pages/ranges.py"


def edit_training(at, rows):
    """What the editor hands back after the user typed these rows (its base rows in session state)."""
    at.session_state["ranges_train"] = rows
    at.run()


def real_history_preset(at):
    """The real-history preset is offered with real prices (source store), not on the synthetic market."""
    assert "btc-regimes" not in at.selectbox(key="ranges_preset_pick").options
    at.selectbox(key="ranges_source").set_value("store").run()
    assert at.selectbox(key="ranges_preset_pick").options == ["btc-regimes"]
    at.selectbox(key="ranges_preset_pick").set_value("btc-regimes")
    at.button(key="ranges_use_preset").click().run()


def test_the_synthetic_market_opens_with_its_own_regime_preset(app_db):
    at = open_page(PAGE)
    assert at.text_input(key="ranges_name").value == "synthetic-btc-seed7"
    assert not errors(at)


def test_overlapping_training_range_shows_the_overlap_and_disables_save(app_db):
    at = open_page(PAGE)
    real_history_preset(at)
    assert not at.button(key="ranges_save").disabled  # the btc-regimes preset is valid
    rows = [dict(r) for r in at.session_state["ranges_train"]]
    rows.append({"start": date(2024, 5, 1), "end": date(2024, 8, 31), "note": "too late"})
    edit_training(at, rows)
    no_exception(at)
    msg = ("train range 4 (2024-05-01 .. 2024-08-31) overlaps the test range (2024-01-01 .. 2024-06-30) "
           "by 61 days (2024-05-01 .. 2024-06-30): move it before the test range: 2023-08-01 .. 2023-12-01 "
           "keeps its 123 days and a gap of 30 days")
    assert msg in errors(at)
    assert at.button(key="ranges_save").disabled
    at.button(key="ranges_fix_0").click().run()  # the suggested fix yields a valid set
    assert "fix applied: train range 4 is now 2023-08-01 .. 2023-12-01" in [x.value for x in at.success]
    assert not errors(at) and not at.button(key="ranges_save").disabled
    assert at.session_state["ranges_train"][3]["start"] == date(2023, 8, 1)


def test_reversed_and_half_filled_rows_are_errors(app_db):
    at = open_page(PAGE)
    edit_training(at, [{"start": date(2023, 6, 1), "end": date(2023, 1, 1), "note": ""},
                       {"start": date(2023, 2, 1), "end": None, "note": "half"}])
    shown = errors(at)
    assert "train range 1 (2023-06-01 .. 2023-01-01): start is after end; swap them" in shown
    assert "train range 2: pick both a start and an end date" in shown
    assert at.button(key="ranges_save").disabled


def test_short_gap_warns_and_strict_makes_it_an_error(app_db):
    at = open_page(PAGE)
    real_history_preset(at)
    edit_training(at, [{"start": date(2023, 6, 1), "end": date(2023, 12, 20), "note": ""}])
    assert any("labels leak" in w.value for w in at.warning)
    assert not at.button(key="ranges_save").disabled
    at.checkbox(key="ranges_strict").check().run()
    assert any("labels leak" in e for e in errors(at))
    assert at.button(key="ranges_save").disabled


def test_saved_set_survives_bad_edits_and_loads_back(app_db):
    at = open_page(PAGE)
    real_history_preset(at)
    at.text_input(key="ranges_name").set_value("my-set").run()
    at.button(key="ranges_save").click().run()
    assert any("range set 'my-set' created" in s.value for s in at.success)
    store = Store(app_db)
    saved = load_range_set(store, "my-set")
    assert saved.train == presets()["btc-regimes"].train
    # Bad edits: the test range reversed. Nothing can be saved and the stored set is untouched.
    at.date_input(key="ranges_test_end").set_value(date(2023, 12, 1)).run()
    assert any("start is after end" in e for e in errors(at))
    assert at.button(key="ranges_save").disabled
    assert load_range_set(store, "my-set") == saved
    at.selectbox(key="ranges_load_pick").set_value("my-set")
    at.button(key="ranges_load").click().run()
    no_exception(at)
    assert any("loaded range set 'my-set'" in s.value for s in at.success)
    assert at.date_input(key="ranges_test_end").value == date(2024, 6, 30)
    assert not errors(at)


def test_preset_suggestion_and_rolling_fill_the_editor(app_db):
    at = open_page(PAGE)
    at.selectbox(key="ranges_preset_pick").set_value("synthetic-eth-seed7")
    at.button(key="ranges_use_preset").click().run()
    assert at.text_input(key="ranges_name").value == "synthetic-eth-seed7"
    assert len(at.session_state["ranges_train"]) >= 1
    at.selectbox(key="ranges_underlying").set_value("ETH").run()
    at.button(key="ranges_suggest").click().run()
    no_exception(at)
    assert any(s.value.startswith("suggested ") and "ETH regimes" in s.value for s in at.success)
    rows = at.session_state["ranges_train"]
    assert rows and all(r["note"].split(":")[0] in ("bull", "chop", "dump") for r in rows)
    at.number_input(key="ranges_roll_count").set_value(3).run()
    at.selectbox(key="ranges_roll_pick").set_value("rolling-2")
    at.button(key="ranges_use_window").click().run()
    assert at.text_input(key="ranges_name").value == "rolling-2"
    expected = rolling(date(2022, 1, 1), 180, 60, 60, at.number_input(key="ranges_gap_days").value, 3)[1]
    assert at.date_input(key="ranges_test_start").value == expected.test.start
    assert len(at.session_state["ranges_train"]) == 1
    assert not errors(at)


def test_ranges_survive_a_round_trip_through_home(app_db):
    at = open_page(PAGE)
    at.date_input(key="ranges_test_start").set_value(date(2024, 2, 1)).run()
    at.date_input(key="ranges_test_end").set_value(date(2024, 5, 31)).run()
    at.number_input(key="ranges_gap_days").set_value(40).run()
    at.text_input(key="ranges_name").set_value("kept-set").run()
    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()
    assert at.date_input(key="ranges_test_start").value == date(2024, 2, 1)
    assert at.date_input(key="ranges_test_end").value == date(2024, 5, 31)
    assert at.number_input(key="ranges_gap_days").value == 40
    assert at.text_input(key="ranges_name").value == "kept-set"


def test_saving_over_a_different_set_asks_first(app_db):
    at = open_page(PAGE)
    at.text_input(key="ranges_name").set_value("mine").run()
    at.button(key="ranges_save").click().run()
    saved = load_range_set(Store(app_db), "mine")
    at.number_input(key="ranges_gap_days").set_value(int(saved.gap_days) + 5).run()
    at.button(key="ranges_save").click().run()
    assert any("already saved" in w.value for w in at.warning)
    assert load_range_set(Store(app_db), "mine").gap_days == saved.gap_days  # not replaced yet
    at.button(key="ranges_keep_saved").click().run()
    assert load_range_set(Store(app_db), "mine").gap_days == saved.gap_days
    at.button(key="ranges_save").click().run()
    at.button(key="ranges_overwrite").click().run()
    assert load_range_set(Store(app_db), "mine").gap_days == saved.gap_days + 5
