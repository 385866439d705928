"""Leaderboard: walk every variant and baseline over a held-out test range, rank them, inspect the models."""

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

import ui
from covcall.config import run_defaults
from covcall.errors import CovcallError
from covcall.ranges import RangeSet, load_range_set
from covcall.walker import train, walk
from covcall.walkspec import BASELINES, DEFAULT_GRID, METRICS, WalkSpec

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()
ss = st.session_state

GRIDS: dict[str, dict[str, list[Any]]] = {
    "quick (4 variants)": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "threshold": [0.10, 0.40]},
    "full (default grid)": dict(DEFAULT_GRID),
}
ui.remember("leaderboard_range_mode", "Saved range set")
ui.remember("leaderboard_underlying", "BTC")
ui.remember("leaderboard_timeframe", "1d")
ui.remember("leaderboard_source", settings.data_source)
ui.remember("leaderboard_metric", "sharpe")
ui.remember("leaderboard_baselines", list(BASELINES))
ui.remember("leaderboard_models", True)
ui.remember("leaderboard_grid", next(iter(GRIDS)))
ui.remember("leaderboard_name", "walk")
ui.remember("leaderboard_train_start", date(2022, 1, 1))
ui.remember("leaderboard_train_end", date(2022, 12, 31))
ui.remember("leaderboard_test_start", date(2023, 3, 1))
ui.remember("leaderboard_test_end", date(2023, 8, 31))
ui.remember("leaderboard_gap_days", 45)
ui.remember("leaderboard_walk_id", None)
ui.remember("leaderboard_folds", "One split")
ui.remember("leaderboard_roll_start", date(2021, 1, 1))
ui.remember("leaderboard_roll_train_days", 240)
ui.remember("leaderboard_roll_test_days", 90)
ui.remember("leaderboard_roll_count", 4)
ui.remember("leaderboard_tuner", "grid")
ui.remember("leaderboard_budget", 24)
ui.remember("leaderboard_final", False)
ui.remember("leaderboard_final_start", date(2024, 1, 1))
ui.remember("leaderboard_final_end", date(2024, 6, 30))
ui.remember("leaderboard_top_n", 3)
ui.query_state("leaderboard", {"walk": ("leaderboard_walk_id", str, lambda v: len(v) < 200)})


def range_part() -> RangeSet | None:
    """The range set the walk will use, from a saved set or from four dates."""
    st.radio("Ranges", ["Saved range set", "Enter dates"], key="leaderboard_range_mode", horizontal=True)
    if ss["leaderboard_range_mode"] == "Saved range set":
        names = ui.range_set_names(db)
        if not names:
            st.info("No saved range sets: make one on the Ranges page, generate demo data, or enter dates.")
            return None
        st.selectbox("Range set", names, key="leaderboard_range_set")
        try:
            rs = load_range_set(store, ss["leaderboard_range_set"])
        except CovcallError as err:
            st.error(str(err))
            return None
        st.dataframe(pd.DataFrame(
            [{"range": f"train {i}", "dates": str(r), "days": r.days, "note": r.note}
             for i, r in enumerate(rs.train, start=1)]
            + [{"range": "test", "dates": str(rs.test), "days": rs.test.days, "note": rs.test.note}]),
            hide_index=True, width="stretch")
        st.caption(f"gap {rs.gap_days} days{' · strict' if rs.strict else ''}")
        return rs
    d1, d2, d3, d4, d5 = st.columns(5)
    d1.date_input("Train start", format=ui.DATE_FORMAT, key="leaderboard_train_start")
    d2.date_input("Train end", format=ui.DATE_FORMAT, key="leaderboard_train_end")
    d3.date_input("Test start", format=ui.DATE_FORMAT, key="leaderboard_test_start")
    d4.date_input("Test end", format=ui.DATE_FORMAT, key="leaderboard_test_end")
    d5.number_input("Gap days", 0, 365, key="leaderboard_gap_days")
    return RangeSet.from_dict({
        "name": ss["leaderboard_name"],
        "train": [{"start": ss["leaderboard_train_start"].isoformat(), "end": ss["leaderboard_train_end"].isoformat()}],
        "test": {"start": ss["leaderboard_test_start"].isoformat(), "end": ss["leaderboard_test_end"].isoformat()},
        "gap_days": int(ss["leaderboard_gap_days"])})


def selection_part() -> None:
    """Walk-forward folds, the tuner and the final holdout."""
    with st.expander("Walk-forward folds, tuner and final holdout", expanded=ss["leaderboard_folds"] != "One split"
                     or ss["leaderboard_final"] or ss["leaderboard_tuner"] != "grid"):
        st.radio("Folds", ["One split", "Rolling folds"], key="leaderboard_folds", horizontal=True,
                 help="Rolling folds: each fold tunes and trains on its own window and tests on the next one; "
                      "the ranking uses every family's out-of-sample returns stitched across the folds")
        if ss["leaderboard_folds"] == "Rolling folds":
            r = st.columns(4)
            r[0].date_input("First training day", format=ui.DATE_FORMAT, key="leaderboard_roll_start")
            r[1].number_input("Training days", 30, 3650, key="leaderboard_roll_train_days")
            r[2].number_input("Test days (= step)", 10, 730, key="leaderboard_roll_test_days")
            r[3].number_input("Folds", 2, 24, key="leaderboard_roll_count")
            st.caption("The gap between each fold's training and test window is the gap days above.")
        t1, t2 = st.columns(2)
        t1.radio("Rule tuner", ["grid", "optuna"], key="leaderboard_tuner", horizontal=True,
                 help="grid: every point of the tuning grid; optuna: seeded TPE search over delta, DTE, threshold, "
                      "take-profit and exit style")
        t2.number_input("Optuna trials per training range", 1, 500, key="leaderboard_budget",
                        disabled=ss["leaderboard_tuner"] != "optuna")
        f1, f2, f3 = st.columns([1, 2, 2])
        f1.toggle("Final holdout", key="leaderboard_final",
                  help="Run only the chosen variant and HODL on it, after selection; reported apart")
        f2.date_input("Holdout start", format=ui.DATE_FORMAT, key="leaderboard_final_start",
                      disabled=not ss["leaderboard_final"])
        f3.date_input("Holdout end", format=ui.DATE_FORMAT, key="leaderboard_final_end",
                      disabled=not ss["leaderboard_final"])


def spec_of(rs: RangeSet) -> dict[str, Any]:
    spec = _base_spec(rs)
    if ss["leaderboard_folds"] == "Rolling folds":
        spec = {k: v for k, v in spec.items() if k not in ("rangeTrain", "rangeTest")}
        spec["rolling"] = {"start": ss["leaderboard_roll_start"].isoformat(),
                           "train_days": int(ss["leaderboard_roll_train_days"]),
                           "test_days": int(ss["leaderboard_roll_test_days"]),
                           "count": int(ss["leaderboard_roll_count"]), "gap_days": rs.gap_days}
    if ss["leaderboard_tuner"] == "optuna":
        spec["tuner"] = {"method": "optuna", "budget": int(ss["leaderboard_budget"])}
    if ss["leaderboard_final"]:
        spec["finalTest"] = {"startDate": ss["leaderboard_final_start"].isoformat(),
                             "endDate": ss["leaderboard_final_end"].isoformat()}
    return spec


def _base_spec(rs: RangeSet) -> dict[str, Any]:
    return {
        "name": ss["leaderboard_name"].strip() or "walk", "underlying": ss["leaderboard_underlying"],
        "timeframe": ss["leaderboard_timeframe"], "source": ss["leaderboard_source"],
        "rangeTrain": [{"startDate": r.start.isoformat(), "endDate": r.end.isoformat(), "note": r.note}
                       for r in rs.train],
        "rangeTest": {"startDate": rs.test.start.isoformat(), "endDate": rs.test.end.isoformat(),
                      "note": rs.test.note},
        "gap_days": rs.gap_days, "strict": rs.strict, "metric": ss["leaderboard_metric"],
        "seed": int(settings.synthetic_seed), "grid": GRIDS[ss["leaderboard_grid"]],
        "baselines": list(ss["leaderboard_baselines"]), "model": {"enabled": bool(ss["leaderboard_models"])},
    }


st.title("Leaderboard")
tab_new, tab_old = st.tabs(["New walk", "Earlier walks"])
with tab_new:
    rs = range_part()
    a1, a2, a3, a4 = st.columns(4)
    a1.selectbox("Underlying", ["BTC", "ETH"], key="leaderboard_underlying")
    a2.selectbox("Timeframe", ["1d", "4h", "1h"], key="leaderboard_timeframe")
    a3.selectbox("Data source", ["synthetic", "store", "ccxt"], key="leaderboard_source")
    a4.selectbox("Rank by", list(METRICS), key="leaderboard_metric")
    b1, b2, b3, b4 = st.columns([3, 2, 2, 1])
    b1.multiselect("Baselines", list(BASELINES), key="leaderboard_baselines")
    b2.selectbox("Tuning grid", list(GRIDS), key="leaderboard_grid",
                 help="Rule variants tried on each training range. quick: 2 delta ranges x 2 score thresholds; "
                      "full: 2 delta ranges x 2 DTE ranges x 2 thresholds (8 variants)")
    b3.text_input("Walk name", key="leaderboard_name")
    b4.write("")
    b4.toggle("Models", key="leaderboard_models",
              help="Also fit LightGBM model variants on each training range (and one pooled model)")
    selection_part()
    if rs is not None:  # what pressing Walk would start (`covcall walk --plan`); a bad setting shows when pressed
        try:
            planned = WalkSpec.parse(spec_of(rs), run_defaults(settings))
        except CovcallError:
            planned = None
        if planned is not None:
            ui.plan_caption(settings, *planned.work())
    k1, k2, _ = st.columns([1, 2, 5])
    go_walk = k1.button("Walk", type="primary", key="leaderboard_walk", disabled=rs is None)
    go_train = k2.button("Train models only", key="leaderboard_train", disabled=rs is None,
                         help="Fit the LightGBM variants on the training ranges without testing anything "
                              "(same as `covcall train`)")
    if go_walk:
        parsed = ui.attempt(lambda: WalkSpec.parse(spec_of(rs), run_defaults(settings)))
        if parsed is not None:
            compute = ui.sweep_start("leaderboard_walk", settings, *parsed.work())
            bar = st.progress(0.0, text="processed 0 / ?: loading market data")
            result = ui.attempt(lambda: walk(parsed, ui.count_progress(bar), store=store, compute=compute), bar)
            ui.sweep_done("leaderboard_walk")
            ui.invalidate()
            if result is not None:
                ss["leaderboard_walk_id"] = result.walk_id
    else:
        ui.sweep_stopped("leaderboard_walk", "walk")
    if go_train:
        bar = st.progress(0.0, text="processed 0 / ?: loading market data")
        trained = ui.attempt(lambda: train(spec_of(rs), ui.count_progress(bar), store=store,
                                             defaults=run_defaults(settings)), bar)
        ui.invalidate()
        if trained is not None:
            ss["leaderboard_trained"] = trained
    if ss.get("leaderboard_trained"):
        st.markdown("**Trained models** (use one on the Backtest page with policy `model`)")
        st.dataframe(pd.DataFrame([{
            "model": m["name"], "model_id": m["model_id"], "frame": m["frame"],
            "trained until": (m["trained_until"] or "")[:16].replace("T", " "),
            "training rows": ui.fmt_count(m["diagnostics"].get("n_train")),
            "AUC": ui.fmt_ratio(m["diagnostics"].get("auc")), "rank IC": ui.fmt_ratio(m["diagnostics"].get("rank_ic")),
            "RMSE": ui.fmt_ratio(m["diagnostics"].get("rmse"))} for m in ss["leaderboard_trained"]]),
            hide_index=True, width="stretch")
with tab_old:
    earlier = ui.walks(db)
    unfinished = ui.unfinished_jobs(db, "walk")
    if earlier.empty and not unfinished:
        st.info("No walks yet.")
    for job in unfinished:
        st.warning(f"walk `{job['job_id']}` ({job['name']}) is **{job['status']}**"
                   + (f": {job['error']}" if job.get("error") else "") + "; it left no leaderboard")
    if not earlier.empty:
        st.dataframe(earlier.drop(columns=["report_dir"]).assign(created_at=earlier["created_at"].dt.tz_convert(None)),
                     hide_index=True, width="stretch", column_config={
                         **ui.number_columns(ratio=("best_metric", "dsr", "pbo"), count=("n_trials",)),
                         "passed": st.column_config.CheckboxColumn(
                             "passed", help="The verdict: the chosen variant beat HODL with DSR >= 0.95 and PBO < 0.5"),
                         "created_at": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm")})
        w1, w2 = st.columns([4, 1])
        w1.selectbox("Reopen a walk", list(earlier["walk_id"]), key="leaderboard_pick")  # newest first
        w2.write("")
        if w2.button("Open walk", key="leaderboard_open", width="stretch"):
            ss["leaderboard_walk_id"] = ss["leaderboard_pick"]

st.divider()
if ss["leaderboard_walk_id"]:
    try:
        ui.walk_result(db, ss["leaderboard_walk_id"])
    except CovcallError as err:
        st.error(str(err))
else:
    st.info("Pick ranges and variants and press **Walk**, or reopen an earlier walk.")
