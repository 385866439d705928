"""Deleting and renaming runs and range sets: what goes is listed first, unknown names are refused with nothing
changed, and the pages (Backtest, Ranges) do the same through the same code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_support import errors, no_exception, open_page

from covcall.backtest import run_backtest
from covcall.cli import main
from covcall.dataset import delete_runs
from covcall.errors import CovcallError
from covcall.store import Store

CFG = {"underlying": "BTC", "timeframe": "1d", "start": "2023-01-01", "end": "2023-02-28"}


def two_runs(store: Store, export_dir: Path | None = None) -> tuple[str, str]:
    a = run_backtest(CFG, store=store, export_dir=export_dir).run_id
    b = run_backtest({**CFG, "underlying": "ETH"}, store=store).run_id
    return a, b


def test_delete_lists_first_then_removes_every_row_and_the_exports(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.duckdb")
    a, b = two_runs(store, tmp_path / "exports")
    plan = store.run_footprint([a]).iloc[0]
    assert plan["examples"] > 0 and plan["candidates"] > 0 and plan["trades"] > 0 and plan["equity"] > 0
    csv = Path(plan["export_csv"])
    assert csv.is_file()
    done = delete_runs(store, [a], delete_exports=True)
    assert done["runs"] == 1 and done["rows"]["examples"] == plan["examples"]
    assert not csv.exists() and str(csv) in done["export_files_removed"]
    assert list(store.list_runs()["run_id"]) == [b]
    assert len(store.read_candidates([a])) == 0 and len(store.read_candidates([b])) > 0
    with pytest.raises(CovcallError, match=f"no run '{a}'"):
        store.run_footprint([a])  # gone: listing it again is refused, not an empty plan


def test_unknown_run_or_set_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.duckdb")
    a, b = two_runs(store)
    with pytest.raises(CovcallError, match="no run .*; nothing was changed"):
        store.delete_runs([a, b[:-1] + "x"])
    assert len(store.list_runs()) == 2 and len(store.read_candidates([a])) > 0
    store.save_range_set("bull", "{}")
    store.save_range_set("bear", '{"x": 1}')
    with pytest.raises(CovcallError, match="did you mean 'bull'"):
        store.delete_range_set("bul")
    with pytest.raises(CovcallError, match="exists already"):
        store.rename_range_set("bull", "bear")
    assert store.list_range_sets() == ["bear", "bull"] and store.load_range_set("bear") == '{"x": 1}'
    store.rename_range_set("bull", "bull-2021")
    assert store.list_range_sets() == ["bear", "bull-2021"] and store.load_range_set("bull-2021") == "{}"


def test_cli_runs_delete_needs_yes_and_rename(db: Path, capsys) -> None:
    store = Store(db)
    a, b = two_runs(store)
    assert main(["runs", "--delete", a, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["deleted"] is False and out["would_delete"][0]["run_id"] == a
    assert len(store.list_runs()) == 2
    assert main(["runs", "--delete", "nope"]) == 2
    assert "error: no run 'nope'" in capsys.readouterr().err
    assert main(["runs", "--delete", a, "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 1
    assert main(["runs"]) == 0  # a run without a label lists with an empty label, not "NaN"
    listed = capsys.readouterr().out
    assert b in listed and "NaN" not in listed and "None" not in listed
    assert main(["runs", "--rename", b, "--label", "ETH Q1"]) == 0
    capsys.readouterr()
    assert store.list_runs()["label"].tolist() == ["ETH Q1"]
    assert main(["ranges", "delete", "missing"]) == 2


def test_backtest_page_deletes_after_confirmation_and_renames(app_db) -> None:
    store = Store(app_db)
    a, b = two_runs(store)
    at = open_page("pages/backtest.py")
    at.multiselect(key="backtest_delete_pick").set_value([a]).run()
    no_exception(at)
    plan = next(d.value for d in at.dataframe if "candidates" in d.value.columns and "walks" in d.value.columns)
    assert list(plan["run_id"]) == [a]
    assert at.button(key="backtest_delete").disabled  # not before "Yes, delete 1 run"
    at.checkbox(key="backtest_delete_sure").check().run()
    at.button(key="backtest_delete").click().run()
    no_exception(at)
    assert not errors(at)
    assert list(store.list_runs()["run_id"]) == [b]
    assert any("Deleted 1 run and" in s.value for s in at.success)
    at.selectbox(key="backtest_rename_pick").set_value(b).run()
    at.text_input(key="backtest_rename_to").set_value("ETH first quarter").run()
    at.button(key="backtest_rename").click().run()
    assert store.list_runs()["label"].tolist() == ["ETH first quarter"]


def test_ranges_page_renames_and_deletes_a_saved_set(app_db) -> None:
    store = Store(app_db)
    store.save_range_set("bull", "{}")
    store.save_range_set("bear", "{}")
    at = open_page("pages/ranges.py")
    at.selectbox(key="ranges_load_pick").set_value("bull").run()
    at.text_input(key="ranges_rename_to").set_value("bear").run()
    at.button(key="ranges_rename").click().run()
    assert any("exists already" in e for e in errors(at)) and store.list_range_sets() == ["bear", "bull"]
    at.text_input(key="ranges_rename_to").set_value("bull-2021").run()
    at.button(key="ranges_rename").click().run()
    assert store.list_range_sets() == ["bear", "bull-2021"]
    at.selectbox(key="ranges_load_pick").set_value("bear").run()
    assert at.button(key="ranges_delete").disabled
    at.checkbox(key="ranges_delete_sure").check().run()
    at.button(key="ranges_delete").click().run()
    no_exception(at)
    assert store.list_range_sets() == ["bull-2021"]
    assert any("Deleted range set 'bear'" in s.value for s in at.success), [s.value for s in at.success]
