"""ccxt download against a fake exchange: paging, rate limit, incremental spans, retries, failures, DVOL."""

from __future__ import annotations

import ccxt
import numpy as np
import pandas as pd
import pytest
from fakes.ccxt_fake import FakeExchange, recorded_dvol, recorded_ohlcv  # noqa: E402

from covcall.errors import DataError, ExchangeUnavailable
from covcall.market import load_candles
from covcall.market.exchange import BACKOFF_S, _missing, fetch_candles, fetch_dvol
from covcall.store import Store

ROWS = recorded_ohlcv()
FIRST = pd.Timestamp(ROWS[0][0], unit="ms", tz="UTC")  # 2017-08-17 04:00
LAST = pd.Timestamp(ROWS[-1][0], unit="ms", tz="UTC")


def test_pages_through_the_window_and_caches_every_row(store: Store) -> None:
    fake = FakeExchange(page_size=100)
    sleeps: list[float] = []
    out = fetch_candles(store, "BTC", "4h", "2017-08-17", LAST.normalize(), client=fake, sleep=sleeps.append)
    expected = [r for r in ROWS if r[0] < (LAST.normalize() + pd.Timedelta(days=1)).timestamp() * 1000]
    assert out["rows"] == len(expected) == 300
    # three full pages, then an empty one: the exchange has nothing after the last recorded bar
    assert out["source"] == "ccxt:binance" and out["fetched_pages"] == 4
    assert out["start"] == FIRST and out["end"] == LAST
    calls = fake.ohlcv_calls()
    assert [c[1:3] for c in calls] == [("BTC/USDT", "4h")] * 4
    assert calls[0][3] == int(pd.Timestamp("2017-08-17", tz="UTC").timestamp() * 1000)
    assert calls[1][3] == ROWS[100][0]  # next page starts right after the last bar received
    assert sleeps == [0.05, 0.05, 0.05]  # rateLimit 50 ms between pages, none before the first
    cached = store.read_candles("ccxt:binance", "BTC", "4h")
    assert cached["close"].tolist() == [r[4] for r in ROWS]
    assert cached["ts"].iloc[0] == FIRST


def test_second_fetch_makes_no_calls_and_extension_fetches_only_missing(store: Store) -> None:
    fake = FakeExchange(page_size=1000)
    fetch_candles(store, "BTC", "4h", "2017-08-20", "2017-08-25", client=fake, sleep=lambda s: None)
    n = len(fake.calls)
    again = fetch_candles(store, "BTC", "4h", "2017-08-21", "2017-08-24", client=fake, sleep=lambda s: None)
    assert len(fake.calls) == n and again["fetched_pages"] == 0
    assert again["rows"] == 4 * 6
    fetch_candles(store, "BTC", "4h", "2017-08-20", "2017-08-28", client=fake, sleep=lambda s: None)
    new = fake.ohlcv_calls()[1:]
    assert [c[3] for c in new] == [int(pd.Timestamp("2017-08-26", tz="UTC").timestamp() * 1000)]
    assert len(store.read_candles("ccxt:binance", "BTC", "4h")) == 9 * 6


def test_missing_span_arithmetic() -> None:
    t = lambda d: pd.Timestamp(f"2024-01-{d:02d}", tz="UTC")  # noqa: E731
    assert _missing(t(1), t(10), [(t(3), t(5)), (t(4), t(7))]) == [(t(1), t(3)), (t(7), t(10))]
    assert _missing(t(2), t(4), [(t(1), t(5))]) == []


def test_retries_network_errors_with_exponential_backoff(store: Store) -> None:
    fake = FakeExchange(fail_times=3, error=ccxt.RequestTimeout)
    sleeps: list[float] = []
    out = fetch_candles(store, "BTC", "4h", "2017-08-18", "2017-08-18", client=fake, sleep=sleeps.append)
    assert out["rows"] == 6
    assert sleeps == [BACKOFF_S, BACKOFF_S * 2, BACKOFF_S * 4]


def test_failure_after_retries_is_one_clear_line_and_keeps_pages(store: Store) -> None:
    fake = FakeExchange(page_size=100, fail_after_pages=2, error=ccxt.NetworkError)
    sleeps: list[float] = []
    with pytest.raises(ExchangeUnavailable) as info:
        fetch_candles(store, "BTC", "4h", "2017-08-17", "2017-12-31", client=fake, sleep=sleeps.append,
                      max_retries=2)
    msg = str(info.value)
    assert msg.startswith("cannot reach binance: NetworkError: binance GET")
    assert msg.endswith("; use the synthetic source or import a CSV") and "\n" not in msg
    assert len(store.read_candles("ccxt:binance", "BTC", "4h")) == 200  # the two pages before the error
    # the retry only asks for what is still missing
    fake.fail_after_pages = None
    fetch_candles(store, "BTC", "4h", "2017-08-17", "2017-12-31", client=fake, sleep=lambda s: None)
    sinces = [c[3] for c in fake.ohlcv_calls()]
    assert sinces[-2] == ROWS[200][0]
    assert len(store.read_candles("ccxt:binance", "BTC", "4h")) == 300


def test_always_failing_exchange(store: Store) -> None:
    fake = FakeExchange(fail_always=True)
    with pytest.raises(ExchangeUnavailable, match="cannot reach binance"):
        fetch_candles(store, "BTC", "4h", "2017-08-17", "2017-08-20", client=fake, sleep=lambda s: None)
    assert fake.calls == [("load_markets",)] * 5  # 1 try + 4 retries


def test_open_bar_at_now_is_not_stored(store: Store) -> None:
    now = ROWS[10][0] + 1000  # bar 10 is still open
    fake = FakeExchange(now_ms=now)
    fetch_candles(store, "BTC", "4h", "2017-08-17", "2017-08-20", client=fake, sleep=lambda s: None)
    assert len(store.read_candles("ccxt:binance", "BTC", "4h")) == 10


def test_unknown_exchange_and_symbol(store: Store) -> None:
    with pytest.raises(DataError, match=r"unknown exchange 'binanse'.*did you mean 'binance'"):
        fetch_candles(store, "BTC", "4h", "2024-01-01", "2024-01-02", exchange="binanse")
    with pytest.raises(DataError, match="binance has no market DOGE/USDT"):
        fetch_candles(store, "DOGE", "4h", "2024-01-01", "2024-01-02", client=FakeExchange(), sleep=lambda s: None)


def test_load_candles_ccxt_reads_back_from_store(store: Store, monkeypatch) -> None:
    import covcall.market.exchange as ex

    fake = FakeExchange()
    monkeypatch.setattr(ex, "make_client", lambda exchange: fake)
    df = load_candles("BTC", "4h", "2017-08-18", "2017-08-19", source="ccxt", store=store)
    assert len(df) == 12 and df["ts"].iloc[0] == pd.Timestamp("2017-08-18", tz="UTC")
    # cached now: the store source sees it without calls
    n = len(fake.calls)
    assert len(load_candles("BTC", "4h", "2017-08-18", "2017-08-19", source="store", store=store)) == 12
    assert len(fake.calls) == n


def test_dvol_is_stored_as_of_next_day_in_fractions(store: Store) -> None:
    fake = FakeExchange("deribit")
    out = fetch_dvol(store, "BTC", "2021-03-24", "2021-04-10", client=fake, sleep=lambda s: None)
    data = recorded_dvol()
    assert out["source"] == "ccxt:deribit" and out["rows"] == 18
    call = fake.calls[0][1]
    assert call["currency"] == "BTC" and call["resolution"] == "1D"
    iv = store.read_iv("BTC", source="ccxt:deribit")
    assert iv["ts"].iloc[0] == pd.Timestamp(data[0][0], unit="ms", tz="UTC") + pd.Timedelta(days=1)
    assert iv["iv_ann"].iloc[0] == pytest.approx(data[0][4] / 100)
    # incremental: the same window again asks Deribit nothing; a longer one only for the new days
    n = len(fake.calls)
    again = fetch_dvol(store, "BTC", "2021-03-24", "2021-04-10", client=fake, sleep=lambda s: None)
    assert again["rows"] == 18 and again["fetched_pages"] == 0 and len(fake.calls) == n
    fetch_dvol(store, "BTC", "2021-03-24", "2021-04-20", client=fake, sleep=lambda s: None)
    asked = fake.calls[n][1]
    assert pd.Timestamp(asked["start_timestamp"], unit="ms", tz="UTC") == pd.Timestamp("2021-04-11", tz="UTC")


def test_hourly_dvol_follows_continuation_pages_and_sharpens_the_daily_index(store: Store) -> None:
    from covcall.calibration import best_index, index_known_at
    from covcall.market import load_iv

    fake = FakeExchange("deribit")
    fetch_dvol(store, "BTC", "2021-03-24", "2021-03-27", client=fake, sleep=lambda s: None)
    fake.dvol_page = 30  # Deribit serves at most so many candles a request
    n = len(fake.calls)
    out = fetch_dvol(store, "BTC", "2021-03-24", "2021-03-27", client=fake, sleep=lambda s: None, timeframe="1h")
    asked = [c[1] for c in fake.calls[n:]]
    # not skipped although those days were fetched daily; 96 hours in pages of 30, following `continuation`
    assert [a["resolution"] for a in asked] == ["3600"] * 4 and out["timeframe"] == "1h"
    assert asked[1]["end_timestamp"] == fake.dvol_hourly()[96 - 30][0]
    iv = store.read_iv("BTC", source="ccxt:deribit")
    first = fake.dvol_hourly()[0]
    hourly = iv[iv["ts"].dt.minute.eq(0) & iv["ts"].ne(iv["ts"].dt.normalize())]
    assert len(hourly) == 4 * 24 - 4  # the 23:00 bars' closes land on midnights, shared with the daily closes
    row = iv[iv["ts"] == pd.Timestamp(first[0], unit="ms", tz="UTC") + pd.Timedelta(hours=1)]
    assert row["iv_ann"].iloc[0] == pytest.approx(first[4] / 100)  # known when the hour closed, not at its open
    # a decision at 13:30 sees the 12:00-13:00 close, not the previous midnight's
    t = pd.Timestamp("2021-03-25 13:30", tz="UTC")
    noon = [r for r in fake.dvol_hourly() if r[0] == pd.Timestamp("2021-03-25 12:00", tz="UTC").value // 10**6][0]
    assert index_known_at(best_index(store, "BTC"), t) == pytest.approx(noon[4] / 100)
    loaded = load_iv("BTC", "2021-03-25", "2021-03-26", source="store", store=store)
    assert loaded[loaded["ts"] <= t]["iv_ann"].iloc[-1] == pytest.approx(noon[4] / 100)
    again = fetch_dvol(store, "BTC", "2021-03-24", "2021-03-27", client=fake, sleep=lambda s: None, timeframe="1h")
    assert again["fetched_pages"] == 0
    with pytest.raises(DataError, match="DVOL comes in bars of 1d or 1h, not '4h'"):
        fetch_dvol(store, "BTC", "2021-03-24", "2021-03-27", client=fake, timeframe="4h")


def test_dvol_failure_and_empty(store: Store) -> None:
    with pytest.raises(ExchangeUnavailable, match="cannot reach deribit"):
        fetch_dvol(store, "BTC", "2021-03-24", "2021-04-10", client=FakeExchange("deribit", fail_always=True),
                   sleep=lambda s: None, max_retries=1)
    with pytest.raises(DataError, match="no DVOL for SOL"):
        fetch_dvol(store, "SOL", "2021-03-24", "2021-04-10", client=FakeExchange("deribit"), sleep=lambda s: None)


def test_the_iv_rv_premium_counts_one_value_a_day_with_an_hourly_history_too() -> None:
    from covcall.calibration import iv_rv_premium
    from covcall.market.synthetic import synthetic_candles

    daily = synthetic_candles("BTC", "1d", "2023-01-01", "2023-06-30")
    days = pd.date_range("2023-02-01", "2023-06-30", freq="D", tz="UTC")
    index = pd.DataFrame({"ts": days, "iv_ann": 0.5 + 0.1 * np.sin(np.arange(len(days)) / 9)})
    # hourly values in between, far from the daily ones: they must not outweigh a day's single value
    hours = pd.date_range("2023-02-01 01:00", "2023-06-29 23:00", freq="h", tz="UTC")
    hourly = pd.DataFrame({"ts": hours[hours != hours.normalize()], "iv_ann": 2.0})
    both = pd.concat([index, hourly]).sort_values("ts", ignore_index=True)
    base = iv_rv_premium(index, daily)
    assert 0.5 < base < 5 and iv_rv_premium(both, daily) == pytest.approx(base)
