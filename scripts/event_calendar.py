"""Write covcall/event_calendar.csv: the US CPI releases and FOMC statements of 2021-2025 as UTC timestamps.

Dates are the Bureau of Labor Statistics CPI release schedule (08:30 New York time) and the Federal Reserve's FOMC
statement schedule (14:00 New York time), as published; 2025's shutdown moved the September CPI to 2025-10-24 and
cancelled October's. `scripts/event_check.py` checks every date against the candles (an event bar moves more than
the same hour on other days). Later events: `covcall data import-events --file F`.

    .venv/bin/python scripts/event_calendar.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

CPI = """
2021-01-13 2021-02-10 2021-03-10 2021-04-13 2021-05-12 2021-06-10 2021-07-13 2021-08-11 2021-09-14 2021-10-13
2021-11-10 2021-12-10 2022-01-12 2022-02-10 2022-03-10 2022-04-12 2022-05-11 2022-06-10 2022-07-13 2022-08-10
2022-09-13 2022-10-13 2022-11-10 2022-12-13 2023-01-12 2023-02-14 2023-03-14 2023-04-12 2023-05-10 2023-06-13
2023-07-12 2023-08-10 2023-09-13 2023-10-12 2023-11-14 2023-12-12 2024-01-11 2024-02-13 2024-03-12 2024-04-10
2024-05-15 2024-06-12 2024-07-11 2024-08-14 2024-09-11 2024-10-10 2024-11-13 2024-12-11 2025-01-15 2025-02-12
2025-03-12 2025-04-10 2025-05-13 2025-06-11 2025-07-15 2025-08-12 2025-09-11 2025-10-24 2025-12-18
""".split()
FOMC = """
2021-01-27 2021-03-17 2021-04-28 2021-06-16 2021-07-28 2021-09-22 2021-11-03 2021-12-15 2022-01-26 2022-03-16
2022-05-04 2022-06-15 2022-07-27 2022-09-21 2022-11-02 2022-12-14 2023-02-01 2023-03-22 2023-05-03 2023-06-14
2023-07-26 2023-09-20 2023-11-01 2023-12-13 2024-01-31 2024-03-20 2024-05-01 2024-06-12 2024-07-31 2024-09-18
2024-11-07 2024-12-18 2025-01-29 2025-03-19 2025-05-07 2025-06-18 2025-07-30 2025-09-17 2025-10-29 2025-12-10
""".split()


def calendar() -> pd.DataFrame:
    rows = []
    for kind, dates, local, label in (("cpi", CPI, "08:30", "US CPI release"),
                                      ("fomc", FOMC, "14:00", "FOMC statement")):
        for d in dates:
            ts = pd.Timestamp(f"{d} {local}").tz_localize("America/New_York").tz_convert("UTC")
            rows.append({"ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "kind": kind, "label": label})
    return pd.DataFrame(rows).sort_values(["ts", "kind"]).reset_index(drop=True)


if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "covcall" / "event_calendar.csv"
    calendar().to_csv(path, index=False)
    print(f"wrote {path}")
