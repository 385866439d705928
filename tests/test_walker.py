"""The walker end to end: leakage closed, deterministic rankings, ranking rules, CLI and reports."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from covcall.cli import main
from covcall.errors import SpecError
from covcall.optimizer import rank_key
from covcall.store import Store
from covcall.validation import SelectionStats
from covcall.walker import _rank, load_walk, walk

SPEC = {
    "name": "t", "underlying": "BTC", "timeframe": "1d", "source": "synthetic", "seed": 7, "metric": "sharpe",
    "rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-06-30", "note": "first"},
                   {"startDate": "2021-07-01", "endDate": "2021-12-31", "note": "second"}],
    "rangeTest": {"startDate": "2022-03-01", "endDate": "2022-08-31", "note": "held out"},
    "gap_days": 35,
    "grid": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "threshold": [0.1]},
}


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("walk") / "cc.duckdb")
    events: list[tuple[int, int, str]] = []
    res = walk(SPEC, lambda d, t, m: events.append((d, t, m)), store=store)
    return res, store, events


def test_every_variant_and_baseline_is_ranked(walked):
    res, _, _ = walked
    board = res.leaderboard
    merged = {n for m in board.merged for n in m.split(", ") if n}
    # both training ranges chose the same grid point: one row names both ranges
    assert merged == {"t_strategy-2"}
    assert board.set_index("strategy").loc["t_strategy-1", "chosen_by"] == "t_train_frame-1, t_train_frame-2"
    assert set(board.strategy) | merged == {"t_strategy-1", "t_strategy-2", "t_model-1", "t_model-2",
                                            "t_model-pooled", "hodl", "vault_weekly_10d", "bxmd_monthly_30d"}
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    values = board.metric_value.to_numpy(float)
    assert np.all(np.diff(values[np.isfinite(values)]) <= 1e-12)  # best first
    chosen = board[board.kind != "baseline"].iloc[0]  # the selection is among the variants, not the baselines
    assert res.best_strategy == chosen.strategy and res.best_metric == pytest.approx(chosen.metric_value)
    assert board[["psr", "dsr"]].notna().all().all()
    assert (board.dsr <= board.psr + 1e-12).all()  # deflating for the trials tried never helps
    # the ledger: 2 grid points on each of 2 ranges + 8 variants and baselines on the test range
    assert res.n_trials == 2 * 2 + 8 == res.info["selection"]["n_trials"]


def test_progress_counts_processed_over_total(walked):
    _, _, events = walked
    totals = {t for _, t, _ in events}
    assert totals == {len(events)}
    assert [d for d, _, _ in events] == list(range(1, len(events) + 1))
    # 2 ranges x (2 grid points + data + model) + pooled model + 8 test runs
    assert len(events) == 2 * 4 + 1 + 8


def test_no_training_label_touches_the_test_range(walked):
    res, store, _ = walked
    test_start = pd.Timestamp("2022-03-01", tz="UTC")
    trained = res.leaderboard.dropna(subset=["trained_until"])
    assert (pd.to_datetime(trained.trained_until, utc=True) <= test_start).all()
    assert len(trained) + 1 == 5  # every fitted variant says when it ended (t_strategy-2 merged into -1)
    from covcall.models import load_model, purge_rows
    from covcall.ranges import Range

    cands = store.read_candidates()
    for mid in res.leaderboard.model_id.dropna():
        model = load_model(store, mid)
        rows = purge_rows(cands, list(model.ranges))
        assert (rows.label_end <= test_start).all() and (rows.decision_time < test_start).all()
        assert model.trained_until <= test_start
        assert all(isinstance(r, Range) for r in model.ranges)


def test_walk_is_persisted_and_reopened_with_a_report(walked):
    res, store, _ = walked
    again = load_walk(store, res.walk_id)
    assert again.best_strategy == res.best_strategy
    assert list(again.leaderboard.strategy) == list(res.leaderboard.strategy)
    report = json.loads(open(f"{res.report_dir}/result.json", encoding="utf-8").read())
    assert report["best_strategy"] == res.best_strategy and report["metric"] == "sharpe"
    md = open(f"{res.report_dir}/report.md", encoding="utf-8").read()
    assert "t_train_frame-1" in md and "t_test_frame" in md and res.best_strategy in md
    # every test run is stored and its equity can be drawn against HODL
    eq = store.read_run_table("equity", [res.leaderboard.run_id.iloc[0]])
    assert {"covered_call", "hodl"} <= set(eq.columns) and len(eq) > 100


def test_same_spec_twice_from_empty_databases_gives_identical_results(walked, tmp_path):
    res, _, _ = walked
    again = walk(SPEC, store=Store(tmp_path / "other.duckdb"))
    cols = ["strategy", "metric_value", "sharpe", "total_return", "max_drawdown", "psr", "dsr", "model_id"]
    pd.testing.assert_frame_equal(res.leaderboard[cols], again.leaderboard[cols])


def test_overlapping_ranges_are_refused_naming_the_overlap(tmp_path):
    bad = {**SPEC, "rangeTest": {"startDate": "2021-06-01", "endDate": "2021-09-30"}}
    with pytest.raises(SpecError, match=r"overlaps the test range .* by 30 days"):
        walk(bad, store=Store(tmp_path / "x.duckdb"))


def test_ranking_rules_nan_last_ties_by_name():
    assert sorted(["b", "a", "c"], key=lambda n: rank_key({"a": 1.0, "b": 1.0, "c": float("nan")}[n], "sharpe", n)) \
        == ["a", "b", "c"]
    df = pd.DataFrame({"strategy": ["z", "y", "x"], "kind": "rule", "metric_value": [-0.3, float("nan"), -0.1],
                       "sharpe_per_bar": [0.1, float("nan"), 0.05], "n_bars": 100, "skew": 0.0, "kurtosis": 3.0,
                       **{k: 0.0 for k in ("sharpe", "sortino", "calmar", "cagr", "total_return", "max_drawdown",
                                           "win_rate", "excess_return")},
                       "trained_until": None, "frame": None, "run_id": "r", "model_id": None, "params": "{}"})
    out = _rank(df, "max_drawdown", SelectionStats(3, 3, 0.01, 0.0))  # a drawdown of -10 % beats -30 %; NaN last
    assert list(out.strategy) == ["x", "z", "y"]


def test_cli_walk_json_and_refusal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cli.duckdb"))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**SPEC, "grid": {"threshold": [0.1]}, "model": {"pooled": False}}))
    assert main(["walk", "--spec", str(spec), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    first_variant = next(r for r in out["strategies"] if r["kind"] != "baseline")
    assert out["metric"] == "sharpe" and out["best_strategy"] == first_variant["strategy"]
    assert {"best_strategy", "best_metric", "strategies"} <= set(out)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "rangeTest": {"startDate": "2021-12-01", "endDate": "2022-02-28"}}))
    assert main(["walk", "--spec", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "overlaps the test range" in err and err.count("\n") == 1
    assert main(["ranges", "validate", "--spec", str(bad)]) == 2
    assert "overlaps the test range" in capsys.readouterr().out
    # the walk saved before is still there
    assert main(["walks", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_toml_spec_with_unknown_metric_suggests(tmp_path):
    from covcall.walkspec import WalkSpec

    with pytest.raises(SpecError, match="did you mean 'sortino'"):
        WalkSpec.parse({**SPEC, "metric": "sortin"})


@pytest.mark.realdata
def test_walk_on_an_imported_real_btc_series(tmp_path):
    from pathlib import Path

    from covcall.market.csv_import import import_candles_csv

    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("../shared/data is not present")
    store = Store(tmp_path / "real.duckdb")
    import_candles_csv(store, shared / "BTCUSDT_1d.csv", "BTC", "1d")
    spec = {**SPEC, "source": "store", "name": "real",
            "rangeTrain": [{"startDate": "2020-10-01", "endDate": "2021-04-13", "note": "2021 bull"},
                           {"startDate": "2021-11-10", "endDate": "2022-11-21", "note": "2022 bear"},
                           {"startDate": "2023-03-20", "endDate": "2023-10-15", "note": "2023 range"}],
            "rangeTest": {"startDate": "2024-01-01", "endDate": "2024-06-30"}, "gap_days": 30}
    res = walk(spec, store=store)
    merged = sum(len([n for n in m.split(", ") if n]) for m in res.leaderboard.merged)
    assert len(res.leaderboard) + merged == 3 + 3 + 1 + 3
    hodl = res.leaderboard.set_index("strategy").loc["hodl"]
    # BTC went from about 42.3k to 62.7k over the test range (daily closes): HODL made roughly +48 %
    assert 0.40 < hodl.total_return < 0.56


def test_a_model_decision_can_be_explained(walked):
    from covcall.explain import explain_decision

    res, store, _ = walked
    row = res.leaderboard[res.leaderboard.kind == "model"].iloc[0]
    out = explain_decision(store, row.model_id, row.run_id, "2022-04-01")
    assert out["decision_time"] >= pd.Timestamp("2022-04-01", tz="UTC")
    contrib = out["contributions"]
    assert list(contrib.feature)[-1] == "bias"
    assert contrib.contribution.sum() == pytest.approx(out["best_prediction"], rel=1e-6, abs=1e-9)
    assert out["best_prediction"] == pytest.approx(out["candidates"].prediction.max())
    # the run sold at that decision exactly when the best prediction cleared the model threshold (0.0)
    ex = store.read_run_table("examples", [row.run_id])
    action = ex.set_index("decision_time").loc[out["decision_time"], "action"]
    assert (action == "SELL_CALL") == out["sells"]


def test_models_cli_lists_and_explains(walked, monkeypatch, capsys):
    res, store, _ = walked
    monkeypatch.setenv("DUCKDB_PATH", str(store.path))
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["model_id"] for m in listed} == set(res.leaderboard.model_id.dropna())
    row = res.leaderboard[res.leaderboard.kind == "model"].iloc[0]
    assert main(["models", "explain", row.model_id, "--run", row.run_id, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["contributions"][-1]["feature"] == "bias"
    assert main(["models", "show", "nope-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope-model" in err and err.count("\n") == 1
    typo = row.model_id[:-1]  # one character off a real id
    assert main(["models", "show", typo]) == 2
    assert f"did you mean '{row.model_id}'" in capsys.readouterr().err
    # --at must be a real time inside the run: never silently the first decision
    for at, why in (("garbage", "is not a date"), ("2023-02-30", "is not a day of the calendar"),
                    ("2000-01-01", "is outside it"), ("0", "is not a date")):
        assert main(["models", "explain", row.model_id, "--run", row.run_id, "--at", at]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: --at") or "outside" in err, err
        assert why in err, err


def test_ranges_validate_uses_the_walks_label_horizon(tmp_path, capsys):
    spec = tmp_path / "s.json"
    # 40 days separate the last training day from the test start: enough for gap_days 35, but the grid
    # may sell 45-day calls, whose labels would run into the test range
    test = {"startDate": "2022-02-10", "endDate": "2022-08-31"}
    spec.write_text(json.dumps({**SPEC, "rangeTest": test, "grid": {"dte_range": [[2, 10], [7, 45]]}}))
    assert main(["ranges", "validate", "--spec", str(spec)]) == 1
    out = capsys.readouterr().out
    assert "warning" in out and "45" in out
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({**SPEC, "rangeTest": test, "grid": {"dte_range": [[7, 45]]}, "strict": True}))
    assert main(["ranges", "validate", "--spec", str(strict)]) == 2
    with pytest.raises(SpecError, match="45"):
        walk(json.loads(strict.read_text()), store=Store(tmp_path / "x.duckdb"))
