"""Home: what is in the database, where it lives, how to get more data, and one-click demo data."""

from datetime import date

import pandas as pd
import streamlit as st

import ui
from covcall.basis import fetch_basis, import_basis
from covcall.chains import fetch_chain, import_chain
from covcall.config import run_defaults
from covcall.demo import generate_demo_data
from covcall.events import import_events
from covcall.market.csv_import import import_candles_csv, import_iv_csv
from covcall.market.exchange import fetch_candles, fetch_dvol

settings = ui.get_settings()
store = ui.get_store()
db = ui.db_key()

st.title("covcall")
st.caption("Research workbench for BTC / ETH covered-call strategies on Deribit-style options.")

top = st.container()  # filled last, so it shows what the demo button below just made

st.divider()
st.subheader("Get market data")
st.caption("Everything lands in the DuckDB cache: backtests use it with data source `store` (or `ccxt` for "
           "fetched series). A bad file is refused as a whole, with the lines at fault; nothing cached is lost.")
tab_csv, tab_iv, tab_fetch, tab_chain, tab_events, tab_basis = st.tabs(
    ["Import candles (CSV)", "Import an IV index (CSV)", "Fetch from an exchange", "Option chains (Deribit)",
     "Scheduled events (CSV)", "Forward basis"])


def _report(done: dict) -> None:
    ui.invalidate()
    if not done["rows"]:
        st.info(f"{done['underlying']}: nothing cached for that window")
        return
    st.success(f"{done['underlying']} {done['timeframe']}: {ui.fmt_count(done['rows'])} rows from "
               f"{done['start']:%Y-%m-%d %H:%M} to {done['end']:%Y-%m-%d %H:%M} cached"
               + (f" ({done['gaps']} gaps reported, not filled)" if done.get("gaps") else ""))


with tab_csv:
    c1, c2, c3 = st.columns([3, 1, 1])
    upload = c1.file_uploader("OHLCV file", type=["csv", "txt"], key="home_csv_file",
                              help="A timestamp/date/time column (ISO text or epoch s/ms), then open, high, low, "
                                   "close (volume optional), any order and case; newest-first files are fine")
    c2.text_input("Underlying", value="BTC", key="home_csv_underlying")
    c3.selectbox("Timeframe", ["1d", "4h", "1h"], key="home_csv_timeframe")
    if st.button("Import candles", key="home_csv_import", disabled=upload is None):
        done = ui.attempt(lambda: import_candles_csv(store, upload, st.session_state["home_csv_underlying"]
                                                     .strip().upper(), st.session_state["home_csv_timeframe"]))
        if done is not None:
            _report(done)

with tab_iv:
    c1, c2 = st.columns([3, 1])
    iv_upload = c1.file_uploader("IV file", type=["csv", "txt"], key="home_iv_file",
                                 help="A date column and an IV column (close/iv/dvol/value) in vol points like "
                                      "DVOL (47.5 = 47.5 %); a daily value counts from the next midnight")
    c2.text_input("Underlying", value="BTC", key="home_iv_underlying")
    if st.button("Import IV index", key="home_iv_import", disabled=iv_upload is None):
        done = ui.attempt(lambda: import_iv_csv(store, iv_upload,
                                                st.session_state["home_iv_underlying"].strip().upper()))
        if done is not None:
            _report(done)

with tab_fetch:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.selectbox("What", ["candles", "Deribit DVOL"], key="home_fetch_what")
    c2.selectbox("Underlying", ["BTC", "ETH"], key="home_fetch_underlying")
    c3.selectbox("Timeframe", ["1d", "4h", "1h"], key="home_fetch_timeframe",
                 help="Bar length. Deribit DVOL comes daily (1d) or hourly (1h): hourly values are fresher within "
                      "each day and join the daily history as one index.")
    c4.date_input("Start", value=date(2024, 1, 1), format=ui.DATE_FORMAT, key="home_fetch_start")
    c5.date_input("End (inclusive)", value=date(2024, 3, 31), format=ui.DATE_FORMAT, key="home_fetch_end")
    st.caption(f"Exchange for candles: `{settings.exchange_id}` (`EXCHANGE_ID`). Only spans not cached yet "
               "are fetched; pages fetched before an error stay cached.")
    if st.button("Fetch", key="home_fetch_go"):
        ss = st.session_state
        with st.spinner("fetching"):
            if ss["home_fetch_what"] == "candles":
                done = ui.attempt(lambda: fetch_candles(store, ss["home_fetch_underlying"], ss["home_fetch_timeframe"],
                                                        ss["home_fetch_start"], ss["home_fetch_end"],
                                                        exchange=settings.exchange_id))
            else:
                done = ui.attempt(lambda: fetch_dvol(store, ss["home_fetch_underlying"], ss["home_fetch_start"],
                                                     ss["home_fetch_end"], timeframe=ss["home_fetch_timeframe"]))
        ui.invalidate()
        if done is not None:
            _report({**done, "timeframe": done.get("timeframe", "1d")})

def _chain_report(done: dict) -> None:
    ui.invalidate()
    dropped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in done["dropped"].items() if n)
    st.success(f"{done['underlying']} {done['kind'].replace('_', '-')} file: {done['snapshots']} snapshots "
               f"({done['new_snapshots']} new), {ui.fmt_count(done['quotes'])} quotes from "
               f"{done['first']:%Y-%m-%d %H:%M} to {done['last']:%Y-%m-%d %H:%M} UTC"
               + (f"; dropped: {dropped}" if dropped else "") + ". Calibrate the model to them on the Chain page.")


with tab_chain:
    st.caption("Real Deribit option chains: the chain model is calibrated to them (Chain page, `covcall calibrate`) "
               "and measured against them (`covcall realism`). Each distinct timestamp is one snapshot; importing a "
               "file again changes nothing; placeholder quotes (ask 1.0 / 999 %, no bid) are dropped and counted.")
    c1, c2, c3 = st.columns([3, 1.4, 2])
    ch_upload = c1.file_uploader("Chain file", type=["csv", "gz", "txt"], key="home_chain_file",
                                 help="Deribit ticker rows (timestamp, instrument_name, underlying_price, index_price, "
                                      "mark_price, mark_iv, best_bid_price, best_ask_price, ...) or book-summary rows "
                                      "(public/get_book_summary_by_currency), plain or gzipped")
    c2.selectbox("Underlying", ["from the file", "BTC", "ETH"], key="home_chain_underlying",
                 help="A file of another underlying than the one picked is refused whole")
    picked = st.session_state["home_chain_underlying"]
    if c1.button("Import chain", key="home_chain_import", disabled=ch_upload is None):
        done = ui.attempt(lambda: import_chain(store, ch_upload, None if picked == "from the file" else picked))
        if done is not None:
            _chain_report(done)
    if c2.button("Fetch live (Deribit)", key="home_chain_fetch",
                 help="Store today's chain from Deribit's public API (run `covcall data fetch --chain` on a schedule "
                      "to build a history)"):
        coin = "BTC" if picked == "from the file" else picked
        with st.spinner(f"fetching the {coin} chain"):
            done = ui.attempt(lambda: fetch_chain(store, coin))
        if done is not None:
            _chain_report(done)
    snaps = ui.snapshots(db)
    if snaps.empty:
        c3.info("No chain snapshots stored yet.")
    else:
        per = snaps.groupby("underlying").agg(snapshots=("snapshot_id", "count"), first=("ts", "min"),
                                              last=("ts", "max")).reset_index()
        c3.dataframe(per, hide_index=True, width="stretch", column_config={
            "first": st.column_config.DatetimeColumn("first (UTC)", format="YYYY-MM-DD HH:mm"),
            "last": st.column_config.DatetimeColumn("last (UTC)", format="YYYY-MM-DD HH:mm")})

with tab_events:
    calendar = ui.event_calendar(db)
    shipped = calendar[calendar["source"] == "packaged"]
    st.caption(f"Options expiring after a US CPI release or an FOMC statement carry the event's variance on real data "
               f"(not on the synthetic market). covcall ships {len(shipped)} of them "
               f"({shipped['ts'].min():%Y-%m} .. {shipped['ts'].max():%Y-%m}), sized from realised moves by "
               "`covcall calibrate`. Add later releases or one-offs (an ETF decision, an upgrade) here.")
    c1, c2 = st.columns([3, 2])
    ev_upload = c1.file_uploader("Event calendar", type=["csv", "txt"], key="home_events_file",
                                 help="Columns ts (UTC, 2024-01-10T21:00:00Z), kind (cpi, fomc, other), optional "
                                      "underlying (BTC, ETH, * for all), move_pct (one-sigma move in %; empty = "
                                      "the fitted size of its kind), label")
    if c1.button("Import events", key="home_events_import", disabled=ev_upload is None):
        done = ui.attempt(lambda: import_events(store, ev_upload))
        if done is not None:
            ui.invalidate()
            st.success(f"{done['events']} events: {done['new']} new, {done['updated']} updated")
            calendar = ui.event_calendar(db)
    stored = calendar[calendar["source"] != "packaged"]
    if stored.empty:
        c2.info("No events of your own stored yet.")
    else:
        c2.dataframe(stored.assign(ts=stored["ts"].dt.tz_convert(None), move=stored["move"] * 100)[
                         ["ts", "kind", "underlying", "move", "label"]], hide_index=True, width="stretch",
                     column_config={"ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm"),
                                    "move": st.column_config.NumberColumn("move %", format="%.1f")})

with tab_basis:
    st.caption("Deribit prices options off the expiry's future. Backtests on real data price each decision's forward "
               "with the basis known then (at most 7 days old), else the calibration's one number. Every imported "
               "chain snapshot adds its own; add a history here (CSV) or store today's from Deribit's futures (run "
               "it on a schedule to build one).")
    c1, c2, c3 = st.columns([3, 1, 2])
    b_upload = c1.file_uploader("Basis history", type=["csv", "txt"], key="home_basis_file",
                                help="Columns ts (UTC, when the value was known) and basis_ann (per year, 0.10 = "
                                     "10 %/yr)")
    c2.selectbox("Underlying", ["BTC", "ETH"], key="home_basis_underlying")
    if c1.button("Import basis", key="home_basis_import", disabled=b_upload is None):
        done = ui.attempt(lambda: import_basis(store, b_upload, st.session_state["home_basis_underlying"]))
        if done is not None:
            ui.invalidate()
            st.success(f"{done['rows']} {done['underlying']} basis observations, median "
                       f"{100 * done['median_basis_ann']:.1f} %/yr")
    if c2.button("Fetch live basis (Deribit)", key="home_basis_fetch"):
        done = ui.attempt(lambda: fetch_basis(store, st.session_state["home_basis_underlying"]))
        if done is not None:
            ui.invalidate()
            st.success(f"{done['underlying']}: {100 * done['basis_ann']:.2f} %/yr from {done['futures']} futures")
    held = ui.series(db)
    held = held[held["kind"] == "basis"] if len(held) else held
    if held.empty:
        c3.info("No basis history stored yet.")
    else:
        c3.dataframe(held[["source", "underlying", "rows", "start", "end"]], hide_index=True, width="stretch")

st.divider()
st.subheader("Demo data")
st.write("Fill the database with a small offline demo: 8 synthetic daily backtests (BTC, ETH x 2022, 2023 x "
         "both exit styles), a saved range set and one walk. Takes a few seconds.")
if st.button("Generate demo data", type="primary", key="home_demo"):
    bar = st.progress(0.0, text="starting")
    export_dir = settings.training_data_dir if settings.save_training_data else None
    made = ui.attempt(lambda: generate_demo_data(store, progress=ui.fraction_progress(bar),
                                                 export_dir=export_dir, defaults=run_defaults(settings)), bar)
    ui.invalidate()  # whatever finished (even before an error) is in the database and should show
    if made is not None:
        st.session_state["home_demo_result"] = made

made = st.session_state.get("home_demo_result")
if made:
    st.success(
        ("Demo data is already there (nothing was added): " if made.get("already") else "Demo data ready: ")
        + f"{made['runs']} backtests (batch `{made['batch_id']}`), "
        f"{ui.fmt_count(made['examples'])} training examples, range set `{made['range_set']}`, "
        f"walk `{made['walk_id']}` (best: {made['best_strategy']}).")
    st.page_link("pages/backtest.py", label="Open the backtests", icon=":material/candlestick_chart:")
    st.page_link("pages/dataset.py", label="Browse the training examples", icon=":material/table:")
    st.page_link("pages/leaderboard.py", label="See the walk's leaderboard", icon=":material/leaderboard:")


def market_preview() -> None:
    """BTC and ETH daily closes from the default source, so a fresh install shows the market it will use."""
    import plotly.graph_objects as go

    source = settings.data_source if settings.data_source != "ccxt" else "store"
    fig = go.Figure()
    shown = []
    for coin, axis in (("BTC", "y"), ("ETH", "y2")):
        try:
            c = ui.candles(db, coin, "1d", date(2019, 1, 1), date(2026, 12, 31), source, int(settings.synthetic_seed))
        except Exception:  # nothing cached for this coin yet: the preview just leaves it out
            continue
        fig.add_trace(go.Scatter(x=c["ts"], y=c["close"], name=f"{coin} (USD)", yaxis=axis))
        shown.append(coin)
    if not shown:
        return
    fig.update_layout(yaxis=dict(type="log", tickprefix="$", tickformat="~s", title="BTC"),
                      yaxis2=dict(type="log", tickprefix="$", tickformat=",.0f", overlaying="y", side="right",
                                  title="ETH", showgrid=False))
    st.markdown(f"**Market in use** (source `{source}`, daily closes, log scale)")
    st.plotly_chart(ui.layout(fig, height=300), width="stretch", key="home_market")
    with st.expander("Is the synthetic market like the real one? (the stored data beside it)"):
        if not st.toggle("Compare", key="home_compare_market",
                         help="Daily vol, fat tails, drawdowns, volatility clustering and the IV premium over later "
                              "realised vol, 2019-2025 (`covcall data compare-synthetic --store`)"):
            return
        table = ui.attempt(lambda: ui.market_comparison(db, int(settings.synthetic_seed)))
        if table is None:
            return
        if not any(c.startswith("stored") for c in table.columns):
            st.info("No BTC or ETH daily history stored: import candles (and an IV index like DVOL) below, or fetch "
                    "them, to set the synthetic market beside real data.")
        st.dataframe(table.reset_index(), hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(c, format="%.3f") for c in table.columns})
        st.caption("The synthetic market's figures are fitted to real BTC / ETH history (docs/market.md): fat "
                   "tails through crash days, volatility clustering, and an IV index priced above the vol that "
                   "follows it, as real DVOL is.")


def database_summary() -> None:

    try:
        counts = ui.counts(db)
    except Exception as err:  # a locked or unreadable file must not crash the landing page
        st.error(str(err))
        st.stop()

    st.subheader("In the database")
    cols = st.columns(7)
    cols[6].metric("Chain snapshots", ui.fmt_count(counts["chain_snapshots"]),
                   help="Real Deribit option chains (covcall data import-chain / fetch --chain)")
    cols[0].metric("Series", ui.fmt_count(len(ui.series(db))))
    cols[1].metric("Candles", ui.fmt_count(counts["candles"]))
    cols[2].metric("Runs", ui.fmt_count(counts["runs"]))
    cols[3].metric("Examples", ui.fmt_count(counts["examples"]))
    cols[4].metric("Models", ui.fmt_count(counts["models"]))
    cols[5].metric("Walks", ui.fmt_count(counts["walks"]))
    st.caption(f"{ui.fmt_count(counts['candidates'])} candidates · {ui.fmt_count(counts['trades'])} trades · "
               f"{ui.fmt_count(counts['range_sets'])} saved range sets · {ui.fmt_count(counts['iv_series'])} IV points")

    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Cached market series**")
        series = ui.series(db)
        if series.empty:
            st.info("No market data cached yet. Backtests on the synthetic source need none; "
                    "import or fetch real data below, or with the commands here.")
        else:
            shown = series.assign(rows=series["rows"].map(ui.fmt_count),
                                  start=series["start"].dt.strftime("%Y-%m-%d %H:%M"),
                                  end=series["end"].dt.strftime("%Y-%m-%d %H:%M"))
            st.dataframe(shown, hide_index=True, width="stretch")
    with right:
        st.markdown("**Data source and database**")
        st.markdown(f"- Default data source: `{settings.data_source}` (`DATA_SOURCE`)\n"
                    f"- Database: `{settings.duckdb_path}` (`DUCKDB_PATH`)\n"
                    f"- Training-data exports: `{settings.training_data_dir}` "
                    f"({'on' if settings.save_training_data else 'off'}, `SAVE_TRAINING_DATA`)")

    snaps = ui.snapshots(db)
    if not snaps.empty:
        st.markdown("**Option-chain snapshots** (the chain model is calibrated to these: `covcall calibrate`)")
        st.dataframe(snaps.assign(ts=snaps["ts"].dt.tz_convert(None)), hide_index=True, width="stretch", height=220,
                     column_config={"ts": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm"),
                                    "index_price": st.column_config.NumberColumn("index", format="dollar"),
                                    "n_quotes": st.column_config.NumberColumn("quotes", format="localized")})
    unfinished = ui.unfinished_jobs(db)
    if unfinished:
        st.markdown("**Batches and walks that did not finish**")
        st.dataframe(pd.DataFrame(unfinished)[["kind", "job_id", "name", "status", "created_at", "error"]],
                     hide_index=True, width="stretch")
    market_preview()

    with st.expander("How to get more data", expanded=counts["candles"] == 0):
        st.code(
            "# import your own candles (CSV: ts, open, high, low, close, volume)\n"
            "covcall data import --csv btc_1h.csv --underlying BTC --timeframe 1h\n"
            "# fetch candles from an exchange via ccxt (EXCHANGE_ID, default binance) into the database\n"
            "covcall data fetch --underlying BTC --timeframe 1h --start 2023-01-01 --end 2024-12-31\n"
            "# implied volatility: fetch Deribit DVOL, or import your own index\n"
            "covcall data fetch --dvol --underlying BTC --start 2023-01-01 --end 2024-12-31\n"
            "covcall data import-iv --csv btc_dvol.csv --underlying BTC\n"
            "# what is cached; offline demo data (same as the button below)\n"
            "covcall data show\n"
            "covcall demo",
            language="bash")


with top:
    database_summary()
