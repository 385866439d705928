"""The DuckDB store: the only module that speaks SQL (schema, migrations, reads and writes)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from covcall.errors import CovcallError, StoreBusyError, did_you_mean
from covcall.lazy import lazy_module

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
else:  # pandas costs most of the CLI's start-up; commands that only count rows never load it
    pd = lazy_module("pandas")
    pa = lazy_module("pyarrow")

SCHEMA_VERSION = 8

# Forward migrations: index i moves the schema from version i to i + 1.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    CREATE TABLE IF NOT EXISTS candles (
        source VARCHAR, underlying VARCHAR, timeframe VARCHAR, ts TIMESTAMP,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE,
        PRIMARY KEY (source, underlying, timeframe, ts));
    CREATE TABLE IF NOT EXISTS fetch_spans (
        source VARCHAR, underlying VARCHAR, timeframe VARCHAR, start_ts TIMESTAMP, end_ts TIMESTAMP);
    CREATE TABLE IF NOT EXISTS iv_series (
        source VARCHAR, underlying VARCHAR, ts TIMESTAMP, iv_ann DOUBLE,
        PRIMARY KEY (source, underlying, ts));
    CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, batch_id VARCHAR, created_at TIMESTAMP, status VARCHAR, error VARCHAR,
        label VARCHAR, underlying VARCHAR, timeframe VARCHAR, start_date DATE, end_date DATE,
        source VARCHAR, iv_source VARCHAR, exit_style VARCHAR, policy VARCHAR,
        config_json VARCHAR, config_hash VARCHAR, code_version VARCHAR,
        data_start TIMESTAMP, data_end TIMESTAMP, data_hash VARCHAR, metrics_json VARCHAR,
        n_decisions INTEGER, n_sell_call INTEGER, n_do_nothing INTEGER, n_trades INTEGER,
        n_candidates BIGINT, export_csv VARCHAR, export_jsonl VARCHAR);
    CREATE TABLE IF NOT EXISTS trades (
        run_id VARCHAR, trade_no INTEGER, entry_time TIMESTAMP, exit_time TIMESTAMP, instrument VARCHAR,
        strike DOUBLE, expiry TIMESTAMP, delta DOUBLE, dte_days DOUBLE, iv_ann DOUBLE, quantity DOUBLE,
        spot_entry DOUBLE, spot_exit DOUBLE, premium_coin DOUBLE, premium_usd DOUBLE,
        exit_price_coin DOUBLE, exit_usd DOUBLE, fee_usd DOUBLE, pnl DOUBLE, pnl_vs_hodl DOUBLE,
        max_drawdown_pct DOUBLE, exit_reason VARCHAR);
    CREATE TABLE IF NOT EXISTS examples (
        run_id VARCHAR, example_no INTEGER, decision_time TIMESTAMP, underlying VARCHAR, spot DOUBLE,
        action VARCHAR, reward DOUBLE, extra VARCHAR,
        instrument VARCHAR, delta DOUBLE, strike DOUBLE, dte INTEGER, score DOUBLE, exit_style VARCHAR,
        pnl_vs_hodl DOUBLE, max_drawdown_pct DOUBLE, best_score DOUBLE, candidates INTEGER, reason VARCHAR,
        timeframe VARCHAR, rv_ann DOUBLE, iv_ann DOUBLE, ret_1d DOUBLE, ret_7d DOUBLE, ret_30d DOUBLE,
        label_end TIMESTAMP);
    CREATE TABLE IF NOT EXISTS candidates (
        run_id VARCHAR, decision_time TIMESTAMP, underlying VARCHAR, timeframe VARCHAR, instrument VARCHAR,
        expiry TIMESTAMP, strike DOUBLE, dte_days DOUBLE, delta DOUBLE, iv_ann DOUBLE, spot DOUBLE,
        moneyness DOUBLE, premium_coin DOUBLE, premium_usd DOUBLE, premium_pct DOUBLE, mark_usd DOUBLE,
        spread_pct DOUBLE, score DOUBLE, atm_iv_ann DOUBLE, rv_ann DOUBLE, iv_rv DOUBLE,
        ret_1d DOUBLE, ret_7d DOUBLE, ret_30d DOUBLE, exit_style VARCHAR, chosen BOOLEAN,
        reward DOUBLE, pnl_vs_hodl DOUBLE, pnl_vs_hodl_pct DOUBLE, label_end TIMESTAMP, exit_reason VARCHAR);
    CREATE TABLE IF NOT EXISTS equity (
        run_id VARCHAR, ts TIMESTAMP, spot DOUBLE, covered_call DOUBLE, hodl DOUBLE);
    CREATE TABLE IF NOT EXISTS range_sets (name VARCHAR PRIMARY KEY, spec_json VARCHAR, updated_at TIMESTAMP);
    CREATE TABLE IF NOT EXISTS models (
        model_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, name VARCHAR, kind VARCHAR, target VARCHAR,
        features_json VARCHAR, ranges_json VARCHAR, params_json VARCHAR, data_hash VARCHAR,
        diagnostics_json VARCHAR, path VARCHAR, n_train INTEGER, trained_until TIMESTAMP);
    CREATE TABLE IF NOT EXISTS walks (
        walk_id VARCHAR PRIMARY KEY, created_at TIMESTAMP, name VARCHAR, spec_json VARCHAR,
        spec_hash VARCHAR, metric VARCHAR, best_strategy VARCHAR, best_metric DOUBLE,
        result_json VARCHAR, report_dir VARCHAR);
    """,
    # 2: long operations (batches, walks, imports) record their state, so a killed one shows as interrupted.
    """
    CREATE TABLE IF NOT EXISTS jobs (
        job_id VARCHAR PRIMARY KEY, kind VARCHAR, name VARCHAR, created_at TIMESTAMP, updated_at TIMESTAMP,
        status VARCHAR, error VARCHAR, pid INTEGER, host VARCHAR, detail_json VARCHAR);
    """,
    # 3: imports never destroy: rows an import replaced (with --replace) are kept here.
    """
    CREATE TABLE IF NOT EXISTS candles_history (
        source VARCHAR, underlying VARCHAR, timeframe VARCHAR, ts TIMESTAMP,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, replaced_at TIMESTAMP);
    CREATE TABLE IF NOT EXISTS iv_history (
        source VARCHAR, underlying VARCHAR, ts TIMESTAMP, iv_ann DOUBLE, replaced_at TIMESTAMP);
    """,
    # 4: real option chains (snapshots of Deribit quotes) and calibrations fitted to them.
    """
    CREATE TABLE IF NOT EXISTS chain_snapshots (
        snapshot_id VARCHAR PRIMARY KEY, underlying VARCHAR, ts TIMESTAMP, source VARCHAR, n_quotes INTEGER,
        index_price DOUBLE, imported_at TIMESTAMP);
    CREATE TABLE IF NOT EXISTS chain_quotes (
        snapshot_id VARCHAR, underlying VARCHAR, ts TIMESTAMP, instrument VARCHAR, expiry TIMESTAMP, strike DOUBLE,
        option_type VARCHAR, forward DOUBLE, index_price DOUBLE, mark_coin DOUBLE, bid_coin DOUBLE,
        ask_coin DOUBLE, mark_iv DOUBLE, bid_iv DOUBLE, ask_iv DOUBLE, PRIMARY KEY (snapshot_id, instrument));
    CREATE TABLE IF NOT EXISTS calibrations (
        calibration_id VARCHAR PRIMARY KEY, underlying VARCHAR, created_at TIMESTAMP, version INTEGER,
        params_json VARCHAR, data_json VARCHAR, errors_json VARCHAR);
    ALTER TABLE runs ADD COLUMN IF NOT EXISTS calibration_id VARCHAR;
    """,
    # 5: where each settlement price came from; coin accounting (issue 9).
    """
    ALTER TABLE trades ADD COLUMN IF NOT EXISTS settlement_source VARCHAR;
    ALTER TABLE trades ADD COLUMN IF NOT EXISTS premium_coin_total DOUBLE;
    ALTER TABLE trades ADD COLUMN IF NOT EXISTS pnl_vs_hodl_coin DOUBLE;
    ALTER TABLE equity ADD COLUMN IF NOT EXISTS covered_call_coin DOUBLE;
    ALTER TABLE equity ADD COLUMN IF NOT EXISTS hodl_coin DOUBLE;
    """,
    # 6: the trial ledger: every configuration a walk evaluated while selecting (issue 10).
    """
    CREATE TABLE IF NOT EXISTS trials (
        walk_id VARCHAR, trial_id VARCHAR, created_at TIMESTAMP, stage VARCHAR, fold INTEGER, frame VARCHAR,
        name VARCHAR, kind VARCHAR, underlying VARCHAR, timeframe VARCHAR, range_start DATE, range_end DATE,
        params_json VARCHAR, metric VARCHAR, metric_value DOUBLE, sharpe_per_bar DOUBLE, n_bars INTEGER,
        skew DOUBLE, kurtosis DOUBLE, times BIGINT[], returns DOUBLE[], excess DOUBLE[], run_id VARCHAR,
        PRIMARY KEY (walk_id, trial_id));
    """,
    # 7: a user's scheduled events (US CPI, FOMC, one-offs), added to the packaged calendar (issue 9).
    """
    CREATE TABLE IF NOT EXISTS events (
        ts TIMESTAMP, kind VARCHAR, underlying VARCHAR, move DOUBLE, label VARCHAR, source VARCHAR,
        imported_at TIMESTAMP, PRIMARY KEY (ts, kind, underlying));
    """,
    # 8: the forward basis by date (chain snapshots, futures, files) and the basis each trade was priced with.
    """
    CREATE TABLE IF NOT EXISTS basis_series (
        source VARCHAR, underlying VARCHAR, ts TIMESTAMP, basis_ann DOUBLE, PRIMARY KEY (source, underlying, ts));
    ALTER TABLE trades ADD COLUMN IF NOT EXISTS basis_ann DOUBLE;
    """,
]

# the last: this process holds the file read-write (a sweep saving) and another thread asks for it read-only
_LOCK_WORDS = ("lock", "Conflicting", "being used by another process", "different configuration")


def _is_lock_error(err: Exception) -> bool:
    text = str(err)
    return any(w in text for w in _LOCK_WORDS)


def _cause(err: Exception) -> str:
    """DuckDB's message without its error-class prefix, with a hint for the common IO causes."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    low = text.lower()
    if "read-only" in low or "read only" in low or "permission denied" in low:
        return f"{text} (the file or its folder is read-only: use a writable DUCKDB_PATH)"
    if "no space" in low or "disk full" in low:
        return f"{text} (the disk is full: free space and run again)"
    return text


def _schema_version(con: duckdb.DuckDBPyConnection) -> int:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except duckdb.CatalogException:
        return 0
    return int(row[0]) if row else 0


def _utc(series: pd.Series) -> pd.Series:
    """DuckDB keeps naive UTC timestamps; hand them out timezone-aware."""
    s = pd.to_datetime(series)
    return s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")


def _decoded(df: pd.DataFrame) -> pd.DataFrame:
    """JSON text columns (`metrics_json`, ...) handed out decoded, under their name without `_json`."""
    for col in [c for c in df.columns if c.endswith("_json")]:
        df[col[: -len("_json")]] = [json.loads(v) if isinstance(v, str) else None for v in df[col]]
        df = df.drop(columns=col)
    return df


def _naive(series: pd.Series) -> pd.Series:
    """UTC wall times without a zone (DuckDB TIMESTAMP columns); naive input is taken as UTC already."""
    s = series if isinstance(series.dtype, pd.DatetimeTZDtype) else pd.to_datetime(series, utc=True)
    return s.dt.tz_convert(None)


def naive_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every zoned timestamp column made naive UTC (a copy only when there is one)."""
    zoned = [c for c, t in df.dtypes.items() if isinstance(t, pd.DatetimeTZDtype)]
    return df.assign(**{c: df[c].dt.tz_convert(None) for c in zoned}) if zoned else df


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    t = pd.Timestamp(value)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t


class StoreConflict(CovcallError):
    """An import would change rows already stored; nothing was written."""

    def __init__(self, changed: int, first_ts: Any, stored_close: float, new_close: float) -> None:
        super().__init__(f"{changed} stored rows differ from the incoming ones (first at {first_ts})")
        self.changed, self.first_ts, self.stored_close, self.new_close = changed, first_ts, stored_close, new_close


# Two prices are the same bar when they agree to this relative precision (CSV round trips lose nothing more).
_SAME = "abs({a} - {b}) <= 1e-9 * greatest(abs({a}), abs({b}), 1e-12)"


@dataclass(frozen=True)
class DatasetFilter:
    """A selection of training examples or candidates; every field optional (None = no filter)."""

    run_ids: tuple[str, ...] | None = None
    batch_id: str | None = None
    underlyings: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None  # examples only: SELL_CALL / DO_NOTHING
    exit_styles: tuple[str, ...] | None = None
    start: Any = None  # decision_time >= start
    end: Any = None  # decision_time < end
    delta_min: float | None = None
    delta_max: float | None = None
    dte_min: float | None = None
    dte_max: float | None = None
    chosen_only: bool = False  # candidates only


DATASET_TABLES = ("examples", "candidates")


def _where(table: str, f: DatasetFilter) -> tuple[str, list[Any]]:
    """SQL WHERE clause and parameters for a DatasetFilter (values always bound, never pasted)."""
    if table not in DATASET_TABLES:
        raise CovcallError(f"table must be one of {', '.join(DATASET_TABLES)}; got {table!r}")
    parts: list[str] = []
    params: list[Any] = []

    def isin(col: str, values: Sequence[Any] | None) -> None:
        if values is not None:
            vals = list(values)
            if not vals:
                parts.append("FALSE")
                return
            parts.append(f"{col} IN ({', '.join('?' for _ in vals)})")
            params.extend(vals)

    isin("run_id", f.run_ids)
    if f.batch_id is not None:
        parts.append("run_id IN (SELECT run_id FROM runs WHERE batch_id = ?)")
        params.append(f.batch_id)
    isin("underlying", f.underlyings)
    if table == "examples":
        isin("action", f.actions)
    isin("exit_style", f.exit_styles)
    if f.start is not None:
        parts.append("decision_time >= ?")
        params.append(_ts(f.start))
    if f.end is not None:
        parts.append("decision_time < ?")
        params.append(_ts(f.end))
    dte = "dte" if table == "examples" else "dte_days"
    for col, op, val in (("delta", ">=", f.delta_min), ("delta", "<=", f.delta_max),
                         (dte, ">=", f.dte_min), (dte, "<=", f.dte_max)):
        if val is not None:
            parts.append(f"{col} {op} ?")
            params.append(float(val))
    if table == "candidates" and f.chosen_only:
        parts.append("chosen")
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


class Store:
    """One DuckDB file; a short-lived connection per operation so the dashboard and a CLI can share it.

    >>> import tempfile, pathlib
    >>> s = Store(pathlib.Path(tempfile.mkdtemp()) / "t.duckdb")
    >>> s.schema_version() == SCHEMA_VERSION
    True
    """

    def __init__(self, path: str | Path, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._migrated = False
        self._held: dict[int, duckdb.DuckDBPyConnection] = {}  # per thread, while a `writes()` block runs

    # -- connections ---------------------------------------------------------------------------
    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """One connection, retrying while another process holds a conflicting file lock."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as err:
                if not _is_lock_error(err):
                    raise CovcallError(f"cannot open database {self.path}: {_cause(err)}") from None
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"database {self.path} stayed locked by another process for {self.timeout_s:.0f}s; "
                        "wait for the other run to finish or raise STORE_TIMEOUT_S"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 1.6, 0.5)

    def _prepare(self) -> None:
        """Create the folder and file and bring the schema up to date (a write; done once per Store)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CovcallError(f"cannot create the folder of database {self.path}: {err.strerror or err}; "
                               "point DUCKDB_PATH at a writable place") from None
        if self.path.is_dir():
            raise CovcallError(f"database path {self.path} is a folder; point DUCKDB_PATH at a file such as "
                               f"{self.path / 'covcall.duckdb'}")
        con = self._open(read_only=False)
        try:
            self._migrate(con)
        except duckdb.Error as err:
            raise CovcallError(f"cannot write database {self.path}: {_cause(err)}") from None
        finally:
            con.close()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection. Reads open the file read-only, so they work on a read-only file and beside
        other readers; the first use of a Store (or a file with an older schema) migrates it with write access.
        Inside a `writes()` block this thread gets the block's connection.
        """
        held = self._held.get(threading.get_ident())
        if held is not None:
            yield held
            return
        if not self._migrated:
            if read_only and self.path.is_file():
                con = self._open(read_only=True)
                try:
                    current = _schema_version(con) == SCHEMA_VERSION
                finally:
                    con.close()
                if current:
                    self._migrated = True
            if not self._migrated:
                self._prepare()
        con = self._open(read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def writes(self) -> Iterator[None]:
        """One connection for everything this thread does with the store in the block; each write is still its own
        transaction. A sweep saves the runs that finished together this way: the file is opened once and
        checkpointed once (DuckDB checkpoints when the connection closes: a third of saving a run) instead of once
        per run. Other processes wait for the file (they retry on its lock) only as long as the block.
        """
        me = threading.get_ident()
        if me in self._held:  # nested: the outer block's connection
            yield
            return
        with self.connect() as con:
            self._held[me] = con
            try:
                yield
            finally:
                del self._held[me]

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection inside one transaction: all of it lands or none of it does.

        A failed commit reports its own cause (a full disk, a read-only file), not the rollback that follows.
        """
        with self.connect() as con:
            con.begin()
            try:
                yield con
                con.commit()
            except BaseException as err:
                try:
                    con.rollback()
                except duckdb.Error:
                    pass  # the connection is already unusable; the original error is what the user needs
                if isinstance(err, duckdb.Error):
                    raise CovcallError(f"cannot write database {self.path}: {_cause(err)}") from err
                raise

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        version = _schema_version(con)
        if version > SCHEMA_VERSION:
            raise CovcallError(
                f"database {self.path} has schema version {version}, newer than this covcall "
                f"({SCHEMA_VERSION}); upgrade covcall or point DUCKDB_PATH at another file"
            )
        for v in range(version, SCHEMA_VERSION):
            con.begin()
            con.execute(_MIGRATIONS[v])
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(v + 1)])
            con.commit()
        self._migrated = True

    def schema_version(self) -> int:
        with self.connect(read_only=True) as con:
            return _schema_version(con)

    def _insert_df(self, con: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame | pa.Table,
                   replace: bool = False) -> None:
        if not len(df):
            return
        con.register("_incoming", df)
        try:
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            con.execute(f"{verb} INTO {table} BY NAME SELECT * FROM _incoming")
        finally:
            con.unregister("_incoming")

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Query results as plain dicts (no pandas: used by commands that must start fast)."""
        with self.connect(read_only=True) as con:
            cur = con.execute(sql, list(params))
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        for r in rows:  # JSON columns decoded, as in `_frame`
            for c in [c for c in r if c.endswith("_json")]:
                raw = r.pop(c)
                r[c[: -len("_json")]] = json.loads(raw) if isinstance(raw, str) else None
        return rows

    def _frame(self, sql: str, params: Sequence[Any] = (), ts_cols: Sequence[str] = ()) -> pd.DataFrame:
        """A query's rows as a DataFrame: timestamps UTC-aware, JSON columns decoded (see `_decoded`)."""
        with self.connect(read_only=True) as con:
            df = con.execute(sql, list(params)).df()
        for c in ts_cols:
            if c in df.columns and len(df):
                df[c] = _utc(df[c])
        return _decoded(df)

    # -- candles -------------------------------------------------------------------------------
    def write_candles(self, source: str, underlying: str, timeframe: str, candles: pd.DataFrame,
                      span: tuple[Any, Any] | None = None) -> int:
        """Upsert candles (and optionally record the span they cover) in one transaction."""
        df = candles[["ts", "open", "high", "low", "close", "volume"]].copy()
        df["ts"] = _naive(df["ts"])
        df.insert(0, "timeframe", timeframe)
        df.insert(0, "underlying", underlying)
        df.insert(0, "source", source)
        with self.transaction() as con:
            self._insert_df(con, "candles", df, replace=True)
            if span is not None:
                con.execute("INSERT INTO fetch_spans VALUES (?, ?, ?, ?, ?)",
                            [source, underlying, timeframe, _ts(span[0]), _ts(span[1])])
        return len(df)

    def import_candles(self, source: str, underlying: str, timeframe: str, candles: pd.DataFrame,
                       replace: bool = False) -> dict[str, int]:
        """Insert candles, one transaction. Stored bars with other values raise StoreConflict (nothing written)
        unless `replace`, which first copies them to candles_history. Returns inserted / replaced / unchanged."""
        df = candles[["ts", "open", "high", "low", "close", "volume"]].copy()
        df["ts"] = _naive(df["ts"])
        key = [source, underlying, timeframe]
        differs = " OR ".join("NOT (" + _SAME.format(a=f"c.{col}", b=f"i.{col}") + ")"
                              for col in ("open", "high", "low", "close", "volume"))
        with self.transaction() as con:
            con.register("_incoming", df)
            try:
                con.execute("CREATE TEMP TABLE _cmp AS SELECT c.*, i.close AS new_close, (" + differs + ") AS changed "
                            "FROM candles c JOIN _incoming i ON c.ts = i.ts "
                            "WHERE c.source = ? AND c.underlying = ? AND c.timeframe = ?", key)
                overlap, changed = con.execute("SELECT count(*), count(*) FILTER (WHERE changed) FROM _cmp").fetchone()
                if changed and not replace:
                    first = con.execute("SELECT ts, close, new_close FROM _cmp WHERE changed ORDER BY ts "
                                        "LIMIT 1").fetchone()
                    raise StoreConflict(int(changed), pd.Timestamp(first[0], tz="UTC"), float(first[1]),
                                        float(first[2]))
                if changed:
                    con.execute("INSERT INTO candles_history SELECT source, underlying, timeframe, ts, open, high, "
                                "low, close, volume, now()::TIMESTAMP FROM _cmp WHERE changed")
                con.execute("INSERT OR REPLACE INTO candles SELECT ?, ?, ?, ts, open, high, low, close, volume "
                            "FROM _incoming", key)
            finally:
                con.execute("DROP TABLE IF EXISTS _cmp")
                con.unregister("_incoming")
        return {"inserted": int(len(df) - overlap), "replaced": int(changed), "unchanged": int(overlap - changed)}

    def reference_closes(self, underlying: str, start: Any, end: Any) -> pd.DataFrame:
        """Closes of every stored candle series of an underlying in [start, end) (ts, close), any source/timeframe."""
        return self._frame("SELECT ts, close FROM candles WHERE underlying = ? AND ts >= ? AND ts < ? ORDER BY ts",
                           [underlying, _ts(start), _ts(end)], ["ts"])

    def read_candles(self, source: str, underlying: str, timeframe: str,
                     start: Any = None, end: Any = None) -> pd.DataFrame:
        """Candles with ts in [start, end) (either bound optional), sorted, ts in UTC."""
        sql = ("SELECT ts, open, high, low, close, volume FROM candles "
               "WHERE source = ? AND underlying = ? AND timeframe = ?")
        params: list[Any] = [source, underlying, timeframe]
        sql += _span_sql(start, end, params)
        return self._frame(sql + " ORDER BY ts", params, ["ts"])

    def fetched_spans(self, source: str, underlying: str, timeframe: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        df = self._frame("SELECT start_ts, end_ts FROM fetch_spans WHERE source=? AND underlying=? AND timeframe=? "
                         "ORDER BY start_ts", [source, underlying, timeframe], ["start_ts", "end_ts"])
        return list(zip(df["start_ts"], df["end_ts"], strict=True))

    def series_rows(self) -> list[dict[str, Any]]:
        """`list_series` as plain dicts (start/end as naive UTC datetimes), without loading pandas."""
        return self._rows(_SERIES_SQL)

    def list_series(self) -> pd.DataFrame:
        """One row per cached series: kind, source, underlying, timeframe, rows, start, end."""
        return self._frame(_SERIES_SQL, ts_cols=["start", "end"])

    # -- implied volatility series -------------------------------------------------------------
    def write_iv(self, source: str, underlying: str, iv: pd.DataFrame, span: tuple[Any, Any] | None = None,
                 span_key: str = "iv") -> int:
        """Upsert an IV series: columns ts (the time the value is known) and iv_ann (fraction).

        `span` records the bar window a fetch covered (fetch spans under timeframe `span_key`: 'iv' for daily
        bars, 'iv_1h' for hourly), so it is not asked again.
        """
        df = iv[["ts", "iv_ann"]].copy()
        df["ts"] = _naive(df["ts"])
        df.insert(0, "underlying", underlying)
        df.insert(0, "source", source)
        with self.transaction() as con:
            self._insert_df(con, "iv_series", df, replace=True)
            if span is not None:
                con.execute("INSERT INTO fetch_spans VALUES (?, ?, ?, ?, ?)",
                            [source, underlying, span_key, _ts(span[0]), _ts(span[1])])
        return len(df)

    def import_iv(self, source: str, underlying: str, iv: pd.DataFrame, replace: bool = False) -> dict[str, int]:
        """Insert an IV series like `import_candles`: differing stored values are refused unless `replace`."""
        df = iv[["ts", "iv_ann"]].copy()
        df["ts"] = _naive(df["ts"])
        with self.transaction() as con:
            con.register("_incoming", df)
            try:
                con.execute("CREATE TEMP TABLE _cmp AS SELECT v.*, i.iv_ann AS new_iv, NOT ("
                            + _SAME.format(a="v.iv_ann", b="i.iv_ann") + ") AS changed FROM iv_series v "
                            "JOIN _incoming i ON v.ts = i.ts WHERE v.source = ? AND v.underlying = ?",
                            [source, underlying])
                overlap, changed = con.execute("SELECT count(*), count(*) FILTER (WHERE changed) FROM _cmp").fetchone()
                if changed and not replace:
                    first = con.execute("SELECT ts, iv_ann, new_iv FROM _cmp WHERE changed ORDER BY ts "
                                        "LIMIT 1").fetchone()
                    raise StoreConflict(int(changed), pd.Timestamp(first[0], tz="UTC"), float(first[1]),
                                        float(first[2]))
                if changed:
                    con.execute("INSERT INTO iv_history SELECT source, underlying, ts, iv_ann, now()::TIMESTAMP "
                                "FROM _cmp WHERE changed")
                con.execute("INSERT OR REPLACE INTO iv_series SELECT ?, ?, ts, iv_ann FROM _incoming",
                            [source, underlying])
            finally:
                con.execute("DROP TABLE IF EXISTS _cmp")
                con.unregister("_incoming")
        return {"inserted": int(len(df) - overlap), "replaced": int(changed), "unchanged": int(overlap - changed)}

    def read_iv(self, underlying: str, source: str | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
        """IV series for an underlying (any source when None), sorted by ts."""
        sql = "SELECT ts, iv_ann, source FROM iv_series WHERE underlying = ?"
        params: list[Any] = [underlying]
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        sql += _span_sql(start, end, params)
        return self._frame(sql + " ORDER BY ts, source", params, ["ts"])

    # -- the forward basis by date ---------------------------------------------------------------------
    def write_basis(self, source: str, underlying: str, basis: pd.DataFrame) -> int:
        """Upsert basis observations: columns ts (the time the value is known) and basis_ann (per year)."""
        df = basis[["ts", "basis_ann"]].copy()
        df["ts"] = _naive(df["ts"])
        df.insert(0, "underlying", underlying.upper())
        df.insert(0, "source", source)
        with self.transaction() as con:
            self._insert_df(con, "basis_series", df, replace=True)
        return len(df)

    def read_basis(self, underlying: str) -> pd.DataFrame:
        """Every stored basis observation of an underlying (ts, basis_ann, source), sorted by ts."""
        return self._frame("SELECT ts, basis_ann, source FROM basis_series WHERE underlying = ? ORDER BY ts, source",
                           [underlying.upper()], ["ts"])

    # -- option chains and calibrations ------------------------------------------------------------------
    def import_chain_quotes(self, quotes: pd.DataFrame, source: str) -> int:
        """Store the snapshots in `quotes` that are not stored yet (one transaction); returns how many were new."""
        df = quotes.copy()
        for c in ("ts", "expiry"):
            df[c] = _naive(df[c])
        with self.transaction() as con:
            known = {r[0] for r in con.execute("SELECT snapshot_id FROM chain_snapshots").fetchall()}
            new = df[~df["snapshot_id"].isin(known)]
            if new.empty:
                return 0
            heads = new.groupby("snapshot_id", as_index=False).agg(
                underlying=("underlying", "first"), ts=("ts", "first"), n_quotes=("instrument", "size"),
                index_price=("index_price", "median"))
            heads["source"] = source
            heads["imported_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
            self._insert_df(con, "chain_snapshots", heads)
            self._insert_df(con, "chain_quotes", new)
            return int(len(heads))

    def list_snapshots(self, underlying: str | None = None) -> pd.DataFrame:
        """Stored chain snapshots, oldest first: snapshot_id, underlying, ts, source, n_quotes, index_price."""
        sql = "SELECT * EXCLUDE (imported_at) FROM chain_snapshots"
        params: list[Any] = []
        if underlying is not None:
            sql += " WHERE underlying = ?"
            params.append(underlying)
        return self._frame(sql + " ORDER BY ts, snapshot_id", params, ["ts"])

    def read_chain(self, snapshot_ids: Sequence[str]) -> pd.DataFrame:
        """Every stored quote of the given snapshots."""
        ids = list(snapshot_ids)
        marks = ", ".join("?" for _ in ids) or "NULL"
        return self._frame(f"SELECT * FROM chain_quotes WHERE snapshot_id IN ({marks}) "
                           "ORDER BY snapshot_id, expiry, strike, option_type", ids, ["ts", "expiry"])

    def import_events(self, events: pd.DataFrame, source: str) -> tuple[int, int]:
        """Store calendar events (one transaction): new ones added, changed ones (move, label) replaced, equal ones
        left alone; returns (added, updated)."""
        df = events.assign(ts=_naive(events["ts"]), source=source,
                           imported_at=pd.Timestamp.now(tz="UTC").tz_localize(None))
        with self.transaction() as con:
            old = con.execute("SELECT ts, kind, underlying, move, label FROM events").df()
            old["ts"] = pd.to_datetime(old["ts"]).astype("datetime64[ns]")
            df["ts"] = df["ts"].astype("datetime64[ns]")
            merged = df.merge(old, on=["ts", "kind", "underlying"], how="left", suffixes=("", "_old"),
                              indicator=True)
            is_new = merged["_merge"] == "left_only"
            same_move = (merged["move"] == merged["move_old"]) | (merged["move"].isna() & merged["move_old"].isna())
            changed = ~is_new & ~(same_move & (merged["label"] == merged["label_old"]))
            keep = (is_new | changed).to_numpy()
            self._insert_df(con, "events", df[keep], replace=True)
        return int(is_new.sum()), int(changed.sum())

    def read_events(self) -> pd.DataFrame:
        """The stored calendar events: ts (UTC), kind, underlying ('*' = all), move (NaN = fitted size), label."""
        return self._frame("SELECT ts, kind, underlying, move, label, source FROM events ORDER BY ts, kind",
                           (), ["ts"])

    def save_calibration(self, row: dict[str, Any]) -> None:
        df = pd.DataFrame([row])
        df["created_at"] = _naive(df["created_at"])
        with self.transaction() as con:
            self._insert_df(con, "calibrations", df)

    def list_calibrations(self, underlying: str | None = None) -> pd.DataFrame:
        """Stored calibrations, newest first (params, data and errors decoded)."""
        sql = "SELECT * FROM calibrations"
        params: list[Any] = []
        if underlying is not None:
            sql += " WHERE underlying = ?"
            params.append(underlying)
        return self._frame(sql + " ORDER BY created_at DESC, version DESC", params, ["created_at"])

    # -- runs ------------------------------------------------------------------------------------
    def save_run(self, run: dict[str, Any], tables: Mapping[str, pd.DataFrame | pa.Table]) -> None:
        """One run row plus its trades, examples, candidates and equity, all or nothing (frames or Arrow tables:
        `covcall.dataset.run_rows` hands Arrow tables in, already naive UTC, which DuckDB reads without a copy)."""
        prepared = {name: df if isinstance(df, pa.Table) else naive_frame(df) for name, df in tables.items()}
        row = naive_frame(pd.DataFrame([run]))
        with self.transaction() as con:
            self._insert_df(con, "runs", row)
            for name, df in prepared.items():
                self._insert_df(con, name, df)

    def set_run_exports(self, run_id: str, csv_path: str | None, jsonl_path: str | None) -> None:
        """Record where a saved run's CSV / JSONL were written (after they were)."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET export_csv = ?, export_jsonl = ? WHERE run_id = ?",
                        [csv_path, jsonl_path, run_id])

    def list_runs(self, limit: int | None = None, batch_id: str | None = None) -> pd.DataFrame:
        sql = "SELECT * EXCLUDE (config_json) FROM runs"
        params: list[Any] = []
        if batch_id is not None:
            sql += " WHERE batch_id = ?"
            params.append(batch_id)
        sql += " ORDER BY created_at DESC, run_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._frame(sql, params, ["created_at", "data_start", "data_end"])

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        df = self._frame("SELECT * FROM runs WHERE run_id = ?", [run_id], ["created_at", "data_start", "data_end"])
        return None if df.empty else df.iloc[0].to_dict()

    def read_run_table(self, table: str, run_ids: Sequence[str]) -> pd.DataFrame:
        """Trades, examples, candidates or equity of the given runs, in their natural order."""
        order = {"trades": "run_id, trade_no", "examples": "run_id, example_no",
                 "candidates": "run_id, decision_time, expiry, strike", "equity": "run_id, ts"}[table]
        ts_cols = {"trades": ["entry_time", "exit_time", "expiry"], "examples": ["decision_time", "label_end"],
                   "candidates": ["decision_time", "expiry", "label_end"], "equity": ["ts"]}[table]
        ids = list(run_ids)
        marks = ", ".join("?" for _ in ids) or "NULL"
        return self._frame(f"SELECT * FROM {table} WHERE run_id IN ({marks}) ORDER BY {order}", ids, ts_cols)

    def counts(self) -> dict[str, int]:
        """How many rows each user-visible table holds (for the home page and `covcall status`)."""
        with self.connect(read_only=True) as con:
            out = {}
            for t in ("candles", "iv_series", "chain_snapshots", "runs", "trades", "examples", "candidates", "models",
                      "walks", "range_sets", "jobs"):
                out[t] = int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
        return out

    # -- dataset browser (never loads a whole table: counts, pages and aggregates run in DuckDB) ------
    def count_rows(self, table: str, f: DatasetFilter) -> int:
        where, params = _where(table, f)
        with self.connect(read_only=True) as con:
            return int(con.execute(f"SELECT count(*) FROM {table}{where}", params).fetchone()[0])

    def page_rows(self, table: str, f: DatasetFilter, limit: int = 100, offset: int = 0) -> pd.DataFrame:
        """One page of rows in a stable order (decision time, then run and row)."""
        where, params = _where(table, f)
        order = "decision_time, run_id, example_no" if table == "examples" else "decision_time, run_id, expiry, strike"
        drop = " EXCLUDE (extra)" if table == "examples" else ""
        sql = f"SELECT *{drop} FROM {table}{where} ORDER BY {order} LIMIT {int(limit)} OFFSET {int(offset)}"
        return self._frame(sql, params, ["decision_time", "label_end", "expiry"])

    def selection_run_ids(self, table: str, f: DatasetFilter) -> list[str]:
        """The runs a selection touches, in order (exports walk them one at a time)."""
        where, params = _where(table, f)
        return [r["run_id"] for r in self._rows(f"SELECT DISTINCT run_id FROM {table}{where} ORDER BY run_id",
                                                 params)]

    def dataset_summary(self, table: str, f: DatasetFilter) -> dict[str, Any]:
        """Counts and comparable averages of a selection.

        Dollar figures of BTC and ETH do not add up, so averages are also given as % of spot
        (`mean_reward_pct`, `mean_pnl_vs_hodl_pct`) and the total in USD per underlying (`total_reward_by`).
        `win_rate` has one meaning in both tables: the share of sold calls (examples: SELL_CALL rows;
        candidates: every candidate, as if sold) whose option legs beat HODL (`pnl_vs_hodl > 0`).
        """
        where, params = _where(table, f)
        sold = "action = 'SELL_CALL'" if table == "examples" else "TRUE"
        share = ("avg(CASE WHEN action = 'SELL_CALL' THEN 1.0 ELSE 0.0 END)" if table == "examples"
                 else "avg(chosen::DOUBLE)")
        sql = (f"SELECT count(*) AS rows, count(DISTINCT run_id) AS runs, avg(reward) AS mean_reward, "
               f"avg(reward / nullif(spot, 0)) AS mean_reward_pct, {share} AS sell_share, "
               f"avg(CASE WHEN {sold} THEN pnl_vs_hodl / nullif(spot, 0) END) AS mean_pnl_vs_hodl_pct, "
               f"avg(CASE WHEN {sold} THEN (pnl_vs_hodl > 0)::DOUBLE END) AS win_rate, "
               f"count(DISTINCT underlying) AS underlyings, sum(reward) AS total_reward, "
               f"min(decision_time) AS first, max(decision_time) AS last FROM {table}{where}")
        by_sql = f"SELECT underlying, sum(reward) AS total FROM {table}{where} GROUP BY ALL ORDER BY underlying"
        with self.connect(read_only=True) as con:
            row = con.execute(sql, params).fetchone()
            cols = [d[0] for d in con.description]
            by = con.execute(by_sql, params).fetchall()
        out = dict(zip(cols, row, strict=True))
        out["total_reward_by"] = {str(u): float(t) for u, t in by if t is not None}
        if out["underlyings"] and out["underlyings"] > 1:
            out["total_reward"] = None  # dollars of different coins: see total_reward_by
        return out

    def reward_histogram(self, table: str, f: DatasetFilter, bins: int = 40) -> pd.DataFrame:
        """Counts of reward in equal-width bins: columns bin_lo, bin_hi, rows."""
        where, params = _where(table, f)
        sql = (f"WITH s AS (SELECT reward FROM {table}{where}), b AS (SELECT min(reward) lo, max(reward) hi FROM s) "
               f"SELECT least(floor((reward - lo) / nullif((hi - lo) / {int(bins)}, 0)), {int(bins) - 1}) AS k, "
               f"any_value(lo) lo, any_value(hi) hi, count(*) AS rows FROM s, b GROUP BY k ORDER BY k")
        df = self._frame(sql, params)
        if df.empty:
            return pd.DataFrame(columns=["bin_lo", "bin_hi", "rows"])
        width = (df["hi"] - df["lo"]) / bins
        k = df["k"].fillna(0)
        return pd.DataFrame({"bin_lo": df["lo"] + k * width, "bin_hi": df["lo"] + (k + 1) * width,
                             "rows": df["rows"]})

    def reward_by(self, table: str, f: DatasetFilter, column: str, bins: int = 20) -> pd.DataFrame:
        """Mean reward and row count per equal-width bucket of `column` (delta or the DTE column)."""
        allowed = {"delta", "dte", "dte_days", "moneyness", "iv_ann", "score"}
        if column not in allowed:
            raise CovcallError(f"cannot group by {column!r}; choose one of {', '.join(sorted(allowed))}")
        where, params = _where(table, f)
        sql = (f"WITH s AS (SELECT {column} AS x, reward FROM {table}{where}{' AND' if where else ' WHERE'} "
               f"{column} IS NOT NULL), b AS (SELECT min(x) lo, max(x) hi FROM s) "
               f"SELECT any_value(lo) + (least(floor((x - lo) / nullif((hi - lo) / {int(bins)}, 0)), {int(bins) - 1}) "
               f"+ 0.5) * (any_value(hi) - any_value(lo)) / {int(bins)} AS x, "
               f"avg(reward) AS mean_reward, count(*) AS rows FROM s, b "
               f"GROUP BY least(floor((x - lo) / nullif((hi - lo) / {int(bins)}, 0)), {int(bins) - 1}) ORDER BY 1")
        df = self._frame(sql, params)
        return df.rename(columns={"x": column})

    def actions_over_time(self, f: DatasetFilter, freq: str = "month") -> pd.DataFrame:
        """Example counts per action per period (day, week, month or year)."""
        if freq not in ("day", "week", "month", "year"):
            raise CovcallError(f"freq must be day, week, month or year; got {freq!r}")
        where, params = _where("examples", f)
        sql = (f"SELECT date_trunc('{freq}', decision_time) AS period, action, count(*) AS rows "
               f"FROM examples{where} GROUP BY ALL ORDER BY period, action")
        return self._frame(sql, params, ["period"])

    def copy_rows(self, table: str, f: DatasetFilter, path: Path, fmt: str,
                  partition_by: Sequence[str] = ()) -> int:
        """Write the selection straight from DuckDB to csv, jsonl (extra nested) or parquet (a Hive-partitioned
        folder when `partition_by` names columns)."""
        where, params = _where(table, f)
        iso = "strftime({c}, '%Y-%m-%dT%H:%M:%S+00:00') AS {c}"
        if table == "examples":
            head = ("decision_time, underlying, spot, action, reward" if fmt == "parquet" else
                    iso.format(c="decision_time") + ", underlying, spot, action, reward")
            flat = ("instrument, delta, strike, dte, score, exit_style, pnl_vs_hodl, max_drawdown_pct, "
                    "best_score, candidates, reason")
            tail = "run_id, example_no, timeframe, rv_ann, iv_ann, ret_1d, ret_7d, ret_30d, " + (
                "label_end" if fmt == "parquet" else iso.format(c="label_end"))
            cols = f"{head}, extra::JSON AS extra, {tail}" if fmt == "jsonl" else f"{head}, {flat}, {tail}"
            order = "decision_time, run_id, example_no"
        else:
            cols = "*" if fmt == "parquet" else "* REPLACE (" + ", ".join(
                iso.format(c=c) for c in ("decision_time", "expiry", "label_end")) + ")"
            order = "candidates.decision_time, run_id, candidates.expiry, strike"
        opts = {"csv": "FORMAT csv, HEADER", "jsonl": "FORMAT json", "parquet": "FORMAT parquet"}[fmt]
        if partition_by:  # names were checked against PARTITION_COLUMNS by the caller
            opts += ", PARTITION_BY (" + ", ".join(partition_by) + ")"
        # Parquet is read by engines that sort for themselves: rows go in storage order (runs in the order they
        # were saved, each in time order), which streams; CSV / JSONL are read by people and come sorted.
        ordered = "" if fmt == "parquet" else f" ORDER BY {order}"
        sql = f"COPY (SELECT {cols} FROM {table}{where}{ordered}) TO '{_sql_path(path)}' ({opts})"
        with self.connect(read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = '{EXPORT_MEMORY_LIMIT}'")  # a sort spills to disk beyond this
            written = con.execute(sql, params).fetchone()  # COPY reports the rows it wrote
            return int(written[0]) if written else 0

    # -- models ----------------------------------------------------------------------------------
    def save_model_row(self, row: dict[str, Any]) -> None:
        df = pd.DataFrame([row])
        for c in ("created_at", "trained_until"):
            if c in df.columns:
                df[c] = _naive(df[c])
        with self.transaction() as con:
            con.execute("DELETE FROM models WHERE model_id = ?", [row["model_id"]])
            self._insert_df(con, "models", df)

    def get_model_row(self, model_id: str) -> dict[str, Any] | None:
        df = self._frame("SELECT * FROM models WHERE model_id = ?", [model_id], ["created_at", "trained_until"])
        return None if df.empty else df.iloc[0].to_dict()

    def list_models(self) -> pd.DataFrame:
        return self._frame("SELECT * FROM models ORDER BY created_at DESC, model_id",
                           ts_cols=["created_at", "trained_until"])

    def read_candidates(self, run_ids: Sequence[str] | None = None, start: Any = None, end: Any = None) -> pd.DataFrame:
        """Candidate rows (all columns) of some runs and/or a decision-time window [start, end)."""
        f = DatasetFilter(run_ids=tuple(run_ids) if run_ids is not None else None, start=start, end=end)
        where, params = _where("candidates", f)
        return self._frame(f"SELECT * FROM candidates{where} ORDER BY decision_time, run_id, expiry, strike",
                           params, ["decision_time", "label_end", "expiry"])

    # -- walks -----------------------------------------------------------------------------------
    def save_walk(self, row: dict[str, Any], trials: Sequence[dict[str, Any]] = ()) -> None:
        """The walk and its trial ledger in one transaction (both or neither)."""
        df = pd.DataFrame([row])
        df["created_at"] = _naive(df["created_at"])
        with self.transaction() as con:
            con.execute("DELETE FROM walks WHERE walk_id = ?", [row["walk_id"]])
            con.execute("DELETE FROM trials WHERE walk_id = ?", [row["walk_id"]])
            self._insert_df(con, "walks", df)
            if trials:
                t = pd.DataFrame([{**{k: v for k, v in r.items() if k != "params"}, "params_json": json.dumps(r["params"], sort_keys=True),
                                   "created_at": row["created_at"]} for r in trials])
                t["created_at"] = _naive(pd.to_datetime(t["created_at"], utc=True))
                t["range_start"] = pd.to_datetime(t["range_start"]).dt.date
                t["range_end"] = pd.to_datetime(t["range_end"]).dt.date
                self._insert_df(con, "trials", t)

    def read_trials(self, walk_id: str, with_returns: bool = True) -> list[dict[str, Any]]:
        """A walk's ledger rows in the order they were run (params decoded)."""
        cols = "*" if with_returns else ", ".join(_TRIAL_COLS)
        return [_trial(r) for r in self._rows(f"SELECT {cols} FROM trials WHERE walk_id = ? ORDER BY rowid",
                                              [walk_id])]

    def prior_trials(self, underlying: str, timeframe: str, start: Any, end: Any, before: Any,
                     exclude_walk: str | None = None) -> list[dict[str, Any]]:
        """Selection trials of earlier walks' folds that tested on the same underlying, timeframe and range."""
        sql = ("WITH used AS (SELECT DISTINCT walk_id, fold FROM trials WHERE stage = 'test' AND underlying = ? "
               "AND timeframe = ? AND range_start = ? AND range_end = ? AND created_at < ? AND walk_id <> ?) "
               "SELECT t.* FROM trials t JOIN used u ON t.walk_id = u.walk_id AND t.fold = u.fold "
               "WHERE t.stage IN ('tune', 'test') ORDER BY t.created_at, t.walk_id, t.rowid")
        params = [underlying, timeframe, pd.Timestamp(start).date(), pd.Timestamp(end).date(),
                  _naive(pd.Series([pd.Timestamp(before)])).iloc[0].to_pydatetime(), exclude_walk or ""]
        return [_trial(r) for r in self._rows(sql, params)]

    def get_walk(self, walk_id: str) -> dict[str, Any] | None:
        df = self._frame("SELECT * FROM walks WHERE walk_id = ?", [walk_id], ["created_at"])
        return None if df.empty else df.iloc[0].to_dict()

    def list_walks(self) -> pd.DataFrame:
        """Stored walks, newest first, with what their verdict rests on: passed (the chosen variant beat HODL with
        DSR and PBO in bounds), its DSR, the PBO and the trials counted (NULL for walks stored before them)."""
        return self._frame(
            "SELECT walk_id, created_at, name, metric, best_strategy, best_metric, "
            "json_extract_string(result_json, '$.verdict.passed') = 'true' AS passed, "
            "TRY_CAST(json_extract_string(result_json, '$.selection.dsr_best') AS DOUBLE) AS dsr, "
            "TRY_CAST(json_extract_string(result_json, '$.selection.pbo.pbo') AS DOUBLE) AS pbo, "
            "TRY_CAST(json_extract_string(result_json, '$.selection.n_trials') AS INTEGER) AS n_trials, report_dir "
            "FROM walks ORDER BY created_at DESC, walk_id", ts_cols=["created_at"])

    # -- deleting and renaming runs and range sets --------------------------------------------------------
    _RUN_TABLES = ("examples", "candidates", "trades", "equity")

    @staticmethod
    def _require(con: duckdb.DuckDBPyConnection, table: str, column: str, names: Sequence[str], what: str) -> None:
        """Refuse (before anything changes) names that are not in `table`, with the nearest known one."""
        marks = ", ".join("?" for _ in names) or "NULL"
        found = {r[0] for r in con.execute(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})",
                                           list(names)).fetchall()}
        missing = [n for n in names if n not in found]
        if missing:
            known = [r[0] for r in con.execute(f"SELECT {column} FROM {table}").fetchall()]
            raise CovcallError(f"no {what} {missing[0]!r}{did_you_mean(missing[0], known)}; nothing was changed")

    def run_footprint(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """What deleting these runs would remove: per run its rows in every table and its export files, plus the
        walks whose trial ledger refers to it (those walks keep their ledger). Unknown ids are refused."""
        ids = list(dict.fromkeys(run_ids))
        with self.connect(read_only=True) as con:
            self._require(con, "runs", "run_id", ids, "run")
        marks = ", ".join("?" for _ in ids) or "NULL"
        counts = ", ".join(f"(SELECT count(*) FROM {t} WHERE run_id = r.run_id) AS {t}" for t in self._RUN_TABLES)
        return self._frame(f"SELECT r.run_id, r.label, {counts}, r.export_csv, r.export_jsonl, "
                           f"(SELECT string_agg(DISTINCT walk_id, ', ') FROM trials WHERE run_id = r.run_id) AS walks "
                           f"FROM runs r WHERE r.run_id IN ({marks}) ORDER BY r.created_at DESC, r.run_id", ids)

    def delete_runs(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Delete runs and their examples, candidates, trades and equity in one transaction; returns row counts.
        Unknown ids are refused before anything is deleted (export files are the caller's to remove)."""
        ids = list(dict.fromkeys(run_ids))
        marks = ", ".join("?" for _ in ids) or "NULL"
        with self.transaction() as con:
            self._require(con, "runs", "run_id", ids, "run")
            out = {}
            for t in (*self._RUN_TABLES, "runs"):
                out[t] = int(con.execute(f"SELECT count(*) FROM {t} WHERE run_id IN ({marks})", ids).fetchone()[0])
                con.execute(f"DELETE FROM {t} WHERE run_id IN ({marks})", ids)
        return out

    def rename_run(self, run_id: str, label: str) -> None:
        """Set a run's label (its name in every list); an unknown run is refused."""
        with self.transaction() as con:
            self._require(con, "runs", "run_id", [run_id], "run")
            con.execute("UPDATE runs SET label = ? WHERE run_id = ?", [label.strip() or None, run_id])

    def delete_range_set(self, name: str) -> None:
        """Delete a saved range set; an unknown name is refused with the saved names."""
        with self.transaction() as con:
            self._require(con, "range_sets", "name", [name], "saved range set")
            con.execute("DELETE FROM range_sets WHERE name = ?", [name])

    def rename_range_set(self, old: str, new: str) -> None:
        """Rename a saved range set; refused (nothing changes) when `old` is unknown or `new` is taken."""
        new = new.strip()
        if not new:
            raise CovcallError("a range set needs a name; give a non-empty new name")
        with self.transaction() as con:
            self._require(con, "range_sets", "name", [old], "saved range set")
            if con.execute("SELECT 1 FROM range_sets WHERE name = ?", [new]).fetchone() is not None:
                raise CovcallError(f"a range set named {new!r} exists already; pick another name or delete it first")
            spec_json = con.execute("SELECT spec_json FROM range_sets WHERE name = ?", [old]).fetchone()[0]
            con.execute("DELETE FROM range_sets WHERE name = ?", [old])
            con.execute("INSERT INTO range_sets VALUES (?, ?, now()::TIMESTAMP)", [new, spec_json])

    # -- range sets -----------------------------------------------------------------------------
    def save_range_set(self, name: str, spec_json: str, overwrite: bool = False) -> str:
        """Save a named range set (the JSON `RangeSet.to_dict` produced), checking and writing in one transaction.

        Returns 'created', 'replaced', 'unchanged' (same JSON already saved) or 'exists' (a different set holds
        the name and overwrite is False; nothing written)."""
        with self.transaction() as con:
            row = con.execute("SELECT spec_json FROM range_sets WHERE name = ?", [name]).fetchone()
            if row is not None and row[0] == spec_json:
                return "unchanged"
            if row is not None and not overwrite:
                return "exists"
            con.execute("INSERT OR REPLACE INTO range_sets VALUES (?, ?, now()::TIMESTAMP)", [name, spec_json])
            return "created" if row is None else "replaced"

    def load_range_set(self, name: str) -> str | None:
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT spec_json FROM range_sets WHERE name = ?", [name]).fetchone()
        return row[0] if row else None

    def list_range_sets(self) -> list[str]:
        with self.connect(read_only=True) as con:
            return [r[0] for r in con.execute("SELECT name FROM range_sets ORDER BY name").fetchall()]

    # -- jobs (batches, walks and other long operations) ---------------------------------------------
    def start_job(self, job_id: str, kind: str, name: str, pid: int, host: str, detail_json: str = "{}") -> None:
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, now()::TIMESTAMP, now()::TIMESTAMP, 'running', "
                        "NULL, ?, ?, ?)", [job_id, kind, name, pid, host, detail_json])

    def finish_job(self, job_id: str, status: str, error: str | None = None, detail_json: str | None = None) -> None:
        with self.transaction() as con:
            con.execute("UPDATE jobs SET status = ?, error = ?, updated_at = now()::TIMESTAMP, "
                        "detail_json = coalesce(?, detail_json) WHERE job_id = ?",
                        [status, error, detail_json, job_id])

    def job_rows(self, kind: str | None = None) -> list[dict[str, Any]]:
        """`read_jobs` as plain dicts, without loading pandas."""
        sql, params = _jobs_sql(kind)
        return self._rows(sql, params)

    def read_jobs(self, kind: str | None = None) -> pd.DataFrame:
        """Every job row (newest first), as recorded; covcall.jobs adds the effective status."""
        sql, params = _jobs_sql(kind)
        return self._frame(sql, params, ["created_at", "updated_at"])

    # -- key/value -----------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


_SERIES_SQL = (
    "SELECT 'candles' AS kind, source, underlying, timeframe, count(*) AS rows, min(ts) AS start, "
    "max(ts) AS end FROM candles GROUP BY ALL "
    "UNION ALL SELECT 'iv' AS kind, source, underlying, "
    "CASE WHEN bool_and(ts = date_trunc('day', ts)) THEN '1d' ELSE 'intraday' END AS timeframe, count(*), "
    "min(ts), max(ts) "
    "FROM iv_series GROUP BY ALL "
    "UNION ALL SELECT 'basis' AS kind, source, underlying, '' AS timeframe, count(*), min(ts), max(ts) "
    "FROM basis_series GROUP BY ALL ORDER BY kind, source, underlying, timeframe")


EXPORT_MEMORY_LIMIT = "1GB"

_TRIAL_COLS = ("walk_id", "trial_id", "created_at", "stage", "fold", "frame", "name", "kind", "underlying",
               "timeframe", "range_start", "range_end", "params_json", "metric", "metric_value", "sharpe_per_bar",
               "n_bars", "skew", "kurtosis", "run_id")


def _trial(r: dict[str, Any]) -> dict[str, Any]:
    for k in ("range_start", "range_end"):
        if r.get(k) is not None:
            r[k] = r[k].isoformat()
    if r.get("created_at") is not None:
        r["created_at"] = pd.Timestamp(r["created_at"], tz="UTC").isoformat()
    for k in ("times", "returns", "excess"):
        if k in r and r[k] is not None:
            r[k] = list(r[k])
    return r


def _jobs_sql(kind: str | None) -> tuple[str, list[Any]]:
    if kind is None:
        return "SELECT * FROM jobs ORDER BY created_at DESC, job_id", []
    return "SELECT * FROM jobs WHERE kind = ? ORDER BY created_at DESC, job_id", [kind]


def _span_sql(start: Any, end: Any, params: list[Any]) -> str:
    """' AND ts >= ? AND ts < ?' for the bounds given, appending their values to params."""
    sql = ""
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            sql += f" AND ts {op} ?"
            params.append(_ts(bound))
    return sql


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
