"""The one table of bar timeframes: bar length, bars per day and bars per year (crypto trades 365 days a year).

>>> TIMEFRAMES["4h"].bars_per_day, BARS_PER_YEAR["1h"], BAR_LENGTH["1d"]
(6, 8760, Timedelta('1 days 00:00:00'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timeframe:
    """One bar length the engine supports."""

    name: str
    seconds: int

    @property
    def length(self) -> Any:
        """The bar length as a pandas Timedelta."""
        import pandas as pd

        return pd.Timedelta(seconds=self.seconds)

    @property
    def bars_per_day(self) -> int:
        return 86400 // self.seconds

    @property
    def bars_per_year(self) -> int:
        return 365 * self.bars_per_day

    @property
    def ns(self) -> int:
        return self.seconds * 1_000_000_000


TIMEFRAMES: dict[str, Timeframe] = {n: Timeframe(n, s) for n, s in (("1h", 3600), ("4h", 14400), ("1d", 86400))}
TIMEFRAME_NAMES: tuple[str, ...] = tuple(TIMEFRAMES)
BARS_PER_DAY: dict[str, int] = {k: v.bars_per_day for k, v in TIMEFRAMES.items()}
BARS_PER_YEAR: dict[str, int] = {k: v.bars_per_year for k, v in TIMEFRAMES.items()}


def __getattr__(name: str) -> Any:
    # BAR_LENGTH holds pandas Timedeltas: built on first use so the CLI can import this table without pandas.
    if name == "BAR_LENGTH":
        table = {k: v.length for k, v in TIMEFRAMES.items()}
        globals()["BAR_LENGTH"] = table
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
