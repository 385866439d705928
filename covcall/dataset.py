"""Training examples in the seed's schema: shaping, persisting runs, and atomic CSV / JSONL / Parquet exports."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from covcall.enums import Action, ExitStyle, RunStatus, values
from covcall.errors import CovcallError, did_you_mean
from covcall.jsonutil import dumps, plain
from covcall.store import DATASET_TABLES, DatasetFilter, Store, naive_frame

SELL_KEYS = ("instrument", "delta", "strike", "dte", "score", "exit_style", "pnl_vs_hodl", "max_drawdown_pct")
SKIP_KEYS = ("best_score", "candidates", "reason")
EXTRA_KEYS = SELL_KEYS + SKIP_KEYS
STATE_COLS = ("rv_ann", "iv_ann", "ret_1d", "ret_7d", "ret_30d")
HEAD_COLS = ("decision_time", "underlying", "spot", "action", "reward")
TAIL_COLS = ("run_id", "example_no", "timeframe", *STATE_COLS, "label_end")
# One row per decision; the CSV holds exactly these columns, DuckDB these plus `extra` as JSON.
EXAMPLE_COLUMNS = (*HEAD_COLS, *EXTRA_KEYS, *TAIL_COLS)
FORMATS = ("csv", "jsonl", "parquet")


def shape_examples(raw: pd.DataFrame) -> pd.DataFrame:
    """Engine decision rows -> the examples table (flat extra columns; keys of the other action left null)."""
    df = raw.rename(columns={"atm_iv_ann": "iv_ann"}).copy()
    for c in EXAMPLE_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    df["example_no"] = np.arange(1, len(df) + 1)
    sell = df["action"] == Action.SELL_CALL
    for c in SKIP_KEYS:
        df[c] = df[c].astype(object).where(~sell, None)
    for c in SELL_KEYS:
        df[c] = df[c].astype(object).where(sell, None)
    out = df[list(EXAMPLE_COLUMNS)].copy()
    for c in ("spot", "reward", "delta", "strike", "score", "pnl_vs_hodl", "max_drawdown_pct", "best_score",
              *STATE_COLS):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    for c in ("dte", "candidates", "example_no"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("Int64")
    for c in ("instrument", "exit_style", "reason"):
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def extra_of(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's `extra` dict for one example row."""
    keys = SELL_KEYS if row["action"] == Action.SELL_CALL else SKIP_KEYS
    return {k: plain(row.get(k)) for k in keys}


def jsonl_records(examples: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Examples as JSONL objects: head columns, nested `extra`, then run id and market state."""
    for row in examples.to_dict("records"):
        rec = {c: plain(row[c]) for c in HEAD_COLS}
        rec["extra"] = extra_of(row)
        rec.update({c: plain(row[c]) for c in TAIL_COLS})
        yield rec


def _export_partitioned(store: Store, table: str, selection: DatasetFilter, fmt: str, out: str | Path,
                        partition_by: tuple[str, ...]) -> dict[str, Any]:
    if fmt != "parquet":
        raise CovcallError(f"--partition-by writes a Parquet dataset; use --format parquet (got {fmt!r})")
    if table not in DATASET_TABLES:
        raise CovcallError(f"table must be one of {', '.join(DATASET_TABLES)}; got {table!r}")
    allowed = PARTITION_COLUMNS[table]
    for c in partition_by:
        if c not in allowed:
            raise CovcallError(f"cannot partition {table} by {c!r}{did_you_mean(c, allowed)}; choose from "
                               f"{', '.join(allowed)}")
    check_filter(selection)
    text = str(out).strip() if out is not None else ""
    if not text:
        raise CovcallError("the export folder is empty; give a new folder such as data/examples_parquet")
    folder = Path(text)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CovcallError(f"{folder} exists{' and is not empty' if folder.is_dir() else ' and is a file'}; "
                           "a partitioned export writes a new folder: choose another name or remove it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        rows = store.copy_rows(table, selection, tmp, "parquet", partition_by=partition_by)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _os_error(err, folder) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.parquet"))
    return {"path": str(folder), "rows": rows, "format": "parquet", "table": table,
            "partition_by": list(partition_by), "files": len(files)}


def check_destination(path: str | Path, what: str = "export") -> Path:
    """An export path that is safe to write: not empty, not a folder, device or FIFO; its folder is created.

    >>> check_destination("/dev/null")
    Traceback (most recent call last):
    covcall.errors.CovcallError: /dev/null exists and is not a regular file (a device); give the export a file name such as data/export.csv
    """
    text = str(path).strip() if path is not None else ""
    if not text:
        raise CovcallError(f"the {what} path is empty; give a file name such as data/export.csv")
    p = Path(text)
    if p.is_dir():
        raise CovcallError(f"{p} is a folder; give the {what} a file name inside it, such as {p / 'export.csv'}")
    if p.exists() and not p.is_file():
        kind = "a FIFO" if stat.S_ISFIFO(p.stat().st_mode) else "a device" if (
            stat.S_ISCHR(p.stat().st_mode) or stat.S_ISBLK(p.stat().st_mode)) else "not a file"
        raise CovcallError(f"{p} exists and is not a regular file ({kind}); give the {what} a file name such as "
                           "data/export.csv")
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise CovcallError(f"cannot write {p}: {parent} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CovcallError(f"cannot create the folder {parent} for {p}: {err.strerror or err}") from None
    if not os.access(parent, os.W_OK):
        raise CovcallError(f"cannot write {p}: the folder {parent} is not writable; choose another place")
    return p


def check_export_dir(folder: str | Path) -> Path:
    """The export folder, created if needed and checked writable before any work starts (so a run is never
    computed, or saved, only to fail at export time on a bad TRAINING_DATA_DIR)."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise CovcallError(f"TRAINING_DATA_DIR {d} is a file, not a folder; point it at a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CovcallError(f"cannot create TRAINING_DATA_DIR {d}: {err.strerror or err}; point it at a writable "
                           "folder") from None
    if not os.access(d, os.W_OK):
        raise CovcallError(f"TRAINING_DATA_DIR {d} is not writable; point it at a writable folder")
    return d


_TMP_PREFIX = ".covcall-"


def _tmp_path(path: Path) -> Path:
    """A hidden temp file beside `path`, naming the process that writes it (so a later run can clean it up)."""
    return path.parent / f"{_TMP_PREFIX}{os.getpid()}-{path.name}.tmp"


def _os_error(err: OSError, path: Path) -> CovcallError:
    why = "the disk is full; free some space" if err.errno == errno.ENOSPC else (err.strerror or str(err))
    return CovcallError(f"cannot write {path}: {why}")


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temp file in the same folder and rename: readers never see a partial file, and a failure
    or Ctrl-C leaves nothing behind (a killed process leaves a temp file that `recover_exports` removes)."""
    path = check_destination(path)
    tmp = _tmp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # exports are meant to be shared like any data file
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise _os_error(err, path) from None
    except BaseException:
        _remove(tmp)
        raise


def write_text_file(path: str | Path, text: str) -> Path:
    """A text file (a report) written like every export: checked destination, temp file, atomic rename."""
    out = check_destination(path, "report")
    _atomic_write(out, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return out


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            Path(p).unlink(missing_ok=True)
        except OSError:
            pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def recover_exports(folder: str | Path) -> dict[str, int]:
    """Undo what killed exports left in `folder`: temp files of dead processes (ours and DuckDB's `tmp_*`), and
    CSV/JSONL pairs whose renaming was cut in the middle (both go, so a pair is always both files or neither).
    Returns how many files were removed. Every export calls this first."""
    d = Path(folder)
    removed = {"temp_files": 0, "half_pairs": 0}
    if not d.is_dir():
        return removed
    for f in d.iterdir():
        name = f.name
        owner = None
        if name.startswith(_TMP_PREFIX) and name.endswith(".tmp"):
            owner = name[len(_TMP_PREFIX):].split("-", 1)[0]
        elif name.startswith("tmp_" + _TMP_PREFIX):  # DuckDB's own temp file beside ours
            owner = name[len("tmp_" + _TMP_PREFIX):].split("-", 1)[0]
        elif name.startswith(_TMP_PREFIX) and name.endswith(".pair.json"):
            owner = name[len(_TMP_PREFIX):].split("-", 1)[0]
            if owner.isdigit() and not _pid_alive(int(owner)):
                try:
                    pair = json.loads(f.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    pair = []
                if not all(Path(x).exists() for x in pair):
                    _remove(*[Path(x) for x in pair])
                    removed["half_pairs"] += 1
                _remove(f)
            continue
        if owner is not None and owner.isdigit() and not _pid_alive(int(owner)):
            _remove(f)
            removed["temp_files"] += 1
    return removed


def write_pair(files: dict[str, tuple[Path, Any]]) -> dict[str, str]:
    """Write several files so that all of them appear or none does: temps first, a journal naming the pair, then
    the renames; a process killed during the renames leaves the journal, and `recover_exports` removes the
    half-written pair."""
    paths = {fmt: check_destination(path) for fmt, (path, _) in files.items()}
    temps = {fmt: _tmp_path(p) for fmt, p in paths.items()}
    folder = next(iter(paths.values())).parent
    recover_exports(folder)
    journal = folder / f"{_TMP_PREFIX}{os.getpid()}-{next(iter(paths.values())).stem}.pair.json"
    done: list[Path] = []
    try:
        for fmt, (_, write) in files.items():
            write(temps[fmt])
            os.chmod(temps[fmt], 0o644)
        journal.write_text(json.dumps([str(p) for p in paths.values()]), encoding="utf-8")
        for fmt, p in paths.items():
            os.replace(temps[fmt], p)
            done.append(p)
        _remove(journal)
    except OSError as err:
        _remove(*temps.values(), *done, journal)
        raise _os_error(err, next(iter(paths.values()))) from None
    except BaseException:
        _remove(*temps.values(), *done, journal)
        raise
    return {fmt: str(p) for fmt, p in paths.items()}


def _csv_frame(examples: pd.DataFrame) -> pd.DataFrame:
    df = examples[[c for c in EXAMPLE_COLUMNS if c in examples.columns]].copy()
    for c in ("decision_time", "label_end"):
        if c in df.columns:
            df[c] = pd.to_datetime(df[c], utc=True).map(lambda t: t.isoformat() if pd.notna(t) else "")
    return df


def _examples_writer(examples: pd.DataFrame, fmt: str) -> Any:
    """A function writing in-memory examples to a path: CSV (extra flattened) or JSONL (extra nested)."""
    if fmt == "csv":
        return lambda p: _csv_frame(examples).to_csv(p, index=False)
    if fmt == "jsonl":
        def w(p: Path) -> None:
            with open(p, "w", encoding="utf-8") as fh:
                for rec in jsonl_records(examples):
                    fh.write(json.dumps(rec, allow_nan=False) + "\n")
        return w
    raise CovcallError(f"in-memory examples are written as csv or jsonl; got {fmt!r}")


def write_examples(examples: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write in-memory examples to one CSV or JSONL file, atomically (stored selections: `export_selection`)."""
    _atomic_write(path, _examples_writer(examples, fmt))
    return path


def export_run_files(examples: pd.DataFrame, out_dir: Path, dataset_id: str) -> dict[str, str]:
    """`training_dataset_<id>_<UTC timestamp>.csv` and `.jsonl` in out_dir, both or neither; returns their paths."""
    return write_pair({fmt: (path, _examples_writer(examples, fmt))
                       for fmt, path in _run_file_paths(out_dir, dataset_id).items()})


def _run_file_paths(out_dir: Path, dataset_id: str) -> dict[str, Path]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = Path(out_dir) / f"training_dataset_{dataset_id}_{stamp}"
    return {fmt: base.with_suffix(f".{fmt}") for fmt in ("csv", "jsonl")}


def export_text(examples: pd.DataFrame) -> tuple[str, str, str]:
    """Examples as export text: the CSV header, the CSV rows and the JSONL lines (what `export_run_files` writes)."""
    frame = _csv_frame(examples)
    jsonl = "".join(json.dumps(rec, allow_nan=False) + "\n" for rec in jsonl_records(examples))
    return frame.iloc[:0].to_csv(index=False), frame.to_csv(index=False, header=False), jsonl


class ExportPieces:
    """A sweep's CSV + JSONL export built piece by piece: each run's examples are formatted when the run arrives
    (while later runs still compute), and `write` puts the pieces in key order, so the files are the ones
    `export_run_files` writes for all the examples at once, whatever order the runs finished in."""

    def __init__(self) -> None:
        self._csv: dict[Any, str] = {}
        self._jsonl: dict[Any, str] = {}
        self._header = ""
        self.rows = 0

    def add(self, key: Any, examples: pd.DataFrame) -> None:
        if not examples.empty:
            self.add_text(key, export_text(examples), len(examples))

    def add_text(self, key: Any, text: tuple[str, str, str] | None, rows: int) -> None:
        """A run's examples already formatted (`export_text`, e.g. on the worker that ran it)."""
        if text is None or not rows:
            return
        header, csv_rows, jsonl_lines = text
        self._header = self._header or header
        self._csv[key] = csv_rows
        self._jsonl[key] = jsonl_lines
        self.rows += rows

    def write(self, out_dir: Path, dataset_id: str) -> dict[str, str]:
        """Both files or neither (`write_pair`); nothing is written without a row."""
        if not self.rows:
            return {}
        keys = sorted(self._csv)

        def text(fmt: str) -> Callable[[Path], None]:
            parts = [self._header, *(self._csv[k] for k in keys)] if fmt == "csv" else [self._jsonl[k] for k in keys]

            def w(p: Path) -> None:
                with open(p, "w", encoding="utf-8", newline="") as fh:
                    fh.writelines(parts)
            return w

        return write_pair({fmt: (path, text(fmt)) for fmt, path in _run_file_paths(out_dir, dataset_id).items()})


@dataclass
class RunRows:
    """A finished run as the store and the exports take it: its `runs` row, its four tables as Arrow tables and its
    examples' export text. Built where the run ran (`run_rows`), so on a cluster the workers do the shaping and
    formatting in parallel and the one writer only inserts (saving is what bounds a sweep's throughput)."""

    run_id: str
    run: dict[str, Any]  # the `runs` row, less what the driver adds (batch_id, created_at, code_version)
    tables: dict[str, pa.Table]
    summary: dict[str, Any]  # BacktestResult.summary()
    export: tuple[str, str, str] | None = None  # CSV header, CSV rows, JSONL lines (None: not formatted / no rows)
    n_examples: int = 0


def run_rows(result: Any, export: bool = False) -> RunRows:
    """`result` (a BacktestResult) in the form `save_rows` stores; `export` also formats its examples' CSV and JSONL.

    Timestamps become naive UTC (the store's convention) and `extra` the seed's JSON dict of each example."""
    cfg = result.config
    ex = result.examples
    summary = result.summary()
    counts = summary["counts"]
    examples = ex.copy()
    examples["extra"] = [json.dumps(extra_of(r), allow_nan=False) for r in ex.to_dict("records")]
    run = {
        "run_id": result.run_id, "status": RunStatus.OK.value, "error": None, "label": cfg.label,
        "underlying": cfg.underlying, "timeframe": cfg.timeframe, "start_date": cfg.start, "end_date": cfg.end,
        "source": cfg.source, "iv_source": cfg.iv_source, "exit_style": cfg.exit_style, "policy": cfg.policy,
        "config_json": cfg.model_dump_json(), "config_hash": cfg.config_hash(),
        "data_start": result.data_span[0], "data_end": result.data_span[1], "data_hash": result.data_hash,
        "metrics_json": dumps(result.metrics),
        "n_decisions": counts["decisions"], "n_sell_call": counts["sell_call"],
        "n_do_nothing": counts["do_nothing"], "n_trades": counts["trades"],
        "n_candidates": counts["candidates"], "calibration_id": getattr(result, "calibration_id", None),
        "export_csv": result.exports.get("csv"), "export_jsonl": result.exports.get("jsonl"),
    }
    equity = result.equity.reset_index()
    equity.insert(0, "run_id", result.run_id)
    tables = {name: pa.Table.from_pandas(naive_frame(df), preserve_index=False)
              for name, df in (("trades", result.trades), ("examples", examples), ("candidates", result.candidates),
                               ("equity", equity)) if len(df)}
    return RunRows(result.run_id, run, tables, summary, export_text(ex) if export and len(ex) else None, len(ex))


def save_rows(store: Store, rows: RunRows, *, batch_id: str | None = None, code_version: str = "") -> None:
    """Save a run's row and tables in one transaction (the driver's whole share of saving a run)."""
    run = {**rows.run, "batch_id": batch_id, "created_at": pd.Timestamp.now(tz="UTC"), "code_version": code_version}
    store.save_run(run, rows.tables)


def persist_run(store: Store, result: Any, *, batch_id: str | None = None, code_version: str = "") -> None:
    """Save a run's config, metrics, trades, examples, candidates and equity in one transaction."""
    save_rows(store, run_rows(result), batch_id=batch_id, code_version=code_version)


def check_filter(selection: DatasetFilter) -> None:
    """Refuse filter values that can never match (a typo would otherwise export 0 rows and look fine).

    >>> check_filter(DatasetFilter(actions=("SELL_CAL",)))
    Traceback (most recent call last):
    covcall.errors.CovcallError: unknown action 'SELL_CAL' (did you mean 'SELL_CALL'?); choose from SELL_CALL, DO_NOTHING
    """
    for label, given, allowed in (("action", selection.actions, values(Action)),
                                  ("exit style", selection.exit_styles, values(ExitStyle))):
        for v in given or ():
            if v not in allowed:
                raise CovcallError(f"unknown {label} {v!r}{did_you_mean(str(v), allowed)}; choose from "
                                   f"{', '.join(allowed)}")
    for name in ("delta_min", "delta_max", "dte_min", "dte_max"):
        v = getattr(selection, name)
        if v is not None and not math.isfinite(float(v)):
            raise CovcallError(f"{name} must be a finite number; got {v!r}")


# What each exported column means (the Dataset page's column help; docs in README "Training examples").
COLUMN_HELP: dict[str, str] = {
    "decision_time": "when the decision was taken (UTC, a bar's close); it sees nothing later",
    "underlying": "the coin held and written on",
    "spot": "the coin's price at the decision (USD)",
    "action": "SELL_CALL or DO_NOTHING",
    "reward": "the position's PnL in USD from the decision to label_end, coin move included (0 for DO_NOTHING)",
    "instrument": "the Deribit-style option name (COIN-DDMMMYY-STRIKE-C)",
    "delta": "the call's delta at the decision",
    "strike": "strike price (USD)",
    "dte": "days to expiry, whole days (seed schema)",
    "dte_days": "days to expiry (fractional)",
    "score": "(bid / spot) x (365 / dte_days) x (1 - delta): annualised yield discounted by assignment odds",
    "exit_style": "hold_to_expiry or tp_and_roll",
    "pnl_vs_hodl": "USD the option legs added to simply holding the coin (premium - buy-back/settlement - fees)",
    "pnl_vs_hodl_pct": "pnl_vs_hodl / spot",
    "max_drawdown_pct": "worst drawdown of the position while the call was open",
    "best_score": "DO_NOTHING: the best candidate's score (below the threshold)",
    "candidates": "DO_NOTHING: how many candidates were considered",
    "reason": "DO_NOTHING: why nothing was sold",
    "label_end": "when the outcome was known (exit or expiry): rows are purged by it when training",
    "iv_ann": "implied volatility used (annualised)",
    "atm_iv_ann": "ATM implied volatility at the decision (annualised)",
    "rv_ann": "trailing 30-day realised volatility (annualised)",
    "iv_rv": "atm_iv_ann / rv_ann",
    "ret_1d": "the coin's return over the last day", "ret_7d": "over the last 7 days", "ret_30d": "over 30 days",
    "premium_usd": "premium received at the bid (USD)", "premium_coin": "premium in coin (Deribit's unit)",
    "premium_pct": "premium / spot", "mark_usd": "mark price (USD)", "spread_pct": "(ask - bid) / mark",
    "moneyness": "strike / forward", "chosen": "the run's policy sold this candidate",
    "exit_reason": "expired_otm, settled_itm, take_profit or window_end",
    "run_id": "the backtest that produced the row", "example_no": "row number within the run",
    "timeframe": "bar length of the run",
}

PARTITION_COLUMNS = {"examples": ("underlying", "timeframe", "action", "exit_style", "run_id"),
                     "candidates": ("underlying", "timeframe", "exit_style", "run_id")}


def export_selection(store: Store, table: str, selection: DatasetFilter, fmt: str, out: str | Path,
                     partition_by: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Write a filtered selection of examples or candidates straight from DuckDB to one file, atomically.

    The Dataset page's downloads and `covcall export` both come through here. Examples keep the seed
    schema: `extra` nested in JSONL, flattened in CSV and Parquet. With `partition_by` (Parquet only) `out`
    is a new folder holding a Hive-partitioned dataset (`underlying=BTC/timeframe=1h/data_0.parquet`) that
    DuckDB, pandas/pyarrow, Spark or Polars read as one table; it appears whole or not at all.
    """
    if partition_by:
        return _export_partitioned(store, table, selection, fmt, out, tuple(partition_by))
    from covcall.llm import LLM_FORMATS, TABLE_FOR

    if fmt in LLM_FORMATS:
        table = TABLE_FOR[fmt]  # chat records come from examples, preference pairs from candidates
    known = (*FORMATS, *LLM_FORMATS)
    if fmt not in known:
        raise CovcallError(f"format must be one of {', '.join(known)}; got {fmt!r}{did_you_mean(fmt, known)}")
    if table not in DATASET_TABLES:
        raise CovcallError(f"table must be one of {', '.join(DATASET_TABLES)}; got {table!r}"
                           f"{did_you_mean(table, DATASET_TABLES)}")
    check_filter(selection)
    runs = store.list_runs()
    known = set(runs["run_id"]) if len(runs) else set()
    stored = sorted(set(runs["underlying"].dropna())) if len(runs) else []
    for u in selection.underlyings or ():
        if u not in stored:
            raise CovcallError(f"no runs on underlying {u!r} in the database{did_you_mean(u, stored)}; stored: "
                               f"{', '.join(stored) or 'none yet'}")
    for rid in selection.run_ids or ():
        if rid not in known:
            raise CovcallError(f"no run {rid!r} in the database{did_you_mean(rid, known)}; list runs with "
                               "`covcall runs`")
    if selection.batch_id is not None and (not len(runs) or selection.batch_id not in set(runs["batch_id"])):
        batches = set(runs["batch_id"].dropna()) if len(runs) else set()
        raise CovcallError(f"no batch {selection.batch_id!r} in the database{did_you_mean(selection.batch_id, batches)}")
    out = check_destination(out)
    recover_exports(out.parent)
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        if fmt in LLM_FORMATS:
            from covcall.llm import write_llm

            with open(tmp, "w", encoding="utf-8") as fh:
                rows = write_llm(store, selection, fmt, fh)
            return
        rows = store.copy_rows(table, selection, tmp, fmt)

    _atomic_write(out, write)
    return {"path": str(out), "rows": rows, "format": fmt, "table": table}


def delete_runs(store: Store, run_ids: list[str], delete_exports: bool = False) -> dict[str, Any]:
    """Delete runs with their examples, candidates, trades and equity (one transaction), and with
    `delete_exports` their CSV/JSONL files; returns what was removed. Walks that used a run keep their ledger."""
    footprint = store.run_footprint(run_ids)
    counts = store.delete_runs(run_ids)
    removed: list[str] = []
    if delete_exports:
        for path in [*footprint["export_csv"].dropna(), *footprint["export_jsonl"].dropna()]:
            p = Path(path)
            if p.is_file():
                p.unlink()
                removed.append(str(p))
    return {"runs": counts.pop("runs"), "rows": counts, "export_files_removed": removed,
            "walks_keeping_their_ledger": sorted({w.strip() for ws in footprint["walks"].dropna()
                                                  for w in str(ws).split(",")})}
