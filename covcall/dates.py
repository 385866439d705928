"""Strict dates and instants from user input: YYYY-MM-DD, or ISO timestamps (an offset is converted to UTC).

Numbers are never dates (`0` is not 1970-01-01), an offset is never dropped, impossible days are refused.

>>> parse_date("2024-02-29"), parse_date("2024-01-01T23:30:00-02:00")
(datetime.date(2024, 2, 29), datetime.date(2024, 1, 2))
>>> parse_instant("2024-01-01 10:00+02:00")
Timestamp('2024-01-01 08:00:00+0000', tz='UTC')
>>> parse_date("0")
Traceback (most recent call last):
covcall.errors.SpecError: date: '0' is not a date; use YYYY-MM-DD (e.g. 2024-01-31) or an ISO timestamp
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from covcall.errors import SpecError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_HINT = "use YYYY-MM-DD (e.g. 2024-01-31) or an ISO timestamp"


def _fail(value: Any, name: str, why: str = "is not a date") -> SpecError:
    return SpecError(f"{name}: {value!r} {why}; {_HINT}")


def parse_datetime(value: Any, name: str = "date") -> dt.datetime:
    """A timezone-aware UTC datetime from a date, datetime, pandas Timestamp or strict ISO text (naive = UTC)."""
    if isinstance(value, bool) or isinstance(value, int | float):
        raise _fail(value, name, "is a number, not a date")
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        if value != value:  # NaT
            raise _fail(value, name)
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if not isinstance(value, str):
        raise _fail(value, name)
    text = value.strip()
    if _DATE.match(text):
        try:
            d = dt.date.fromisoformat(text)
        except ValueError:
            raise _fail(value, name, "is not a day of the calendar") from None
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    if not _INSTANT.match(text):
        raise _fail(value, name)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(value, name, "is not a valid time") from None
    return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_date(value: Any, name: str = "date") -> dt.date:
    """A calendar date (UTC) from strict user input; a timestamp with an offset counts by its UTC day."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return parse_datetime(value, name).date()


def parse_instant(value: Any, name: str = "time") -> Any:
    """A UTC pandas Timestamp from strict user input (naive = UTC, an offset is converted)."""
    import pandas as pd

    return pd.Timestamp(parse_datetime(value, name))
