"""LightGBM policies trained on the candidate table: purging, training, diagnostics, persistence, explanations."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from covcall.errors import CovcallError, did_you_mean
from covcall.jsonutil import dumps
from covcall.metrics import auc, brier, calibration_table, log_loss, spearman
from covcall.ranges import Range

if TYPE_CHECKING:
    from covcall.store import Store

# Decision-time features only. Raw price levels (spot, strike, premium_usd, mark_usd) are left out on
# purpose: they identify the era rather than the trade, so a model would learn "when" instead of "what".
FEATURES: tuple[str, ...] = (
    "moneyness", "delta", "dte_days", "iv_ann", "atm_iv_ann", "rv_ann", "iv_rv", "premium_pct", "spread_pct",
    "score", "ret_1d", "ret_7d", "ret_30d",
)

# Regressor targets: name -> what it means. The classifier learns P(label > 0) of the matching USD column.
TARGETS: dict[str, str] = {
    "pnl_vs_hodl_pct": "option-leg USD pnl as a fraction of the position value at the decision "
                       "(pnl_vs_hodl / (quantity * spot))",
    "reward_pct": "USD pnl of coins + option over the trade divided by spot (reward / spot)",
    "pnl_vs_hodl": "option-leg USD pnl over the trade (beats HODL when > 0)",
}
_CLASS_LABEL = {"pnl_vs_hodl_pct": "pnl_vs_hodl", "pnl_vs_hodl": "pnl_vs_hodl", "reward_pct": "reward"}

MIN_ROWS = 200
DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "num_boost_round": 200,
    "early_stopping_rounds": 20,
}
# Fixed so that the same data, params and seed always give the same trees.
_DETERMINISM = {"deterministic": True, "num_threads": 2, "force_col_wise": True, "verbose": -1}


@dataclass
class TrainedModel:
    """A regressor of E[target] and a classifier of P(label > 0), with everything needed to reproduce them."""

    model_id: str
    name: str
    regressor: lgb.Booster
    classifier: lgb.Booster | None
    features: tuple[str, ...]
    target: str
    ranges: list[Range]
    params: dict[str, Any]
    data_hash: str
    diagnostics: dict[str, Any]
    trained_until: pd.Timestamp
    n_train: int
    paths: dict[str, str] = field(default_factory=dict)


# -- rows ------------------------------------------------------------------------------------------
def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True)


def _bounds(r: Range) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo = pd.Timestamp(r.start, tz="UTC")
    return lo, pd.Timestamp(r.end + timedelta(days=1), tz="UTC")


def purge_rows(candidates: pd.DataFrame, ranges: list[Range]) -> pd.DataFrame:
    """Rows whose decision_time AND label_end both fall inside one of `ranges` ([start 00:00, end+1d 00:00) UTC).

    A row whose label ends after its range would teach the model about days outside the range (maybe the
    test range), so it is dropped even though it was decided inside.
    """
    if not ranges:
        raise CovcallError("no training ranges given: pass at least one Range to train on")
    for col in ("decision_time", "label_end"):
        if col not in candidates.columns:
            raise CovcallError(f"candidate table has no {col!r} column; read it with store.read_candidates()")
    dt = _utc(candidates["decision_time"].to_numpy())
    le = _utc(candidates["label_end"].to_numpy())
    keep = np.zeros(len(candidates), dtype=bool)
    for r in ranges:
        lo, hi = _bounds(r)
        keep |= ((dt >= lo) & (dt < hi) & (le >= lo) & (le < hi)).to_numpy()
    return candidates.loc[keep]


def _with_targets(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["decision_time"] = pd.to_datetime(out["decision_time"], utc=True)
    out["label_end"] = pd.to_datetime(out["label_end"], utc=True)
    if "reward_pct" not in out.columns and {"reward", "spot"} <= set(out.columns):
        out["reward_pct"] = out["reward"] / out["spot"]
    return out


def split_train_valid(rows: pd.DataFrame, valid_fraction: float = 0.2,
                      purge_days: float | None = None, embargo_days: float = 0.0,
                      test_fraction: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Time-ordered split into train | validation (early stopping) | test (diagnostics only).

    The last `test_fraction` of decision times is the untouched test tail, the `valid_fraction` before it
    the early-stopping tail. Purging: a row whose label ends at or after the next block's first decision
    (minus `purge_days`) is dropped, so no label overlaps a later block. Embargo: the first `embargo_days`
    of each later block are dropped, since their features (rolling volatilities) still describe the block
    before. With test_fraction 0 the test frame is empty.
    """
    for name, v in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= v < 1.0 or (name == "valid_fraction" and v == 0.0):
            raise CovcallError(f"{name} must be between 0 and 1 (exclusive); got {v!r}")
    if valid_fraction + test_fraction >= 0.9:
        raise CovcallError(f"valid_fraction + test_fraction is {valid_fraction + test_fraction:g}; leave at "
                           "least 10 % of the rows to train on")
    rows = rows.sort_values(["decision_time", "label_end"], kind="mergesort")
    times = pd.DatetimeIndex(rows["decision_time"].unique()).sort_values()
    need = 3 if test_fraction > 0 else 2
    if len(times) < need:
        raise CovcallError(f"the training rows span {len(times)} decision time(s); time-ordered validation and "
                           f"test tails need at least {need}: widen the ranges or run more backtests")
    n = len(times)
    k_test = n if test_fraction == 0 else min(n - 1, max(2, int(np.floor(n * (1.0 - test_fraction)))))
    k_valid = min(k_test - 1, max(1, int(np.floor(n * (1.0 - test_fraction - valid_fraction)))))
    valid_start = times[k_valid]
    test_start = times[k_test] if k_test < n else None
    purge = pd.Timedelta(days=float(purge_days or 0.0))
    embargo = pd.Timedelta(days=float(embargo_days or 0.0))
    dt, le = rows["decision_time"], rows["label_end"]
    train = rows.loc[(dt < valid_start) & (le < valid_start - purge)]
    in_valid = (dt >= valid_start + embargo) if embargo > pd.Timedelta(0) else (dt >= valid_start)
    if test_start is None:
        return train, rows.loc[in_valid], rows.iloc[0:0]
    valid = rows.loc[in_valid & (dt < test_start) & (le < test_start - purge)]
    test = rows.loc[dt >= test_start + embargo]
    return train, valid, test


# -- parameters ----------------------------------------------------------------------------------
class _Silent:
    """A logger for LightGBM that drops its messages (its own [Fatal] lines would duplicate our one-line error)."""

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass


def check_params(params: dict[str, Any] | None) -> dict[str, Any]:
    """Refuse LightGBM parameters before any work starts: unknown names (did you mean ...?) and values LightGBM
    rejects (tried on a tiny data set, in milliseconds). Returns the parameters unchanged.

    >>> check_params({"learning_rate": 0.1})
    {'learning_rate': 0.1}
    >>> check_params({"learnin_rate": 0.1})
    Traceback (most recent call last):
    covcall.errors.CovcallError: model.params: unknown LightGBM parameter 'learnin_rate' (did you mean 'learning_rate'?); see https://lightgbm.readthedocs.io/en/latest/Parameters.html
    """
    params = dict(params or {})
    ours = {"num_boost_round", "early_stopping_rounds"}
    try:
        from lightgbm.basic import _ConfigAliases

        known = {a for names in _ConfigAliases._get_all_param_aliases().values() for a in names}
    except Exception:  # a LightGBM without the alias table: let training report unknown names
        known = set()
    for key in params:
        if known and key not in known and key not in ours:
            raise CovcallError(f"model.params: unknown LightGBM parameter {key!r}"
                               f"{did_you_mean(key, sorted(known | ours))}; see "
                               "https://lightgbm.readthedocs.io/en/latest/Parameters.html")
    for key in ours:
        if key in params:
            v = params[key]
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100_000:
                raise CovcallError(f"model.params.{key}: {v!r} must be a whole number from 1 to 100,000")
    trial = {**DEFAULT_PARAMS, **params, **_DETERMINISM}
    trial.pop("num_boost_round"), trial.pop("early_stopping_rounds")
    rng = np.random.default_rng(0)
    x = rng.random((64, 3))
    lgb.register_logger(_Silent())
    saved = os.dup(2)  # LightGBM's C++ side writes its own [Fatal] line to stderr before raising
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                lgb.train({**trial, "objective": trial.get("objective", "regression")},
                          lgb.Dataset(x, x[:, 0], params={"verbose": -1}), num_boost_round=1)
            finally:
                os.dup2(saved, 2)
    except lgb.basic.LightGBMError as err:
        first = str(err).strip().splitlines()[0].split(" at /")[0]
        raise CovcallError(f"model.params: LightGBM refused them: {first}; see "
                           "https://lightgbm.readthedocs.io/en/latest/Parameters.html") from None
    except (TypeError, ValueError) as err:
        raise CovcallError(f"model.params: LightGBM refused them: {err}") from None
    finally:
        os.close(saved)
    return params


# -- training --------------------------------------------------------------------------------------
def slug(name: str) -> str:
    """Lower-case words joined by dashes.

    >>> slug("BTC regimes / v2")
    'btc-regimes-v2'
    """
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")


def _data_hash(train: pd.DataFrame, valid: pd.DataFrame, features: tuple[str, ...], target: str,
               label: str, meta: dict[str, Any]) -> str:
    h = hashlib.sha256()
    cols = ["decision_time", "label_end", *features, target, label]
    for part in (train, valid):
        h.update(pd.util.hash_pandas_object(part[cols], index=False).to_numpy().tobytes())
        h.update(b"|")
    h.update(dumps(meta).encode())
    return h.hexdigest()


def feature_matrix(frame: pd.DataFrame | dict[str, np.ndarray], features: tuple[str, ...]) -> np.ndarray:
    keys = frame.columns if isinstance(frame, pd.DataFrame) else frame.keys()
    missing = [f for f in features if f not in keys]
    if missing:
        raise CovcallError(f"candidates lack the model's feature column(s) {', '.join(missing)}; "
                           f"the model needs {', '.join(features)}")
    if isinstance(frame, pd.DataFrame):
        return frame[list(features)].to_numpy(dtype=float)
    cols = [np.asarray(frame[f], dtype=float).reshape(-1) for f in features]
    return np.column_stack(cols) if cols and len(cols[0]) else np.empty((0, len(features)))


def _fit(params: dict[str, Any], x: np.ndarray, y: np.ndarray, xv: np.ndarray, yv: np.ndarray,
         features: tuple[str, ...], rounds: int, patience: int) -> lgb.Booster:
    dtrain = lgb.Dataset(x, y, feature_name=list(features), free_raw_data=False)
    dvalid = lgb.Dataset(xv, yv, reference=dtrain, free_raw_data=False)
    booster = lgb.train(params, dtrain, num_boost_round=rounds, valid_sets=[dvalid], valid_names=["valid"],
                        callbacks=[lgb.early_stopping(patience, verbose=False)])
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    # Rebuild from text so the kept booster holds exactly the best trees (and matches a saved/loaded one).
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def train_model(candidates: pd.DataFrame, ranges: list[Range], *, name: str, target: str = "pnl_vs_hodl_pct",
                params: dict[str, Any] | None = None, seed: int = 7, valid_fraction: float = 0.2,
                purge_days: float | None = None, embargo_days: float = 0.0,
                test_fraction: float = 0.2) -> TrainedModel:
    """Train a regressor of `target` and a classifier of P(label > 0) on the candidate rows inside `ranges`.

    The classifier's label is `pnl_vs_hodl > 0` (beats HODL) for the pnl_vs_hodl targets and `reward > 0`
    for `reward_pct`. Both stop early on a time-ordered validation tail; the diagnostics (RMSE, rank IC,
    AUC, calibration) are measured on the final `test_fraction` tail, which plays no part in fitting or
    early stopping (purged by label end and embargoed, see `split_train_valid`). With test_fraction 0 they
    fall back to the early-stopping tail and say so (`diagnostics_on`).
    """
    if target not in TARGETS:
        raise CovcallError(f"target must be one of {', '.join(TARGETS)}; got {target!r}"
                           f"{did_you_mean(target, TARGETS)}")
    if not slug(name):
        raise CovcallError(f"model name {name!r} has no letters or digits; give it a name like 'btc-7d'")
    label = _CLASS_LABEL[target]
    features = FEATURES
    rows = _with_targets(purge_rows(candidates, ranges))
    need = [c for c in (*features, target, label) if c not in rows.columns]
    if need:
        raise CovcallError(f"candidate table lacks column(s) {', '.join(need)}; read it with store.read_candidates()")
    rows = rows.loc[np.isfinite(rows[target].to_numpy(dtype=float)) & np.isfinite(rows[label].to_numpy(dtype=float))]
    if len(rows) < MIN_ROWS:
        raise CovcallError(f"only {len(rows)} candidate rows fall inside the training ranges after purging "
                           f"(need at least {MIN_ROWS}); widen the ranges or run more backtests")
    train, valid, test = split_train_valid(rows, valid_fraction, purge_days, embargo_days, test_fraction)
    if len(train) < MIN_ROWS // 2 or len(valid) == 0 or (test_fraction > 0 and len(test) == 0):
        raise CovcallError(f"only {len(train)} training, {len(valid)} validation and {len(test)} test rows remain "
                           "after purging and embargo; widen the ranges, lower purge_days/embargo_days/"
                           "test_fraction or run more backtests")
    held = test if len(test) else valid

    user = dict(params or {})
    merged = {**DEFAULT_PARAMS, **user}
    rounds = int(merged.pop("num_boost_round"))
    patience = int(merged.pop("early_stopping_rounds"))
    base = {**merged, **_DETERMINISM, "seed": int(seed)}
    x, xv = feature_matrix(train, features), feature_matrix(valid, features)
    y, yv = train[target].to_numpy(dtype=float), valid[target].to_numpy(dtype=float)
    c, cv = (train[label].to_numpy(dtype=float) > 0).astype(float), (valid[label].to_numpy(dtype=float) > 0).astype(float)

    regressor = _fit({**base, "objective": "regression", "metric": "l2"}, x, y, xv, yv, features, rounds, patience)
    classifier = None
    if 0 < c.sum() < len(c):
        classifier = _fit({**base, "objective": "binary", "metric": "binary_logloss"}, x, c, xv, cv,
                          features, rounds, patience)

    xt = feature_matrix(held, features)
    yt = held[target].to_numpy(dtype=float)
    ct = (held[label].to_numpy(dtype=float) > 0).astype(float)
    pred = regressor.predict(xt)
    diag: dict[str, Any] = {
        "n_train": int(len(train)), "n_valid": int(len(valid)), "n_test": int(len(test)),
        "diagnostics_on": "test tail (untouched by fitting and early stopping)" if len(test)
        else "early-stopping tail (optimistic: test_fraction is 0)",
        "train_first_decision": train["decision_time"].min().isoformat(),
        "train_last_decision": train["decision_time"].max().isoformat(),
        "train_last_label_end": train["label_end"].max().isoformat(),
        "valid_first_decision": valid["decision_time"].min().isoformat(),
        "valid_last_decision": valid["decision_time"].max().isoformat(),
        "test_first_decision": held["decision_time"].min().isoformat() if len(test) else None,
        "purge_days": float(purge_days or 0.0), "embargo_days": float(embargo_days or 0.0),
        "valid_fraction": float(valid_fraction), "test_fraction": float(test_fraction),
        "best_iteration": int(regressor.current_iteration()),
        "rmse": float(np.sqrt(np.mean((pred - yt) ** 2))),
        "rank_ic": spearman(pred, yt),
        "base_rate": float(ct.mean()),
        "classifier_label": f"{label} > 0",
    }
    imp_r = regressor.feature_importance(importance_type="gain")
    imp_c = classifier.feature_importance(importance_type="gain") if classifier else np.full(len(features), np.nan)
    if classifier is not None:
        prob = classifier.predict(xt)
        diag.update(classifier_best_iteration=int(classifier.current_iteration()), auc=auc(ct, prob),
                    brier=brier(ct, prob), log_loss=log_loss(ct, prob), calibration=calibration_table(ct, prob))
    else:
        diag.update(classifier_best_iteration=0, auc=float("nan"), brier=float("nan"), log_loss=float("nan"),
                    calibration=[], classifier_note=f"every training row has the same {label} > 0 outcome; "
                                                    "no classifier was trained")
    diag["feature_importance"] = sorted(
        ({"feature": f, "regressor_gain": float(a), "classifier_gain": float(b)}
         for f, a, b in zip(features, imp_r, imp_c, strict=True)),
        key=lambda d: -d["regressor_gain"])

    meta = {"params": {**DEFAULT_PARAMS, **user}, "seed": int(seed), "target": target, "features": features,
            "valid_fraction": float(valid_fraction), "purge_days": purge_days,
            "embargo_days": float(embargo_days), "test_fraction": float(test_fraction),
            "ranges": [r.to_dict() for r in ranges]}
    data_hash = _data_hash(train, valid, features, target, label, meta)
    return TrainedModel(
        model_id=f"{slug(name)}-{data_hash[:8]}", name=name, regressor=regressor, classifier=classifier,
        features=features, target=target, ranges=list(ranges), params=meta["params"] | {"seed": int(seed)},
        data_hash=data_hash, diagnostics=diag,
        # the validation tail steers early stopping, so its labels count as used in training too; the test
        # tail's labels only measure, but they are counted as well so no reader has to know the difference
        trained_until=pd.Timestamp(max(train["label_end"].max(), valid["label_end"].max(),
                                       test["label_end"].max() if len(test) else valid["label_end"].max())),
        n_train=int(len(train)))


# -- prediction ------------------------------------------------------------------------------------
def predict(model: TrainedModel, candidates: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
    """Predicted target for every candidate row (NaN features are routed by LightGBM's missing-value rule)."""
    x = feature_matrix(candidates, model.features)
    return model.regressor.predict(x) if len(x) else np.empty(0)


def predict_proba(model: TrainedModel, candidates: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
    """P(label > 0) for every candidate row (see diagnostics['classifier_label'] for the label)."""
    if model.classifier is None:
        raise CovcallError(f"model {model.model_id} has no classifier (its training labels were all one "
                           "class); retrain on ranges with both winning and losing trades")
    x = feature_matrix(candidates, model.features)
    return model.classifier.predict(x) if len(x) else np.empty(0)


# -- persistence -----------------------------------------------------------------------------------
def _json(obj: Any) -> str:
    return dumps(obj)


def save_model(store: Store, model: TrainedModel, model_dir: Path) -> str:
    """Write the boosters as LightGBM text files under model_dir/<model_id>/ and record the model row."""
    folder = Path(model_dir) / model.model_id
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"regressor": str(folder / "regressor.txt")}
    model.regressor.save_model(paths["regressor"])
    if model.classifier is not None:
        paths["classifier"] = str(folder / "classifier.txt")
        model.classifier.save_model(paths["classifier"])
    model.paths = paths
    store.save_model_row({
        "model_id": model.model_id,
        # Bookkeeping only; nothing about training or prediction depends on it.
        "created_at": pd.Timestamp.now(tz="UTC"),
        "name": model.name,
        "kind": "lightgbm",
        "target": model.target,
        "features_json": json.dumps(list(model.features)),
        "ranges_json": json.dumps([r.to_dict() for r in model.ranges]),
        "params_json": _json(model.params),
        "data_hash": model.data_hash,
        "diagnostics_json": _json(model.diagnostics),
        "path": str(folder),
        "n_train": int(model.n_train),
        "trained_until": model.trained_until,
    })
    return model.model_id


def _row(store: Store, model_id: str) -> dict[str, Any]:
    row = store.get_model_row(model_id)
    if row is None:
        known = [str(m) for m in store.list_models().get("model_id", pd.Series(dtype=str)).tolist()]
        hint = f"saved: {', '.join(known[:10])}" if known else "none saved yet (train one with `covcall train --spec FILE`)"
        raise CovcallError(f"no model with id {model_id!r}{did_you_mean(model_id, known)}; {hint}")
    return row


def load_model(store: Store, model_id: str) -> TrainedModel:
    """Rebuild a saved model from its row and its LightGBM text files."""
    row = _row(store, model_id)
    folder = Path(str(row["path"]))
    reg_path, clf_path = folder / "regressor.txt", folder / "classifier.txt"
    if not reg_path.exists():
        raise CovcallError(f"model {model_id}: {reg_path} is missing; the model folder was moved or deleted, "
                           "retrain the model")
    ranges = [Range(date.fromisoformat(r["start"]), date.fromisoformat(r["end"]), r.get("note", ""))
              for r in row["ranges"]]
    paths = {"regressor": str(reg_path)}
    classifier = None
    if clf_path.exists():
        classifier = lgb.Booster(model_file=str(clf_path))
        paths["classifier"] = str(clf_path)
    trained_until = pd.Timestamp(row["trained_until"])
    return TrainedModel(
        model_id=str(row["model_id"]), name=str(row["name"]), regressor=lgb.Booster(model_file=str(reg_path)),
        classifier=classifier, features=tuple(row["features"]), target=str(row["target"]),
        ranges=ranges, params=row["params"], data_hash=str(row["data_hash"]),
        diagnostics=row["diagnostics"],
        trained_until=trained_until.tz_localize("UTC") if trained_until.tzinfo is None else trained_until,
        n_train=int(row["n_train"]), paths=paths)


def list_models(store: Store) -> pd.DataFrame:
    """Saved models, newest first (without the bulky diagnostics JSON)."""
    df = store.list_models()
    return df.drop(columns=[c for c in ("diagnostics",) if c in df.columns])


def model_diagnostics(store: Store, model_id: str) -> dict[str, Any]:
    """Validation-tail diagnostics of a saved model; feature_importance and calibration are lists of dicts."""
    return _row(store, model_id)["diagnostics"]


__all__ = [
    "FEATURES", "TARGETS", "TrainedModel", "check_params", "feature_matrix", "list_models", "load_model", "model_diagnostics", "predict",
    "predict_proba", "purge_rows", "save_model", "slug", "split_train_valid", "train_model",
]
