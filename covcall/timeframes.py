"""The one table of bar timeframes: bar length, bars per day and bars per year (crypto trades 365 days a year).

>>> TIMEFRAMES["4h"].bars_per_day, BARS_PER_YEAR["1h"], BAR_LENGTH["1d"]
(6, 8760, Timedelta('1 days 00:00:00'))
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Timeframe:
    """One bar length the engine supports."""

    name: str
    length: pd.Timedelta

    @property
    def bars_per_day(self) -> int:
        return int(pd.Timedelta(days=1) / self.length)

    @property
    def bars_per_year(self) -> int:
        return 365 * self.bars_per_day

    @property
    def ns(self) -> int:
        return int(self.length.value)


TIMEFRAMES: dict[str, Timeframe] = {
    name: Timeframe(name, pd.Timedelta(length)) for name, length in (("1h", "1h"), ("4h", "4h"), ("1d", "1D"))
}
TIMEFRAME_NAMES: tuple[str, ...] = tuple(TIMEFRAMES)
BAR_LENGTH: dict[str, pd.Timedelta] = {k: v.length for k, v in TIMEFRAMES.items()}
BARS_PER_DAY: dict[str, int] = {k: v.bars_per_day for k, v in TIMEFRAMES.items()}
BARS_PER_YEAR: dict[str, int] = {k: v.bars_per_year for k, v in TIMEFRAMES.items()}
