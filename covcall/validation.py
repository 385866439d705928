"""Selection statistics over the trials really run: PBO by CSCV, effective trial count, DSR inputs, the verdict."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from covcall.errors import SpecError

# Trials whose active returns correlate at least this much count as one independent trial.
CLUSTER_CORRELATION = 0.5
MAX_SPLITS = 20  # C(20, 10) = 184,756 combinations: seconds, not minutes
DSR_PASS = 0.95
PBO_PASS = 0.5


# -- PBO by combinatorially symmetric cross-validation -----------------------------------------------
@dataclass
class PBOResult:
    """The probability of backtest overfitting and what it was computed from."""

    pbo: float
    logits: np.ndarray  # one per split combination
    pairs: pd.DataFrame  # per combination: chosen trial, its in-sample and out-of-sample Sharpe, OOS rank
    n_splits: int
    n_trials: int
    n_obs: int

    def to_dict(self, max_pairs: int = 2000) -> dict[str, Any]:
        """JSON-ready: every logit (4 decimals) and an evenly spaced sample of at most `max_pairs` IS/OOS pairs."""
        step = max(1, math.ceil(len(self.pairs) / max_pairs))
        sample = self.pairs.iloc[::step]
        return {"pbo": self.pbo, "n_splits": self.n_splits, "n_trials": self.n_trials, "n_obs": self.n_obs,
                "logits": [round(float(x), 4) for x in self.logits],
                "pairs": {"is_sharpe": [_json_num(v) for v in sample["is_sharpe"]],
                          "oos_sharpe": [_json_num(v) for v in sample["oos_sharpe"]],
                          "chosen": [str(v) for v in sample["chosen"]]}}


def _json_num(v: Any) -> float | None:
    f = float(v)
    return round(f, 6) if math.isfinite(f) else None


def check_splits(n_splits: Any, n_obs: int) -> int:
    """`n_splits` must be an even whole number from 2 to MAX_SPLITS leaving at least 2 rows per block."""
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise SpecError(f"n_splits must be a whole even number like 16; got {n_splits!r}")
    s = int(n_splits)
    if s < 2 or s % 2:
        raise SpecError(f"n_splits must be even and at least 2 (CSCV splits the series into halves); got {s}")
    if s > MAX_SPLITS:
        raise SpecError(f"n_splits {s} is more than {MAX_SPLITS}: C({s}, {s // 2}) combinations would not finish; "
                        f"use {MAX_SPLITS} or fewer")
    if n_obs < 2 * s:
        raise SpecError(f"n_splits {s} needs at least {2 * s} common rows (2 per block); the series has "
                        f"{n_obs}: use n_splits {max(2, (n_obs // 2) // 2 * 2)} or a longer range")
    return s


def pbo(returns: pd.DataFrame, n_splits: int = 16) -> PBOResult:
    """Probability of backtest overfitting of choosing the best Sharpe among the columns (Bailey et al., 2017).

    `returns` is time x trials (per-bar returns; rows with any NaN are dropped). The rows are cut into
    `n_splits` equal blocks; for every way of taking half the blocks as in-sample, the trial with the best
    in-sample Sharpe is ranked out of sample; logit = ln(w / (1 - w)) with w its relative OOS rank, and PBO is
    the share of combinations with logit <= 0 (the chosen trial does no better than the median out of sample).

    >>> rng = np.random.default_rng(0)
    >>> noise = pd.DataFrame(rng.normal(0, 0.01, (480, 10)))
    >>> 0.3 < pbo(noise, 8).pbo < 0.7
    True
    >>> skill = noise.assign(best=noise[0] + 0.01)
    >>> pbo(skill, 8).pbo
    0.0
    """
    if not isinstance(returns, pd.DataFrame):
        raise SpecError("pbo needs a pandas DataFrame: rows are bars, columns are trials")
    data = returns.apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
    n_obs, n = data.shape
    if n < 2:
        raise SpecError(f"pbo needs at least 2 trials (columns) to choose between; got {n}")
    s = check_splits(n_splits, n_obs)
    x = data.to_numpy(float)
    size = n_obs // s
    x = x[n_obs - size * s:]  # drop the oldest remainder so every block has the same length
    blocks = x.reshape(s, size, n)
    b_sum, b_sq = blocks.sum(axis=1), (blocks**2).sum(axis=1)  # (s, n)
    combos = np.array(list(itertools.combinations(range(s), s // 2)))
    mask = np.zeros((len(combos), s))
    mask[np.arange(len(combos))[:, None], combos] = 1.0
    m = size * s // 2

    def sharpe(sel: np.ndarray) -> np.ndarray:
        mean = sel @ b_sum / m
        var = np.maximum(sel @ b_sq / m - mean**2, 0.0) * m / (m - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sr = np.where(var > 1e-30, mean / np.sqrt(var), np.nan)
        return sr

    sr_is, sr_oos = sharpe(mask), sharpe(1.0 - mask)
    chosen = np.argmax(np.nan_to_num(sr_is, nan=-np.inf), axis=1)
    oos_filled = np.nan_to_num(sr_oos, nan=-np.inf)
    picked = oos_filled[np.arange(len(combos)), chosen][:, None]
    # average rank of the chosen trial among all trials out of sample (1 = worst, n = best)
    rank = (oos_filled < picked).sum(axis=1) + ((oos_filled == picked).sum(axis=1) + 1) / 2.0
    w = rank / (n + 1.0)
    logits = np.log(w / (1.0 - w))
    names = [str(c) for c in data.columns]
    pairs = pd.DataFrame({"chosen": [names[i] for i in chosen],
                          "is_sharpe": sr_is[np.arange(len(combos)), chosen],
                          "oos_sharpe": sr_oos[np.arange(len(combos)), chosen],
                          "oos_rank": rank, "logit": logits})
    return PBOResult(float(np.mean(logits <= 0.0)), logits, pairs, s, n, size * s)


def pbo_if_possible(returns: pd.DataFrame, n_splits: int | None = None) -> PBOResult | None:
    """`pbo` on the rows every column has, with `n_splits` or the most (up to 16) the rows allow; None when there
    are fewer than two columns or too few rows."""
    data = returns.dropna()
    s = n_splits or auto_splits(len(data))
    if data.shape[1] < 2 or not s or len(data) < 2 * s:
        return None
    return pbo(data, s)


def auto_splits(n_obs: int, wanted: int = 16) -> int | None:
    """The largest even split count <= `wanted` that `n_obs` rows allow (None when under 4 rows)."""
    s = min(wanted, MAX_SPLITS, n_obs // 2)
    s -= s % 2
    return s if s >= 2 else None


# -- effective number of trials ----------------------------------------------------------------------
def effective_trials(returns: pd.DataFrame, min_correlation: float = CLUSTER_CORRELATION) -> int:
    """Independent trials among the columns: clusters of average-linkage correlation >= `min_correlation`.

    Pass *active* returns (strategy minus HODL): every covered call holds the coin, so raw returns of any
    two variants correlate near 1 and would count as one trial. Columns with no variance form one cluster.

    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.normal(size=300), rng.normal(size=300)
    >>> effective_trials(pd.DataFrame({"a": a, "a2": a + 0.1 * rng.normal(size=300), "b": b}))
    2
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    data = returns.apply(pd.to_numeric, errors="coerce").dropna()
    n = data.shape[1]
    if n <= 1 or len(data) < 3:
        return n
    x = data.to_numpy(float)
    sd = x.std(axis=0)
    flat = sd < 1e-12
    live = x[:, ~flat]
    count = 1 if flat.any() else 0
    if live.shape[1] == 1:
        return count + 1
    if live.shape[1] == 0:
        return count
    corr = np.clip(np.corrcoef(live, rowvar=False), -1.0, 1.0)
    dist = np.sqrt(np.maximum(0.5 * (1.0 - corr), 0.0))
    np.fill_diagonal(dist, 0.0)
    tree = linkage(squareform(dist, checks=False), method="average")
    cut = math.sqrt(0.5 * (1.0 - min_correlation))
    return count + int(fcluster(tree, t=cut, criterion="distance").max())


# -- selection statistics from the ledger ------------------------------------------------------------
@dataclass
class SelectionStats:
    """N, V and effective N of the trials behind a selection (per-bar Sharpe ratios)."""

    n_trials: int
    n_effective: int
    sr_variance: float
    sr_mean: float
    n_walks: int = 1
    by_stage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "n_effective": self.n_effective, "sr_variance": self.sr_variance,
                "sr_mean": self.sr_mean, "n_walks": self.n_walks, "by_stage": self.by_stage}


def trial_sharpe_variance(sharpes: Iterable[float | None]) -> float:
    """Sample variance (ddof 1) of the finite per-bar Sharpe ratios; 0 with fewer than two."""
    s = np.array([float(v) for v in sharpes if v is not None and math.isfinite(float(v))])
    return float(np.var(s, ddof=1)) if s.size > 1 else 0.0


def returns_frame(trials: list[dict[str, Any]], column: str = "returns", key: str = "name") -> pd.DataFrame:
    """Time x trials frame of one list column (rows are epoch seconds), columns named by `key`."""
    cols = {str(t[key]): pd.Series(np.asarray(t[column], float), index=np.asarray(t["times"], np.int64))
            for t in trials if t.get("times")}
    return pd.DataFrame(cols).sort_index()


def _active_frames(trials: Sequence[dict[str, Any]]) -> list[pd.DataFrame]:
    """One time x trials frame of active returns (`excess`) per distinct set of evaluated dates."""
    groups: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
    for t in trials:
        times = t.get("times") or []
        if len(times) >= 3:
            groups.setdefault((int(times[0]), int(times[-1]), len(times)), []).append(t)
    return [returns_frame(g, "excess", key="trial_id") for g in groups.values()]


def selection_stats(trials: Sequence[dict[str, Any]], min_correlation: float = CLUSTER_CORRELATION
                    ) -> SelectionStats:
    """N = every trial, V = the variance of their per-bar Sharpe ratios, effective N from active-return clusters.

    Trials evaluated on different dates cannot be correlated; each set of dates is clustered on its own and
    the counts add up (trials that never shared a date are counted as independent of each other).
    """
    sharpes = [t.get("sharpe_per_bar") for t in trials]
    finite = [float(v) for v in sharpes if v is not None and math.isfinite(float(v))]
    n_eff = sum(effective_trials(f, min_correlation) for f in _active_frames(trials))
    short = sum(1 for t in trials if len(t.get("times") or []) < 3)
    stages: dict[str, int] = {}
    for t in trials:
        stages[str(t.get("stage"))] = stages.get(str(t.get("stage")), 0) + 1
    return SelectionStats(n_trials=len(trials), n_effective=max(1, n_eff + short) if trials else 0,
                          sr_variance=trial_sharpe_variance(finite),
                          sr_mean=float(np.mean(finite)) if finite else float("nan"),
                          n_walks=len({t.get("walk_id") for t in trials}) or 1, by_stage=stages)


# -- duplicates --------------------------------------------------------------------------------------
def merge_duplicates(board: pd.DataFrame) -> pd.DataFrame:
    """Rows with the same kind and effective parameters (`params`) become one, naming every range that chose it.

    The first row (in the board's order) keeps its numbers; `chosen_by` lists the frames of all of them and
    `merged` their names.
    """
    if board.empty:
        return board.assign(chosen_by=[], merged=[])
    key = board["kind"].astype(str).str.replace("pooled_model", "model") + "|" + board["params"].astype(str)
    # a model's params name its own model_id, so distinct models never merge; baselines are fixed
    first: dict[str, int] = {}
    chosen: dict[str, list[str]] = {}
    names: dict[str, list[str]] = {}
    for i, (k, frame, name) in enumerate(zip(key, board.get("frame", [None] * len(board)), board["strategy"],
                                             strict=True)):
        first.setdefault(k, i)
        chosen.setdefault(k, [])
        if frame is not None and not (isinstance(frame, float) and math.isnan(frame)) and frame not in chosen[k]:
            chosen[k].append(str(frame))
        names.setdefault(k, []).append(str(name))
    keep = sorted(first.values())
    out = board.iloc[keep].copy()
    out["chosen_by"] = [", ".join(chosen[k]) for k in key.iloc[keep]]
    out["merged"] = [", ".join(names[k][1:]) for k in key.iloc[keep]]
    return out.reset_index(drop=True)


# -- the verdict -------------------------------------------------------------------------------------
@dataclass
class Verdict:
    """One sentence computed from the numbers, and whether it earns green."""

    sentence: str
    passed: bool
    winner: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "passed": self.passed, "winner": self.winner}


def _f(v: Any, nd: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{float(v):.{nd}f}"


def verdict(board: pd.DataFrame, stats: SelectionStats, pbo_value: float | None, *, basis: str,
            dsr_pass: float = DSR_PASS, pbo_pass: float = PBO_PASS) -> Verdict:
    """Does the best non-HODL row beat HODL on Sharpe with DSR >= `dsr_pass` (and PBO < `pbo_pass` if known)?

    `board` needs strategy, kind, sharpe and dsr columns, ranked best first; `basis` names the series
    ("the test range", "the stitched out-of-sample series").
    """
    rows = board[board["kind"].astype(str) != "baseline"] if len(board) else board
    hodl = board[board["strategy"].astype(str) == "hodl"] if len(board) else board
    hodl_sr = float(hodl["sharpe"].iloc[0]) if len(hodl) and pd.notna(hodl["sharpe"].iloc[0]) else None
    tail = f"over {stats.n_trials} trials ({stats.n_effective} effective)"
    pbo_txt = f", PBO {_f(pbo_value)}" if pbo_value is not None and math.isfinite(pbo_value) else ""
    if rows.empty:
        return Verdict(f"No strategy variant was tested on {basis}; nothing to choose.", False, None)
    best = rows.iloc[0]
    name, sr, dsr = str(best["strategy"]), best.get("sharpe"), best.get("dsr")
    sr_ok = sr is not None and pd.notna(sr) and (hodl_sr is None or float(sr) > hodl_sr)
    dsr_ok = dsr is not None and pd.notna(dsr) and float(dsr) >= dsr_pass
    pbo_ok = pbo_value is None or not math.isfinite(pbo_value) or pbo_value < pbo_pass
    vs = f" vs HODL {_f(hodl_sr)}" if hodl_sr is not None else ""
    if sr_ok and dsr_ok and pbo_ok:
        return Verdict(f"{name} beats HODL on {basis}: Sharpe {_f(sr)}{vs}, DSR {_f(dsr)} {tail}{pbo_txt}.",
                       True, name)
    cond = f" and PBO < {pbo_pass:g}" if pbo_txt else ""
    return Verdict(f"No variant beats HODL on Sharpe with DSR >= {dsr_pass:g}{cond} on {basis} (best: {name}, "
                   f"Sharpe {_f(sr)}{vs}, DSR {_f(dsr)} {tail}{pbo_txt}).", False, None)
