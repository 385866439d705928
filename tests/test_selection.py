"""Honest selection: the trial ledger, DSR from its trials, PBO by CSCV, folds, the tuner, the verdict, finalTest."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from covcall.cli import main
from covcall.errors import SpecError
from covcall.metrics import deflated_sharpe_ratio
from covcall.store import Store
from covcall.tuner import TunerSettings, tune
from covcall.validation import (
    SelectionStats,
    effective_trials,
    merge_duplicates,
    pbo,
    selection_stats,
    verdict,
)
from covcall.walker import walk
from covcall.walkspec import WalkSpec

# the realised-vol proxy: on this market and grid the two training ranges then pick different variants, so the
# test range has two rule variants to compute a PBO from (with the synthetic IV index both pick the same one)
SPEC = {
    "name": "sel", "underlying": "BTC", "timeframe": "1d", "source": "synthetic", "seed": 7, "metric": "sharpe",
    "iv_source": "realized",
    "rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-06-30"},
                   {"startDate": "2021-07-01", "endDate": "2021-12-31"}],
    "rangeTest": {"startDate": "2022-03-01", "endDate": "2022-08-31"},
    "gap_days": 35, "model": {"enabled": False},
    "grid": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "threshold": [0.1, 0.3]},
}
ROLLING = {
    "name": "roll", "underlying": "BTC", "timeframe": "1d", "source": "synthetic", "seed": 7, "metric": "sharpe",
    "rolling": {"start": "2021-01-01", "train_days": 240, "test_days": 90, "step_days": 90, "gap_days": 31,
                "count": 4},
    "grid": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "dte_range": [[2, 10], [7, 30]]},
    "model": {"pooled": False}, "finalTest": {"startDate": "2023-03-01", "endDate": "2023-08-31"},
}


# -- PBO -------------------------------------------------------------------------------------------
def test_pbo_of_pure_noise_is_near_one_half() -> None:
    values = [pbo(pd.DataFrame(np.random.default_rng(s).normal(0, 0.01, (640, 12))), 16).pbo for s in range(6)]
    assert 0.35 < float(np.mean(values)) < 0.65


def test_pbo_is_zero_when_one_column_dominates_on_every_block() -> None:
    rng = np.random.default_rng(3)
    noise = pd.DataFrame(rng.normal(0, 0.01, (320, 8)), columns=[f"t{i}" for i in range(8)])
    best = noise.max(axis=1) + 0.002  # beats every other trial on every bar, so on every block
    res = pbo(noise.assign(best=best), 16)
    assert res.pbo == 0.0
    assert len(res.logits) == math.comb(16, 8) and (res.logits > 0).all()
    assert set(res.pairs["chosen"]) == {"best"}
    # the logit of a trial that is best out of sample among 9 is ln(9/10 / (1/10))
    assert res.logits.max() == pytest.approx(math.log(9.0))


def test_pbo_pairs_are_in_sample_and_out_of_sample_sharpes_of_the_chosen_trial() -> None:
    data = pd.DataFrame(np.random.default_rng(5).normal(0.001, 0.01, (40, 3)), columns=["a", "b", "c"])
    res = pbo(data, 4)
    first = res.pairs.iloc[0]  # blocks 0 and 1 in sample
    is_, oos = data.iloc[:20], data.iloc[20:]
    chosen = (is_.mean() / is_.std()).idxmax()
    assert first["chosen"] == chosen
    assert first["is_sharpe"] == pytest.approx(is_[chosen].mean() / is_[chosen].std())
    assert first["oos_sharpe"] == pytest.approx(oos[chosen].mean() / oos[chosen].std())


@pytest.mark.parametrize(("n_splits", "message"), [
    (15, "must be even"), (0, "must be even"), (22, "more than 20"), (16, "needs at least 32 common rows"),
    (2.5, "whole even number")])
def test_pbo_refuses_bad_split_counts(n_splits, message) -> None:
    with pytest.raises(SpecError, match=message):
        pbo(pd.DataFrame(np.random.default_rng(0).normal(size=(30, 3))), n_splits)


def test_pbo_needs_two_trials() -> None:
    with pytest.raises(SpecError, match="at least 2 trials"):
        pbo(pd.DataFrame({"a": np.zeros(64)}), 4)


# -- effective trials, duplicates, the verdict ---------------------------------------------------------
def test_effective_trials_counts_clusters_of_correlated_active_returns() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=(250, 3))
    cols = {f"a{i}": base[:, 0] + 0.05 * rng.normal(size=250) for i in range(4)}
    cols |= {"b": base[:, 1], "c": base[:, 2], "flat1": np.zeros(250), "flat2": np.zeros(250)}
    assert effective_trials(pd.DataFrame(cols)) == 1 + 1 + 1 + 1  # the a's, b, c, the flat ones


def test_duplicate_variants_merge_into_one_row_naming_every_range() -> None:
    board = pd.DataFrame({
        "strategy": ["s-2", "s-1", "hodl", "s-3", "m-1"], "kind": ["rule", "rule", "baseline", "rule", "model"],
        "frame": ["f-2", "f-1", None, "f-3", "f-1"], "sharpe": [1.0, 1.0, 0.5, 0.8, 0.9],
        "params": ['{"delta_min": 0.1}', '{"delta_min": 0.1}', '{"policy": "hodl"}', '{"delta_min": 0.2}',
                   '{"model_id": "m1"}']})
    out = merge_duplicates(board)
    assert list(out.strategy) == ["s-2", "hodl", "s-3", "m-1"]
    assert out.set_index("strategy").loc["s-2", "chosen_by"] == "f-2, f-1"
    assert out.set_index("strategy").loc["s-2", "merged"] == "s-1"
    assert not out.drop(columns=["strategy", "frame", "sharpe", "chosen_by", "merged"]).duplicated().any()


def _board(best_sharpe: float, best_dsr: float) -> pd.DataFrame:
    return pd.DataFrame({"strategy": ["x", "hodl", "y"], "kind": ["rule", "baseline", "rule"],
                         "sharpe": [best_sharpe, 0.9, 0.3], "dsr": [best_dsr, 0.5, 0.1]})


def test_verdict_is_green_only_when_earned() -> None:
    stats = SelectionStats(112, 38, 0.01, 0.0)
    win = verdict(_board(1.4, 0.97), stats, 0.12, basis="the stitched out-of-sample series")
    assert win.passed and win.winner == "x"
    assert win.sentence == ("x beats HODL on the stitched out-of-sample series: Sharpe 1.40 vs HODL 0.90, "
                            "DSR 0.97 over 112 trials (38 effective), PBO 0.12.")
    losing = verdict(_board(-2.37, 0.02), stats, 0.61, basis="the test range")
    assert not losing.passed and losing.winner is None
    assert losing.sentence == ("No variant beats HODL on Sharpe with DSR >= 0.95 and PBO < 0.5 on the test range "
                               "(best: x, Sharpe -2.37 vs HODL 0.90, DSR 0.02 over 112 trials (38 effective), "
                               "PBO 0.61).")
    # beating HODL with a lucky-looking DSR, or with a high PBO, is not enough
    assert not verdict(_board(1.4, 0.80), stats, 0.1, basis="b").passed
    assert not verdict(_board(1.4, 0.99), stats, 0.7, basis="b").passed


# -- a walk and its ledger ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    root = tmp_path_factory.mktemp("sel")
    store = Store(root / "cc.duckdb")
    res = walk(SPEC, store=store)
    return res, store, root


def _recompute(trials: list[dict], prior: list[dict]) -> tuple[int, float]:
    sel = [t for t in trials if t["stage"] in ("tune", "test")]
    sharpes = [t["sharpe_per_bar"] for t in sel] + [t["sharpe_per_bar"] for t in prior]
    finite = np.array([s for s in sharpes if s is not None])
    return len(sharpes), float(np.var(finite, ddof=1))


def test_dsr_recomputed_from_the_ledger_in_walks_show_json(walked, monkeypatch, capsys) -> None:
    res, store, root = walked
    monkeypatch.setenv("DUCKDB_PATH", str(store.path))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(root / "exports"))
    assert main(["walks", "--show", res.walk_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    trials, sel = shown["trials"], shown["selection"]
    # 4 grid points on each of 2 ranges, then 2 rule variants + 3 baselines on the test range
    assert [t["stage"] for t in trials].count("tune") == 8 and [t["stage"] for t in trials].count("test") == 5
    n, v = _recompute(trials, sel["prior_trials"])
    assert n == sel["n_trials"] == shown["n_trials"] == 13
    assert v == pytest.approx(sel["sr_variance"], rel=1e-12)
    for row in shown["strategies"]:
        t = next(t for t in trials if t["stage"] == "test" and t["name"] == row["strategy"])
        want = deflated_sharpe_ratio(t["sharpe_per_bar"], v, n, t["n_bars"] - 1, t["skew"], t["kurtosis"])
        assert row["dsr"] == pytest.approx(want, rel=1e-9)
    assert selection_stats(trials).n_effective == sel["n_effective"]
    # the per-bar returns are there and match the stored run's equity
    t = next(t for t in trials if t["stage"] == "test" and t["name"] == "hodl")
    eq = store.read_run_table("equity", [t["run_id"]])
    r = eq["hodl"].pct_change().dropna().to_numpy()
    assert np.allclose(t["returns"], r) and np.allclose(t["excess"], 0.0, atol=1e-12)


def test_the_walk_reports_n_v_effective_n_dsr_and_pbo(walked) -> None:
    res, _, _ = walked
    sel = res.info["selection"]
    assert sel["n_trials"] == 13 and 1 <= sel["n_effective"] <= 13 and sel["sr_variance"] > 0
    assert sel["pbo"] is not None and 0.0 <= sel["pbo"]["pbo"] <= 1.0 and sel["pbo"]["n_splits"] == 16
    assert [p["frame"] for p in sel["pbo_tuner"]] == ["sel_train_frame-1", "sel_train_frame-2"]
    md = (__import__("pathlib").Path(res.report_dir) / "report.md").read_text()
    assert "**Verdict:**" in md and f"| {sel['n_trials']} | {sel['n_effective']} |" in md


def test_a_second_walk_on_the_same_test_range_counts_the_first_ones_trials(walked, tmp_path) -> None:
    res, store, root = walked
    seen: list[str] = []
    again = walk(SPEC, store=store, on_warning=seen.append)
    sel = again.info["selection"]
    assert sel["n_trials"] == 2 * res.info["selection"]["n_trials"] and sel["n_walks"] == 2
    msg = "warning: the test range 2022-03-01 .. 2022-08-31 has now been used by 2 walks with 26 trials"
    assert any(w.startswith(msg) for w in seen) and any(w.startswith(msg) for w in again.info["warnings"])
    assert msg in (__import__("pathlib").Path(again.report_dir) / "report.md").read_text()
    best = again.leaderboard.iloc[0]
    assert best["dsr"] <= res.leaderboard.set_index("strategy").loc[best["strategy"], "dsr"] + 1e-12


# -- walk-forward folds ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rolled(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("roll") / "cc.duckdb")
    seen: list[str] = []
    res = walk(ROLLING, store=store, on_warning=seen.append)
    return res, store, seen


def test_rolling_walk_stitches_each_family_across_folds(rolled) -> None:
    res, store, _ = rolled
    spec = WalkSpec.parse(ROLLING)
    assert len(spec.folds) == 4 and len(res.info["folds"]) == 4
    board = res.leaderboard.set_index("strategy")
    # the stitched series is every fold's test-day returns chained from one starting equity
    assert board.loc["hodl", "n_bars"] == sum(f.test.days for f in spec.folds) + 1
    sel = res.info["selection"]
    assert sel["basis"] == "the stitched out-of-sample series (4 folds)"
    assert sel["n_trials"] == 4 * (4 + 2 + 3) and sel["pbo"] is not None and sel["n_effective"] >= 1
    # parameter stability: what the tuned rule chose in each fold
    params = [next(v["params"] for v in f["variants"] if v["kind"] == "rule") for f in res.info["folds"]]
    assert len(params) == 4 and all("delta_min" in p for p in params)
    assert json.loads(board.loc["roll_strategy-1", "params"]) == params


def test_no_fold_tunes_or_trains_on_its_own_test_dates(rolled) -> None:
    res, store, _ = rolled
    trials = store.read_trials(res.walk_id)
    spec = WalkSpec.parse(ROLLING)
    for k, fold in enumerate(spec.folds, start=1):
        test_lo = pd.Timestamp(fold.test.start, tz="UTC").timestamp()
        test_hi = pd.Timestamp(fold.test.end, tz="UTC").timestamp() + 86400
        tuned = [t for t in trials if t["stage"] == "tune" and t["fold"] == k]
        assert len(tuned) == 4
        for t in tuned:
            assert max(t["times"]) < test_lo and t["range_end"] == fold.train[0].end.isoformat()
        tested = [t for t in trials if t["stage"] == "test" and t["fold"] == k]
        assert all(test_lo <= min(t["times"]) and max(t["times"]) <= test_hi for t in tested)
        model = res.info["models"][f"roll_model-1 (fold {k})"]["diagnostics"]
        assert pd.Timestamp(model["train_last_label_end"]).timestamp() < test_lo


def test_final_holdout_is_run_after_selection_and_reported_apart(rolled) -> None:
    res, store, _ = rolled
    final = res.info["final_test"]
    assert final["range"] == "2023-03-01 .. 2023-08-31" and final["strategy"] == res.best_strategy
    assert [r["strategy"] for r in final["rows"]] == [res.best_strategy, "hodl"]
    ledger = store.read_trials(res.walk_id)
    finals = [t for t in ledger if t["stage"] == "final"]
    assert len(finals) == 2 and res.info["selection"]["n_trials"] == len(ledger) - 2  # not a selection trial
    assert all(min(t["times"]) >= pd.Timestamp("2023-03-01", tz="UTC").timestamp() for t in finals)
    md = (__import__("pathlib").Path(res.report_dir) / "report.md").read_text()
    assert "## Final holdout 2023-03-01 .. 2023-08-31" in md


def _earned(out: dict, board: list[dict]) -> bool:
    """What the verdict must say, recomputed from the reported numbers."""
    rows = {r["strategy"]: r for r in board}
    best, hodl = rows[out["best_strategy"]], rows["hodl"]
    pbo = (out["selection"]["pbo"] or {}).get("pbo")
    return bool(best["sharpe"] > hodl["sharpe"] and best["dsr"] >= 0.95 and (pbo is None or pbo < 0.5))


def test_a_long_enough_gap_gives_no_warning_and_the_verdict_follows_the_numbers(rolled) -> None:
    res, _, seen = rolled
    # the grid sells up to 30 days and every fold's gap is 31: nothing leaks, nothing is reused
    assert seen == [] and res.info["warnings"] == []
    v = res.info["verdict"]
    assert v["passed"] == _earned(res.to_dict(), res.strategies)
    assert v["sentence"].startswith(f"{res.best_strategy} beats HODL" if v["passed"] else "No variant beats HODL")


def test_cli_prints_the_leak_warning_on_stderr(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cc.duckdb"))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(tmp_path / "exports"))
    spec = tmp_path / "spec.json"
    # the last training day is 14 days before the test start; calls of up to 30 days are sold
    spec.write_text(json.dumps({**SPEC, "gap_days": 10, "grid": {"threshold": [0.1]},
                                "rangeTest": {"startDate": "2022-01-15", "endDate": "2022-06-30"}}))
    assert main(["walk", "--spec", str(spec), "--json"]) == 0
    cap = capsys.readouterr()
    out = json.loads(cap.out)
    assert "labels leak" in cap.err and "warning:" in cap.err
    assert any("labels leak" in w for w in out["warnings"])
    md = (tmp_path / "walks" / out["walk_id"] / "report.md").read_text()
    assert md.index("> **Warnings**") < md.index("**Verdict:**")
    # the verdict is green exactly when the numbers earn it (never for a variant that does not beat HODL)
    assert out["verdict"]["passed"] == _earned(out, out["strategies"])


# -- the tuner ---------------------------------------------------------------------------------------
def _tune(method: str, budget: int = 5):
    from covcall.backtest import MarketInputs, load_inputs

    spec = WalkSpec.parse({**SPEC, "tuner": {"method": method, "budget": budget}})
    window = spec.ranges.train[0]
    candles, iv = load_inputs(spec.base_config(window), None)
    return tune(lambda p: spec.base_config(window, **p), method=method, grid=spec.grid, settings=spec.tuner,
                metric="sharpe", seed=11, data=MarketInputs(candles, iv, None))


@pytest.mark.parametrize("method", ["grid", "optuna"])
def test_tuner_trials_are_bit_identical_for_the_same_spec_and_seed(method) -> None:
    a, b = _tune(method), _tune(method)
    assert [t.point for t in a] == [t.point for t in b]
    assert [t.value for t in a] == [t.value for t in b]
    assert [t.result.metrics for t in a] == [t.result.metrics for t in b]
    if method == "optuna":
        assert len(a) == 5 and len({json.dumps(t.point, sort_keys=True) for t in a}) == 5
        assert {"delta_min", "delta_max", "dte_min_days", "dte_max_days", "threshold", "exit_style"} <= set(a[0].point)
        assert all(t.point["delta_max"] > t.point["delta_min"] for t in a)


def test_the_tuner_searches_take_profit_and_exit_style_on_a_grid() -> None:
    spec = WalkSpec.parse({**SPEC, "grid": {"exit_style": ["hold_to_expiry", "tp_and_roll"], "take_profit": [0.5, 0.8]}})
    assert spec.n_tuner_trials == 4
    assert TunerSettings(space={"take_profit": [0.4, 0.6]}).full_space()["take_profit"] == [0.4, 0.6]


# -- bad input ---------------------------------------------------------------------------------------
BAD = [
    ({"rangeTrain": None, "rangeTest": None, "folds": [
        {"rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-06-30"}],
         "rangeTest": {"startDate": "2021-09-01", "endDate": "2021-12-31"}},
        {"rangeTrain": [{"startDate": "2021-03-01", "endDate": "2021-08-31"}],
         "rangeTest": {"startDate": "2021-11-01", "endDate": "2022-02-28"}}]}, "overlap by 61 day"),
    ({"rangeTrain": None, "rangeTest": None, "folds": [
        {"rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-10-31"}],
         "rangeTest": {"startDate": "2021-09-01", "endDate": "2021-12-31"}}]}, "fold|overlap"),
    ({"pbo_splits": 15}, "pbo_splits must be even"),
    ({"pbo_splits": 20, "rangeTest": {"startDate": "2022-03-01", "endDate": "2022-03-30"}},
     "pbo_splits 20 needs at least 40 bars"),
    ({"tuner": {"method": "optuna", "budget": 0}}, "tuner.budget"),
    ({"grid": {"delta_rnage": [[0.1, 0.2]]}}, "unknown tuner parameter 'delta_rnage'.*did you mean 'delta_range'"),
    ({"tuner": {"method": "optuna", "space": {"gamma": [0, 1]}}}, "unknown tuner parameter 'gamma'"),
    ({"finalTest": {"startDate": "2022-06-01", "endDate": "2022-12-31"}}, "finalTest .* must start after"),
    ({"rolling": {"start": "2021-01-01", "train_days": 100, "tset_days": 30}}, "did you mean 'test_days'"),
]


@pytest.mark.parametrize(("patch", "message"), BAD)
def test_bad_selection_specs_are_one_error_line_and_nothing_is_stored(tmp_path, monkeypatch, capsys, patch,
                                                                       message) -> None:
    import re

    db = tmp_path / "cc.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(db))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(tmp_path / "exports"))
    spec = {**SPEC, **patch}
    spec = {k: v for k, v in spec.items() if v is not None}
    if "rolling" in patch:
        spec = {k: v for k, v in spec.items() if k not in ("rangeTrain", "rangeTest")}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    store = Store(db)
    before = store.counts()
    assert main(["walk", "--spec", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and re.search(message, err[0]), err
    assert store.counts() == before and store.list_walks().empty


# -- no look-ahead, as a property ----------------------------------------------------------------------
def test_perturbing_prices_after_a_decision_never_changes_it() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from covcall.backtest import BacktestConfig, load_inputs, run_backtest

    cfg = BacktestConfig.parse({"start": date(2022, 1, 1), "end": date(2022, 6, 30), "exit_style": "tp_and_roll",
                                "dte_min_days": 2, "dte_max_days": 20})
    candles, iv = load_inputs(cfg, None)
    base = run_backtest(cfg, candles=candles, iv=iv)
    decision_times = sorted(base.candidates["decision_time"].unique())
    label_cols = {"reward", "pnl_vs_hodl", "pnl_vs_hodl_pct", "label_end", "exit_reason", "run_id"}
    keep = [c for c in base.candidates.columns if c not in label_cols]

    @settings(max_examples=12, deadline=None, derandomize=True)
    @given(cut=st.integers(min_value=5, max_value=len(decision_times) - 2), seed=st.integers(0, 2**16),
           scale=st.floats(0.5, 2.0))
    def prop(cut: int, seed: int, scale: float) -> None:
        t = pd.Timestamp(decision_times[cut])
        after = candles["ts"] > t
        shock = np.exp(np.random.default_rng(seed).normal(0, 0.1, int(after.sum()))) * scale
        moved = candles.copy()
        for c in ("open", "high", "low", "close"):
            moved.loc[after, c] = moved.loc[after, c].to_numpy() * shock
        res = run_backtest(cfg, candles=moved, iv=iv)
        a = base.candidates[base.candidates["decision_time"] <= t][keep].reset_index(drop=True)
        b = res.candidates[res.candidates["decision_time"] <= t][keep].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)  # same candidates, features, scores and chosen one
        ea = base.examples[base.examples["decision_time"] <= t][["decision_time", "action", "instrument", "strike"]]
        eb = res.examples[res.examples["decision_time"] <= t][["decision_time", "action", "instrument", "strike"]]
        pd.testing.assert_frame_equal(ea.reset_index(drop=True), eb.reset_index(drop=True))

    prop()
