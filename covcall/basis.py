"""The forward basis by date: observations from chain snapshots, Deribit futures and files, and the one known at a bar.

Deribit prices an option off its expiry's future, F = S exp(b T). A calibration holds one basis `b` for every date
(`ChainParams.basis_ann`), but the real one moves: BTC +3.4 %/yr and ETH +2.2 %/yr in April 2023, ETH +10-18 %/yr
in January 2024. A basis history stored here (`covcall data import-basis`, `covcall data fetch --basis`, and every
imported chain snapshot's own futures) lets a backtest on real data price each decision with the basis known then:
the last observation at or before the bar's close, if at most `BASIS_MAX_AGE_DAYS` old, else the calibration's.

>>> obs = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01", "2024-01-20"], utc=True), "basis_ann": [0.10, 0.20]})
>>> closes = pd.DatetimeIndex(["2023-12-31", "2024-01-02", "2024-01-10", "2024-01-20"], tz="UTC").as_unit("ns").asi8
>>> basis_known_at(obs, closes, fallback=0.03).tolist()  # before any, within 7 days, stale, fresh again
[0.03, 0.1, 0.03, 0.2]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.errors import DataError

if TYPE_CHECKING:
    from covcall.store import Store

BASIS_MAX_AGE_DAYS = 7.0  # an observation older than this says little about today's forward: the calibration's
BASIS_LIMITS = (-1.0, 2.0)  # the range ChainParams.basis_ann accepts (per year)
MIN_DTE_DAYS = 7.0  # shorter futures/expiries carry a noisy annualised basis (a 0.1 % gap over 2 days is 18 %/yr)
SOURCES = ("chain", "futures", "file")
NS_PER_DAY = 86_400 * 10**9


def basis_known_at(observations: pd.DataFrame | None, close_ns: np.ndarray, fallback: float,
                   max_age_days: float = BASIS_MAX_AGE_DAYS) -> np.ndarray:
    """The basis known at each close: the last observation with ts <= close, if at most `max_age_days` old,
    else `fallback` (the calibration's). `observations`: ts (the time the value was known), basis_ann."""
    close_ns = np.asarray(close_ns, dtype=np.int64)
    out = np.full(len(close_ns), float(fallback))
    if observations is None or observations.empty:
        return out
    obs = observations.sort_values("ts", kind="stable")
    ts = pd.DatetimeIndex(pd.to_datetime(obs["ts"], utc=True)).as_unit("ns").asi8
    val = obs["basis_ann"].to_numpy(float)
    j = np.searchsorted(ts, close_ns, side="right") - 1
    ok = j >= 0
    ok[ok] &= (close_ns[ok] - ts[j[ok]]) <= max_age_days * NS_PER_DAY
    out[ok] = val[j[ok]]
    return out


def one_series(observations: pd.DataFrame | None) -> pd.DataFrame | None:
    """All stored sources of an underlying as one series: at equal times a file wins over futures over chains
    (a user's import is deliberate); None when empty."""
    if observations is None or observations.empty:
        return None
    rank = {"file": 0, "futures": 1, "chain": 2}
    df = observations.assign(_r=observations["source"].map(rank).fillna(3))
    df = df.sort_values(["ts", "_r"], kind="stable").drop_duplicates("ts", keep="first")
    return df[["ts", "basis_ann"]].reset_index(drop=True)


# -- observations from chain snapshots and futures ------------------------------------------------------------
def snapshot_basis(quotes: pd.DataFrame, min_dte_days: float = MIN_DTE_DAYS) -> pd.DataFrame:
    """One observation per chain snapshot: the median over its expiries of `min_dte_days` or more of
    ln(F / index) / T, F the expiry's future (`underlying_price`), as `covcall calibrate` fits its one number.
    Columns ts, underlying, snapshot_id, basis_ann (snapshots without such an expiry are left out)."""
    from covcall.calibration import expiry_table

    exp = expiry_table(quotes)
    cols = ["ts", "underlying", "snapshot_id", "basis_ann"]
    if exp.empty:
        return pd.DataFrame(columns=cols)
    long = exp[exp["dte_days"] >= min_dte_days]
    if long.empty:
        return pd.DataFrame(columns=cols)
    out = long.groupby("snapshot_id", as_index=False).agg(ts=("ts", "first"), basis_ann=("basis", "median"))
    under = quotes.groupby("snapshot_id")["underlying"].first()
    out["underlying"] = out["snapshot_id"].map(under)
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out[cols]


def futures_basis(rows: list[dict[str, Any]], underlying: str,
                  min_dte_days: float = MIN_DTE_DAYS) -> dict[str, Any]:
    """One observation from Deribit's dated futures (rows of `public/get_book_summary_by_currency` with
    kind=future): the median of ln(mark / index) / T over futures of `min_dte_days` or more, at the rows' time."""
    u = underlying.upper()
    pts, times = [], []
    for r in rows:
        name = str(r.get("instrument_name", ""))
        if not name.startswith(f"{u}-") or name.endswith("PERPETUAL"):
            continue
        try:
            mark, index = float(r["mark_price"]), float(r["estimated_delivery_price"])
            ts = pd.Timestamp(int(r["creation_timestamp"]), unit="ms", tz="UTC")
        except (KeyError, TypeError, ValueError):
            continue
        expiry = _future_expiry(name)
        if expiry is None or not (mark > 0 and index > 0):
            continue
        t_years = (expiry - ts).total_seconds() / (365 * 86_400)
        if t_years * 365 >= min_dte_days:
            pts.append(np.log(mark / index) / t_years)
            times.append(ts)
    if not pts:
        raise DataError(f"Deribit listed no {u} future of {min_dte_days:g} days or more with a mark and an index "
                        "price; nothing stored")
    return {"ts": max(times), "basis_ann": float(np.median(pts)), "futures": len(pts)}


def _future_expiry(name: str) -> pd.Timestamp | None:
    """BTC-29MAR24 -> 2024-03-29 08:00 UTC (Deribit's delivery time); None for anything else."""
    parts = name.split("-")
    if len(parts) != 2:
        return None
    t = pd.to_datetime(parts[1], format="%d%b%y", errors="coerce", utc=True)
    return None if pd.isna(t) else t + pd.Timedelta(hours=8)


# -- files -----------------------------------------------------------------------------------------------------
def read_basis_file(path: Any, underlying: str | None = None) -> pd.DataFrame:
    """Parse a basis history CSV: `ts` (UTC, ISO: when the value was known), `basis_ann` (per year, 0.10 = 10 %)
    and, unless `underlying` is given, an `underlying` column. A file with any bad row is refused whole."""
    from covcall.events import read_text_csv

    name, df = read_text_csv(path, "a basis history", ("ts", "basis_ann"),
                             "ts, basis_ann (per year, 0.10 = 10 %), underlying")
    if underlying is not None and "underlying" in df.columns:
        coins = sorted({c.strip().upper() for c in df["underlying"]} - {""})
        if coins and coins != [underlying.strip().upper()]:
            raise DataError(f"{name} holds {', '.join(coins)} rows, not {underlying.strip().upper()}; import it "
                            f"with --underlying {coins[0]} (or fix the file); nothing stored")
    if underlying is None:
        if "underlying" not in df.columns:
            raise DataError(f"{name} has no underlying column; pass --underlying BTC (or ETH)")
        coins = sorted({s.strip().upper() for s in df["underlying"]})
        if len(coins) != 1 or not coins[0]:
            raise DataError(f"{name} mixes underlyings ({', '.join(coins)}); import one coin per file")
        underlying = coins[0]
    ts = pd.to_datetime(df["ts"].str.strip(), utc=True, errors="coerce", format="ISO8601")
    values = pd.to_numeric(df["basis_ann"].str.strip(), errors="coerce")
    lo, hi = BASIS_LIMITS
    bad = ts.isna() | ~np.isfinite(values.to_numpy(float)) | (values < lo) | (values > hi)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(f"{name} row {i + 2}: ts {df['ts'].iloc[i]!r}, basis_ann {df['basis_ann'].iloc[i]!r}: "
                        f"need an ISO time and a finite basis per year in [{lo:g}, {hi:g}] (0.10 = 10 %/yr); "
                        "nothing stored")
    if ts.duplicated().any():
        dup = ts[ts.duplicated()].iloc[0]
        raise DataError(f"{name} has two rows at {dup.isoformat()}; keep one; nothing stored")
    return pd.DataFrame({"ts": ts, "basis_ann": values.astype(float), "underlying": underlying.upper()})


def import_basis(store: Store, path: Any, underlying: str | None = None) -> dict[str, Any]:
    """Store a basis history file (source `file`); importing the same file again changes nothing."""
    df = read_basis_file(path, underlying)
    u = str(df["underlying"].iloc[0])
    n = store.write_basis("file", u, df)
    return {"file": Path(str(getattr(path, "name", path))).name, "underlying": u, "rows": n,
            "first": df["ts"].min(), "last": df["ts"].max(),
            "median_basis_ann": float(df["basis_ann"].median())}


def fetch_basis(store: Store, underlying: str, *, client: Any = None) -> dict[str, Any]:
    """Store one live basis observation from Deribit's dated futures (public get_book_summary_by_currency,
    kind=future); run it on a schedule to build a history."""
    from covcall.market.exchange import deribit_book_summary

    u = underlying.strip().upper()
    rows = deribit_book_summary(u, "future", client)
    if not rows:
        raise DataError(f"Deribit returned no {u} futures; it lists futures on BTC and ETH")
    obs = futures_basis(rows, u)
    store.write_basis("futures", u, pd.DataFrame({"ts": [obs["ts"]], "basis_ann": [obs["basis_ann"]]}))
    return {"underlying": u, **obs, "source": "ccxt:deribit"}


def load_basis(underlying: str, store: Store | None) -> pd.DataFrame | None:
    """The stored basis history of an underlying as one series (ts, basis_ann), or None."""
    if store is None:
        return None
    return one_series(store.read_basis(underlying))
