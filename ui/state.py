"""Page state: one scheme for widget values that survive page switches, reruns and shared URLs.

Every page keeps its inputs in session-state keys prefixed with the page name (`backtest_start`, ...), declared
with `remember(key, default)`. Streamlit forgets a widget's value while its page is not shown; `keep_page_state`,
run by the shell before every page, re-assigns the remembered keys (Streamlit's documented way to keep them), so
a page never silently falls back to a default. The main inputs of a page are also mirrored in the URL (`query_state`), so a view can be shared and
reloaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import streamlit as st

_LOADED = "_query_loaded"


_REMEMBERED = "_remembered_keys"


def remember(key: str, default: Any) -> Any:
    """`st.session_state.setdefault` for a page input that must survive page switches: the key is registered, and
    `keep_page_state` keeps it while its page is not shown. Returns the current value."""
    ss = st.session_state
    ss.setdefault(_REMEMBERED, set()).add(key)
    return ss.setdefault(key, default)


def keep_page_state() -> None:
    """Re-assign every remembered page input, so the values of pages not shown now are there when the user
    comes back (Streamlit otherwise forgets a widget's value while its page is not rendered)."""
    ss = st.session_state
    for key in list(ss.get(_REMEMBERED, ())):
        if key in ss:
            ss[key] = ss[key]


def _parse(kind: Callable[[str], Any], text: str) -> Any:
    if kind is dt.date:
        return dt.date.fromisoformat(text)
    if kind is bool:
        return text.lower() in ("1", "true", "yes")
    return kind(text)


def _text(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def query_state(page: str, fields: dict[str, tuple[str, Callable[[str], Any], Callable[[Any], bool]]]) -> None:
    """Mirror page inputs in the URL: {param: (session key, type, is_valid)}.

    On the page's first run in a session, valid URL values replace the defaults (a shared link opens the same
    view; an invalid value is ignored, never guessed). On every run, the current values are written back.
    """
    ss = st.session_state
    loaded = ss.setdefault(_LOADED, set())
    if page not in loaded:
        loaded.add(page)
        for param, (key, kind, ok) in fields.items():
            raw = st.query_params.get(param)
            if raw is None:
                continue
            try:
                value = _parse(kind, raw)
            except (TypeError, ValueError):
                continue
            if ok(value):
                ss[key] = value
                ss.pop(f"{key}__widget", None)
    for param, (key, _kind, _ok) in fields.items():
        value = ss.get(key)
        if value is None or value == "":
            st.query_params.pop(param, None)
        elif st.query_params.get(param) != _text(value):
            st.query_params[param] = _text(value)


# -- widgets whose value survives interrupted runs ------------------------------------------------------
def kept(key: str) -> dict[str, Any]:
    """Keyword arguments for a widget whose value lives in st.session_state[key], not in widget state.

    A click that interrupts a page's first run can reset sliders and number inputs that took their value from
    session state to their minimum; a widget made with an explicit `value` from a plain session key, copied back
    on change, keeps it.
    """
    wkey = f"{key}__widget"

    def copy_back() -> None:
        st.session_state[key] = st.session_state[wkey]

    return {"key": wkey, "value": st.session_state[key], "on_change": copy_back}


def set_kept(key: str, value: Any) -> None:
    """Change a kept value from code (a preset, a reopened run): the widget re-reads it on the next run."""
    st.session_state[key] = value
    st.session_state.pop(f"{key}__widget", None)
