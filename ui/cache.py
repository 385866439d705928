"""Cached, bounded, read-only queries; one list of caches, cleared after every write."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from covcall.errors import CovcallError
from covcall.ranges import presets, synthetic_preset
from covcall.store import DatasetFilter, Store
from ui.shell import get_store

CACHE_TTL_S = 300


# -- cached reads (read-only, bounded) ----------------------------------------------------------------
def _store() -> Store:
    return get_store()


def db_key() -> str:
    """Cache key of the database in use (cached reads are per file)."""
    return str(get_store().path)


def invalidate() -> None:
    """Forget every cached read after a write (a run, a batch, an import, a saved range set, a walk)."""
    for fn in _CACHED:
        fn.clear()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def counts(db: str) -> dict[str, int]:
    return _store().counts()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def series(db: str) -> pd.DataFrame:
    return _store().list_series()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def snapshots(db: str) -> pd.DataFrame:
    """Stored option-chain snapshots, oldest first."""
    return _store().list_snapshots()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def event_calendar(db: str) -> pd.DataFrame:
    """Scheduled events priced on real data: the packaged calendar and the stored ones (column `source`)."""
    from covcall.events import packaged_calendar

    stored = _store().read_events()
    return pd.concat([packaged_calendar().assign(source="packaged"), stored], ignore_index=True)


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def runs(db: str, limit: int | None = None, batch_id: str | None = None) -> pd.DataFrame:
    return _store().list_runs(limit=limit, batch_id=batch_id)


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def range_set_names(db: str) -> list[str]:
    return _store().list_range_sets()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def jobs(db: str, kind: str | None = None) -> pd.DataFrame:
    """Batches and walks with their state (a killed one shows as interrupted)."""
    from covcall.jobs import list_jobs

    return list_jobs(_store(), kind)


def unfinished_jobs(db: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Batches or walks that are running, were interrupted or failed (newest first)."""
    df = jobs(db, kind)
    if df.empty:
        return []
    rows = df[df["status"] != "done"]
    return rows.astype(object).where(rows.notna(), None).to_dict("records")


def job_status(db: str, kind: str | None = None) -> dict[str, str]:
    """{job id: status} (a killed batch reads 'interrupted')."""
    df = jobs(db, kind)
    return dict(zip(df["job_id"], df["status"], strict=True)) if len(df) else {}


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def walks(db: str) -> pd.DataFrame:
    return _store().list_walks()


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def models(db: str) -> pd.DataFrame:
    from covcall.models import list_models

    return list_models(_store())


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def run_view(db: str, run_id: str) -> dict[str, Any] | None:
    """Everything the result view needs for one stored run: row, metrics, config, equity, trades."""
    store = _store()
    row = store.get_run(run_id)
    if row is None:
        return None
    equity = store.read_run_table("equity", [run_id])
    trades = store.read_run_table("trades", [run_id])
    return {"row": row, "metrics": row.get("metrics") or {}, "config": row.get("config") or {}, "equity": equity,
            "trades": trades}


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def equities(db: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    """Equity curves of several runs (columns run_id, ts, spot, covered_call, hodl)."""
    return _store().read_run_table("equity", list(run_ids))


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def decision_times(db: str, run_id: str) -> list[str]:
    """Decision times (UTC, 'YYYY-MM-DD HH:MM') at which a run recorded candidates."""
    cands = _store().read_candidates([run_id])
    if cands.empty:
        return []
    return [f"{t:%Y-%m-%d %H:%M}" for t in cands["decision_time"].drop_duplicates().sort_values()]


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def explain_decision(db: str, model_id: str, run_id: str, at: str, threshold: float) -> dict[str, Any]:
    from covcall.explain import explain_decision as explain

    return explain(_store(), model_id, run_id, at, threshold)


def filter_key(f: DatasetFilter) -> tuple[tuple[str, Any], ...]:
    return tuple((k, getattr(f, k)) for k in DatasetFilter.__dataclass_fields__)


def _filter(key: tuple[tuple[str, Any], ...]) -> DatasetFilter:
    return DatasetFilter(**dict(key))


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def count_rows(db: str, table: str, fkey: tuple) -> int:
    return _store().count_rows(table, _filter(fkey))


@st.cache_data(max_entries=64, ttl=CACHE_TTL_S, show_spinner=False)
def page_rows(db: str, table: str, fkey: tuple, limit: int, offset: int) -> pd.DataFrame:
    return _store().page_rows(table, _filter(fkey), limit=limit, offset=offset)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def dataset_summary(db: str, table: str, fkey: tuple) -> dict[str, Any]:
    return _store().dataset_summary(table, _filter(fkey))


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def reward_histogram(db: str, table: str, fkey: tuple, bins: int) -> pd.DataFrame:
    return _store().reward_histogram(table, _filter(fkey), bins)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def reward_by(db: str, table: str, fkey: tuple, column: str, bins: int) -> pd.DataFrame:
    return _store().reward_by(table, _filter(fkey), column, bins)


@st.cache_data(max_entries=32, ttl=CACHE_TTL_S, show_spinner=False)
def actions_over_time(db: str, fkey: tuple, freq: str) -> pd.DataFrame:
    return _store().actions_over_time(_filter(fkey), freq)


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def candles(db: str, underlying: str, timeframe: str, start: date, end: date, source: str,
            seed: int) -> pd.DataFrame:
    from covcall.market import load_candles

    return load_candles(underlying, timeframe, start, end, source=source, store=_store(), seed=seed)


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def regime_windows(underlying: str, seed: int) -> dict[str, tuple[date, date]]:
    """Regime windows to pick from: built-in presets and the synthetic market's regime segments."""
    sets = list(presets().values())
    if underlying in ("BTC", "ETH"):
        try:
            sets.append(synthetic_preset(underlying, seed))
        except CovcallError:
            pass
    out: dict[str, tuple[date, date]] = {}
    for rs in sets:
        for i, r in enumerate(rs.train, start=1):
            out[f"{rs.name} · train {i}: {r.note or r}"] = (r.start, r.end)
        out[f"{rs.name} · test: {rs.test.note or rs.test}"] = (rs.test.start, rs.test.end)
    return out


@st.cache_data(max_entries=8, ttl=CACHE_TTL_S, show_spinner=False)
def calibrations(db: str) -> pd.DataFrame:
    """Stored chain calibrations, newest first (params, data and fit errors decoded)."""
    return _store().list_calibrations()


@st.cache_data(max_entries=4, ttl=CACHE_TTL_S, show_spinner="pricing every stored snapshot as a backtest would")
def realism_result(db: str, holdout: bool) -> dict[str, Any]:
    """`covcall realism --all [--holdout]`: the model against every stored snapshot (seconds; refits per day with
    holdout)."""
    from covcall.realism import realism

    return realism(_store(), holdout=holdout)


@st.cache_data(max_entries=4, ttl=CACHE_TTL_S, show_spinner="comparing the synthetic market with the stored data")
def market_comparison(db: str, seed: int) -> pd.DataFrame:
    """`covcall data compare-synthetic --store`: the stored daily data beside the synthetic market, 2019-2025."""
    from covcall.market.stats import compare_synthetic

    return compare_synthetic(None, (seed,), store=_store())


_CACHED = (counts, series, snapshots, event_calendar, calibrations, realism_result, market_comparison, runs, range_set_names, walks, models, run_view, count_rows, page_rows, dataset_summary,
           reward_histogram, reward_by, actions_over_time, decision_times, explain_decision, equities, candles,
           jobs)
