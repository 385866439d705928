"""Leaderboard: walk every variant and baseline over a held-out test range, rank them, inspect the models."""

from datetime import date
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui
from covcall.config import run_defaults
from covcall.errors import CovcallError
from covcall.ranges import RangeSet, load_range_set
from covcall.walker import WalkResult, load_walk, train, walk
from covcall.walkspec import BASELINES, DEFAULT_GRID, METRICS

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()
ss = st.session_state

GRIDS: dict[str, dict[str, list[Any]]] = {
    "quick (4 rule variants per range)": {"delta_range": [[0.10, 0.25], [0.20, 0.35]], "threshold": [0.10, 0.40]},
    "full (default grid)": dict(DEFAULT_GRID),
}
ss.setdefault("leaderboard_range_mode", "Saved range set")
ss.setdefault("leaderboard_underlying", "BTC")
ss.setdefault("leaderboard_timeframe", "1d")
ss.setdefault("leaderboard_source", settings.data_source)
ss.setdefault("leaderboard_metric", "sharpe")
ss.setdefault("leaderboard_baselines", list(BASELINES))
ss.setdefault("leaderboard_models", True)
ss.setdefault("leaderboard_grid", next(iter(GRIDS)))
ss.setdefault("leaderboard_name", "walk")
ss.setdefault("leaderboard_train_start", date(2022, 1, 1))
ss.setdefault("leaderboard_train_end", date(2022, 12, 31))
ss.setdefault("leaderboard_test_start", date(2023, 3, 1))
ss.setdefault("leaderboard_test_end", date(2023, 8, 31))
ss.setdefault("leaderboard_gap_days", 45)
ss.setdefault("leaderboard_walk_id", None)
ss.setdefault("leaderboard_top_n", 3)


@st.cache_data(max_entries=16, ttl=ui.CACHE_TTL_S, show_spinner=False)
def cached_walk(db_path: str, walk_id: str) -> WalkResult:
    return load_walk(store, walk_id)


@st.cache_data(max_entries=16, ttl=ui.CACHE_TTL_S, show_spinner=False)
def equity_of(db_path: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return store.read_run_table("equity", list(run_ids))


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


def spec_of(rs: RangeSet) -> dict[str, Any]:
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


def ranked_table(board: pd.DataFrame, metric: str) -> Any:
    """The leaderboard with one format per unit and the best row highlighted."""
    others = [m for m in METRICS if m != metric]
    cols = [c for c in ("rank", "strategy", "kind", metric, "psr", "dsr", "trained_until", *others, "frame")
            if c in board.columns]
    df = board[cols].copy()
    df["trained_until"] = df["trained_until"].map(
        lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(pd.Timestamp(v))[:16])
    df["frame"] = df["frame"].fillna("")
    fmts: dict[str, Any] = {}
    for c in df.columns:
        if c in ("cagr", "total_return", "max_drawdown", "win_rate", "excess_return"):
            fmts[c] = ui.fmt_pct
        elif c in ("sharpe", "sortino", "calmar", "psr", "dsr"):
            fmts[c] = ui.fmt_ratio
    best = df["rank"].min() if len(df) else None

    def highlight(row: pd.Series) -> list[str]:
        on = row["rank"] == best
        return ["background-color: rgba(46, 139, 87, 0.25); font-weight: bold" if on else "" for _ in row]

    return df.style.format(fmts, na_rep="n/a").apply(highlight, axis=1)


def render_walk(result: WalkResult) -> None:
    board = result.leaderboard
    st.subheader(f"Walk {result.name}")
    test = result.spec.get("rangeTest", {})
    st.caption(f"walk `{result.walk_id}` · ranked by **{result.metric}** on the test range "
               f"{test.get('startDate')} .. {test.get('endDate')} · {result.n_trials} variants tried · "
               f"{result.spec.get('underlying')} {result.spec.get('timeframe')} ({result.spec.get('source')})")
    if result.best_strategy:
        st.success(f"Best: **{result.best_strategy}** with {result.metric} "
                   f"{ui.fmt_metric(result.metric, result.best_metric)}")
    else:
        st.warning("No variant had a computable metric on the test range.")
    st.dataframe(ranked_table(board, result.metric), hide_index=True, width="stretch",
                 column_config={"psr": st.column_config.Column("PSR", help="Probabilistic Sharpe ratio vs 0"),
                                "dsr": st.column_config.Column("DSR", help="Deflated Sharpe ratio (luck over the "
                                                                           "variants tried)"),
                                "trained_until": st.column_config.Column("trained until",
                                                                         help="Last label the variant saw")})
    for issue in result.info.get("issues", []):
        {"error": st.error, "warning": st.warning}.get(issue["level"], st.info)(issue["message"])

    st.markdown("**Equity on the test range**")
    most = max(2, min(10, len(board)))
    ss["leaderboard_top_n"] = min(int(ss["leaderboard_top_n"]), most)
    st.slider("Top variants", 1, most, key="leaderboard_top_n")
    top = board.head(int(ss["leaderboard_top_n"]))
    ids = tuple(str(r) for r in top["run_id"].dropna())
    if ids:
        eq = equity_of(db, ids)
        fig = go.Figure()
        names = dict(zip(top["run_id"], top["strategy"], strict=True))
        for rid in ids:
            e = eq[eq["run_id"] == rid]
            fig.add_trace(go.Scatter(x=e["ts"], y=e["covered_call"], name=f"{names[rid]}"))
        first = eq[eq["run_id"] == ids[0]]
        fig.add_trace(go.Scatter(x=first["ts"], y=first["hodl"], name="HODL",
                                 line=dict(color=ui.HODL_COLOR, dash="dot", width=3)))
        fig.update_layout(height=400, margin=dict(l=10, r=10, t=10, b=10), yaxis_tickprefix="$",
                          yaxis_tickformat=",.0f", legend=dict(orientation="h", y=1.02, yanchor="bottom"))
        st.plotly_chart(fig, width="stretch", key="leaderboard_equity")

    models = result.info.get("models") or {}
    st.markdown("**Model diagnostics**")
    if not models:
        st.caption("This walk trained no models.")
        return
    name = st.selectbox("Model variant", list(models), key="leaderboard_model_pick")
    entry = models[name]
    diag = entry.get("diagnostics") or {}
    try:
        from covcall.models import model_diagnostics

        diag = model_diagnostics(store, entry["model_id"]) or diag
    except Exception as err:  # the model file may be gone; the walk's copy of the diagnostics still shows
        st.caption(f"(stored diagnostics unavailable: {err}; showing the walk's copy)")
    m = st.columns(6)
    m[0].metric("Training rows", ui.fmt_count(diag.get("n_train")))
    m[1].metric("Validation rows", ui.fmt_count(diag.get("n_valid")))
    m[2].metric("Rank IC", ui.fmt_ratio(diag.get("rank_ic")))
    m[3].metric("RMSE", ui.fmt_ratio(diag.get("rmse")))
    m[4].metric("AUC", ui.fmt_ratio(diag.get("auc")))
    m[5].metric("Brier", ui.fmt_ratio(diag.get("brier")))
    st.caption(f"model `{entry.get('model_id')}`" + (f" · {diag['classifier_note']}"
                                                      if diag.get("classifier_note") else ""))
    c1, c2 = st.columns(2)
    imp = pd.DataFrame(diag.get("feature_importance") or [])
    if not imp.empty and "regressor_gain" in imp.columns:
        imp = imp.sort_values("regressor_gain")
        fig = go.Figure(go.Bar(x=imp["regressor_gain"], y=imp["feature"], orientation="h", marker_color="#1f77b4"))
        fig.update_layout(title="Feature importance (regressor gain)", height=360,
                          margin=dict(l=10, r=10, t=40, b=10))
        c1.plotly_chart(fig, width="stretch", key="leaderboard_importance")
    else:
        c1.caption("No feature importance recorded.")
    cal = pd.DataFrame(diag.get("calibration") or [])
    if not cal.empty and {"mean_pred", "observed"} <= set(cal.columns):
        fig = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect",
                                    line=dict(dash="dot", color=ui.HODL_COLOR)),
                         go.Scatter(x=cal["mean_pred"], y=cal["observed"], mode="lines+markers", name="model",
                                    marker=dict(size=8))])
        fig.update_layout(title="Calibration (validation tail)", height=300, margin=dict(l=10, r=10, t=40, b=10),
                          xaxis_title="mean predicted probability", yaxis_title="observed rate",
                          xaxis_tickformat=".0%", yaxis_tickformat=".0%")
        c2.plotly_chart(fig, width="stretch", key="leaderboard_calibration")
        c2.dataframe(cal.assign(mean_pred=cal["mean_pred"].map(ui.fmt_pct),
                                observed=cal["observed"].map(ui.fmt_pct)), hide_index=True, width="stretch")
    else:
        c2.caption("No calibration table (no classifier was trained).")
    explain_part(result, name, entry["model_id"])


def explain_part(result, name: str, model_id: str) -> None:
    """Why the model sold a candidate or skipped at one decision of its test run (LightGBM contributions)."""
    board = result.leaderboard
    rows = board[board["strategy"] == name]
    if rows.empty or not isinstance(rows.iloc[0].get("run_id"), str):
        return
    threshold = float(((result.spec or {}).get("model") or {}).get("threshold", 0.0))
    ui.explain_view(db, model_id, rows.iloc[0]["run_id"], threshold, key="leaderboard_explain",
                    label="Decision on the test range")


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
    b2.selectbox("Tuning grid", list(GRIDS), key="leaderboard_grid")
    b3.text_input("Walk name", key="leaderboard_name")
    b4.write("")
    b4.toggle("Models", key="leaderboard_models",
              help="Also fit LightGBM model variants on each training range (and one pooled model)")
    k1, k2, _ = st.columns([1, 2, 5])
    go_walk = k1.button("Walk", type="primary", key="leaderboard_walk", disabled=rs is None)
    go_train = k2.button("Train models only", key="leaderboard_train", disabled=rs is None,
                         help="Fit the LightGBM variants on the training ranges without testing anything "
                              "(same as `covcall train`)")
    if go_walk:
        bar = st.progress(0.0, text="processed 0 / ?: loading market data")
        result = ui.attempt(lambda: walk(spec_of(rs), ui.count_progress(bar), store=store,
                                          defaults=run_defaults(settings)), bar)
        ui.invalidate()
        if result is not None:
            ss["leaderboard_walk_id"] = result.walk_id
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
    if earlier.empty:
        st.info("No walks yet.")
    else:
        shown = earlier.assign(created_at=earlier["created_at"].dt.strftime("%Y-%m-%d %H:%M"),
                               best_metric=earlier["best_metric"].map(ui.fmt_ratio))
        st.dataframe(shown.drop(columns=["report_dir"]), hide_index=True, width="stretch")
        w1, w2 = st.columns([4, 1])
        w1.selectbox("Reopen a walk", list(earlier["walk_id"]), key="leaderboard_pick")
        w2.write("")
        if w2.button("Open walk", key="leaderboard_open", width="stretch"):
            ss["leaderboard_walk_id"] = ss["leaderboard_pick"]

st.divider()
if ss["leaderboard_walk_id"]:
    try:
        render_walk(cached_walk(db, ss["leaderboard_walk_id"]))
    except CovcallError as err:
        st.error(str(err))
else:
    st.info("Pick ranges and variants and press **Walk**, or reopen an earlier walk.")
