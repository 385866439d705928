"""The fixed vocabularies of covcall (actions, skip reasons, exit styles and reasons, statuses) as string enums.

Every member is a `str`, so values compare equal to their plain spelling ("SELL_CALL"), serialise as such in
DuckDB, CSV and JSON, and work inside numpy arrays.

>>> Action.SELL_CALL == "SELL_CALL", ExitStyle("tp_and_roll") is ExitStyle.TP_AND_ROLL
(True, True)
>>> [str(r) for r in ExitReason]
['expired_otm', 'settled_itm', 'take_profit', 'window_end']
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What a decision did: sold a call, or did nothing."""

    SELL_CALL = "SELL_CALL"
    DO_NOTHING = "DO_NOTHING"


class SkipReason(StrEnum):
    """Why a decision did nothing."""

    NO_CANDIDATES = "no_candidates"
    SCORE_BELOW_THRESHOLD = "score_below_threshold"
    TRADE_SIMULATION_FAILED = "trade_simulation_failed"
    HODL_NEVER_SELLS = "hodl_never_sells"
    COLLECTING_ONLY = "collecting_only"


class ExitStyle(StrEnum):
    """How a sold call is managed."""

    HOLD_TO_EXPIRY = "hold_to_expiry"
    TP_AND_ROLL = "tp_and_roll"


class ExitReason(StrEnum):
    """How a sold call ended."""

    EXPIRED_OTM = "expired_otm"
    SETTLED_ITM = "settled_itm"
    TAKE_PROFIT = "take_profit"
    WINDOW_END = "window_end"


class RunStatus(StrEnum):
    """State of a stored run, batch or walk. A process killed mid-way leaves `running` behind, which readers
    report as interrupted once no live process owns it (see covcall.store)."""

    RUNNING = "running"
    OK = "ok"  # a finished run (runs keep the v1 spelling)
    DONE = "done"  # a finished batch or walk
    INTERRUPTED = "interrupted"
    FAILED = "failed"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain spellings of an enum's members, in order.

    >>> values(ExitStyle)
    ('hold_to_expiry', 'tp_and_roll')
    """
    return tuple(m.value for m in enum)
