"""The dashboard's cached reads are all forgotten after a write: an import shows up in the price charts at once."""

from __future__ import annotations

from datetime import date

import pandas as pd

from covcall.store import Store


def _bars(start: str, n: int) -> pd.DataFrame:
    ts = pd.date_range(start, periods=n, freq="1D", tz="UTC")
    return pd.DataFrame({"ts": ts, "open": 100.0, "high": 110.0, "low": 90.0, "close": 105.0, "volume": 1.0})


def test_a_candles_import_refreshes_cached_price_reads(app_db) -> None:
    import ui

    store = Store(app_db)
    store.import_candles("csv", "BTC", "1d", _bars("2024-01-01", 10))
    db = ui.db_key()
    first = ui.candles(db, "BTC", "1d", date(2024, 1, 1), date(2024, 1, 31), "store", 7)
    assert len(first) == 10
    store.import_candles("csv", "BTC", "1d", _bars("2024-01-11", 10))
    assert len(ui.candles(db, "BTC", "1d", date(2024, 1, 1), date(2024, 1, 31), "store", 7)) == 10  # cached
    ui.invalidate()  # what every page calls after a write
    assert len(ui.candles(db, "BTC", "1d", date(2024, 1, 1), date(2024, 1, 31), "store", 7)) == 20
    assert ui.series(db)["rows"].sum() == 20
