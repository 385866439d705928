"""Views of the Ranges page: the range set being edited, read from the editor, and its price chart."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from covcall.errors import CovcallError
from covcall.ranges import Range, RangeSet
from ui.cache import candles
from ui.charts import shade_ranges


def _date(v: object) -> date | None:
    if v is None or v is pd.NaT or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, str):
        try:
            return date.fromisoformat(v[:10])
        except ValueError:
            return None
    return pd.Timestamp(v).date()


def range_set_on_screen(edited: pd.DataFrame, ss: Any) -> tuple[RangeSet, list[str]]:
    """The range set on screen, plus problems with rows the core cannot read (missing dates)."""
    problems: list[str] = []
    train: list[Range] = []
    for i, row in enumerate(edited.to_dict("records"), start=1):
        s, e = _date(row.get("start")), _date(row.get("end"))
        note = row.get("note")
        note = "" if note is None or (isinstance(note, float) and pd.isna(note)) else str(note)
        if s is None and e is None and not note:
            continue  # an untouched new row
        if s is None or e is None:
            problems.append(f"train range {i}: pick both a start and an end date")
            continue
        train.append(Range(s, e, note))
    test = Range(ss["ranges_test_start"], ss["ranges_test_end"], ss.get("ranges_test_note", ""))
    rs = RangeSet(name=ss["ranges_name"].strip(), train=train, test=test, gap_days=int(ss["ranges_gap_days"]),
                  strict=bool(ss["ranges_strict"]))
    return rs, problems


def range_chart(db: str, rs: RangeSet, underlying: str, source: str, seed: int) -> go.Figure | None:
    days = [r.start for r in rs.train] + [rs.test.start] + [r.end for r in rs.train] + [rs.test.end]
    lo, hi = min(days) - timedelta(days=60), max(days) + timedelta(days=30)
    try:
        c = candles(db, underlying, "1d", lo, hi, source, seed)
    except CovcallError as err:
        st.warning(f"no price chart: {err}")
        return None
    fig = go.Figure(go.Scatter(x=c["ts"], y=c["close"], name=f"{underlying} close", line=dict(color="#333")))
    shade_ranges(fig, [(r.start, r.end, r.note) for r in rs.train], (rs.test.start, rs.test.end, rs.test.note))
    fig.update_yaxes(tickprefix="$", tickformat=",.0f", type="log", dtick="D2")  # 1, 2, 5 a decade: not every digit
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      title=f"{underlying} daily close ({source} prices): training ranges green, test range orange")
    return fig
