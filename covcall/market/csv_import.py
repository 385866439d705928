"""CSV import of OHLCV candles and implied-vol series: encodings, header detection, row checks, kind checks."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from covcall.errors import DataError
from covcall.market.frame import check_timeframe, validate_candles
from covcall.store import Store, StoreConflict

TIME_COLUMNS = ("timestamp", "date", "time", "datetime", "open_time")
IV_COLUMNS = ("iv_ann", "iv", "dvol", "close", "value")
_IV_NAMES = ("iv_ann", "iv", "dvol", "implied_vol", "implied_volatility")
_MAX_LISTED = 8
_CHUNK_ROWS = 16_384  # rows parsed at a time: memory stays near the size of the parsed numbers, not the text
_SAMPLE_BYTES = 65_536
# Plausible implied vols: fractions up to 5 (500 %), vol points from 5 to 500.
IV_FRACTION_MAX = 5.0
IV_POINTS_MAX = 500.0
# A candle file whose prices sit this far from the series already stored for the underlying is another kind
# of file (an IV index, another coin) or another unit; exchanges differ by far less.
LEVEL_RATIO_LIMIT = 2.0


# -- reading text ------------------------------------------------------------------------------------
def _detect_encoding(sample: bytes, name: str) -> str:
    """The text encoding of a file from its first bytes: UTF-8 (with or without BOM), UTF-16, else Latin-1.

    >>> _detect_encoding(b"\\xef\\xbb\\xbfdate,iv", "f"), _detect_encoding("date".encode("utf-16"), "f")
    ('utf-8-sig', 'utf-16')
    >>> _detect_encoding("d\\u00e9but,iv\\n".encode("latin-1"), "f")
    'latin-1'
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        # UTF-16 without a BOM: ASCII text with every other byte zero.
        even, odd = sample[0::2], sample[1::2]
        if len(sample) >= 4 and odd.count(0) > 0.9 * len(odd):
            return "utf-16-le"
        if len(sample) >= 4 and even.count(0) > 0.9 * len(even):
            return "utf-16-be"
        raise DataError(f"{name} is not a text CSV (it contains binary data); export it as 'CSV UTF-8' "
                        "(comma-separated) and import that file")
    for cut in range(4):  # the sample may end inside a multi-byte character
        try:
            sample[: len(sample) - cut].decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as err:
            if err.start < len(sample) - 4:
                break
    return "latin-1"  # every byte is a character; dates and numbers are ASCII anyway


def _check_text(text: str, name: str) -> None:
    bad = next((c for c in text if ord(c) < 32 and c not in "\t\r\n"), None)
    if bad is not None:
        raise DataError(f"{name} is not a text CSV (control character {bad!r}); export it as 'CSV UTF-8' "
                        "(comma-separated) and import that file")


@dataclass
class _Source:
    name: str
    stream: IO[str]
    encoding: str
    closer: Any = None

    def close(self) -> None:
        if self.closer is not None:
            self.closer.close()


def _open_text(path: Any) -> _Source:
    """A text stream over a path or an uploaded file (bytes or text), with its encoding detected."""
    if hasattr(path, "read"):
        name = str(getattr(path, "name", "uploaded file"))
        if hasattr(path, "seek"):
            path.seek(0)
        head = path.read(0)
        if isinstance(head, str):
            return _Source(name, path, "text")
        raw = path.read()  # an upload is already in memory
        enc = _detect_encoding(raw[:_SAMPLE_BYTES], name)
        return _Source(name, io.TextIOWrapper(io.BytesIO(raw), encoding=enc, newline=""), enc)
    p = Path(path)
    name = str(p)
    if not p.exists():
        raise DataError(f"CSV file {name} does not exist; check the path")
    if p.is_dir():
        raise DataError(f"{name} is a folder, not a CSV file")
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by _Source.close
        sample = fh.read(_SAMPLE_BYTES)
        fh.seek(0)
    except OSError as err:
        raise DataError(f"cannot read {name}: {err.strerror or err}; check the file's permissions") from None
    try:
        enc = _detect_encoding(sample, name)
    except DataError:
        fh.close()
        raise
    return _Source(name, io.TextIOWrapper(fh, encoding=enc, newline=""), enc, closer=fh)


def _lines(src: _Source) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, stripped fields) of every non-blank line; the delimiter is taken from the header."""
    reader = None
    lineno = 0
    try:
        for line in src.stream:
            lineno += 1
            if lineno == 1:
                line = line.lstrip("\ufeff")
                _check_text(line, src.name)
            if not line.strip():
                continue
            if reader is None:
                counts = {d: line.count(d) for d in (",", "\t", ";")}
                delim = max(counts, key=lambda d: (counts[d], d == ","))
                reader = delim
            elif "\x00" in line:
                raise DataError(f"{src.name} is not a text CSV (binary data on line {lineno}); export it as "
                                "'CSV UTF-8' and import that file")
            yield lineno, [f.strip() for f in next(csv.reader([line], delimiter=reader))]
    except UnicodeDecodeError:
        raise DataError(f"{src.name} is not valid {src.encoding} text (line {lineno + 1}); save it as 'CSV UTF-8' "
                        "and import that file") from None
    except csv.Error as err:
        raise DataError(f"{src.name}: line {lineno}: {err}; fix the quoting or save it again as CSV") from None


def _header(name: str, fields: list[str], need: str) -> dict[str, int]:
    header = [h.strip().lower().replace(" ", "_") for h in fields]
    if pd.to_numeric(pd.Series(header), errors="coerce").notna().any() or not any(h in TIME_COLUMNS for h in header):
        found = ", ".join(repr(h) for h in fields)
        raise DataError(f"{name} has no usable header row (first line has {found}); "
                        f"the first line must name the columns: {need}")
    return {h: i for i, h in reversed(list(enumerate(header)))}


def _parse_times(values: pd.Series) -> pd.Series:
    """ISO text or epoch seconds/milliseconds/microseconds (detected per value by magnitude) as UTC.

    Text must be a date (YYYY-MM-DD) or an ISO timestamp; an explicit offset (+02:00) is converted to UTC.
    Bare numbers below 10^8 (e.g. `0` or `20240101`) are not taken as epochs: they are refused.
    """
    num = pd.to_numeric(values, errors="coerce")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    isnum = num.notna()
    if isnum.any():
        n = num[isnum].astype("float64")
        unit_scale = np.where(n >= 1e14, 1e-6, np.where(n >= 1e11, 1e-3, 1.0))
        secs = n * unit_scale
        ok = (secs >= 1e8) & (secs < 4.1e9)  # 1973 .. 2099: anything else is not an epoch time
        out.loc[isnum & ok.reindex(values.index, fill_value=False)] = pd.to_datetime(
            (secs[ok] * 1e6).round().astype("int64"), unit="us", utc=True)
    text = values[~isnum]
    if len(text):
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        out.loc[~isnum] = parsed.astype("datetime64[ns, UTC]")
    return out


# -- chunked parsing ---------------------------------------------------------------------------------
@dataclass
class _Problems:
    """Malformed rows: the first few with their reasons, and how many in all."""

    listed: list[tuple[int, str]] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, why: str) -> None:
        self.count += 1
        if len(self.listed) < 4 * _MAX_LISTED:
            self.listed.append((line, why))

    def raise_if_any(self, name: str) -> None:
        if not self.count:
            return
        shown = sorted(self.listed)[:_MAX_LISTED]
        listed = ", ".join(f"line {n} ({why})" for n, why in shown)
        more = f", ... and {self.count - len(shown)} more" if self.count > len(shown) else ""
        word = "row" if self.count == 1 else "rows"
        raise DataError(f"{self.count} malformed {word} in {name}: {listed}{more}; fix or remove them")


def _parse_chunk(rows: list[tuple[int, list[str]]], columns: dict[str, int], wanted: dict[str, str],
                 numeric: list[str], time_col: str, width: int, problems: _Problems) -> pd.DataFrame:
    """Text rows -> numbers and UTC times (vectorised); bad rows become problems and are dropped."""
    keep = []
    for lineno, fields in rows:
        if len(fields) < width:
            problems.add(lineno, f"has {len(fields)} fields, expected {width}")
            continue
        keep.append([lineno] + [fields[columns[src]] for src in wanted.values()])
    df = pd.DataFrame(keep, columns=["line", *wanted.keys()])
    bad = np.zeros(len(df), dtype=bool)
    for c in numeric:
        if c not in df.columns:
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        miss = num.isna().to_numpy() | ~np.isfinite(num.fillna(0).to_numpy())
        for i in np.flatnonzero(miss & ~bad):
            problems.add(int(df["line"].iloc[i]), f"{c} {df[c].iloc[i]!r} is not a number")
        bad |= miss
        df[c] = num.astype("float64")
    ts = _parse_times(df["ts"].astype(str)) if len(df) else pd.Series([], dtype="datetime64[ns, UTC]")
    for i in np.flatnonzero(ts.isna().to_numpy() & ~bad):
        problems.add(int(df["line"].iloc[i]), f"{time_col} {df['ts'].iloc[i]!r} is not a date")
    bad |= ts.isna().to_numpy()
    df["ts"] = ts
    df["line"] = df["line"].astype("int32")
    return df.loc[~bad].reset_index(drop=True)


def _read_table(path: Any, need: str, pick: Any) -> tuple[str, str, list[str], pd.DataFrame, _Problems, str]:
    """Stream a CSV: header -> `pick(name, header_fields, columns)` -> (wanted, numeric, time_col) -> parsed rows."""
    src = _open_text(path)
    try:
        lines = _lines(src)
        first = next(lines, None)
        if first is None:
            raise DataError(f"{src.name} is empty")
        header_fields = first[1]
        columns = _header(src.name, header_fields, need)
        wanted, numeric, time_col = pick(src.name, header_fields, columns)
        width = max(columns[c] for c in wanted.values()) + 1
        problems = _Problems()
        parts: list[pd.DataFrame] = []
        chunk: list[tuple[int, list[str]]] = []
        for row in lines:
            chunk.append(row)
            if len(chunk) >= _CHUNK_ROWS:
                parts.append(_parse_chunk(chunk, columns, wanted, numeric, time_col, width, problems))
                chunk = []
        if chunk:
            parts.append(_parse_chunk(chunk, columns, wanted, numeric, time_col, width, problems))
    finally:
        src.close()
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["line", *wanted])
    return src.name, src.encoding, header_fields, df, problems, time_col


def _dedupe(df: pd.DataFrame, value_cols: list[str], problems: _Problems) -> tuple[pd.DataFrame, int]:
    """Sort by ts and drop repeated identical rows; the same ts with other values is a problem.

    Works on the timestamp column alone unless timestamps repeat (memory: files can have millions of rows).
    """
    ts = df["ts"]
    if ts.is_monotonic_decreasing and not ts.is_monotonic_increasing:
        df = df.iloc[::-1].reset_index(drop=True)  # newest-first files: a reversal, not a sort
    elif not ts.is_monotonic_increasing:
        df = df.sort_values(["ts", "line"], kind="stable").reset_index(drop=True)
    repeated = df["ts"].duplicated(keep=False).to_numpy()
    if not repeated.any():
        return df, 0
    sub = df.loc[repeated].sort_values(["ts", "line"], kind="stable")
    dup_exact = sub.duplicated(["ts", *value_cols])
    dropped = int(dup_exact.sum())
    sub = sub[~dup_exact]
    clash = sub.duplicated("ts", keep=False)
    for ts_value, group in sub[clash].groupby("ts"):
        lines = group["line"].tolist()
        for n in lines[1:]:
            problems.add(int(n), f"timestamp {ts_value} also on line {lines[0]} with other values")
    keep = np.ones(len(df), dtype=bool)
    keep[np.flatnonzero(repeated)[dup_exact.reindex(df.index[repeated]).to_numpy(dtype=bool)]] = False
    return df.loc[keep].reset_index(drop=True), dropped


def _bar_spacing(ts: pd.Series) -> pd.Timedelta | None:
    """The most common distance between consecutive bars (None with fewer than two bars)."""
    diffs = pd.Series(ts).diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        return None
    return pd.Timedelta(diffs.mode().iloc[0])


def _spacing_name(step: pd.Timedelta) -> str:
    from covcall.timeframes import TIMEFRAMES

    for name, tf in TIMEFRAMES.items():
        if tf.length == step:
            return f"{name} apart"
    return f"{step} apart"


# -- candles -----------------------------------------------------------------------------------------
def _looks_like_iv(header: list[str], columns: dict[str, int]) -> str | None:
    named = [h for h in header if h.strip().lower().replace(" ", "_") in _IV_NAMES]
    if named:
        return f"its column {named[0]!r} names an implied volatility"
    return None


def read_candles_csv(path: Any, timeframe: str) -> pd.DataFrame:
    """Parse an OHLCV CSV (path or file-like, UTF-8/UTF-16/Latin-1, comma/tab/semicolon) into a candle frame.

    The detected bar spacing must match `timeframe`. attrs: "gaps" (missing bars), "dropped_duplicates"
    (identical repeated rows removed), "encoding".
    """
    step = check_timeframe(timeframe)
    need = "a time column (timestamp/date/time/datetime/open_time), open, high, low, close; volume optional"

    def pick(name: str, header: list[str], columns: dict[str, int]) -> tuple[dict[str, str], list[str], str]:
        iv_reason = _looks_like_iv(header, columns)
        if iv_reason:
            raise DataError(f"{name} looks like an implied-volatility file ({iv_reason}), not candles; import it "
                            "with `covcall data import-iv`")
        time_col = next(c for c in TIME_COLUMNS if c in columns)
        absent = [c for c in ("open", "high", "low", "close") if c not in columns]
        if absent:
            raise DataError(f"{name} lacks column(s) {', '.join(absent)}; found {', '.join(header)}; need {need}")
        wanted = {"ts": time_col, "open": "open", "high": "high", "low": "low", "close": "close"}
        if "volume" in columns:
            wanted["volume"] = "volume"
        return wanted, ["open", "high", "low", "close", "volume"], time_col

    name, encoding, header, df, problems, _ = _read_table(path, need, pick)
    if "volume" not in df.columns:
        df["volume"] = 0.0
    df["volume"] = df["volume"].fillna(0.0)
    prices = ["open", "high", "low", "close"]
    if len(df):
        values = df[prices].to_numpy()
        for i in np.flatnonzero((values <= 0).any(axis=1)):
            c = prices[int(np.argmax(values[i] <= 0))]
            problems.add(int(df["line"].iloc[i]), f"{c} {df[c].iloc[i]:g} is not positive")
        for i in np.flatnonzero(df["volume"].to_numpy() < 0):
            problems.add(int(df["line"].iloc[i]), f"volume {df['volume'].iloc[i]:g} is negative")
        for i in np.flatnonzero(df["high"].to_numpy() < df["low"].to_numpy()):
            problems.add(int(df["line"].iloc[i]), f"high {df['high'].iloc[i]:g} < low {df['low'].iloc[i]:g}")
    df, dropped = _dedupe(df, [*prices, "volume"], problems)
    problems.raise_if_any(name)
    if df.empty:
        raise DataError(f"{name} has a header but no data rows")
    spacing = _bar_spacing(df["ts"])
    if spacing is not None and spacing != step:
        raise DataError(f"bars in {name} are {_spacing_name(spacing)}, but --timeframe is {timeframe}; import it "
                        f"with the timeframe of the file (or resample it first)")
    # Already float64 / UTC ns: assemble the candle frame from the columns without normalize_candles' copies.
    out = pd.DataFrame({c: df[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}, copy=False)
    out.insert(0, "ts", df["ts"].astype("datetime64[ns, UTC]").array)
    del df
    try:
        validate_candles(out, timeframe)
    except DataError as err:
        raise DataError(f"{name}: {err}") from None
    out.attrs["dropped_duplicates"] = dropped
    out.attrs["encoding"] = encoding
    out.attrs["name"] = name
    return out


def _check_underlying(underlying: str) -> str:
    u = str(underlying).strip().upper()
    if not u or len(u) > 20 or not u.replace("-", "").replace("_", "").isalnum() or not u.isascii():
        raise DataError(f"underlying {underlying!r} is not a symbol; use letters and digits, e.g. BTC or ETH")
    return u


def _check_level(store: Store, name: str, u: str, timeframe: str, df: pd.DataFrame) -> None:
    """Refuse prices far from what is already stored for the underlying (another kind of file, another coin)."""
    ref = store.reference_closes(u, df["ts"].iloc[0], df["ts"].iloc[-1] + pd.Timedelta(days=1))
    if ref.empty:
        return
    mine = df.assign(day=df["ts"].dt.floor("D")).groupby("day")["close"].median()
    theirs = ref.assign(day=ref["ts"].dt.floor("D")).groupby("day")["close"].median()
    both = pd.concat([mine, theirs], axis=1, join="inner", keys=["file", "stored"])
    if len(both) < 3:
        return
    ratio = float((both["file"] / both["stored"]).median())
    if not (1 / LEVEL_RATIO_LIMIT <= ratio <= LEVEL_RATIO_LIMIT):
        raise DataError(
            f"prices in {name} are {ratio:.3g}x the {u} prices already stored for the same days "
            f"(median close {both['file'].median():,.6g} vs {both['stored'].median():,.6g}); is it another kind "
            "of file (an IV index: `covcall data import-iv`) or another coin? Nothing was imported")


def import_candles_csv(store: Store, path: Any, underlying: str, timeframe: str, *, replace: bool = False) -> dict:
    """Parse an OHLCV CSV and store it as source 'csv'; nothing is written when the file is bad.

    Bars already stored with other values are never overwritten silently: the import is refused (nothing written)
    unless `replace=True`, which keeps the old rows in the store's history table and reports how many.
    """
    u = _check_underlying(underlying)
    df = read_candles_csv(path, timeframe)
    name = df.attrs["name"]
    _check_level(store, name, u, timeframe, df)
    try:
        counts = store.import_candles("csv", u, timeframe, df, replace=replace)
    except StoreConflict as c:
        raise DataError(
            f"{c.changed:,} of the {len(df):,} bars in {name} differ from the {u} {timeframe} bars already imported "
            f"(first at {c.first_ts:%Y-%m-%d %H:%M}: close {c.stored_close:,.6g} stored, {c.new_close:,.6g} in the "
            "file); nothing was imported. Add --replace to overwrite them (the old bars are kept in the store's "
            "history)") from None
    return {"underlying": u, "timeframe": timeframe, "rows": int(len(df)), "start": df["ts"].iloc[0],
            "end": df["ts"].iloc[-1], "dropped_duplicates": int(df.attrs["dropped_duplicates"]),
            "gaps": len(df.attrs["gaps"]), "source": "csv", "encoding": df.attrs["encoding"], **counts}


# -- implied volatility ------------------------------------------------------------------------------
def iv_unit(values: np.ndarray, lines: np.ndarray | None = None, name: str = "the file") -> str:
    """'fraction' when every value is <= 5 (0.55 = 55 %), 'points' when every value is 5-500 (55 = 55 %).

    Anything else is refused: a file mixing both units, or values no implied vol takes (prices, say).

    >>> iv_unit(np.array([0.45, 0.6])), iv_unit(np.array([47.5, 80.0]))
    ('fraction', 'points')
    """
    v = np.asarray(values, dtype=float)
    lines = np.arange(2, len(v) + 2) if lines is None else np.asarray(lines)
    if v.max() <= IV_FRACTION_MAX:
        return "fraction"
    if v.max() > IV_POINTS_MAX:
        i = int(np.argmax(v))
        raise DataError(f"{name}: value {v[i]:,.6g} on line {lines[i]} is not an implied volatility (vol points "
                        f"go up to {IV_POINTS_MAX:g}, fractions up to {IV_FRACTION_MAX:g}); is it a price file? "
                        "Import candles with `covcall data import`")
    if v.min() < IV_FRACTION_MAX:
        lo, hi = int(np.argmin(v)), int(np.argmax(v))
        raise DataError(f"{name} mixes fractions and vol points (e.g. {v[lo]:g} on line {lines[lo]} and {v[hi]:g} "
                        f"on line {lines[hi]}); use one unit in the whole file (0.475 or 47.5 for 47.5 %)")
    return "points"


def read_iv_csv(path: Any) -> pd.DataFrame:
    """Parse an IV CSV: a date column and an IV column, all in one unit (see `iv_unit`).

    Rows are bars stamped at their open, as Deribit stamps DVOL, so each is stamped when its close is known:
    daily rows (all at 00:00) the next day 00:00, intraday rows one bar later (the median spacing of the file:
    an hourly file's 13:00 row counts from 14:00). A single intraday row has no spacing and counts from its own
    time. Columns ts, iv_ann.
    """
    need = f"a date column ({'/'.join(TIME_COLUMNS)}) and an IV column ({'/'.join(IV_COLUMNS)})"

    def pick(name: str, header: list[str], columns: dict[str, int]) -> tuple[dict[str, str], list[str], str]:
        if "volume" in columns:
            raise DataError(f"{name} has a volume column: it looks like candles, not an implied-volatility index; "
                            "import it with `covcall data import`")
        time_col = next(c for c in TIME_COLUMNS if c in columns)
        iv_col = next((c for c in IV_COLUMNS if c in columns), None)
        if iv_col is None:
            raise DataError(f"{name} has no IV column; found {', '.join(header)}; need {need}")
        return {"ts": time_col, iv_col: iv_col}, [iv_col], time_col

    name, encoding, header, df, problems, _ = _read_table(path, need, pick)
    iv_col = [c for c in df.columns if c not in ("line", "ts")][0] if len(df.columns) > 2 else "iv"
    if len(df):
        for i in np.flatnonzero(df[iv_col].to_numpy() <= 0):
            problems.add(int(df["line"].iloc[i]), f"{iv_col} {df[iv_col].iloc[i]:g} is not positive")
    df, dropped = _dedupe(df, [iv_col], problems)
    problems.raise_if_any(name)
    if df.empty:
        raise DataError(f"{name} has a header but no data rows")
    iv = df[iv_col].astype("float64")
    unit = iv_unit(iv.to_numpy(), df["line"].to_numpy(), name)
    iv_ann = iv if unit == "fraction" else iv / 100.0
    ts = df["ts"]
    if (ts == ts.dt.normalize()).all():
        ts = ts + pd.Timedelta(days=1)
    else:
        steps = ts.drop_duplicates().sort_values().diff().dropna()
        if len(steps):
            ts = ts + steps.median()
    out = pd.DataFrame({"ts": ts.astype("datetime64[ns, UTC]").to_numpy(), "iv_ann": iv_ann.to_numpy()})
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out.attrs.update(dropped_duplicates=dropped, unit=unit, encoding=encoding, name=name)
    return out


def import_iv_csv(store: Store, path: Any, underlying: str, *, replace: bool = False) -> dict:
    """Parse an IV CSV (e.g. Deribit DVOL) and store it as source 'csv' for the underlying.

    Values already stored for the same times are never overwritten silently (see `import_candles_csv`).
    """
    u = _check_underlying(underlying)
    iv = read_iv_csv(path)
    name = iv.attrs["name"]
    try:
        counts = store.import_iv("csv", u, iv, replace=replace)
    except StoreConflict as c:
        raise DataError(
            f"{c.changed:,} of the {len(iv):,} values in {name} differ from the {u} IV series already imported "
            f"(first at {c.first_ts:%Y-%m-%d %H:%M}: {c.stored_close:.4g} stored, {c.new_close:.4g} in the file); "
            "nothing was imported. Add --replace to overwrite them (the old values are kept in the store's "
            "history)") from None
    return {"underlying": u, "timeframe": "1d", "rows": int(len(iv)), "start": iv["ts"].iloc[0],
            "end": iv["ts"].iloc[-1], "dropped_duplicates": int(iv.attrs["dropped_duplicates"]),
            "source": "csv", "unit": iv.attrs["unit"], "encoding": iv.attrs["encoding"], **counts}


__all__ = ["read_candles_csv", "import_candles_csv", "read_iv_csv", "import_iv_csv", "iv_unit"]
