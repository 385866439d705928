"""The chain model against real Deribit snapshots (Chain page): fit a calibration, and how far the model misses."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from covcall.realism import TENOR_BUCKETS, snapshot_table
from ui.cache import calibrations, invalidate, realism_result, snapshots
from ui.charts import layout
from ui.shell import attempt, get_store

TENORS = tuple(name for _, _, name in TENOR_BUCKETS)
# the fit report's headline figures, in the words of docs/chain.md
FIT_FIGURES = {"snapshots": "snapshots fitted", "expiries": "expiries in the term fit",
               "smile_points": "calls in the smile fit", "smile_rmse_ratio": "smile fit, rms of IV / ATM - 1"}


def calibration_panel(db: str) -> None:
    """The calibration runs use per underlying (`calibration` auto), what it fitted, and a button to refit it."""
    from covcall.calibration import packaged_defaults
    from covcall.chain import ChainParams

    snaps = snapshots(db)
    underlyings = sorted(snaps["underlying"].unique())
    ss = st.session_state
    if ss.get("chain_cal_underlying") not in underlyings:
        ss["chain_cal_underlying"] = underlyings[0]
    c = st.columns([1, 1, 3])
    c[0].selectbox("Underlying", underlyings, key="chain_cal_underlying")
    u = ss["chain_cal_underlying"]
    n = int((snaps["underlying"] == u).sum())
    c[1].markdown("&nbsp;")
    if c[1].button("Calibrate", key="chain_calibrate", type="primary",
                   help=f"Fit the chain model to all {n} stored {u} snapshots, the IV index and the candles, and "
                        "store it as a new version (`covcall calibrate --underlying "
                        f"{u}`); runs price with the newest one"):
        from covcall.calibration import calibrate

        with st.spinner(f"fitting {u} to {n} snapshots"):
            # the creation stamp is bookkeeping, taken here at the edge; nothing fitted depends on it
            cal = attempt(lambda: calibrate(get_store(), u, now=pd.Timestamp.now(tz="UTC")))
        if cal is not None:
            invalidate()
            ss["chain_cal_done"] = cal.calibration_id
    done = ss.pop("chain_cal_done", None)
    if done:
        st.success(f"Stored calibration `{done}`: backtests, batches and walks of {u} now price with it.")
    mine = calibrations(db)
    mine = mine[mine["underlying"] == u] if len(mine) else mine
    shipped = packaged_defaults().get(u, {}).get("params", {})
    if mine.empty:
        st.info(f"No stored calibration of {u}: runs price with the one shipped with covcall (fitted on the "
                f"reference snapshots, shown below). Press **Calibrate** to fit {u} to your {n} snapshots.")
        params, errors, data = shipped, packaged_defaults().get(u, {}).get("errors", {}), {}
    else:
        newest = mine.iloc[0]
        params, errors, data = newest["params"], newest["errors"] or {}, newest["data"] or {}
        st.markdown(f"In use for {u} (calibration `auto`): **`{newest['calibration_id']}`**, fitted "
                    f"{pd.Timestamp(newest['created_at']):%Y-%m-%d %H:%M} UTC on "
                    f"{len(data.get('snapshots') or [])} snapshots "
                    f"({str(data.get('first_snapshot', ''))[:10]} .. {str(data.get('last_snapshot', ''))[:10]}).")
    fields = ChainParams.model_fields
    table = pd.DataFrame([{"parameter": k, "fitted": float(v) if v is not None else None,
                           "shipped default": shipped.get(k),
                           "what it is": (fields[k].description or "") if k in fields else ""}
                          for k, v in sorted(params.items())])
    st.dataframe(table, hide_index=True, width="stretch", height=300, column_config={
        "fitted": st.column_config.NumberColumn(format="%.4f"),
        "shipped default": st.column_config.NumberColumn(format="%.4f",
                                                         help="covcall/calibration_defaults.json, fitted on the "
                                                              "reference files by scripts/calibrate_defaults.py")})
    figures = [f"{label} {errors[k]:.3g}" if isinstance(errors.get(k), float) else f"{label} {errors[k]}"
               for k, label in FIT_FIGURES.items() if errors.get(k) is not None]
    lodo = errors.get("short_end_lodo") or {}
    if lodo.get("p90") is not None:
        figures.append(f"short end missed on days left out: p90 {lodo['p90']:.2f} at T->0 over {lodo['points']} "
                       "expiries (the robustness band's short-end rows)")
    if figures:
        st.caption("Fit: " + " · ".join(figures) + ". Structural parameters fitted on these snapshots are applied "
                   "to every date a backtest prices, earlier ones included (docs/chain.md).")
    if len(mine) > 1:
        with st.expander(f"Earlier calibrations of {u} ({len(mine) - 1})"):
            st.dataframe(mine[["calibration_id", "created_at", "version"]].iloc[1:], hide_index=True,
                         width="stretch")


def realism_panel(db: str) -> None:
    """`covcall realism --all`: every stored snapshot priced as a backtest would have priced it at that moment."""
    holdout = st.toggle("Leave one day out", key="chain_real_holdout",
                        help="Price each day with a calibration fitted on the other days only: out of sample, "
                             "what to expect on dates no snapshot covers (refits once per day: slower)")
    out = attempt(lambda: realism_result(db, bool(holdout)))
    if out is None:
        return
    targets = out["targets"]
    worst = targets["worst_median_abs_iv_error_pts_by_tenor"]
    over = targets["over_target_by_tenor"]
    seen = targets["snapshots_by_tenor"]
    m = st.columns(len(TENORS))
    for col, tenor in zip(m, TENORS, strict=True):
        if tenor in worst:
            col.metric(f"{tenor}: worst median |IV error|", f"{worst[tenor]:.1f} vol pts",
                       help=f"Calls with strike >= 0.9 x spot, IV index as input. Over {targets['target_pts']:g} "
                            f"vol points on {len(over[tenor])} of {seen[tenor]} snapshots")
            col.caption(f"over {targets['target_pts']:g} pts on {len(over[tenor])} of {seen[tenor]} snapshots")
    wide = snapshot_table(out)
    if wide.empty:
        st.info("No snapshot has an IV index known at its time: import the index (Home, or "
                "`covcall data import-iv`) to measure the model as a dvol backtest prices.")
        return
    limit = float(targets["target_pts"])

    def over_limit(v: Any) -> str:
        return "background-color: rgba(214, 39, 40, 0.18)" if isinstance(v, float) and v > limit else ""

    st.markdown(f"**Median |IV error| per snapshot** (vol points; shaded: over {limit:g}). The IV index known then "
                "as input (a daily close seen at noon is 12 hours old); basis: the snapshot's own futures vs the "
                "forward the model priced with.")
    st.dataframe(wide.style.format({c: "{:.1f}" for c in wide.columns if c not in ("snapshot", "calibration")},
                                   na_rep="")
                 .map(over_limit, subset=[t for t in TENORS if t in wide.columns]),
                 hide_index=True, width="stretch", height=320)
    ids = list(wide["snapshot"])
    ss = st.session_state
    if ss.get("chain_real_snapshot") not in ids:
        worst_id = wide.set_index("snapshot")[[t for t in TENORS if t in wide.columns]].max(axis=1).idxmax()
        ss["chain_real_snapshot"] = worst_id  # the worst one first: where to look
    pick = st.selectbox("Snapshot, expiry by expiry", ids, key="chain_real_snapshot")
    entry = next(e for e in out["snapshots"] if e["snapshot_id"] == pick)
    by = pd.DataFrame((entry.get("index") or {}).get("by_expiry") or [])
    if by.empty:
        st.caption("No call of this snapshot counts (strike >= 0.9 x spot, above the tick floor).")
        return
    fig = go.Figure([
        go.Scatter(x=by["dte_days"], y=by["real_atm_iv"] * 100, name="real ATM (Deribit mark IV)", mode="markers"),
        go.Scatter(x=by["dte_days"], y=by["model_atm_iv"] * 100, name="model ATM", mode="lines+markers")])
    fig.update_layout(xaxis_title="days to expiry", yaxis_title="ATM implied vol (%)", xaxis_type="log")
    st.plotly_chart(layout(fig, 320, f"{pick}: real vs model ATM by expiry (calibration {entry['calibration']})"),
                    width="stretch", key="chain_real_term")
    shown = by.assign(expiry=by["expiry"].str[:16].str.replace("T", " "),
                      real_atm_iv=by["real_atm_iv"] * 100, model_atm_iv=by["model_atm_iv"] * 100)
    st.dataframe(shown.drop(columns=["atm_strike"]), hide_index=True, width="stretch", column_config={
        "dte_days": st.column_config.NumberColumn("days", format="%.2f"),
        "real_atm_iv": st.column_config.NumberColumn("real ATM %", format="%.1f"),
        "model_atm_iv": st.column_config.NumberColumn("model ATM %", format="%.1f"),
        "median_iv_error_pts": st.column_config.NumberColumn("median IV error (pts)", format="%+.1f",
                                                             help="model - real over the expiry's calls"),
        "median_abs_iv_error_pts": st.column_config.NumberColumn("median |IV error| (pts)", format="%.1f")})
    st.caption("The same figures: `covcall realism --all --json` (add `--holdout` for leave-one-day-out, "
               f"`--snapshot {pick}` for this one); the reference tables are in docs/chain.md.")
