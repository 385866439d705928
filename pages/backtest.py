"""Backtest: run one covered-call backtest or a batch grid, see its metrics and charts, reopen earlier runs."""

from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

import ui
from covcall.backtest import BacktestConfig, run_backtest, settings_of_run
from covcall.batch import BatchSpec, run_batch, work_seconds
from covcall.config import run_defaults
from covcall.dataset import delete_runs
from covcall.errors import CovcallError

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()

UNDERLYINGS = ["BTC", "ETH"]
TIMEFRAMES = ["1d", "4h", "1h"]
EXIT_STYLES = ["hold_to_expiry", "tp_and_roll"]
SOURCES = ["synthetic", "store", "ccxt"]
POLICIES = ["rule", "fixed_delta", "hodl", "model"]
CUSTOM = "custom dates"

ss = st.session_state
ui.remember("backtest_underlying", "BTC")
ui.remember("backtest_timeframe", "1d")
ui.remember("backtest_start", date(2024, 1, 1))
ui.remember("backtest_end", date(2024, 6, 30))
ui.remember("backtest_preset", CUSTOM)
ui.remember("backtest_exit_style", "hold_to_expiry")
ui.remember("backtest_take_profit", 0.5)
ui.remember("backtest_delta", (0.10, 0.30))
ui.remember("backtest_dte", (5, 30))
ui.remember("backtest_threshold", 0.10)
ui.remember("backtest_fee_rate", float(settings.fee_rate))
ui.remember("backtest_fee_cap", float(settings.fee_cap))
ui.remember("backtest_settlement_fee_rate", float(settings.settlement_fee_rate))
ui.remember("backtest_source", settings.data_source)
ui.remember("backtest_iv_source", "auto")
ui.remember("backtest_policy", "rule")
ui.remember("backtest_target_delta", 0.10)
ui.remember("backtest_target_dte", 7.0)
ui.remember("backtest_model_id", None)
ui.remember("backtest_quantity", 1.0)
ui.remember("backtest_seed", int(settings.synthetic_seed))
ui.remember("backtest_decision_hour", 8)
ui.remember("backtest_label", "")
ui.remember("backtest_accounting", "usd")
ui.remember("backtest_settlement", "auto")
ui.remember("backtest_basis", "auto")
ui.remember("backtest_calibration", "auto")
ui.remember("backtest_view_run_id", None)
ui.remember("backtest_batch_result", None)
# The main inputs and the run on screen live in the URL too: a shared link reopens the same view.
ui.query_state("backtest", {
    "underlying": ("backtest_underlying", str, lambda v: v in UNDERLYINGS),
    "timeframe": ("backtest_timeframe", str, lambda v: v in TIMEFRAMES),
    "start": ("backtest_start", date, lambda v: date(2015, 1, 1) <= v <= date(2030, 12, 31)),
    "end": ("backtest_end", date, lambda v: date(2015, 1, 1) <= v <= date(2030, 12, 31)),
    "exit_style": ("backtest_exit_style", str, lambda v: v in EXIT_STYLES),
    "policy": ("backtest_policy", str, lambda v: v in POLICIES),
    "source": ("backtest_source", str, lambda v: v in SOURCES),
    "run": ("backtest_view_run_id", str, lambda v: len(v) < 100),
})
ui.remember("backtest_batch_windows", pd.DataFrame({
    "start": [date(2024, 1, 1), date(2024, 4, 1)], "end": [date(2024, 3, 31), date(2024, 6, 30)],
    "note": ["Q1", "Q2"]}))


def apply_preset() -> None:
    windows = ui.regime_windows(ss["backtest_underlying"], int(ss["backtest_seed"]))
    picked = windows.get(ss["backtest_preset"])
    if picked is not None:
        ss["backtest_start"], ss["backtest_end"] = picked


def config_dict() -> dict[str, Any]:
    """The run settings from the widgets, as BacktestConfig fields."""
    return {
        "underlying": ss["backtest_underlying"], "timeframe": ss["backtest_timeframe"],
        "start": ss["backtest_start"], "end": ss["backtest_end"], "source": ss["backtest_source"],
        "iv_source": ss["backtest_iv_source"], "exit_style": ss["backtest_exit_style"],
        "take_profit": ss["backtest_take_profit"], "delta_min": ss["backtest_delta"][0],
        "delta_max": ss["backtest_delta"][1], "dte_min_days": float(ss["backtest_dte"][0]),
        "dte_max_days": float(ss["backtest_dte"][1]), "threshold": ss["backtest_threshold"],
        "decision_hour_utc": int(ss["backtest_decision_hour"]), "quantity": ss["backtest_quantity"],
        "fee_rate": ss["backtest_fee_rate"], "fee_cap": ss["backtest_fee_cap"],
        "settlement_fee_rate": ss["backtest_settlement_fee_rate"], "rate": float(settings.risk_free_rate),
        "policy": ss["backtest_policy"], "target_delta": ss["backtest_target_delta"],
        "target_dte_days": ss["backtest_target_dte"], "model_id": ss["backtest_model_id"] or None,
        "seed": int(ss["backtest_seed"]), "exchange": settings.exchange_id,
        "label": ss["backtest_label"].strip() or None, "accounting": ss["backtest_accounting"],
        "settlement": ss["backtest_settlement"], "calibration": ss["backtest_calibration"],
        "basis": ss["backtest_basis"],
    }


# Form keys and the BacktestConfig fields they hold; the sliders and number inputs keep their values with ui.kept
FORM_FIELDS = {"backtest_underlying": "underlying", "backtest_timeframe": "timeframe", "backtest_start": "start",
               "backtest_end": "end", "backtest_source": "source", "backtest_iv_source": "iv_source",
               "backtest_exit_style": "exit_style", "backtest_policy": "policy", "backtest_accounting": "accounting",
               "backtest_settlement": "settlement", "backtest_basis": "basis", "backtest_calibration": "calibration"}
KEPT_FIELDS = {"backtest_take_profit": "take_profit", "backtest_threshold": "threshold",
               "backtest_decision_hour": "decision_hour_utc", "backtest_quantity": "quantity",
               "backtest_fee_rate": "fee_rate", "backtest_fee_cap": "fee_cap",
               "backtest_settlement_fee_rate": "settlement_fee_rate", "backtest_target_delta": "target_delta",
               "backtest_target_dte": "target_dte_days", "backtest_seed": "seed"}
CHOICES = {"backtest_underlying": UNDERLYINGS, "backtest_timeframe": TIMEFRAMES, "backtest_source": SOURCES,
           "backtest_exit_style": EXIT_STYLES, "backtest_policy": POLICIES}
# The form's bounds where they are narrower than what a run may hold (a CLI run can sell 180-day calls)
BOUNDS = {"backtest_take_profit": (0.05, 0.95), "backtest_threshold": (-1.0, 5.0), "backtest_decision_hour": (0, 23),
          "backtest_quantity": (0.001, 1000.0), "backtest_target_delta": (0.01, 0.99),
          "backtest_target_dte": (1.0, 365.0), "backtest_seed": (0, 10_000), "backtest_delta": (0.01, 0.90),
          "backtest_dte": (0, 120)}


def load_settings(run_id: str) -> None:
    """Put a stored run's settings in the form (a button callback: before the widgets exist), so it can be
    changed and run again; what the form cannot show is named, not silently dropped."""
    try:
        cfg = settings_of_run(store, run_id)
    except CovcallError as err:
        ss["backtest_load_msg"] = ("error", str(err))
        return
    left = []
    for key, name in FORM_FIELDS.items():
        value = cfg.get(name)
        if name in ("start", "end") and value is not None:
            value = date.fromisoformat(str(value)[:10])
        if value is None or (key in CHOICES and value not in CHOICES[key]):
            left.append(f"{name} {value!r}")
            continue
        ss[key] = value
    def fit(key: str, name: str, value: Any) -> Any:
        lo, hi = BOUNDS.get(key, (value, value))
        if not lo <= value <= hi:
            left.append(f"{name} {value:g} (the form holds {lo:g}..{hi:g}: set to {min(max(value, lo), hi):g})")
        return min(max(value, lo), hi)

    for key, name in KEPT_FIELDS.items():
        if cfg.get(name) is not None:
            ui.set_kept(key, fit(key, name, type(ss[key])(cfg[name])))
    ui.set_kept("backtest_delta", (fit("backtest_delta", "delta_min", float(cfg.get("delta_min", 0.10))),
                                   fit("backtest_delta", "delta_max", float(cfg.get("delta_max", 0.30)))))
    dte = (float(cfg.get("dte_min_days", 5)), float(cfg.get("dte_max_days", 30)))
    if dte[0] % 1 or dte[1] % 1:
        left.append(f"DTE range {dte[0]:g}..{dte[1]:g} days (rounded to whole days)")
    ui.set_kept("backtest_dte", (fit("backtest_dte", "dte_min_days", int(round(dte[0]))),
                                 fit("backtest_dte", "dte_max_days", int(round(dte[1])))))
    ss["backtest_model_id"] = cfg.get("model_id")
    ss["backtest_label"] = ""  # a new run gets its own label
    ss["backtest_preset"] = CUSTOM
    if cfg.get("chain"):
        left.append("chain overrides " + ", ".join(sorted(cfg["chain"])) + " (not on the form: run them with "
                    f"`covcall backtest --from-run {run_id}` or the API)")
    ss["backtest_load_msg"] = ("warning", "Settings of run " + run_id + " are in the form; not carried over: "
                               + "; ".join(left) + ".") if left else ("success", f"Settings of run {run_id} are "
                                                                                 "in the form.")


def settings_form() -> None:
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        st.selectbox("Underlying", UNDERLYINGS, key="backtest_underlying")
        st.selectbox("Timeframe", TIMEFRAMES, key="backtest_timeframe",
                     help="Bar size; daily runs are fastest. Calls are sold at the decision hour on 1h/4h bars.")
        st.selectbox("Data source", SOURCES, key="backtest_source",
                     help="synthetic: offline seeded market; store: candles cached in DuckDB; ccxt: fetch first")
        st.selectbox("IV source", ["auto", "realized", "dvol"], key="backtest_iv_source",
                     help="auto: the implied-vol index (DVOL) where one is stored, the realised-vol proxy "
                          "elsewhere; realized: always the proxy; dvol: the index, an error without one")
    with c2:
        windows = ui.regime_windows(ss["backtest_underlying"], int(ss["backtest_seed"]))
        options = [CUSTOM, *windows]
        if ss["backtest_preset"] not in options:
            ss["backtest_preset"] = CUSTOM
        st.selectbox("Regime preset", options, key="backtest_preset", on_change=apply_preset,
                     help="Picking a preset fills start and end")
        st.date_input("Start", format=ui.DATE_FORMAT, key="backtest_start", min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))
        st.date_input("End (inclusive)", format=ui.DATE_FORMAT, key="backtest_end", min_value=date(2015, 1, 1),
                      max_value=date(2030, 12, 31))
        st.number_input("Decision hour (UTC)", 0, 23, step=1, **ui.kept("backtest_decision_hour"))
    with c3:
        st.selectbox("Policy", POLICIES, key="backtest_policy",
                     help="rule: score-threshold seller; fixed_delta: always sell one delta/tenor; "
                          "hodl: never sell; model: a trained LightGBM model")
        st.selectbox("Exit style", EXIT_STYLES, key="backtest_exit_style")
        st.slider("Take profit", 0.05, 0.95, step=0.05, **ui.kept("backtest_take_profit"),
                  disabled=ss["backtest_exit_style"] != "tp_and_roll",
                  help="tp_and_roll: buy back when the mark falls to (1 - tp) x premium, then sell again")
        st.number_input("Score threshold", -1.0, 5.0, step=0.05, format="%.2f", **ui.kept("backtest_threshold"),
                        help="Minimum premium score to sell (rule policy)")
    with c4:
        st.slider("Delta range", 0.01, 0.90, step=0.01, **ui.kept("backtest_delta"))
        st.slider("DTE range (days)", 0, 120, step=1, **ui.kept("backtest_dte"))
        if ss["backtest_policy"] == "fixed_delta":
            st.number_input("Target delta", 0.01, 0.99, step=0.01, **ui.kept("backtest_target_delta"))
            st.number_input("Target DTE (days)", 1.0, 365.0, step=1.0, **ui.kept("backtest_target_dte"))
        if ss["backtest_policy"] == "model":
            model_ids = list(ui.models(db)["model_id"]) if not ui.models(db).empty else []
            st.selectbox("Model", model_ids, key="backtest_model_id", placeholder="train one with `covcall train`")
    with st.expander("Fees, size and seed"):
        f1, f2, f3, f4, f5 = st.columns(5)
        f1.number_input("Trade fee (fraction of underlying)", 0.0, 0.01, step=0.0001, format="%.4f",
                        **ui.kept("backtest_fee_rate"))
        f2.number_input("Fee cap (fraction of option price)", 0.0, 1.0, step=0.005, format="%.3f",
                        **ui.kept("backtest_fee_cap"))
        f3.number_input("Settlement fee", 0.0, 0.01, step=0.00005, format="%.5f",
                        **ui.kept("backtest_settlement_fee_rate"))
        f4.number_input("Quantity (coins)", 0.001, 1000.0, step=0.1, **ui.kept("backtest_quantity"))
        f5.number_input("Synthetic seed", 0, 10_000, step=1, **ui.kept("backtest_seed"))
        g1, g2, g5, g3, g4 = st.columns([1, 1, 1, 1, 2])
        g1.selectbox("Accounting", ["usd", "coin"], key="backtest_accounting",
                     help="usd: premiums kept as USD cash; coin: booked in the coin, as Deribit does")
        g2.selectbox("Daily settlement", ["auto", "proxy"], key="backtest_settlement",
                     help="auto: the 08:00 UTC close of finer bars when there are any; proxy: open + 8/24 (close - open)")
        g5.selectbox("Forward basis", ["auto", "calibrated"], key="backtest_basis",
                     help="auto: on real data, each decision's forward uses the stored basis history known then "
                          "(chain snapshots, Deribit futures, imported files; at most 7 days old), else the "
                          "calibration's one number; calibrated: always that number")
        g3.text_input("Chain calibration", key="backtest_calibration",
                      help="auto (newest stored, else shipped), default, none, or a stored id")
        g4.text_input("Label (optional)", key="backtest_label", placeholder="shown in the run list")


def run_single() -> None:
    try:
        cfg = BacktestConfig.parse(config_dict())
    except CovcallError as err:
        st.error(str(err))
        return
    bar = st.progress(0.0, text="starting")
    export_dir = settings.training_data_dir if settings.save_training_data else None
    result = ui.attempt(lambda: run_backtest(cfg, store=store, export_dir=export_dir,
                                             progress=ui.fraction_progress(bar)), bar)
    if result is None:
        return
    ss["backtest_view_run_id"] = result.run_id
    ui.invalidate()
    st.toast(f"Run {result.run_id} saved")


def batch_tab() -> None:
    st.caption("Runs the grid below; every other setting comes from the Run tab.")
    b1, b2, b3 = st.columns(3)
    ui.remember("backtest_batch_underlyings", ["BTC", "ETH"])
    ui.remember("backtest_batch_timeframes", ["1d"])
    ui.remember("backtest_batch_exit_styles", list(EXIT_STYLES))
    ui.remember("backtest_batch_name", "batch")
    b1.multiselect("Underlyings", UNDERLYINGS, key="backtest_batch_underlyings")
    b2.multiselect("Timeframes", TIMEFRAMES, key="backtest_batch_timeframes")
    b3.multiselect("Exit styles", EXIT_STYLES, key="backtest_batch_exit_styles")
    st.text_input("Batch name", key="backtest_batch_name")
    windows = st.data_editor(
        ss["backtest_batch_windows"], num_rows="dynamic", key="backtest_batch_windows_editor", hide_index=True,
        column_config={"start": st.column_config.DateColumn("start", required=True),
                       "end": st.column_config.DateColumn("end (inclusive)", required=True),
                       "note": st.column_config.TextColumn("note", default="")})
    rows = windows.dropna(subset=["start", "end"])
    n = (len(ss["backtest_batch_underlyings"]) * len(ss["backtest_batch_timeframes"]) * len(rows)
         * len(ss["backtest_batch_exit_styles"]))
    base = {k: v for k, v in config_dict().items()
            if k not in ("underlying", "timeframe", "start", "end", "exit_style", "label")}
    spec = {"name": ss["backtest_batch_name"].strip() or "batch",
            "underlyings": ss["backtest_batch_underlyings"], "timeframes": ss["backtest_batch_timeframes"],
            "windows": [{"start": pd.Timestamp(r.start).date().isoformat(),
                         "end": pd.Timestamp(r.end).date().isoformat(),
                         "note": "" if pd.isna(r.note) else str(r.note)} for r in rows.itertuples()],
            "exit_styles": ss["backtest_batch_exit_styles"], "base": base}
    if n:  # what pressing the button would start (`covcall batch --plan`); a bad setting shows when pressed
        try:
            preview = BatchSpec.parse(spec, run_defaults(settings)).configs()
        except CovcallError:
            preview = None
        if preview:
            ui.plan_caption(settings, len(preview), work_seconds(preview))
    if st.button(f"Run batch ({n} runs)", type="primary", key="backtest_batch_run", disabled=n == 0):
        parsed = ui.attempt(lambda: BatchSpec.parse(spec, run_defaults(settings)))
        if parsed is not None:
            compute = ui.sweep_start("backtest_batch", settings, n, work_seconds(parsed.configs()))
            bar = st.progress(0.0, text="starting")
            export_dir = settings.training_data_dir if settings.save_training_data else None
            result = ui.attempt(lambda: run_batch(parsed, store=store, export_dir=export_dir,
                                                  progress=ui.count_progress(bar), compute=compute), bar)
            ui.sweep_done("backtest_batch", result.dashboard if result is not None else None)
            if result is not None:
                ss["backtest_batch_result"] = result.to_dict()
            ui.invalidate()
    else:
        ui.sweep_stopped("backtest_batch", "batch")
    if ss["backtest_batch_result"]:
        picked = ui.batch_result(ss["backtest_batch_result"])
        if picked:
            ss["backtest_view_run_id"] = picked


st.title("Backtest")
def manage_runs() -> None:
    """Rename a run, or delete runs after seeing everything that goes with them."""
    recent = ui.runs(ui.db_key(), 200)
    if recent.empty:
        return
    labels = ui.run_labels(recent)
    with st.expander("Rename or delete runs"):
        ids = list(recent["run_id"])
        c1, c2, c3 = st.columns([3, 3, 1])
        target = c1.selectbox("Run to rename", ids, key="backtest_rename_pick",
                              format_func=lambda r: f"{labels.get(r, r)} · {r}")
        c2.text_input("New name", key="backtest_rename_to")
        if c3.button("Rename", key="backtest_rename", width="stretch"):
            if ui.attempt(lambda: store.rename_run(target, ss["backtest_rename_to"]) or True):
                ui.invalidate()
                st.rerun()
        doomed = st.multiselect("Runs to delete", ids, key="backtest_delete_pick",
                                format_func=lambda r: f"{labels.get(r, r)} · {r}")
        if doomed:
            plan = store.run_footprint(doomed)
            st.markdown("**Deleting removes:**")
            st.dataframe(plan, hide_index=True, width="stretch")
            files = st.checkbox("Also remove their exported CSV/JSONL files", key="backtest_delete_files")
            sure = st.checkbox(f"Yes, delete {ui.plural(len(doomed), 'run')}", key="backtest_delete_sure")
            if st.button("Delete", key="backtest_delete", disabled=not sure, type="primary"):
                done = ui.attempt(lambda: delete_runs(store, doomed, delete_exports=files))
                if done is not None:
                    ui.invalidate()
                    if ss.get("backtest_view_run_id") in doomed:
                        ss["backtest_view_run_id"] = None
                    ss["backtest_manage_msg"] = (f"Deleted {ui.plural(done['runs'], 'run')} and "
                                                 + ", ".join(f"{v:,} {k}" for k, v in done["rows"].items()) + ".")
                    for k in ("backtest_delete_pick", "backtest_delete_sure", "backtest_delete_files"):
                        ss.pop(k, None)
                    st.rerun()
    if ss.get("backtest_manage_msg"):
        st.success(ss.pop("backtest_manage_msg"))


tab_run, tab_batch, tab_recent = st.tabs(["Run", "Batch", "Recent runs"])
with tab_run:
    settings_form()
    if st.button("Run backtest", type="primary", key="backtest_run"):
        run_single()
with tab_batch:
    batch_tab()
with tab_recent:
    picked = ui.recent_runs(ui.db_key(), key="backtest")
    if picked:
        ss["backtest_view_run_id"] = picked
    manage_runs()

st.divider()
if ss["backtest_view_run_id"]:
    st.button("Put this run's settings in the form", key="backtest_load_settings", on_click=load_settings,
              args=(ss["backtest_view_run_id"],),
              help="To change one setting and run it again: the form above takes every setting of this run")
    if ss.get("backtest_load_msg"):
        level, text = ss.pop("backtest_load_msg")
        getattr(st, level)(text + ("" if level == "error" else " Change what you like under **Run** and press "
                                                               "**Run backtest**."))
    ui.run_result(ui.db_key(), ss["backtest_view_run_id"], key="backtest")
else:
    st.info("Set up a run above and press **Run backtest**, or reopen one under **Recent runs**.")
