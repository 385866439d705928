"""AppTest: the Dataset page counts, pages, filters, charts and exports rows straight from DuckDB."""

from __future__ import annotations

from datetime import date

import pytest
from apptest_support import errors, no_exception, open_page

from covcall.batch import run_batch
from covcall.store import DatasetFilter, Store

PAGE = "pages/dataset.py"


@pytest.fixture
def db(app_db):
    path = app_db
    run_batch({"name": "t", "underlyings": ["BTC", "ETH"], "timeframes": ["1d"],
               "windows": [{"start": "2024-01-01", "end": "2024-04-30"}], "exit_styles": ["hold_to_expiry"],
               "base": {"threshold": 0.6}}, store=Store(path))
    return path


def row_count_text(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("### ") and m.value.endswith("rows"))


def test_counts_filters_and_table_switch_change_the_row_count(db):
    store = Store(db)
    at = open_page(PAGE)
    no_exception(at)
    total = store.count_rows("examples", DatasetFilter())
    assert row_count_text(at) == f"### {total:,} rows"
    at.multiselect(key="dataset_actions").set_value(["SELL_CALL"]).run()
    sells = store.count_rows("examples", DatasetFilter(actions=("SELL_CALL",)))
    assert 0 < sells < total
    assert row_count_text(at) == f"### {sells:,} rows"
    at.multiselect(key="dataset_underlyings").set_value(["ETH"]).run()
    eth_sells = store.count_rows("examples", DatasetFilter(actions=("SELL_CALL",), underlyings=("ETH",)))
    assert row_count_text(at) == f"### {eth_sells:,} rows"
    at.radio(key="dataset_table").set_value("Candidates").run()
    cands = store.count_rows("candidates", DatasetFilter(underlyings=("ETH",)))
    assert row_count_text(at) == f"### {cands:,} rows"
    assert not errors(at)


def test_table_is_paged_not_loaded_whole(db):
    store = Store(db)
    at = open_page(PAGE)
    at.radio(key="dataset_table").set_value("Candidates").run()
    at.selectbox(key="dataset_page_size").set_value(25).run()
    shown = next(d.value for d in at.dataframe if "strike" in d.value.columns)
    assert len(shown) == 25
    at.number_input(key="dataset_page").set_value(2).run()
    page2 = next(d.value for d in at.dataframe if "strike" in d.value.columns)
    expected = store.page_rows("candidates", DatasetFilter(), limit=25, offset=25)
    assert list(page2["strike"]) == list(expected["strike"])


def test_run_pick_date_and_delta_filters(db):
    store = Store(db)
    runs = store.list_runs()
    btc = runs[runs["underlying"] == "BTC"]["run_id"].iloc[0]
    at = open_page(PAGE)
    at.radio(key="dataset_scope").set_value("Pick runs").run()
    at.multiselect(key="dataset_runs").set_value([btc]).run()
    whole = store.count_rows("examples", DatasetFilter(run_ids=(btc,)))
    assert row_count_text(at) == f"### {whole:,} rows"
    at.checkbox(key="dataset_use_dates").check().run()
    at.date_input(key="dataset_start").set_value(date(2024, 2, 1))
    at.date_input(key="dataset_end").set_value(date(2024, 2, 29)).run()
    n = store.count_rows("examples", DatasetFilter(run_ids=(btc,), start=date(2024, 2, 1), end=date(2024, 3, 1)))
    assert row_count_text(at) == f"### {n:,} rows" and 0 < n < whole
    at.slider(key="dataset_delta").set_value((0.15, 1.0)).run()
    n = store.count_rows("examples", DatasetFilter(run_ids=(btc,), start=date(2024, 2, 1), end=date(2024, 3, 1),
                                                   delta_min=0.15))
    assert row_count_text(at) == f"### {n:,} rows"
    assert len(at.get("plotly_chart")) >= 3


def test_reversed_date_filter_is_a_clear_error(db):
    at = open_page(PAGE)
    at.checkbox(key="dataset_use_dates").check().run()
    at.date_input(key="dataset_start").set_value(date(2024, 4, 1))
    at.date_input(key="dataset_end").set_value(date(2024, 2, 1)).run()
    no_exception(at)
    assert errors(at) == ["date filter: from 2024-04-01 is after to 2024-02-01; swap them"]


def test_downloads_are_the_filtered_selection_in_three_formats(db):
    import io
    import json

    import pandas as pd
    from apptest_support import ui

    at = open_page(PAGE)
    at.multiselect(key="dataset_actions").set_value(["SELL_CALL"]).run()
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download CSV", "Download JSONL", "Download PARQUET", "Download chat JSONL (LLM)"]
    flt = DatasetFilter(actions=("SELL_CALL",))
    n = Store(db).count_rows("examples", flt)
    chat = ui.copy_rows_bytes("examples", flt, "chat-jsonl").decode().strip().splitlines()
    assert len(chat) == n and json.loads(chat[0])["messages"][2]["content"].startswith("SELL_CALL")
    csv = pd.read_csv(io.BytesIO(ui.copy_rows_bytes("examples", flt, "csv")))
    assert len(csv) == n and set(csv["action"]) == {"SELL_CALL"}
    lines = ui.copy_rows_bytes("examples", flt, "jsonl").decode().strip().splitlines()
    assert len(lines) == n and isinstance(json.loads(lines[0])["extra"], dict)
    assert len(pd.read_parquet(io.BytesIO(ui.copy_rows_bytes("examples", flt, "parquet")))) == n


def test_summary_is_comparable_across_coins_and_defines_its_terms(app_db):
    from apptest_support import no_exception, open_page

    from covcall.batch import run_batch
    from covcall.dataset import COLUMN_HELP

    store = Store(app_db)
    run_batch({"name": "two", "underlyings": ["BTC", "ETH"], "windows": [{"start": "2023-01-01",
                                                                       "end": "2023-03-31"}]}, store=store)
    from covcall.store import DatasetFilter

    s = store.dataset_summary("examples", DatasetFilter())
    ex = store.read_run_table("examples", list(store.list_runs()["run_id"]))
    sold = ex[ex["action"] == "SELL_CALL"]
    assert s["win_rate"] == pytest.approx((sold["pnl_vs_hodl"] > 0).mean())
    assert s["mean_reward_pct"] == pytest.approx((ex["reward"] / ex["spot"]).mean())
    assert s["total_reward"] is None  # BTC and ETH dollars are not added together
    assert s["total_reward_by"] == pytest.approx(ex.groupby("underlying")["reward"].sum().to_dict())
    at = open_page("pages/dataset.py")
    no_exception(at)
    labels = {m.label: m for m in at.metric}
    assert "Win rate vs HODL" in labels and "pnl_vs_hodl > 0" in (labels["Win rate vs HODL"].help or "")
    total = next(m.value for m in at.markdown if m.value.startswith("**Total reward**"))
    assert "per underlying): BTC $" in total and " · ETH $" in total and "…" not in total
    assert "reward" in COLUMN_HELP and "pnl_vs_hodl" in COLUMN_HELP
