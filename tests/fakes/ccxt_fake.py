"""A fake ccxt exchange serving recorded, real-shaped pages; it can fail a number of times or always."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ccxt

HERE = Path(__file__).resolve().parent


def recorded_ohlcv() -> list[list[float]]:
    """300 real Binance BTC/USDT 4h rows [ms, open, high, low, close, volume] from 2017-08-17."""
    return json.loads((HERE / "binance_btc_4h.json").read_text())["rows"]


def recorded_dvol() -> list[list[float]]:
    """40 real Deribit BTC DVOL daily bars [ms, open, high, low, close] from 2021-03-24."""
    return json.loads((HERE / "deribit_btc_dvol.json").read_text())["data"]


class FakeExchange:
    """Same names as a ccxt exchange for what covcall uses; records every call it receives."""

    def __init__(self, exchange_id: str = "binance", rows: list[list[float]] | None = None, *,
                 page_size: int = 100, fail_times: int = 0, fail_always: bool = False,
                 fail_after_pages: int | None = None, error: type[Exception] = ccxt.RequestTimeout,
                 now_ms: int | None = None, rate_limit: int = 50) -> None:
        self.id = exchange_id
        self.rateLimit = rate_limit
        self.timeout = 5000
        self.rows = sorted(rows if rows is not None else recorded_ohlcv())
        self.dvol = recorded_dvol()
        self.dvol_page = 1000
        self.page_size = page_size
        self.fail_times = fail_times
        self.fail_always = fail_always
        self.fail_after_pages = fail_after_pages
        self.error = error
        self.now_ms = now_ms if now_ms is not None else 1_800_000_000_000
        self.markets: dict[str, Any] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.pages_served = 0

    def _maybe_fail(self) -> None:
        if self.fail_always:
            raise self.error(f"{self.id} GET https://api.example.test timed out")
        if self.fail_after_pages is not None and self.pages_served >= self.fail_after_pages:
            raise self.error(f"{self.id} GET https://api.example.test timed out")
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.error(f"{self.id} GET https://api.example.test timed out")

    def milliseconds(self) -> int:
        return self.now_ms

    def parse_timeframe(self, timeframe: str) -> int:
        return {"1h": 3600, "4h": 14400, "1d": 86400}[timeframe]

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        self.calls.append(("load_markets",))
        self._maybe_fail()
        self.markets = {"BTC/USDT": {"symbol": "BTC/USDT"}, "ETH/USDT": {"symbol": "ETH/USDT"}}
        return self.markets

    def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                    limit: int | None = None, params: dict | None = None) -> list[list[float]]:
        self.calls.append(("fetch_ohlcv", symbol, timeframe, since, limit))
        self._maybe_fail()
        if symbol not in self.markets:
            raise ccxt.BadSymbol(f"{self.id} does not have market symbol {symbol}")
        n = min(limit or self.page_size, self.page_size)
        page = [r for r in self.rows if since is None or r[0] >= since][:n]
        self.pages_served += 1
        return [list(r) for r in page]

    def public_get_get_volatility_index_data(self, params: dict | None = None) -> dict[str, Any]:
        """Deribit's shape: at most `dvol_page` candles, the latest of the window, ascending; `continuation` is
        the next request's end_timestamp while earlier candles remain (None after the last page)."""
        params = params or {}
        self.calls.append(("public_get_get_volatility_index_data", dict(params)))
        self._maybe_fail()
        lo, hi = int(params["start_timestamp"]), int(params["end_timestamp"])
        bars = {"1D": self.dvol, "3600": self.dvol_hourly()}.get(params.get("resolution"))
        if bars is None:
            raise ccxt.BadRequest(f"deribit invalid resolution {params.get('resolution')!r}")
        data = [r for r in bars if lo <= r[0] <= hi] if params.get("currency") == "BTC" else []
        page = data[-self.dvol_page:]
        more = page[0][0] if len(data) > len(page) else None
        return {"jsonrpc": "2.0", "result": {"data": page, "continuation": more}}

    def dvol_hourly(self) -> list[list[float]]:
        """Hourly candles within the recorded days: each day's close reached in 24 steps from its open."""
        out = []
        for ms, o, _h, _l, c in self.dvol:
            for k in range(24):
                a, b = o + (c - o) * k / 24, o + (c - o) * (k + 1) / 24
                out.append([ms + k * 3_600_000, round(a, 2), round(max(a, b), 2), round(min(a, b), 2), round(b, 2)])
        return out

    def ohlcv_calls(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == "fetch_ohlcv"]
