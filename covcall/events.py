"""Scheduled market events (US CPI, FOMC, one-offs): the calendar, and the variance they add to options spanning them.

Option markets price a scheduled release as a jump of known time and unknown sign: an expiry after the event carries
its variance on top of the diffusive vol, an expiry before it does not (Deribit's BTC 20-hour ATM traded at 73 %
half an hour before the 2023-04-12 CPI release and at 51 % four hours after it). The calendar is known in advance,
so using it never looks ahead; the size of each kind of event (`ChainParams.event_move_cpi` / `event_move_fomc`) is
fitted from the candles' realised moves around past events (`fit_event_moves`), never from option quotes.

>>> cal = pd.DataFrame({"ts": [pd.Timestamp("2023-04-12 12:30", tz="UTC")], "kind": ["cpi"], "underlying": ["*"],
...                     "move": [0.02]})
>>> ev = EventVariance.build(cal, "BTC", ChainParams())
>>> t0, t1 = pd.Timestamp("2023-04-12 12:00", tz="UTC").value, pd.Timestamp("2023-04-13 08:00", tz="UTC").value
>>> float(ev.between(t0, t1)), float(ev.between(t1, t1 + 86400 * 10**9))  # 2 % move = 0.0004 variance
(0.0004, 0.0)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from covcall.chain import ChainParams
from covcall.errors import DataError, did_you_mean

if TYPE_CHECKING:
    from covcall.store import Store

KINDS = ("cpi", "fomc", "other")
EVENT_COLUMNS = ["ts", "kind", "underlying", "move", "label"]
ALL_UNDERLYINGS = "*"
MAX_MOVE = 0.5  # a 50 % one-event standard deviation is a typo, not a market
WINDOW_HOURS = 8.0  # realised reaction window after a release (the release bar and the next 4h bar)
CONTROL_DAYS = 60  # control windows: the same clock hours on event-free days within this many days
NS_PER_DAY = 86_400 * 10**9
_CALENDAR_FILE = "event_calendar.csv"


# -- the calendar -------------------------------------------------------------------------------------------
def packaged_calendar() -> pd.DataFrame:
    """The calendar shipped with covcall: US CPI releases and FOMC statements 2021-2025 (scripts/event_calendar.py)."""
    with resources.files("covcall").joinpath(_CALENDAR_FILE).open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["underlying"] = ALL_UNDERLYINGS
    df["move"] = np.nan
    return df[EVENT_COLUMNS]


def read_text_csv(path: Any, what: str, required: tuple[str, ...], columns: str) -> tuple[str, pd.DataFrame]:
    """A user's small CSV (events, a basis history) as text with lower-case headers, and its name; refused whole
    when unreadable, without the `required` columns (`columns` describes them) or without rows."""
    name = str(getattr(path, "name", path))
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"cannot read {what} {name}: {str(err).splitlines()[0]}") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{name} is not {what}: it lacks {', '.join(missing)} (columns: {columns})")
    if df.empty:
        raise DataError(f"{name} has a header but no rows; nothing stored")
    return name, df


def read_events_file(path: Any) -> pd.DataFrame:
    """Parse a user's event calendar CSV: `ts` (UTC, ISO), `kind` (cpi / fomc / other), optional `underlying`
    (a coin or * for all), `move_pct` (the one-event standard deviation in percent; empty = the fitted size of
    its kind) and `label`. A file with any bad row is refused whole, naming the row and the fix."""
    name, df = read_text_csv(path, "an event calendar", ("ts", "kind"), "ts, kind, underlying, move_pct, label")
    ts = pd.to_datetime(df["ts"].str.strip(), utc=True, errors="coerce", format="ISO8601")
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna())[0])
        raise DataError(f"{name} row {i + 2}: ts {df['ts'].iloc[i]!r} is not a UTC date-time; write it as "
                        "2024-01-10T21:00:00Z")
    kind = df["kind"].str.strip().str.lower()
    bad = ~kind.isin(KINDS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name} row {i + 2}: kind {df['kind'].iloc[i]!r} is not one of {', '.join(KINDS)}"
                        f"{did_you_mean(kind.iloc[i], KINDS)}")
    underlying = (df["underlying"].str.strip().str.upper().replace("", ALL_UNDERLYINGS)
                  if "underlying" in df.columns else pd.Series(ALL_UNDERLYINGS, index=df.index))
    move = pd.Series(np.nan, index=df.index)
    if "move_pct" in df.columns:
        text = df["move_pct"].str.strip()
        move = pd.to_numeric(text.replace("", np.nan), errors="coerce") / 100.0
        bad = (text != "") & ~(np.isfinite(move) & (move > 0) & (move <= MAX_MOVE))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{name} row {i + 2}: move_pct {df['move_pct'].iloc[i]!r} must be a percentage in "
                            f"(0, {MAX_MOVE * 100:.0f}] (the event's one-sigma move), or empty for the fitted size")
    elif "move" in df.columns:
        raise DataError(f"{name}: call the column move_pct (percent, e.g. 6 for a 6 % one-sigma move)")
    label = df["label"].str.strip() if "label" in df.columns else pd.Series("", index=df.index)
    out = pd.DataFrame({"ts": ts, "kind": kind, "underlying": underlying, "move": move, "label": label})
    dup = out.duplicated(["ts", "kind", "underlying"], keep=False)
    if dup.any():
        r = out[dup].iloc[0]
        raise DataError(f"{name}: event {r['kind']} at {r['ts']:%Y-%m-%dT%H:%MZ} for {r['underlying']} is listed "
                        "twice; keep one row")
    return out.sort_values("ts").reset_index(drop=True)


def import_events(store: Store, path: Any) -> dict[str, Any]:
    """Store a user's event calendar (added to the packaged one); importing the same file again changes nothing."""
    df = read_events_file(path)
    added, updated = store.import_events(df, source=Path(str(getattr(path, "name", path))).name)
    return {"file": str(getattr(path, "name", path)), "events": int(len(df)), "new": added, "updated": updated,
            "kinds": {k: int(v) for k, v in df["kind"].value_counts().items()},
            "first": df["ts"].min(), "last": df["ts"].max()}


def _applying_to(calendar: pd.DataFrame, underlying: str) -> pd.DataFrame:
    """The rows of a calendar for one underlying (its own and those for every underlying)."""
    return calendar[(calendar["underlying"] == ALL_UNDERLYINGS) | (calendar["underlying"] == underlying.upper())]


def calendar_for(underlying: str, store: Store | None = None) -> pd.DataFrame:
    """The events that apply to one underlying: the packaged calendar plus the stored ones (a stored event with the
    same time and kind replaces the packaged one)."""
    cal = packaged_calendar()
    if store is not None:
        stored = store.read_events()
        if len(stored):
            cal = pd.concat([cal, stored[EVENT_COLUMNS]], ignore_index=True)
            cal = cal.drop_duplicates(["ts", "kind", "underlying"], keep="last")
    return _applying_to(cal, underlying).sort_values("ts").reset_index(drop=True)


# -- the variance of the events between two times -------------------------------------------------------------
@dataclass(frozen=True)
class EventVariance:
    """Scheduled event variances as a step function: `between(a, b)` sums the events with a < ts <= b."""

    ts_ns: np.ndarray
    cum: np.ndarray  # cum[i] = variance of the first i events
    ref_ns: int = 30 * NS_PER_DAY  # the IV input's tenor (the index's 30 days hold the events in them)

    @classmethod
    def build(cls, calendar: pd.DataFrame | None, underlying: str, params: ChainParams) -> EventVariance | None:
        """Each event's variance: its own move when the calendar gives one, else the fitted size of its kind,
        times `params.event_scale`. None when nothing is left (no calendar, scale 0, sizes 0)."""
        if calendar is None or calendar.empty or params.event_scale == 0:
            return None
        cal = _applying_to(calendar, underlying)
        size = {"cpi": params.event_move_cpi, "fomc": params.event_move_fomc}
        fitted = cal["kind"].map(lambda k: size.get(k, params.event_move_other)).astype(float)
        move = cal["move"].astype(float).where(cal["move"].notna(), fitted).to_numpy()
        var = (move * params.event_scale) ** 2
        ts = pd.DatetimeIndex(pd.to_datetime(cal["ts"], utc=True)).as_unit("ns").asi8
        keep = np.isfinite(var) & (var > 0)
        if not keep.any():
            return None
        order = np.argsort(ts[keep], kind="stable")
        ts, var = ts[keep][order], var[keep][order]
        return cls(ts, np.concatenate([[0.0], np.cumsum(var)]), int(round(params.atm_tenor_days * NS_PER_DAY)))

    @functools.cached_property
    def key(self) -> tuple[int, bytes, bytes]:
        """What the variances are, as a dict key (two runs of one calendar build equal objects, not the same one)."""
        return (self.ref_ns, self.ts_ns.tobytes(), self.cum.tobytes())

    def between(self, start_ns: Any, end_ns: Any) -> np.ndarray:
        """Total variance (log-return units) of the events after `start_ns` and no later than `end_ns`."""
        a = np.searchsorted(self.ts_ns, np.asarray(start_ns, dtype=np.int64), side="right")
        b = np.searchsorted(self.ts_ns, np.asarray(end_ns, dtype=np.int64), side="right")
        return np.maximum(self.cum[b] - self.cum[a], 0.0)

    def pricing_args(self, now_ns: Any, expiry_ns: Any) -> dict[str, np.ndarray]:
        """Keyword arguments of the chain model's pricing functions for options alive at `now_ns`."""
        now = np.asarray(now_ns, dtype=np.int64)
        return {"event_var": self.between(now, expiry_ns), "event_var_ref": self.between(now, now + self.ref_ns)}

    def listed(self, start_ns: int, end_ns: int) -> int:
        """How many events fall in (start, end]."""
        return int(np.searchsorted(self.ts_ns, end_ns, side="right") - np.searchsorted(self.ts_ns, start_ns,
                                                                                       side="right"))


# -- fitting event sizes from realised moves -----------------------------------------------------------------
def fit_event_moves(candles: pd.DataFrame | None, calendar: pd.DataFrame | None,
                    window_hours: float = WINDOW_HOURS, control_days: int = CONTROL_DAYS) -> dict[str, Any]:
    """The one-sigma move of each event kind, from the candles: the mean squared log return over the `window_hours`
    after each event minus the mean over the same clock hours on event-free days within `control_days`, square
    rooted. Returns {kind: {"move": ..., "events": n, "control_rms": ...}} for kinds with at least 6 events seen.

    Bars of 4h or finer are needed (a daily bar's move is mostly not the event's); with daily bars nothing is fitted.
    """
    if candles is None or candles.empty or calendar is None or calendar.empty:
        return {}
    ts = pd.DatetimeIndex(pd.to_datetime(candles["ts"], utc=True)).as_unit("ns")
    step = int(np.median(np.diff(ts.asi8))) if len(ts) > 1 else NS_PER_DAY
    if step > 4 * 3600 * 10**9:
        return {}
    close = candles["close"].to_numpy(float)
    r2 = np.r_[np.nan, np.diff(np.log(close))] ** 2
    pos = pd.Series(np.arange(len(ts)), index=ts.asi8)
    n_bars = max(1, int(np.ceil(window_hours * 3600 * 10**9 / step)))
    cum = np.r_[0.0, np.nancumsum(r2)]
    valid = np.r_[0, np.cumsum(np.isfinite(r2))]
    when = pd.DatetimeIndex(pd.to_datetime(calendar["ts"], utc=True)).as_unit("ns")
    event_days = np.unique(when.normalize().asi8)
    shifts = np.arange(-control_days, control_days + 1) * NS_PER_DAY
    shifts = shifts[shifts != 0]
    out: dict[str, Any] = {}
    for kind in sorted(calendar["kind"].unique()):
        excess, control_ms = [], []
        for t in when[(calendar["kind"] == kind).to_numpy()].asi8:
            start = t - (t - ts.asi8[0]) % step  # the bar holding the release
            i = pos.get(start)
            if i is None or i + n_bars > len(ts) or valid[i + n_bars] - valid[i] < n_bars:
                continue
            starts = start + shifts
            days = starts - (starts % NS_PER_DAY)
            starts = starts[~np.isin(days, event_days)]
            idx = pos.reindex(starts).dropna().astype(int).to_numpy()
            idx = idx[idx + n_bars <= len(ts)]
            idx = idx[valid[idx + n_bars] - valid[idx] == n_bars]
            if len(idx) < 10:
                continue
            ctrl = float(np.mean(cum[idx + n_bars] - cum[idx]))
            excess.append(cum[i + n_bars] - cum[i] - ctrl)
            control_ms.append(ctrl)
        if len(excess) >= 6:
            out[str(kind)] = {"move": float(np.sqrt(max(np.mean(excess), 0.0))), "events": len(excess),
                              "control_rms": float(np.sqrt(np.mean(control_ms)))}
    return out
