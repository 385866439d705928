"""Dashboard shell: page config and menu, settings and store at the edge, the error boundary, progress."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import streamlit as st

from covcall.config import Settings, load_settings
from covcall.errors import ConfigError, describe
from covcall.store import Store
from ui.state import keep_page_state

DATE_FORMAT = "YYYY-MM-DD"  # every st.date_input shows ISO dates, like the core and the CLI


# -- settings and store ----------------------------------------------------------------------------
def navigation_pages() -> list[Any]:
    """The dashboard's pages, in menu order (app.py hands them to st.navigation)."""
    return [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/backtest.py", title="Backtest", icon=":material/candlestick_chart:"),
        st.Page("pages/ranges.py", title="Ranges", icon=":material/date_range:"),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/table:"),
        st.Page("pages/chain.py", title="Chain", icon=":material/view_list:"),
        st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    ]


def page_shell() -> Any:
    """Page config and navigation; app.py calls this once per run and runs the page it returns."""
    st.set_page_config(layout="wide", page_title="covcall", page_icon=":material/candlestick_chart:")
    page = st.navigation(navigation_pages(), position="hidden")
    sidebar_menu()
    return page


def sidebar_menu() -> None:
    """Our own menu (the built-in one is off in .streamlit/config.toml), so it looks the same on every visit."""
    with st.sidebar:
        for p in navigation_pages():
            st.page_link(p, label=p.title, icon=p.icon)


def _ensure_shell() -> None:
    """Wide layout and the dashboard's menu even when Streamlit ran a page without app.py.

    With a `pages/` folder next to the entry point, Streamlit starts in its folder-based multipage mode until
    some run calls st.navigation: a first visit straight to /backtest (and every AppTest run) executes
    pages/backtest.py alone. Here the page gets the wide layout and our menu, and the mode is switched off so
    the next run goes through app.py (same URL, same page). No rerun now: a click that started this run must
    count.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the folder mode
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.set_page_config(layout="wide", page_title="covcall", page_icon=":material/candlestick_chart:")
        sidebar_menu()


def get_settings() -> Settings:
    """The first call of every page: the shell, the kept state of other pages, and the settings (read once per
    session at the edge; a bad value stops the page with one readable line)."""
    _ensure_shell()
    keep_page_state()  # before any widget: values of the pages not shown now are kept for later
    return _settings()


def _settings() -> Settings:
    if "settings" in st.session_state:
        return st.session_state["settings"]
    try:
        settings = load_settings()
    except ConfigError as err:
        st.error(str(err))
        st.stop()
        raise  # unreachable: st.stop raises
    st.session_state["settings"] = settings
    return settings


@st.cache_resource(max_entries=4)
def _store_for(path: str, timeout_s: float) -> Store:
    return Store(path, timeout_s)


def get_store() -> Store:
    """The one Store of this dashboard (short-lived connections per operation, shareable with a CLI)."""
    settings = _settings()
    return _store_for(str(settings.duckdb_path), float(settings.store_timeout_s))


def attempt(action: Callable[[], Any], bar: Any = None) -> Any:
    """Run a user action; an error the user caused (bad file, full disk, refused setting) shows as one red line,
    a bug as a red line plus its details. Returns the action's result, or None when it failed (nothing saved is
    touched by the page)."""
    try:
        return action()
    except Exception as err:  # Streamlit's own stop/rerun signals are BaseExceptions and pass through
        _show(err)
    finally:
        if bar is not None:
            bar.empty()
    return None


def _show(err: Exception) -> None:
    message = describe(err)
    if message is not None:
        st.error(message)
        return
    st.error(f"unexpected error ({type(err).__name__}): {err}")
    with st.expander("details"):
        st.exception(err)


def run_page(page: Any) -> None:
    """The page's error boundary: whatever a page raises ends as one readable line, never a bare traceback."""
    try:
        page.run()
    except Exception as err:
        print(f"covcall page error: {type(err).__name__}: {err}", file=sys.stderr)
        _show(err)


# -- progress ----------------------------------------------------------------------------------------
def fraction_progress(bar: Any) -> Callable[[float, str], None]:
    """Progress callback (fraction, message) for the core, drawn on an st.progress bar."""
    def say(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)
    return say


def count_progress(bar: Any, what: str = "processed") -> Callable[[int, int, str], None]:
    """Progress callback (done, total, label) for batches and walks: 'processed 3 / 8: label'."""
    def say(done: int, total: int, label: str) -> None:
        frac = done / total if total else 1.0
        bar.progress(min(max(frac, 0.0), 1.0), text=f"{what} {done} / {total}: {label}")
    return say


def plan_caption(settings: Settings, n_units: int, work_s: float | None) -> None:
    """Beside a sweep's button: what pressing it would start (`covcall batch/walk --plan`)."""
    from covcall.compute import plan_words, sweep_plan
    from covcall.config import compute_plan

    st.caption(plan_words(sweep_plan(compute_plan(settings, n_units, work_s=work_s), n_units, work_s)) + ".")


def sweep_start(key: str, settings: Settings, n_units: int, work_s: float | None = None) -> Any:
    """Where a sweep is about to run (COMPUTE / WORKERS / DASK_SCHEDULER_ADDRESS) and a Stop button.

    Stop makes Streamlit rerun the page, which stops the script inside the sweep's progress callback; the
    executor then cancels the units not yet finished and what finished stays saved. The next run of the page
    says so (`sweep_stopped`).
    """
    from covcall.config import compute_plan

    spec = compute_plan(settings, n_units, work_s=work_s)
    holder = st.empty()  # cleared by sweep_done: no Stop button next to a finished sweep
    with holder.container():
        c1, c2 = st.columns([5, 1])
        c1.caption(f"Running on: {spec.describe()}")
        c2.button("Stop", key=f"{key}_stop", help="Cancel the units not yet finished; finished ones are kept")
    st.session_state[f"{key}_stop_holder"] = holder  # per session: two users' sweeps never share it
    st.session_state[f"{key}_ran_on"] = spec.describe()
    st.session_state[f"{key}_running"] = True
    return spec


def sweep_done(key: str, dashboard: str | None = None) -> None:
    st.session_state[f"{key}_running"] = False
    holder = st.session_state.pop(f"{key}_stop_holder", None)
    if holder is not None:
        holder.empty()
    ran_on = st.session_state.pop(f"{key}_ran_on", None)
    if ran_on:
        st.caption(f"Ran on: {ran_on}")
    if dashboard:
        st.caption(f"Dask dashboard of that run: {dashboard}")


def sweep_stopped(key: str, what: str) -> None:
    """After Stop (or a closed tab) a sweep left running: say what happened."""
    if st.session_state.get(f"{key}_running"):
        st.session_state[f"{key}_running"] = False
        st.warning(f"The {what} was stopped: units not yet finished were cancelled, finished ones are saved "
                   "(see the recent runs below); it is listed as interrupted.")
