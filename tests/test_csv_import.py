"""CSV import: header detection, time formats, ordering, duplicates, malformed rows, IV files, real files."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from covcall.errors import DataError
from covcall.market import load_candles, load_iv
from covcall.market.csv_import import import_candles_csv, import_iv_csv, read_candles_csv, read_iv_csv
from covcall.store import Store

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DAY = pd.Timestamp("2024-01-01", tz="UTC")


def write(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


ISO = """timestamp,open,high,low,close,volume
2024-01-01,100,110,90,105,10
2024-01-02,105,115,100,110,11
2024-01-03,110,120,105,115,12
"""


def test_iso_dates(tmp_path) -> None:
    df = read_candles_csv(write(tmp_path, ISO), "1d")
    assert df["ts"].tolist() == [DAY, DAY + pd.Timedelta(days=1), DAY + pd.Timedelta(days=2)]
    assert df["close"].tolist() == [105, 110, 115] and df["volume"].tolist() == [10, 11, 12]
    assert df.attrs["gaps"] == [] and df.attrs["dropped_duplicates"] == 0


@pytest.mark.parametrize("scale", [1, 1000])
def test_epoch_seconds_and_milliseconds(tmp_path, scale: int) -> None:
    s = int(DAY.timestamp())
    text = "open_time,open,high,low,close,volume\n" + "".join(
        f"{(s + i * 3600) * scale},1,2,0.5,1.5,3\n" for i in range(3))
    df = read_candles_csv(write(tmp_path, text), "1h")
    assert df["ts"].tolist() == [DAY + pd.Timedelta(hours=i) for i in range(3)]


def test_mixed_case_any_order_no_volume_newest_first_duplicates(tmp_path) -> None:
    text = """Close,LOW,Date,High,Open
115,105,2024-01-03,120,110
110,100,2024-01-02,115,105
110,100,2024-01-02,115,105

105,90,2024-01-01,110,100
"""
    df = read_candles_csv(write(tmp_path, text), "1d")
    assert df["ts"].iloc[0] == DAY and df["close"].tolist() == [105, 110, 115]
    assert df["open"].tolist() == [100, 105, 110] and (df["volume"] == 0).all()
    assert df.attrs["dropped_duplicates"] == 1


def test_file_like_upload() -> None:
    df = read_candles_csv(io.BytesIO(ISO.encode()), "1d")
    assert len(df) == 3


def test_malformed_rows_are_listed_with_line_numbers_and_nothing_written(tmp_path) -> None:
    text = """timestamp,open,high,low,close,volume
2024-01-01,100,110,90,105,10
2024-01-02,105,115,100,abc,11
2024-01-03,110,100,105,102,12
2024-01-04,110,120,105,115,12
not-a-date,1,2,1,1,1
2024-01-06,0,120,105,115,12
2024-01-07,110,120
"""
    store = Store(tmp_path / "s.duckdb")
    p = write(tmp_path, text, "bad.csv")
    with pytest.raises(DataError) as info:
        import_candles_csv(store, p, "BTC", "1d")
    assert str(info.value) == (
        f"5 malformed rows in {p}: line 3 (close 'abc' is not a number), line 4 (high 100 < low 105), "
        "line 6 (timestamp 'not-a-date' is not a date), line 7 (open 0 is not positive), "
        "line 8 (has 3 fields, expected 6); fix or remove them")
    assert store.list_series().empty


def test_conflicting_duplicate_timestamp_is_malformed(tmp_path) -> None:
    text = ISO + "2024-01-02,105,115,100,999,11\n"
    with pytest.raises(DataError, match=r"1 malformed row in .*line 5 \(timestamp 2024-01-02 00:00:00\+00:00 also "
                                        r"on line 3 with other values\)"):
        read_candles_csv(write(tmp_path, text), "1d")


def test_headerless_and_missing_columns(tmp_path) -> None:
    with pytest.raises(DataError, match=r"no usable header row \(first line has '2024-01-01', '100'.*"
                                        r"the first line must name the columns: a time column"):
        read_candles_csv(write(tmp_path, "2024-01-01,100,110,90,105,10\n"), "1d")
    with pytest.raises(DataError, match=r"lacks column\(s\) high, low; found timestamp, open, close; need"):
        read_candles_csv(write(tmp_path, "timestamp,open,close\n2024-01-01,1,1\n"), "1d")
    with pytest.raises(DataError, match="does not exist"):
        read_candles_csv(tmp_path / "nope.csv", "1d")


def test_wrong_timeframe_for_the_file(tmp_path) -> None:
    text = "timestamp,open,high,low,close\n2024-01-01 00:00,1,2,1,1\n2024-01-01 04:00,1,2,1,1\n"
    with pytest.raises(DataError, match="are 4h apart, but --timeframe is 1d"):
        read_candles_csv(write(tmp_path, text), "1d")
    with pytest.raises(DataError, match="are 1d apart, but --timeframe is 1h"):
        read_candles_csv(write(tmp_path, ISO), "1h")


def test_import_then_load_from_store_with_gap(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    text = ISO + "2024-01-05,110,120,105,115,12\n"
    out = import_candles_csv(store, write(tmp_path, text), "btc", "1d")
    assert out == {"underlying": "BTC", "timeframe": "1d", "rows": 4, "start": DAY,
                   "end": DAY + pd.Timedelta(days=4), "dropped_duplicates": 0, "gaps": 1, "source": "csv",
                   "encoding": "utf-8", "inserted": 4, "replaced": 0, "unchanged": 0}
    df = load_candles("BTC", "1d", "2024-01-01", "2024-01-05", source="store", store=store)
    gap = DAY + pd.Timedelta(days=3)
    assert df.attrs["gaps"] == [(gap, gap)]


def test_iv_points_and_fractions_as_of_next_day(tmp_path) -> None:
    iv = read_iv_csv(write(tmp_path, "date,symbol,dvol\n2024-01-02,BTC,50.5\n2024-01-01,BTC,47.5\n"))
    assert iv["ts"].tolist() == [DAY + pd.Timedelta(days=1), DAY + pd.Timedelta(days=2)]
    assert iv["iv_ann"].tolist() == pytest.approx([0.475, 0.505])
    frac = read_iv_csv(write(tmp_path, "Date,IV\n2024-01-01,0.55\n", "f.csv"))
    assert frac["iv_ann"].tolist() == [0.55]


def test_intraday_iv_rows_count_from_their_bar_close(tmp_path) -> None:
    hourly = read_iv_csv(write(tmp_path, "timestamp,close\n2024-01-01 12:00,50\n2024-01-01 13:00,51\n"
                                         "2024-01-01 14:00,52\n", "h.csv"))
    assert hourly["ts"].tolist() == [DAY + pd.Timedelta(hours=h) for h in (13, 14, 15)]  # no look-ahead
    one = read_iv_csv(write(tmp_path, "timestamp,close\n2024-01-01 12:00,50\n", "one.csv"))
    assert one["ts"].tolist() == [DAY + pd.Timedelta(hours=12)]  # no spacing to tell: its own time


def test_iv_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="has no IV column; found date, price"):
        read_iv_csv(write(tmp_path, "date,price\n2024-01-01,1\n"))
    with pytest.raises(DataError, match=r"2 malformed rows .*line 2 \(iv 'x' is not a number\), "
                                        r"line 3 \(iv -1 is not positive\)"):
        read_iv_csv(write(tmp_path, "date,iv\n2024-01-01,x\n2024-01-02,-1\n"))


def test_real_binance_daily_and_deribit_dvol(tmp_path) -> None:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is absent")
    store = Store(tmp_path / "s.duckdb")
    out = import_candles_csv(store, SHARED / "BTCUSDT_1d.csv", "BTC", "1d")
    assert out["start"] == pd.Timestamp("2017-08-17", tz="UTC") and out["rows"] > 3000
    df = load_candles("BTC", "1d", "2024-01-01", "2024-01-31", source="store", store=store)
    assert len(df) == 31 and 38000 < df["close"].iloc[0] < 48000
    iv_out = import_iv_csv(store, SHARED / "btc_dvol.csv", "BTC")
    assert iv_out["start"] == pd.Timestamp("2021-03-25", tz="UTC")  # first DVOL day 2021-03-24, known next day
    iv = load_iv("BTC", "2024-01-01", "2024-01-31", source="store", store=store)
    assert iv is not None and 0.3 < iv["iv_ann"].median() < 1.0


def test_a_bad_file_leaves_the_cached_series_as_it_was(tmp_path) -> None:
    store = Store(tmp_path / "s.duckdb")
    good = write(tmp_path, ISO, "good.csv")
    import_candles_csv(store, good, "BTC", "1d")
    before = store.read_candles("csv", "BTC", "1d")
    bad = write(tmp_path, ISO.replace("105,10", "abc,10", 1) + "2024-01-09,1,2,1,1,1\n", "bad.csv")
    with pytest.raises(DataError, match="malformed"):
        import_candles_csv(store, bad, "BTC", "1d")
    pd.testing.assert_frame_equal(store.read_candles("csv", "BTC", "1d"), before)
