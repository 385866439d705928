"""Ranges: edit training ranges and the held-out test range, see leak checks live, save and load range sets."""

from datetime import date

import pandas as pd
import streamlit as st

import ui
from covcall.errors import CovcallError
from covcall.ranges import (
    Range,
    RangeSet,
    apply_fix,
    fix_all,
    has_errors,
    load_range_set,
    presets,
    rolling,
    save_range_set,
    suggest_ranges,
    synthetic_preset,
)

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()
ss = st.session_state


def rows_of(rs: RangeSet) -> list[dict]:
    return [{"start": r.start, "end": r.end, "note": r.note} for r in rs.train]


def load_into_editor(rs: RangeSet) -> None:
    """Replace what the editor shows (a new editor key drops its pending edits)."""
    ss["ranges_train"] = rows_of(rs)
    ss["ranges_test_start"], ss["ranges_test_end"] = rs.test.start, rs.test.end
    ss["ranges_test_note"] = rs.test.note
    ss["ranges_gap_days"] = int(rs.gap_days)
    ss["ranges_strict"] = bool(rs.strict)
    ss["ranges_name"] = rs.name
    ss["ranges_editor_version"] = ss.get("ranges_editor_version", 0) + 1
    for key in ("ranges_train", "ranges_test_start", "ranges_test_end", "ranges_test_note", "ranges_gap_days",
                "ranges_strict", "ranges_name", "ranges_editor_version"):
        ui.remember(key, ss[key])


def preset_choices() -> dict[str, RangeSet]:
    """Presets for the chosen price source: real-history sets describe real markets (store), regime-derived
    ones the synthetic market's own bull, dump and chop stretches."""
    if ss.get("ranges_source", "synthetic") != "synthetic":
        return dict(presets())
    choices: dict[str, RangeSet] = {}
    for u in ("BTC", "ETH"):
        try:
            sp = synthetic_preset(u, int(settings.synthetic_seed), gap_days=int(ss.get("ranges_gap_days", 30)))
        except CovcallError:
            continue
        choices[sp.name] = sp
    return choices or dict(presets())


ui.remember("ranges_source", "store" if settings.data_source == "store" else "synthetic")
if "ranges_train" not in ss:
    load_into_editor(next(iter(preset_choices().values())))
ui.remember("ranges_underlying", "BTC")
ui.remember("ranges_max_label_days", 30)
ui.remember("ranges_flash", None)


# Buttons that refill the editor run as callbacks: widget values may only change before widgets are drawn.
def use_preset() -> None:
    load_into_editor(preset_choices()[ss["ranges_preset_pick"]])
    ss["ranges_flash"] = ("success", f"filled from preset '{ss['ranges_preset_pick']}'")


def load_saved() -> None:
    name = ss["ranges_load_pick"]
    try:
        load_into_editor(load_range_set(store, name))
    except CovcallError as err:
        ss["ranges_flash"] = ("error", str(err))
    else:
        ss["ranges_flash"] = ("success", f"loaded range set '{name}'")


def suggest() -> None:
    test = Range(ss["ranges_test_start"], ss["ranges_test_end"], ss.get("ranges_test_note", ""))
    try:
        c = ui.candles(db, ss["ranges_underlying"], "1d", date(2019, 1, 1), test.end, ss["ranges_source"],
                       int(settings.synthetic_seed))
        close = pd.Series(c["close"].to_numpy(), index=pd.DatetimeIndex(c["ts"]))
        suggested = suggest_ranges(close, test=test, gap_days=int(ss["ranges_gap_days"]),
                                   name=ss["ranges_name"].strip() or "suggested")
    except CovcallError as err:
        ss["ranges_flash"] = ("error", str(err))
    else:
        load_into_editor(suggested)
        ss["ranges_flash"] = ("success", f"suggested {ui.plural(len(suggested.train), 'training range')} from "
                                         f"{ss['ranges_underlying']} regimes")


def apply_issue_fix(rs: RangeSet, issue) -> None:
    fixed = apply_fix(rs, issue)
    load_into_editor(fixed)
    f = issue.fix
    what = (f"the test range is now {fixed.test}" if f["target"] == "test"
            else f"train range {f['index']} is now {fixed.train[int(f['index']) - 1]}")
    ss["ranges_flash"] = ("success", f"fix applied: {what}")


def apply_all_fixes(rs: RangeSet) -> None:
    load_into_editor(fix_all(rs, float(ss["ranges_max_label_days"])))
    ss["ranges_flash"] = ("success", "every suggested fix applied")


def use_window() -> None:
    windows = rolling(ss["ranges_roll_start"], int(ss["ranges_roll_train"]), int(ss["ranges_roll_test"]),
                      int(ss["ranges_roll_step"]), int(ss["ranges_gap_days"]), int(ss["ranges_roll_count"]))
    picked = next(w for w in windows if w.name == ss["ranges_roll_pick"])
    load_into_editor(picked)
    ss["ranges_flash"] = ("success", f"filled from rolling window '{picked.name}'")


st.title("Ranges")
st.caption("Training ranges feed fitting; the test range is held out. Leak checks run as you edit.")
if ss["ranges_flash"]:
    kind, text = ss["ranges_flash"]
    (st.success if kind == "success" else st.error)(text)
    ss["ranges_flash"] = None

top = st.columns([1, 1, 1, 1])
top[0].selectbox("Underlying (price chart, suggestions)", ["BTC", "ETH"], key="ranges_underlying")
top[1].selectbox("Price source", ["synthetic", "store"], key="ranges_source")
top[2].number_input("Longest label horizon (days)", 0, 400, step=1, key="ranges_max_label_days",
                    help="The largest DTE a strategy may hold: training labels run this long past a range's end")
top[3].text_input("Range set name", key="ranges_name")

left, right = st.columns([3, 2])
with left:
    st.markdown("**Training ranges**")
    base = pd.DataFrame(ss["ranges_train"], columns=["start", "end", "note"])
    for col in ("start", "end"):
        base[col] = pd.to_datetime(base[col]).dt.date
    edited = st.data_editor(
        base, num_rows="dynamic", hide_index=True, width="stretch",
        key=f"ranges_editor_{ss['ranges_editor_version']}",
        column_config={"start": st.column_config.DateColumn("start", format="YYYY-MM-DD"),
                       "end": st.column_config.DateColumn("end (inclusive)", format="YYYY-MM-DD"),
                       "note": st.column_config.TextColumn("note", width="large", default="")})
with right:
    st.markdown("**Test range**")
    t1, t2 = st.columns(2)
    t1.date_input("Test start", format=ui.DATE_FORMAT, key="ranges_test_start", min_value=date(2010, 1, 1), max_value=date(2035, 12, 31))
    t2.date_input("Test end (inclusive)", format=ui.DATE_FORMAT, key="ranges_test_end", min_value=date(2010, 1, 1),
                  max_value=date(2035, 12, 31))
    g1, g2 = st.columns(2)
    g1.number_input("Gap days", 0, 365, step=1, key="ranges_gap_days",
                    help="Days left empty between a training range's end and the test start")
    g2.write("")
    g2.checkbox("Strict gap", key="ranges_strict",
                help="Strict: a gap shorter than the label horizon is an error, not a warning")

rs, problems = ui.range_set_on_screen(edited, ss)
issues = rs.validate(float(ss["ranges_max_label_days"]))
blocking = bool(problems) or has_errors(issues) or not rs.name

st.markdown("**Checks**")
for p in problems:
    st.error(p)
for n, issue in enumerate(issues):
    {"error": st.error, "warning": st.warning, "note": st.info}[issue.level](issue.message)
    if issue.fix is not None and issue.level != "note":
        st.button("Apply this fix", key=f"ranges_fix_{n}", on_click=apply_issue_fix, args=(rs, issue))
fixable = [i for i in issues if i.level == "error" and i.fix]
if len(fixable) > 1:
    st.button("Apply every fix", key="ranges_fix_all", on_click=apply_all_fixes, args=(rs,))
if not problems and not issues:
    st.success(f"{ui.plural(len(rs.train), 'training range')} and the test range pass every check.")
if not rs.name:
    st.error("give the range set a name to save it")

fig = ui.range_chart(db, rs, ss["ranges_underlying"], ss.get("ranges_source", "synthetic"),
                     int(settings.synthetic_seed))
if fig is not None:
    st.plotly_chart(fig, width="stretch", key="ranges_chart")

save_col, load_col = st.columns(2)
with save_col:
    st.markdown("**Save**")
    if st.button(f"Save range set '{rs.name}'", type="primary", disabled=blocking, key="ranges_save",
                 help="Fix the errors above to save" if blocking else None):
        ss["ranges_confirm"] = None
        if rs.name in ui.range_set_names(db) and load_range_set(store, rs.name).to_dict() != rs.to_dict():
            ss["ranges_confirm"] = rs.name  # a different set holds the name: ask before replacing it
        else:
            outcome = ui.attempt(lambda: save_range_set(store, rs))
            if outcome is not None:
                ui.invalidate()
                st.success(f"range set '{rs.name}' {outcome}")
    if ss.get("ranges_confirm") == rs.name and not blocking:
        st.warning(f"A different range set named '{rs.name}' is already saved. Replace it with the one on screen?")
        o1, o2 = st.columns(2)
        if o1.button("Replace it", key="ranges_overwrite"):
            if ui.attempt(lambda: save_range_set(store, rs, overwrite=True)) is not None:
                ui.invalidate()
                st.success(f"range set '{rs.name}' replaced")
            ss["ranges_confirm"] = None
        if o2.button("Keep the saved one", key="ranges_keep_saved"):
            ss["ranges_confirm"] = None
with load_col:
    st.markdown("**Load**")
    names = ui.range_set_names(db)
    if names:
        lc1, lc2 = st.columns([3, 1])
        lc1.selectbox("Saved range sets", names, key="ranges_load_pick", label_visibility="collapsed")
        lc2.button("Load", key="ranges_load", width="stretch", on_click=load_saved)
        with st.expander("Rename or delete a saved set"):
            picked = ss["ranges_load_pick"]
            rc1, rc2 = st.columns([3, 1])
            rc1.text_input("New name", key="ranges_rename_to", placeholder=picked)
            if rc2.button("Rename", key="ranges_rename", width="stretch"):
                if ui.attempt(lambda: store.rename_range_set(picked, ss["ranges_rename_to"]) or True):
                    ui.invalidate()
                    ss["ranges_manage_msg"] = f"Renamed '{picked}' to '{ss['ranges_rename_to'].strip()}'."
                    st.rerun()
            sure = st.checkbox(f"Yes, delete '{picked}' (the walks that used it keep their copy)",
                               key="ranges_delete_sure")
            if st.button("Delete", key="ranges_delete", disabled=not sure):
                if ui.attempt(lambda: store.delete_range_set(picked) or True):
                    ui.invalidate()
                    ss["ranges_manage_msg"] = f"Deleted range set '{picked}'."
                    ss.pop("ranges_delete_sure", None)
                    st.rerun()
    else:
        st.caption("No saved range sets yet.")
    if ss.get("ranges_manage_msg"):
        st.success(ss.pop("ranges_manage_msg"))

st.divider()
st.subheader("Fill from a preset, a regime suggestion or the rolling generator")
p_col, s_col, r_col = st.columns(3)
with p_col:
    st.markdown("**Presets**")
    st.selectbox("Preset", list(preset_choices()), key="ranges_preset_pick")
    st.button("Use preset", key="ranges_use_preset", on_click=use_preset)
with s_col:
    st.markdown("**Regime suggestion**")
    st.caption("One training range per regime (bull, chop, dump): the longest of each that ends "
               "`gap days` before the test range, from the selected underlying's daily closes.")
    st.button("Suggest ranges", key="ranges_suggest", on_click=suggest)
with r_col:
    st.markdown("**Rolling generator**")
    ui.remember("ranges_roll_start", date(2022, 1, 1))
    ui.remember("ranges_roll_train", 180)
    ui.remember("ranges_roll_test", 60)
    ui.remember("ranges_roll_step", 60)
    ui.remember("ranges_roll_count", 4)
    r1, r2 = st.columns(2)
    r1.date_input("First training day", format=ui.DATE_FORMAT, key="ranges_roll_start")
    r2.number_input("Windows", 1, 50, key="ranges_roll_count")
    r3, r4, r5 = st.columns(3)
    r3.number_input("Train days", 1, 2000, key="ranges_roll_train")
    r4.number_input("Test days", 1, 1000, key="ranges_roll_test")
    r5.number_input("Step days", 1, 1000, key="ranges_roll_step")
    try:
        windows = rolling(ss["ranges_roll_start"], int(ss["ranges_roll_train"]), int(ss["ranges_roll_test"]),
                          int(ss["ranges_roll_step"]), int(ss["ranges_gap_days"]), int(ss["ranges_roll_count"]))
    except CovcallError as err:
        st.error(str(err))
        windows = []
    if windows:
        st.dataframe(pd.DataFrame([{"window": w.name, "train": str(w.train[0]), "test": str(w.test)}
                                   for w in windows]), hide_index=True, width="stretch")
        names_w = [w.name for w in windows]
        st.selectbox("Window to edit", names_w, key="ranges_roll_pick")
        st.button("Use window", key="ranges_use_window", on_click=use_window)
