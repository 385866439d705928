"""LLM-ready exports: chat records per decision and preference pairs from counterfactual candidate labels."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from covcall.backtest import run_backtest
from covcall.cli import main
from covcall.store import DatasetFilter, Store


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    db = tmp_path_factory.mktemp("llm") / "cc.duckdb"
    store = Store(db)
    for u in ("BTC", "ETH"):
        run_backtest({"underlying": u, "start": "2023-01-01", "end": "2023-04-30", "exit_style": "tp_and_roll"},
                     store=store)
    return db


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_chat_jsonl_one_record_per_decision_roles_in_order(filled, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(filled))
    out = tmp_path / "chat.jsonl"
    assert main(["export", "--format", "chat-jsonl", "--underlying", "BTC", "--out", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    recs = _lines(out)
    store = Store(filled)
    n_examples = store.count_rows("examples", DatasetFilter(underlyings=("BTC",)))
    assert shown["rows"] == len(recs) == n_examples > 0
    for r in recs:
        assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) and m["content"] for m in r["messages"])
        assert r["metadata"]["underlying"] == "BTC"
        answer = r["messages"][2]["content"]
        assert answer.startswith(r["metadata"]["action"])
        if r["metadata"]["action"] == "SELL_CALL":
            assert r["metadata"]["instrument"] in answer and r["metadata"]["instrument"] in r["messages"][1]["content"]
    # the state is the decision's, never later: the user turn names the decision time
    first = recs[0]
    t = pd.Timestamp(first["metadata"]["decision_time"])
    assert f"Time: {t:%Y-%m-%d %H:%M} UTC" in first["messages"][1]["content"]


def test_preference_pairs_best_vs_worst_realised(filled, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(filled))
    out = tmp_path / "pref.jsonl"
    assert main(["export", "--format", "preference-jsonl", "--out", str(out)]) == 0
    assert "preference pairs" in capsys.readouterr().out
    recs = _lines(out)
    cands = Store(filled).page_rows("candidates", DatasetFilter(), limit=10**9)
    per = cands.dropna(subset=["pnl_vs_hodl_pct"]).groupby(["run_id", "decision_time"])["pnl_vs_hodl_pct"]
    expected = int(((per.count() >= 2) & (per.max() > per.min())).sum())
    assert len(recs) == expected > 0
    for r in recs:
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert [m["role"] for m in r["chosen"]] == ["assistant"] == [m["role"] for m in r["rejected"]]
        meta = r["metadata"]
        assert meta["chosen_pnl_vs_hodl_pct"] > meta["rejected_pnl_vs_hodl_pct"]
        assert meta["chosen_instrument"] in r["chosen"][0]["content"]
        assert meta["rejected_instrument"] in r["rejected"][0]["content"]
        group = cands[(cands["run_id"] == meta["run_id"])
                      & (cands["decision_time"] == pd.Timestamp(meta["decision_time"]))]
        assert meta["chosen_pnl_vs_hodl_pct"] == pytest.approx(group["pnl_vs_hodl_pct"].max())
        assert meta["rejected_pnl_vs_hodl_pct"] == pytest.approx(group["pnl_vs_hodl_pct"].min())


def test_a_format_typo_suggests_and_writes_nothing(filled, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(filled))
    assert main(["export", "--format", "chat-jsnl", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "did you mean 'chat-jsonl'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
