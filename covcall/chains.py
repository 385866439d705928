"""Real option chains: Deribit book-summary and ticker files (plain or gzipped), live snapshots, the stored history.

A snapshot is one collection of the whole chain. Deribit stamps every ticker row with its own millisecond time, and
a collection of 800 instruments takes a minute or two, so rows whose times follow each other within
`SNAPSHOT_GAP` belong to one snapshot, stamped with its first row's time.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.errors import DataError, did_you_mean
from covcall.pricing import call_price, implied_vol

if TYPE_CHECKING:
    from covcall.store import Store

SNAPSHOT_GAP = pd.Timedelta(minutes=5)
EXPIRY_HOUR_UTC = 8
QUOTE_COLUMNS = ("snapshot_id", "underlying", "ts", "instrument", "expiry", "strike", "option_type", "forward",
                 "index_price", "mark_coin", "bid_coin", "ask_coin", "mark_iv", "bid_iv", "ask_iv")
# Far resting orders Deribit shows as the best ask: 1.0 coin with an implied vol of 999 %.
PLACEHOLDER_ASK_COIN = 1.0
PLACEHOLDER_ASK_IV = 999.0

_TICKER = ("timestamp", "instrument_name", "underlying_price", "index_price", "mark_price", "mark_iv",
           "best_bid_price", "best_ask_price", "bid_iv", "ask_iv")
_SUMMARY = ("instrument_name", "creation_timestamp", "underlying_price", "mark_price", "bid_price", "ask_price")


@dataclass
class ChainFile:
    """What a chain file held: normalised quotes of one underlying, and what was dropped on the way."""

    name: str
    kind: str  # "ticker" or "book_summary"
    underlying: str
    quotes: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def snapshots(self) -> list[str]:
        return sorted(self.quotes["snapshot_id"].unique())


def _read_table(path: Any) -> tuple[str, pd.DataFrame]:
    if hasattr(path, "read"):
        name = str(getattr(path, "name", "uploaded file"))
        raw = path.read()
        data = raw if isinstance(raw, bytes) else str(raw).encode()
    else:
        p = Path(path)
        name = str(p)
        if not p.is_file():
            raise DataError(f"chain file {name} does not exist" + (" (it is a folder)" if p.is_dir() else ""))
        data = p.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DataError(f"{name} looks gzipped but cannot be unpacked: {err}") from None
    if b"\x00" in data[:4096]:
        raise DataError(f"{name} is not a text CSV (binary data); give a Deribit chain CSV, plain or .gz")
    try:
        df = pd.read_csv(io.BytesIO(data), low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{name} cannot be read as CSV: {str(err).splitlines()[0]}") from None
    return name, df


def _instrument_parts(names: pd.Series, file: str) -> pd.DataFrame:
    parts = names.astype(str).str.split("-", expand=True)
    if parts.shape[1] != 4:
        raise DataError(f"{file}: instrument names like {names.iloc[0]!r} are not Deribit options "
                        "(UNDERLYING-DDMMMYY-STRIKE-C|P)")
    expiry = pd.to_datetime(parts[1], format="%d%b%y", errors="coerce", utc=True) + pd.Timedelta(
        hours=EXPIRY_HOUR_UTC)
    strike = pd.to_numeric(parts[2].str.replace("d", ".", regex=False), errors="coerce")
    return pd.DataFrame({"underlying": parts[0].str.upper(), "expiry": expiry, "strike": strike,
                         "option_type": parts[3].str.upper()}, index=names.index)


def _snapshot_times(ms: pd.Series) -> pd.Series:
    """Each row's snapshot time: rows within SNAPSHOT_GAP of the previous one belong to the same collection."""
    t = pd.to_datetime(ms, unit="ms", utc=True)
    order = np.sort(t.unique())
    starts = [order[0]]
    for prev, cur in zip(order[:-1], order[1:], strict=True):
        if cur - prev > SNAPSHOT_GAP:
            starts.append(cur)
    starts_idx = pd.DatetimeIndex(starts)
    pos = starts_idx.searchsorted(t, side="right") - 1
    return pd.Series(starts_idx[pos], index=ms.index)


def _from_ticker(name: str, df: pd.DataFrame, dropped: dict[str, int]) -> pd.DataFrame:
    ask_iv = pd.to_numeric(df["ask_iv"], errors="coerce")
    ask = pd.to_numeric(df["best_ask_price"], errors="coerce")
    placeholder = (ask >= PLACEHOLDER_ASK_COIN) & (ask_iv >= PLACEHOLDER_ASK_IV)
    dropped["placeholder_asks"] = int(placeholder.sum())
    bid_iv = pd.to_numeric(df["bid_iv"], errors="coerce")
    bid = pd.to_numeric(df["best_bid_price"], errors="coerce")
    no_bid = (bid_iv <= 0) | ~(bid > 0)
    dropped["no_bid"] = int(no_bid.sum())
    no_ask = ~(ask > 0) | placeholder
    return pd.DataFrame({
        "ts": _snapshot_times(pd.to_numeric(df["timestamp"], errors="coerce")),
        "instrument": df["instrument_name"].astype(str),
        "forward": pd.to_numeric(df["underlying_price"], errors="coerce"),
        "index_price": pd.to_numeric(df["index_price"], errors="coerce"),
        "mark_coin": pd.to_numeric(df["mark_price"], errors="coerce"),
        "bid_coin": bid.where(~no_bid), "ask_coin": ask.where(~no_ask),
        "mark_iv": pd.to_numeric(df["mark_iv"], errors="coerce") / 100.0,
        "bid_iv": (bid_iv / 100.0).where(~no_bid), "ask_iv": (ask_iv / 100.0).where(~no_ask),
    })


def _from_summary(name: str, df: pd.DataFrame, dropped: dict[str, int]) -> pd.DataFrame:
    bid = pd.to_numeric(df["bid_price"], errors="coerce")
    ask = pd.to_numeric(df["ask_price"], errors="coerce")
    no_bid = ~(bid > 0)
    placeholder = ask >= PLACEHOLDER_ASK_COIN
    dropped["no_bid"] = int(no_bid.sum())
    dropped["placeholder_asks"] = int(placeholder.sum())
    index = (pd.to_numeric(df["estimated_delivery_price"], errors="coerce")
             if "estimated_delivery_price" in df.columns else pd.Series(np.nan, index=df.index))
    mark_iv = (pd.to_numeric(df["mark_iv"], errors="coerce") / 100.0 if "mark_iv" in df.columns
               else pd.Series(np.nan, index=df.index))
    return pd.DataFrame({
        "ts": _snapshot_times(pd.to_numeric(df["creation_timestamp"], errors="coerce")),
        "instrument": df["instrument_name"].astype(str),
        "forward": pd.to_numeric(df["underlying_price"], errors="coerce"), "index_price": index,
        "mark_coin": pd.to_numeric(df["mark_price"], errors="coerce"),
        "bid_coin": bid.where(~no_bid), "ask_coin": ask.where((ask > 0) & ~placeholder),
        "mark_iv": mark_iv, "bid_iv": np.nan, "ask_iv": np.nan,
    })


def _implied(coin: pd.Series, q: pd.DataFrame) -> np.ndarray:
    """Implied vol of coin prices (Deribit: coin = Black(forward) / forward; puts through parity)."""
    f = q["forward"].to_numpy(float)
    k = q["strike"].to_numpy(float)
    t = ((q["expiry"] - q["ts"]).dt.total_seconds() / (365.0 * 86400.0)).to_numpy(float)
    usd = coin.to_numpy(float) * f
    call_usd = np.where(q["option_type"].to_numpy() == "C", usd, usd + f - k)
    return implied_vol(call_usd, f, k, t)


def read_chain_file(path: Any, underlying: str | None = None) -> ChainFile:
    """Parse a Deribit chain file (ticker rows or book-summary rows, plain or gzipped) into normalised quotes.

    A file of another kind, of several underlyings, or for another underlying than `underlying` is refused whole.
    """
    name, df = _read_table(path)
    cols = set(df.columns)
    if set(_TICKER) <= cols:
        kind = "ticker"
    elif set(_SUMMARY) <= cols:
        kind = "book_summary"
    else:
        need = sorted(set(_SUMMARY) - cols) if "creation_timestamp" in cols else sorted(set(_TICKER) - cols)
        raise DataError(f"{name} is not a Deribit option chain: it lacks {', '.join(need[:6])}; give a ticker or "
                        "book-summary export (get_book_summary_by_currency) of options")
    if df.empty:
        raise DataError(f"{name} has a header but no quotes")
    parts = _instrument_parts(df["instrument_name"], name)
    bad = parts["expiry"].isna() | parts["strike"].isna() | ~parts["option_type"].isin(["C", "P"])
    if bad.any():
        raise DataError(f"{name}: {int(bad.sum())} rows are not Deribit option instruments (first: "
                        f"{df['instrument_name'][bad].iloc[0]!r}); futures or perpetuals do not belong in a chain")
    found = sorted(parts["underlying"].unique())
    if len(found) > 1:
        raise DataError(f"{name} mixes underlyings ({', '.join(found)}); import one underlying per file")
    u = found[0]
    if underlying is not None and underlying.strip().upper() != u:
        raise DataError(f"{name} is a chain of {u} options, not {underlying.strip().upper()}; use --underlying {u}"
                        f"{did_you_mean(underlying, [u])}")
    dropped: dict[str, int] = {}
    q = _from_ticker(name, df, dropped) if kind == "ticker" else _from_summary(name, df, dropped)
    q = pd.concat([q, parts], axis=1)
    if not (q["option_type"] == "C").any():
        raise DataError(f"{name} holds no calls; a covered-call chain needs them")
    unusable = q["ts"].isna() | ~(q["forward"] > 0) | ~(q["mark_coin"] >= 0) | (q["expiry"] <= q["ts"])
    dropped["unusable_rows"] = int(unusable.sum())
    q = q.loc[~unusable].copy()
    if q.empty:
        raise DataError(f"{name}: no row has a time, a forward price and a mark; nothing to import")
    q["index_price"] = q["index_price"].fillna(q["forward"])
    missing_iv = q["mark_iv"].isna()
    if missing_iv.any():  # book summaries may lack mark_iv: solve it from the mark price
        q.loc[missing_iv, "mark_iv"] = _implied(q.loc[missing_iv, "mark_coin"], q.loc[missing_iv])
    q["snapshot_id"] = u + "-" + q["ts"].dt.strftime("%Y%m%dT%H%M%SZ")
    q = q.drop_duplicates(["snapshot_id", "instrument"], keep="last")
    return ChainFile(name, kind, u, q[list(QUOTE_COLUMNS)].reset_index(drop=True), dropped)


def import_chain(store: Store, path: Any, underlying: str | None = None) -> dict[str, Any]:
    """Read a chain file and store its snapshots; snapshots already stored are left as they are (idempotent)."""
    from covcall.basis import snapshot_basis

    cf = read_chain_file(path, underlying)
    added = store.import_chain_quotes(cf.quotes, source=Path(cf.name).name)
    # each snapshot's own futures over the index: the basis history backtests price with (covcall.basis);
    # written again on every import, so importing a file again fills it for snapshots stored before
    basis = snapshot_basis(cf.quotes)
    if len(basis):
        store.write_basis("chain", cf.underlying, basis)
    return {"file": cf.name, "kind": cf.kind, "underlying": cf.underlying, "snapshots": len(cf.snapshots),
            "new_snapshots": added, "quotes": int(len(cf.quotes)), "dropped": cf.dropped,
            "first": cf.quotes["ts"].min(), "last": cf.quotes["ts"].max()}


def fetch_chain(store: Store, underlying: str, *, client: Any = None) -> dict[str, Any]:
    """Store one live snapshot of the Deribit chain (public endpoint get_book_summary_by_currency, options)."""
    from covcall.market.exchange import deribit_book_summary

    u = underlying.strip().upper()
    rows = deribit_book_summary(u, "option", client)
    if not rows:
        raise DataError(f"Deribit returned no {u} options; it lists options on BTC, ETH and a few others")
    buf = io.BytesIO(pd.DataFrame(rows).to_csv(index=False).encode())
    buf.name = f"deribit {u} book summary"
    out = import_chain(store, buf, u)
    return {**out, "source": "ccxt:deribit"}


def chain_call_quotes(quotes: pd.DataFrame) -> pd.DataFrame:
    """Calls of stored quotes with tenor columns: t_years, dte_days, moneyness (strike / forward)."""
    q = quotes[quotes["option_type"] == "C"].copy()
    q["t_years"] = (q["expiry"] - q["ts"]).dt.total_seconds() / (365.0 * 86400.0)
    q["dte_days"] = q["t_years"] * 365.0
    q["moneyness"] = q["strike"] / q["forward"]
    return q


def check_marks(quotes: pd.DataFrame) -> float:
    """Median |coin mark - Black(forward)/forward at mark_iv| of calls: near 0 when the file is consistent."""
    q = chain_call_quotes(quotes)
    model = np.asarray(call_price(q["forward"], q["strike"], q["t_years"], q["mark_iv"].fillna(0))) / q["forward"]
    return float(np.nanmedian(np.abs(model - q["mark_coin"])))
