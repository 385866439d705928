"""ccxt download of OHLCV (paged, rate-limited, retried, incremental into the store) and Deribit DVOL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from covcall.errors import DataError, ExchangeUnavailable, did_you_mean
from covcall.market.frame import check_timeframe, window
from covcall.store import Store

PAGE_LIMIT = 1000
BACKOFF_S = 0.5
CLIENT_TIMEOUT_MS = 5000
DVOL_CHUNK = pd.Timedelta(days=900)
# DVOL bar lengths Deribit serves that covcall stores: its resolution code, the bar length, a request's span (under
# Deribit's 1,000 points a page) and the fetch-span key (so an hourly fetch is not skipped where days were fetched).
DVOL_RESOLUTIONS = {"1d": ("1D", pd.Timedelta(days=1), DVOL_CHUNK, "iv"),
                    "1h": ("3600", pd.Timedelta(hours=1), pd.Timedelta(days=40), "iv_1h")}
_DNS_WORDS = ("Name or service not known", "Failed to resolve", "name resolution", "nodename nor servname",
              "getaddrinfo failed")


def make_client(exchange: str) -> Any:
    """A ccxt client for an exchange id with a short timeout (so offline use fails within seconds)."""
    import ccxt  # ccxt takes seconds to import; only pay for it when fetching

    if exchange not in ccxt.exchanges:
        raise DataError(f"unknown exchange {exchange!r}: use a ccxt exchange id such as binance, okx, bybit"
                        f"{did_you_mean(exchange, ccxt.exchanges)}")
    return getattr(ccxt, exchange)({"timeout": CLIENT_TIMEOUT_MS, "enableRateLimit": False})


def _reason(err: BaseException) -> tuple[str, bool]:
    """A short human reason and whether retrying can help (DNS failure means we are offline: it cannot)."""
    chain: list[BaseException] = []
    e: BaseException | None = err
    while e is not None and len(chain) < 6:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " | ".join(str(x) for x in chain)
    if any(w in text for w in _DNS_WORDS):
        return "DNS lookup failed (no network?)", False
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first[:160]}".rstrip(": "), True


def _call(fn: Callable[[], Any], exchange: str, sleep: Callable[[float], None], max_retries: int) -> Any:
    """Run one exchange request, retrying network errors with exponential backoff."""
    import ccxt

    attempt = 0
    while True:
        try:
            return fn()
        except ccxt.NetworkError as err:  # includes RequestTimeout and ExchangeNotAvailable
            reason, retryable = _reason(err)
            if not retryable or attempt >= max_retries:
                raise ExchangeUnavailable(
                    f"cannot reach {exchange}: {reason}; use the synthetic source or import a CSV") from None
            sleep(BACKOFF_S * 2**attempt)
            attempt += 1
        except ccxt.BadSymbol as err:
            raise DataError(f"{exchange} does not list that market: {str(err)[:160]}") from None
        except ccxt.ExchangeError as err:
            reason, _ = _reason(err)
            raise ExchangeUnavailable(
                f"cannot reach {exchange}: {reason}; use the synthetic source or import a CSV") from None


def _missing(lo: pd.Timestamp, hi: pd.Timestamp, spans: list[tuple[pd.Timestamp, pd.Timestamp]]
             ) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Parts of [lo, hi) not covered by any recorded [start, end) span."""
    out: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    cur = lo
    for s, e in sorted(spans):
        if e <= cur:
            continue
        if s >= hi:
            break
        if s > cur:
            out.append((cur, min(s, hi)))
        cur = max(cur, e)
        if cur >= hi:
            break
    if cur < hi:
        out.append((cur, hi))
    return out


def _now_ms(client: Any) -> int:
    return int(client.milliseconds()) if hasattr(client, "milliseconds") else int(time.time() * 1000)


def fetch_candles(store: Store, underlying: str, timeframe: str, start: Any, end: Any, *,
                  exchange: str = "binance", client: Any = None, sleep: Callable[[float], None] = time.sleep,
                  max_retries: int = 4) -> dict:
    """Download the spans of [start, end-of-day end] not yet cached, page by page, into the store.

    Each page is written (with the span it covers) as soon as it arrives, so an error later on keeps the pages
    already fetched. Bars still open at the exchange's current time are not stored.
    """
    step = check_timeframe(timeframe)
    lo, hi = window(start, end)
    lo = lo.floor(step) if step < pd.Timedelta(days=1) else lo.normalize()
    if client is None:
        client = make_client(exchange)
    exchange = str(getattr(client, "id", exchange))
    source = f"ccxt:{exchange}"
    symbol = f"{underlying}/USDT"
    pause = float(getattr(client, "rateLimit", 0) or 0) / 1000.0
    pages = 0
    todo = _missing(lo, hi, store.fetched_spans(source, underlying, timeframe))
    if todo:
        _call(client.load_markets, exchange, sleep, max_retries)
        markets = getattr(client, "markets", None) or {}
        if markets and symbol not in markets:
            raise DataError(f"{exchange} has no market {symbol}{did_you_mean(symbol, markets)}; "
                            "pick another --underlying or --exchange")
        now = pd.Timestamp(_now_ms(client), unit="ms", tz="UTC")
    step_ms = int(step / pd.Timedelta(milliseconds=1))
    for span_lo, span_hi in todo:
        cur = span_lo
        while cur < span_hi:
            if pages:
                sleep(pause)
            since = int(cur.timestamp() * 1000)
            rows = _call(lambda since=since: client.fetch_ohlcv(symbol, timeframe, since, PAGE_LIMIT),
                         exchange, sleep, max_retries)
            pages += 1
            page = pd.DataFrame(rows or [], columns=["ms", "open", "high", "low", "close", "volume"])
            page = page[(page["ms"] >= since) & (page["ms"] + step_ms <= now.timestamp() * 1000)]
            if page.empty:
                break
            page = page.drop_duplicates("ms").sort_values("ms")
            last = pd.Timestamp(int(page["ms"].iloc[-1]), unit="ms", tz="UTC")
            page = page.assign(ts=pd.to_datetime(page["ms"], unit="ms", utc=True))
            inside = page[page["ts"] < span_hi]
            page_end = min(last + step, span_hi)
            store.write_candles(source, underlying, timeframe, inside.fillna({"volume": 0.0}),
                                span=(cur, page_end))
            if page_end <= cur:
                break
            cur = page_end
    cached = store.read_candles(source, underlying, timeframe, lo, hi)
    return {
        "underlying": underlying, "timeframe": timeframe, "rows": int(len(cached)),
        "start": cached["ts"].iloc[0] if len(cached) else None,
        "end": cached["ts"].iloc[-1] if len(cached) else None,
        "fetched_pages": pages, "source": source,
    }


def deribit_book_summary(underlying: str, kind: str, client: Any = None) -> list[dict[str, Any]]:
    """Deribit's public get_book_summary_by_currency rows of one coin and instrument kind (option, future)."""
    client = client if client is not None else make_client("deribit")
    reply = _call(lambda: client.public_get_get_book_summary_by_currency({"currency": underlying, "kind": kind}),
                  "deribit", lambda s: None, 3)
    return (reply or {}).get("result") or []


def fetch_dvol(store: Store, underlying: str, start: Any, end: Any, *, client: Any = None,
               sleep: Callable[[float], None] = time.sleep, max_retries: int = 4, timeframe: str = "1d") -> dict:
    """Deribit's DVOL for BTC/ETH into the store (source 'ccxt:deribit', iv_ann = close/100), daily or hourly.

    Each bar is stamped when its close is known (bar open + its length: a daily close counts from the next
    midnight, an hourly one from the next hour), so the hourly series only adds values known sooner; both live
    in the same series. Incremental like candles: only spans not fetched before (at that bar length) are asked
    for, Deribit's continuation pages are followed, each chunk is recorded as soon as it is stored, and bars
    still open are never recorded as fetched.
    """
    if timeframe not in DVOL_RESOLUTIONS:
        raise DataError(f"DVOL comes in bars of {' or '.join(DVOL_RESOLUTIONS)}, not {timeframe!r}"
                        f"{did_you_mean(timeframe, DVOL_RESOLUTIONS)}")
    resolution, bar, chunk, span_key = DVOL_RESOLUTIONS[timeframe]
    source = "ccxt:deribit"
    lo, hi = window(start, end)
    lo = lo.normalize()
    if client is None:
        client = make_client("deribit")
    now = pd.Timestamp(_now_ms(client), unit="ms", tz="UTC")
    closed = now.normalize() if timeframe == "1d" else now.floor("h")  # the bar open now is not final
    pause = float(getattr(client, "rateLimit", 0) or 0) / 1000.0
    pages = 0
    for span_lo, span_hi in _missing(lo, min(hi, closed), store.fetched_spans(source, underlying, span_key)):
        cur = span_lo
        while cur < span_hi:
            chunk_end = min(cur + chunk, span_hi)
            rows: list[list[float]] = []
            end_ms = int(chunk_end.timestamp() * 1000) - 1
            while True:  # Deribit pages backwards: `continuation` is the next request's end_timestamp
                params = {"currency": underlying, "start_timestamp": int(cur.timestamp() * 1000),
                          "end_timestamp": end_ms, "resolution": resolution}
                if pages:
                    sleep(pause)
                reply = _call(lambda params=params: client.public_get_get_volatility_index_data(params),
                              "deribit", sleep, max_retries)
                pages += 1
                result = (reply or {}).get("result") or {}
                rows += [r[:5] for r in result.get("data") or []]
                more = result.get("continuation")
                if not more or int(more) >= end_ms or int(more) <= params["start_timestamp"]:
                    break
                end_ms = int(more)
            bars = pd.DataFrame(rows, columns=["ms", "open", "high", "low", "close"]).drop_duplicates("ms")
            bars = bars.astype({"ms": "int64", "close": "float64"}).sort_values("ms")
            iv = pd.DataFrame({"ts": pd.to_datetime(bars["ms"], unit="ms", utc=True) + bar,
                               "iv_ann": bars["close"] / 100.0})
            store.write_iv(source, underlying, iv, span=(cur, chunk_end), span_key=span_key)
            cur = chunk_end
    got = store.read_iv(underlying, source=source, start=lo + bar, end=hi + bar)
    if got.empty:
        raise DataError(f"Deribit returned no DVOL for {underlying} between {lo.date()} and "
                        f"{(hi - pd.Timedelta(microseconds=1)).date()}; DVOL exists for BTC and ETH from 2021-03-24")
    return {"underlying": underlying, "timeframe": timeframe, "rows": int(len(got)), "start": got["ts"].iloc[0],
            "end": got["ts"].iloc[-1], "fetched_pages": pages, "source": source}
