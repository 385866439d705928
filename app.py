"""covcall dashboard entry point: page config, settings check, navigation (`streamlit run app.py`)."""

import streamlit as st

import ui

st.set_page_config(layout="wide", page_title="covcall", page_icon=":chart_with_upwards_trend:")
ui.get_settings()

st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/backtest.py", title="Backtest", icon=":material/candlestick_chart:"),
    st.Page("pages/ranges.py", title="Ranges", icon=":material/date_range:"),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/table:"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
]).run()
