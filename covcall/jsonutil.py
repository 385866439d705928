"""One JSON encoding for the whole project: NaN/inf as null, numpy scalars as numbers, timestamps as ISO text.

>>> import numpy as np, pandas as pd
>>> dumps({"b": np.float64("nan"), "a": pd.Timestamp("2024-01-01", tz="UTC"), "n": np.int64(3)})
'{"a": "2024-01-01T00:00:00+00:00", "b": null, "n": 3}'
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-ready copy of `value`: containers recursed, NaN/inf/NaT/NA -> None, numpy/pandas -> Python.

    >>> import numpy as np, pandas as pd
    >>> plain({"x": [np.float32(1.5), float("inf")], "t": pd.NaT})
    {'x': [1.5, None], 't': None}
    """
    # numpy and pandas objects can only exist once those libraries are loaded; never load them here.
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if value is None or (pd is not None and (value is pd.NaT or value is pd.NA)):
        return None
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool | str):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if np is not None:
        if isinstance(value, np.ndarray):
            return [plain(v) for v in value.tolist()]
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            value = float(value)
        if isinstance(value, np.datetime64):
            value = pd.Timestamp(value) if pd is not None else value.astype("datetime64[us]").item()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if pd is not None and isinstance(value, pd.Timestamp):
        return None if value is pd.NaT else value.isoformat()
    if pd is not None and isinstance(value, pd.Timedelta):
        return value.isoformat()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return plain(value.model_dump(mode="json"))
    if hasattr(value, "item"):
        return plain(value.item())
    return str(value)


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = True) -> str:
    """Strict JSON text of `obj` after `plain` (never emits NaN or Infinity)."""
    return json.dumps(plain(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)
