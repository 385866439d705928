"""The dashboard keeps working while a CLI batch writes to the same DuckDB file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import streamlit as st
from apptest_support import errors, fresh_env, metric_value, no_exception, open_page

from covcall.store import Store


def test_home_and_dataset_pages_read_while_a_cli_batch_writes(monkeypatch, tmp_path):
    db = fresh_env(monkeypatch, tmp_path)
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps({
        "name": "bg", "underlyings": ["BTC", "ETH"], "timeframes": ["1d", "4h"],
        "windows": [{"start": "2022-01-01", "end": "2022-03-31"}, {"start": "2022-04-01", "end": "2022-06-30"}],
        "exit_styles": ["hold_to_expiry", "tp_and_roll"]}))
    exe = Path(sys.executable).parent / "covcall"
    proc = subprocess.Popen([str(exe), "batch", "--spec", str(spec), "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "DUCKDB_PATH": str(db)})
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            st.cache_data.clear()  # read the file afresh each time, as a user pressing R would
            at = open_page()
            no_exception(at)
            assert not errors(at)
            seen.append(int(metric_value(at, "Runs").replace(",", "")))
            at.switch_page("pages/dataset.py")
            at.run()
            no_exception(at)
            assert not errors(at)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["ok"] == 16
    assert len(seen) >= 2 and seen == sorted(seen)  # the pages saw the batch's runs arrive
    assert Store(db).counts()["runs"] == 16  # and no row was lost
    st.cache_data.clear()
    assert metric_value(open_page(), "Runs") == "16"
