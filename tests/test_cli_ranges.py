"""`covcall ranges ...` end to end through covcall.cli.main: exit codes, messages, JSON and the store."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from covcall.cli import main
from covcall.cli.ranges import max_label_days_from_spec


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "covcall.duckdb"))


def spec(tmp_path: Path, name: str = "demo", **extra: object) -> str:
    d = {
        "name": name, "underlying": "BTC", "timeframe": "1d", "source": "synthetic",
        "rangeTrain": [{"startDate": "2021-01-01", "endDate": "2021-06-30", "note": "bull"},
                       {"startDate": "2022-01-01", "endDate": "2022-06-30"}],
        "rangeTest": {"startDate": "2023-01-01", "endDate": "2023-06-30"},
        "gap_days": 30, "metric": "sharpe", "seed": 7,
    }
    d.update(extra)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(d))
    return str(path)


def test_validate_clean_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ranges", "validate", "--spec", spec(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: demo: 2 training ranges, test 2023-01-01 .. 2023-06-30")
    assert "labels up to 30 days ahead" in out


def test_validate_warning_exits_1_and_strict_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = spec(tmp_path, rangeTrain=[{"startDate": "2022-06-01", "endDate": "2022-12-21"}])
    assert main(["ranges", "validate", "--spec", path]) == 1
    out = capsys.readouterr().out
    assert out.startswith("warning: train range 1 (2022-06-01 .. 2022-12-21) ends 10 days before")
    assert "labels leak 20 days" in out
    assert main(["ranges", "validate", "--spec", path, "--strict"]) == 2
    assert capsys.readouterr().out.startswith("error: train range 1")
    # a longer label horizon from the flag (or the spec) raises the required gap
    assert main(["ranges", "validate", "--spec", path, "--max-dte", "45", "--json"]) == 1
    (issue,) = json.loads(capsys.readouterr().out)
    assert issue["level"] == "warning" and issue["code"] == "gap_too_short"
    assert "needs a gap of 45 days" in issue["message"]


def test_validate_errors_exit_2_with_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = spec(tmp_path, rangeTrain=[{"startDate": "2022-10-01", "endDate": "2023-01-31"},
                                      {"startDate": "2022-06-30", "endDate": "2022-01-01"}])
    assert main(["ranges", "validate", "--spec", path, "--json"]) == 2
    issues = json.loads(capsys.readouterr().out)
    assert [i["level"] for i in issues] == ["error", "error"]
    assert {i["code"] for i in issues} == {"train_overlaps_test", "start_after_end"}
    assert any("by 31 days (2023-01-01 .. 2023-01-31)" in i["message"] for i in issues)


def test_max_label_days_from_spec() -> None:
    assert max_label_days_from_spec({}) == 30.0
    assert max_label_days_from_spec({"max_dte_days": 14}) == 14.0
    assert max_label_days_from_spec({"dte_max": 60}) == 60.0
    assert max_label_days_from_spec({"strategy": {"dte_range": [3, 21]}}) == 21.0


def test_bad_date_is_one_error_line_and_saved_set_survives(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ranges", "save", "--spec", spec(tmp_path), "--name", "keep"]) == 0
    assert "saved range set keep" in capsys.readouterr().out
    bad = spec(tmp_path, name="keep2", rangeTrain=[{"startDate": "2021-01-01", "endDate": "2021-02-01"},
                                                   {"startDate": "2021-03-01", "endDate": "2021-04-01"},
                                                   {"startDate": "2021-05-01", "endDate": "2021-13-01"}])
    for argv in (["ranges", "save", "--spec", bad, "--name", "keep"], ["ranges", "validate", "--spec", bad]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err == "error: rangeTrain[2].endDate: '2021-13-01' is not a day of the calendar; use YYYY-MM-DD (e.g. 2024-01-31) or an ISO timestamp\n"
    assert main(["ranges", "list", "--json"]) == 0
    (saved,) = json.loads(capsys.readouterr().out)
    assert saved["name"] == "keep" and saved["train"][0] == {"start": "2021-01-01", "end": "2021-06-30",
                                                             "note": "bull"}


def test_save_refuses_leaking_set_and_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leaking = spec(tmp_path, name="leak", rangeTrain=[{"startDate": "2022-10-01", "endDate": "2023-01-31"}])
    assert main(["ranges", "save", "--spec", leaking]) == 2
    assert "range set 'leak' not saved: train range 1" in capsys.readouterr().err
    assert main(["ranges", "list"]) == 0
    assert "no saved range sets" in capsys.readouterr().out
    assert main(["ranges", "save", "--spec", spec(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["ranges", "list"]) == 0
    assert capsys.readouterr().out == "demo: 2 training ranges, test 2023-01-01 .. 2023-06-30, gap 30 days\n"
    assert main(["ranges", "show", "dem"]) == 2
    assert "no range set named 'dem' (did you mean 'demo'?)" in capsys.readouterr().err
    assert main(["ranges", "show", "btc-regimes"]) == 0
    assert "train 1   2020-10-01 .. 2021-04-13   195 days" in capsys.readouterr().out


def test_missing_spec_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ranges", "validate", "--spec", str(tmp_path / "nope.json")]) == 2
    assert "spec file" in capsys.readouterr().err


def test_rolling_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["ranges", "rolling", "--start", "2022-01-01", "--train-days", "90", "--test-days", "30",
            "--step-days", "30", "--gap-days", "10", "--count", "2"]
    assert main([*argv, "--json"]) == 0
    wins = json.loads(capsys.readouterr().out)
    assert [(w["train"][0]["start"], w["test"]["start"], w["test"]["end"]) for w in wins] == [
        ("2022-01-01", "2022-04-11", "2022-05-10"), ("2022-01-31", "2022-05-11", "2022-06-09")]
    assert main(argv) == 0
    assert "rolling-2  (gap 10 days)" in capsys.readouterr().out
    assert main(["ranges", "rolling", "--start", "2022-02-30", "--train-days", "9", "--test-days", "3",
                 "--step-days", "3", "--count", "1"]) == 2
    assert "start: '2022-02-30' is not a day of the calendar; use YYYY-MM-DD" in capsys.readouterr().err


def test_presets_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ranges", "presets", "--json"]) == 0
    sets = json.loads(capsys.readouterr().out)
    assert sets["btc-regimes"]["test"] == {"start": "2024-01-01", "end": "2024-06-30",
                                           "note": "ETF launch and halving half-year"}


def _fake_market(monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    r = np.r_[np.full(60, 0.01), np.tile([0.001, -0.001], 30), np.full(60, -0.01)]
    ts = pd.date_range("2022-01-01", periods=181, freq="D", tz="UTC")
    candles = pd.DataFrame({"ts": ts, "close": 100 * np.exp(np.r_[0.0, np.cumsum(r)])})

    def load_candles(underlying, timeframe, start, end, *, source="synthetic", store=None, seed=7,
                     exchange="binance"):
        calls.append((underlying, timeframe, start, end, source, seed))
        return candles

    fake = types.ModuleType("covcall.market")
    fake.load_candles = load_candles  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "covcall.market", fake)


def test_suggest_proposes_one_range_per_regime_and_saves(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    calls: list = []
    _fake_market(monkeypatch, calls)
    argv = ["ranges", "suggest", "--underlying", "BTC", "--timeframe", "1d", "--test-start", "2022-07-01",
            "--test-end", "2022-09-30", "--gap-days", "0", "--save", "regimes", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert calls == [("BTC", "1d", "2019-01-01", "2022-09-30", "synthetic", 7)]
    assert [t["note"].split(":")[0] for t in out["train"]] == ["bull", "chop", "dump"]
    assert out["test"]["start"] == "2022-07-01" and out["name"] == "regimes"
    assert main(["ranges", "list"]) == 0
    assert capsys.readouterr().out.startswith("regimes: 3 training ranges")
    assert main(["ranges", "suggest", "--test-start", "2022-07-01"]) == 2
    assert "give both --test-start and --test-end" in capsys.readouterr().err
