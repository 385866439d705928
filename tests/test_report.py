"""The performance report: hand-checked numbers on a tiny run, the HTML file, the CLI and the Backtest page."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from covcall.cli import main
from covcall.report import drawdown_duration_days, exposure, performance_report, report_html


def _equity() -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=62, freq="D", tz="UTC")
    spot = np.linspace(100.0, 130.0, 62)
    cc = spot + np.r_[np.zeros(31), np.full(31, 5.0)]  # the option legs added $5 in February
    return pd.DataFrame({"ts": ts, "spot": spot, "covered_call": cc, "hodl": spot})


def _trades() -> pd.DataFrame:
    t = pd.Timestamp("2024-01-01", tz="UTC")
    rows = [  # entry day, exit day, option PnL vs HODL, premium, fee, exit reason, paid at exit
        (0, 7, 3.0, 3.5, 0.1, "expired_otm", 0.0), (7, 14, -2.0, 2.0, 0.1, "settled_itm", 4.0),
        (14, 21, -1.0, 2.5, 0.1, "settled_itm", 3.5), (21, 28, 5.0, 5.5, 0.1, "expired_otm", 0.0)]
    return pd.DataFrame([{"entry_time": t + pd.Timedelta(days=a), "exit_time": t + pd.Timedelta(days=b),
                          "pnl_vs_hodl": p, "premium_usd": pr, "fee_usd": f, "exit_reason": r, "exit_usd": x}
                         for a, b, p, pr, f, r, x in rows])


def test_the_report_numbers_by_hand() -> None:
    rep = performance_report(_equity(), _trades(), "1d", 1.0)
    s = rep.summary.set_index("metric")
    assert s.loc["total return", "strategy"] == pytest.approx(135.0 / 100.0 - 1)
    assert s.loc["total return", "hodl"] == pytest.approx(0.30)
    assert s.loc["trades", "strategy"] == 4
    assert s.loc["win rate vs HODL", "strategy"] == pytest.approx(0.5)
    assert s.loc["profit factor (option legs)", "strategy"] == pytest.approx(8.0 / 3.0)
    assert s.loc["average trade (option PnL vs HODL)", "strategy"] == pytest.approx(1.25)
    assert s.loc["median trade", "strategy"] == pytest.approx(1.0)
    assert s.loc["longest losing streak", "strategy"] == 2
    assert s.loc["premium collected", "strategy"] == pytest.approx(13.5)
    assert s.loc["premium collected, % of notional", "strategy"] == pytest.approx(0.135)
    assert s.loc["assignments (settled in the money)", "strategy"] == 2
    assert s.loc["assignment cost (paid at settlement)", "strategy"] == pytest.approx(7.5)
    assert s.loc["fees", "strategy"] == pytest.approx(0.4)
    assert s.loc["exposure (a call open)", "strategy"] == pytest.approx(28 / 62)
    assert s.loc["longest drawdown", "hodl"] == 0.0  # a straight line up never draws down
    assert math.isnan(s.loc["trades", "hodl"])
    # monthly returns chain to the total; the excess is February's $5
    m = rep.monthly
    assert (1 + m.loc[2024, ["Jan", "Feb", "Mar"]]).prod() - 1 == pytest.approx(0.35)
    assert rep.monthly_excess.loc[2024, "Jan"] == pytest.approx(0.0, abs=1e-12)
    assert list(rep.trade_pnl_pct) == pytest.approx([0.03, -0.02, -0.01, 0.05])


def test_drawdown_duration_and_exposure_edges() -> None:
    idx = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    assert drawdown_duration_days(pd.Series([1.0, 0.9, 0.8, 0.85, 0.9], index=idx)) == 4.0  # never recovered
    assert exposure(idx, pd.DataFrame(columns=["entry_time", "exit_time"])) == 0.0


def test_the_html_report_is_one_self_contained_file() -> None:
    rep = performance_report(_equity(), _trades(), "1d", 1.0)
    page = report_html(rep, _equity(), title="BTC <test>", subtitle="run x")
    assert page.startswith("<!doctype html>") and "BTC &lt;test&gt;" in page
    assert "<table>" in page and "profit factor (option legs)" in page and "$13.50" in page
    assert page.count('class="plotly-graph-div"') == 4
    import re

    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js is inside, not fetched: works offline
    assert len(page) > 3_000_000


def test_cli_report_writes_html_and_json(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DUCKDB_PATH", str(tmp_path / "cc.duckdb"))
    monkeypatch.setenv("TRAINING_DATA_DIR", str(tmp_path / "exports"))
    assert main(["backtest", "--start", "2023-01-01", "--end", "2023-06-30", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    out = tmp_path / "r" / "report.html"
    assert main(["report", run["run_id"], "--out", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    summary = {r["metric"]: r for r in shown["summary"]}
    assert summary["total return"]["strategy"] == pytest.approx(run["metrics"]["total_return"])
    assert summary["Sharpe"]["hodl"] == pytest.approx(run["metrics"]["hodl_sharpe"])
    assert summary["trades"]["strategy"] == run["metrics"]["n_trades"]
    assert out.read_text().count('class="plotly-graph-div"') == 4 and shown["path"] == str(out)
    assert main(["report", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    assert main(["report", run["run_id"], "--out", "/dev/null"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_the_backtest_page_shows_the_report_and_offers_the_html(app_db) -> None:
    from apptest_support import no_exception, open_page

    at = open_page("pages/backtest.py")
    at.date_input(key="backtest_start").set_value(pd.Timestamp("2023-01-01").date())
    at.date_input(key="backtest_end").set_value(pd.Timestamp("2023-04-30").date()).run()
    at.button(key="backtest_run").click().run()
    no_exception(at)
    table = next(d.value for d in at.dataframe if "covered call" in d.value.columns)
    assert {"Sharpe", "profit factor (option legs)", "longest drawdown"} <= set(table["metric"])
    assert "Download the report (HTML, charts included)" in [b.label for b in at.get("download_button")]
