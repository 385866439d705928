"""Shared helpers for the dashboard's AppTest suites: a fresh app on a temp database, element lookups."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the dashboard's modules (ui.py) live at the repo top level
    sys.path.insert(0, str(ROOT))

import ui  # noqa: E402

__all__ = ["ROOT", "APP", "ui", "fresh_env", "open_page", "button", "by_label", "metric_value", "texts", "errors",
           "no_exception"]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def fresh_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the dashboard at a new DuckDB file in tmp_path and forget every cache."""
    db = tmp_path / "covcall.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(db))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(tmp_path / "exports"))
    monkeypatch.setenv("SAVE_TRAINING_DATA", "false")
    monkeypatch.chdir(ROOT)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:  # helpers called outside an app run keep settings in the bare-mode session state
        st.session_state.clear()
    except Exception:
        pass
    return db


def open_page(page: str | None = None) -> AppTest:
    """Run the app (Home), then switch to `page` (e.g. 'pages/backtest.py') and run it."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, key: str) -> Any:
    return at.button(key=key)


def by_label(elements: Any, label: str) -> Any:
    for el in elements:
        if el.label == label:
            return el
    raise AssertionError(f"no element labelled {label!r}; have {[e.label for e in elements]}")


def metric_value(at: AppTest, label: str) -> str:
    return by_label(at.metric, label).value


def texts(at: AppTest) -> str:
    """All markdown, caption and text output of the page, joined (for 'shows X' assertions)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [t.value for t in at.text]
    return "\n".join(str(p) for p in parts)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
