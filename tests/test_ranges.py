"""Range sets: parsing (ours and the seed's names), every validation rule's message, presets, rolling
windows, regime suggestion and persistence in a real DuckDB file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall import ranges as rg
from covcall.errors import DataError, SpecError
from covcall.ranges import Range, RangeSet, apply_fix, fix_all
from covcall.spec import read_spec_file
from covcall.store import Store

D = date.fromisoformat
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def rs_of(train: list[tuple[str, str]], test: tuple[str, str], gap_days: int = 0, strict: bool = False) -> RangeSet:
    return RangeSet("t", [Range(D(a), D(b)) for a, b in train], Range(D(test[0]), D(test[1])), gap_days, strict)


# -- Range --------------------------------------------------------------------------------------------
def test_range_days_and_overlap_are_inclusive() -> None:
    a = Range(D("2023-01-01"), D("2023-03-31"))
    b = Range(D("2023-03-01"), D("2023-06-30"))
    assert a.days == 90 and b.days == 122
    assert a.overlaps(b) == b.overlaps(a) == 31
    assert a.overlaps(Range(D("2023-03-31"), D("2023-04-01"))) == 1
    assert a.overlaps(Range(D("2023-04-01"), D("2023-04-02"))) == 0


# -- parsing ------------------------------------------------------------------------------------------
SEED = {
    "name": "demo",
    "rangeTrain": [
        {"startDate": "2021-01-01", "endDate": "2021-06-30", "note": "bull"},
        {"startDate": "2022-01-01T00:00:00Z", "endDate": "2022-06-30T23:00:00+00:00"},
    ],
    "rangeTest": {"startDate": "2023-01-01", "endDate": "2023-03-31"},
    "gap_days": 30,
    "metric": "sharpe",
}


def test_seed_names_parse() -> None:
    rs = RangeSet.from_dict(SEED)
    assert rs.name == "demo" and rs.gap_days == 30 and not rs.strict
    assert rs.train[0] == Range(D("2021-01-01"), D("2021-06-30"), "bull")
    assert rs.train[1] == Range(D("2022-01-01"), D("2022-06-30"))
    assert rs.test == Range(D("2023-01-01"), D("2023-03-31"))
    assert rs.max_train_end == D("2022-06-30")


def test_our_names_round_trip() -> None:
    rs = RangeSet.from_dict(SEED)
    again = RangeSet.from_dict(json.loads(json.dumps(rs.to_dict())))
    assert again == rs
    assert rs.to_dict()["train"][0] == {"start": "2021-01-01", "end": "2021-06-30", "note": "bull"}


def test_iso_datetime_with_offset_converts_to_utc_day() -> None:
    rs = RangeSet.from_dict({"train": [{"start": "2021-01-01T23:30:00-02:00", "end": "2021-02-01"}],
                             "test": {"start": "2021-06-01", "end": "2021-06-30"}})
    assert rs.train[0].start == D("2021-01-02")


@pytest.mark.parametrize(("bad", "message"), [
    ({"rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-02-01"}] * 2
      + [{"startDate": "2021-01-01", "endDate": "2021-13-01"}], "rangeTest": SEED["rangeTest"]},
     "rangeTrain[2].endDate: '2021-13-01' is not a day of the calendar; use YYYY-MM-DD"),
    ({"rangeTrain": [{"startDate": "2021-01-01"}], "rangeTest": SEED["rangeTest"]},
     "rangeTrain[0].endDate: missing"),
    ({"rangeTrain": [], "rangeTest": {"startDate": 20230101, "endDate": "2023-02-01"}},
     "rangeTest.startDate: 20230101 is a number, not a date"),
    ({"rangeTrain": []}, "rangeTest: missing"),
    ({**SEED, "gap_days": -3}, "gap_days: -3 must be a whole number from 0 to 36,500"),
    ({**SEED, "strict": "yes"}, "strict: 'yes' must be true or false"),
])
def test_bad_specs_name_the_field(bad: dict, message: str) -> None:
    with pytest.raises(SpecError) as err:
        RangeSet.from_dict(bad)
    assert message in str(err.value)


# -- validation rules -------------------------------------------------------------------------------------
def test_clean_set_has_no_issues() -> None:
    rs = rs_of([("2023-01-01", "2023-03-31")], ("2023-06-01", "2023-06-30"), gap_days=30)
    assert rs.validate(30) == []


def test_start_after_end_is_an_error_naming_the_range() -> None:
    rs = rs_of([("2020-01-01", "2020-03-01"), ("2021-06-30", "2021-01-01")], ("2024-01-01", "2024-06-30"))
    issues = rs.validate()
    assert issues[0].level == "error" and issues[0].code == "start_after_end"
    assert issues[0].message == "train range 2 (2021-06-30 .. 2021-01-01): start is after end; swap them"
    test_rev = rs_of([("2020-01-01", "2020-03-01")], ("2024-06-30", "2024-01-01")).validate()
    assert test_rev[0].message == "test range (2024-06-30 .. 2024-01-01): start is after end; swap them"


def test_overlap_with_test_counts_inclusive_days() -> None:
    rs = rs_of([("2023-01-01", "2023-03-31")], ("2023-03-01", "2023-06-30"))
    (issue,) = rs.validate()
    assert issue.level == "error" and issue.code == "train_overlaps_test"
    assert issue.message == ("train range 1 (2023-01-01 .. 2023-03-31) overlaps the test range "
                             "(2023-03-01 .. 2023-06-30) by 31 days (2023-03-01 .. 2023-03-31): "
                             "end it on or before 2023-02-28")
    assert apply_fix(rs, issue).validate() == []
    inside = rs_of([("2023-04-01", "2023-08-01")], ("2023-03-01", "2023-06-30")).validate()
    assert "by 91 days (2023-04-01 .. 2023-06-30): move it before the test range: 2022-10-29 .. 2023-02-28" \
        in inside[0].message  # never "after the test range": that would train on the future


def test_short_gap_is_a_warning_with_the_leak_in_days() -> None:
    # train ends 2023-12-21: 10 full days (Dec 22..31) before the test; labels need 30
    rs = rs_of([("2023-06-01", "2023-12-21")], ("2024-01-01", "2024-03-31"), gap_days=30)
    (issue,) = rs.validate(max_label_days=7)
    assert issue.level == "warning" and issue.code == "gap_too_short"
    assert issue.message == (
        "train range 1 (2023-06-01 .. 2023-12-21) ends 10 days before the test range starts (2024-01-01) "
        "but needs a gap of 30 days (gap_days=30, longest label horizon 7 days): labels leak 20 days into "
        "the test range; end it on or before 2023-12-01")
    # the label horizon wins when it is longer than gap_days
    (longer,) = rs_of([("2023-06-01", "2023-12-21")], ("2024-01-01", "2024-03-31")).validate(45.5)
    assert "needs a gap of 46 days" in longer.message and "leak 36 days" in longer.message
    # exactly the required gap is clean: end 2023-12-01 leaves Dec 2..31 = 30 days
    assert rs_of([("2023-06-01", "2023-12-01")], ("2024-01-01", "2024-03-31"), gap_days=30).validate(30) == []


def test_short_gap_is_an_error_when_strict() -> None:
    rs = rs_of([("2023-06-01", "2023-12-21")], ("2024-01-01", "2024-03-31"), gap_days=30, strict=True)
    (issue,) = rs.validate()
    assert issue.level == "error" and issue.code == "gap_too_short"
    assert rg.has_errors([issue])


def test_training_after_test_is_a_warning() -> None:
    rs = rs_of([("2024-09-01", "2024-12-31")], ("2024-01-01", "2024-06-30"))
    (issue,) = rs.validate(30)
    assert issue.level == "warning" and issue.code == "train_after_test"
    assert "train range 1 (2024-09-01 .. 2024-12-31) lies entirely after the test range" in issue.message
    assert "training on the future" in issue.message


def test_overlapping_training_ranges_and_uneven_lengths_are_notes() -> None:
    rs = rs_of([("2021-01-01", "2021-12-31"), ("2021-12-01", "2022-01-31")], ("2023-01-01", "2023-06-30"))
    issues = rs.validate()
    assert [i.code for i in issues] == ["train_overlap", "uneven_lengths"]
    assert all(i.level == "note" for i in issues)
    assert issues[0].message.startswith("train ranges 1 (2021-01-01 .. 2021-12-31) and 2 "
                                        "(2021-12-01 .. 2022-01-31) overlap by 31 days")
    assert "range 1 has 365 days, range 2 has 62 days" in issues[1].message
    assert not rg.has_errors(issues)


def test_empty_train_is_an_error_and_errors_come_first() -> None:
    (issue,) = rs_of([], ("2024-01-01", "2024-06-30")).validate()
    assert issue.level == "error" and issue.code == "no_train"
    mixed = rs_of([("2021-01-01", "2021-12-31"), ("2021-12-01", "2022-01-31"), ("2024-02-01", "2024-01-01"),
                   ("2023-12-01", "2023-12-25")], ("2024-01-01", "2024-06-30"), gap_days=30)
    levels = [i.level for i in mixed.validate()]
    assert levels == sorted(levels, key=["error", "warning", "note"].index)
    assert levels[0] == "error" and "warning" in levels and "note" in levels
    assert rg.validate_ranges(mixed, 0) == mixed.validate(0)


def test_frames_are_named_from_one() -> None:
    rs = RangeSet.from_dict(SEED)
    frames = rs.frames("btc")
    assert list(frames) == ["btc_train_frame-1", "btc_train_frame-2", "btc_test_frame"]
    assert frames["btc_test_frame"] == rs.test


# -- presets ------------------------------------------------------------------------------------------
def test_btc_regime_preset_is_clean() -> None:
    rs = rg.presets()["btc-regimes"]
    assert [str(r) for r in rs.train] == ["2020-10-01 .. 2021-04-13", "2021-11-10 .. 2022-11-21",
                                          "2023-03-20 .. 2023-10-15"]
    assert str(rs.test) == "2024-01-01 .. 2024-06-30"
    assert not rg.has_errors(rs.validate(30))
    assert [i.level for i in rs.validate(30)] in ([], ["note"])


@pytest.mark.realdata
def test_btc_regime_preset_matches_real_prices() -> None:
    path = SHARED / "BTCUSDT_1d.csv"
    if not path.exists():
        pytest.skip("../shared/data is absent")
    close = pd.read_csv(path, parse_dates=["timestamp"]).set_index("timestamp")["close"]
    bull, bear, side = rg.presets()["btc-regimes"].train

    def change(r: Range) -> float:
        s = close[str(r.start):str(r.end)]
        return float(s.iloc[-1] / s.iloc[0] - 1)

    assert change(bull) > 4.0  # 10.6k -> 63.6k
    assert change(bear) < -0.7  # 64.9k -> 15.8k
    assert abs(change(side)) < 0.05


def test_synthetic_preset_picks_segments_before_the_test() -> None:
    pytest.importorskip("covcall.market.synthetic")
    rs = rg.synthetic_preset("BTC", seed=7, gap_days=30)
    assert rs.train and not rg.has_errors(rs.validate(30))
    assert rs.max_train_end < rs.test.start
    assert (rs.test.start - rs.max_train_end).days - 1 >= 30
    assert {r.note.split(":")[0] for r in rs.train} <= {"bull", "chop", "dump"}


# -- rolling ------------------------------------------------------------------------------------------------
def test_rolling_windows_exact_dates() -> None:
    wins = rg.rolling(D("2022-01-01"), train_days=90, test_days=30, step_days=30, gap_days=10, count=3)
    assert [w.name for w in wins] == ["rolling-1", "rolling-2", "rolling-3"]
    assert [(str(w.train[0]), str(w.test)) for w in wins] == [
        ("2022-01-01 .. 2022-03-31", "2022-04-11 .. 2022-05-10"),
        ("2022-01-31 .. 2022-04-30", "2022-05-11 .. 2022-06-09"),
        ("2022-03-02 .. 2022-05-30", "2022-06-10 .. 2022-07-09"),
    ]
    assert all(w.validate(10) == [] for w in wins)
    with pytest.raises(SpecError, match="train_days: 0 must be a whole number from 1 to"):
        rg.rolling("2022-01-01", 0, 30, 30, 10, 3)


# -- regime suggestion ----------------------------------------------------------------------------------------
def _up_flat_down() -> pd.Series:
    # 60 days up 1 %/day (log), 60 days zig-zagging +-0.1 %, 60 days down 1 %/day
    r = np.r_[np.full(60, 0.01), np.tile([0.001, -0.001], 30), np.full(60, -0.01)]
    idx = pd.date_range("2022-01-01", periods=181, freq="D", tz="UTC")
    return pd.Series(100 * np.exp(np.r_[0.0, np.cumsum(r)]), index=idx)


def test_label_regimes_known_answer() -> None:
    labels = rg.label_regimes(_up_flat_down())
    seg = rg._segments(labels)
    assert seg["regime"].tolist() == ["bull", "chop", "dump"]
    # the last up close is 2022-03-02 (day 60), the last flat close 2022-05-01 (day 120)
    expected = [("2022-01-01", "2022-03-02"), ("2022-03-03", "2022-05-01"), ("2022-05-02", "2022-06-30")]
    for (s, e), (_, row) in zip(expected, seg.iterrows(), strict=True):
        assert abs((row["start"] - D(s)).days) <= 3 and abs((row["end"] - D(e)).days) <= 3


def test_label_regimes_resamples_hourly_prices() -> None:
    daily = _up_flat_down()
    hourly = daily.reindex(pd.date_range(daily.index[0], daily.index[-1], freq="1h")).ffill()
    assert rg._segments(rg.label_regimes(hourly))["regime"].tolist() == ["bull", "chop", "dump"]


def test_suggest_ranges_one_per_regime_in_order() -> None:
    rs = rg.suggest_ranges(_up_flat_down(), test=Range(D("2022-07-01"), D("2022-09-30")), gap_days=0)
    assert [r.note.split(":")[0] for r in rs.train] == ["bull", "chop", "dump"]
    assert abs((rs.train[0].end - D("2022-03-02")).days) <= 3
    assert abs((rs.train[2].start - D("2022-05-02")).days) <= 3
    assert rs.train[0].note.startswith("bull: +")
    assert not rg.has_errors(rs.validate())


def test_suggest_ranges_clips_before_test_and_gap() -> None:
    # test = last 90 days (2022-04-02 ..), gap 0 -> only bull and a clipped chop precede it
    rs = rg.suggest_ranges(_up_flat_down(), gap_days=0, min_days=20)
    assert str(rs.test) == "2022-04-02 .. 2022-06-30"
    assert [r.note.split(":")[0] for r in rs.train] == ["bull", "chop"]
    assert rs.train[-1].end == D("2022-04-01")
    with pytest.raises(DataError, match="no regime segment of at least 45 days ends by 2022-01-31"):
        rg.suggest_ranges(_up_flat_down(), test=Range(D("2022-03-01"), D("2022-03-31")), gap_days=28)


# -- persistence ---------------------------------------------------------------------------------------------
def test_save_load_list_through_duckdb(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.duckdb")
    rs = RangeSet.from_dict(SEED)
    rg.save_range_set(store, rs)
    assert rg.list_range_sets(store) == ["demo"]
    assert rg.load_range_set(Store(tmp_path / "t.duckdb"), "demo") == rs
    with pytest.raises(SpecError, match=r"no range set named 'dem0' \(did you mean 'demo'\?\); saved: demo"):
        rg.load_range_set(store, "dem0")
    bad = rs_of([("2023-01-01", "2023-03-31")], ("2023-03-01", "2023-06-30"))
    with pytest.raises(SpecError, match="range set 't' not saved: train range 1"):
        rg.save_range_set(store, bad)
    assert rg.list_range_sets(store) == ["demo"]


def test_read_spec_file_json_toml_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(SEED))
    assert read_spec_file(tmp_path / "a.json")["name"] == "demo"
    (tmp_path / "a.toml").write_text('name = "demo"\n[[rangeTrain]]\nstartDate = "2021-01-01"\n'
                                     'endDate = "2021-02-01"\n[rangeTest]\nstartDate = "2021-06-01"\n'
                                     'endDate = "2021-06-30"\n')
    assert RangeSet.from_dict(read_spec_file(tmp_path / "a.toml")).train[0].days == 32
    (tmp_path / "bad.json").write_text('{\n  "name": "x",\n  "gap_days": 30,,\n}')
    with pytest.raises(SpecError, match="bad.json: invalid JSON at line 3, column 18"):
        read_spec_file(tmp_path / "bad.json")
    (tmp_path / "bad.toml").write_text('name = "x"\ngap_days = \n')
    with pytest.raises(SpecError, match="bad.toml: invalid TOML at line 2"):
        read_spec_file(tmp_path / "bad.toml")
    with pytest.raises(SpecError, match="not found; check the path"):
        read_spec_file(tmp_path / "missing.json")
    with pytest.raises(SpecError, match=r"must end in \.json or \.toml"):
        read_spec_file(tmp_path / "spec.yaml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(SpecError, match="top level must be an object"):
        read_spec_file(tmp_path / "list.json")


def test_moving_a_range_that_starts_inside_the_test_keeps_it_before_the_test() -> None:
    """The old advice ("move its start after the test end") trained on the future; the fix moves it before."""
    rs = rs_of([("2024-03-10", "2024-04-20")], ("2024-03-01", "2024-06-30"), gap_days=30)
    (issue,) = rs.validate()
    assert "move it before the test range: 2023-12-20 .. 2024-01-30" in issue.message
    fixed = apply_fix(rs, issue)
    assert fixed.validate() == [] and fixed.train[0].days == rs.train[0].days


def test_every_fix_the_validator_suggests_yields_a_valid_set() -> None:
    """Property: for any range set, applying the suggested fixes of its errors leaves no error (and never puts a
    training range after the test range)."""
    from datetime import date, timedelta

    from hypothesis import given, settings
    from hypothesis import strategies as st

    day = st.integers(0, 1500).map(lambda n: date(2020, 1, 1) + timedelta(days=n))
    span = st.tuples(day, day)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(train=st.lists(span, min_size=1, max_size=5), test=span, gap=st.integers(0, 90),
           label=st.integers(0, 120), strict=st.booleans())
    def check(train, test, gap, label, strict) -> None:
        rs = RangeSet("p", [Range(a, b) for a, b in train], Range(*test), gap_days=gap, strict=strict)
        fixed = fix_all(rs, label)
        left = [i for i in fixed.validate(label) if i.level == "error"]
        assert left == [], (rs, left)
        # a range the fixes moved always lands before the test range, never after it
        moved = [b for a, b in zip(rs.train, fixed.train, strict=True) if a != b and {a.start, a.end} != {b.start, b.end}]
        assert all(r.end < fixed.test.start for r in moved)

    check()
