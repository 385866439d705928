"""Training and testing date ranges: parsing, leak checks, presets, walk-forward windows and regime suggestions."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from covcall.dates import parse_date
from covcall.errors import DataError, SpecError, did_you_mean
from covcall.names import check_name

if TYPE_CHECKING:
    from covcall.store import Store

Level = Literal["error", "warning", "note"]
_LEVEL_ORDER = {"error": 0, "warning": 1, "note": 2}
REGIMES = ("bull", "chop", "dump")


@dataclass(frozen=True)
class Range:
    """An inclusive span of UTC calendar days."""

    start: date
    end: date
    note: str = ""

    @property
    def days(self) -> int:
        """Number of calendar days, both ends included.

        >>> Range(date(2024, 1, 1), date(2024, 1, 31)).days
        31
        """
        return (self.end - self.start).days + 1

    def overlaps(self, other: Range) -> int:
        """Days the two ranges share (0 when disjoint)."""
        return max(0, (min(self.end, other.end) - max(self.start, other.start)).days + 1)

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "note": self.note}


@dataclass(frozen=True)
class Issue:
    """One validation finding; `code` is stable for programs, `message` says what to change, and `fix` (when the
    change is mechanical) says it for `apply_fix`: {"target": "train" | "test", "index": 1-based range, "start",
    "end" (ISO dates) or "swap": True}. Applying the fixes of every error leaves a set without errors."""

    level: Level
    message: str
    code: str
    fix: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "code": self.code, "message": self.message}
        if self.fix is not None:
            out["fix"] = self.fix
        return out


# -- parsing ---------------------------------------------------------------------------------------
def _parse_date(value: Any, where: str) -> date:
    return parse_date(value, where)


def _parse_range(d: Any, where: str) -> Range:
    if not isinstance(d, dict):
        raise SpecError(f"{where}: expected an object with start and end dates, got {d!r}")
    out: dict[str, date] = {}
    for ours, seeds in (("start", "startDate"), ("end", "endDate")):
        key = seeds if seeds in d else ours
        if key not in d:
            raise SpecError(f"{where}.{seeds}: missing; give it as YYYY-MM-DD")
        out[ours] = _parse_date(d[key], f"{where}.{key}")
    note = d.get("note", "")
    return Range(out["start"], out["end"], "" if note is None else str(note))


MAX_DAYS = 36_500  # a hundred years: longer spans are typos
MAX_WINDOWS = 1_000


def whole_days(value: Any, name: str, low: int = 0, high: int = MAX_DAYS) -> int:
    """A whole number of days in [low, high], or a SpecError naming the field (NaN, inf, 2.5, 'x' refused).

    >>> whole_days(30.0, "gap_days")
    30
    """
    ok = (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
          and value == int(value) and low <= value <= high)
    if not ok:
        raise SpecError(f"{name}: {value!r} must be a whole number from {low} to {high:,}")
    return int(value)


def _int_field(d: dict[str, Any], key: str, default: int) -> int:
    return whole_days(d.get(key, default), key)


# -- the range set ---------------------------------------------------------------------------------
@dataclass
class RangeSet:
    """Named training ranges plus one test range, with the minimum gap that keeps labels out of the test."""

    name: str
    train: list[Range]
    test: Range
    gap_days: int = 0
    strict: bool = False

    def validate(self, max_label_days: float = 0.0) -> list[Issue]:
        """All findings, errors first; `max_label_days` is the longest label horizon (the max DTE held)."""
        return validate_ranges(self, max_label_days)

    @property
    def max_train_end(self) -> date:
        """The last training day (the test start when there is no training range)."""
        return max((r.end for r in self.train), default=self.test.start)

    def frames(self, prefix: str) -> dict[str, Range]:
        """Frames named `{prefix}_train_frame-1..n` and `{prefix}_test_frame`."""
        out = {f"{prefix}_train_frame-{i}": r for i, r in enumerate(self.train, start=1)}
        out[f"{prefix}_test_frame"] = self.test
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "train": [r.to_dict() for r in self.train],
            "test": self.test.to_dict(),
            "gap_days": self.gap_days,
            "strict": self.strict,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str | None = None) -> RangeSet:
        """Accept our names (train/test/start/end) or the seed's (rangeTrain/rangeTest/startDate/endDate)."""
        if not isinstance(d, dict):
            raise SpecError(f"a range set must be an object, got {type(d).__name__}")
        train_key = "rangeTrain" if "rangeTrain" in d else "train"
        test_key = "rangeTest" if "rangeTest" in d else "test"
        raw_train = d.get(train_key, [])
        if isinstance(raw_train, dict):
            raw_train = [raw_train]
        if not isinstance(raw_train, list):
            raise SpecError(f"{train_key}: expected a list of ranges, got {raw_train!r}")
        if test_key not in d:
            raise SpecError("rangeTest: missing; give the test range as {\"startDate\": ..., \"endDate\": ...}")
        train = [_parse_range(r, f"{train_key}[{i}]") for i, r in enumerate(raw_train)]
        test = _parse_range(d[test_key], test_key)
        strict = d.get("strict", False)
        if not isinstance(strict, bool):
            raise SpecError(f"strict: {strict!r} must be true or false")
        return cls(name=str(name or d.get("name") or "unnamed"), train=train, test=test,
                   gap_days=_int_field(d, "gap_days", 0), strict=strict)


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def validate_ranges(rs: RangeSet, max_label_days: float = 0.0) -> list[Issue]:
    """Check a range set for reversed, leaking, future and uneven ranges; errors first, then warnings, notes."""
    issues: list[Issue] = []
    test = rs.test
    if not rs.train:
        issues.append(Issue("error", "no training ranges: add at least one range to rangeTrain", "no_train"))
    test_ok = test.start <= test.end
    if not test_ok:
        issues.append(Issue("error", f"test range ({test}): start is after end; swap them", "start_after_end",
                            {"target": "test", "swap": True}))
    horizon = max(int(rs.gap_days), math.ceil(max(0.0, float(max_label_days))))
    valid: list[tuple[int, Range]] = []
    for i, r in enumerate(rs.train, start=1):
        name = f"train range {i} ({r})"
        if r.start > r.end:
            issues.append(Issue("error", f"{name}: start is after end; swap them", "start_after_end",
                                {"target": "train", "index": i, "swap": True}))
            continue
        valid.append((i, r))
        if not test_ok:
            continue
        shared = r.overlaps(test)
        latest = test.start - timedelta(days=horizon + 1)  # the last training day the gap allows
        if shared:
            lo, hi = max(r.start, test.start), min(r.end, test.end)
            # Training after the test range would be training on the future: the fix always moves it before.
            text, fix = _fix_before(i, r, latest, horizon)
            issues.append(Issue(
                "error",
                f"{name} overlaps the test range ({test}) by {_days(shared)} ({lo} .. {hi}): {text}",
                "train_overlaps_test", fix))
        elif r.start > test.end:
            issues.append(Issue(
                "warning",
                f"{name} lies entirely after the test range ({test}): training on the future; "
                "results will not show how the strategy would have done in real time",
                "train_after_test"))
        else:
            gap = (test.start - r.end).days - 1
            if gap < horizon:
                why = (f"gap_days={rs.gap_days}, longest label horizon {max_label_days:g} days")
                text, fix = _fix_before(i, r, latest, horizon)
                issues.append(Issue(
                    "error" if rs.strict else "warning",
                    f"{name} ends {_days(gap)} before the test range starts ({test.start}) but needs a gap of "
                    f"{_days(horizon)} ({why}): labels leak {_days(horizon - gap)} into the test range; {text}",
                    "gap_too_short", fix))
    for a in range(len(valid)):
        for b in range(a + 1, len(valid)):
            (i, r1), (j, r2) = valid[a], valid[b]
            shared = r1.overlaps(r2)
            if shared:
                issues.append(Issue(
                    "note",
                    f"train ranges {i} ({r1}) and {j} ({r2}) overlap by {_days(shared)}: "
                    "those days are trained on twice",
                    "train_overlap"))
    if len(valid) >= 2:
        (i_long, r_long) = max(valid, key=lambda t: t[1].days)
        (i_short, r_short) = min(valid, key=lambda t: t[1].days)
        if r_long.days > 2 * r_short.days:
            issues.append(Issue(
                "note",
                f"training ranges differ in length more than 2x: range {i_long} has {r_long.days} days, "
                f"range {i_short} has {r_short.days} days; the longer one will dominate the training data",
                "uneven_lengths"))
    return sorted(issues, key=lambda x: _LEVEL_ORDER[x.level])


def _fix_before(i: int, r: Range, latest: date, horizon: int) -> tuple[str, dict[str, Any]]:
    """End a training range on the last day the gap allows; one that starts later moves whole, keeping its length."""
    if r.start <= latest:
        return (f"end it on or before {latest}",
                {"target": "train", "index": i, "start": r.start.isoformat(), "end": latest.isoformat()})
    start = latest - timedelta(days=max(r.days, 1) - 1)
    return (f"move it before the test range: {start} .. {latest} keeps its {_days(r.days)} and a gap of "
            f"{_days(horizon)}", {"target": "train", "index": i, "start": start.isoformat(), "end": latest.isoformat()})


def apply_fix(rs: RangeSet, issue: Issue) -> RangeSet:
    """The range set with one issue's mechanical fix applied (the same set when the issue has none).

    >>> rs = RangeSet("x", [Range(date(2024, 1, 1), date(2024, 3, 31))], Range(date(2024, 3, 1), date(2024, 4, 30)),
    ...               gap_days=10)
    >>> fixed = apply_fix(rs, rs.validate()[0])
    >>> str(fixed.train[0]), fixed.validate()
    ('2024-01-01 .. 2024-02-19', [])
    """
    f = issue.fix
    if not f:
        return rs
    if f["target"] == "test":
        test = Range(rs.test.end, rs.test.start, rs.test.note) if f.get("swap") else rs.test
        return RangeSet(rs.name, list(rs.train), test, rs.gap_days, rs.strict)
    train = list(rs.train)
    k = int(f["index"]) - 1
    r = train[k]
    if f.get("swap"):
        train[k] = Range(r.end, r.start, r.note)
    else:
        train[k] = Range(date.fromisoformat(f["start"]), date.fromisoformat(f["end"]), r.note)
    return RangeSet(rs.name, train, rs.test, rs.gap_days, rs.strict)


def fix_all(rs: RangeSet, max_label_days: float = 0.0) -> RangeSet:
    """Apply the validator's fixes until no fixable error is left (a few rounds: a swapped test range can create
    new overlaps, which the next round fixes)."""
    for _ in range(2 * len(rs.train) + 2):  # each range at most swapped then moved; the test range swapped once
        fixable = [i for i in rs.validate(max_label_days) if i.level == "error" and i.fix]
        if not fixable:
            break
        rs = apply_fix(rs, fixable[0])
    return rs


def has_errors(issues: Iterable[Issue]) -> bool:
    return any(i.level == "error" for i in issues)


# -- presets -----------------------------------------------------------------------------------------
def presets() -> dict[str, RangeSet]:
    """Built-in range sets; see docs/ranges.md for how the BTC regime dates were chosen."""
    d = date.fromisoformat
    btc = RangeSet(
        name="btc-regimes",
        train=[
            Range(d("2020-10-01"), d("2021-04-13"), "bull: 10.6k -> 63.6k, the run into the April 2021 top"),
            Range(d("2021-11-10"), d("2022-11-21"), "bear: from the 69k top to the FTX-collapse low"),
            Range(d("2023-03-20"), d("2023-10-15"), "range: 25k-31.5k sideways, -2 % end to end"),
        ],
        test=Range(d("2024-01-01"), d("2024-06-30"), "ETF launch and halving half-year"),
        gap_days=30,
    )
    return {btc.name: btc}


def _segments(labels: pd.DataFrame) -> pd.DataFrame:
    """Runs of equal regime as rows: regime, start, end (dates), days."""
    df = labels.sort_values("ts").reset_index(drop=True)
    if df.empty:
        return pd.DataFrame(columns=["regime", "start", "end", "days"])
    day = pd.to_datetime(df["ts"], utc=True).dt.date
    reg = df["regime"].astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, reg[1:] != reg[:-1]])
    ends = np.r_[starts[1:] - 1, len(reg) - 1]
    out = pd.DataFrame({"regime": reg[starts], "start": day.iloc[starts].to_numpy(),
                        "end": day.iloc[ends].to_numpy()})
    out["days"] = [(e - s).days + 1 for s, e in zip(out["start"], out["end"], strict=True)]
    return out


def _pick_longest(labels: pd.DataFrame, last_train_day: date, min_days: int) -> list[Range]:
    seg = _segments(labels)
    picked: list[Range] = []
    for regime in REGIMES:
        rows = seg[(seg["regime"] == regime) & (seg["start"] <= last_train_day)].copy()
        if rows.empty:
            continue
        rows["end"] = [min(e, last_train_day) for e in rows["end"]]
        rows["days"] = [(e - s).days + 1 for s, e in zip(rows["start"], rows["end"], strict=True)]
        best = rows.sort_values(["days", "start"], ascending=[False, True]).iloc[0]
        if best["days"] >= min_days:
            picked.append(Range(best["start"], best["end"], f"{regime}: longest {regime} segment, "
                                f"{best['days']} days"))
    return sorted(picked, key=lambda r: r.start)


def synthetic_preset(underlying: str = "BTC", seed: int = 7, gap_days: int = 30) -> RangeSet:
    """Longest bull, dump and chop segments of the synthetic market before a test window at its end.

    The test range is the last 120 days of the synthetic span (or the last sixth when the span is short);
    training segments are clipped to end `gap_days` before it.
    """
    from covcall.market.synthetic import regime_labels

    labels = regime_labels(underlying, timeframe="1d", seed=seed)
    days = pd.to_datetime(labels["ts"], utc=True).dt.date
    first, last = days.min(), days.max()
    span = (last - first).days + 1
    test_days = min(120, max(30, span // 6))
    test = Range(last - timedelta(days=test_days - 1), last, "synthetic: final window")
    cutoff = test.start - timedelta(days=gap_days + 1)
    train = _pick_longest(labels, cutoff, min_days=14)
    if not train:
        raise DataError(f"synthetic {underlying} (seed {seed}) has no regime segment before {cutoff}; "
                        "try another seed or a smaller gap_days")
    return RangeSet(name=f"synthetic-{underlying.lower()}-seed{seed}", train=train, test=test, gap_days=gap_days)


def rolling(start: date | str, train_days: int, test_days: int, step_days: int, gap_days: int,
            count: int) -> list[RangeSet]:
    """Walk-forward windows: window k trains on [s, s + train_days - 1] and tests from train end + gap + 1.

    >>> [str(w.test) for w in rolling("2024-01-01", 30, 10, 10, 5, 2)]
    ['2024-02-05 .. 2024-02-14', '2024-02-15 .. 2024-02-24']
    """
    s0 = _parse_date(start, "start")
    train_days, test_days, step_days = (whole_days(v, n, 1) for v, n in (
        (train_days, "train_days"), (test_days, "test_days"), (step_days, "step_days")))
    gap_days = whole_days(gap_days, "gap_days")
    count = whole_days(count, "count", 1, MAX_WINDOWS)
    last = s0 + timedelta(days=(count - 1) * step_days + train_days + gap_days + test_days)
    if last.year > 2200:
        raise SpecError(f"these windows would run to {last}; use fewer windows or shorter steps")
    out = []
    for k in range(int(count)):
        ts = s0 + timedelta(days=k * step_days)
        te = ts + timedelta(days=train_days - 1)
        qs = te + timedelta(days=gap_days + 1)
        out.append(RangeSet(name=f"rolling-{k + 1}", train=[Range(ts, te)],
                            test=Range(qs, qs + timedelta(days=test_days - 1)), gap_days=gap_days))
    return out


# -- regime suggestion ---------------------------------------------------------------------------------
def _daily_close(close: pd.Series) -> pd.Series:
    s = close.dropna().astype(float)
    if not isinstance(s.index, pd.DatetimeIndex):
        s.index = pd.to_datetime(s.index, utc=True)
    idx = s.index.tz_localize("UTC") if s.index.tz is None else s.index.tz_convert("UTC")
    s = pd.Series(s.to_numpy(), index=idx).sort_index()
    return s.resample("1D").last().ffill()


def _merge_short_runs(codes: np.ndarray, min_len: int) -> np.ndarray:
    codes = codes.copy()
    while True:
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        lens = np.diff(np.r_[starts, codes.size])
        if starts.size <= 1 or lens.min() >= min_len:
            return codes
        k = int(np.argmin(lens))
        left = k - 1 if k > 0 else None
        right = k + 1 if k + 1 < starts.size else None
        if left is None or (right is not None and lens[right] > lens[left]):
            target = codes[starts[right]]
        else:
            target = codes[starts[left]]
        codes[starts[k]:starts[k] + lens[k]] = target


def _refine_boundaries(codes: np.ndarray, r: np.ndarray, window: int) -> np.ndarray:
    """Move each regime change to the split that best separates the two drifts (least squares)."""
    codes = codes.copy()
    c1 = np.r_[0.0, np.cumsum(r)]
    c2 = np.r_[0.0, np.cumsum(r * r)]

    def sse(i: np.ndarray, j: np.ndarray | int) -> np.ndarray:
        n = np.maximum(j - i, 1)
        s1 = c1[j] - c1[i]
        return (c2[j] - c2[i]) - s1 * s1 / n

    starts = list(np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]))
    bounds = starts + [codes.size]
    for k in range(1, len(starts)):
        b, lo_run, hi_run = bounds[k], bounds[k - 1], bounds[k + 1]
        lo, hi = max(lo_run, b - window), min(hi_run, b + window)
        cand = np.arange(max(lo_run + 1, b - window // 2), min(hi_run - 1, b + window // 2) + 1)
        if cand.size == 0:
            continue
        cost = sse(np.full(cand.size, lo), cand) + sse(cand, np.full(cand.size, hi))
        best = int(cand[np.argmin(cost)])
        left_code, right_code = codes[b - 1], codes[b]
        codes[lo_run:best] = left_code
        codes[best:hi_run] = right_code
        bounds[k] = best
    return codes


def label_regimes(close: pd.Series, window_days: int = 30, trend_threshold: float = 0.5,
                  min_segment_days: int = 14) -> pd.DataFrame:
    """Label each UTC day bull, chop or dump from its centred `window_days` log return.

    The move over a window centred on the day is compared with `trend_threshold` times the series' typical
    move over that window (root-mean-square daily log return * sqrt(window)). Runs shorter than
    `min_segment_days` are merged into their longer neighbour and each change point is then moved to the
    least-squares split between the two drifts. The centred window looks ahead by design: these labels
    describe history for choosing ranges and must never feed a trading decision.
    """
    daily = _daily_close(close)
    if len(daily) < 2 * min_segment_days:
        raise DataError(f"need at least {2 * min_segment_days} days of prices to label regimes, got {len(daily)}")
    logp = np.log(daily.to_numpy())
    r = np.r_[0.0, np.diff(logp)]
    rms = math.sqrt(float(np.mean(r[1:] ** 2)))
    move = pd.Series(r).rolling(window_days, center=True, min_periods=max(2, window_days // 2)).sum().to_numpy()
    bar = trend_threshold * rms * math.sqrt(window_days)
    codes = np.where(move > bar, 0, np.where(move < -bar, 2, 1))
    codes = _merge_short_runs(codes, min_segment_days)
    codes = _refine_boundaries(codes, r, window_days)
    codes = _merge_short_runs(codes, min_segment_days)
    return pd.DataFrame({"ts": daily.index, "regime": np.asarray(REGIMES)[codes]})


def suggest_ranges(close: pd.Series, test: Range | None = None, gap_days: int = 30, min_days: int = 45,
                   name: str = "suggested") -> RangeSet:
    """One training range per regime (its longest segment ending gap_days before the test range).

    Without `test`, the last 90 days of the series are the test range.
    """
    labels = label_regimes(close)
    days = pd.to_datetime(labels["ts"], utc=True).dt.date
    if test is None:
        last = days.max()
        test = Range(last - timedelta(days=89), last, "last 90 days")
    cutoff = test.start - timedelta(days=gap_days + 1)
    if cutoff < days.min():
        raise DataError(f"no prices before {cutoff} (test starts {test.start}, gap {gap_days} days); "
                        f"the series starts {days.min()}: move the test range later or lower the gap")
    train = _pick_longest(labels, cutoff, min_days)
    if not train:
        raise DataError(f"no regime segment of at least {min_days} days ends by {cutoff}; "
                        "lower min_days or move the test range later")
    lp = _daily_close(close)
    annotated = []
    for r in train:
        s = lp[str(r.start):str(r.end)]
        change = s.iloc[-1] / s.iloc[0] - 1 if len(s) > 1 else float("nan")
        annotated.append(Range(r.start, r.end, f"{r.note.split(':')[0]}: {change:+.0%} over {r.days} days"))
    return RangeSet(name=name, train=annotated, test=test, gap_days=gap_days)


# -- persistence ----------------------------------------------------------------------------------------
def save_range_set(store: Store, rs: RangeSet, *, overwrite: bool = False) -> str:
    """Save a range set by name; refuses one whose ranges are reversed, overlap the test or are missing.

    A different set already saved under the name is kept unless `overwrite` (the CLI's --force, the page's
    confirmation). Returns 'created', 'replaced' or 'unchanged'.
    """
    name = check_name(rs.name, "range set name")
    errors = [i for i in rs.validate(0.0) if i.level == "error"]
    if errors:
        raise SpecError(f"range set {name!r} not saved: {errors[0].message}")
    outcome = store.save_range_set(name, json.dumps(rs.to_dict(), sort_keys=True), overwrite=overwrite)
    if outcome == "exists":
        raise SpecError(f"a different range set named {name!r} is already saved; overwrite it with --force "
                        "(or confirm on the Ranges page), or pick another name")
    return outcome


def load_range_set(store: Store, name: str) -> RangeSet:
    raw = store.load_range_set(name)
    if raw is None:
        names = store.list_range_sets()
        known = f"saved: {', '.join(names)}" if names else "none saved yet (covcall ranges save --spec FILE --name N)"
        raise SpecError(f"no range set named {name!r}{did_you_mean(name, names)}; {known}")
    return RangeSet.from_dict(json.loads(raw))


def list_range_sets(store: Store) -> list[str]:
    return list(store.list_range_sets())


__all__ = [
    "Issue", "Range", "RangeSet", "apply_fix", "fix_all", "has_errors", "label_regimes", "list_range_sets",
    "load_range_set", "presets", "rolling", "save_range_set", "suggest_ranges", "synthetic_preset", "validate_ranges",
]
