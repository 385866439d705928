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
from ui.formats import fmt_count, fmt_pct, fmt_ratio
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
    cols = [c for c in ("rank", "strategy", "kind", metric, "n_trades", "psr", "dsr", "dsr_effective", "trained_until",
                        *others, "chosen_by", "frame") if c in board.columns]
    df = board[cols].copy()
    df["trained_until"] = df["trained_until"].map(
        lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(pd.Timestamp(v))[:16])
    df["frame"] = df["frame"].fillna("")
    fmts: dict[str, Any] = {}
    for c in df.columns:
        if c in ("cagr", "total_return", "max_drawdown", "win_rate", "excess_return"):
            fmts[c] = fmt_pct
        elif c in ("sharpe", "sortino", "calmar", "psr", "dsr", "dsr_effective"):
            fmts[c] = fmt_ratio
    best = df["rank"].min() if len(df) else None

    def highlight(row: pd.Series) -> list[str]:
        on = row["rank"] == best
        return ["background-color: rgba(46, 139, 87, 0.25); font-weight: bold" if on else "" for _ in row]

    return df.style.format(fmts, na_rep="n/a").apply(highlight, axis=1)


def winner_band(result: WalkResult) -> None:
    """The winner rerun on its test range under the assumption grid, judged on the walk's own metric."""
    from covcall.sensitivity import winner_sensitivity
    from ui.run_views import band_panel
    from ui.shell import get_store

    band_panel(f"leaderboard_band_{result.walk_id}", lambda: winner_sensitivity(result, store=get_store()),
               f"Robustness band of the winner ({result.best_strategy}): does it still beat HODL on "
               f"{result.metric} under other market-model assumptions?",
               what=f"the winner's run on {result.winner_window}")


def walk_result(db: str, walk_id: str) -> None:
    """The stored walk's results (reopened from the database)."""
    render_walk(db, cached_walk(db, walk_id))


def render_walk(db: str, result: WalkResult) -> None:
    board = result.leaderboard
    info = result.info
    sel = info.get("selection") or {}
    st.subheader(f"Walk {result.name}")
    for w in info.get("warnings") or []:
        st.warning(w.removeprefix("warning: "), icon="⚠️")
    v = info.get("verdict")
    if v:  # green only when the numbers earn it
        (st.success if v.get("passed") else st.warning)(v["sentence"])
    elif not result.best_strategy:
        st.warning("No variant had a computable metric on the test range.")
    st.caption(f"walk `{result.walk_id}` · ranked by **{result.metric}** on "
               f"{sel.get('basis') or _test_text(result)} · "
               f"{result.spec.get('underlying')} {result.spec.get('timeframe')} ({result.spec.get('source')}, "
               f"implied vol {result.spec.get('iv_source') or 'realized'})")
    if sel:
        pbo_d = sel.get("pbo") or {}
        m = st.columns(5)
        m[0].metric("Trials behind the ranking", fmt_count(sel.get("n_trials")),
                    help="Every tuner trial on every training range, every variant and baseline on every test "
                         "range, and earlier walks' trials on the same test range (the ledger's N)")
        m[1].metric("Effective trials", fmt_count(sel.get("n_effective")),
                    help="Clusters of trials whose returns in excess of HODL correlate >= 0.5")
        m[2].metric("V (Sharpe variance)", "n/a" if sel.get("sr_variance") is None else f"{sel['sr_variance']:.2e}",
                    help="Variance of the ledger trials' per-bar Sharpe ratios; with N it sets the Sharpe "
                         "expected from luck alone")
        m[3].metric("DSR of the chosen", fmt_ratio(sel.get("dsr_best")))
        m[4].metric("PBO", fmt_ratio(pbo_d.get("pbo")),
                    help="Probability of backtest overfitting (CSCV): how often the in-sample best falls below "
                         "the median out of sample")
    st.dataframe(ranked_table(board, result.metric), hide_index=True, width="stretch",
                 column_config={"n_trades": st.column_config.NumberColumn(
                                    "trades", format="%d", help="Calls sold on the test range (0: it only held "
                                                                "the coin, so it scores as HODL)"),
                                "psr": st.column_config.NumberColumn("PSR", help="Probabilistic Sharpe ratio vs 0",
                                                                     format="%.3f"),
                                "dsr": st.column_config.NumberColumn(
                                    "DSR", format="%.3f", help="Deflated Sharpe ratio over the ledger's N trials"),
                                "dsr_effective": st.column_config.NumberColumn(
                                    "DSR (eff. N)", format="%.3f", help="The same with the effective N"),
                                "chosen_by": st.column_config.Column(
                                    "chosen by", help="Every training range whose tuning chose these settings"),
                                "trained_until": st.column_config.Column("trained until",
                                                                         help="Last label the variant saw")})
    for issue in info.get("issues", []):
        if issue["level"] == "error":
            st.error(issue["message"])
    selection_charts(sel)
    folds_table(result)
    final_panel(result)
    if result.best_strategy:
        winner_band(result)

    st.markdown("**Equity on the test range**" if not info.get("folds") else
                "**Equity stitched across the folds' test ranges** (each from 1.0)")
    most = max(2, min(10, len(board)))
    ss = st.session_state
    ss["leaderboard_top_n"] = min(int(ss.get("leaderboard_top_n", 3)), most)
    st.slider("Top variants", 1, most, key="leaderboard_top_n")
    top = board.head(int(ss["leaderboard_top_n"]))
    ids = tuple(str(r) for r in top["run_id"].dropna())
    if info.get("folds"):
        stitched_chart(result, list(top["strategy"]))
    elif ids:
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
    m[1].metric("Test-tail rows", fmt_count(diag.get("n_test") or diag.get("n_valid")),
                help=diag.get("diagnostics_on") or "rows the diagnostics were measured on")
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
        fig.update_layout(title="Calibration (held-out tail)", height=300, margin=dict(l=10, r=10, t=40, b=10),
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




def _test_text(result: WalkResult) -> str:
    test = result.spec.get("rangeTest", {})
    return f"the test range {test.get('startDate')} .. {test.get('endDate')}"


def selection_charts(sel: dict[str, Any]) -> None:
    """PBO: the logit of the chosen trial's out-of-sample rank per CSCV split, and IS vs OOS Sharpe."""
    pbo_d = sel.get("pbo") or {}
    tuner = sel.get("pbo_tuner") or []
    if not pbo_d and not tuner:
        return
    with st.expander("Overfitting: PBO by combinatorially symmetric cross-validation", expanded=False):
        if pbo_d:
            c1, c2 = st.columns(2)
            logits = pbo_d.get("logits") or []
            fig = go.Figure(go.Histogram(x=logits, nbinsx=40, marker_color="#1f77b4"))
            fig.add_vline(x=0, line_dash="dot", line_color="#d62728")
            fig.update_layout(title=f"Logits of the chosen variant's OOS rank (PBO {fmt_ratio(pbo_d.get('pbo'))})",
                              height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="logit (left of 0: "
                              "below the median out of sample)", yaxis_title="split combinations")
            c1.plotly_chart(fig, width="stretch", key="leaderboard_pbo_hist")
            pairs = pbo_d.get("pairs") or {}
            if pairs:
                fig = go.Figure(go.Scatter(x=pairs["is_sharpe"], y=pairs["oos_sharpe"], mode="markers",
                                           marker=dict(size=4, opacity=0.4), text=pairs["chosen"]))
                fig.update_layout(title="Performance degradation: in-sample vs out-of-sample Sharpe (per bar)",
                                  height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="in-sample",
                                  yaxis_title="out-of-sample")
                c2.plotly_chart(fig, width="stretch", key="leaderboard_pbo_scatter")
            st.caption(f"{pbo_d.get('n_trials')} variants, {pbo_d.get('n_obs')} bars in {pbo_d.get('n_splits')} "
                       "blocks; every half of the blocks picks its best variant, the other half ranks it.")
        if tuner:
            st.dataframe(pd.DataFrame(tuner), hide_index=True, width="stretch",
                         column_config={"pbo": st.column_config.NumberColumn("tuner PBO", format="%.2f")})


def folds_table(result: WalkResult) -> None:
    """Parameter stability: what the tuned rule chose and scored in each fold."""
    folds = result.info.get("folds") or []
    if not folds:
        return
    rows = []
    for f in folds:
        for v in f["variants"]:
            if v["kind"] == "rule":
                rows.append({"fold": f["fold"], "test": f["test"], "variant": v["strategy"],
                             **{k: v["params"].get(k) for k in ("delta_min", "delta_max", "dte_min_days",
                                                                  "dte_max_days", "threshold", "exit_style",
                                                                  "take_profit")},
                             result.metric: v["metric_value"], "total_return": v["total_return"]})
    st.markdown("**Folds: parameters chosen per fold** (stable choices are more believable)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"total_return": st.column_config.NumberColumn("total return", format="percent")})


def final_panel(result: WalkResult) -> None:
    final = result.info.get("final_test")
    if not final:
        return
    st.markdown(f"**Final holdout {final['range']}** (touched by nothing during selection; reported apart)")
    if not final.get("rows"):
        st.caption(final.get("note", ""))
        return
    cols = ["strategy", "sharpe", "total_return", "max_drawdown", "psr", "sortino", "calmar", "cagr",
            "excess_return", "win_rate"]
    rows = pd.DataFrame(final["rows"])
    st.dataframe(rows[[c for c in cols if c in rows.columns]], hide_index=True, width="stretch",
                 column_config={k: st.column_config.NumberColumn(k.replace("_", " "), format="percent")
                                for k in ("total_return", "max_drawdown", "cagr", "excess_return", "win_rate")})


def stitched_chart(result: WalkResult, names: list[str]) -> None:
    """Equity of each family chained across the folds' test ranges, from the trial ledger."""
    trials = [t for t in result.info.get("trials") or [] if t["stage"] == "test"]
    fig = go.Figure()
    for name in [*names, "hodl"]:
        parts = sorted((t for t in trials if t["name"] == name), key=lambda t: t["fold"])
        if not parts:
            continue
        ts = pd.to_datetime([x for t in parts for x in t["times"]], unit="s", utc=True)
        r = pd.Series([x for t in parts for x in t["returns"]], index=ts)
        style = dict(color=HODL_COLOR, dash="dot", width=3) if name == "hodl" else None
        fig.add_trace(go.Scatter(x=ts, y=(1 + r).cumprod(), name="HODL" if name == "hodl" else name, line=style))
    fig.update_layout(height=400, margin=dict(l=10, r=10, t=10, b=10), yaxis_tickformat=".2f",
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    st.plotly_chart(fig, width="stretch", key="leaderboard_equity")
