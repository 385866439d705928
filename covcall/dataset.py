"""Training examples in the seed's schema: shaping, persisting runs, and atomic CSV / JSONL / Parquet exports."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from covcall.enums import Action
from covcall.errors import CovcallError, did_you_mean
from covcall.jsonutil import dumps, plain
from covcall.store import DATASET_TABLES, DatasetFilter, Store

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


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temp file in the same folder and rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; exports are meant to be shared like any data file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_frame(examples: pd.DataFrame) -> pd.DataFrame:
    df = examples[[c for c in EXAMPLE_COLUMNS if c in examples.columns]].copy()
    for c in ("decision_time", "label_end"):
        if c in df.columns:
            df[c] = pd.to_datetime(df[c], utc=True).map(lambda t: t.isoformat() if pd.notna(t) else "")
    return df


def write_examples(examples: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write in-memory examples to one CSV (extra flattened) or JSONL (extra nested) file, atomically.

    Stored selections go through `export_selection`, which also writes Parquet.
    """
    if fmt == "csv":
        _atomic_write(path, lambda p: _csv_frame(examples).to_csv(p, index=False))
    elif fmt == "jsonl":
        def w(p: Path) -> None:
            with open(p, "w", encoding="utf-8") as fh:
                for rec in jsonl_records(examples):
                    fh.write(json.dumps(rec, allow_nan=False) + "\n")
        _atomic_write(path, w)
    else:
        raise CovcallError(f"in-memory examples are written as csv or jsonl; got {fmt!r}")
    return path


def export_run_files(examples: pd.DataFrame, out_dir: Path, dataset_id: str) -> dict[str, str]:
    """`training_dataset_<id>_<UTC timestamp>.csv` and `.jsonl` in out_dir; returns their paths."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = out_dir / f"training_dataset_{dataset_id}_{stamp}"
    return {fmt: str(write_examples(examples, base.with_suffix(f".{fmt}"), fmt)) for fmt in ("csv", "jsonl")}


def persist_run(store: Store, result: Any, *, batch_id: str | None = None, code_version: str = "",
                status: str = "ok", error: str | None = None) -> None:
    """Save a run's config, metrics, trades, examples, candidates and equity in one transaction."""
    cfg = result.config
    ex = result.examples
    summary = result.summary()["counts"]
    examples = ex.copy()
    examples["extra"] = [json.dumps(extra_of(r), allow_nan=False) for r in ex.to_dict("records")]
    run = {
        "run_id": result.run_id, "batch_id": batch_id, "created_at": pd.Timestamp.now(tz="UTC"),
        "status": status, "error": error, "label": cfg.label, "underlying": cfg.underlying,
        "timeframe": cfg.timeframe, "start_date": cfg.start, "end_date": cfg.end, "source": cfg.source,
        "iv_source": cfg.iv_source, "exit_style": cfg.exit_style, "policy": cfg.policy,
        "config_json": cfg.model_dump_json(), "config_hash": cfg.config_hash(), "code_version": code_version,
        "data_start": result.data_span[0], "data_end": result.data_span[1], "data_hash": result.data_hash,
        "metrics_json": dumps(result.metrics),
        "n_decisions": summary["decisions"], "n_sell_call": summary["sell_call"],
        "n_do_nothing": summary["do_nothing"], "n_trades": summary["trades"],
        "n_candidates": summary["candidates"], "export_csv": result.exports.get("csv"),
        "export_jsonl": result.exports.get("jsonl"),
    }
    equity = result.equity.reset_index()
    equity.insert(0, "run_id", result.run_id)
    store.save_run(run, {"trades": result.trades, "examples": examples, "candidates": result.candidates,
                         "equity": equity})


def export_selection(store: Store, table: str, selection: DatasetFilter, fmt: str, out: str | Path) -> dict[str, Any]:
    """Write a filtered selection of examples or candidates straight from DuckDB to one file, atomically.

    The Dataset page's downloads and `covcall export` both come through here. Examples keep the seed
    schema: `extra` nested in JSONL, flattened in CSV and Parquet.
    """
    if fmt not in FORMATS:
        raise CovcallError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}{did_you_mean(fmt, FORMATS)}")
    if table not in DATASET_TABLES:
        raise CovcallError(f"table must be one of {', '.join(DATASET_TABLES)}; got {table!r}"
                           f"{did_you_mean(table, DATASET_TABLES)}")
    runs = store.list_runs()
    known = set(runs["run_id"]) if len(runs) else set()
    for rid in selection.run_ids or ():
        if rid not in known:
            raise CovcallError(f"no run {rid!r} in the database{did_you_mean(rid, known)}; list runs with "
                               "`covcall runs`")
    if selection.batch_id is not None and (not len(runs) or selection.batch_id not in set(runs["batch_id"])):
        batches = set(runs["batch_id"].dropna()) if len(runs) else set()
        raise CovcallError(f"no batch {selection.batch_id!r} in the database{did_you_mean(selection.batch_id, batches)}")
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        rows = store.copy_rows(table, selection, tmp, fmt)

    _atomic_write(Path(out), write)
    return {"path": str(out), "rows": rows, "format": fmt, "table": table}

