"""Views of a finished walk: the ranked leaderboard, test-range equity, model diagnostics and explanations."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from covcall.walker import WalkResult, load_walk
from covcall.walkspec import METRICS
from ui.cache import CACHE_TTL_S, _store
from ui.charts import HODL_COLOR
from ui.formats import fmt_count, fmt_metric, fmt_pct, fmt_ratio
from ui.views import explain_view


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def cached_walk(db_path: str, walk_id: str) -> WalkResult:
    return load_walk(_store(), walk_id)


@st.cache_data(max_entries=16, ttl=CACHE_TTL_S, show_spinner=False)
def equity_of(db_path: str, run_ids: tuple[str, ...]) -> pd.DataFrame:
    return _store().read_run_table("equity", list(run_ids))


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
            fmts[c] = fmt_pct
        elif c in ("sharpe", "sortino", "calmar", "psr", "dsr"):
            fmts[c] = fmt_ratio
    best = df["rank"].min() if len(df) else None

    def highlight(row: pd.Series) -> list[str]:
        on = row["rank"] == best
        return ["background-color: rgba(46, 139, 87, 0.25); font-weight: bold" if on else "" for _ in row]

    return df.style.format(fmts, na_rep="n/a").apply(highlight, axis=1)


def walk_result(db: str, walk_id: str) -> None:
    """The stored walk's results (reopened from the database)."""
    render_walk(db, cached_walk(db, walk_id))


def render_walk(db: str, result: WalkResult) -> None:
    board = result.leaderboard
    st.subheader(f"Walk {result.name}")
    test = result.spec.get("rangeTest", {})
    st.caption(f"walk `{result.walk_id}` · ranked by **{result.metric}** on the test range "
               f"{test.get('startDate')} .. {test.get('endDate')} · {result.n_trials} variants tried · "
               f"{result.spec.get('underlying')} {result.spec.get('timeframe')} ({result.spec.get('source')})")
    if result.best_strategy:
        st.success(f"Best: **{result.best_strategy}** with {result.metric} "
                   f"{fmt_metric(result.metric, result.best_metric)}")
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
    ss = st.session_state
    ss["leaderboard_top_n"] = min(int(ss.get("leaderboard_top_n", 3)), most)
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
                                 line=dict(color=HODL_COLOR, dash="dot", width=3)))
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

        diag = model_diagnostics(_store(), entry["model_id"]) or diag
    except Exception as err:  # the model file may be gone; the walk's copy of the diagnostics still shows
        st.caption(f"(stored diagnostics unavailable: {err}; showing the walk's copy)")
    m = st.columns(6)
    m[0].metric("Training rows", fmt_count(diag.get("n_train")))
    m[1].metric("Validation rows", fmt_count(diag.get("n_valid")))
    m[2].metric("Rank IC", fmt_ratio(diag.get("rank_ic")))
    m[3].metric("RMSE", fmt_ratio(diag.get("rmse")))
    m[4].metric("AUC", fmt_ratio(diag.get("auc")))
    m[5].metric("Brier", fmt_ratio(diag.get("brier")))
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
                                    line=dict(dash="dot", color=HODL_COLOR)),
                         go.Scatter(x=cal["mean_pred"], y=cal["observed"], mode="lines+markers", name="model",
                                    marker=dict(size=8))])
        fig.update_layout(title="Calibration (validation tail)", height=300, margin=dict(l=10, r=10, t=40, b=10),
                          xaxis_title="mean predicted probability", yaxis_title="observed rate",
                          xaxis_tickformat=".0%", yaxis_tickformat=".0%")
        c2.plotly_chart(fig, width="stretch", key="leaderboard_calibration")
        c2.dataframe(cal.assign(mean_pred=cal["mean_pred"].map(fmt_pct),
                                observed=cal["observed"].map(fmt_pct)), hide_index=True, width="stretch")
    else:
        c2.caption("No calibration table (no classifier was trained).")
    explain_part(db, result, name, entry["model_id"])


def explain_part(db: str, result: WalkResult, name: str, model_id: str) -> None:
    """Why the model sold a candidate or skipped at one decision of its test run (LightGBM contributions)."""
    board = result.leaderboard
    rows = board[board["strategy"] == name]
    if rows.empty or not isinstance(rows.iloc[0].get("run_id"), str):
        return
    threshold = float(((result.spec or {}).get("model") or {}).get("threshold", 0.0))
    explain_view(db, model_id, rows.iloc[0]["run_id"], threshold, key="leaderboard_explain",
                    label="Decision on the test range")


