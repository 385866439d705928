"""CSV import of OHLCV candles and implied-vol series: header detection, row checks with line numbers."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covcall.errors import DataError
from covcall.market.frame import check_timeframe, normalize_candles, validate_candles
from covcall.store import Store

TIME_COLUMNS = ("timestamp", "date", "time", "datetime", "open_time")
IV_COLUMNS = ("iv_ann", "iv", "dvol", "close", "value")
_MAX_LISTED = 8


def _read_rows(path: Any) -> tuple[str, list[tuple[int, list[str]]]]:
    """(display name, [(1-based line number, fields)]) of the non-blank lines of a path or file-like."""
    if hasattr(path, "read"):
        raw = path.read()
        name = str(getattr(path, "name", "uploaded file"))
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else str(raw).lstrip("\ufeff")
    else:
        p = Path(path)
        name = str(p)
        if not p.is_file():
            raise DataError(f"CSV file {name} does not exist")
        text = p.read_text(encoding="utf-8-sig")
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        fields = next(csv.reader([line]))
        rows.append((lineno, [f.strip() for f in fields]))
    if not rows:
        raise DataError(f"{name} is empty")
    return name, rows


def _header(name: str, rows: list[tuple[int, list[str]]], need: str) -> dict[str, int]:
    header = [h.strip().lower().replace(" ", "_") for h in rows[0][1]]
    if pd.to_numeric(pd.Series(header), errors="coerce").notna().any() or not any(h in TIME_COLUMNS for h in header):
        found = ", ".join(repr(h) for h in rows[0][1])
        raise DataError(f"{name} has no usable header row (first line has {found}); "
                        f"the first line must name the columns: {need}")
    return {h: i for i, h in reversed(list(enumerate(header)))}


def _parse_times(values: pd.Series) -> pd.Series:
    """ISO text or epoch seconds/milliseconds/microseconds (detected per value by magnitude) as UTC."""
    num = pd.to_numeric(values, errors="coerce")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    isnum = num.notna()
    if isnum.any():
        n = num[isnum].astype("float64")
        unit_scale = np.where(n >= 1e14, 1e-6, np.where(n >= 1e11, 1e-3, 1.0))
        secs = n * unit_scale
        ok = (secs > 0) & (secs < 4.1e9)
        out.loc[isnum & ok.reindex(values.index, fill_value=False)] = pd.to_datetime(
            (secs[ok] * 1e6).round().astype("int64"), unit="us", utc=True)
    text = values[~isnum]
    if len(text):
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        out.loc[~isnum] = parsed.astype("datetime64[ns, UTC]")
    return out


def _table(name: str, rows: list[tuple[int, list[str]]], columns: dict[str, int], wanted: dict[str, str]
           ) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The wanted columns as text plus line numbers; rows with too few fields become problems."""
    problems: list[tuple[int, str]] = []
    width = max(columns[c] for c in wanted.values()) + 1
    keep = []
    for lineno, fields in rows[1:]:
        if len(fields) < width:
            problems.append((lineno, f"has {len(fields)} fields, expected {len(rows[0][1])}"))
            continue
        keep.append([lineno] + [fields[columns[src]] for src in wanted.values()])
    df = pd.DataFrame(keep, columns=["line", *wanted.keys()])
    return df, problems


def _raise_problems(name: str, problems: list[tuple[int, str]]) -> None:
    if not problems:
        return
    problems.sort()
    listed = ", ".join(f"line {n} ({why})" for n, why in problems[:_MAX_LISTED])
    more = f", ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    word = "row" if len(problems) == 1 else "rows"
    raise DataError(f"{len(problems)} malformed {word} in {name}: {listed}{more}; fix or remove them")


def _numbers(df: pd.DataFrame, cols: list[str], problems: list[tuple[int, str]]) -> pd.DataFrame:
    out = df.copy()
    bad = np.zeros(len(df), dtype=bool)
    for c in cols:
        num = pd.to_numeric(df[c], errors="coerce")
        miss = num.isna().to_numpy() | ~np.isfinite(num.fillna(0).to_numpy())
        for i in np.flatnonzero(miss & ~bad):
            problems.append((int(df["line"].iloc[i]), f"{c} {df[c].iloc[i]!r} is not a number"))
        bad |= miss
        out[c] = num
    out.attrs["bad"] = bad
    return out


def _dedupe(df: pd.DataFrame, value_cols: list[str], problems: list[tuple[int, str]]) -> tuple[pd.DataFrame, int]:
    """Sort by ts and drop repeated identical rows; the same ts with other values is a problem."""
    df = df.sort_values(["ts", "line"], kind="stable")
    dup_exact = df.duplicated(["ts", *value_cols])
    dropped = int(dup_exact.sum())
    df = df[~dup_exact]
    clash = df.duplicated("ts", keep=False)
    if clash.any():
        for ts, group in df[clash].groupby("ts"):
            lines = group["line"].tolist()
            for n in lines[1:]:
                problems.append((int(n), f"timestamp {ts} also on line {lines[0]} with other values"))
    return df, dropped


def read_candles_csv(path: Any, timeframe: str) -> pd.DataFrame:
    """Parse an OHLCV CSV (path or file-like) into a validated candle frame sorted by ts.

    attrs: "gaps" (missing bars), "dropped_duplicates" (identical repeated rows removed).
    """
    check_timeframe(timeframe)
    name, rows = _read_rows(path)
    need = "a time column (timestamp/date/time/datetime/open_time), open, high, low, close; volume optional"
    columns = _header(name, rows, need)
    time_col = next(c for c in TIME_COLUMNS if c in columns)
    absent = [c for c in ("open", "high", "low", "close") if c not in columns]
    if absent:
        raise DataError(f"{name} lacks column(s) {', '.join(absent)}; found {', '.join(rows[0][1])}; need {need}")
    wanted = {"ts": time_col, "open": "open", "high": "high", "low": "low", "close": "close"}
    if "volume" in columns:
        wanted["volume"] = "volume"
    df, problems = _table(name, rows, columns, wanted)
    if "volume" not in df.columns:
        df["volume"] = "0"
    df["volume"] = df["volume"].replace("", "0")
    prices = ["open", "high", "low", "close"]
    df = _numbers(df, [*prices, "volume"], problems)
    bad = df.attrs.pop("bad")
    ts = _parse_times(df["ts"].astype(str))
    for i in np.flatnonzero(ts.isna().to_numpy() & ~bad):
        problems.append((int(df["line"].iloc[i]), f"{time_col} {df['ts'].iloc[i]!r} is not a date"))
    bad |= ts.isna().to_numpy()
    df["ts"] = ts
    ok = ~bad
    for c in prices:
        for i in np.flatnonzero(ok & (df[c].to_numpy() <= 0)):
            problems.append((int(df["line"].iloc[i]), f"{c} {df[c].iloc[i]:g} is not positive"))
            ok[i] = False
    for i in np.flatnonzero(ok & (df["volume"].to_numpy() < 0)):
        problems.append((int(df["line"].iloc[i]), f"volume {df['volume'].iloc[i]:g} is negative"))
        ok[i] = False
    hl = ok & (df["high"].to_numpy() < df["low"].to_numpy())
    for i in np.flatnonzero(hl):
        problems.append((int(df["line"].iloc[i]), f"high {df['high'].iloc[i]:g} < low {df['low'].iloc[i]:g}"))
    df, dropped = _dedupe(df, [*prices, "volume"], problems)
    _raise_problems(name, problems)
    if df.empty:
        raise DataError(f"{name} has a header but no data rows")
    out = normalize_candles(df)
    try:
        validate_candles(out, timeframe)
    except DataError as err:
        raise DataError(f"{name}: {err}") from None
    out.attrs["dropped_duplicates"] = dropped
    return out


def _check_underlying(underlying: str) -> str:
    u = str(underlying).strip().upper()
    if not u or not u.replace("-", "").replace("_", "").isalnum():
        raise DataError(f"underlying {underlying!r} is not a symbol; use e.g. BTC or ETH")
    return u


def import_candles_csv(store: Store, path: Any, underlying: str, timeframe: str) -> dict:
    """Parse an OHLCV CSV and store it as source 'csv'; nothing is written when the file is bad."""
    u = _check_underlying(underlying)
    df = read_candles_csv(path, timeframe)
    store.write_candles("csv", u, timeframe, df)
    return {"underlying": u, "timeframe": timeframe, "rows": int(len(df)), "start": df["ts"].iloc[0],
            "end": df["ts"].iloc[-1], "dropped_duplicates": int(df.attrs["dropped_duplicates"]),
            "gaps": len(df.attrs["gaps"]), "source": "csv"}


def read_iv_csv(path: Any) -> pd.DataFrame:
    """Parse an IV CSV: a date column and an IV column (vol points, or fractions when all values < 5).

    Daily rows (all at 00:00) are stamped when known, the next day 00:00. Columns ts, iv_ann.
    """
    name, rows = _read_rows(path)
    need = f"a date column ({'/'.join(TIME_COLUMNS)}) and an IV column ({'/'.join(IV_COLUMNS)})"
    columns = _header(name, rows, need)
    time_col = next(c for c in TIME_COLUMNS if c in columns)
    iv_col = next((c for c in IV_COLUMNS if c in columns), None)
    if iv_col is None:
        raise DataError(f"{name} has no IV column; found {', '.join(rows[0][1])}; need {need}")
    df, problems = _table(name, rows, columns, {"ts": time_col, "iv": iv_col})
    df = _numbers(df, ["iv"], problems)
    bad = df.attrs.pop("bad")
    ts = _parse_times(df["ts"].astype(str))
    for i in np.flatnonzero(ts.isna().to_numpy() & ~bad):
        problems.append((int(df["line"].iloc[i]), f"{time_col} {df['ts'].iloc[i]!r} is not a date"))
    bad |= ts.isna().to_numpy()
    for i in np.flatnonzero(~bad & (df["iv"].to_numpy() <= 0)):
        problems.append((int(df["line"].iloc[i]), f"{iv_col} {df['iv'].iloc[i]:g} is not positive"))
    df["ts"] = ts
    df, dropped = _dedupe(df, ["iv"], problems)
    _raise_problems(name, problems)
    if df.empty:
        raise DataError(f"{name} has a header but no data rows")
    iv = df["iv"].astype("float64")
    iv_ann = iv if (iv < 5).all() else iv / 100.0
    ts = df["ts"]
    if (ts == ts.dt.normalize()).all():
        ts = ts + pd.Timedelta(days=1)
    out = pd.DataFrame({"ts": ts.astype("datetime64[ns, UTC]").to_numpy(), "iv_ann": iv_ann.to_numpy()})
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out.attrs["dropped_duplicates"] = dropped
    return out


def import_iv_csv(store: Store, path: Any, underlying: str) -> dict:
    """Parse an IV CSV (e.g. Deribit DVOL) and store it as source 'csv' for the underlying."""
    u = _check_underlying(underlying)
    iv = read_iv_csv(path)
    store.write_iv("csv", u, iv)
    return {"underlying": u, "timeframe": "1d", "rows": int(len(iv)), "start": iv["ts"].iloc[0],
            "end": iv["ts"].iloc[-1], "dropped_duplicates": int(iv.attrs["dropped_duplicates"]),
            "source": "csv"}


__all__ = ["read_candles_csv", "import_candles_csv", "read_iv_csv", "import_iv_csv"]
